/**
 * Listeners: mTLS inbound, plain-HTTP outbound on loopback, one loopback TCP listener per tcp
 * egress target, and two single-path listeners that expose readiness and Prometheus stats from
 * the loopback-only admin API.
 */
import { hcmTracing } from "./tracing";
import { EgressSpec, SidecarSpec, TrafficSpec, Upstream } from "./model";
import { httpRbacFilter, networkRbacFilter } from "./rbac";
import {
  CLUSTER_NAMES,
  egressName,
  EXPOSED_PATHS,
  LISTENER_NAMES,
  upstreamClusterName,
} from "./spec";
import { socketAddress } from "./clusters";
import { keepaliveSocketOptions, meshHttp2Options } from "./connections";
import { inboundTlsContext, tlsTransportSocket } from "./tls";
import {
  AccessLog,
  Address,
  Duration,
  EXTENSION_NAMES,
  HttpConnectionManager,
  HttpFilter,
  Listener,
  Metadata,
  PathMatch,
  ResponseMapper,
  PerFilterConfig,
  NetworkFilter,
  RetryPolicy,
  Route,
  RouteAction,
  RouteConfiguration,
  StatefulSessionPerRoute,
  TYPE_URLS,
  VirtualHost,
} from "./types";

/**
 * Longest pause on any stream of a connection manager: Envoy's default (5 minutes), stated.
 * Streaming routes set their own, longer idle timeout.
 */
export const STREAM_IDLE_TIMEOUT: Duration = "300s";

/** A plain route with nothing said: Envoy's 15 s route timeout, stated (admin paths answer fast). */
const ADMIN_ROUTE_TIMEOUT: Duration = "15s";

/** Methods a retry after a reset cannot repeat a side effect of (RFC 9110, 9.2.2). */
export const IDEMPOTENT_METHODS = ["GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"] as const;

/** Retry conditions safe for every method: the request never reached the upstream app. */
export const SAFE_RETRY_ON = "connect-failure,refused-stream,reset-before-request";

/** Hosts picked for a retry: never the one that just failed, if another exists. */
const RETRY_HOST_SELECTION_ATTEMPTS = 3;

/**
 * Terminal HTTP filter; must come last. It adds no x-envoy-* headers (Envoy's default adds
 * x-envoy-upstream-service-time to responses and x-envoy-expected-rq-timeout-ms and others to
 * requests): a service's reply would otherwise carry them through the gateway to the internet.
 */
export function routerFilter(): HttpFilter {
  return {
    name: EXTENSION_NAMES.router,
    typed_config: { "@type": TYPE_URLS.router, suppress_envoy_headers: true },
  };
}

/**
 * Bodies of 5xx local replies. Envoy's own name the failure ("upstream connect error or
 * disconnect/reset before headers. reset reason: connection failure, transport failure reason:
 * TLS_error: ..."), which tells a client outside how the inside is built; the access log keeps it
 * (response_code_details). Mappers see only local replies, so an app's own 5xx body passes.
 */
export const ERROR_BODIES: readonly (readonly [number, string])[] = [
  [502, "bad gateway"],
  [503, "service unavailable"],
  [504, "gateway timeout"],
];

/** One mapper per status in ERROR_BODIES, then any other 5xx. */
export function errorBodyMappers(): ResponseMapper[] {
  const status = (op: "EQ" | "GE", code: number, key: string): ResponseMapper["filter"] => ({
    status_code_filter: {
      comparison: { op, value: { default_value: code, runtime_key: `mesh.local_reply.${key}` } },
    },
  });
  return [
    ...ERROR_BODIES.map(([code, text]) => ({
      filter: status("EQ", code, String(code)),
      body: { inline_string: `${text}\n` },
    })),
    { filter: status("GE", 500, "5xx"), body: { inline_string: "server error\n" } },
  ];
}

/**
 * Address of a listener other pods or the kubelet reach. On `::` ipv4_compat turns IPV6_V6ONLY
 * off, so one socket takes IPv4 and IPv6 connections; Envoy reports an IPv4 peer by its IPv4
 * address, not the IPv4-mapped one (address_impl.cc, v6only false).
 */
export function podAddress(bind: SidecarSpec["bindAddress"], port: number): Address {
  const address = socketAddress(bind, port);
  if (bind === "::") address.socket_address.ipv4_compat = true;
  return address;
}

/**
 * One JSON line per request on stdout. `peer` is the other side's SPIFFE ID: the caller's on
 * inbound requests, the callee's on outbound ones.
 */
