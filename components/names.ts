/**
 * Names and constants shared across the program: the project, the labels every object carries,
 * the paths and files inside a pod, and the names the mesh owns there (the config layer refuses
 * app settings that would collide with them). One definition serves every module.
 */

/** The Pulumi project name, which is also the config namespace and the `part-of` label. */
export const PROJECT = "bookapi-mesh";

/** Suffix of a service's headless Service, which resolves to its ready pods. */
export const PODS_SERVICE_SUFFIX = "-pods";

/** Suffix of a service's Service published outside the cluster (`expose`). */
export const EXTERNAL_SERVICE_SUFFIX = "-ext";

/**
 * Names of the Kubernetes objects of one service; fixed, because other objects refer to them.
 * The Envoy ConfigMap's name ends in a hash of its content (envoyConfigMapName).
 */
export function objectNames(service: string) {
  return {
    serviceAccount: service,
    secret: `${service}-tls`,
    /** With certificates.issuer cert-manager, the Secret its Certificate (named `service`) writes. */
    certManagerSecret: `${service}-cert`,
    certificate: service,
    configMapPrefix: `${service}-envoy-`,
    deployment: service,
    service,
    podsService: `${service}${PODS_SERVICE_SUFFIX}`,
    externalService: `${service}${EXTERNAL_SERVICE_SUFFIX}`,
    podDisruptionBudget: service,
    autoscaler: service,
  };
}

/** Names of the gateway's objects: a workload's, plus its self-signed public certificate. */
export function gatewayObjectNames(gateway: string) {
  return { ...objectNames(gateway), edgeSecret: `${gateway}-edge-tls` };
}

/** The Secret a client's certificate is written to when `secret.name` is not given. */
export function defaultClientSecretName(client: string): string {
  return `${client}-mesh-client`;
}

/**
 * cert-manager mode: the ConfigMap with the trust bundle (every trusted CA generation; public),
 * and per signing generation the Issuer and the Secret with its intermediate CA.
 */
export const CERT_MANAGER_NAMES = {
  trustConfigMap: `${PROJECT}-trust`,
  issuer: (generation: string) => `${PROJECT}-ca-${generation}`,
  issuerSecret: (generation: string) => `${PROJECT}-ca-${generation}-issuer`,
} as const;

/** A Service's fully qualified name in cluster DNS. */
export function serviceFqdn(name: string, namespace: string, clusterDomain: string): string {
  return `${name}.${namespace}.svc.${clusterDomain}`;
}

/** A Service's names in cluster DNS, shortest first (the bare name only from its namespace). */
export function serviceHostnames(name: string, namespace: string, clusterDomain: string): string[] {
  return [
    name,
    `${name}.${namespace}`,
    `${name}.${namespace}.svc`,
    serviceFqdn(name, namespace, clusterDomain),
  ];
}

/**
 * The ConfigMap that claims the mesh namespace for one stack. Every other object of the stack in
 * that namespace is created after it, so a second stack deployed to the same namespace fails on
 * this create (the provider's plain create refuses an existing object) before it touches anything.
 */
export const STACK_CLAIM_NAME = `${PROJECT}-stack`;

/** Labels of every object the program creates. */
export function meshLabels(): Record<string, string> {
  return { "app.kubernetes.io/part-of": PROJECT, "app.kubernetes.io/managed-by": "pulumi" };
}

/** Labels that select a service's pods. Kept minimal: a Deployment's selector is immutable. */
export function selectorLabels(service: string): Record<string, string> {
  return { "app.kubernetes.io/name": service, "app.kubernetes.io/part-of": PROJECT };
}

/**
 * On an adopted workload's pods (docs/injection.md): the mesh service they serve. Its Services and
 * NetworkPolicies select them by it, since the workload's owner holds the `app.kubernetes.io/*`
 * ones; the transform and `npm run inject` also match pod templates by it.
 */
export const SERVICE_LABEL = `${PROJECT}/service`;

/** `disabled` on a workload or its pod template: the injector leaves it alone. */
export const INJECT_LABEL = `${PROJECT}/inject`;

/** A service as far as its pods' labels go: whether the mesh builds its workload. */
export interface PodOwner {
  name: string;
  adopted: boolean;
}

