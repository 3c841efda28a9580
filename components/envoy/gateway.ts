/**
 * The ingress gateway's Envoy: one TLS listener for clients outside the cluster (server
 * authentication only), routes to mesh services over mTLS with the gateway's own mesh identity,
 * bearer-token validation (JWT authn) with MCP's protected-resource metadata (RFC 9728), and
 * CORS for browser clients. Envoy's edge-proxy guidance (docs: configuration/best_practices/edge)
 * sets the buffer, header and HTTP/2 limits below.
 */
import { hcmTracing } from "./tracing";
import { buildAdmin, buildOverloadManager, buildStatsConfig, toJson } from "./bootstrap";
import { adminCluster, collectorCluster, egressCluster, upstreamCluster } from "./clusters";
import { keepaliveSocketOptions, meshHttp2Options } from "./connections";
import {
  accessLog,
  connectionLog,
  errorBodyMappers,
  healthListener,
  httpConnectionManager,
  metricsListener,
  podAddress,
  upstreamRoutes,
} from "./listeners";
import {
  CERT_FILES,
  ENVOY_FILES,
  GatewayRouteSpec,
  GatewaySpec,
  JwtSpec,
  RESOURCE_METADATA_PATH,
} from "./model";
import { buildSdsFiles, sdsSecretConfig } from "./sds";
import { egressName } from "./spec";
import { TLS_PARAMS, tlsTransportSocket } from "./tls";
import {
  AccessLogFilter,
  Bootstrap,
  Cluster,
  CorsPolicy,
  Duration,
  EdgeTlsContext,
  EXTENSION_NAMES,
  HttpFilter,
  JwtProvider,
  Listener,
  Metadata,
  PathMatch,
  PerFilterConfig,
  ResponseMapper,
  Route,
  RbacRules,
  StringMatcher,
  TlsCertificateSecret,
  TYPE_URLS,
  VirtualHost,
} from "./types";

/** The gateway's TLS listener (also its stat prefix). */
export const GATEWAY_LISTENER = "gateway";

/** SDS name of the gateway's public certificate. */
export const EDGE_SECRET = "edge";

/**
 * Edge limits, from Envoy's edge-proxy guidance: 32 KiB buffers per connection (default 1 MiB),
 * 10 s to receive request headers (default: none), idle client connections closed after an hour,
 * and header names with underscores refused (an upstream may read `x_user` as `x-user`). HTTP/2
 * takes the same guidance's limits as the mesh does (connections.ts MESH_HTTP2).
 */
export const EDGE_LIMITS = {
  bufferBytes: 32768,
  requestHeadersTimeout: "10s",
  downstreamIdleTimeout: "3600s",
} as const;

/**
 * Response headers that would tell a client how the inside is built. The routers add no x-envoy-*
 * header (suppress_envoy_headers, on every sidecar too); these are what an app or an Envoy
 * elsewhere could still send, from Envoy's list of x-envoy-* response headers (router docs).
 */
export const INTERNAL_RESPONSE_HEADERS = [
  "server",
  "x-envoy-upstream-service-time",
  "x-envoy-overloaded",
  "x-envoy-ratelimited",
  "x-envoy-degraded",
  "x-envoy-decorator-operation",
  "x-envoy-upstream-healthchecked-cluster",
  "x-envoy-immediate-health-check-fail",
  "x-envoy-attempt-count",
] as const;

/** Where jwt_authn leaves its results in the request's dynamic metadata. */
export const JWT_METADATA = {
  /** Verified payload; `scope` turned into a list. */
  payload: "jwt_payload",
  /**
   * Set on a failed verification: {code, message}; not for a missing token when the filter has
   * several providers (authenticator.cc), which is why the 401 mappers also match the status.
   */
  failure: "jwt_failure",
} as const;

/**
 * A JWKS fetch: 5 s to answer, 3 retries 0.5-4 s apart; when it still fails, fetched again in
 * 10 s (Envoy's default is 1 s, hard on an authorization server that is down).
 */
