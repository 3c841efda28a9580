/**
 * `npm run render -- <stack> [dir] [--include-secrets]`
 *
 * Runs the program for one stack under the test harness (no cluster, no Pulumi CLI) and writes
 * what it would deploy: every Kubernetes object as YAML in the layout `renderYamlToDirectory`
 * uses, and each sidecar's Envoy files at the paths the sidecar sees them. Keys come from the
 * harness's fake tls provider: throwaway, valid only for review. Private keys are redacted unless
 * --include-secrets is given.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { stringify } from "yaml";
import { MeshConfigError } from "../components/config";
import { CERT_FILES, SIDECAR_PATHS } from "../components/envoy/model";
import { MESH_VOLUMES } from "../components/names";
import {
  kindOf,
  kubernetesObjects,
  metadataName,
  ProgramRun,
  runStack,
  STACKS,
  StackName,
} from "../tests/harness/program";

const REDACTED = "REDACTED (render with --include-secrets to see throwaway keys)";

/** File name `renderYamlToDirectory` gives an object: `<apiVersion>-<kind>-<ns>-<name>.yaml`. */
export function manifestFileName(
  apiVersion: string,
  kind: string,
  namespace: string | undefined,
  name: string,
): string {
  const sanitise = (s: string) => s.replace(/[/:]/g, "_");
  return `${sanitise(apiVersion)}-${kind.toLowerCase()}-${namespace || "default"}-${name}.yaml`;
}

/** Writes the rendered stack into dir; returns the files written, relative to dir. */
export function writeRendered(run: ProgramRun, dir: string, includeSecrets: boolean): string[] {
  const written: string[] = [];
  const write = (rel: string, content: string) => {
    const file = path.join(dir, rel);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, content, { mode: 0o600 });
    written.push(rel);
  };
  const configMaps = new Map<string, Record<string, string>>();
  const secrets = new Map<string, Record<string, string>>();

  for (const r of kubernetesObjects(run)) {
    const obj = JSON.parse(JSON.stringify(r.inputs)) as {
      apiVersion: string;
      kind: string;
      metadata: { name: string; namespace?: string };
      data?: Record<string, string>;
      stringData?: Record<string, string>;
    };
    if (obj.kind === "Secret" && obj.stringData && !includeSecrets) {
      obj.stringData[CERT_FILES.privateKey] = REDACTED;
    }
    if (obj.kind === "ConfigMap" && obj.data) configMaps.set(obj.metadata.name, obj.data);
    if (obj.kind === "Secret" && obj.stringData) secrets.set(obj.metadata.name, obj.stringData);
    write(
      path.join(
        "1-manifest",
        manifestFileName(obj.apiVersion, obj.kind, obj.metadata.namespace, obj.metadata.name),
      ),
      stringify(obj),
    );
  }

  // The sidecar's view: its ConfigMap at configDir and its Secret at certDir.
  for (const d of kubernetesObjects(run).filter((r) => kindOf(r.type) === "Deployment")) {
    const service = metadataName(d);
    const pod = (
      d.inputs.spec as {
        template: { spec: { volumes: Array<{ name: string; configMap?: { name: string } }> } };
      }
    ).template.spec;
    const configMapName = pod.volumes.find((v) => v.name === MESH_VOLUMES.config)?.configMap?.name;
    for (const [key, content] of Object.entries(configMaps.get(configMapName ?? "") ?? {})) {
      write(path.join("envoy", service, SIDECAR_PATHS.configDir, key), content);
    }
    for (const [key, content] of Object.entries(secrets.get(`${service}-tls`) ?? {})) {
      write(path.join("envoy", service, SIDECAR_PATHS.certDir, key), content);
    }
  }
  return written;
}

async function main(argv: string[]): Promise<void> {
  const includeSecrets = argv.includes("--include-secrets");
  const [stack, dirArg] = argv.filter((a) => !a.startsWith("--"));
  if (!STACKS.includes(stack as StackName)) {
    throw new Error(`usage: npm run render -- <${STACKS.join("|")}> [dir] [--include-secrets]`);
  }
  const dir = path.resolve(dirArg ?? path.join("out", stack));
  fs.rmSync(dir, { recursive: true, force: true });
  const files = writeRendered(await runStack(stack as StackName), dir, includeSecrets);
  console.log(
    `wrote ${files.length} files to ${dir}${includeSecrets ? " (with throwaway private keys)" : ""}`,
  );
}

if (require.main === module) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    console.error(err instanceof MeshConfigError || err instanceof Error ? err.message : err);
    process.exit(1);
  });
}
