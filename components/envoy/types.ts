/**
 * TypeScript shapes of the Envoy v3 objects the builders emit, in Envoy's proto3 JSON form
 * (snake_case field names, enums as their names, Durations as "<n>s", wrapper types as plain
 * values). Only the fields we use are declared, so a typo is a compile error rather than an
 * Envoy start-up failure. Field names, enums and type URLs were checked against the v3 protos
 * shipped in @grpc/grpc-js-xds/deps/envoy-api.
 */

const TYPE_URL = "type.googleapis.com/";

/** `@type` URLs of every Any we emit (each resolves to a message in Envoy's v3 API). */
export const TYPE_URLS = {
  downstreamTlsContext: `${TYPE_URL}envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext`,
  upstreamTlsContext: `${TYPE_URL}envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext`,
  secret: `${TYPE_URL}envoy.extensions.transport_sockets.tls.v3.Secret`,
  httpConnectionManager: `${TYPE_URL}envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager`,
  networkRbac: `${TYPE_URL}envoy.extensions.filters.network.rbac.v3.RBAC`,
  httpRbac: `${TYPE_URL}envoy.extensions.filters.http.rbac.v3.RBAC`,
  openTelemetryConfig: `${TYPE_URL}envoy.config.trace.v3.OpenTelemetryConfig`,
  router: `${TYPE_URL}envoy.extensions.filters.http.router.v3.Router`,
  localRateLimit: `${TYPE_URL}envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit`,
  statefulSession: `${TYPE_URL}envoy.extensions.filters.http.stateful_session.v3.StatefulSession`,
  statefulSessionPerRoute: `${TYPE_URL}envoy.extensions.filters.http.stateful_session.v3.StatefulSessionPerRoute`,
  envelopeSessionState: `${TYPE_URL}envoy.extensions.http.stateful_session.envelope.v3.EnvelopeSessionState`,
  previousHosts: `${TYPE_URL}envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate`,
  httpProtocolOptions: `${TYPE_URL}envoy.extensions.upstreams.http.v3.HttpProtocolOptions`,
  stdoutAccessLog: `${TYPE_URL}envoy.extensions.access_loggers.stream.v3.StdoutAccessLog`,
  tcpProxy: `${TYPE_URL}envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy`,
  jwtAuthn: `${TYPE_URL}envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication`,
  jwtAuthnPerRoute: `${TYPE_URL}envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig`,
  cors: `${TYPE_URL}envoy.extensions.filters.http.cors.v3.Cors`,
  corsPolicy: `${TYPE_URL}envoy.extensions.filters.http.cors.v3.CorsPolicy`,
  httpRbacPerRoute: `${TYPE_URL}envoy.extensions.filters.http.rbac.v3.RBACPerRoute`,
  fixedHeap: `${TYPE_URL}envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig`,
  downstreamConnections: `${TYPE_URL}envoy.extensions.resource_monitors.downstream_connections.v3.DownstreamConnectionsConfig`,
  dnsCluster: `${TYPE_URL}envoy.extensions.clusters.dns.v3.DnsCluster`,
} as const;

/** Canonical extension names (informational for typed_config, but what Envoy's docs and logs use). */
export const EXTENSION_NAMES = {
  tls: "envoy.transport_sockets.tls",
  httpConnectionManager: "envoy.filters.network.http_connection_manager",
  networkRbac: "envoy.filters.network.rbac",
  httpRbac: "envoy.filters.http.rbac",
  openTelemetry: "envoy.tracers.opentelemetry",
  router: "envoy.filters.http.router",
  localRateLimit: "envoy.filters.http.local_ratelimit",
  statefulSession: "envoy.filters.http.stateful_session",
  envelopeSessionState: "envoy.http.stateful_session.envelope",
  previousHosts: "envoy.retry_host_predicates.previous_hosts",
  httpProtocolOptions: "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
  stdoutAccessLog: "envoy.access_loggers.stdout",
  tcpProxy: "envoy.filters.network.tcp_proxy",
  jwtAuthn: "envoy.filters.http.jwt_authn",
  cors: "envoy.filters.http.cors",
  fixedHeap: "envoy.resource_monitors.fixed_heap",
  downstreamConnections: "envoy.resource_monitors.global_downstream_max_connections",
  shrinkHeap: "envoy.overload_actions.shrink_heap",
  stopAcceptingRequests: "envoy.overload_actions.stop_accepting_requests",
  rejectIncomingConnections: "envoy.overload_actions.reject_incoming_connections",
  // The factory's registered name (dns_cluster.h), not the "envoy.clusters.dns" of the build list.
  dnsCluster: "envoy.cluster.dns",
} as const;