const JWKS_FETCH = {
  timeout: "5s" as Duration,
  retries: 3,
  retryBase: "0.500s" as Duration,
  retryMax: "4s" as Duration,
  failedRefetch: "10s" as Duration,
};

/** Token expiry and not-before are checked with this much leeway (Envoy's default, stated). */
export const JWT_CLOCK_SKEW_SECONDS = 60;

/**
 * What browsers may send and read across origins: MCP's Streamable HTTP headers (session,
 * protocol version, SSE resumption) and the bearer token; WWW-Authenticate must be readable
 * for a browser client to find the authorization server.
 */
export const MCP_CORS = {
  allowMethods: "GET, POST, DELETE, OPTIONS",
  allowHeaders:
    "authorization, content-type, accept, mcp-session-id, mcp-protocol-version, last-event-id",
  exposeHeaders: "mcp-session-id, www-authenticate",
} as const;

/** The gateway's public certificate, from its own Secret mount, reloaded when it rotates. */
export function edgeSecret(spec: Pick<GatewaySpec, "paths">): TlsCertificateSecret {
  const dir = spec.paths.edgeCertDir;
  return {
    "@type": TYPE_URLS.secret,
    name: EDGE_SECRET,
    tls_certificate: {
      certificate_chain: { filename: `${dir}/${CERT_FILES.certificate}` },
      private_key: { filename: `${dir}/${CERT_FILES.privateKey}` },
      watched_directory: { path: dir },
    },
  };
}

/** Server authentication only: clients prove who they are with a bearer token, not a certificate. */
export function edgeTlsContext(spec: Pick<GatewaySpec, "paths">): EdgeTlsContext {
  return {
    "@type": TYPE_URLS.downstreamTlsContext,
    common_tls_context: {
      tls_params: { ...TLS_PARAMS, ecdh_curves: [...TLS_PARAMS.ecdh_curves] },
      tls_certificate_sds_secret_configs: [
        sdsSecretConfig(spec.paths, EDGE_SECRET, ENVOY_FILES.sdsEdge),
      ],
      alpn_protocols: ["h2", "http/1.1"],
    },
    require_client_certificate: false,
  };
}

/** The distinct JWT providers the routes use, in route order. */
export function jwtProviders(spec: Pick<GatewaySpec, "routes">): JwtSpec[] {
  const seen = new Map<string, JwtSpec>();
  for (const r of spec.routes)
    if (r.jwt && !seen.has(r.jwt.provider)) seen.set(r.jwt.provider, r.jwt);
  return [...seen.values()];
}

/** A JWKS server as an egress target: one cluster per host and port, whichever providers use it. */
function jwksTarget(jwks: { host: string; port: number }) {
  return {
    // Dots would split the cluster's stat names (cluster.<name>.*).
    name: `jwks_${jwks.host.replace(/\./g, "_")}_${jwks.port}`,
    host: jwks.host,
    port: jwks.port,
    protocol: "https" as const,
  };
}

/** The cluster a JWKS is fetched through. */
export function jwksClusterName(jwks: { host: string; port: number }): string {
  return egressName(jwksTarget(jwks));
}

/**
 * One provider. The token is read from `Authorization: Bearer` only (Envoy would also read an
 * `access_token` query parameter, which MCP forbids), must carry `exp`, and is not forwarded:
 * the token ends at the edge, so no service behind it can replay it (MCP: no token passthrough).
 */
