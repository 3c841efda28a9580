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
  router: `${TYPE_URL}envoy.extensions.filters.http.router.v3.Router`,
} as const;

/** Canonical extension names (informational for typed_config, but what Envoy's docs and logs use). */
export const EXTENSION_NAMES = {
  tls: "envoy.transport_sockets.tls",
  httpConnectionManager: "envoy.filters.network.http_connection_manager",
  networkRbac: "envoy.filters.network.rbac",
  httpRbac: "envoy.filters.http.rbac",
  router: "envoy.filters.http.router",
} as const;

/** google.protobuf.Duration in JSON form, e.g. "5s". */
export type Duration = `${number}s`;

// ---------------------------------------------------------------------------------------------
// envoy.config.core.v3
// ---------------------------------------------------------------------------------------------

export interface SocketAddress {
  address: string;
  port_value: number;
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
  san_type: "DNS" | "URI";
  matcher: ExactStringMatcher;
}

export type TlsProtocol = "TLSv1_2" | "TLSv1_3";

export interface TlsParameters {
  tls_minimum_protocol_version: TlsProtocol;
  tls_maximum_protocol_version: TlsProtocol;
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
}

export interface DownstreamTlsContext {
  "@type": typeof TYPE_URLS.downstreamTlsContext;
  common_tls_context: CommonTlsContext;
  require_client_certificate: boolean;
}

export interface UpstreamTlsContext {
  "@type": typeof TYPE_URLS.upstreamTlsContext;
  common_tls_context: CommonTlsContext;
  sni: string;
}

export interface TransportSocket<T extends DownstreamTlsContext | UpstreamTlsContext> {
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
}

/** The subset of envoy.config.rbac.v3.Permission the mesh uses. */
export type RbacPermission =
  | { any: true }
  | { and_rules: { rules: RbacPermission[] } }
  | { or_rules: { rules: RbacPermission[] } }
  | { header: { name: string; string_match: StringMatcher } }
  | { url_path: { path: StringMatcher } };

export interface RbacPolicy {
  permissions: RbacPermission[];
  principals: AuthenticatedPrincipal[];
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
  rules: RbacRules;
}

// ---------------------------------------------------------------------------------------------
// envoy.config.route.v3 and the HTTP connection manager
// ---------------------------------------------------------------------------------------------

export type RouteMatch = { prefix: string } | { path: string };

export interface RouteAction {
  cluster: string;
  prefix_rewrite?: string;
}

export type Route =
  | { match: RouteMatch; route: RouteAction }
  | { match: RouteMatch; direct_response: { status: number } };

export interface VirtualHost {
  name: string;
  domains: string[];
  routes: Route[];
}

export interface RouteConfiguration {
  name: string;
  virtual_hosts: VirtualHost[];
}

export interface Router {
  "@type": typeof TYPE_URLS.router;
}

export type HttpFilter =
  | { name: typeof EXTENSION_NAMES.httpRbac; typed_config: HttpRbac }
  | { name: typeof EXTENSION_NAMES.router; typed_config: Router };

export interface SetCurrentClientCertDetails {
  uri: boolean;
  dns: boolean;
}

export interface HttpConnectionManager {
  "@type": typeof TYPE_URLS.httpConnectionManager;
  stat_prefix: string;
  codec_type: "AUTO";
  normalize_path: boolean;
  forward_client_cert_details?: "SANITIZE_SET";
  set_current_client_cert_details?: SetCurrentClientCertDetails;
  route_config: RouteConfiguration;
  http_filters: HttpFilter[];
}

// ---------------------------------------------------------------------------------------------
// envoy.config.listener.v3 / envoy.config.cluster.v3 / envoy.config.bootstrap.v3
// ---------------------------------------------------------------------------------------------

export type NetworkFilter =
  | { name: typeof EXTENSION_NAMES.networkRbac; typed_config: NetworkRbac }
  | { name: typeof EXTENSION_NAMES.httpConnectionManager; typed_config: HttpConnectionManager };

export interface FilterChain {
  transport_socket?: TransportSocket<DownstreamTlsContext>;
  filters: NetworkFilter[];
}

export interface Listener {
  name: string;
  address: Address;
  traffic_direction?: TrafficDirection;
  filter_chains: FilterChain[];
}

export interface LbEndpoint {
  endpoint: { address: Address };
}

export interface ClusterLoadAssignment {
  cluster_name: string;
  endpoints: { lb_endpoints: LbEndpoint[] }[];
}

export interface Cluster {
  name: string;
  type: "STATIC" | "STRICT_DNS";
  connect_timeout: Duration;
  load_assignment: ClusterLoadAssignment;
  transport_socket?: TransportSocket<UpstreamTlsContext>;
}

export interface Admin {
  address: Address;
}

export interface Bootstrap {
  node: Node;
  admin: Admin;
  static_resources: {
    listeners: Listener[];
    clusters: Cluster[];
  };
}