/** google.protobuf.Duration in JSON form, e.g. "5s". */
export type Duration = `${number}s`;

// ---------------------------------------------------------------------------------------------
// envoy.config.core.v3
// ---------------------------------------------------------------------------------------------

export interface SocketAddress {
  address: string;
  port_value: number;
  /** On `::`: IPV6_V6ONLY off, so IPv4 peers are served too (as IPv4-mapped addresses). */
  ipv4_compat?: boolean;
}

/** A raw socket option (setsockopt), set on the listening socket before bind. */
export interface SocketOption {
  description: string;
  level: number;
  name: number;
  int_value: number;
  state: "STATE_PREBIND";
}

/** HTTP/2 PING keepalive: a peer that does not answer within `timeout` loses its connection. */
export interface Http2Keepalive {
  interval: Duration;
  timeout: Duration;
}

export interface Http2ProtocolOptions {
  max_concurrent_streams: number;
  initial_stream_window_size: number;
  initial_connection_window_size: number;
  connection_keepalive: Http2Keepalive;
}

export interface Address {
  socket_address: SocketAddress;
}

export interface Node {
  id: string;
  cluster: string;
}

/** DataSource, file variant only: we never inline secrets. */
export interface FileDataSource {
  filename: string;
}

export interface WatchedDirectory {
  path: string;
}

export interface PathConfigSource {
  path: string;
  watched_directory: WatchedDirectory;
}

export interface ConfigSource {
  path_config_source: PathConfigSource;
  resource_api_version: "V3";
}

export type TrafficDirection = "INBOUND" | "OUTBOUND";

// ---------------------------------------------------------------------------------------------
// envoy.type.matcher.v3 / envoy.extensions.transport_sockets.tls.v3
// ---------------------------------------------------------------------------------------------

export interface ExactStringMatcher {
  exact: string;
}

export interface SubjectAltNameMatcher {
  san_type: "DNS" | "URI" | "IP_ADDRESS";
  matcher: ExactStringMatcher;
}

export type TlsProtocol = "TLSv1_2" | "TLSv1_3";

export interface TlsParameters {
  tls_minimum_protocol_version: TlsProtocol;
  tls_maximum_protocol_version: TlsProtocol;
  ecdh_curves: string[];
}

export interface SdsSecretConfig {
  name: string;
  sds_config: ConfigSource;
}

/** The static half of a validation context; the CA arrives by SDS and is merged into it. */
export interface DefaultValidationContext {
  match_typed_subject_alt_names: SubjectAltNameMatcher[];
}

export interface CombinedCertificateValidationContext {
  default_validation_context: DefaultValidationContext;
  validation_context_sds_secret_config: SdsSecretConfig;
}

export interface CommonTlsContext {
  tls_params: TlsParameters;
  tls_certificate_sds_secret_configs: SdsSecretConfig[];
  combined_validation_context: CombinedCertificateValidationContext;
  /** ALPN: offered by a client, accepted (in the client's order of preference) by a server. */
  alpn_protocols: string[];
}

export interface DownstreamTlsContext {
  "@type": typeof TYPE_URLS.downstreamTlsContext;
  common_tls_context: CommonTlsContext;
  require_client_certificate: boolean;
}

/** The gateway's server side: its public certificate, no client certificate asked for. */
export interface EdgeTlsContext {
  "@type": typeof TYPE_URLS.downstreamTlsContext;
  common_tls_context: {
    tls_params: TlsParameters;
    tls_certificate_sds_secret_configs: SdsSecretConfig[];
    alpn_protocols: string[];
  };
  require_client_certificate: false;
}

