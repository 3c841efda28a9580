/**
 * Sidecar injection (docs/injection.md): `injectMesh`, the one function that adds the mesh to a pod
 * template, for the mesh's own workloads and for workloads someone else declares; which Deployment
 * or StatefulSet an adopted service (`services[].workload`) names, and that workload with the mesh
 * added to its pod template. The same functions serve the Pulumi transform (`meshInjector`: the
 * program's own workloads, and those of a `helm.v4.Chart` or `yaml.v2.ConfigFile`, whose children
 * transforms reach) and the offline `npm run inject`. Nothing but `spec.template` changes: the
 * selector, replicas and update strategy stay the owner's.
 */
import * as pulumi from "@pulumi/pulumi";
import { EnvoySettings, ServiceModel } from "./config";
import {
  INJECT_LABEL,
  MESH_VOLUMES,
  objectNames,
  podMeshLabels,
  SCRAPE_ANNOTATION_PREFIX,
  SERVICE_LABEL,
} from "./names";
import {
  EnvoyConfigSource,
  envoyContainer,
  isReplicated,
  meshEnv,
  meshPodSpec,
  nativeSidecar,
  PlainContainer,
  PodTemplate,
  scrapeAnnotations,
  SIDECAR_CONTAINER,
} from "./pod";

/** What the mesh adds to a workload's pods, and from which settings. */
export interface MeshInjection {
  /** The mesh service the pods serve: its identity, ports, callers, traffic, termination. */
  service: ServiceModel;
  envoy: EnvoySettings;
  config: EnvoyConfigSource;
}

/** Thrown when a pod template cannot take the mesh; the message names the workload. */
export class InjectionError extends Error {
  constructor(workload: string, problems: string[]) {
    super(`cannot add the mesh to the pods of ${workload}:\n  - ${problems.join("\n  - ")}`);
    this.name = "InjectionError";
  }
}

/** How an error names a service's workload: an adopted one by its kind and name. */
export function workloadTitle(service: ServiceModel): string {
  const { kind, name } = service.workload;
  return service.adopted ? `${kind} "${name}" (service ${service.name})` : service.name;
}

/** Ports the sidecar holds in the pod's network namespace, which no container may open. */
function meshPorts(service: ServiceModel, envoy: EnvoySettings): Map<number, string> {
  const ports = new Map<number, string>(
    Object.entries(envoy.ports).map(([role, port]) => [port, `Envoy's ${role} port`]),
  );
  for (const e of service.egress)
    if (e.local) ports.set(e.local.port, `Envoy's egress listener for ${e.name}`);
  return ports;
}

/** Why `template` cannot take the mesh as `service`, or nothing. */
function injectionProblems(
  template: PodTemplate,
  service: ServiceModel,
  envoy: EnvoySettings,
): string[] {
  const problems: string[] = [];
  const spec = template.spec ?? { containers: [] };
  const containers = [...(spec.initContainers ?? []), ...spec.containers];
  const ports = meshPorts(service, envoy);
  for (const c of containers) {
    if (c.name === SIDECAR_CONTAINER)
      problems.push(`a container is already named "${SIDECAR_CONTAINER}", the sidecar's name`);
    for (const p of c.ports ?? []) {
      const taken = ports.get(p.containerPort);
      if (taken) problems.push(`container "${c.name}" opens port ${p.containerPort}, ${taken}`);
    }
  }
  const meshVolumes: string[] = [MESH_VOLUMES.config, MESH_VOLUMES.certs];
  for (const v of spec.volumes ?? [])
    if (meshVolumes.includes(v.name))
      problems.push(`volume "${v.name}" is a name the mesh's volumes use`);
  const labels = template.metadata?.labels ?? {};
  for (const [key, value] of Object.entries(podMeshLabels(service, labels)))
    if (labels[key] !== undefined && labels[key] !== value)
      problems.push(`label ${key}="${labels[key]}" conflicts with the mesh's "${value}"`);
  const account = spec.serviceAccountName;
  if (
    !service.adopted &&
    account !== undefined &&
    account !== objectNames(service.name).serviceAccount
  )
    problems.push(
      `serviceAccountName "${account}": the mesh identity is the ServiceAccount "${objectNames(service.name).serviceAccount}"`,
    );
  const grace = spec.terminationGracePeriodSeconds;
  if (service.adopted && grace !== undefined && grace !== service.terminationGracePeriodSeconds)
    problems.push(
      `terminationGracePeriodSeconds ${grace}: the sidecar's stop timeline is built for ${service.terminationGracePeriodSeconds} (the service's terminationGracePeriodSeconds); make them equal`,
    );
  return problems;
}