export function accessLog(
  direction: "inbound" | "outbound",
  opts: { client?: boolean } = {},
): AccessLog {
  return stdoutJsonLog({
    start_time: "%START_TIME%",
    direction,
    method: "%REQ(:METHOD)%",
    path: "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    authority: "%REQ(:AUTHORITY)%",
    status: "%RESPONSE_CODE%",
    response_flags: "%RESPONSE_FLAGS%",
    response_code_details: "%RESPONSE_CODE_DETAILS%",
    duration_ms: "%DURATION%",
    bytes_received: "%BYTES_RECEIVED%",
    bytes_sent: "%BYTES_SENT%",
    // Time to the first byte from upstream: the one latency that means anything for SSE.
    ttfb_ms: "%RESPONSE_DURATION%",
    attempts: "%UPSTREAM_REQUEST_ATTEMPT_COUNT%",
    upstream_host: "%UPSTREAM_HOST%",
    upstream_cluster: "%UPSTREAM_CLUSTER%",
    // Why the upstream connection failed (e.g. a TLS verification error), when it did.
    upstream_failure: "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
    termination: "%CONNECTION_TERMINATION_DETAILS%",
    trace_id: "%TRACE_ID%",
    peer: direction === "inbound" ? "%DOWNSTREAM_PEER_URI_SAN%" : "%UPSTREAM_PEER_URI_SAN%",
    request_id: "%REQ(X-REQUEST-ID)%",
    // At the edge: the client's address (the connection's peer, use_remote_address).
    ...(opts.client ? { client: "%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT%" } : {}),
  });
}

/** A JSON line on stdout with these fields, empty ones left out. */
function stdoutJsonLog(fields: Record<string, string>): AccessLog {
  return {
    name: EXTENSION_NAMES.stdoutAccessLog,
    typed_config: {
      "@type": TYPE_URLS.stdoutAccessLog,
      log_format: { json_format: fields, omit_empty_values: true },
    },
  };
}

/**
 * One line per downstream connection of a TLS listener, written when it closes: a refused
 * handshake never reaches the HTTP log, and this line carries Envoy's reason
 * (`%DOWNSTREAM_TRANSPORT_FAILURE_REASON%`, e.g. PEER_DID_NOT_RETURN_A_CERTIFICATE or a
 * CERTIFICATE_VERIFY_FAILED; Envoy's integration tests assert it on listener access logs).
 */
export function connectionLog(listener: string): AccessLog {
  return stdoutJsonLog({
    start_time: "%START_TIME%",
    connection: listener,
    client: "%DOWNSTREAM_REMOTE_ADDRESS%",
    peer: "%DOWNSTREAM_PEER_URI_SAN%",
    tls_version: "%DOWNSTREAM_TLS_VERSION%",
    tls_failure: "%DOWNSTREAM_TRANSPORT_FAILURE_REASON%",
    termination: "%CONNECTION_TERMINATION_DETAILS%",
    duration_ms: "%DURATION%",
    bytes_received: "%BYTES_RECEIVED%",
    bytes_sent: "%BYTES_SENT%",
  });
}

/** The parts every HCM shares; callers add the direction-specific fields. */
export function httpConnectionManager(
  statPrefix: string,
  routeConfig: RouteConfiguration,
  httpFilters: HttpFilter[],
  extra: Omit<
    HttpConnectionManager,
    | "@type"
    | "stat_prefix"
    | "codec_type"
    | "normalize_path"
    | "stream_idle_timeout"
    | "route_config"
    | "http_filters"
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
      stream_idle_timeout: STREAM_IDLE_TIMEOUT,
      ...extra,
      route_config: routeConfig,
      http_filters: [...httpFilters, routerFilter()],
    },
  };
}

/** When a route retries: on these conditions; `perTry` sets the policy's per-try timeout. */
export interface RetryChoice {
  on: string;
  perTry: boolean;
}

/** What a route's timing and retries read of a traffic policy (the budget belongs to the cluster). */
export type RouteTraffic = Pick<TrafficSpec, "timeout" | "idleTimeout"> & {
  retries: Omit<TrafficSpec["retries"], "budget">;
};

function retryPolicy(traffic: Pick<RouteTraffic, "retries">, choice: RetryChoice): RetryPolicy {
  const { retries } = traffic;
  return {
    retry_on: choice.on,
    num_retries: retries.attempts,
    ...(retries.perTryTimeout && choice.perTry ? { per_try_timeout: retries.perTryTimeout } : {}),
    retry_back_off: { base_interval: retries.backoff.base, max_interval: retries.backoff.max },
    retry_host_predicate: [
      {
        name: EXTENSION_NAMES.previousHosts,
        typed_config: { "@type": TYPE_URLS.previousHosts },
      },
    ],
    host_selection_retry_max_attempts: RETRY_HOST_SELECTION_ATTEMPTS,
  };
}