/** TLS to a server outside the mesh: public CAs, its DNS name. */
export interface ExternalTlsContext {
  tls_params: TlsParameters;
  validation_context: {
    trusted_ca: FileDataSource;
    match_typed_subject_alt_names: SubjectAltNameMatcher[];
  };
}

export interface UpstreamTlsContext {
  "@type": typeof TYPE_URLS.upstreamTlsContext;
  common_tls_context: CommonTlsContext;
  sni: string;
}

export interface ExternalUpstreamTlsContext {
  "@type": typeof TYPE_URLS.upstreamTlsContext;
  common_tls_context: ExternalTlsContext;
  sni?: string;
}

export interface TransportSocket<
  T extends DownstreamTlsContext | EdgeTlsContext | UpstreamTlsContext | ExternalUpstreamTlsContext,
> {
  name: typeof EXTENSION_NAMES.tls;
  typed_config: T;
}

export interface TlsCertificate {
  certificate_chain: FileDataSource;
  private_key: FileDataSource;
  watched_directory: WatchedDirectory;
}

export interface SdsValidationContext {
  trusted_ca: FileDataSource;
  watched_directory: WatchedDirectory;
}

export interface TlsCertificateSecret {
  "@type": typeof TYPE_URLS.secret;
  name: string;
  tls_certificate: TlsCertificate;
}

export interface ValidationContextSecret {
  "@type": typeof TYPE_URLS.secret;
  name: string;
  validation_context: SdsValidationContext;
}

export type Secret = TlsCertificateSecret | ValidationContextSecret;

/** A file-based SDS source: a DiscoveryResponse carrying exactly one Secret. */
export interface SdsFile<S extends Secret = Secret> {
  resources: [S];
}

// ---------------------------------------------------------------------------------------------
// envoy.config.rbac.v3 and the RBAC filters
// ---------------------------------------------------------------------------------------------

export interface AuthenticatedPrincipal {
  authenticated: { principal_name: ExactStringMatcher };
}

export interface StringMatcher {
  exact?: string;
  prefix?: string;
  ignore_case?: boolean;
}

/** The subset of envoy.config.rbac.v3.Permission the mesh uses. */
export type RbacPermission =
  | { any: true }
  | { and_rules: { rules: RbacPermission[] } }
  | { or_rules: { rules: RbacPermission[] } }
  | { header: { name: string; string_match: StringMatcher } }
  | { url_path: { path: StringMatcher } };

/** Dynamic metadata a filter left on the request, e.g. the JWT payload jwt_authn verified. */
export interface MetadataMatcher {
  filter: string;
  path: { key: string }[];
  value: { list_match: { one_of: { string_match: ExactStringMatcher } } } | { present_match: true };
}

/** Metadata a principal matches, and where it is read (dynamic: what earlier filters wrote). */
export interface SourcedMetadata {
  metadata_matcher: MetadataMatcher;
  metadata_source: "DYNAMIC";
}

export type RbacPrincipal =
  | AuthenticatedPrincipal
  | { sourced_metadata: SourcedMetadata }
  | { and_ids: { ids: RbacPrincipal[] } };

export interface RbacPolicy {
  permissions: RbacPermission[];
  principals: RbacPrincipal[];
}

export interface RbacRules {
  action: "ALLOW";
  policies: Record<string, RbacPolicy>;
}

export interface NetworkRbac {
  "@type": typeof TYPE_URLS.networkRbac;
  stat_prefix: string;
  rules: RbacRules;
}

export interface HttpRbac {
  "@type": typeof TYPE_URLS.httpRbac;
  /** Absent: the filter enforces nothing unless a route sets rules (RBACPerRoute). */
  rules?: RbacRules;
  /** Counters per policy (per caller): `rbac.policy.<name>.allowed` and `.denied` (Envoy 1.30+). */
  track_per_rule_stats?: boolean;
}

export interface HttpRbacPerRoute {
  "@type": typeof TYPE_URLS.httpRbacPerRoute;
  rbac: { rules: RbacRules };
}

// ---------------------------------------------------------------------------------------------
// envoy.config.route.v3 and the HTTP connection manager
// ---------------------------------------------------------------------------------------------

