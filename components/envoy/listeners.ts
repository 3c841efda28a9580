/**
 * Listeners: mTLS inbound, plain-HTTP outbound on loopback, and two single-path listeners that
 * expose readiness and Prometheus stats from the loopback-only admin API.
 */
import { Peer, SidecarSpec } from "./model";
import { httpRbacFilter, networkRbacFilter } from "./rbac";
import { CLUSTER_NAMES, EXPOSED_PATHS, LISTENER_NAMES, upstreamClusterName } from "./spec";
import { socketAddress } from "./clusters";
import { inboundTlsContext, tlsTransportSocket } from "./tls";
import {
  EXTENSION_NAMES,
  HttpConnectionManager,
  HttpFilter,
  Listener,
  NetworkFilter,
  Route,
  RouteConfiguration,
  TYPE_URLS,
  VirtualHost,
} from "./types";

/** Terminal HTTP filter; must come last. */
export function routerFilter(): HttpFilter {
  return { name: EXTENSION_NAMES.router, typed_config: { "@type": TYPE_URLS.router } };
}

/** The parts every HCM shares; callers add the direction-specific fields. */
function httpConnectionManager(
  statPrefix: string,
  routeConfig: RouteConfiguration,
  httpFilters: HttpFilter[],
  extra: Pick<
    HttpConnectionManager,
    "forward_client_cert_details" | "set_current_client_cert_details"
  > = {},
): NetworkFilter {
  return {
    name: EXTENSION_NAMES.httpConnectionManager,
    typed_config: {
      "@type": TYPE_URLS.httpConnectionManager,
      stat_prefix: statPrefix,
      codec_type: "AUTO",
      // RFC 3986 normalisation before routing, so path matches see canonical paths.
      normalize_path: true,
      ...extra,
      route_config: routeConfig,
      http_filters: [...httpFilters, routerFilter()],
    },
  };
}

/** Everything to one cluster. */
function catchAllRoute(cluster: string): Route {
  return { match: { prefix: "/" }, route: { cluster } };
}

const NOT_FOUND: Route = { match: { prefix: "/" }, direct_response: { status: 404 } };

/**
 * Inbound: mTLS (client certificate required, SAN allow-list), connection-level RBAC, then HTTP
 * with request-level RBAC; the app gets the verified caller identity in a sanitised
 * x-forwarded-client-cert header (any client-supplied XFCC is replaced).
 */
export function inboundListener(spec: SidecarSpec): Listener {
  const name = LISTENER_NAMES.inbound;
  return {
    name,
    address: socketAddress("0.0.0.0", spec.ports.inbound),
    traffic_direction: "INBOUND",
    filter_chains: [
      {
        transport_socket: tlsTransportSocket(inboundTlsContext(spec)),
        filters: [
          networkRbacFilter(name, spec.callers),
          httpConnectionManager(
            name,
            {
              name,
              virtual_hosts: [
                {
                  name: CLUSTER_NAMES.localApp,
                  domains: ["*"],
                  routes: [catchAllRoute(CLUSTER_NAMES.localApp)],
                },
              ],
            },
            [httpRbacFilter(spec.callers)],
            {
              forward_client_cert_details: "SANITIZE_SET",
              set_current_client_cert_details: { uri: true, dns: true },
            },
          ),
        ],
      },
    ],
  };
}

/**
 * Host names a dependency answers to from the app: its Service name, the namespace-qualified
 * forms that Kubernetes DNS also resolves (prefixes of the FQDN), and the FQDN itself.
 */
export function peerHostnames(peer: Peer): string[] {
  const labels = peer.fqdn.split(".");
  const names = [peer.name];
  // <name>.<ns> and <name>.<ns>.svc exist only for the usual <name>.<ns>.svc.<domain> layout.
  if (labels.length > 3 && labels[0] === peer.name && labels[2] === "svc") {
    names.push(labels.slice(0, 2).join("."), labels.slice(0, 3).join("."));
  }
  names.push(peer.fqdn);
  return [...new Set(names)];
}