/**
 * Adds the mesh to a pod template: the Envoy sidecar (native or a plain container), its config
 * and identity volumes, the mesh's labels (selectors and NetworkPolicies use them), its
 * ServiceAccount without an API token, the pod security context, the termination timeline
 * (grace period; Envoy's preStop drain), spreading when replicated, scrape annotations, and
 * the outbound listener's address in every container's env. The same function builds the mesh's
 * own workloads (podTemplate) and adds the mesh to another's; a workload's selector is never
 * touched. Refuses a template that collides with the sidecar, naming the workload.
 */
export function injectMesh(template: PodTemplate, injection: MeshInjection): PodTemplate {
  const { service, envoy, config } = injection;
  const problems = injectionProblems(template, service, envoy);
  if (problems.length > 0) throw new InjectionError(workloadTitle(service), problems);
  const {
    containers,
    initContainers = [],
    volumes = [],
    ...rest
  } = template.spec ?? { containers: [] };
  const sidecar = envoyContainer(service, envoy);
  const podSecurity = template.spec?.securityContext;
  const base = meshPodSpec({
    workload: service.name,
    // Secret files are mode 0440 owned by this group, readable by both containers. An adopted
    // pod's security context is its owner's: its fsGroup (given to every container) reads them,
    // and without one the files are 0444, in a volume only Envoy mounts.
    ...(service.adopted ? {} : { fsGroup: service.runAsUser }),
    certsMode: service.adopted && podSecurity?.fsGroup === undefined ? 0o444 : 0o440,
    terminationGracePeriodSeconds: service.terminationGracePeriodSeconds,
    imagePullSecrets: service.imagePullSecrets,
    // How an adopted workload's replicas spread is its owner's choice.
    replicated: !service.adopted && isReplicated(service),
    kind: service.workload.kind,
    configMapName: config.configMapName,
    issuer: config.issuer,
  });
  const env = meshEnv(service, envoy);
  const apps = containers.map((c): PlainContainer => ({ ...c, env: [...env, ...(c.env ?? [])] }));
  const inits: PlainContainer[] = initContainers;
  if (service.adopted) {
    // Its owner's choices stand: the pod's security context (runAsNonRoot added to an image that
    // names its user would stop it: the kubelet cannot verify a non-numeric user), the Service
    // variables its app may read, and its own ServiceAccount with whatever API access it has.
    delete base.securityContext;
    delete base.enableServiceLinks;
    if (rest.serviceAccountName !== undefined) {
      delete base.serviceAccountName;
      delete base.automountServiceAccountToken;
    }
  }
  const spec = { ...base, ...rest };
  spec.imagePullSecrets = mergedPullSecrets(base.imagePullSecrets, rest.imagePullSecrets);
  if (!spec.imagePullSecrets) delete spec.imagePullSecrets;
  const own = template.metadata?.annotations ?? {};
  // An adopted app scraped through its own prometheus.io annotations keeps them (one port per
  // pod): its Envoy is then scraped only by a PodMonitor.
  const ownScrape = Object.keys(own).some((k) => k.startsWith(SCRAPE_ANNOTATION_PREFIX));
  const annotations = {
    ...own,
    ...(service.adopted && ownScrape ? {} : scrapeAnnotations(envoy, config)),
  };
  return {
    metadata: {
      ...template.metadata,
      labels: {
        ...(template.metadata?.labels ?? {}),
        ...podMeshLabels(service, template.metadata?.labels),
      },
      ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
    },
    spec: {
      ...spec,
      // A native sidecar goes after the template's own init containers: they run to completion
      // first, then Envoy starts and must be ready before the app containers.
      ...(envoy.sidecarMode === "native"
        ? { initContainers: [...inits, nativeSidecar(sidecar)], containers: apps }
        : {
            ...(inits.length > 0 ? { initContainers: inits } : {}),
            containers: [...apps, sidecar],
          }),
      volumes: [...base.volumes, ...volumes],
    },
  };
}