export interface HeaderMatcher {
  name: string;
  string_match: { safe_regex: { regex: string } };
}

/** How a route matches the path; `path_separated_prefix` `/p` takes `/p` and `/p/...`, not `/pq`. */
export type PathMatch = { prefix: string } | { path: string } | { path_separated_prefix: string };

export type RouteMatch = PathMatch & { headers?: HeaderMatcher[] };

export interface RetryPolicy {
  retry_on: string;
  num_retries: number;
  per_try_timeout?: Duration;
  retry_back_off: { base_interval: Duration; max_interval: Duration };
  retry_host_predicate: [
    {
      name: typeof EXTENSION_NAMES.previousHosts;
      typed_config: { "@type": typeof TYPE_URLS.previousHosts };
    },
  ];
  host_selection_retry_max_attempts: number;
}

export interface RouteAction {
  cluster: string;
  prefix_rewrite?: string;
  /** Whole request to end of response; "0s" turns it off. Envoy's default: 15s. */
  timeout: Duration;
  /** Longest pause on the stream; overrides the HCM's stream_idle_timeout. */
  idle_timeout?: Duration;
  retry_policy?: RetryPolicy;
}

export interface EnvelopeSessionState {
  "@type": typeof TYPE_URLS.envelopeSessionState;
  header: { name: string };
}

export interface StatefulSessionPerRoute {
  "@type": typeof TYPE_URLS.statefulSessionPerRoute;
  stateful_session: {
    session_state: {
      name: typeof EXTENSION_NAMES.envelopeSessionState;
      typed_config: EnvelopeSessionState;
    };
  };
}

export interface JwtAuthnPerRoute {
  "@type": typeof TYPE_URLS.jwtAuthnPerRoute;
  /** A key of the filter's requirement_map, or `disabled: true`. */
  requirement_name?: string;
  disabled?: true;
}

/** Per-route settings of the HTTP filters, keyed by the filter's name. */
export interface PerFilterConfig {
  [EXTENSION_NAMES.statefulSession]?: StatefulSessionPerRoute;
  [EXTENSION_NAMES.jwtAuthn]?: JwtAuthnPerRoute;
  [EXTENSION_NAMES.httpRbac]?: HttpRbacPerRoute;
  [EXTENSION_NAMES.cors]?: CorsPolicy;
}

export interface HeaderValueOption {
  header: { key: string; value: string };
  append_action: "OVERWRITE_IF_EXISTS_OR_ADD";
}

/** Opaque data on a config object, by namespace (config.core.v3.Metadata). */
export interface Metadata {
  filter_metadata: Record<string, Record<string, string | number | boolean>>;
}

export type Route =
  | {
      match: RouteMatch;
      route: RouteAction;
      typed_per_filter_config?: PerFilterConfig;
      metadata?: Metadata;
    }
  | {
      match: RouteMatch;
      direct_response: { status: number; body?: { inline_string: string } };
      response_headers_to_add?: HeaderValueOption[];
      typed_per_filter_config?: PerFilterConfig;
    };

export interface VirtualHost {
  name: string;
  domains: string[];
  routes: Route[];
  typed_per_filter_config?: PerFilterConfig;
}

/** Cross-origin access for browser clients (envoy.filters.http.cors, per virtual host). */
export interface CorsPolicy {
  "@type": typeof TYPE_URLS.corsPolicy;
  allow_origin_string_match: ExactStringMatcher[];
  allow_methods: string;
  allow_headers: string;
  expose_headers: string;
  max_age: string;
  allow_credentials: boolean;
  forward_not_matching_preflights: boolean;
}

export interface Cors {
  "@type": typeof TYPE_URLS.cors;
}

export interface JwtProvider {
  issuer: string;
  audiences: string[];
  remote_jwks?: {
    http_uri: { uri: string; cluster: string; timeout: Duration };
    cache_duration: Duration;
    async_fetch: { fast_listener: boolean; failed_refetch_duration: Duration };
    retry_policy: {
      num_retries: number;
      retry_back_off: { base_interval: Duration; max_interval: Duration };
    };
  };
  local_jwks?: { inline_string: string };
  from_headers: { name: string; value_prefix: string }[];
  forward: boolean;
  require_expiration: boolean;
  clock_skew_seconds: number;
  payload_in_metadata: string;
  normalize_payload_in_metadata: { space_delimited_claims: string[] };
  failed_status_in_metadata: string;
}

