/**
 * One mesh service in Kubernetes: its identity (ServiceAccount, TLS Secret), its sidecar config
 * (ConfigMap), the pods (Deployment: app + Envoy) and the Service other sidecars dial.
 *
 * The specs are built by pure functions from plain values so they can be tested and validated
 * without Pulumi; the component only wires them to resources.
 */
import { createHash } from "node:crypto";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import {
  BuiltServiceModel,
  EnvoySettings,
  quantityValue,
  ServiceModel,
  WorkloadKind,
} from "./config";
import { bootstrapPath, hasOutboundListener, SidecarPaths } from "./envoy";
import {
  APP_TMP_PATH,
  commonLabels,
  DEFAULT_CONTAINER_ANNOTATION,
  podMeshLabels,
  podSelectorLabels,
  EXPOSED_PATHS,
  selectorLabels,
  MESH_VOLUMES,
  objectNames,
  OUTBOUND_URL_ENV,
  SCRAPE_ANNOTATION_PREFIX,
  SIDECAR_PATHS,
} from "./names";
import {
  CertManagerCertificate,
  CertificateIssuer,
  IdentitySource,
  identityVolume,
  LeafCertificateState,
  workloadIdentity,
} from "./identity";
import { appPreStop, envoyPreStop, ShutdownPlan, shutdownPlan } from "./shutdown";

/** UID/GID of the `envoy` user in the official Envoy image. */
export const ENVOY_UID = 101;

/**
 * Container port names, for people and probes. Services target ports by number: before 1.32 a
 * named targetPort is not looked up on sidecar (init) containers (kubernetes#127958).
 */
export const PORT_NAMES = {
  app: "http",
  inbound: "mtls",
  health: "envoy-health",
  metrics: "envoy-metrics",
} as const;

/** sha256 of the Envoy files, key by key. */
export function envoyConfigChecksum(files: Record<string, string>): string {
  const hash = createHash("sha256");
  for (const key of Object.keys(files).sort())
    hash.update(key).update("\0").update(files[key]).update("\0");
  return hash.digest("hex");
}

/**
 * `<service>-envoy-<hash>`: one immutable ConfigMap per Envoy config version, as kustomize's
 * configMapGenerator names them. A new version is a new object, created before the Deployment
 * moves to it; pods of the old ReplicaSet keep reading the old one until it is deleted.
 */
export function envoyConfigMapName(service: string, files: Record<string, string>): string {
  return `${objectNames(service).configMapPrefix}${envoyConfigChecksum(files).slice(0, 10)}`;
}

/** Worker threads: the sidecar's CPU limit rounded up to whole cores, at least one. */
export function envoyConcurrency(envoy: EnvoySettings): number {
  return Math.max(1, Math.ceil(quantityValue(envoy.resources.limits.cpu)));
}

/** The outbound URL the app calls to reach its dependencies through Envoy. */
export function outboundUrl(envoy: EnvoySettings): string {
  return `http://127.0.0.1:${envoy.ports.outbound}`;
}

export function hardenedContainer(
  uid: number,
): pulumi.Unwrap<k8s.types.input.core.v1.SecurityContext> {
  return {
    runAsNonRoot: true,
    runAsUser: uid,
    runAsGroup: uid,
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
    privileged: false,
    capabilities: { drop: ["ALL"] },
    seccompProfile: { type: "RuntimeDefault" },
  };
}

/** The Envoy sidecar container. */
export function envoyContainer(service: ServiceModel, envoy: EnvoySettings): PlainContainer {
  return envoyContainerOf(service.name, envoy, shutdownPlan(service, envoy), SIDECAR_PATHS, {
    name: PORT_NAMES.inbound,
    containerPort: envoy.ports.inbound,
  });
}

/**
 * An Envoy container as sidecar and gateway run it: its TLS listener's port, health and metrics
 * ports, and the config and certificate mounts at `paths`.
 */
