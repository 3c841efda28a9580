/**
 * `npm run render -- <stack | path/to/Pulumi.<stack>.yaml> [dir] [--include-secrets]`
 *
 * Writes what the program would deploy for a stack, without a cluster or the Pulumi CLI, into
 * `dir` (default `out/<stack>` in the project): Kubernetes manifests ready for
 * `kubectl apply -k <dir>/manifests`, and each sidecar's Envoy files. Keys and certificates are
 * throwaway, derived from the stack name, so a render is byte-identical for the same commit and
 * stack. Private keys are redacted unless --include-secrets is given. See docs/render.md.
 */
import * as path from "node:path";
import { PROJECT_ROOT } from "./engine";
import { checkOutputFolder, writeOutput } from "./output";
import { renderFiles, RenderError, resolveStack, runStack } from "./render";

const USAGE =
  "usage: npm run render -- <stack | path/to/Pulumi.<stack>.yaml> [dir] [--include-secrets]";

/** Runs the CLI; returns the message to print. Throws a RenderError for a usage or folder error. */
// `npm run` starts in the project folder; INIT_CWD is where the user typed the command, which
// relative paths are meant from.
export async function main(
  argv: string[],
  cwd = process.env.INIT_CWD ?? process.cwd(),
): Promise<string> {
  const flags = argv.filter((a) => a.startsWith("-"));
  const positional = argv.filter((a) => !a.startsWith("-"));
  if (flags.includes("--help") || flags.includes("-h")) return USAGE;
  const unknown = flags.filter((f) => f !== "--include-secrets");
  if (unknown.length > 0 || positional.length < 1 || positional.length > 2)
    throw new RenderError(
      `${unknown.length > 0 ? `unknown option ${unknown.join(" ")}\n` : ""}${USAGE}`,
    );
  const includeSecrets = flags.includes("--include-secrets");
  const source = resolveStack(positional[0], cwd);
  const dir = positional[1]
    ? path.resolve(cwd, positional[1])
    : path.join(PROJECT_ROOT, "out", source.stack);
  checkOutputFolder(dir); // before the run: refuse a wrong folder at once

  const files = renderFiles(await runStack(source), { includeSecrets });
  writeOutput(dir, source.stack, files);
  const shown = (p: string) => (p.startsWith(cwd + path.sep) ? path.relative(cwd, p) : p);
  return `rendered stack ${source.stack} (${shown(source.file)}): ${files.length} files in ${shown(dir)}${
    includeSecrets ? " (with the throwaway private keys)" : " (private keys redacted)"
  }\n  kubectl apply -k ${shown(path.join(dir, "manifests"))}`;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (message) => console.log(message),
    (err: unknown) => {
      console.error(err instanceof Error ? `render: ${err.message}` : err);
      process.exit(1);
    },
  );
}