export interface JwtAuthentication {
  "@type": typeof TYPE_URLS.jwtAuthn;
  providers: Record<string, JwtProvider>;
  requirement_map: Record<string, { provider_name: string }>;
  bypass_cors_preflight: boolean;
}

export interface RouteConfiguration {
  name: string;
  /** Response headers removed before the reply leaves (the gateway's public face). */
  response_headers_to_remove?: string[];
  /** Match the Host header whether or not it carries a port. */
  ignore_port_in_host_matching?: boolean;
  virtual_hosts: VirtualHost[];
}

export interface Router {
  "@type": typeof TYPE_URLS.router;
  /** No x-envoy-* headers added to requests or responses (x-envoy-upstream-service-time, ...). */
  suppress_envoy_headers: true;
}

export interface RuntimePercent {
  runtime_key: string;
  default_value: { numerator: number; denominator: "HUNDRED" };
}

export interface LocalRateLimit {
  "@type": typeof TYPE_URLS.localRateLimit;
  stat_prefix: string;
  status: { code: "TooManyRequests" };
  token_bucket: { max_tokens: number; tokens_per_fill: number; fill_interval: Duration };
  filter_enabled: RuntimePercent;
  filter_enforced: RuntimePercent;
  enable_x_ratelimit_headers: "DRAFT_VERSION_03";
}

/** Without a session_state the filter does nothing; routes turn it on per route. */
export interface StatefulSession {
  "@type": typeof TYPE_URLS.statefulSession;
}

export type HttpFilter =
  | { name: typeof EXTENSION_NAMES.cors; typed_config: Cors }
  | { name: typeof EXTENSION_NAMES.jwtAuthn; typed_config: JwtAuthentication }
  | { name: typeof EXTENSION_NAMES.httpRbac; typed_config: HttpRbac }
  | { name: typeof EXTENSION_NAMES.localRateLimit; typed_config: LocalRateLimit }
  | { name: typeof EXTENSION_NAMES.statefulSession; typed_config: StatefulSession }
  | { name: typeof EXTENSION_NAMES.router; typed_config: Router };

export interface AccessLog {
  name: typeof EXTENSION_NAMES.stdoutAccessLog;
  typed_config: {
    "@type": typeof TYPE_URLS.stdoutAccessLog;
    log_format: { json_format: Record<string, string>; omit_empty_values: boolean };
  };
}

export interface SetCurrentClientCertDetails {
  uri: boolean;
  dns: boolean;
}

/** Which local replies a mapper rewrites (envoy.config.accesslog.v3.AccessLogFilter subset). */
export type AccessLogFilter =
  | { and_filter: { filters: AccessLogFilter[] } }
  | { or_filter: { filters: AccessLogFilter[] } }
  | {
      status_code_filter: {
        comparison: { op: "EQ" | "GE"; value: { default_value: number; runtime_key: string } };
      };
    }
  | { metadata_filter: { matcher: MetadataMatcher; match_if_key_not_found: boolean } }
  | { response_flag_filter: { flags: string[] } }
  | { header_filter: { header: { name: string; string_match: StringMatcher } } };

export interface ResponseMapper {
  filter: AccessLogFilter;
  status_code?: number;
  headers_to_add?: HeaderValueOption[];
  body?: { inline_string: string };
}