export function envoyContainerOf(
  node: string,
  envoy: EnvoySettings,
  stop: ShutdownPlan,
  paths: SidecarPaths,
  listener: { name: string; containerPort: number },
): PlainContainer & { volumeMounts: pulumi.Unwrap<k8s.types.input.core.v1.VolumeMount>[] } {
  return {
    name: SIDECAR_CONTAINER,
    image: envoy.image,
    // Bypass the image's entrypoint script, which only matters when starting as root.
    command: ["envoy"],
    args: [
      "--config-path",
      bootstrapPath(paths),
      "--log-level",
      envoy.logLevel,
      "--service-node",
      node,
      "--service-cluster",
      node,
      // Hot restart needs shared memory and a writable /dev/shm; Kubernetes restarts pods instead.
      "--disable-hot-restart",
      // The preStop hook's graceful drain lasts this long; gradual (Envoy's default, stated)
      // asks a rising share of connections to close, so callers do not all reconnect at once.
      "--drain-time-s",
      String(stop.envoy.drainSeconds),
      "--drain-strategy",
      "gradual",
      // Envoy starts a worker per host hardware thread, ignoring the CPU limit (before 1.37):
      // dozens of threads throttled into a fraction of a core. One per limit core instead.
      "--concurrency",
      String(envoyConcurrency(envoy)),
    ],
    readinessProbe: {
      httpGet: { path: EXPOSED_PATHS.health, port: PORT_NAMES.health },
      periodSeconds: 5,
      failureThreshold: 3,
    },
    resources: { requests: { ...envoy.resources.requests }, limits: { ...envoy.resources.limits } },
    ports: [
      { ...listener, protocol: "TCP" },
      { name: PORT_NAMES.health, containerPort: envoy.ports.health, protocol: "TCP" },
      { name: PORT_NAMES.metrics, containerPort: envoy.ports.metrics, protocol: "TCP" },
    ],
    lifecycle: { preStop: envoyPreStop(stop) },
    securityContext: hardenedContainer(ENVOY_UID),
    volumeMounts: [
      { name: MESH_VOLUMES.config, mountPath: paths.configDir, readOnly: true },
      { name: MESH_VOLUMES.certs, mountPath: paths.certDir, readOnly: true },
    ],
  };
}

/**
 * Envoy as a native sidecar (Kubernetes >= 1.29): an init container that keeps running. Its
 * startup probe holds back the app until Envoy is ready, and it is stopped after the app.
 */
export function nativeSidecar(container: PlainContainer): PlainContainer {
  return {
    ...container,
    restartPolicy: "Always",
    startupProbe: {
      httpGet: { path: EXPOSED_PATHS.health, port: PORT_NAMES.health },
      periodSeconds: 1,
      failureThreshold: 60,
    },
  };
}

/** A probe from the stack config, in the Kubernetes shape it already has. */
function probeOf(
  probe: BuiltServiceModel["probes"]["readiness"],
): pulumi.Unwrap<k8s.types.input.core.v1.Probe> | undefined {
  return probe ? structuredClone(probe) : undefined;
}

/** What the mesh tells an app: where its outbound listener and tcp egress listeners are. */
function meshEnv(service: ServiceModel, envoy: EnvoySettings): { name: string; value: string }[] {
  return [
    ...(hasOutboundListener(service)
      ? [{ name: OUTBOUND_URL_ENV, value: outboundUrl(envoy) }]
      : []),
    ...service.egress.flatMap((e) =>
      e.local ? [{ name: e.local.env, value: `127.0.0.1:${e.local.port}` }] : [],
    ),
  ];
}

/** The application container as the mesh builds it for a service it owns (without mesh env). */
export function appContainer(
  service: BuiltServiceModel,
  envoy: EnvoySettings,
  kubernetesMinor: number,
): PlainContainer {
  const env = structuredClone(service.env);
  return {
    name: "app",
    image: service.image,
    ...(service.command ? { command: [...service.command] } : {}),
    ...(service.args ? { args: [...service.args] } : {}),
    ports: [{ name: PORT_NAMES.app, containerPort: service.port, protocol: "TCP" }],
    env,
    ...(service.envFrom.length > 0 ? { envFrom: structuredClone(service.envFrom) } : {}),
    readinessProbe: probeOf(service.probes.readiness) ?? {
      tcpSocket: { port: PORT_NAMES.app },
      periodSeconds: 5,
    },
    ...(service.probes.liveness ? { livenessProbe: probeOf(service.probes.liveness) } : {}),
    ...(service.probes.startup ? { startupProbe: probeOf(service.probes.startup) } : {}),
    resources: {
      requests: { ...service.resources.requests },
      limits: { ...service.resources.limits },
    },
    lifecycle: { preStop: appPreStop(shutdownPlan(service, envoy), kubernetesMinor) },
    securityContext: hardenedContainer(service.runAsUser),
    volumeMounts: [
      // A read-only root filesystem still needs somewhere to write temporary files.
      { name: MESH_VOLUMES.tmp, mountPath: APP_TMP_PATH },
      ...service.volumes.map((v) => ({
        name: v.name,
        mountPath: v.mountPath,
        ...(v.readOnly !== undefined ? { readOnly: v.readOnly } : {}),
      })),
    ],
  };
}