export function jwtProvider(jwt: JwtSpec): JwtProvider {
  return {
    issuer: jwt.issuer,
    audiences: [...jwt.audiences],
    ...("uri" in jwt.jwks
      ? {
          remote_jwks: {
            http_uri: {
              uri: jwt.jwks.uri,
              cluster: jwksClusterName(jwt.jwks),
              timeout: JWKS_FETCH.timeout,
            },
            cache_duration: jwt.jwks.cacheDuration,
            // Fetched in the main thread before the listener opens and again when the cache
            // expires, shared by every worker; without it each worker fetches on its first
            // request, which waits.
            async_fetch: {
              fast_listener: false,
              failed_refetch_duration: JWKS_FETCH.failedRefetch,
            },
            // A fetch that fails (at start-up too) is retried before the next refetch.
            retry_policy: {
              num_retries: JWKS_FETCH.retries,
              retry_back_off: {
                base_interval: JWKS_FETCH.retryBase,
                max_interval: JWKS_FETCH.retryMax,
              },
            },
          },
        }
      : { local_jwks: { inline_string: jwt.jwks.inline } }),
    from_headers: [{ name: "Authorization", value_prefix: "Bearer " }],
    forward: false,
    require_expiration: true,
    clock_skew_seconds: JWT_CLOCK_SKEW_SECONDS,
    payload_in_metadata: JWT_METADATA.payload,
    normalize_payload_in_metadata: { space_delimited_claims: ["scope"] },
    failed_status_in_metadata: JWT_METADATA.failure,
  };
}

/** The JWT authn filter: every provider, each its own requirement, chosen per route. */
export function jwtAuthnFilter(spec: Pick<GatewaySpec, "routes" | "cors">): HttpFilter {
  const providers = jwtProviders(spec);
  return {
    name: EXTENSION_NAMES.jwtAuthn,
    typed_config: {
      "@type": TYPE_URLS.jwtAuthn,
      providers: Object.fromEntries(providers.map((p) => [p.provider, jwtProvider(p)])),
      requirement_map: Object.fromEntries(
        providers.map((p) => [p.provider, { provider_name: p.provider }]),
      ),
      // A browser's preflight carries no token; the CORS filter answers it.
      bypass_cors_preflight: spec.cors !== undefined,
    },
  };
}

/** RBAC rules that admit a verified token only when its `scope` holds every required scope. */
export function scopeRules(jwt: JwtSpec): RbacRules {
  return {
    action: "ALLOW",
    policies: {
      "required-scopes": {
        permissions: [{ any: true }],
        principals: [
          {
            and_ids: {
              // sourced_metadata (Envoy >= 1.33) replaces the deprecated `metadata` principal.
              ids: jwt.requiredScopes.map((scope) => ({
                sourced_metadata: {
                  metadata_matcher: {
                    filter: EXTENSION_NAMES.jwtAuthn,
                    path: [{ key: JWT_METADATA.payload }, { key: "scope" }],
                    value: { list_match: { one_of: { string_match: { exact: scope } } } },
                  },
                  metadata_source: "DYNAMIC" as const,
                },
              })),
            },
          },
        ],
      },
    },
  };
}

/**
 * Marks a route published without a token on purpose (`routes[].public`). Envoy ignores route
 * metadata no filter reads; the policy pack reads it to tell a public route from a forgotten one.
 */
export const PUBLIC_ROUTE_METADATA: Metadata = {
  filter_metadata: { "bookapi-mesh": { public: true } },
};

/** Whether any route checks tokens (the JWT and RBAC filters are only built then). */
export function hasJwt(spec: Pick<GatewaySpec, "routes">): boolean {
  return spec.routes.some((r) => r.jwt);
}

/** The token check of one route: its provider's requirement, or none said out loud. */
function jwtPerRoute(spec: Pick<GatewaySpec, "routes">, jwt?: JwtSpec): PerFilterConfig {
  if (!hasJwt(spec)) return {};
  return {
    [EXTENSION_NAMES.jwtAuthn]: jwt
      ? { "@type": TYPE_URLS.jwtAuthnPerRoute, requirement_name: jwt.provider }
      : { "@type": TYPE_URLS.jwtAuthnPerRoute, disabled: true },
    ...(jwt && jwt.requiredScopes.length > 0
      ? {
          [EXTENSION_NAMES.httpRbac]: {
            "@type": TYPE_URLS.httpRbacPerRoute,
            rbac: { rules: scopeRules(jwt) },
          },
        }
      : {}),
  };
}

