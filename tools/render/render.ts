/**
 * The offline render: runs the program for one stack through the engine shim, with the throwaway
 * tls stand-in, and lays out what it would deploy as files (in memory; output.ts writes them).
 *
 *   manifests/NN-<kind>-<name>.yaml   one Kubernetes object per file, NN = apply order of its kind
 *   manifests/kustomization.yaml      lists them in that order: `kubectl kustomize manifests`
 *   envoy/<deployment>/<path>         each sidecar's files at the paths the sidecar reads them
 *                                     (its ConfigMap and Secret volumes, from the Deployment)
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { stringify } from "yaml";
import { AccessEdge, accessEdges, accessLine } from "../../components/access";
import { loadMeshConfig, PROJECT } from "../../components/config";
import { MESH_VOLUMES } from "../../components/names";
import { PROJECT_ROOT, ProgramRun, Registered, runProgram, stackConfigFromFile } from "./engine";
import { accessGraphSvg } from "./graph";
import { throwawayTls } from "./throwaway-tls";

/** What a private key is replaced with unless the render includes secrets. */
export const REDACTED =
  "REDACTED (render with --include-secrets to see the throwaway key, derived from the stack name)";

/**
 * Apply order of the kinds the program creates (grep components/ for `new k8s.`). It is also
 * kustomize's default ("legacy") order for these kinds, so `kubectl kustomize` lists the objects
 * exactly as the files are numbered: Namespace first, then what pods need (ServiceAccount,
 * ConfigMap, Secret), the Services, the Deployments, and what refers to them.
 */
export const KIND_ORDER = [
  "Namespace",
  "ServiceAccount",
  "ConfigMap",
  "Secret",
  "Service",
  "Deployment",
  "PodDisruptionBudget",
  // Kinds kustomize does not order come next, sorted by group (api/resid/gvk.go IsLessThan):
  // autoscaling, cert-manager.io, monitoring.coreos.com, networking.k8s.io.
  "HorizontalPodAutoscaler",
  "Certificate",
  "Issuer",
  "PodMonitor",
  "PrometheusRule",
  "NetworkPolicy",
] as const;

/** Thrown when the render cannot proceed; the message says why and what to do. */
export class RenderError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "RenderError";
  }
}

/** A stack to render: its name and the `Pulumi.<stack>.yaml` it comes from. */
export interface StackSource {
  stack: string;
  file: string;
}

/** One output file: path relative to the output folder, content, and whether it holds a key. */
export interface OutputFile {
  path: string;
  content: string;
  secret: boolean;
}

const STACK_FILE = /^Pulumi\.([^/\\]+)\.ya?ml$/;

/** The stacks of the project: every `Pulumi.<stack>.yaml` beside index.ts. */
export function projectStacks(root = PROJECT_ROOT): string[] {
  return fs
    .readdirSync(root)
    .map((f) => STACK_FILE.exec(f)?.[1])
    .filter((s): s is string => s !== undefined)
    .sort();
}

/**
 * `dev` -> `<project>/Pulumi.dev.yaml`; `path/to/Pulumi.mine.yaml` (anything with a slash or a
 * .yaml suffix) -> that file, stack `mine`. A missing file is an error naming it.
 */
export function resolveStack(arg: string, cwd = process.cwd()): StackSource {
  const isPath = /[/\\]/.test(arg) || /\.ya?ml$/.test(arg);
  if (!isPath) {
    if (!/^[A-Za-z0-9_.-]+$/.test(arg)) throw new RenderError(`"${arg}" is not a stack name`);
    const file = path.join(PROJECT_ROOT, `Pulumi.${arg}.yaml`);
    if (!fs.existsSync(file)) {
      throw new RenderError(
        `no stack "${arg}": ${file} does not exist (stacks here: ${projectStacks().join(", ") || "none"}; or pass a path to a Pulumi.<stack>.yaml)`,
      );
    }
    return { stack: arg, file };
  }
  const file = path.resolve(cwd, arg);
  const stack = STACK_FILE.exec(path.basename(file))?.[1];
  if (stack === undefined)
    throw new RenderError(`${file}: a stack file must be named Pulumi.<stack>.yaml`);
  if (!fs.existsSync(file)) throw new RenderError(`no stack file: ${file} does not exist`);
  return { stack, file };
}