/**
 * Authorities routed to a dependency. Envoy matches the Host header including its port, so
 * each name is listed bare and with the outbound port. A sole dependency also takes the
 * loopback authority, so the app can simply call http://127.0.0.1:<outbound>.
 */
export function upstreamDomains(spec: SidecarSpec, upstream: Peer): string[] {
  const port = spec.ports.outbound;
  const hosts = peerHostnames(upstream);
  if (spec.upstreams.length === 1) hosts.push("127.0.0.1", "localhost");
  return hosts.flatMap((h) => [h, `${h}:${port}`]);
}

export function upstreamVirtualHost(spec: SidecarSpec, upstream: Peer): VirtualHost {
  const cluster = upstreamClusterName(upstream);
  return {
    name: upstream.name,
    domains: upstreamDomains(spec, upstream),
    routes: [catchAllRoute(cluster)],
  };
}

/**
 * Outbound: plain HTTP from the app on loopback only, one virtual host per dependency. There is
 * no `*` host: a request for anything else gets Envoy's 404, not a guess. Only built when the
 * service calls something.
 */
export function outboundListener(spec: SidecarSpec): Listener {
  const name = LISTENER_NAMES.outbound;
  const virtualHosts = spec.upstreams.map((u) => upstreamVirtualHost(spec, u));
  const seen = new Map<string, string>();
  for (const vh of virtualHosts) {
    for (const d of vh.domains) {
      // Envoy refuses to start on a duplicate domain; say which dependencies collide instead.
      const other = seen.get(d);
      if (other) throw new Error(`upstreams: "${d}" would route to both ${other} and ${vh.name}`);
      seen.set(d, vh.name);
    }
  }
  return {
    name,
    address: socketAddress("127.0.0.1", spec.ports.outbound),
    traffic_direction: "OUTBOUND",
    filter_chains: [
      { filters: [httpConnectionManager(name, { name, virtual_hosts: virtualHosts }, [])] },
    ],
  };
}

/**
 * A listener that forwards exactly one path to the admin API and answers 404 to everything
 * else. `path` is an exact match (after normalisation), so neither sub-paths nor other admin
 * endpoints are reachable from outside the pod.
 */
function singlePathListener(name: string, port: number, path: string, adminPath: string): Listener {
  const route: Route = {
    match: { path },
    route:
      adminPath === path
        ? { cluster: CLUSTER_NAMES.admin }
        : { cluster: CLUSTER_NAMES.admin, prefix_rewrite: adminPath },
  };
  return {
    name,
    address: socketAddress("0.0.0.0", port),
    traffic_direction: "INBOUND",
    filter_chains: [
      {
        filters: [
          httpConnectionManager(
            name,
            { name, virtual_hosts: [{ name, domains: ["*"], routes: [route, NOT_FOUND] }] },
            [],
          ),
        ],
      },
    ],
  };
}

/** Kubelet's readiness probe: /healthz/ready, served by the admin API's /ready. */
export function healthListener(spec: SidecarSpec): Listener {
  return singlePathListener(
    LISTENER_NAMES.health,
    spec.ports.health,
    EXPOSED_PATHS.health,
    EXPOSED_PATHS.adminReady,
  );
}

/** Prometheus scraping: /stats/prometheus only. */
export function metricsListener(spec: SidecarSpec): Listener {
  return singlePathListener(
    LISTENER_NAMES.metrics,
    spec.ports.metrics,
    EXPOSED_PATHS.metrics,
    EXPOSED_PATHS.metrics,
  );
}

/** Every listener of the sidecar. */
export function buildListeners(spec: SidecarSpec): Listener[] {
  return [
    inboundListener(spec),
    ...(spec.upstreams.length > 0 ? [outboundListener(spec)] : []),
    healthListener(spec),
    metricsListener(spec),
  ];
}