/**
 * The Envoy routes of one gateway route. A prefix `/p` matches `/p` and `/p/...`, never `/pq`
 * (path_separated_prefix). prefix_rewrite replaces the matched text, so two cases take two
 * routes, as Envoy's prefix_rewrite docs show: `/p` to `/` (`/p/x` becomes `/x`, never `//x`),
 * and `/` to `/r` (`/x` becomes `/r/x`, never `/rx`).
 */
export function gatewayRoutes(spec: Pick<GatewaySpec, "routes">, route: GatewayRouteSpec): Route[] {
  const perFilter = jwtPerRoute(spec, route.jwt);
  const extra = (rewrite?: string) => ({
    ...(rewrite !== undefined ? { prefix_rewrite: rewrite } : {}),
    ...(Object.keys(perFilter).length > 0 ? { typed_per_filter_config: perFilter } : {}),
    ...(route.public ? { metadata: PUBLIC_ROUTE_METADATA } : {}),
  });
  const p = route.pathPrefix;
  const r = route.rewritePrefix;
  if (p === "/" && r !== undefined && r !== "/")
    return [
      ...upstreamRoutes(route.upstream, { path: "/" }, extra(r)),
      ...upstreamRoutes(route.upstream, { prefix: "/" }, extra(`${r}/`)),
    ];
  if (p === "/") return upstreamRoutes(route.upstream, { prefix: "/" }, extra());
  if (r === "/")
    return [
      ...upstreamRoutes(route.upstream, { prefix: `${p}/` }, extra("/")),
      ...upstreamRoutes(route.upstream, { path: p }, extra("/")),
    ];
  const match: PathMatch = { path_separated_prefix: p };
  return upstreamRoutes(route.upstream, match, extra(r));
}

/** RFC 9728 protected resource metadata of an authenticated route. */
export function resourceMetadata(route: GatewayRouteSpec): Record<string, unknown> {
  if (!route.jwt || !route.resource) throw new Error("internal: route has no resource");
  return {
    resource: route.resource.url,
    authorization_servers: [route.jwt.issuer],
    bearer_methods_supported: ["header"],
    ...(route.jwt.requiredScopes.length > 0 ? { scopes_supported: route.jwt.requiredScopes } : {}),
  };
}

/** The gateway answers a metadata request itself, without a token. */
function metadataRoutes(
  spec: Pick<GatewaySpec, "routes" | "cors">,
  path: string,
  route: GatewayRouteSpec,
): Route[] {
  const header = (key: string, value: string) => ({
    header: { key, value },
    append_action: "OVERWRITE_IF_EXISTS_OR_ADD" as const,
  });
  // The CORS filter skips direct responses (cors_filter.cc: no route entry), so a browser client
  // could not read the document: the metadata is public, any origin may, and a preflight for
  // the MCP-Protocol-Version header the client sends is answered here.
  const cors = spec.cors
    ? [
        header("access-control-allow-origin", "*"),
        header("access-control-allow-methods", "GET"),
        header("access-control-allow-headers", "mcp-protocol-version"),
        header("access-control-max-age", corsMaxAge(spec.cors)),
      ]
    : [];
  const perFilter = jwtPerRoute(spec);
  return [
    ...(spec.cors
      ? [
          {
            match: {
              path,
              headers: [{ name: ":method", string_match: { safe_regex: { regex: "OPTIONS" } } }],
            },
            direct_response: { status: 204 },
            response_headers_to_add: cors,
            typed_per_filter_config: perFilter,
          },
        ]
      : []),
    {
      match: { path },
      direct_response: { status: 200, body: { inline_string: toJson(resourceMetadata(route)) } },
      response_headers_to_add: [header("content-type", "application/json"), ...cors],
      typed_per_filter_config: perFilter,
    },
  ];
}

