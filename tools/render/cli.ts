/**
 * `npm run render -- <stack | path/to/Pulumi.<stack>.yaml> [dir] [--include-secrets]`
 *
 * Writes what the program would deploy for a stack, without a cluster or the Pulumi CLI, into
 * `dir` (default `out/<stack>` in the project): Kubernetes manifests that `kubectl kustomize
 * <dir>/manifests` builds in apply order, and each sidecar's Envoy files, for review, diffs and
 * linters. Keys and certificates are throwaway, derived from the stack name, so a render is
 * byte-identical for the same commit and stack; they are not for deploying (`pulumi up` does
 * that). Private keys are redacted unless --include-secrets is given. See docs/render.md.
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

  const run = await runStack(source);
  const files = renderFiles(run, { includeSecrets });
  writeOutput(dir, source.stack, files);
  const shown = (p: string) => (p.startsWith(cwd + path.sep) ? path.relative(cwd, p) : p);
  const manifests = shown(path.join(dir, "manifests"));
  return [
    // What `pulumi preview` would warn about for this stack.
    ...run.warnings.map((w) => `warning: ${w}`),
    `rendered stack ${source.stack} (${shown(source.file)}): ${files.length} files in ${shown(dir)}${
      includeSecrets ? " (with the throwaway private keys)" : " (private keys redacted)"
    }`,
    `  review:  kubectl kustomize ${manifests}   (pipe it to kubeconform, kube-linter, conftest...)`,
    `  compare: diff -ru <an earlier render> ${shown(dir)}`,
    "  deploy:  pulumi up (these keys and certificates are throwaway: never apply them)",
  ].join("\n");
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