/** The pod volume of an app volume from the stack config. */
function appVolumeSource(v: BuiltServiceModel["volumes"][number]): PlainVolume {
  if (v.emptyDir) return { name: v.name, emptyDir: { ...v.emptyDir } };
  if (v.secret) return { name: v.name, secret: structuredClone(v.secret) };
  // The config schema guarantees exactly one source.
  return { name: v.name, configMap: structuredClone(v.configMap) };
}

/** More than one pod at some point: spread them, and keep some up through voluntary disruptions. */
export function isReplicated(service: BuiltServiceModel): boolean {
  return service.replicas > 1 || (service.autoscaling?.maxReplicas ?? 1) > 1;
}

/**
 * Spread replicas over nodes and zones, preferring but never requiring it (ScheduleAnyway), so
 * a small cluster still schedules them; per revision (a Deployment's pod-template-hash, a
 * StatefulSet's controller-revision-hash), so a rollout's new pods spread among themselves.
 */
export function topologySpread(
  service: string,
  kind: WorkloadKind = "Deployment",
): pulumi.Unwrap<k8s.types.input.core.v1.TopologySpreadConstraint>[] {
  return ["kubernetes.io/hostname", "topology.kubernetes.io/zone"].map((topologyKey) => ({
    maxSkew: 1,
    topologyKey,
    whenUnsatisfiable: "ScheduleAnyway",
    labelSelector: { matchLabels: selectorLabels(service) },
    matchLabelKeys: [kind === "Deployment" ? "pod-template-hash" : "controller-revision-hash"],
  }));
}

/**
 * What a pod takes from the mesh besides the service: its Envoy files' ConfigMap, who writes its
 * identity, and whether it advertises scraping.
 */
export interface EnvoyConfigSource {
  configMapName: string;
  /** Who writes the identity Secret (`certificates.issuer`); the program unless set. */
  issuer?: CertificateIssuer;
  /** `prometheus.io/*` annotations (observability.metrics.discovery `annotations`). */
  scrapeAnnotations?: boolean;
}

/** What every mesh pod's spec has, and the volumes it starts with. */
export interface MeshPodSpecArgs {
  /** The workload's name: its ServiceAccount and `<name>-tls` Secret. */
  workload: string;
  /**
   * Group owning the Secret files (mode 0440), so the containers that need them can read them;
   * none for an adopted pod, whose security context is its owner's.
   */
  fsGroup?: number;
  terminationGracePeriodSeconds: number;
  imagePullSecrets: string[];
  replicated: boolean;
  /** The workload kind, for spreading per revision. */
  kind?: WorkloadKind;
  configMapName: string;
  issuer?: CertificateIssuer;
  /** Mode of the identity files: 0440 for the pod's fsGroup, or 0444 where the pod sets none. */
  certsMode?: number;
}

/**
 * The hardened base of every mesh pod: its own ServiceAccount without an API token, no Service
 * environment variables, non-root with seccomp, spread when replicated, and the Envoy ConfigMap
 * and identity Secret volumes.
 */
export function meshPodSpec(
  args: MeshPodSpecArgs,
): pulumi.Unwrap<k8s.types.input.core.v1.PodSpec> & {
  volumes: PlainVolume[];
} {
  const names = objectNames(args.workload);
  return {
    serviceAccountName: names.serviceAccount,
    automountServiceAccountToken: false,
    enableServiceLinks: false,
    securityContext: {
      runAsNonRoot: true,
      ...(args.fsGroup !== undefined ? { fsGroup: args.fsGroup } : {}),
      seccompProfile: { type: "RuntimeDefault" },
    },
    terminationGracePeriodSeconds: args.terminationGracePeriodSeconds,
    ...(args.imagePullSecrets.length > 0
      ? { imagePullSecrets: args.imagePullSecrets.map((name) => ({ name })) }
      : {}),
    ...(args.replicated
      ? { topologySpreadConstraints: topologySpread(args.workload, args.kind) }
      : {}),
    containers: [],
    volumes: [
      { name: MESH_VOLUMES.config, configMap: { name: args.configMapName, defaultMode: 0o444 } },
      identityVolume(args.workload, args.issuer ?? "pulumi", args.certsMode),
    ],
  };
}