/** The routes one host sees: its own, then the any-host ones; longest prefix first. */
function routesFor(spec: Pick<GatewaySpec, "routes">, host?: string): GatewayRouteSpec[] {
  const own = spec.routes.filter((r) => r.host !== undefined && r.host === host);
  const any = spec.routes.filter((r) => r.host === undefined);
  return [...own, ...any]
    .map((r, i) => ({ r, i }))
    .sort((a, b) => b.r.pathPrefix.length - a.r.pathPrefix.length || a.i - b.i)
    .map(({ r }) => r);
}

/** Every host a route names, then `*` for the rest (when any route takes every host). */
function hostsOf(spec: Pick<GatewaySpec, "routes">): (string | undefined)[] {
  const named = [...new Set(spec.routes.flatMap((r) => (r.host ? [r.host] : [])))];
  return [...named, ...(spec.routes.some((r) => !r.host) ? [undefined] : [])];
}

/**
 * One virtual host: the metadata documents of its authenticated routes (each at its RFC 9728
 * path, the first also at the bare well-known path, which older clients ask first), then the
 * routes. No route matches: Envoy's 404.
 */
export function gatewayVirtualHost(spec: GatewaySpec, host?: string): VirtualHost {
  const routes = routesFor(spec, host);
  const authenticated = routes.filter((r) => r.resource);
  const metadata = new Map<string, GatewayRouteSpec>();
  for (const r of authenticated) if (r.resource) metadata.set(r.resource.metadataPath, r);
  if (authenticated.length > 0 && !metadata.has(RESOURCE_METADATA_PATH))
    metadata.set(RESOURCE_METADATA_PATH, authenticated[0]);
  return {
    name: host ?? "any",
    domains: [host ?? "*"],
    routes: [
      ...[...metadata].flatMap(([path, r]) => metadataRoutes(spec, path, r)),
      ...routes.flatMap((r) => gatewayRoutes(spec, r)),
    ],
    ...(spec.cors
      ? { typed_per_filter_config: { [EXTENSION_NAMES.cors]: corsPolicy(spec.cors) } }
      : {}),
  };
}

/** CORS for every route of a host: the listed origins, MCP's headers, no credentials (cookies). */
export function corsPolicy(cors: NonNullable<GatewaySpec["cors"]>): CorsPolicy {
  return {
    "@type": TYPE_URLS.corsPolicy,
    allow_origin_string_match: cors.allowOrigins.map((exact) => ({ exact })),
    allow_methods: MCP_CORS.allowMethods,
    allow_headers: MCP_CORS.allowHeaders,
    expose_headers: MCP_CORS.exposeHeaders,
    max_age: corsMaxAge(cors),
    allow_credentials: false,
    // Envoy forwards a preflight from an origin not listed (default true), and jwt_authn lets
    // every preflight through: the service would get unauthenticated OPTIONS requests.
    forward_not_matching_preflights: false,
  };
}

/** CORS max-age: whole seconds, as text. */
function corsMaxAge(cors: NonNullable<GatewaySpec["cors"]>): string {
  return String(Math.round(Number(cors.maxAge.slice(0, -1))));
}

/** A request-header filter matching any of `matches` on header `name`. */
function headerAnyOf(name: string, matches: StringMatcher[]): AccessLogFilter {
  const one = (string_match: StringMatcher): AccessLogFilter => ({
    header_filter: { header: { name, string_match } },
  });
  return matches.length === 1 ? one(matches[0]) : { or_filter: { filters: matches.map(one) } };
}

/**
 * Requests a route takes, as local-reply filters: its path prefix (the path itself, or below it,
 * or with a query), and its host if it names one, with or without a port and in any case, as
 * Envoy picks virtual hosts. Plain string matchers, not regular expressions: Envoy refuses an
 * RE2 program above 100 (re2.max_program_size.error_level), which a long host name with a
 * case-insensitive regex exceeds.
 */
function routeRequestFilters(route: GatewayRouteSpec, host?: string): AccessLogFilter[] {
  const p = route.pathPrefix;
  return [
    ...(p !== "/"
      ? [headerAnyOf(":path", [{ exact: p }, { prefix: `${p}/` }, { prefix: `${p}?` }])]
      : []),
    ...(host
      ? [
          headerAnyOf(":authority", [
            { exact: host, ignore_case: true },
            { prefix: `${host}:`, ignore_case: true },
          ]),
        ]
      : []),
  ];
}