export interface HttpConnectionManager {
  "@type": typeof TYPE_URLS.httpConnectionManager;
  stat_prefix: string;
  codec_type: "AUTO";
  normalize_path: boolean;
  /** Envoy's default is KEEP_UNCHANGED: `%2F` and `%5C` pass through to path matching. */
  path_with_escaped_slashes_action?: "REJECT_REQUEST";
  /** At the edge: the client's address is the peer's, X-Forwarded-For is not trusted. */
  use_remote_address?: boolean;
  tracing?: HcmTracing;
  /** Which peers count as internal (their x-envoy-* headers are trusted); unset: RFC 1918. */
  internal_address_config?: { cidr_ranges: { address_prefix: string; prefix_len: number }[] };
  request_headers_timeout?: Duration;
  common_http_protocol_options?: {
    idle_timeout: Duration;
    headers_with_underscores_action: "REJECT_REQUEST";
  };
  http2_protocol_options?: Http2ProtocolOptions;
  /** PASS_THROUGH: Envoy adds no `server` header of its own. */
  server_header_transformation?: "PASS_THROUGH";
  local_reply_config?: { mappers: ResponseMapper[] };
  forward_client_cert_details?: "SANITIZE_SET" | "SANITIZE";
  set_current_client_cert_details?: SetCurrentClientCertDetails;
  /** Longest pause on any stream of this listener; Envoy's default: 5 minutes. */
  stream_idle_timeout: Duration;
  access_log?: AccessLog[];
  route_config: RouteConfiguration;
  http_filters: HttpFilter[];
}

export interface TcpProxy {
  "@type": typeof TYPE_URLS.tcpProxy;
  stat_prefix: string;
  cluster: string;
  idle_timeout: Duration;
  access_log?: AccessLog[];
}

// ---------------------------------------------------------------------------------------------
// envoy.config.listener.v3 / envoy.config.cluster.v3 / envoy.config.bootstrap.v3
// ---------------------------------------------------------------------------------------------

export type NetworkFilter =
  | { name: typeof EXTENSION_NAMES.networkRbac; typed_config: NetworkRbac }
  | { name: typeof EXTENSION_NAMES.httpConnectionManager; typed_config: HttpConnectionManager }
  | { name: typeof EXTENSION_NAMES.tcpProxy; typed_config: TcpProxy };

export interface FilterChain {
  transport_socket?: TransportSocket<DownstreamTlsContext> | TransportSocket<EdgeTlsContext>;
  filters: NetworkFilter[];
}

export interface Listener {
  name: string;
  /** Stats under `listener.<stat_prefix>.` instead of the address (`listener.[__]_15001.`). */
  stat_prefix: string;
  address: Address;
  traffic_direction?: TrafficDirection;
  /** Not counted against (nor refused by) the overload manager's connection cap. */
  ignore_global_conn_limit?: boolean;
  bypass_overload_manager?: boolean;
  /** Read/write buffer per connection; Envoy's default is 1 MiB. */
  per_connection_buffer_limit_bytes?: number;
  socket_options?: SocketOption[];
  /** Listener-level logs: one line per downstream connection, refused handshakes included. */
  access_log?: AccessLog[];
  filter_chains: FilterChain[];
}

export interface LbEndpoint {
  endpoint: { address: Address };
}

export interface ClusterLoadAssignment {
  cluster_name: string;
  endpoints: { lb_endpoints: LbEndpoint[] }[];
}

export type HttpProtocolOptions = {
  "@type": typeof TYPE_URLS.httpProtocolOptions;
  common_http_protocol_options: { idle_timeout: Duration; max_connection_duration?: Duration };
} & (
  | {
      explicit_http_config:
        | { http_protocol_options: Record<string, never> }
        | { http2_protocol_options: Http2ProtocolOptions };
    }
  /** HTTP/2 when ALPN says the server speaks it, HTTP/1.1 otherwise. */
  | {
      auto_config: {
        http_protocol_options: Record<string, never>;
        http2_protocol_options: Http2ProtocolOptions;
      };
    }
);

export interface CircuitBreakerThresholds {
  priority: "DEFAULT";
  max_connections: number;
  max_pending_requests: number;
  max_requests: number;
  /** Concurrent retries as a share of active and pending requests (max_retries is then ignored). */
  retry_budget: { budget_percent: { value: number }; min_retry_concurrency: number };
}

