/**
 * The stack config's schema, key by key (docs/configuration.md): the whole mesh, Envoy, services,
 * clients and the network here, and the raw types it yields; the larger keys beside it
 * (certificates.ts, traffic.ts with egress, gateway.ts, observability.ts).
 */
import { z } from "zod";
import { PODS_SERVICE_SUFFIX } from "../../names";
import {
  DNS_1035_LABEL,
  DNS_1123_LABEL,
  DNS_1123_SUBDOMAIN,
  KUBERNETES_FEATURES,
  kubernetesVersion,
  port,
  image,
  resourcePair,
  labelSelector,
  peerSelector,
  positiveCount,
  objectName,
  envVar,
  envFromSource,
  seconds,
  probe,
  appVolume,
  labelMap,
  annotationMap,
  toleration,
  autoscalingSchema,
  cidr,
  publishedServiceFields,
} from "../fields";
import { certificatesSchema } from "./certificates";
import { gatewaySchema } from "./gateway";
import { observabilitySchema } from "./observability";
import { egressSchema, trafficSchema } from "./traffic";

export { DEFAULT_CA_GENERATION, RawKey } from "./certificates";
export { JwtSettings, pathPrefix, scope } from "./gateway";
export {
  DEFAULT_ROUTE_TIMEOUT,
  DEFAULT_TRAFFIC_POLICY,
  EgressTarget,
  STREAMING_IDLE_TIMEOUT,
  TrafficPolicy,
} from "./traffic";

const envoySchema = z.strictObject({
  /** Envoy image, pinned. */
  image: image.default("envoyproxy/envoy:v1.36.2"),
  /** Envoy's --log-level. */
  logLevel: z
    .enum(["trace", "debug", "info", "warning", "error", "critical", "off"])
    .default("info"),
  ports: z
    .strictObject({
      inbound: port.default(15001),
      outbound: port.default(15006),
      admin: port.default(9901),
      health: port.default(15021),
      metrics: port.default(15090),
    })
    .prefault({}),
  resources: z
    .strictObject({
      requests: resourcePair.default({ cpu: "50m", memory: "64Mi" }),
      limits: resourcePair.default({ cpu: "500m", memory: "256Mi" }),
    })
    .prefault({}),
  /** Who may reach the health and metrics ports (the monitoring stack). Defaults to nobody. */
  scrapeFrom: z.array(peerSelector, { error: "must be a list of selectors" }).default([]),
  /**
   * native: Envoy is an init container with restartPolicy Always, so it is ready before the app
   * starts and gets SIGTERM only after the app has exited; container: a plain second container.
   * Defaults to native where kubernetesVersion has native sidecars, container otherwise.
   */
  sidecarMode: z.enum(["native", "container"], { error: "must be native or container" }).optional(),
  /**
   * Seconds of Envoy's graceful inbound drain at shutdown: callers are told to reconnect
   * (`Connection: close`, HTTP/2 GOAWAY) on a rising share of responses, all of them by the end.
   */
  drainSeconds: z
    .number({ error: "must be a number of seconds" })
    .int("must be whole seconds")
    .min(1, "must be between 1 and 300")
    .max(300, "must be between 1 and 300")
    .default(5),
  /** JSON access log lines on stdout for inbound and outbound requests. */
  accessLog: z.boolean({ error: "must be true or false" }).default(true),
  /** Cap on connections a sidecar accepts in all (Envoy's overload manager). */
  maxConnections: positiveCount.default(10000),
  /**
   * Where the listeners other pods and the kubelet reach are bound: `::` serves IPv4, IPv6 and
   * dual-stack pods on one socket; `0.0.0.0` only for nodes booted without IPv6 (ipv6.disable=1).
   */
  bindAddress: z.enum(["::", "0.0.0.0"], { error: 'must be "::" or "0.0.0.0"' }).default("::"),
  /** First loopback port of the `tcp` egress listeners, one port per entry in name order. */
  egressPortBase: port.default(15100),
});

export const serviceName = z
  .string({ error: "is required" })
  .max(
    63 - PODS_SERVICE_SUFFIX.length,
    `must be at most ${63 - PODS_SERVICE_SUFFIX.length} characters (its headless Service "<name>${PODS_SERVICE_SUFFIX}" is a DNS label of at most 63)`,
  )
  .regex(
    DNS_1035_LABEL,
    "must be a DNS label: lowercase letters, digits and '-', starting with a letter",
  );

