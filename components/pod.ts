/**
 * A mesh pod's parts: the Envoy sidecar container, the app container the mesh builds, the pod's
 * hardened base (ServiceAccount, security context, identity and config volumes, spreading) and
 * the app-only pod template, as an owner would declare it. Pure functions over plain values; the
 * injector (injector.ts) puts them together.
 */
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
  DEFAULT_CONTAINER_ANNOTATION,
  EXPOSED_PATHS,
  selectorLabels,
  MESH_VOLUMES,
  objectNames,
  OUTBOUND_URL_ENV,
  SCRAPE_ANNOTATION_PREFIX,
  SIDECAR_PATHS,
} from "./names";
import { CertificateIssuer, identityVolume } from "./identity";
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
export function meshEnv(
  service: ServiceModel,
  envoy: EnvoySettings,
): { name: string; value: string }[] {
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