/**
 * Runs the program for a stack. The render sets `renderYamlToDirectory` (unless the stack does),
 * the program's own mode for YAML that is written rather than deployed: objects then refer to no
 * UIDs (no ownerReferences), which a `kubectl apply` of a mock's UID would get garbage-collected.
 */
export async function runStack(source: StackSource): Promise<RenderRun> {
  const config = stackConfigFromFile(source.file);
  const renderKey = `${PROJECT}:renderYamlToDirectory`;
  const run = await runProgram({
    stack: source.stack,
    config: { [renderKey]: "offline-render", ...config },
    standIns: throwawayTls(source.stack),
  });
  // The program ran, so the config is valid: the same model gives the access graph.
  return { ...run, access: accessEdges(loadMeshConfig(config)) };
}

/** A program run, and who may call whom in it (the `access` output's edges). */
export type RenderRun = ProgramRun & { access: AccessEdge[] };

interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string };
  data?: Record<string, string>;
  /** Secrets: the program writes their values here, in plain text. */
  stringData?: Record<string, string>;
  spec?: unknown;
}

/** `items` projects only the keys listed, each at its path. */
type KeyItems = Array<{ key: string; path: string }>;
interface Volume {
  name: string;
  configMap?: { name: string; items?: KeyItems };
  secret?: { secretName: string; items?: KeyItems };
  projected?: {
    sources: Array<{
      configMap?: { name: string; items?: KeyItems };
      secret?: { name: string; items?: KeyItems };
    }>;
  };
}
interface Container {
  name: string;
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}
interface PodSpec {
  volumes?: Volume[];
  containers?: Container[];
  initContainers?: Container[];
}

/** Kubernetes objects (the provider itself is `pulumi:providers:kubernetes`). */
const isObject = (r: Registered) => r.type.startsWith("kubernetes:");

/** Redacts the private keys of a Secret (`tls.key` and any other `*.key` or PEM private key). */
function isPrivateKeyEntry(key: string, value: string): boolean {
  return key.endsWith(".key") || /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(value);
}

