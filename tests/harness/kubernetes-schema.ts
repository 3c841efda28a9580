/**
 * Holds the Kubernetes objects the program registers against Kubernetes' own OpenAPI schema
 * (as compiled by `kubernetes-models`), and checks the references between objects that the API
 * server does not check but a working deployment needs.
 */
import * as path from "node:path";
import * as k8s from "@pulumi/kubernetes";
import { pathToFileURL } from "node:url";
import { MeshModel } from "../../components/config";

/** An ajv-compiled validator, as `kubernetes-models/_schemas/*` exports them. */
interface CompiledValidator {
  (data: unknown): boolean;
  errors?: Array<{
    instancePath: string;
    keyword: string;
    params: Record<string, unknown>;
    message?: string;
  }> | null;
}

/** A Kubernetes object as sent to the API server. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [field: string]: unknown;
}

const schemasOf = (pkg: string) =>
  path.join(path.dirname(require.resolve(`${pkg}/package.json`)), "_schemas");
/**
 * Custom resources, as the kubernetes-models packages compile them from each project's API types:
 * cert-manager v1.20 (@kubernetes-models/cert-manager 6) and prometheus-operator's
 * monitoring.coreos.com/v1 (@kubernetes-models/prometheus-operator 6). Each package's go.mod pins
 * the release.
 */
const CUSTOM_SCHEMA_DIRS: Record<string, string> = {
  ComGithubCertManagerCertManagerPkgApis: schemasOf("@kubernetes-models/cert-manager"),
  ComGithubPrometheusOperatorPrometheusOperatorPkgApis: schemasOf(
    "@kubernetes-models/prometheus-operator",
  ),
};
const SCHEMAS_DIR = schemasOf("kubernetes-models");
const CERT_MANAGER_SCHEMA_PREFIX = "ComGithubCertManagerCertManagerPkgApis";
const PROMETHEUS_OPERATOR_SCHEMA_PREFIX = "ComGithubPrometheusOperatorPrometheusOperatorPkgApis";

/** Schema names of the kinds we emit. A kind not listed fails: nothing passes unchecked. */
const SCHEMA_OF: Record<string, string> = {
  "cert-manager.io/v1/Certificate": `${CERT_MANAGER_SCHEMA_PREFIX}CertmanagerV1Certificate`,
  "cert-manager.io/v1/Issuer": `${CERT_MANAGER_SCHEMA_PREFIX}CertmanagerV1Issuer`,
  "monitoring.coreos.com/v1/PodMonitor": `${PROMETHEUS_OPERATOR_SCHEMA_PREFIX}MonitoringV1PodMonitor`,
  "monitoring.coreos.com/v1/PrometheusRule": `${PROMETHEUS_OPERATOR_SCHEMA_PREFIX}MonitoringV1PrometheusRule`,
  "v1/Namespace": "IoK8sApiCoreV1Namespace",
  "v1/ServiceAccount": "IoK8sApiCoreV1ServiceAccount",
  "v1/Secret": "IoK8sApiCoreV1Secret",
  "v1/ConfigMap": "IoK8sApiCoreV1ConfigMap",
  "v1/Service": "IoK8sApiCoreV1Service",
  "apps/v1/Deployment": "IoK8sApiAppsV1Deployment",
  "apps/v1/StatefulSet": "IoK8sApiAppsV1StatefulSet",
  "networking.k8s.io/v1/NetworkPolicy": "IoK8sApiNetworkingV1NetworkPolicy",
  "policy/v1/PodDisruptionBudget": "IoK8sApiPolicyV1PodDisruptionBudget",
  "autoscaling/v2/HorizontalPodAutoscaler": "IoK8sApiAutoscalingV2HorizontalPodAutoscaler",
};

const validators = new Map<string, CompiledValidator>();

/**
 * Loads the validators once; call before validateKubernetesObject. The package is ESM-only with
 * "import"-only exports (its schemas import each other that way), so it must be import()ed.
 */
export async function loadKubernetesSchemas(): Promise<void> {
  for (const schema of Object.values(SCHEMA_OF)) {
    if (validators.has(schema)) continue;
    const custom = Object.keys(CUSTOM_SCHEMA_DIRS).find((prefix) => schema.startsWith(prefix));
    const dir = custom ? CUSTOM_SCHEMA_DIRS[custom] : SCHEMAS_DIR;
    const mod = (await import(pathToFileURL(path.join(dir, `${schema}.js`)).href)) as {
      validate: CompiledValidator;
    };
    validators.set(schema, mod.validate);
  }
}

