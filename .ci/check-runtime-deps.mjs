/**
 * Runs the program as the Pulumi Node runtime (@pulumi/pulumi cmd/run/run.ts) would, under mocks,
 * in a deploy install made with `npm ci --omit=dev`. Run it with that install as the working
 * directory: `node check-runtime-deps.mjs <stack>`. Everything the program touches resolves from
 * there; only this file's YAML parser comes from the repository's full install.
 *
 * run.ts cannot simply be called: importing it starts the real runtime, which needs an engine.
 */
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as path from "node:path";
import { parse as parseYaml } from "yaml";

const stack = process.argv[2] ?? "dev";
const root = fs.realpathSync(process.cwd());
const fromRoot = createRequire(path.join(root, "package.json"));

function fail(message) {
  console.error(`check-runtime-deps: FAILED: ${message}`);
  process.exit(1);
}
// The runtime reports a failing program through these handlers too.
for (const event of ["uncaughtException", "unhandledRejection"]) {
  process.on(event, (err) => fail(`the program failed (${event}):\n${err?.stack ?? err}`));
}

// A full install here would prove nothing.
for (const dev of ["mocha", "@types/mocha", "tsx"]) {
  if (fs.existsSync(path.join(root, "node_modules", dev))) {
    fail(`dev-only ${dev} is installed in ${root}; expected an --omit=dev install`);
  }
}

// The engine passes the stack's config as PULUMI_CONFIG: `project:key` -> string, structured
// values JSON-encoded. @pulumi/pulumi reads it when loaded, so set it first.
const projectFile = parseYaml(fs.readFileSync("Pulumi.yaml", "utf8"));
const project = projectFile.name;
const stackFile = parseYaml(fs.readFileSync(`Pulumi.${stack}.yaml`, "utf8"));
const config = {};
for (const [key, value] of Object.entries(stackFile?.config ?? {})) {
  config[key.includes(":") ? key : `${project}:${key}`] =
    typeof value === "string" ? value : JSON.stringify(value);
}
process.env.PULUMI_CONFIG = JSON.stringify(config);

// The compiler and ts-node that @pulumi/pulumi's tsutils picks: the project's, else its vendored
// TypeScript 3.8.3 and ts-node 7.0.1.
const pulumiDir = path.dirname(fromRoot.resolve("@pulumi/pulumi/package.json"));
const fromPulumi = createRequire(path.join(pulumiDir, "tsutils.js"));
const tsutils = fromPulumi("./tsutils");
const { typescriptRequire, tsnodeRequire } = tsutils.typeScriptRequireStrings();
const tsPath = fromPulumi.resolve(typescriptRequire);
if (!tsPath.startsWith(path.join(root, "node_modules", "typescript") + path.sep)) {
  fail(`Pulumi would compile with ${tsPath}, not the project's typescript: is it in dependencies?`);
}
const ts = fromPulumi(typescriptRequire);
const semver = fromPulumi("semver");

// Registered as run.ts does. Pulumi.yaml sets no runtime.options.tsconfig, so: tsconfig.json.
const tsConfigPath = "tsconfig.json";
if (!fs.existsSync(tsConfigPath)) fail(`${tsConfigPath} is missing: ts-node would skip it`);
const useNodeNext = semver.gte(ts.version, "4.7.0");
fromPulumi(tsnodeRequire).register({
  compiler: typescriptRequire,
  // run.ts type-checks unless PULUMI_NODEJS_TRANSPILE_ONLY or tsconfig's noCheck says otherwise;
  // this check always does.
  transpileOnly: false,
  project: tsConfigPath,
  skipProject: false,
  compilerOptions: {
    target: "ES2020",
    module: useNodeNext ? "nodenext" : "commonjs",
    moduleResolution: useNodeNext ? "nodenext" : "node",
    sourceMap: "true",
    ...tsutils.loadTypeScriptCompilerOptions(tsConfigPath),
  },
});