/**
 * The Cluster Autoscaler does not remove a node running a pod with an emptyDir volume unless the
 * volume is listed here (with its default `--skip-nodes-with-local-storage`; cluster-autoscaler
 * FAQ, "What types of pods can prevent CA from removing a node?"). The app's `tmp` holds scratch
 * files only, so it is listed; emptyDirs the stack declares are listed only where the service's
 * own podAnnotations list them.
 */
export const SAFE_TO_EVICT_LOCAL_VOLUMES =
  "cluster-autoscaler.kubernetes.io/safe-to-evict-local-volumes";

function localVolumesSafeToEvict(service: BuiltServiceModel): string {
  const listed = (service.podAnnotations[SAFE_TO_EVICT_LOCAL_VOLUMES] ?? "")
    .split(",")
    .map((v) => v.trim())
    .filter((v) => v !== "");
  return [...new Set([MESH_VOLUMES.tmp, ...listed])].join(",");
}

/**
 * The pod template the mesh writes for a service it builds, as an owner would declare it without
 * the mesh: the app container, its scratch and stack volumes, labels, annotations, scheduling.
 */
export function appPodTemplate(
  service: BuiltServiceModel,
  envoy: EnvoySettings,
  kubernetesMinor: number,
): PodTemplate {
  return {
    metadata: {
      labels: { ...service.podLabels },
      annotations: {
        ...service.podAnnotations,
        [SAFE_TO_EVICT_LOCAL_VOLUMES]: localVolumesSafeToEvict(service),
        [DEFAULT_CONTAINER_ANNOTATION]: "app",
      },
    },
    spec: {
      ...(Object.keys(service.nodeSelector).length > 0
        ? { nodeSelector: { ...service.nodeSelector } }
        : {}),
      ...(service.tolerations.length > 0
        ? { tolerations: structuredClone(service.tolerations) }
        : {}),
      containers: [appContainer(service, envoy, kubernetesMinor)],
      volumes: [
        { name: MESH_VOLUMES.tmp, emptyDir: { sizeLimit: "64Mi" } },
        ...service.volumes.map(appVolumeSource),
      ],
    },
  };
}

/** A pod template as plain data (Kubernetes' input shape with every Input resolved). */
export type PodTemplate = pulumi.Unwrap<k8s.types.input.core.v1.PodTemplateSpec>;
export type PlainContainer = pulumi.Unwrap<k8s.types.input.core.v1.Container>;
type PlainVolume = pulumi.Unwrap<k8s.types.input.core.v1.Volume>;

/** The sidecar's container name (policy/rules.ts MESH.sidecarName checks it too). */
export const SIDECAR_CONTAINER = "envoy";

/**
 * `prometheus.io/*` on a mesh pod, where discovery is by annotations (the config then requires
 * envoy.scrapeFrom, which lets a scraper in).
 */
export function scrapeAnnotations(
  envoy: EnvoySettings,
  config: EnvoyConfigSource,
): Record<string, string> {
  return config.scrapeAnnotations
    ? {
        [`${SCRAPE_ANNOTATION_PREFIX}scrape`]: "true",
        [`${SCRAPE_ANNOTATION_PREFIX}port`]: String(envoy.ports.metrics),
        [`${SCRAPE_ANNOTATION_PREFIX}path`]: EXPOSED_PATHS.metrics,
      }
    : {};
}

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

/** Pod template of a service the mesh builds: its app pod template with the mesh injected. */
export function podTemplate(
  service: BuiltServiceModel,
  envoy: EnvoySettings,
  config: EnvoyConfigSource,
  kubernetesMinor: number,
): k8s.types.input.core.v1.PodTemplateSpec {
  return injectMesh(appPodTemplate(service, envoy, kubernetesMinor), {
    service,
    envoy,
    config,
  });
}