const workloadKind = z.enum(["Deployment", "StatefulSet"], {
  error: "must be Deployment or StatefulSet",
});

const HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;

/** A call with L7 limits: only these methods and paths (`/a` exact, `/a/*` prefix). */
const callSchema = z.strictObject({
  service: z.string({ error: "must name a service" }),
  methods: z
    .array(z.enum(HTTP_METHODS, { error: `must be one of ${HTTP_METHODS.join(", ")}` }))
    .min(1, "must list at least one method (omit it to allow all)")
    .optional(),
  paths: z
    .array(
      z.string().regex(/^\/[^*?#\s]*(\*)?$/, "must start with / and may end with * (prefix match)"),
    )
    .min(1, "must list at least one path (omit it to allow all)")
    .optional(),
});

/** `calls: [bookapi]` is shorthand for `calls: [{ service: bookapi }]`. */
const callsSchema = z.array(
  z.preprocess((call) => (typeof call === "string" ? { service: call } : call), callSchema),
  { error: "must be a list of service names" },
);

/**
 * Publishes a service's mTLS port outside the cluster through a Service of its own, so the in-mesh
 * Service is untouched. Callers still need a mesh certificate on the allow-list (`clients`).
 */
const exposeSchema = z.strictObject({
  type: z.enum(["LoadBalancer", "NodePort"], { error: "must be LoadBalancer or NodePort" }),
  /** The published port (LoadBalancer) or node port (NodePort); the mTLS port when unset. */
  port: port.optional(),
  ...publishedServiceFields,
});
export type ExposeSettings = z.infer<typeof exposeSchema>;

/** Who may reach an exposed service: its sourceRanges, or every address when it names none. */
export function exposedSourceRanges(expose: ExposeSettings): string[] {
  return expose.sourceRanges ?? ["0.0.0.0/0", "::/0"];
}

/** A caller outside the mesh that holds a mesh certificate (a CLI, an agent, a job). */
const clientSchema = z.strictObject({
  name: z
    .string({ error: "is required" })
    .max(63, "must be at most 63 characters")
    .regex(DNS_1123_LABEL, "must be a DNS-1123 label (lowercase letters, digits, '-')"),
  calls: callsSchema.min(
    1,
    "must list at least one service (a client that calls nothing is no client)",
  ),
  /** Also write the client's certificate, key and the CA into this Secret, for in-cluster use. */
  secret: z
    .strictObject({
      namespace: z.string().regex(DNS_1123_LABEL, "must be a namespace name"),
      name: objectName.optional(),
    })
    .optional(),
});

const builtServiceSchema = z.strictObject({
  name: serviceName,
  image,
  port,
  /** Fixed replica count (default 1); not with `autoscaling`, which then owns it. */
  replicas: positiveCount.optional(),
  autoscaling: autoscalingSchema.optional(),
  /** Seconds the app keeps serving after its pod starts terminating, before its SIGTERM. */
  preStopSeconds: seconds(1).max(300, "must be at most 300").default(10),
  /** The pod's whole shutdown budget; defaults to preStopSeconds + 20. */
  terminationGracePeriodSeconds: seconds(1).max(3600, "must be at most 3600").optional(),
  env: z.array(envVar, { error: "must be a list of { name, value | valueFrom }" }).default([]),
  envFrom: z
    .array(envFromSource, { error: "must be a list of { secretRef | configMapRef }" })
    .default([]),
  imagePullSecrets: z.array(objectName, { error: "must be a list of Secret names" }).default([]),
  command: z.array(z.string(), { error: "must be a list of strings" }).optional(),
  args: z.array(z.string(), { error: "must be a list of strings" }).optional(),
  probes: z
    .strictObject({
      readiness: probe.optional(),
      liveness: probe.optional(),
      startup: probe.optional(),
    })
    .superRefine((probes, ctx) => {
      // Kubernetes rejects any other value for these two.
      for (const kind of ["liveness", "startup"] as const)
        if ((probes[kind]?.successThreshold ?? 1) !== 1)
          ctx.addIssue({
            code: "custom",
            path: [kind, "successThreshold"],
            message: "must be 1 for liveness and startup probes",
          });
    })
    .default({}),
  volumes: z.array(appVolume, { error: "must be a list of volumes" }).default([]),
  podLabels: labelMap.default({}),
  podAnnotations: annotationMap.default({}),
  nodeSelector: labelMap.default({}),
  tolerations: z.array(toleration, { error: "must be a list of tolerations" }).default([]),
  exposeDirectPort: z.boolean({ error: "must be true or false" }).default(false),
  calls: callsSchema.default([]),
  expose: exposeSchema.optional(),
  /** Who may reach the app port directly (bypassing Envoy). Defaults to nobody. */
  directPortAllowedFrom: z
    .array(peerSelector, { error: "must be a list of selectors" })
    .default([]),
  resources: z
    .strictObject({
      requests: resourcePair.default({ cpu: "100m", memory: "128Mi" }),
      limits: resourcePair.default({ cpu: "1", memory: "512Mi" }),
    })
    .prefault({}),
  /** A numeric UID, so the kubelet can enforce runAsNonRoot whatever USER the image names. */
  runAsUser: z
    .number({ error: "must be a numeric user id" })
    .int("must be a whole number")
    .min(1, "must not be 0 (root)")
    .default(10001),
  traffic: trafficSchema.prefault({}),
  egress: z
    .array(egressSchema, { error: "must be a list of { name, host, port, protocol }" })
    .default([]),
  /** The workload the mesh builds for it: a Deployment, or a StatefulSet (stable pod names). */
  kind: workloadKind.default("Deployment"),
  /** Only on an adopted service (it would make this one adopted). */
  workload: z
    .undefined({ error: "adopts a workload: then image and the pod's keys go" })
    .optional(),
});

/**
 * Keys of a service whose pods someone else declares (`workload`): what the pods run and how they
 * are scheduled is the owner's, and is refused here by name.
 */
export const OWNER_KEYS = [
  "image",
  "replicas",
  "autoscaling",
  "preStopSeconds",
  "env",
  "envFrom",
  "command",
  "args",
  "probes",
  "volumes",
  "podLabels",
  "podAnnotations",
  "nodeSelector",
  "tolerations",
  "resources",
  "runAsUser",
  "kind",
] as const;

const ownersKey = z
  .undefined({
    error: "belongs to the adopted workload's owner (services[].workload): set it there, not here",
  })
  .optional();

/**
 * A service whose pods another program, chart or manifest declares (a Deployment or StatefulSet
 * named here): the mesh gives it an identity, an Envoy config, Services and NetworkPolicies, and
 * its sidecar is injected (docs/injection.md).
 */
const adoptedServiceSchema = builtServiceSchema
  .omit({ ...Object.fromEntries(OWNER_KEYS.map((k) => [k, true])), workload: true } as Record<
    (typeof OWNER_KEYS)[number] | "workload",
    true
  >)
  .extend({
    workload: z.strictObject({ kind: workloadKind, name: objectName }),
    /** The pod's shutdown budget the sidecar's timeline is built for (Kubernetes' default). */
    terminationGracePeriodSeconds: seconds(1).max(3600, "must be at most 3600").default(30),
    ...(Object.fromEntries(OWNER_KEYS.map((k) => [k, ownersKey])) as Record<
      (typeof OWNER_KEYS)[number],
      typeof ownersKey
    >),
  });

/** A mesh-built service, or an adopted one (`workload`); preview tells which from `workload`. */
const serviceSchema = z.union([builtServiceSchema, adoptedServiceSchema]);

/** A NetworkPolicy peer: pods/namespaces by label, or an address block (e.g. NodeLocal DNSCache). */
const networkPeer = z
  .strictObject({
    namespaceSelector: labelSelector.optional(),
    podSelector: labelSelector.optional(),
    ipBlock: z.strictObject({ cidr, except: z.array(cidr).optional() }).optional(),
  })
  .superRefine((p, ctx) => {
    const selects = p.namespaceSelector !== undefined || p.podSelector !== undefined;
    if (selects === (p.ipBlock !== undefined))
      ctx.addIssue({
        code: "custom",
        message: "needs either an ipBlock or a namespaceSelector and/or podSelector",
      });
  });
export type NetworkPeer = z.infer<typeof networkPeer>;

/** Cluster DNS as kube-dns/CoreDNS is labelled in (nearly) every distribution. */
export const DEFAULT_DNS_PEERS: NetworkPeer[] = [
  {
    // `kubernetes.io/metadata.name` is set by the API server itself (>= 1.22): it cannot be forged.
    namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } },
    podSelector: { matchLabels: { "k8s-app": "kube-dns" } },
  },
];
export const DEFAULT_DNS_PORTS: { protocol: "UDP" | "TCP"; port: number }[] = [
  { protocol: "UDP", port: 53 },
  { protocol: "TCP", port: 53 },
];

