/**
 * Clusters: the local app, Envoy's own admin API (behind the health and metrics listeners), one
 * mTLS cluster per dependency, and one per egress target.
 */
import {
  breakerLimits,
  meshHttp2Options,
  MESH_CONNECTION_BUFFER_BYTES,
  UPSTREAM_TCP_KEEPALIVE,
} from "./connections";
import { EgressSpec, SidecarSpec, TracingSpec, Upstream } from "./model";
import { CLUSTER_NAMES, egressName, upstreamClusterName } from "./spec";
import { externalTlsContext, tlsTransportSocket, upstreamTlsContext } from "./tls";
import { COLLECTOR_CLUSTER } from "./tracing";
import {
  Address,
  Cluster,
  ClusterLoadAssignment,
  DnsCluster,
  Duration,
  EXTENSION_NAMES,
  HttpProtocolOptions,
  OutlierDetection,
  TYPE_URLS,
} from "./types";

/** Loopback connects either succeed at once or never will. */
const LOCAL_CONNECT_TIMEOUT: Duration = "1s";
/**
 * To hosts outside the cluster: Envoy's own default, stated. Mesh upstreams take the callee's
 * traffic.connectTimeout (1 s): inside a cluster a connect answers in milliseconds, and a pod IP
 * that vanished without a reset would stall every first attempt for the full timeout.
 */
const EGRESS_CONNECT_TIMEOUT: Duration = "5s";

/**
 * Pool settings (Envoy's default idle timeout is 1 h). To the app: idle connections close before
 * common app keep-alive timeouts do (Node's is 5 s), so Envoy never sends a request on a
 * connection the app is closing (503 UC). Between sidecars: idle connections close after 30 s, and
 * every connection is retired after 5 minutes, so load spreads onto pods added since.
 */
export const POOL = {
  localAppIdleTimeout: "4s",
  upstreamIdleTimeout: "30s",
  upstreamMaxConnectionDuration: "300s",
} as const satisfies Record<string, Duration>;

/** How often a DNS cluster re-resolves (Envoy's default, stated): how soon new pods get traffic. */
export const DNS_REFRESH_RATE: Duration = "5s";

export function socketAddress(address: string, port: number): Address {
  return { socket_address: { address, port_value: port } };
}

function singleEndpoint(clusterName: string, address: Address): ClusterLoadAssignment {
  return { cluster_name: clusterName, endpoints: [{ lb_endpoints: [{ endpoint: { address } }] }] };
}

/**
 * Upstream HTTP with the given pool limits: HTTP/1.1, or `auto` (Envoy's AutoHttpConfig: HTTP/2
 * when the server's TLS handshake selects `h2` by ALPN, HTTP/1.1 when it selects nothing or
 * `http/1.1`, upstreams/http/v3/http_protocol_options.proto), so a caller updated before its
 * callee keeps working.
 */
function httpProtocolOptions(
  protocol: "http1" | "http2" | "auto",
  idleTimeout: Duration,
  maxConnectionDuration?: Duration,
): NonNullable<Cluster["typed_extension_protocol_options"]> {
  const common = {
    idle_timeout: idleTimeout,
    ...(maxConnectionDuration ? { max_connection_duration: maxConnectionDuration } : {}),
  };
  const options: HttpProtocolOptions =
    protocol === "auto"
      ? {
          "@type": TYPE_URLS.httpProtocolOptions,
          common_http_protocol_options: common,
          auto_config: { http_protocol_options: {}, http2_protocol_options: meshHttp2Options() },
        }
      : {
          "@type": TYPE_URLS.httpProtocolOptions,
          common_http_protocol_options: common,
          explicit_http_config:
            protocol === "http2"
              ? { http2_protocol_options: meshHttp2Options() }
              : { http_protocol_options: {} },
        };
  return { [EXTENSION_NAMES.httpProtocolOptions]: options };
}

/**
 * DNS discovery through the DnsCluster extension (Envoy >= 1.33), which replaces the Cluster's
 * deprecated dns_refresh_rate and respect_dns_ttl; with cluster_type set Envoy reads the lookup
 * family from here, not from the Cluster. One host per address (strict) or one host at the latest
 * address (logical).
 */
function dnsClusterType(kind: "strict" | "logical"): NonNullable<Cluster["cluster_type"]> {
  const config: DnsCluster = {
    "@type": TYPE_URLS.dnsCluster,
    dns_refresh_rate: DNS_REFRESH_RATE,
    respect_dns_ttl: false,
    dns_lookup_family: "V4_PREFERRED",
    all_addresses_in_single_endpoint: kind === "logical",
  };
  return { name: EXTENSION_NAMES.dnsCluster, typed_config: config };
}

/**
 * Ejects a pod for what says the pod is unwell, not for its app's answers: 502/503/504 in a row
 * (its sidecar cannot reach its app) and connect failures, resets and timeouts in a row, counted
 * apart (split_external_local_origin_errors). Plain 5xx (an MCP server answers a failed tool call
 * with 500) eject only with ejectOnAppErrors. Envoy's enforcing_consecutive_gateway_failure
 * defaults to 0 and its success-rate check (at 5+ pods) counts every 5xx: both stated.
 */
export function outlierDetection(od: Upstream["traffic"]["outlierDetection"]): OutlierDetection {
  return {
    split_external_local_origin_errors: true,
    consecutive_5xx: od.consecutive5xx,
    enforcing_consecutive_5xx: od.ejectOnAppErrors ? 100 : 0,
    consecutive_gateway_failure: od.consecutiveGatewayErrors,
    enforcing_consecutive_gateway_failure: 100,
    consecutive_local_origin_failure: od.consecutiveLocalOriginFailures,
    enforcing_consecutive_local_origin_failure: 100,
    enforcing_success_rate: od.ejectOnAppErrors ? 100 : 0,
    interval: od.interval,
    base_ejection_time: od.baseEjectionTime,
    max_ejection_percent: od.maxEjectionPercent,
  };
}