/**
 * MCP authorization (2025-06-18) wants a failed token answered with 401 and
 * `WWW-Authenticate: Bearer resource_metadata="<url>"`. jwt_authn (filter.cc) answers 401 for
 * every failure but a wrong audience, which gets 403, and its header is `Bearer realm=...`. One
 * mapper per authenticated route (first match wins; listed in the order Envoy picks routes) turns
 * every failed verification into that reply: a local 401 (only jwt_authn sends one here), or the
 * failure jwt_authn records in metadata (the 403; it records nothing for a missing token when
 * there are several providers, hence both). Mappers see only local replies, so a 401 from a
 * service passes unchanged, and run after the filter's own headers, which they overwrite
 * (http/utility.cc prepareLocalReply). A token without a required scope stays 403 (RBAC).
 */
export function localReplyMappers(spec: GatewaySpec): ResponseMapper[] {
  const failed: AccessLogFilter = {
    or_filter: {
      filters: [
        {
          status_code_filter: {
            comparison: {
              op: "EQ",
              value: { default_value: 401, runtime_key: "gateway.jwt_unauthorized_status" },
            },
          },
        },
        {
          metadata_filter: {
            matcher: {
              filter: EXTENSION_NAMES.jwtAuthn,
              path: [{ key: JWT_METADATA.failure }],
              value: { present_match: true },
            },
            // Envoy's default is true: a request without the key would match.
            match_if_key_not_found: false,
          },
        },
      ],
    },
  };
  return hostsOf(spec).flatMap((host) =>
    routesFor(spec, host).flatMap((route): ResponseMapper[] =>
      route.resource
        ? [
            {
              filter: { and_filter: { filters: [failed, ...routeRequestFilters(route, host)] } },
              status_code: 401,
              headers_to_add: [
                {
                  header: {
                    key: "www-authenticate",
                    value: `Bearer resource_metadata="${route.resource.metadataUrl}"`,
                  },
                  append_action: "OVERWRITE_IF_EXISTS_OR_ADD",
                },
              ],
            },
          ]
        : [],
    ),
  );
}

/**
 * The edge listener: TLS 1.2+ with the gateway's public certificate; the client's address is the
 * connection's (use_remote_address), so a client cannot claim another through X-Forwarded-For.
 * Filters: CORS (first, so its headers reach every reply, a 401 too), JWT authn, scope RBAC,
 * stateful sessions (routes to services with session affinity), router.
 */