/** Lays out a program run as files. */
export function renderFiles(run: RenderRun, opts: { includeSecrets: boolean }): OutputFile[] {
  const objects = run.resources
    .filter(isObject)
    .map((r) => ({ r, obj: JSON.parse(JSON.stringify(r.inputs)) as KubeObject }));
  const rank = (kind: string) => {
    const i = (KIND_ORDER as readonly string[]).indexOf(kind);
    if (i < 0) {
      throw new RenderError(
        `the program creates a ${kind}, which tools/render/render.ts does not place in apply order: add it to KIND_ORDER`,
      );
    }
    return i;
  };
  const key = (o: KubeObject) => `${o.metadata.namespace ?? ""}/${o.metadata.name}`;
  objects.sort(
    (a, b) =>
      rank(a.obj.kind) - rank(b.obj.kind) ||
      (key(a.obj) < key(b.obj) ? -1 : key(a.obj) > key(b.obj) ? 1 : 0),
  );

  const files: OutputFile[] = [];
  const manifests: string[] = [];
  const configMaps = new Map<string, Record<string, string>>();
  const secrets = new Map<string, Record<string, string>>();
  for (const { r, obj } of objects) {
    let header = `# ${r.type} "${r.name}" (stack ${run.stack}), written by \`npm run render\`\n`;
    const values = obj.stringData ?? {};
    let secret = false;
    if (obj.kind === "Secret") {
      if (obj.data !== undefined) {
        // Redaction reads stringData, where the program puts every Secret value.
        throw new RenderError(
          `Secret ${obj.metadata.name} has base64 data the render would not redact`,
        );
      }
      header += `# Throwaway key material: derived from the stack name by the offline render, so public. Never a real identity.\n`;
      for (const [k, v] of Object.entries(values)) {
        if (!isPrivateKeyEntry(k, v)) continue;
        if (opts.includeSecrets) secret = true;
        else values[k] = REDACTED;
      }
      secrets.set(key(obj), values);
    }
    if (obj.kind === "ConfigMap") configMaps.set(key(obj), { ...obj.data });
    const name = `${String(rank(obj.kind) + 1).padStart(2, "0")}-${obj.kind.toLowerCase()}-${obj.metadata.name}.yaml`;
    if (manifests.includes(name))
      throw new RenderError(`two objects would be written to manifests/${name}`);
    manifests.push(name);
    files.push({ path: `manifests/${name}`, content: header + stringify(obj), secret });
  }
  files.push({
    path: "manifests/kustomization.yaml",
    content:
      `# Written by \`npm run render\` (stack ${run.stack}): \`kubectl kustomize <this folder>\` builds\n` +
      "# the objects in apply order, for review and linters; the keys are throwaway, deploy with pulumi up.\n" +
      `# Resources in apply order, by kind (kustomize's default order sorts kinds the same way).\n` +
      stringify({
        apiVersion: "kustomize.config.k8s.io/v1beta1",
        kind: "Kustomization",
        resources: manifests,
      }),
    secret: false,
  });

  // The sidecar's view: every ConfigMap or Secret volume it mounts, at its mount path.
  for (const { obj } of objects.filter((o) => o.obj.kind === "Deployment")) {
    const pod = (obj.spec as { template: { spec: PodSpec } }).template.spec;
    const containers = [...(pod.initContainers ?? []), ...(pod.containers ?? [])];
    const envoy = containers.find((c) =>
      c.volumeMounts?.some((m) => m.name === MESH_VOLUMES.config),
    );
    if (!envoy) continue;
    for (const mount of envoy.volumeMounts ?? []) {
      const volume = pod.volumes?.find((v) => v.name === mount.name);
      const ns = obj.metadata.namespace ?? "";
      const project = (data: Record<string, string> | undefined, items?: KeyItems) =>
        items
          ? Object.fromEntries(
              items.flatMap((i) => (data?.[i.key] === undefined ? [] : [[i.path, data[i.key]]])),
            )
          : (data ?? {});
      // A projected volume's Secret from cert-manager is not in the render: cert-manager writes it.
      const source = volume?.configMap
        ? project(configMaps.get(`${ns}/${volume.configMap.name}`), volume.configMap.items)
        : volume?.secret
          ? project(secrets.get(`${ns}/${volume.secret.secretName}`), volume.secret.items)
          : Object.assign(
              {},
              ...(volume?.projected?.sources ?? []).map((s) =>
                s.configMap
                  ? project(configMaps.get(`${ns}/${s.configMap.name}`), s.configMap.items)
                  : project(s.secret && secrets.get(`${ns}/${s.secret.name}`), s.secret?.items),
              ),
            );
      for (const [file, content] of Object.entries(source as Record<string, string>).sort(
        ([a], [b]) => (a < b ? -1 : 1),
      )) {
        files.push({
          path: path.posix.join("envoy", obj.metadata.name, mount.mountPath, file),
          content,
          secret: opts.includeSecrets && isPrivateKeyEntry(file, content),
        });
      }
    }
  }
  // Who may call whom, as a picture (the access output, laid out).
  files.push({
    path: "access.svg",
    // The output's lines, each once: a repeated edge is drawn once too.
    content: accessGraphSvg(
      [...new Map(run.access.map((e) => [accessLine(e), e])).values()],
      `bookapi-mesh ${run.stack}: who may call whom`,
    ),
    secret: false,
  });
  return files;
}