/** Deployment spec of a service; without `replicas` when an HPA owns the count. */
export function deploymentSpec(
  service: BuiltServiceModel,
  envoy: EnvoySettings,
  config: EnvoyConfigSource,
  kubernetesMinor: number,
): k8s.types.input.apps.v1.DeploymentSpec {
  return {
    ...(service.autoscaling ? {} : { replicas: service.replicas }),
    selector: { matchLabels: selectorLabels(service.name) },
    // Never drop below the desired count while rolling: a new pod must be ready first.
    strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
    template: podTemplate(service, envoy, config, kubernetesMinor),
  };
}

/**
 * StatefulSet spec of a service the mesh builds as one: stable pod names and DNS records under
 * its headless Service (`<name>-pods`, which callers' sidecars already resolve). Pods start and
 * stop in parallel (a mesh service needs no ordinal order, and OrderedReady would serialise
 * every rollout and scale-up); a rollout replaces one pod at a time, highest ordinal first.
 */
export function statefulSetSpec(
  service: BuiltServiceModel,
  envoy: EnvoySettings,
  config: EnvoyConfigSource,
  kubernetesMinor: number,
): k8s.types.input.apps.v1.StatefulSetSpec {
  return {
    ...(service.autoscaling ? {} : { replicas: service.replicas }),
    serviceName: objectNames(service.name).podsService,
    podManagementPolicy: "Parallel",
    selector: { matchLabels: selectorLabels(service.name) },
    updateStrategy: { type: "RollingUpdate" },
    template: podTemplate(service, envoy, config, kubernetesMinor),
  };
}

/**
 * Service spec: the mTLS port always; the app port only when the stack exposes it. Target ports
 * are numbers: a name declared only on the native sidecar (an init container) resolves to no
 * endpoint before Kubernetes 1.32 (kubernetes#127958), and stays unreliable after it
 * (kubernetes#134651 for LoadBalancer Services, projectcalico/calico#8881 for policies).
 */
export function serviceSpec(
  service: ServiceModel,
  envoy: EnvoySettings,
): k8s.types.input.core.v1.ServiceSpec {
  const ports = [mtlsServicePort(envoy)];
  if (service.exposeDirectPort) {
    ports.push({
      name: PORT_NAMES.app,
      port: service.port,
      targetPort: service.port,
      protocol: "TCP",
    });
  }
  return { type: "ClusterIP", selector: podSelectorLabels(service), ports };
}

/** The mTLS port of a Service, `port` (the sidecar's inbound port by default) to that port. */
function mtlsServicePort(
  envoy: EnvoySettings,
  port = envoy.ports.inbound,
): k8s.types.input.core.v1.ServicePort {
  return { name: PORT_NAMES.inbound, port, targetPort: envoy.ports.inbound, protocol: "TCP" };
}

/**
 * The headless Service callers' sidecars resolve: one DNS record per ready pod, so Envoy balances
 * per request and can eject a bad pod (through the ClusterIP Service Envoy would see one host).
 */
export function podsServiceSpec(
  service: ServiceModel,
  envoy: EnvoySettings,
): k8s.types.input.core.v1.ServiceSpec {
  return {
    clusterIP: "None",
    selector: podSelectorLabels(service),
    ports: [mtlsServicePort(envoy)],
  };
}

/**
 * The Service that publishes a service's mTLS port outside the cluster (`expose`), beside the
 * in-mesh one, which stays ClusterIP. `externalTrafficPolicy: Local` keeps the client's address
 * (kube-proxy would otherwise SNAT it to a node's), so the NetworkPolicy's ipBlocks see who
 * connects; the load balancer's own sourceRanges filter where the cloud supports them.
 */
export function externalServiceSpec(
  service: ServiceModel,
  envoy: EnvoySettings,
  expose: NonNullable<ServiceModel["expose"]>,
): k8s.types.input.core.v1.ServiceSpec {
  const port: k8s.types.input.core.v1.ServicePort = {
    ...mtlsServicePort(envoy, expose.type === "LoadBalancer" ? expose.port : undefined),
    ...(expose.type === "NodePort" && expose.port !== undefined ? { nodePort: expose.port } : {}),
  };
  return {
    type: expose.type,
    selector: podSelectorLabels(service),
    ports: [port],
    externalTrafficPolicy: "Local",
    ...(expose.type === "LoadBalancer" && expose.sourceRanges
      ? { loadBalancerSourceRanges: [...expose.sourceRanges] }
      : {}),
  };
}