/** The template's pull secrets and the mesh's (for the Envoy image), each once. */
function mergedPullSecrets(
  mesh: { name?: string }[] | undefined,
  own: { name?: string }[] | undefined,
): { name?: string }[] | undefined {
  const all = [...(own ?? []), ...(mesh ?? [])];
  const names = [...new Set(all.map((s) => s.name))];
  return names.length > 0 ? names.map((name) => ({ name })) : undefined;
}

/** An adopted service as the injector needs it. */
export interface AdoptedWorkload {
  /** What the mesh adds to its pods (the service is an adopted one). */
  injection: MeshInjection;
  /** The mesh's namespace: its ConfigMap and Secret are there, so the pods must be too. */
  namespace: string;
  /** What its pods need first (its identity, config and NetworkPolicies); Pulumi only. */
  podsNeed?: pulumi.Resource[];
}

/** A Deployment or StatefulSet as plain data: a manifest, or a transform's props. */
export interface WorkloadObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
  spec?: { template?: PodTemplate } & Record<string, unknown>;
}

const KINDS = ["Deployment", "StatefulSet"];

/**
 * The adopted service a workload serves: the one whose `workload` names its kind and name, or the
 * one its pods' `bookapi-mesh/service` label names. None for another kind, a workload no service
 * adopts, or one labelled `bookapi-mesh/inject: disabled` (on itself or its pods). Throws when the
 * two ways disagree, or the workload is not in the mesh's namespace.
 */
export function adoptedServiceOf(
  object: WorkloadObject,
  adopted: AdoptedWorkload[],
): AdoptedWorkload | undefined {
  const { kind, metadata = {} } = object;
  if (!kind || !KINDS.includes(kind)) return undefined;
  if (object.apiVersion !== undefined && object.apiVersion !== "apps/v1") return undefined;
  const podLabels = object.spec?.template?.metadata?.labels ?? {};
  if (metadata.labels?.[INJECT_LABEL] === "disabled" || podLabels[INJECT_LABEL] === "disabled")
    return undefined;
  const title = `${kind} "${metadata.name ?? "(unnamed)"}"`;
  const byName = adopted.find(
    (a) =>
      a.injection.service.workload.kind === kind &&
      a.injection.service.workload.name === metadata.name,
  );
  const label = podLabels[SERVICE_LABEL];
  const byLabel =
    label === undefined ? undefined : adopted.find((a) => a.injection.service.name === label);
  const problems: string[] = [];
  if (label !== undefined && !byLabel)
    problems.push(
      `its pods are labelled ${SERVICE_LABEL}=${label}, which no adopted service is (adopted: ${adopted.map((a) => a.injection.service.name).join(", ") || "none"})`,
    );
  if (byLabel && byName && byLabel !== byName)
    problems.push(
      `service ${byName.injection.service.name} adopts it by name, but its pods are labelled ${SERVICE_LABEL}=${label}`,
    );
  if (byLabel && !byName && byLabel.injection.service.workload.kind !== kind)
    problems.push(
      `its pods are labelled for service ${label}, which adopts a ${byLabel.injection.service.workload.kind}`,
    );
  const match = byName ?? byLabel;
  if (match && metadata.namespace !== undefined && metadata.namespace !== match.namespace)
    problems.push(
      `it is in namespace ${metadata.namespace}; the mesh's ConfigMap and Secret for it are in ${match.namespace}`,
    );
  if (problems.length > 0) throw new InjectionError(title, problems);
  return match;
}

/**
 * The workload with the mesh in its pod template, or undefined when no adopted service takes it.
 * Refuses (InjectionError) a template that would collide with the sidecar.
 */
export function injectWorkload<T extends WorkloadObject>(
  object: T,
  adopted: AdoptedWorkload[],
): T | undefined {
  const match = adoptedServiceOf(object, adopted);
  return match && withMesh(object, match);
}

/** The workload with `match`'s mesh in its pod template. */
function withMesh<T extends WorkloadObject>(object: T, match: AdoptedWorkload): T {
  const template = object.spec?.template;
  if (!template?.spec) {
    const title = `${object.kind} "${object.metadata?.name}"`;
    throw new InjectionError(title, ["it has no pod template (spec.template.spec)"]);
  }
  return { ...object, spec: { ...object.spec, template: injectMesh(template, match.injection) } };
}

/**
 * What of a pod template the injector reads or extends, but finds as an Output (a value not
 * known yet, or a secret): the rest of the template (an image, an env value) may hold Outputs.
 */