// Trivial mocks: every resource's state echoes its inputs; a tls resource also answers what the
// program reads of it, as the provider would: a certificate (one fixed, throwaway, public) and
// its validity.
const CERTIFICATE = [
  "-----BEGIN CERTIFICATE-----",
  "MIIBhDCCASugAwIBAgIUM+JTGlcTqCuMvwRNfR8LHw2uHNswCgYIKoZIzj0EAwIw",
  "FzEVMBMGA1UEAwwMZGVwbG95LWNoZWNrMCAXDTI2MTIwNDA3MDAyNFoYDzIxMjYx",
  "MTEwMDcwMDI0WjAXMRUwEwYDVQQDDAxkZXBsb3ktY2hlY2swWTATBgcqhkjOPQIB",
  "BggqhkjOPQMBBwNCAASEHnEDw9Er9T5EJOHTkGXo5dMihtzjlcILWi5kfHx3ku8O",
  "ddQcizXePBq/BUK65cfbW+g7hN/s9Ke8WXL3pRcuo1MwUTAdBgNVHQ4EFgQUdgth",
  "yk/vqm34jUaZFesCezKQrp4wHwYDVR0jBBgwFoAUdgthyk/vqm34jUaZFesCezKQ",
  "rp4wDwYDVR0TAQH/BAUwAwEB/zAKBggqhkjOPQQDAgNHADBEAiAsxxErlqjaqWWR",
  "0xeLO5pN9uK0kpJ2QP+KsMnv0CC5MAIgbYBEep6fHwehbMOc6IQkdLieDqoaYdEc",
  "OoYigzBxBCY=",
  "-----END CERTIFICATE-----",
].join("\n");
const TLS_OUTPUTS = {
  privateKeyPem: "deploy check: no key",
  certRequestPem: "deploy check: no request",
  certPem: `${CERTIFICATE}\n`,
  validityStartTime: "2026-01-01T00:00:00Z",
  validityEndTime: "2126-01-01T00:00:00Z",
};
const pulumi = fromRoot("@pulumi/pulumi");
let registered = 0;
await pulumi.runtime.setMocks(
  {
    newResource(args) {
      registered++;
      const state = args.type.startsWith("tls:") ? { ...TLS_OUTPUTS, ...args.inputs } : args.inputs;
      return { id: `${args.name}-id`, state };
    },
    call: (args) => args.inputs,
  },
  project,
  stack,
  false,
  // What a DIY backend calls every stack's organization; the program references its own stack.
  "organization",
);

// The entry point as the CLI and run.ts pick it: Pulumi.yaml's `main` (a file runs as given,
// pkg/engine/project.go getPwdMain), else package.json's exports["."], else its `main`; run inside
// the root Stack resource.
function programEntry() {
  if (projectFile.main) return projectFile.main;
  const pkg = JSON.parse(fs.readFileSync("package.json", "utf8"));
  const dot = typeof pkg.exports === "object" ? pkg.exports["."] : pkg.exports;
  if (typeof dot === "object") return dot.default ?? dot.require ?? dot.import;
  return dot ?? pkg.main ?? "index.js";
}
const main = path.resolve(programEntry());
if (!fs.existsSync(main)) fail(`the entry point ${main} does not exist in the deploy install`);
try {
  await pulumi.runtime.runInPulumiStack(() => fromRoot(main));
  await pulumi.runtime.waitForRPCs();
} catch (err) {
  fail(`the program failed:\n${err?.stack ?? err}`);
}
// The Stack resource alone would mean the program registered nothing.
if (registered < 2) fail(`the program registered ${registered} resource(s)`);
console.log(
  `check-runtime-deps: ok: stack ${stack} registered ${registered} resources in ${root}, ` +
    `type-checked by typescript ${ts.version} (${path.relative(root, tsPath)}) ` +
    `via ${path.relative(root, fromPulumi.resolve(tsnodeRequire))}`,
);