/** A cluster of one loopback endpoint. */
function loopbackCluster(name: string, port: number): Cluster {
  return {
    name,
    type: "STATIC",
    connect_timeout: LOCAL_CONNECT_TIMEOUT,
    load_assignment: singleEndpoint(name, socketAddress("127.0.0.1", port)),
  };
}

/** The app in the same pod; inbound requests end here, in plain HTTP over loopback. */
export function localAppCluster(spec: SidecarSpec): Cluster {
  return {
    ...loopbackCluster(CLUSTER_NAMES.localApp, spec.appPort),
    typed_extension_protocol_options: httpProtocolOptions("http1", POOL.localAppIdleTimeout),
  };
}

/** Envoy's admin listener, reached only through the health and metrics routes. */
export function adminCluster(spec: Pick<SidecarSpec, "ports">): Cluster {
  return loopbackCluster(CLUSTER_NAMES.admin, spec.ports.admin);
}

/**
 * A dependency's pods: its headless Service resolved by DNS (strict: every ready pod a host,
 * re-resolved every DNS_REFRESH_RATE), balanced per request to the least busy of two random pods,
 * with the dependency's circuit breaker (sized from this Envoy's heap where the policy is silent),
 * retry budget and outlier detection, dialled on the inbound port with mTLS, over HTTP/2 when the
 * dependency speaks it. The name is absolute (trailing dot): with the pod's `ndots:5` a relative
 * FQDN is first tried against every search domain (resolv.conf(5)).
 */
export function upstreamCluster(
  spec: Pick<SidecarSpec, "ports" | "paths" | "overload">,
  upstream: Upstream,
): Cluster {
  const name = upstreamClusterName(upstream);
  const { traffic } = upstream;
  const limits = breakerLimits(spec.overload.maxHeapBytes, traffic.circuitBreaker);
  return {
    name,
    cluster_type: dnsClusterType("strict"),
    connect_timeout: traffic.connectTimeout,
    lb_policy: "LEAST_REQUEST",
    load_assignment: singleEndpoint(
      name,
      socketAddress(`${upstream.podsFqdn}.`, spec.ports.inbound),
    ),
    upstream_connection_options: { tcp_keepalive: { ...UPSTREAM_TCP_KEEPALIVE } },
    per_connection_buffer_limit_bytes: MESH_CONNECTION_BUFFER_BYTES,
    circuit_breakers: {
      thresholds: [
        {
          priority: "DEFAULT",
          max_connections: limits.maxConnections,
          max_pending_requests: limits.maxPendingRequests,
          max_requests: limits.maxRequests,
          retry_budget: {
            budget_percent: { value: traffic.retries.budget.percent },
            min_retry_concurrency: traffic.retries.budget.minConcurrency,
          },
        },
      ],
    },
    outlier_detection: outlierDetection(traffic.outlierDetection),
    typed_extension_protocol_options: httpProtocolOptions(
      traffic.protocol === "http2" ? "auto" : "http1",
      POOL.upstreamIdleTimeout,
      POOL.upstreamMaxConnectionDuration,
    ),
    transport_socket: tlsTransportSocket(upstreamTlsContext(spec, upstream)),
  };
}

/**
 * A destination outside the mesh. Logical DNS: one connection target at a time, the latest
 * address the name resolved to, as suits large external hosts behind many addresses.
 */
export function egressCluster(egress: EgressSpec): Cluster {
  const name = egressName(egress);
  return {
    name,
    cluster_type: dnsClusterType("logical"),
    connect_timeout: EGRESS_CONNECT_TIMEOUT,
    load_assignment: singleEndpoint(name, socketAddress(egress.host, egress.port)),
    // A database or API connection held open across a NAT or firewall that forgets idle flows.
    upstream_connection_options: { tcp_keepalive: { ...UPSTREAM_TCP_KEEPALIVE } },
    ...(egress.protocol === "tcp"
      ? {}
      : {
          typed_extension_protocol_options: httpProtocolOptions("http1", POOL.upstreamIdleTimeout),
        }),
    ...(egress.protocol === "https"
      ? { transport_socket: tlsTransportSocket(externalTlsContext(egress.host)) }
      : {}),
  };
}

/** The OpenTelemetry collector: OTLP over HTTP/2 (gRPC) or HTTP/1.1, plain text in the cluster. */
export function collectorCluster(tracing: TracingSpec): Cluster {
  const { host, port, protocol } = tracing.collector;
  return {
    name: COLLECTOR_CLUSTER,
    cluster_type: dnsClusterType("logical"),
    connect_timeout: EGRESS_CONNECT_TIMEOUT,
    load_assignment: singleEndpoint(COLLECTOR_CLUSTER, socketAddress(host, port)),
    // Through a ClusterIP one HTTP/2 connection would stick to one collector pod: renewed every
    // 5 minutes, spans spread over the replicas.
    typed_extension_protocol_options: httpProtocolOptions(
      protocol === "grpc" ? "http2" : "http1",
      POOL.upstreamIdleTimeout,
      "300s",
    ),
  };
}

/** Every cluster of the sidecar; upstreams and egress in the (sorted) order of the canonical spec. */
export function buildClusters(spec: SidecarSpec): Cluster[] {
  return [
    localAppCluster(spec),
    adminCluster(spec),
    ...spec.upstreams.map((u) => upstreamCluster(spec, u)),
    ...spec.egress.map(egressCluster),
    ...(spec.tracing ? [collectorCluster(spec.tracing)] : []),
  ];
}