/** pulumi-kubernetes skips its readiness wait for an object with this annotation (#417). */
export const SKIP_AWAIT_ANNOTATION = "pulumi.com/skipAwait";

/**
 * The annotations and resource options of a Service published outside the cluster: its own
 * annotations, and how long `pulumi up` waits for it (`waitForAddress`). pulumi-kubernetes waits
 * up to 10 minutes for a LoadBalancer's address; `customTimeouts` bound that wait (#672) and the
 * skipAwait annotation drops it.
 */
export function publishedServiceWait(published: {
  annotations?: Record<string, string>;
  waitForAddress: boolean | string;
}): { annotations?: Record<string, string>; customTimeouts?: pulumi.CustomTimeouts } {
  const wait = published.waitForAddress;
  const annotations = {
    ...published.annotations,
    ...(wait === false ? { [SKIP_AWAIT_ANNOTATION]: "true" } : {}),
  };
  return {
    ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
    ...(typeof wait === "string" ? { customTimeouts: { create: wait, update: wait } } : {}),
  };
}

/**
 * At most one pod of a replicated service down for a voluntary disruption (a node drain); pods
 * that are not ready anyway may always be evicted, so a crash-looping pod cannot block a drain.
 */
export function podDisruptionBudgetSpec(
  service: Pick<ServiceModel, "name">,
): k8s.types.input.policy.v1.PodDisruptionBudgetSpec {
  return {
    maxUnavailable: 1,
    selector: { matchLabels: selectorLabels(service.name) },
    unhealthyPodEvictionPolicy: "AlwaysAllow",
  };
}

/** Scales the workload on CPU use (relative to requests, which every container sets). */
export function autoscalerSpec(
  service: BuiltServiceModel,
  autoscaling: NonNullable<BuiltServiceModel["autoscaling"]>,
): k8s.types.input.autoscaling.v2.HorizontalPodAutoscalerSpec {
  return {
    scaleTargetRef: { apiVersion: "apps/v1", ...service.workload },
    minReplicas: autoscaling.minReplicas,
    maxReplicas: autoscaling.maxReplicas,
    metrics: [
      {
        type: "Resource",
        resource: {
          name: "cpu",
          target: { type: "Utilization", averageUtilization: autoscaling.targetCPUUtilization },
        },
      },
    ],
  };
}

/**
 * One Envoy config version as an immutable ConfigMap. A new name per version, so a replacement is
 * create-before-delete (no deleteBeforeReplace). Pulumi never deletes a version (retainOnDelete):
 * after a failed rollout the engine would delete the old one at the start of the next update,
 * under the ReplicaSet still serving, and `kubectl rollout undo` needs it too. Kubernetes deletes
 * every version with the ServiceAccount that owns them (`owner`; none when rendered, where there
 * are no UIDs), i.e. when the workload leaves the stack.
 */
export function versionedConfigMap(
  resourceName: string,
  metadata: { name: string; namespace: pulumi.Input<string>; labels: Record<string, string> },
  files: Record<string, string>,
  owner: k8s.core.v1.ServiceAccount | undefined,
  parent: pulumi.Resource,
  provider: pulumi.ProviderResource | undefined,
  after: pulumi.Resource[] = [],
): k8s.core.v1.ConfigMap {
  return new k8s.core.v1.ConfigMap(
    resourceName,
    {
      metadata: {
        ...metadata,
        ...(owner
          ? {
              ownerReferences: [
                {
                  apiVersion: "v1",
                  kind: "ServiceAccount",
                  name: owner.metadata.name,
                  uid: owner.metadata.uid,
                },
              ],
            }
          : {}),
      },
      immutable: true,
      data: files,
    },
    // A rolled-back version is created again while it still exists: only this provider upserts.
    { parent, retainOnDelete: true, dependsOn: after, ...(provider ? { provider } : {}) },
  );
}