const networkSchema = z.strictObject({
  dns: z
    .strictObject({
      peers: z
        .array(networkPeer, { error: "must be a list of peers" })
        .min(1, "must list at least one peer (pods could not resolve names)")
        .default(DEFAULT_DNS_PEERS),
      ports: z
        .array(
          z.strictObject({
            protocol: z.enum(["UDP", "TCP"], { error: "must be UDP or TCP" }),
            port,
          }),
        )
        .min(1, "must list at least one port")
        .default(DEFAULT_DNS_PORTS),
    })
    .prefault({}),
});

export const rawMeshSchema = z.strictObject({
  namespace: z
    .string()
    .max(63, "must be at most 63 characters")
    .regex(DNS_1123_LABEL, "must be a DNS-1123 label (lowercase letters, digits, '-')")
    .default("default"),
  createNamespace: z.boolean({ error: "must be true or false" }).optional(),
  /** The oldest Kubernetes version the stack's clusters run; drives version-dependent choices. */
  kubernetesVersion: kubernetesVersion.default(`1.${KUBERNETES_FEATURES.nativeSidecars}`),
  network: networkSchema.prefault({}),
  /** Secrets for pulling images, for every service (services add their own). */
  imagePullSecrets: z.array(objectName, { error: "must be a list of Secret names" }).default([]),
  /** Callers outside the mesh, each with a certificate from the mesh CA. */
  clients: z.array(clientSchema, { error: "must be a list of { name, calls }" }).default([]),
  clusterDomain: z
    .string()
    .max(253)
    .regex(DNS_1123_SUBDOMAIN, "must be a DNS domain such as cluster.local")
    .default("cluster.local"),
  envoy: envoySchema.prefault({}),
  certificates: certificatesSchema.prefault({}),
  observability: observabilitySchema,
  /** An ingress gateway in front of the mesh. */
  gateway: gatewaySchema.optional(),
  services: z
    .array(serviceSchema, { error: "is required: a list of services" })
    .min(1, "must list at least one service"),
  renderYamlToDirectory: z.string().min(1, "must be a folder path").optional(),
  /** Pod Security Standard enforced on the namespace the program creates. */
  podSecurity: z
    .enum(["restricted", "baseline", "privileged"], {
      error: "must be restricted, baseline or privileged",
    })
    .optional(),
});