/** To one cluster, timed by the traffic policy; with retries when `retry` is given. */
export function routeAction(
  cluster: string,
  traffic: RouteTraffic,
  retry?: RetryChoice,
): RouteAction {
  return {
    cluster,
    timeout: traffic.timeout,
    ...(traffic.idleTimeout ? { idle_timeout: traffic.idleTimeout } : {}),
    ...(retry && traffic.retries.attempts > 0 ? { retry_policy: retryPolicy(traffic, retry) } : {}),
  };
}

/**
 * Retries of what never reached the app, for any method. No per-try timeout: a request that
 * timed out has reached the app and is not retried here, so it would only shorten the timeout.
 */
export const SAFE_RETRY: RetryChoice = { on: SAFE_RETRY_ON, perTry: false };

/** Turns on the stateful-session filter for one route (see outboundListener). */
export function sessionAffinity(header: string): StatefulSessionPerRoute {
  return {
    "@type": TYPE_URLS.statefulSessionPerRoute,
    stateful_session: {
      session_state: {
        name: EXTENSION_NAMES.envelopeSessionState,
        typed_config: { "@type": TYPE_URLS.envelopeSessionState, header: { name: header } },
      },
    },
  };
}

/**
 * Routes to one dependency: idempotent methods retry on the policy's conditions; other methods
 * only on failures that never reached the app, so a POST is never sent twice.
 */
export function upstreamRoutes(
  upstream: Upstream,
  match: PathMatch = { prefix: "/" },
  extra: {
    prefix_rewrite?: string;
    typed_per_filter_config?: PerFilterConfig;
    metadata?: Metadata;
  } = {},
): Route[] {
  const cluster = upstreamClusterName(upstream);
  const { traffic } = upstream;
  const perFilter: PerFilterConfig = {
    ...extra.typed_per_filter_config,
    ...(traffic.sessionAffinity
      ? { [EXTENSION_NAMES.statefulSession]: sessionAffinity(traffic.sessionAffinity.header) }
      : {}),
  };
  const action = (retry: RetryChoice): RouteAction => ({
    ...routeAction(cluster, traffic, retry),
    ...(extra.prefix_rewrite !== undefined ? { prefix_rewrite: extra.prefix_rewrite } : {}),
  });
  const perRoute = {
    ...(Object.keys(perFilter).length > 0 ? { typed_per_filter_config: perFilter } : {}),
    ...(extra.metadata ? { metadata: structuredClone(extra.metadata) } : {}),
  };
  const idempotent: Route = {
    match: {
      ...match,
      headers: [
        { name: ":method", string_match: { safe_regex: { regex: IDEMPOTENT_METHODS.join("|") } } },
      ],
    },
    route: action({ on: traffic.retries.retryOn, perTry: true }),
    ...perRoute,
  };
  const other: Route = { match: { ...match }, route: action(SAFE_RETRY), ...perRoute };
  return traffic.retries.attempts > 0 ? [idempotent, other] : [other];
}

const NOT_FOUND: Route = { match: { prefix: "/" }, direct_response: { status: 404 } };

/** Envoy's local rate limit: a token bucket per replica; over it, 429 with x-ratelimit-* headers. */
export function rateLimitFilter(limit: { requestsPerSecond: number; burst: number }): HttpFilter {
  const always = (key: string) => ({
    runtime_key: key,
    default_value: { numerator: 100, denominator: "HUNDRED" as const },
  });
  return {
    name: EXTENSION_NAMES.localRateLimit,
    typed_config: {
      "@type": TYPE_URLS.localRateLimit,
      stat_prefix: "inbound_rate_limit",
      status: { code: "TooManyRequests" },
      token_bucket: {
        max_tokens: limit.burst,
        tokens_per_fill: limit.requestsPerSecond,
        fill_interval: "1s",
      },
      // Both default to 0 %: without them the filter neither runs nor enforces.
      filter_enabled: always("inbound_rate_limit_enabled"),
      filter_enforced: always("inbound_rate_limit_enforced"),
      enable_x_ratelimit_headers: "DRAFT_VERSION_03",
    },
  };
}

/**
 * Inbound: mTLS (client certificate required, SAN allow-list), connection-level RBAC, then HTTP
 * with request-level RBAC and the service's rate limit; the app gets the verified caller identity
 * in a sanitised x-forwarded-client-cert header (any client-supplied XFCC is replaced). The route
 * to the app carries the service's timeouts: without one Envoy would cut any response at 15 s.
 */
