/**
 * `npm run envoy-api:refresh -- <data-plane-api envoy/ folder> <commit>`: copies the Envoy API
 * protos the tests' validator loads (tests/harness/envoy-schema.ts) into
 * tests/harness/vendor/envoy-api/,
 * and records where they came from in its SOURCE.md.
 *
 * What is copied: every v3 .proto under config/, extensions/, type/ and service/discovery/, plus
 * the envoy/ files they import, transitively. Imports outside envoy/ (udpa, xds, validate,
 * google) resolve against the trees @grpc/grpc-js-xds ships; the script lists any import found in
 * neither, and the validator skips the files that need one.
 */
import * as fs from "node:fs";
import * as path from "node:path";

export const VENDORED_API = path.join(__dirname, "..", "tests", "harness", "vendor", "envoy-api");
/** Folders of the validator's root set (v3 only: older versions import envoy/api/v2). */
export const ROOT_FOLDERS = ["config", "extensions", "type", "service/discovery"];

function protosUnder(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return protosUnder(full);
    return e.name.endsWith(".proto") ? [full] : [];
  });
}

/** Relative paths ("envoy/...") of the validator's root set in an API tree. */
export function rootProtos(apiRoot: string): string[] {
  const rel = (full: string) => path.relative(apiRoot, full).split(path.sep).join("/");
  return ROOT_FOLDERS.flatMap((f) => protosUnder(path.join(apiRoot, "envoy", f)))
    .map(rel)
    .filter((f) => f.includes("/v3/"));
}

/** Relative paths ("envoy/...") of the root set and its envoy/ import closure. */
export function closure(apiRoot: string): { files: string[]; external: string[] } {
  const roots = rootProtos(apiRoot);
  const seen = new Set<string>();
  const external = new Set<string>();
  const queue = [...roots];
  while (queue.length > 0) {
    const file = queue.pop() as string;
    if (seen.has(file)) continue;
    seen.add(file);
    const text = fs.readFileSync(path.join(apiRoot, file), "utf8");
    for (const m of text.matchAll(/^\s*import\s+(?:public\s+|weak\s+)?"([^"]+)"/gm)) {
      if (!m[1].startsWith("envoy/")) external.add(m[1]);
      else if (fs.existsSync(path.join(apiRoot, m[1]))) queue.push(m[1]);
      else throw new Error(`${file} imports ${m[1]}, which ${apiRoot} does not have`);
    }
  }
  return { files: [...seen].sort(), external: [...external].sort() };
}

function main(): void {
  const [source, commit] = process.argv.slice(2);
  if (!source || !commit || !/^[0-9a-f]{40}$/.test(commit)) {
    console.error("usage: npm run envoy-api:refresh -- <path of data-plane-api's envoy/> <commit>");
    process.exit(2);
  }
  // The argument is the envoy/ folder itself; file paths start at its parent.
  const apiRoot = path.dirname(path.resolve(source));
  const { files } = closure(apiRoot);
  fs.rmSync(path.join(VENDORED_API, "envoy"), { recursive: true, force: true });
  for (const f of files) {
    const to = path.join(VENDORED_API, f);
    fs.mkdirSync(path.dirname(to), { recursive: true });
    fs.copyFileSync(path.join(apiRoot, f), to);
  }
  const date = new Date().toISOString().slice(0, 10);
  fs.writeFileSync(
    path.join(VENDORED_API, "SOURCE.md"),
    [
      "# Envoy API protos (vendored)",
      "",
      `The v3 protos under \`config/\`, \`extensions/\`, \`type/\` and \`service/discovery/\` of`,
      `envoyproxy/data-plane-api at commit ${commit}, with the \`envoy/\` files they import;`,
      `${files.length} files, copied unchanged on ${date} by \`npm run envoy-api:refresh\``,
      "(scripts/refresh-envoy-api.ts). Imports of `udpa/`, `xds/`, `validate/` and `google/` resolve",
      "against the trees @grpc/grpc-js-xds ships in its `deps/` folder. Licence: Apache-2.0, as",
      "Envoy's.",
      "",
    ].join("\n"),
  );
  console.log(
    `${files.length} files from ${commit} in ${path.relative(process.cwd(), VENDORED_API)}`,
  );
}

if (require.main === module) main();
