/**
 * Checks the built package from inside it, where Node and TypeScript resolve a package's own name
 * through its exports map (self-reference), as they do from a program that installed it: the
 * JavaScript and the declarations "bookapi-mesh" resolves to, that they export the same names, and
 * that `npm pack` ships them. Run after `npm run build`: `node .ci/check-library.mjs`.
 */
import { execFileSync } from "node:child_process";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as path from "node:path";
import ts from "typescript";

const root = fs.realpathSync(path.join(import.meta.dirname, ".."));
const NAME = JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")).name;

function fail(message) {
  console.error(`check-library: FAILED: ${message}`);
  process.exit(1);
}

// Node: the "default" condition.
const fromRoot = createRequire(path.join(root, "package.json"));
const js = fromRoot.resolve(NAME);
if (js !== path.join(root, "dist", "index.js"))
  fail(`${NAME} resolves to ${js}, not dist/index.js`);
const pkg = fromRoot(NAME);

// TypeScript: the "types" condition, with the resolution a node16 program uses.
const options = {
  module: ts.ModuleKind.Node16,
  moduleResolution: ts.ModuleResolutionKind.Node16,
};
const consumer = path.join(root, "examples", "third-party-chart", "index.ts");
const resolved = ts.resolveModuleName(NAME, consumer, options, ts.sys).resolvedModule;
const dts = path.join(root, "dist", "index.d.ts");
if (resolved?.resolvedFileName !== dts)
  fail(`${NAME}'s types resolve to ${resolved?.resolvedFileName}, not dist/index.d.ts`);

// The names the declarations export as values are the ones the JavaScript has, and no more.
const program = ts.createProgram([dts], { ...options, types: [] });
const checker = program.getTypeChecker();
const exported = checker.getExportsOfModule(
  checker.getSymbolAtLocation(program.getSourceFile(dts)),
);
const flags = (s) => (s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s).flags;
const values = exported
  .filter((s) => flags(s) & ts.SymbolFlags.Value)
  .map((s) => s.name)
  .sort();
const runtime = Object.keys(pkg)
  .filter((k) => k !== "__esModule")
  .sort();
if (JSON.stringify(values) !== JSON.stringify(runtime))
  fail(`dist/index.d.ts exports ${values.join(", ")}; dist/index.js ${runtime.join(", ")}`);
for (const name of runtime) if (pkg[name] === undefined) fail(`${name} is undefined at runtime`);

// What `npm pack` (and so `npm publish` or a tarball install) ships.
const [packed] = JSON.parse(
  execFileSync("npm", ["pack", "--dry-run", "--json", "--ignore-scripts"], { cwd: root }),
);
const files = new Set(packed.files.map((f) => f.path));
for (const file of ["package.json", "dist/index.js", "dist/index.d.ts"])
  if (!files.has(file)) fail(`npm pack leaves out ${file}`);
const stray = [...files].filter(
  (f) => !f.startsWith("dist/") && !/^(package\.json|README\.md|LICENSE)$/.test(f),
);
if (stray.length > 0) fail(`npm pack ships files outside dist/: ${stray.join(", ")}`);

console.log(
  `check-library: ok: ${NAME} resolves to dist/index.js and dist/index.d.ts through its exports ` +
    `map; ${values.length} named exports (${values.join(", ")}) plus ${exported.length - values.length} types; ` +
    `npm pack ships ${files.size} files`,
);