export function inboundListener(spec: SidecarSpec): Listener {
  const name = LISTENER_NAMES.inbound;
  return {
    name,
    stat_prefix: name,
    address: podAddress(spec.bindAddress, spec.ports.inbound),
    traffic_direction: "INBOUND",
    socket_options: keepaliveSocketOptions(),
    ...(spec.accessLog ? { access_log: [connectionLog(name)] } : {}),
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
                  routes: [
                    {
                      match: { prefix: "/" },
                      route: routeAction(CLUSTER_NAMES.localApp, spec.traffic),
                    },
                  ],
                },
              ],
            },
            [
              httpRbacFilter(spec.callers),
              ...(spec.traffic.rateLimit ? [rateLimitFilter(spec.traffic.rateLimit)] : []),
            ],
            {
              // Path rules match the path Envoy sees, the app may decode %2F into "/" after it:
              // "/books/..%2Fadmin" passes a "/books/" rule and reaches "/admin". Envoy keeps
              // escaped slashes by default (conn_manager_utility.cc maybeNormalizePath); refuse
              // them with 400 before any filter runs.
              path_with_escaped_slashes_action: "REJECT_REQUEST",
              // Callers that negotiated h2: the same limits and keepalive as their clusters.
              http2_protocol_options: meshHttp2Options(),
              // The app's own `server` header, or none; not `server: envoy`.
              server_header_transformation: "PASS_THROUGH",
              forward_client_cert_details: "SANITIZE_SET",
              set_current_client_cert_details: { uri: true, dns: true },
              local_reply_config: { mappers: errorBodyMappers() },
              ...(spec.accessLog ? { access_log: [accessLog("inbound")] } : {}),
              ...(spec.tracing ? { tracing: hcmTracing(spec.tracing, spec.service, false) } : {}),
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
export function peerHostnames(peer: Upstream): string[] {
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
 * Host names routed to a dependency. The outbound route configuration ignores the Host
 * header's port, so `bookapi` and `bookapi:15006` both match. A sole dependency (and no HTTP
 * egress) also takes the loopback names, so the app can simply call http://127.0.0.1:<outbound>.
 */
export function upstreamDomains(spec: SidecarSpec, upstream: Upstream): string[] {
  const hosts = peerHostnames(upstream);
  if (spec.upstreams.length === 1 && httpEgress(spec).length === 0)
    hosts.push("127.0.0.1", "localhost");
  return hosts;
}

export function upstreamVirtualHost(spec: SidecarSpec, upstream: Upstream): VirtualHost {
  return {
    name: upstream.name,
    domains: upstreamDomains(spec, upstream),
    routes: upstreamRoutes(upstream),
  };
}

/** Egress targets reached through the outbound HTTP listener. */
function httpEgress(spec: SidecarSpec): EgressSpec[] {
  return spec.egress.filter((e) => e.protocol !== "tcp");
}

/** Calls to hosts outside the mesh: Envoy's route timeout, and retries of what never left. */
export const EGRESS_TRAFFIC: RouteTraffic = {
  timeout: "15s",
  retries: { attempts: 2, retryOn: SAFE_RETRY_ON, backoff: { base: "0.025s", max: "0.250s" } },
};

/** An external host: the app sends `Host: <host>` to the outbound listener; Envoy dials it. */
export function egressVirtualHost(egress: EgressSpec): VirtualHost {
  return {
    name: egressName(egress),
    domains: [egress.host],
    routes: [
      {
        match: { prefix: "/" },
        route: routeAction(egressName(egress), EGRESS_TRAFFIC, SAFE_RETRY),
      },
    ],
  };
}

/**
 * Outbound: plain HTTP from the app on loopback only, one virtual host per dependency and per
 * HTTP egress host (the config layer keeps their names apart: Envoy refuses a domain twice).
 * There is no `*` host: a request for anything else gets Envoy's 404, not a guess. Only built
 * when the service calls something.
 */
export function outboundListener(spec: SidecarSpec): Listener {
  const name = LISTENER_NAMES.outbound;
  const virtualHosts = [
    ...spec.upstreams.map((u) => upstreamVirtualHost(spec, u)),
    ...httpEgress(spec).map(egressVirtualHost),
  ];
  const affinity = spec.upstreams.some((u) => u.traffic.sessionAffinity);
  return {
    name,
    stat_prefix: name,
    address: socketAddress("127.0.0.1", spec.ports.outbound),
    traffic_direction: "OUTBOUND",
    filter_chains: [
      {
        filters: [
          httpConnectionManager(
            name,
            { name, ignore_port_in_host_matching: true, virtual_hosts: virtualHosts },
            // Session affinity: the filter has no session state of its own, so it acts only on
            // routes that set one (typed_per_filter_config, see upstreamRoutes).
            affinity
              ? [
                  {
                    name: EXTENSION_NAMES.statefulSession,
                    typed_config: { "@type": TYPE_URLS.statefulSession },
                  },
                ]
              : [],
            {
              ...(spec.accessLog ? { access_log: [accessLog("outbound")] } : {}),
              ...(spec.tracing ? { tracing: hcmTracing(spec.tracing, spec.service, false) } : {}),
            },
          ),
        ],
      },
    ],
  };
}

/** Idle TCP egress connections close after Envoy's default hour, stated. */
export const TCP_EGRESS_IDLE_TIMEOUT: Duration = "3600s";

/** A tcp egress target (a database): the app connects to 127.0.0.1:<localPort>. */
export function tcpEgressListener(egress: EgressSpec): Listener {
  const name = egressName(egress);
  if (egress.localPort === undefined)
    throw new Error(`egress ${egress.name}: tcp needs a localPort`);
  return {
    name,
    stat_prefix: name,
    address: socketAddress("127.0.0.1", egress.localPort),
    traffic_direction: "OUTBOUND",
    filter_chains: [
      {
        filters: [
          {
            name: EXTENSION_NAMES.tcpProxy,
            typed_config: {
              "@type": TYPE_URLS.tcpProxy,
              stat_prefix: name,
              cluster: name,
              idle_timeout: TCP_EGRESS_IDLE_TIMEOUT,
            },
          },
        ],
      },
    ],
  };
}

/**
 * A listener that forwards exactly one path to the admin API and answers 404 to everything
 * else. `path` is an exact match (after normalisation), so neither sub-paths nor other admin
 * endpoints are reachable from outside the pod.
 */
function singlePathListener(
  bind: SidecarSpec["bindAddress"],
  name: string,
  port: number,
  path: string,
  adminPath: string,
): Listener {
  const route: Route = {
    match: { path },
    route: {
      cluster: CLUSTER_NAMES.admin,
      ...(adminPath === path ? {} : { prefix_rewrite: adminPath }),
      timeout: ADMIN_ROUTE_TIMEOUT,
    },
  };
  return {
    name,
    stat_prefix: name,
    address: podAddress(bind, port),
    traffic_direction: "INBOUND",
    // Kubelet probes and scrapes still get through when the connection cap is reached, and when
    // the heap is past the overload manager's thresholds: with bypass_overload_manager the
    // listener's connection manager gets Envoy's never-overloaded NullOverloadManager
    // (http_connection_manager config.cc), as the admin listener does. Readiness then follows
    // Envoy's state, not its load, and metrics keep coming during the incident they describe.
    ignore_global_conn_limit: true,
    bypass_overload_manager: true,
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
export function healthListener(spec: Pick<SidecarSpec, "ports" | "bindAddress">): Listener {
  return singlePathListener(
    spec.bindAddress,
    LISTENER_NAMES.health,
    spec.ports.health,
    EXPOSED_PATHS.health,
    EXPOSED_PATHS.adminReady,
  );
}

/** Prometheus scraping: /stats/prometheus only. */
export function metricsListener(spec: Pick<SidecarSpec, "ports" | "bindAddress">): Listener {
  return singlePathListener(
    spec.bindAddress,
    LISTENER_NAMES.metrics,
    spec.ports.metrics,
    EXPOSED_PATHS.metrics,
    EXPOSED_PATHS.metrics,
  );
}

/**
 * Whether the sidecar has an outbound listener: for mesh dependencies or http/https egress. The
 * workload gives the app its outbound URL by the same rule.
 */
export function hasOutboundListener(s: {
  upstreams: readonly unknown[];
  egress: readonly { protocol: string }[];
}): boolean {
  return s.upstreams.length > 0 || s.egress.some((e) => e.protocol !== "tcp");
}

/** Every listener of the sidecar. */
export function buildListeners(spec: SidecarSpec): Listener[] {
  return [
    inboundListener(spec),
    ...(hasOutboundListener(spec) ? [outboundListener(spec)] : []),
    ...spec.egress.filter((e) => e.protocol === "tcp").map(tcpEgressListener),
    healthListener(spec),
    metricsListener(spec),
  ];
}
