/**
 * The plain-value input of the Envoy builders: everything one sidecar needs to know, derived
 * from the mesh model (components/config.ts). No Pulumi types here: builders are pure.
 */

/** Envoy's ports inside the pod. */
export interface EnvoyPorts {
  /** mTLS listener other sidecars dial (0.0.0.0). */
  inbound: number;
  /** Plain-HTTP listener the local app calls (127.0.0.1). */
  outbound: number;
  /** Envoy admin interface (127.0.0.1 only). */
  admin: number;
  /** Readiness listener exposing only /healthz/ready (0.0.0.0). */
  health: number;
  /** Prometheus listener exposing only /stats/prometheus (0.0.0.0). */
  metrics: number;
}

/** Another mesh service, as seen from this sidecar. */
export interface Peer {
  /** Service name, a DNS-1123 label, e.g. "bookapi". */
  name: string;
  /** Fully qualified service name, e.g. "bookapi.default.svc.cluster.local". */
  fqdn: string;
  /** SPIFFE ID carried as the certificate's URI SAN; matched beside the FQDN when set. */
  spiffeId?: string;
  /** For a caller: HTTP methods it may use on this service; empty or absent = all. */
  methods?: string[];
  /** For a caller: paths it may request (`/a` exact, `/a/*` prefix); empty or absent = all. */
  paths?: string[];
}

/** Where the pod mounts the files Envoy reads. */
export interface SidecarPaths {
  /** Mount of the ConfigMap `<name>-envoy-<hash>` (bootstrap and SDS files). */
  configDir: string;
  /** Mount of the Secret `<name>-tls` (tls.crt, tls.key, ca.crt). */
  certDir: string;
}

/** Everything the Envoy builders need for one service's sidecar. */
export interface SidecarSpec {
  /** This service's name. */
  service: string;
  /** This service's FQDN (its certificate's principal). */
  fqdn: string;
  /** The app's port; inbound traffic is forwarded to 127.0.0.1:<appPort>. */
  appPort: number;
  ports: EnvoyPorts;
  /** Services allowed to call this one (SAN allow-list); empty = accepts nobody. */
  callers: Peer[];
  /** Services this one calls; each upstream dials `<fqdn>:<ports.inbound>`. */
  upstreams: Peer[];
  paths: SidecarPaths;
}

/** Mount points used by the workload and referenced by the Envoy files. */
export const SIDECAR_PATHS: SidecarPaths = {
  configDir: "/etc/envoy/config",
  certDir: "/etc/envoy/certs",
};

/** ConfigMap keys (file names under configDir). */
export const ENVOY_FILES = {
  bootstrap: "envoy.json",
  sdsCertificate: "sds-certificate.json",
  sdsValidation: "sds-validation.json",
} as const;

/** Secret keys (file names under certDir), as a `kubernetes.io/tls` Secret plus the CA. */
export const CERT_FILES = {
  certificate: "tls.crt",
  privateKey: "tls.key",
  ca: "ca.crt",
} as const;