function unreadable(template: PodTemplate | undefined): string[] {
  const paths: string[] = [];
  const check = (path: string, value: unknown, deep = true) => {
    if (deep ? !isPlain(value) : pulumi.Output.isInstance(value) || value instanceof Promise)
      paths.push(path);
  };
  check("metadata.labels", template?.metadata?.labels);
  check("metadata.annotations", template?.metadata?.annotations, false);
  const spec = template?.spec;
  check("spec", spec, false);
  if (!spec || paths.includes("spec")) return paths;
  for (const key of [
    "serviceAccountName",
    "terminationGracePeriodSeconds",
    "securityContext",
    "imagePullSecrets",
  ] as const)
    check(`spec.${key}`, spec[key]);
  check("spec.volumes", spec.volumes, false);
  (Array.isArray(spec.volumes) ? spec.volumes : []).forEach((v, i) =>
    check(`spec.volumes[${i}].name`, (v as { name?: unknown }).name),
  );
  for (const list of ["initContainers", "containers"] as const) {
    const containers: unknown = spec[list];
    check(`spec.${list}`, containers, false);
    (Array.isArray(containers) ? containers : []).forEach((c: Record<string, unknown>, i) => {
      check(`spec.${list}[${i}].name`, c.name);
      check(`spec.${list}[${i}].ports`, c.ports);
      check(`spec.${list}[${i}].env`, c.env, false);
    });
  }
  return paths;
}

/** Whether a value holds an Output or a promise anywhere. */
function isPlain(value: unknown): boolean {
  if (pulumi.Output.isInstance(value) || value instanceof Promise) return false;
  if (Array.isArray(value)) return value.every(isPlain);
  if (value !== null && typeof value === "object") return Object.values(value).every(isPlain);
  return true;
}

const TYPES: Record<string, string> = {
  "kubernetes:apps/v1:Deployment": "Deployment",
  "kubernetes:apps/v1:StatefulSet": "StatefulSet",
};

/**
 * A Pulumi resource transform that injects the sidecar into the workloads of `adopted` (e.g. a
 * `ServiceMesh`'s `adopted`), and makes them wait for what their pods need. Register it before the
 * workloads: for the whole program with `pulumi.runtime.registerResourceTransform` (@pulumi/pulumi
 * 3.121 or later), or on one component with its `transforms` option. Transforms, unlike the older
 * transformations, also reach the children of packaged components such as `helm.v4.Chart` and
 * `yaml.v2.ConfigFile` (@pulumi/kubernetes 4.12 or later for the Chart). A workload's metadata and
 * pod template must be plain values where the transform sees them (a chart's always are).
 */
export function meshInjector(adopted: AdoptedWorkload[]): pulumi.ResourceTransform {
  return (args) => {
    const kind = TYPES[args.type];
    if (!kind) return undefined;
    const props = args.props as WorkloadObject;
    // Matched on what is known now: a name or namespace still an Output (e.g. a Namespace
    // resource's) is not compared; the policy pack catches an adopted service left without pods.
    const known = <V>(v: V) => (isPlain(v) ? v : undefined);
    const meta = props.metadata ?? {};
    const template = props.spec?.template;
    const object: WorkloadObject = {
      ...props,
      spec: {
        ...props.spec,
        template: { ...template, metadata: { labels: known(template?.metadata?.labels) } },
      },
      kind,
      apiVersion: "apps/v1",
      metadata: {
        name: known(meta.name),
        namespace: known(meta.namespace),
        labels: known(meta.labels),
      },
    };
    const match = adoptedServiceOf(object, adopted);
    if (!match) return undefined;
    const outputs = unreadable(template);
    if (outputs.length > 0)
      throw new InjectionError(`${kind} "${object.metadata?.name ?? args.name}"`, [
        `its pod template's ${outputs.join(", ")} hold values not known yet or secret (Outputs), which the injector reads: pass them as plain values`,
      ]);
    // A Deployment's or StatefulSet's options: a custom resource's.
    const opts: pulumi.CustomResourceOptions = pulumi.mergeOptions(args.opts, {
      dependsOn: match.podsNeed ?? [],
    });
    // The SDK hands a transform `deleteBeforeReplace: false` where it was unset; given back, it
    // would override the provider's delete-first replacement of a fixed-name object.
    if (opts.deleteBeforeReplace === false) delete opts.deleteBeforeReplace;
    return { props: { ...props, spec: withMesh({ ...props, kind }, match).spec }, opts };
  };
}