export function gatewayListener(spec: GatewaySpec): Listener {
  const name = GATEWAY_LISTENER;
  const jwt = hasJwt(spec);
  const affinity = spec.routes.some((r) => r.upstream.traffic.sessionAffinity);
  const filters: HttpFilter[] = [
    ...(spec.cors
      ? [{ name: EXTENSION_NAMES.cors, typed_config: { "@type": TYPE_URLS.cors } } as const]
      : []),
    ...(jwt ? [jwtAuthnFilter(spec)] : []),
    ...(jwt && spec.routes.some((r) => r.jwt && r.jwt.requiredScopes.length > 0)
      ? [{ name: EXTENSION_NAMES.httpRbac, typed_config: { "@type": TYPE_URLS.httpRbac } } as const]
      : []),
    ...(affinity
      ? [
          {
            name: EXTENSION_NAMES.statefulSession,
            typed_config: { "@type": TYPE_URLS.statefulSession },
          } as const,
        ]
      : []),
  ];
  const mappers = localReplyMappers(spec);
  return {
    name,
    stat_prefix: name,
    address: podAddress(spec.bindAddress, spec.listenPort),
    traffic_direction: "INBOUND",
    per_connection_buffer_limit_bytes: EDGE_LIMITS.bufferBytes,
    // A client behind a load balancer that drops idle flows silently (AWS NLB 350 s, Azure 240 s).
    socket_options: keepaliveSocketOptions(),
    ...(spec.accessLog ? { access_log: [connectionLog(name)] } : {}),
    filter_chains: [
      {
        transport_socket: tlsTransportSocket(edgeTlsContext(spec)),
        filters: [
          httpConnectionManager(
            name,
            {
              name,
              ignore_port_in_host_matching: true,
              response_headers_to_remove: [...INTERNAL_RESPONSE_HEADERS],
              virtual_hosts: hostsOf(spec).map((host) => gatewayVirtualHost(spec, host)),
            },
            filters,
            {
              use_remote_address: true,
              // Which peers are internal (their x-envoy-* headers kept): Envoy before 1.36 took
              // RFC 1918 addresses when unset, which clients on a private network have; 1.36
              // takes none. Stated, so no Envoy release trusts a client: only loopback.
              internal_address_config: {
                cidr_ranges: [{ address_prefix: "127.0.0.1", prefix_len: 32 }],
              },
              path_with_escaped_slashes_action: "REJECT_REQUEST",
              request_headers_timeout: EDGE_LIMITS.requestHeadersTimeout,
              common_http_protocol_options: {
                idle_timeout: EDGE_LIMITS.downstreamIdleTimeout,
                headers_with_underscores_action: "REJECT_REQUEST",
              },
              http2_protocol_options: meshHttp2Options(),
              // No `server: envoy` (and the service's own is removed above).
              server_header_transformation: "PASS_THROUGH",
              // A client-sent x-forwarded-client-cert is dropped: no certificate is asked for here.
              forward_client_cert_details: "SANITIZE",
              local_reply_config: { mappers: [...mappers, ...errorBodyMappers()] },
              ...(spec.accessLog ? { access_log: [accessLog("inbound", { client: true })] } : {}),
              // The edge decides: a trace starts here for samplingPercent of new requests.
              ...(spec.tracing ? { tracing: hcmTracing(spec.tracing, spec.name, true) } : {}),
            },
          ),
        ],
      },
    ],
  };
}

/** Clusters: admin, one mTLS cluster per routed service, one per JWKS server. */
export function gatewayClusters(spec: GatewaySpec): Cluster[] {
  const upstreams = new Map(spec.routes.map((r) => [r.upstream.name, r.upstream]));
  return [
    adminCluster(spec),
    ...[...upstreams.values()]
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
      .map((u) => ({
        ...upstreamCluster(spec, u),
        per_connection_buffer_limit_bytes: EDGE_LIMITS.bufferBytes,
      })),
    ...[
      ...new Map(
        jwtProviders(spec).flatMap((jwt) => {
          if (!("uri" in jwt.jwks)) return [];
          const target = jwksTarget(jwt.jwks);
          return [[target.name, target] as const];
        }),
      ).values(),
    ].map(egressCluster),
    ...(spec.tracing ? [collectorCluster(spec.tracing)] : []),
  ];
}

export function buildGatewayBootstrap(spec: GatewaySpec): Bootstrap {
  return {
    node: { id: spec.name, cluster: spec.name },
    admin: buildAdmin(spec),
    stats_config: buildStatsConfig(spec.name),
    static_resources: {
      listeners: [gatewayListener(spec), healthListener(spec), metricsListener(spec)],
      clusters: gatewayClusters(spec),
    },
    overload_manager: buildOverloadManager(spec),
  };
}

/** The gateway's ConfigMap data: bootstrap, mesh identity and trust, and its public certificate. */
export function buildGatewayFiles(spec: GatewaySpec): Record<string, string> {
  const sds = buildSdsFiles(spec);
  return {
    [ENVOY_FILES.bootstrap]: toJson(buildGatewayBootstrap(spec)),
    [ENVOY_FILES.sdsCertificate]: toJson(sds.certificate),
    [ENVOY_FILES.sdsValidation]: toJson(sds.validation),
    [ENVOY_FILES.sdsEdge]: toJson({ resources: [edgeSecret(spec)] }),
  };
}
