/**
 * Names the mesh owns inside a pod. The config layer refuses app settings that would collide
 * with them, and the workload builders use them; one definition serves both.
 */

/** Volumes the pod template always has. */
export const MESH_VOLUMES = { config: "envoy-config", certs: "envoy-certs", tmp: "tmp" } as const;

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
  // Set by the Deployment controller on every pod it creates.
  "pod-template-hash",
] as const;

/** Makes `kubectl logs`/`exec` pick the app rather than the sidecar. */
export const DEFAULT_CONTAINER_ANNOTATION = "kubectl.kubernetes.io/default-container";

/** Scrape annotations the mesh sets when `envoy.scrapeFrom` lets a scraper in. */
export const SCRAPE_ANNOTATION_PREFIX = "prometheus.io/";
