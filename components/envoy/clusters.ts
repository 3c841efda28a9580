/**
 * Clusters: the local app, Envoy's own admin API (behind the health and metrics listeners), one
 * mTLS cluster per dependency, and one per egress target.
 */
import { EgressSpec, SidecarSpec, Upstream } from "./model";
import { CLUSTER_NAMES, egressName, upstreamClusterName } from "./spec";
import { externalTlsContext, tlsTransportSocket, upstreamTlsContext } from "./tls";
import {
  Address,
  Cluster,
  ClusterLoadAssignment,
  Duration,
  EXTENSION_NAMES,
  HttpProtocolOptions,
  TYPE_URLS,
} from "./types";

/** Loopback connects either succeed at once or never will. */
const LOCAL_CONNECT_TIMEOUT: Duration = "1s";
/** Across the cluster network; Envoy's own default. */
const UPSTREAM_CONNECT_TIMEOUT: Duration = "5s";

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

/** HTTP/1.1 upstream with the given pool limits. */
function httpProtocolOptions(
  idleTimeout: Duration,
  maxConnectionDuration?: Duration,
): NonNullable<Cluster["typed_extension_protocol_options"]> {
  const options: HttpProtocolOptions = {
    "@type": TYPE_URLS.httpProtocolOptions,
    common_http_protocol_options: {
      idle_timeout: idleTimeout,
      ...(maxConnectionDuration ? { max_connection_duration: maxConnectionDuration } : {}),
    },
    explicit_http_config: { http_protocol_options: {} },
  };
  return { [EXTENSION_NAMES.httpProtocolOptions]: options };
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
    typed_extension_protocol_options: httpProtocolOptions(POOL.localAppIdleTimeout),
  };
}

/** Envoy's admin listener, reached only through the health and metrics routes. */
export function adminCluster(spec: Pick<SidecarSpec, "ports">): Cluster {
  return loopbackCluster(CLUSTER_NAMES.admin, spec.ports.admin);
}

/**
 * A dependency's pods: its headless Service resolved by DNS (STRICT_DNS makes every ready pod a
 * host, re-resolved every DNS_REFRESH_RATE), balanced per request to the least busy of two
 * random pods, with the dependency's circuit breaker and outlier detection, dialled on the
 * inbound port with mTLS. The name is absolute (trailing dot): with the pod's `ndots:5` a
 * relative FQDN is first tried against every search domain (resolv.conf(5)).
 */
export function upstreamCluster(
  spec: Pick<SidecarSpec, "ports" | "paths">,
  upstream: Upstream,
): Cluster {
  const name = upstreamClusterName(upstream);
  const { circuitBreaker: cb, outlierDetection: od } = upstream.traffic;
  return {
    name,
    type: "STRICT_DNS",
    connect_timeout: UPSTREAM_CONNECT_TIMEOUT,
    lb_policy: "LEAST_REQUEST",
    dns_refresh_rate: DNS_REFRESH_RATE,
    respect_dns_ttl: false,
    dns_lookup_family: "V4_PREFERRED",
    load_assignment: singleEndpoint(
      name,
      socketAddress(`${upstream.podsFqdn}.`, spec.ports.inbound),
    ),
    circuit_breakers: {
      thresholds: [
        {
          priority: "DEFAULT",
          max_connections: cb.maxConnections,
          max_pending_requests: cb.maxPendingRequests,
          max_requests: cb.maxRequests,
          max_retries: cb.maxRetries,
        },
      ],
    },
    outlier_detection: {
      consecutive_5xx: od.consecutive5xx,
      interval: od.interval,
      base_ejection_time: od.baseEjectionTime,
      max_ejection_percent: od.maxEjectionPercent,
    },
    typed_extension_protocol_options: httpProtocolOptions(
      POOL.upstreamIdleTimeout,
      POOL.upstreamMaxConnectionDuration,
    ),
    transport_socket: tlsTransportSocket(upstreamTlsContext(spec, upstream)),
  };
}

/**
 * A destination outside the mesh. LOGICAL_DNS: one connection target at a time, the latest
 * address the name resolved to, as suits large external hosts behind many addresses.
 */
export function egressCluster(egress: EgressSpec): Cluster {
  const name = egressName(egress);
  return {
    name,
    type: "LOGICAL_DNS",
    connect_timeout: UPSTREAM_CONNECT_TIMEOUT,
    dns_refresh_rate: DNS_REFRESH_RATE,
    dns_lookup_family: "V4_PREFERRED",
    load_assignment: singleEndpoint(name, socketAddress(egress.host, egress.port)),
    ...(egress.protocol === "tcp"
      ? {}
      : { typed_extension_protocol_options: httpProtocolOptions(POOL.upstreamIdleTimeout) }),
    ...(egress.protocol === "https"
      ? { transport_socket: tlsTransportSocket(externalTlsContext(egress.host)) }
      : {}),
  };
}

/** Every cluster of the sidecar; upstreams and egress in the (sorted) order of the canonical spec. */
export function buildClusters(spec: SidecarSpec): Cluster[] {
  return [
    localAppCluster(spec),
    adminCluster(spec),
    ...spec.upstreams.map((u) => upstreamCluster(spec, u)),
    ...spec.egress.map(egressCluster),
  ];
}
