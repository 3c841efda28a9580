/**
 * Clusters: the local app, Envoy's own admin API (behind the health and metrics listeners),
 * and one mTLS cluster per dependency.
 */
import { Peer, SidecarSpec } from "./model";
import { CLUSTER_NAMES, upstreamClusterName } from "./spec";
import { tlsTransportSocket, upstreamTlsContext } from "./tls";
import { Address, Cluster, ClusterLoadAssignment, Duration } from "./types";

/** Loopback connects either succeed at once or never will. */
const LOCAL_CONNECT_TIMEOUT: Duration = "1s";
/** Across the cluster network; Envoy's own default. */
const UPSTREAM_CONNECT_TIMEOUT: Duration = "5s";

export function socketAddress(address: string, port: number): Address {
  return { socket_address: { address, port_value: port } };
}

function singleEndpoint(clusterName: string, address: Address): ClusterLoadAssignment {
  return { cluster_name: clusterName, endpoints: [{ lb_endpoints: [{ endpoint: { address } }] }] };
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
  return loopbackCluster(CLUSTER_NAMES.localApp, spec.appPort);
}

/** Envoy's admin listener, reached only through the health and metrics routes. */
export function adminCluster(spec: SidecarSpec): Cluster {
  return loopbackCluster(CLUSTER_NAMES.admin, spec.ports.admin);
}

/**
 * A dependency's sidecar: its Service name resolved by DNS (STRICT_DNS re-resolves, so a
 * recreated Service is followed), dialled on the inbound port with mTLS. The name is absolute
 * (trailing dot): with the pod's `ndots:5`, a relative FQDN is first tried against every
 * search domain, several wasted lookups per re-resolution (resolv.conf(5)).
 */
export function upstreamCluster(spec: SidecarSpec, upstream: Peer): Cluster {
  const name = upstreamClusterName(upstream);
  return {
    name,
    type: "STRICT_DNS",
    connect_timeout: UPSTREAM_CONNECT_TIMEOUT,
    load_assignment: singleEndpoint(name, socketAddress(`${upstream.fqdn}.`, spec.ports.inbound)),
    transport_socket: tlsTransportSocket(upstreamTlsContext(spec, upstream)),
  };
}

/** Every cluster of the sidecar; upstreams in the (sorted) order of the canonical spec. */
export function buildClusters(spec: SidecarSpec): Cluster[] {
  return [
    localAppCluster(spec),
    adminCluster(spec),
    ...spec.upstreams.map((u) => upstreamCluster(spec, u)),
  ];
}