function validatorFor(schema: string): CompiledValidator {
  const validate = validators.get(schema);
  if (!validate) throw new Error("loadKubernetesSchemas() must run before validating");
  return validate;
}

const DNS_1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const PORT_NAME = /^(?=.*[a-z])[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/**
 * Schema errors of one object, each `Kind/name: /json/path: problem`. Adds the API server's name
 * rules the OpenAPI schema does not carry (DNS names, port names of at most 15 characters).
 */
export function validateKubernetesObject(obj: KubeObject): string[] {
  const id = `${obj.kind}/${obj.metadata?.name ?? "?"}`;
  const schema = SCHEMA_OF[`${obj.apiVersion}/${obj.kind}`];
  if (!schema) return [`${id}: no schema known for ${obj.apiVersion} ${obj.kind}`];
  const validate = validatorFor(schema);
  const errors: string[] = [];
  if (!validate(obj)) {
    for (const e of validate.errors ?? []) {
      errors.push(
        `${id}: ${e.instancePath || "/"}: ${e.message ?? `${e.keyword} ${JSON.stringify(e.params)}`}`,
      );
    }
  }
  const name = obj.metadata?.name ?? "";
  // Services must be DNS-1035 labels; the others DNS-1123 subdomains.
  if (
    obj.kind === "Service"
      ? !DNS_1035_LABEL.test(name) || name.length > 63
      : !DNS_1123_SUBDOMAIN.test(name) || name.length > 253
  ) {
    errors.push(`${id}: /metadata/name: "${name}" is not a valid ${obj.kind} name`);
  }
  for (const portName of portNames(obj)) {
    if (portName.length > 15 || !PORT_NAME.test(portName))
      errors.push(`${id}: port name "${portName}" is not an IANA service name (<= 15 chars)`);
  }
  return errors;
}

function portNames(obj: KubeObject): string[] {
  const names: string[] = [];
  for (const c of podSpecOf(obj)?.containers ?? [])
    for (const p of c.ports ?? []) if (p.name) names.push(p.name);
  if (obj.kind === "Service")
    for (const p of (obj.spec as ServiceSpec).ports ?? []) if (p.name) names.push(p.name);
  return names;
}

// Kubernetes' own types, in the plain (output) form. Fields the program may leave out are still
// read with `?? []`: an object as sent need not carry what the API server would default.
type Container = k8s.types.output.core.v1.Container;
export type PodSpec = k8s.types.output.core.v1.PodSpec;
type ServiceSpec = k8s.types.output.core.v1.ServiceSpec;

/** The pod spec of a workload object, if it is one. */
export function podSpecOf(obj: KubeObject): PodSpec | undefined {
  if (obj.kind !== "Deployment" && obj.kind !== "StatefulSet") return undefined;
  return (obj.spec as { template?: { spec?: PodSpec } } | undefined)?.template?.spec;
}

function podLabelsOf(obj: KubeObject): Record<string, string> {
  return (
    (obj.spec as { template?: { metadata?: { labels?: Record<string, string> } } }).template
      ?.metadata?.labels ?? {}
  );
}

const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

function portOpened(containers: Container[], port: string | number): boolean {
  return containers.some((c) =>
    (c.ports ?? []).some((p) =>
      typeof port === "number" ? p.containerPort === port : p.name === port,
    ),
  );
}

/**
 * Whether a Service targetPort reaches a port of the pod, as the endpoints controllers resolve
 * it (kubernetes pkg/api/v1/pod FindPort): a number is used as it is; a name is looked up in
 * `spec.containers`, and from 1.32 on also in sidecars (init containers with restartPolicy
 * Always, kubernetes#127976). Before 1.32 a name only a sidecar declares resolves to nothing, and
 * the Service gets no endpoints (kubernetes#127958).
 */
export function targetPortResolves(pod: PodSpec, target: string | number, minor: number): boolean {
  if (typeof target === "number") return true;
  const sidecars = (pod.initContainers ?? []).filter((c) => c.restartPolicy === "Always");
  return portOpened([...(pod.containers ?? []), ...(minor >= 32 ? sidecars : [])], target);
}

/** An object the stack names that others create (the gateway's certificate from cert-manager). */
export interface ProvidedObject {
  kind: string;
  name: string;
  namespace: string;
}

/** What a validated stack says exists without the program creating it. */
export function providedObjects(model: MeshModel): ProvidedObject[] {
  const secret = model.gateway?.tls.secretName;
  return secret ? [{ kind: "Secret", name: secret, namespace: model.namespace }] : [];
}

/**
 * References between objects: selectors select pods, Service targetPorts resolve on the oldest
 * Kubernetes minor the stack targets and hit ports a container opens, probes hit ports their
 * container opens, volumes and service accounts name objects the program creates in the same
 * namespace (a Secret also when a cert-manager Certificate there writes it; a projected volume's
 * sources each), each mount names a volume of its pod.
 */
export function checkKubernetesReferences(
  objects: KubeObject[],
  kubernetesMinor: number,
  provided: ProvidedObject[] = [],
): string[] {
  const problems: string[] = [];
  // cert-manager writes each Certificate's Secret (spec.secretName) in its namespace.
  const certificateSecrets = objects
    .filter((o) => o.kind === "Certificate")
    .map((o) => ({
      kind: "Secret",
      name: (o.spec as { secretName: string }).secretName,
      namespace: o.metadata.namespace,
    }));
  const exists = (kind: string, name: string, ns: string | undefined) =>
    [
      ...objects.map((o) => ({ kind: o.kind, ...o.metadata })),
      ...certificateSecrets,
      ...provided,
    ].some((o) => o.kind === kind && o.name === name && o.namespace === ns);
  const workloads = objects.filter((o) => podSpecOf(o));

  for (const w of workloads) {
    const id = `${w.kind}/${w.metadata.name}`;
    const pod = podSpecOf(w) as PodSpec;
    const ns = w.metadata.namespace;
    const selector =
      (w.spec as { selector?: { matchLabels?: Record<string, string> } }).selector?.matchLabels ??
      {};
    if (Object.keys(selector).length === 0 || !matches(selector, podLabelsOf(w)))
      problems.push(`${id}: selector does not match its pod labels`);
    if (pod.serviceAccountName && !exists("ServiceAccount", pod.serviceAccountName, ns)) {
      problems.push(`${id}: ServiceAccount "${pod.serviceAccountName}" is not created in ${ns}`);
    }
    const volumes = new Map((pod.volumes ?? []).map((v) => [v.name, v]));
    for (const v of pod.volumes ?? []) {
      // The objects a volume reads: its own ConfigMap or Secret, or each projected source's.
      const refs: [string, string | undefined][] = [
        ["ConfigMap", v.configMap?.name],
        ["Secret", v.secret?.secretName],
        ...(v.projected?.sources ?? []).flatMap((source): [string, string | undefined][] => [
          ["ConfigMap", source.configMap?.name],
          ["Secret", source.secret?.name],
        ]),
      ];
      for (const [kind, name] of refs)
        if (name !== undefined && !exists(kind, name, ns))
          problems.push(`${id}: volume ${v.name}: ${kind} "${name}" is not created in ${ns}`);
    }
    const containers = [...(pod.initContainers ?? []), ...(pod.containers ?? [])];
    for (const c of containers) {
      for (const m of c.volumeMounts ?? []) {
        if (!volumes.has(m.name))
          problems.push(`${id}: container ${c.name} mounts unknown volume "${m.name}"`);
      }
      for (const [kind, probe] of [
        ["readiness", c.readinessProbe],
        ["liveness", c.livenessProbe],
        ["startup", c.startupProbe],
      ] as const) {
        const port = probe?.httpGet?.port ?? probe?.tcpSocket?.port;
        if (port !== undefined && !portOpened([c], port))
          problems.push(
            `${id}: container ${c.name} ${kind} probe hits port ${port}, which it does not open`,
          );
      }
    }
  }

  for (const svc of objects.filter((o) => o.kind === "Service")) {
    const id = `Service/${svc.metadata.name}`;
    const spec = svc.spec as ServiceSpec;
    const selected = workloads.filter(
      (w) =>
        w.metadata.namespace === svc.metadata.namespace &&
        matches(spec.selector ?? {}, podLabelsOf(w)),
    );
    if (!spec.selector || selected.length === 0) {
      problems.push(`${id}: selector matches no pods`);
      continue;
    }
    for (const p of spec.ports ?? []) {
      const target = p.targetPort ?? p.port;
      for (const w of selected) {
        const pod = podSpecOf(w) as PodSpec;
        if (!portOpened([...(pod.initContainers ?? []), ...(pod.containers ?? [])], target)) {
          problems.push(
            `${id}: port ${p.name ?? p.port} targets ${target}, which no container of ${w.kind}/${w.metadata.name} opens`,
          );
        } else if (!targetPortResolves(pod, target, kubernetesMinor)) {
          problems.push(
            `${id}: port ${p.name ?? p.port} targets the name "${target}", which Kubernetes 1.${kubernetesMinor} does not resolve on ${w.kind}/${w.metadata.name}`,
          );
        }
      }
    }
  }
  return problems;
}
