/**
 * The plain-value input of the Envoy builders: everything one sidecar needs to know, derived
 * from the mesh model (components/config/). No Pulumi types here: builders are pure.
 */
import { Duration } from "./types";

/**
 * Address of the listeners other pods and the kubelet reach: `::` (with IPv4 accepted on the same
 * socket) serves IPv4, IPv6 and dual-stack pods; `0.0.0.0` is for nodes without IPv6 at all.
 */
export type BindAddress = "::" | "0.0.0.0";

/** Envoy's ports inside the pod. */
export interface EnvoyPorts {
  /** mTLS listener other sidecars dial (bindAddress). */
  inbound: number;
  /** Plain-HTTP listener the local app calls (127.0.0.1). */
  outbound: number;
  /** Envoy admin interface (127.0.0.1 only). */
  admin: number;
  /** Readiness listener exposing only /healthz/ready (bindAddress). */
  health: number;
  /** Prometheus listener exposing only /stats/prometheus (bindAddress). */
  metrics: number;
}

/** Another mesh service, or (as a caller) a client outside the mesh, as seen from this sidecar. */
export interface Peer {
  /** Service or client name, a DNS-1123 label, e.g. "bookapi". */
  name: string;
  /**
   * A client outside the mesh (identified by its SPIFFE ID alone) or the ingress gateway.
   * Absent: a mesh service.
   */
  kind?: "client" | "gateway";
  /** Fully qualified service name, e.g. "bookapi.default.svc.cluster.local"; services only. */
  fqdn?: string;
  /** SPIFFE ID carried as the certificate's URI SAN; matched beside the FQDN when set. */
  spiffeId?: string;
  /** For a caller: HTTP methods it may use on this service; empty or absent = all. */
  methods?: string[];
  /** For a caller: paths it may request (`/a` exact, `/a/*` prefix); empty or absent = all. */
  paths?: string[];
}

/** How requests to one service are timed, retried, limited and balanced (Envoy units). */
export interface TrafficSpec {
  /** Route timeout: "0s" (none) for streaming services. */
  timeout: Duration;
  /** Per-route stream idle timeout; absent: the HTTP connection manager's applies. */
  idleTimeout?: Duration;
  streaming: boolean;
  /** Between sidecars: HTTP/2 (negotiated by ALPN, HTTP/1.1 as fallback) or HTTP/1.1 only. */
  protocol: "http2" | "http1";
  /** TCP connect timeout to one of the service's pods. */
  connectTimeout: Duration;
  retries: {
    attempts: number;
    /** retry_on for idempotent methods. */
    retryOn: string;
    perTryTimeout?: Duration;
    backoff: { base: Duration; max: Duration };
    /** Concurrent retries: percent of active + pending requests, never below minConcurrency. */
    budget: { percent: number; minConcurrency: number };
  };
  /** Unset limits are sized from the calling Envoy's heap (see breakerLimits). */
  circuitBreaker: {
    maxConnections?: number;
    maxPendingRequests: number;
    maxRequests?: number;
  };
  outlierDetection: {
    consecutiveGatewayErrors: number;
    consecutiveLocalOriginFailures: number;
    consecutive5xx: number;
    ejectOnAppErrors: boolean;
    interval: Duration;
    baseEjectionTime: Duration;
    maxEjectionPercent: number;
  };
  /** Per replica, on the inbound side. */
  rateLimit?: { requestsPerSecond: number; burst: number };
  /** Response header whose value pins later requests to the replica that set it. */
  sessionAffinity?: { header: string };
}

/** A dependency: a service, with how its pods are found and how calls to it behave. */
export interface Upstream extends Peer {
  fqdn: string;
  /** Headless Service FQDN: resolves to the ready pods, one Envoy host each. */
  podsFqdn: string;
  traffic: TrafficSpec;
}

/** A destination outside the mesh. */
export interface EgressSpec {
  name: string;
  host: string;
  port: number;
  protocol: "http" | "https" | "tcp";
  /** For tcp: the loopback port the app connects to. */
  localPort?: number;
}

/** Where the pod mounts the files Envoy reads. */
export interface SidecarPaths {
  /** Mount of the ConfigMap `<name>-envoy-<hash>` (bootstrap and SDS files). */
  configDir: string;
  /** Mount of the Secret `<name>-tls` (tls.crt, tls.key, ca.crt). */
  certDir: string;
}

/** Where an Envoy sends its spans, and how often it starts a trace itself. */
export interface TracingSpec {
  collector: { host: string; port: number; protocol: "grpc" | "http" };
  /** Share of requests without a trace context this Envoy starts a trace for (0-100). */
  samplingPercent: number;
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
  /** Services this one calls; each upstream dials its pods on `ports.inbound`. */
  upstreams: Upstream[];
  /** This service's own traffic policy, for its inbound side. */
  traffic: TrafficSpec;
  egress: EgressSpec[];
  /** JSON access logs on stdout. */
  accessLog: boolean;
  /** OpenTelemetry tracing, when the stack turns it on. */
  tracing?: TracingSpec;
  /** Overload manager: heap ceiling and connection cap. */
  overload: { maxHeapBytes: number; maxConnections: number };
  bindAddress: BindAddress;
  paths: SidecarPaths;
}

/** Bearer-token validation of one JWT provider (Envoy's jwt_authn). */
export interface JwtSpec {
  provider: string;
  issuer: string;
  audiences: string[];
  /** Where keys come from: fetched over https, or inline (JSON text of a JWKS). */
  jwks: { uri: string; host: string; port: number; cacheDuration: Duration } | { inline: string };
  requiredScopes: string[];
}

/** One gateway route, as its Envoy routes and token checks are built from it. */
export interface GatewayRouteSpec {
  host?: string;
  pathPrefix: string;
  rewritePrefix?: string;
  upstream: Upstream;
  jwt?: JwtSpec;
  /** RFC 9728 protected resource, with jwt. */
  resource?: { url: string; metadataPath: string; metadataUrl: string };
  /** Published without a token on purpose (`routes[].public`): said in the route's metadata. */
  public?: true;
}

/** Where the gateway pod mounts what Envoy reads. */
export interface GatewayPaths extends SidecarPaths {
  /** Mount of the Secret with the gateway's public certificate (tls.crt, tls.key). */
  edgeCertDir: string;
}

/** Everything the Envoy builders need for the ingress gateway. */
export interface GatewaySpec {
  /** The gateway's name (node id, stat prefixes). */
  name: string;
  /** Port of its TLS listener in the pod. */
  listenPort: number;
  /** Admin, health and metrics ports; upstreams are dialled on `inbound`. */
  ports: EnvoyPorts;
  /** Most specific first within a host. */
  routes: GatewayRouteSpec[];
  cors?: { allowOrigins: string[]; maxAge: Duration };
  accessLog: boolean;
  tracing?: TracingSpec;
  overload: { maxHeapBytes: number; maxConnections: number };
  bindAddress: BindAddress;
  paths: GatewayPaths;
}

// Shared with the workload, which mounts them: defined once in components/names.ts.
export {
  CERT_FILES,
  ENVOY_FILES,
  GATEWAY_PATHS,
  RESOURCE_METADATA_PATH,
  SIDECAR_PATHS,
} from "../names";