export interface OutlierDetection {
  /** Local-origin failures (connect, reset, timeout) counted apart from the upstream's replies. */
  split_external_local_origin_errors: true;
  consecutive_5xx: number;
  enforcing_consecutive_5xx: number;
  consecutive_gateway_failure: number;
  enforcing_consecutive_gateway_failure: number;
  consecutive_local_origin_failure: number;
  enforcing_consecutive_local_origin_failure: number;
  enforcing_success_rate: number;
  interval: Duration;
  base_ejection_time: Duration;
  max_ejection_percent: number;
}

/** TCP keepalive probes on upstream connections (SO_KEEPALIVE and its three settings). */
export interface TcpKeepalive {
  keepalive_probes: number;
  keepalive_time: number;
  keepalive_interval: number;
}

/** The DNS cluster extension (Envoy >= 1.33), which replaces the Cluster's own DNS fields. */
export interface DnsCluster {
  "@type": typeof TYPE_URLS.dnsCluster;
  dns_refresh_rate: Duration;
  respect_dns_ttl: false;
  dns_lookup_family: "V4_PREFERRED";
  /** true: one endpoint at the latest address (LOGICAL_DNS); false: one per address (STRICT_DNS). */
  all_addresses_in_single_endpoint: boolean;
}

export interface Cluster {
  name: string;
  type?: "STATIC";
  cluster_type?: { name: typeof EXTENSION_NAMES.dnsCluster; typed_config: DnsCluster };
  connect_timeout: Duration;
  lb_policy?: "LEAST_REQUEST" | "ROUND_ROBIN";
  load_assignment: ClusterLoadAssignment;
  upstream_connection_options?: { tcp_keepalive: TcpKeepalive };
  circuit_breakers?: { thresholds: [CircuitBreakerThresholds] };
  outlier_detection?: OutlierDetection;
  typed_extension_protocol_options?: Record<
    typeof EXTENSION_NAMES.httpProtocolOptions,
    HttpProtocolOptions
  >;
  transport_socket?:
    TransportSocket<UpstreamTlsContext> | TransportSocket<ExternalUpstreamTlsContext>;
  per_connection_buffer_limit_bytes?: number;
}

export interface Admin {
  address: Address;
}

export interface ResourceMonitor {
  name: typeof EXTENSION_NAMES.fixedHeap | typeof EXTENSION_NAMES.downstreamConnections;
  typed_config:
    | { "@type": typeof TYPE_URLS.fixedHeap; max_heap_size_bytes: number }
    | {
        "@type": typeof TYPE_URLS.downstreamConnections;
        max_active_downstream_connections: number;
      };
}

export interface OverloadAction {
  name:
    | typeof EXTENSION_NAMES.shrinkHeap
    | typeof EXTENSION_NAMES.stopAcceptingRequests
    | typeof EXTENSION_NAMES.rejectIncomingConnections;
  triggers: [{ name: typeof EXTENSION_NAMES.fixedHeap; threshold: { value: number } }];
}

export interface OverloadManager {
  refresh_interval: Duration;
  resource_monitors: ResourceMonitor[];
  actions: OverloadAction[];
}

/** envoy.config.trace.v3.OpenTelemetryConfig: where spans go, and this Envoy's service name. */
export interface OpenTelemetryConfig {
  "@type": typeof TYPE_URLS.openTelemetryConfig;
  service_name: string;
  grpc_service?: { envoy_grpc: { cluster_name: string }; timeout: Duration };
  http_service?: { http_uri: { uri: string; cluster: string; timeout: Duration } };
}

/** The HTTP connection manager's tracing: its provider and sampling (each 100 % unless set). */
export interface HcmTracing {
  provider: { name: typeof EXTENSION_NAMES.openTelemetry; typed_config: OpenTelemetryConfig };
  random_sampling: { value: number };
  client_sampling: { value: number };
}

/** A tag on every stat of this Envoy (a Prometheus label), from config.bootstrap.v3.StatsConfig. */
export interface FixedStatsTag {
  tag_name: string;
  fixed_value: string;
}

export interface Bootstrap {
  node: Node;
  admin: Admin;
  /** Envoy's default tag extraction stays on (use_all_default_tags defaults to true). */
  stats_config: { stats_tags: FixedStatsTag[] };
  static_resources: {
    listeners: Listener[];
    clusters: Cluster[];
  };
  overload_manager: OverloadManager;
}