/**
 * Labels that select a service's pods: the mesh's own workloads keep the selectors they were
 * created with (a selector is immutable); an adopted workload's pods are told apart by the mesh's
 * own label alone, since a chart may hold every `app.kubernetes.io/*` one, `part-of` included.
 */
export function podSelectorLabels(service: PodOwner): Record<string, string> {
  return service.adopted ? { [SERVICE_LABEL]: service.name } : selectorLabels(service.name);
}

/**
 * Labels the mesh puts on a service's pods. An adopted pod also gets `part-of` (the default-deny
 * policy and the PodMonitor select it) unless its owner set one.
 */
export function podMeshLabels(
  service: PodOwner,
  own: Record<string, string> = {},
): Record<string, string> {
  if (!service.adopted) return commonLabels(service.name);
  const partOf = "app.kubernetes.io/part-of";
  return {
    ...podSelectorLabels(service),
    ...(own[partOf] === undefined ? { [partOf]: PROJECT } : {}),
  };
}

/** The recommended `app.kubernetes.io/*` labels for every object of a service. */
export function commonLabels(service: string): Record<string, string> {
  return { ...selectorLabels(service), "app.kubernetes.io/instance": service, ...meshLabels() };
}

/** Where RFC 9728 puts protected resource metadata (section 3; path insertion in 3.1). */
export const RESOURCE_METADATA_PATH = "/.well-known/oauth-protected-resource";

/** Mount points of the sidecar's files, referenced by the Envoy files. */
export const SIDECAR_PATHS = {
  /** Mount of the Envoy ConfigMap (bootstrap and SDS files). */
  configDir: "/etc/envoy/config",
  /** Mount of the Secret `<name>-tls` (tls.crt, tls.key, ca.crt). */
  certDir: "/etc/envoy/certs",
} as const;

/** The gateway's mounts: the sidecar's, plus its public certificate. */
export const GATEWAY_PATHS = {
  ...SIDECAR_PATHS,
  /** Mount of the gateway's public certificate Secret (tls.crt, tls.key). */
  edgeCertDir: "/etc/envoy/edge",
} as const;

/** ConfigMap keys (file names under configDir); Envoy's `--config-path` is the bootstrap. */
export const ENVOY_FILES = {
  bootstrap: "envoy.json",
  sdsCertificate: "sds-certificate.json",
  sdsValidation: "sds-validation.json",
  /** The gateway only: its public certificate. */
  sdsEdge: "sds-edge.json",
} as const;

/** Secret keys (file names under certDir), as a `kubernetes.io/tls` Secret plus the CA. */
export const CERT_FILES = {
  certificate: "tls.crt",
  privateKey: "tls.key",
  ca: "ca.crt",
} as const;

/** Paths the health and metrics listeners expose, and what they map to on the admin API. */
export const EXPOSED_PATHS = {
  health: "/healthz/ready",
  /** Envoy's admin readiness endpoint: 200 only once the server is LIVE. */
  adminReady: "/ready",
  metrics: "/stats/prometheus",
} as const;

/** Volumes the pod template always has. */
export const MESH_VOLUMES = {
  config: "envoy-config",
  certs: "envoy-certs",
  tmp: "tmp",
  /** The gateway only: its public certificate. */
  edgeCerts: "edge-certs",
} as const;

/** The app's writable scratch directory (its root filesystem is read-only). */
export const APP_TMP_PATH = "/tmp";

/** Set on apps that call others: where their outbound Envoy listener is. */
export const OUTBOUND_URL_ENV = "MESH_OUTBOUND_URL";

/** Label keys the mesh sets on every pod (selectors and NetworkPolicies depend on them). */
export const MESH_POD_LABEL_KEYS = [
  "app.kubernetes.io/name",
  "app.kubernetes.io/part-of",
  "app.kubernetes.io/instance",
  "app.kubernetes.io/managed-by",
  SERVICE_LABEL,
  // Set by the Deployment and StatefulSet controllers on every pod they create.
  "pod-template-hash",
  "controller-revision-hash",
] as const;

/** Makes `kubectl logs`/`exec` pick the app rather than the sidecar. */
export const DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container";

/** Scrape annotations the mesh sets when `envoy.scrapeFrom` lets a scraper in. */
export const SCRAPE_ANNOTATION_PREFIX = "prometheus.io/";