export type RawMesh = z.infer<typeof rawMeshSchema>;
/** The mesh config as an object: the stack config's keys (docs/configuration.md), before defaults. */
export type MeshConfig = z.input<typeof rawMeshSchema>;
export type RawService = RawMesh["services"][number];
export type RawBuiltService = z.infer<typeof builtServiceSchema>;
export type RawAdoptedService = z.infer<typeof adoptedServiceSchema>;
export type WorkloadKind = z.infer<typeof workloadKind>;
export type RawGateway = NonNullable<RawMesh["gateway"]>;
/** Envoy settings with the sidecar mode resolved for the stack's Kubernetes version. */
export type EnvoySettings = Omit<RawMesh["envoy"], "sidecarMode"> & {
  sidecarMode: "native" | "container";
};
export type NetworkSettings = RawMesh["network"];
/** Observability settings, with the metrics discovery resolved. */
export type ObservabilitySettings = Omit<RawMesh["observability"], "metrics"> & {
  metrics: Omit<RawMesh["observability"]["metrics"], "discovery"> & {
    discovery: "podMonitor" | "annotations" | "none";
  };
};
/** Key algorithm and size of every key of the mesh, as the tls provider takes them. */
export type KeySpec =
  | { algorithm: "ECDSA"; ecdsaCurve: "P256" | "P384" }
  | { algorithm: "RSA"; rsaBits: 2048 | 3072 | 4096 };
/** Certificate settings, the key as one discriminated union. */
export type CertificateSettings = Omit<
  RawMesh["certificates"],
  "algorithm" | "ecdsaCurve" | "rsaBits" | "keyRotationHours" | "ca"
> & {
  key: KeySpec;
  keyRotationHours: number;
  /** Generations in trust order; each with its CA's key. */
  ca: { signing: string; trusted: string[]; keys: Record<string, KeySpec> };
};
export type ResourcePair = z.infer<typeof resourcePair>;