export interface MeshServiceArgs {
  /** The service, from the validated mesh model. */
  service: ServiceModel;
  /** Namespace of every object; pass the Namespace resource's name so it is created first. */
  namespace: pulumi.Input<string>;
  /** Sidecar settings. */
  envoy: EnvoySettings;
  /** Minor version of the oldest Kubernetes the stack targets (version-dependent choices). */
  kubernetesMinor: number;
  /** ConfigMap data: the Envoy files from the pure builders (no secrets). */
  envoyFiles: Record<string, string>;
  /** Its certificate, key and trust bundle: a Secret from the program, or a cert-manager Certificate. */
  identity: IdentitySource;
  /** Objects are rendered to YAML, not created: there are no UIDs to refer to. */
  rendered?: boolean;
  /** Its pods advertise scraping with `prometheus.io/*` annotations. */
  scrapeAnnotations: boolean;
  /** Provider of the Envoy ConfigMap versions (provider.ts: it upserts, for rollbacks). */
  envoyConfigProvider?: pulumi.ProviderResource;
  /** What every object is created after (the stack's claim on the namespace). */
  after?: pulumi.Resource[];
  /**
   * What the pods wait for besides their own objects: the NetworkPolicies that select them (no
   * pod runs unisolated) and the workloads of the services it calls (their pods admit it before
   * its own pods may call).
   */
  rolloutAfter?: pulumi.Resource[];
}

/** On an adopted service's ServiceAccount: the workload it adopts (`<kind>/<name>`), for policies. */
export const ADOPTED_WORKLOAD_ANNOTATION = "bookapi-mesh/workload";

/**
 * A mesh service: ServiceAccount, TLS Secret (or cert-manager Certificate), Envoy ConfigMap,
 * Services, and its workload (a Deployment or StatefulSet), plus a PodDisruptionBudget when
 * replicated and an HPA when autoscaled. An adopted service (`workload`) gets all but the workload
 * and what belongs to it: its owner declares the pods, into which the sidecar is injected
 * (`injection`, docs/injection.md).
 *
 * What a change does on a live cluster (docs/operations.md has the table): a certificate renewal
 * updates the Secret in place (the provider needs `enableSecretMutable`, see provider.ts) and
 * Envoy reloads it through SDS, no pod restarts; an Envoy config change creates a new immutable
 * ConfigMap and rolls the workload onto it; old versions stay for the old ReplicaSets.
 */
export class MeshService extends pulumi.ComponentResource {
  public readonly serviceAccount: k8s.core.v1.ServiceAccount;
  /** Its identity Secret, when the program writes it (`certificates.issuer: pulumi`). */
  public readonly secret?: k8s.core.v1.Secret;
  /** Its cert-manager Certificate (`certificates.issuer: cert-manager`). */
  public readonly certificate?: CertManagerCertificate;
  /** Its certificate as the stack's `certificates` output shows it. */
  public readonly certificateState: pulumi.Output<LeafCertificateState>;
  public readonly configMap: k8s.core.v1.ConfigMap;
  /** The workload the mesh builds; none for an adopted service. */
  public readonly workload?: k8s.apps.v1.Deployment | k8s.apps.v1.StatefulSet;
  public readonly service: k8s.core.v1.Service;
  /** Headless: resolves to the ready pods, for callers' sidecars. */
  public readonly podsService: k8s.core.v1.Service;
  /** Publishes the mTLS port outside the cluster, with `expose`. */
  public readonly externalService?: k8s.core.v1.Service;
  public readonly podDisruptionBudget?: k8s.policy.v1.PodDisruptionBudget;
  public readonly autoscaler?: k8s.autoscaling.v2.HorizontalPodAutoscaler;
  /** What the sidecar injector adds to this service's pods, and what they need first. */
  public readonly injection: MeshInjection;
  /** Objects the pods mount or are isolated by, which must exist before they start. */
  public readonly podsNeed: pulumi.Resource[];
  public readonly workloadName: pulumi.Output<string>;
  public readonly serviceName: pulumi.Output<string>;
  /** `<fqdn>:<inbound>`: where other sidecars reach this service. */
  public readonly mtlsEndpoint: pulumi.Output<string>;

