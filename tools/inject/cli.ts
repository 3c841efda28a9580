/**
 * `npm run inject -- <stack | path/to/Pulumi.<stack>.yaml> [file]`
 *
 * Reads Kubernetes YAML (several documents) from `file` or standard input and writes it to
 * standard output with the mesh's sidecar added to the Deployments and StatefulSets the stack's
 * adopted services (`services[].workload`) name; everything else unchanged. Usable as a Helm
 * post-renderer (docs/injection.md). What it injected goes to standard error.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { loadMeshConfig } from "../../components/config";
import { adoptedWorkloads } from "../../components/mesh";
import { stackConfigFromFile } from "../render/engine";
import { RenderError, resolveStack } from "../render/render";
import { injectManifests } from "./inject";

const USAGE = "usage: npm run inject -- <stack | path/to/Pulumi.<stack>.yaml> [file]";

/** What the CLI writes: the manifests (stdout) and a report (stderr). */
export interface InjectOutput {
  manifests: string;
  report: string;
}

/** Runs the CLI on `argv`, reading `stdin` when no file is given. Throws on any problem. */
export function main(
  argv: string[],
  stdin: () => string,
  cwd = process.env.INIT_CWD ?? process.cwd(),
): InjectOutput {
  if (argv.includes("--help") || argv.includes("-h")) return { manifests: "", report: USAGE };
  if (argv.length < 1 || argv.length > 2 || argv.some((a) => a.startsWith("-")))
    throw new RenderError(USAGE);
  const source = resolveStack(argv[0], cwd);
  const model = loadMeshConfig(stackConfigFromFile(source.file));
  const adopted = adoptedWorkloads(model);
  if (adopted.length === 0)
    throw new RenderError(
      `stack ${source.stack} adopts no workload: give a service a workload (services[].workload)`,
    );
  const input = argv[1] ? fs.readFileSync(path.resolve(cwd, argv[1]), "utf8") : stdin();
  const { text, injected, warnings } = injectManifests(input, adopted);
  return {
    manifests: text,
    report: [
      injected.length > 0
        ? `injected the mesh of stack ${source.stack} into ${injected.join(", ")}`
        : `no workload of the input is adopted by stack ${source.stack} (adopted: ${adopted.map((a) => `${a.injection.service.workload.kind}/${a.injection.service.workload.name}`).join(", ")})`,
      ...warnings.map((w) => `warning: ${w}`),
    ].join("\n"),
  };
}

if (require.main === module) {
  try {
    const { manifests, report } = main(process.argv.slice(2), () => fs.readFileSync(0, "utf8"));
    process.stdout.write(manifests);
    console.error(report);
  } catch (err: unknown) {
    console.error(err instanceof Error ? `inject: ${err.message}` : err);
    process.exit(1);
  }
}