  constructor(name: string, args: MeshServiceArgs, opts?: pulumi.ComponentResourceOptions) {
    super("bookapi-mesh:workload:MeshService", name, {}, opts);
    const svc = args.service;
    const names = objectNames(svc.name);
    const labels = commonLabels(svc.name);
    const meta = (objectName: string) => ({ name: objectName, namespace: args.namespace, labels });
    // Fixed names: a replacement must delete the old object before creating its successor.
    const after = args.after ?? [];
    const childOpts = { parent: this, deleteBeforeReplace: true, dependsOn: after };

    this.serviceAccount = new k8s.core.v1.ServiceAccount(
      `${name}-sa`,
      {
        metadata: {
          ...meta(names.serviceAccount),
          ...(svc.adopted
            ? {
                annotations: {
                  [ADOPTED_WORKLOAD_ANNOTATION]: `${svc.workload.kind}/${svc.workload.name}`,
                },
              }
            : {}),
        },
        automountServiceAccountToken: false,
      },
      childOpts,
    );
    const identity = workloadIdentity(name, svc.name, meta, args.identity, childOpts);
    if (identity.issuer === "pulumi") this.secret = identity.secret;
    else this.certificate = identity.certificate;
    this.certificateState = identity.state;
    const configMapName = envoyConfigMapName(svc.name, args.envoyFiles);
    this.configMap = versionedConfigMap(
      `${name}-envoy`,
      meta(configMapName),
      args.envoyFiles,
      args.rendered ? undefined : this.serviceAccount,
      this,
      args.envoyConfigProvider,
      after,
    );
    this.injection = {
      service: svc,
      envoy: args.envoy,
      config: {
        configMapName,
        issuer: args.identity.issuer,
        scrapeAnnotations: args.scrapeAnnotations,
      },
    };
    this.podsNeed = [
      ...after,
      this.serviceAccount,
      ...identity.podsNeed,
      this.configMap,
      ...(args.rolloutAfter ?? []),
    ];
    if (!svc.adopted) {
      const spec = { svc, envoy: args.envoy, config: this.injection.config };
      const workloadOpts = { ...childOpts, dependsOn: this.podsNeed };
      this.workload =
        svc.workload.kind === "Deployment"
          ? new k8s.apps.v1.Deployment(
              `${name}-deployment`,
              {
                metadata: meta(names.deployment),
                spec: deploymentSpec(svc, spec.envoy, spec.config, args.kubernetesMinor),
              },
              workloadOpts,
            )
          : new k8s.apps.v1.StatefulSet(
              `${name}-statefulset`,
              {
                metadata: meta(names.deployment),
                spec: statefulSetSpec(svc, spec.envoy, spec.config, args.kubernetesMinor),
              },
              workloadOpts,
            );
    }
    this.service = new k8s.core.v1.Service(
      `${name}-service`,
      { metadata: meta(names.service), spec: serviceSpec(svc, args.envoy) },
      childOpts,
    );
    this.podsService = new k8s.core.v1.Service(
      `${name}-pods`,
      { metadata: meta(names.podsService), spec: podsServiceSpec(svc, args.envoy) },
      childOpts,
    );
    if (svc.expose) {
      const { annotations, customTimeouts } = publishedServiceWait(svc.expose);
      this.externalService = new k8s.core.v1.Service(
        `${name}-ext`,
        {
          metadata: { ...meta(names.externalService), ...(annotations ? { annotations } : {}) },
          spec: externalServiceSpec(svc, args.envoy, svc.expose),
        },
        { ...childOpts, ...(customTimeouts ? { customTimeouts } : {}) },
      );
    }
    if (!svc.adopted && isReplicated(svc)) {
      this.podDisruptionBudget = new k8s.policy.v1.PodDisruptionBudget(
        `${name}-pdb`,
        { metadata: meta(names.podDisruptionBudget), spec: podDisruptionBudgetSpec(svc) },
        childOpts,
      );
    }
    if (!svc.adopted && svc.autoscaling) {
      this.autoscaler = new k8s.autoscaling.v2.HorizontalPodAutoscaler(
        `${name}-hpa`,
        { metadata: meta(names.autoscaler), spec: autoscalerSpec(svc, svc.autoscaling) },
        { ...childOpts, dependsOn: this.workload ? [this.workload] : [] },
      );
    }

    this.workloadName = this.workload
      ? this.workload.metadata.name
      : pulumi.output(svc.workload.name);
    this.serviceName = this.service.metadata.name;
    this.mtlsEndpoint = pulumi.output(`${svc.fqdn}:${args.envoy.ports.inbound}`);
    this.registerOutputs({
      workloadName: this.workloadName,
      serviceName: this.serviceName,
      mtlsEndpoint: this.mtlsEndpoint,
    });
  }
}
