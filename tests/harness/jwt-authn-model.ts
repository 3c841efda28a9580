/**
 * A model of one request's way through the ingress gateway's Envoy, evaluated on the GENERATED
 * bootstrap JSON (every setting is read from it): route selection, the HTTP filters in their
 * configured order (CORS, JWT authn, RBAC, stateful session, router; any other filter throws),
 * the router (direct responses, forwarding) and the connection manager's local-reply mappers.
 *
 * Written from Envoy's docs and source, independently of the builders in components/envoy (it
 * declares its own shapes of Envoy's JSON and imports nothing from components/):
 * - Routing, string and header matchers: tests/harness/route-model.ts, shared with the route
 *   tests.
 * - CORS (source/extensions/filters/http/cors/cors_filter.cc): skipped when the request has no
 *   route entry (no route, or a direct_response route). Its policies are the CorsPolicy
 *   typed_per_filter_config of the route, virtual host and route configuration, each setting
 *   taken from the most specific policy that sets it. With a policy and a non-empty Origin the
 *   request is a CORS request; the origin is allowed when a matcher of allow_origin_string_match
 *   matches it (or "*"). A preflight (OPTIONS, Origin, non-empty Access-Control-Request-Method)
 *   from an allowed origin, or from any origin when forward_not_matching_preflights is false
 *   (default true), is answered by the filter itself: 200 with access-control-allow-origin (only
 *   when allowed), -allow-credentials, -allow-methods, -allow-headers (`*` echoes the request),
 *   -max-age; no local-reply mappers (it is not a local reply). For a CORS request from an
 *   allowed origin its encode path sets access-control-allow-origin, -allow-credentials and
 *   -expose-headers on every response (encoding starts at the first encoder filter): its own
 *   preflight answer, the upstream's (reported as Forwarded.responseHeaders) and the local
 *   replies of the filters after it, after the mappers. A local reply from a filter before it
 *   gets none: its decodeHeaders never ran, so the request never became a CORS request.
 * - jwt_authn (source/extensions/filters/http/jwt_authn: filter.cc, extractor.cc,
 *   authenticator.cc, jwks_cache.cc; source/common/jwt: jwt.cc, verify.cc, check_audience.cc):
 *   `bypass_cors_preflight` lets a preflight (as above) through before anything else; per-route
 *   PerRouteConfig (`disabled`, or `requirement_name` -> requirement_map -> provider_name);
 *   tokens only from from_headers / from_params (Authorization "Bearer " and the access_token
 *   parameter only when none is configured); parse (three non-empty parts, an implemented alg, so
 *   never "none"), `iss` == issuer, nbf / exp with clock_skew_seconds (60 when unset),
 *   require_expiration, `aud` against audiences (scheme and trailing slash ignored, as
 *   check_audience.cc does; the only 403), then the signature against the JWKS: a key is skipped
 *   when both kids are set and differ or when its `alg` differs from the token's, and only a key
 *   of the token's family (EC: ES*, RSA: RS* / PS*, oct: HS*, OKP: EdDSA) can verify it. The
 *   signature itself is checked by jose (importJWK + compactVerify). On success the payload goes
 *   to dynamic metadata (payload_in_metadata, space_delimited_claims split into lists) and, with
 *   `forward: false`, the token's header is removed. On failure the reply is 401 (403 for the
 *   audience) with `WWW-Authenticate: Bearer realm="<scheme>://<authority><path>"` plus
 *   `, error="invalid_token"` unless the token was missing, and {message} goes to the
 *   failed_status_in_metadata key of the provider the token was checked against; a MISSING token
 *   was checked against none (doneWithStatus falls back to jwks_cache getSingleProvider()), so
 *   its failure is recorded only when the filter has exactly one provider.
 * - RBAC (rbac.proto, RBACPerRoute): the most specific per-route rules, else the filter's own
 *   (none: allow); ALLOW admits when a policy's permissions and principals both match; principals
 *   any / and_ids / or_ids / metadata or sourced_metadata from DYNAMIC (MetadataMatcher on
 *   dynamic metadata: present_match,
 *   string_match, list_match.one_of); a denial is 403 "RBAC: access denied".
 * - stateful_session only picks an upstream host: it never decides whether a request gets through
 *   (`strict`, which can refuse with 503, throws).
 * - Local replies (http/utility.cc prepareLocalReply, local_reply/local_reply.cc): the filter's
 *   own headers first, then the first mapper whose filter matches (and / or / status_code_filter
 *   / metadata_filter with match_if_key_not_found / header_filter on the request headers) sets
 *   its status_code and headers_to_add; a direct_response is a local reply too (its
 *   response_headers_to_add are its own headers).
 *
 * Not modelled (the model throws where a config uses them): jwt_authn `rules`, requirements other
 * than provider_name, from_cookies, subjects, max_lifetime; the `code` of a recorded failure;
 * RBAC permissions other than `any`, DENY-shadow rules; domain wildcards other than "*"; regex
 * route matches; CORS filter_enabled / shadow_enabled and the route action's or virtual host's
 * own `cors` field; HTTP filters other than the five above; JWKS caching and fetch timing (the
 * test supplies what a remote JWKS URI returns); several tokens in one request beyond "all must
 * verify"; runtime overrides of mapper values; the upstream's own response.
 */
import * as jose from "jose";
import {
  HeaderMatcher,
  headerMatches,
  RouteMatch,
  rewrittenPath,
  selectRoute,
  StringMatch,
  stringMatches,
} from "./route-model";

// ---------------------------------------------------------------------------------------------
// Envoy's JSON, as far as the model reads it
// ---------------------------------------------------------------------------------------------

interface HeaderValueOption {
  header: { key: string; value: string };
  append_action?: string;
}

/** typed_per_filter_config: filter name -> that filter's per-route message. */
type PerFilterConfigs = Record<string, unknown>;

interface JwtPerRoute {
  disabled?: boolean;
  requirement_name?: string;
}

interface RbacPerRoute {
  rbac?: { rules?: RbacRules };
}

/** envoy.extensions.filters.http.cors.v3.CorsPolicy */
interface CorsPolicy {
  allow_origin_string_match?: StringMatch[];
  allow_methods?: string;
  allow_headers?: string;
  expose_headers?: string;
  max_age?: string;
  allow_credentials?: boolean;
  allow_private_network_access?: boolean;
  forward_not_matching_preflights?: boolean;
  filter_enabled?: unknown;
  shadow_enabled?: unknown;
}

interface EnvoyRoute {
  match: RouteMatch;
  route?: { cluster: string; prefix_rewrite?: string; cors?: unknown };
  direct_response?: { status: number; body?: { inline_string?: string } };
  response_headers_to_add?: HeaderValueOption[];
  typed_per_filter_config?: PerFilterConfigs;
}

interface VirtualHost {
  name: string;
  domains: string[];
  routes: EnvoyRoute[];
  typed_per_filter_config?: PerFilterConfigs;
  cors?: unknown;
}

interface ValueMatcher {
  present_match?: boolean;
  string_match?: StringMatch;
  list_match?: { one_of: ValueMatcher };
}

interface MetadataMatcher {
  filter: string;
  path: { key: string }[];
  value: ValueMatcher;
  invert?: boolean;
}

interface Principal {
  any?: boolean;
  and_ids?: { ids: Principal[] };
  or_ids?: { ids: Principal[] };
  metadata?: MetadataMatcher;
  sourced_metadata?: { metadata_matcher: MetadataMatcher; metadata_source?: "DYNAMIC" | "ROUTE" };
}

interface RbacRules {
  action?: "ALLOW" | "DENY";
  policies?: Record<string, { permissions: { any?: boolean }[]; principals: Principal[] }>;
}

interface JwtProvider {
  issuer?: string;
  audiences?: string[];
  local_jwks?: { inline_string?: string };
  remote_jwks?: { http_uri: { uri: string; cluster: string } };
  from_headers?: { name: string; value_prefix?: string }[];
  from_params?: string[];
  forward?: boolean;
  require_expiration?: boolean;
  clock_skew_seconds?: number;
  payload_in_metadata?: string;
  normalize_payload_in_metadata?: { space_delimited_claims?: string[] };
  failed_status_in_metadata?: string;
}

interface JwtAuthentication {
  providers?: Record<string, JwtProvider>;
  requirement_map?: Record<string, { provider_name?: string }>;
  rules?: unknown[];
  strip_failure_response?: boolean;
  bypass_cors_preflight?: boolean;
}

interface AccessLogFilter {
  and_filter?: { filters: AccessLogFilter[] };
  or_filter?: { filters: AccessLogFilter[] };
  status_code_filter?: {
    comparison: { op?: "EQ" | "GE" | "LE"; value: { default_value: number } };
  };
  metadata_filter?: { matcher: MetadataMatcher; match_if_key_not_found?: boolean };
  header_filter?: { header: HeaderMatcher };
}

interface ResponseMapper {
  filter: AccessLogFilter;
  status_code?: number;
  headers_to_add?: HeaderValueOption[];
  body?: { inline_string?: string };
}

interface HttpFilter {
  name: string;
  typed_config?: Record<string, unknown>;
}

interface HttpConnectionManager {
  route_config: {
    ignore_port_in_host_matching?: boolean;
    response_headers_to_remove?: string[];
    virtual_hosts: VirtualHost[];
    typed_per_filter_config?: PerFilterConfigs;
  };
  http_filters: HttpFilter[];
  local_reply_config?: { mappers?: ResponseMapper[] };
}

interface EnvoyBootstrap {
  static_resources: {
    listeners: { name: string; filter_chains: { filters: HttpFilter[] }[] }[];
    clusters: { name: string }[];
  };
}

// ---------------------------------------------------------------------------------------------
// The model's inputs and outputs
// ---------------------------------------------------------------------------------------------

export const JWT_AUTHN = "envoy.filters.http.jwt_authn";
const CORS = "envoy.filters.http.cors";
const RBAC = "envoy.filters.http.rbac";
const STATEFUL_SESSION = "envoy.filters.http.stateful_session";
const ROUTER = "envoy.filters.http.router";
const HCM = "envoy.filters.network.http_connection_manager";

export interface Request {
  authority: string;
  path: string;
  method: string;
  /** Names are case-insensitive. */
  headers?: Record<string, string>;
  /** The listener terminates TLS: https unless said. */
  scheme?: string;
}

export interface Jwks {
  keys: jose.JWK[];
}

export interface ModelOptions {
  /** Seconds since the epoch. */
  now: number;
  /** What each remote JWKS URI returns. */
  remoteJwks?: Record<string, Jwks>;
  /** Listener name; "gateway" unless said. */
  listener?: string;
  /**
   * What the routed service does: answers with these response headers, or fails so that the
   * router answers itself (a local reply with Envoy's own body, e.g. a 503 after a reset).
   */
  upstream?: { headers: Record<string, string> } | { fails: { status: number; body: string } };
}

/** Dynamic metadata: namespace (filter name) -> struct. */
export type DynamicMetadata = Record<string, Record<string, unknown>>;

export interface Forwarded {
  status: "forwarded";
  cluster: string;
  /** After prefix_rewrite, query kept. */
  path: string;
  /** Request headers as sent upstream (lower-case names). */
  headers: Record<string, string>;
  metadata: DynamicMetadata;
  /**
   * The upstream's response headers (options.upstream) as the client gets them: the route
   * table's response_headers_to_remove applied, CORS added; lower-case names.
   */
  responseHeaders: Record<string, string>;
}

export interface LocalReply {
  status: number;
  body: string;
  /** Response headers, lower-case names. */
  headers: Record<string, string>;
  metadata: DynamicMetadata;
  /** Who answered and with what status, before the local-reply mappers. */
  origin: { by: "cors" | "jwt_authn" | "rbac" | "direct_response" | "router"; status: number };
}

export type Outcome = Forwarded | LocalReply;

// ---------------------------------------------------------------------------------------------
// Matching helpers
// ---------------------------------------------------------------------------------------------

const lower = (headers: Record<string, string> = {}): Record<string, string> =>
  Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));

function metadataValue(metadata: DynamicMetadata, m: MetadataMatcher): unknown {
  let cur: unknown = metadata[m.filter];
  for (const { key } of m.path) {
    if (cur === null || typeof cur !== "object" || Array.isArray(cur)) return undefined;
    cur = (cur as Record<string, unknown>)[key];
  }
  return cur;
}

function valueMatches(m: ValueMatcher, value: unknown): boolean {
  if (m.present_match !== undefined) return (value !== undefined) === m.present_match;
  if (m.string_match) return typeof value === "string" && stringMatches(m.string_match, value);
  if (m.list_match)
    return Array.isArray(value) && value.some((v) => valueMatches(m.list_match!.one_of, v));
  throw new Error(`model: value matcher not modelled: ${JSON.stringify(m)}`);
}

function metadataMatches(m: MetadataMatcher, metadata: DynamicMetadata): boolean {
  const result = valueMatches(m.value, metadataValue(metadata, m));
  return m.invert ? !result : result;
}

// ---------------------------------------------------------------------------------------------
// jwt_authn
// ---------------------------------------------------------------------------------------------

const IMPLEMENTED_ALGS = new Set([
  ...["ES256", "ES384", "ES512", "HS256", "HS384", "HS512"],
  ...["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"],
]);

/** Which JWK key type can verify which alg (verify.cc: a key of another type never verifies). */
const FAMILY: Record<string, RegExp> = { EC: /^ES/, RSA: /^(RS|PS)/, oct: /^HS/, OKP: /^EdDSA$/ };

/** A failed verification: Envoy's status string and whether it is the audience (403). */
interface JwtFailure {
  message: string;
  audience?: true;
}

interface Token {
  value: string;
  /** Header it came from (removed upstream when forward is false), or undefined for a parameter. */
  header?: string;
}

function extractTokens(provider: JwtProvider, req: Request): Token[] {
  const headers = lower(req.headers);
  const unsupported = ["from_cookies", "subjects", "max_lifetime"].filter((k) => k in provider);
  if (unsupported.length > 0) throw new Error(`model: not modelled: ${unsupported.join(", ")}`);
  const fromHeaders = provider.from_headers ?? [];
  const fromParams = provider.from_params ?? [];
  // extractor.cc: the defaults apply only when no location is configured.
  const defaults = fromHeaders.length === 0 && fromParams.length === 0;
  const headerLocations = defaults
    ? [{ name: "Authorization", value_prefix: "Bearer " }]
    : fromHeaders;
  const params = defaults ? ["access_token"] : fromParams;
  const tokens: Token[] = [];
  for (const loc of headerLocations) {
    const name = loc.name.toLowerCase();
    let value = headers[name];
    if (value === undefined) continue;
    const prefix = loc.value_prefix ?? "";
    if (prefix !== "") {
      const at = value.indexOf(prefix); // case-sensitive, anywhere in the value
      if (at < 0) continue;
      const rest = value.slice(at + prefix.length);
      const start = rest.search(/[A-Za-z0-9\-_.]/);
      value = start < 0 ? value : rest.slice(start);
    }
    tokens.push({ value, header: name });
  }
  const query = req.path.includes("?") ? req.path.slice(req.path.indexOf("?") + 1) : "";
  const search = new URLSearchParams(query);
  for (const param of params) {
    const value = search.get(param);
    if (value !== null) tokens.push({ value });
  }
  return tokens;
}

/** check_audience.cc: "https://a/b/" and "http://a/b" both compare as "a/b". */
function sanitizeAudience(aud: string): string {
  return aud.replace(/^https?:\/\//, "").replace(/\/$/, "");
}

const isUint = (v: unknown): v is number =>
  typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

async function verifyToken(
  token: string,
  provider: JwtProvider,
  keys: jose.JWK[] | undefined,
  now: number,
): Promise<{ payload: Record<string, unknown> } | JwtFailure> {
  // jwt.cc parseFromString: exactly three non-empty parts, an implemented alg.
  if (token.split(".").filter((part) => part !== "").length !== 3)
    return { message: "Jwt is not in the form of Header.Payload.Signature" };
  let header: jose.ProtectedHeaderParameters;
  let payload: jose.JWTPayload;
  try {
    header = jose.decodeProtectedHeader(token);
    payload = jose.decodeJwt(token);
  } catch {
    return { message: "Jwt header or payload is an invalid JSON" };
  }
  const alg = header.alg;
  if (typeof alg !== "string" || !IMPLEMENTED_ALGS.has(alg))
    return { message: "Jwt header [alg] field is required and must be implemented" };
  for (const claim of ["nbf", "exp", "iat"] as const)
    if (payload[claim] !== undefined && !isUint(payload[claim]))
      return { message: `Jwt payload [${claim}] field is not an integer` };
  const aud = payload.aud === undefined ? [] : payload.aud;
  if (typeof aud !== "string" && !(Array.isArray(aud) && aud.every((a) => typeof a === "string")))
    return { message: "Jwt payload [aud] field is not a string or string list" };
  if (payload.iss !== undefined && typeof payload.iss !== "string")
    return { message: "Jwt payload [iss] field is not a string" };

  // authenticator.cc startVerify, in its order.
  if (provider.issuer && payload.iss !== provider.issuer)
    return { message: "Jwt issuer is not configured" };
  const skew =
    provider.clock_skew_seconds && provider.clock_skew_seconds > 0
      ? provider.clock_skew_seconds
      : 60;
  if (isUint(payload.nbf) && now + skew < payload.nbf) return { message: "Jwt not yet valid" };
  if (isUint(payload.exp) && payload.exp > 0 && now > payload.exp + skew)
    return { message: "Jwt is expired" };
  if (provider.require_expiration && !payload.exp) return { message: "Jwt has no expiration" };
  const audiences = provider.audiences ?? [];
  if (audiences.length > 0) {
    const allowed = new Set(audiences.map(sanitizeAudience));
    const tokenAud = typeof aud === "string" ? [aud] : aud;
    if (!tokenAud.some((a) => allowed.has(sanitizeAudience(a))))
      return { message: "Audiences in Jwt are not allowed", audience: true };
  }
  if (keys === undefined) return { message: "Jwks remote fetch is failed" };

  // verify.cc verifyJwtWithoutTimeChecking.
  let kidAlgMatched = false;
  for (const jwk of keys) {
    if (header.kid && jwk.kid && jwk.kid !== header.kid) continue;
    if (jwk.alg && jwk.alg !== alg) continue;
    kidAlgMatched = true;
    if (!jwk.kty || !FAMILY[jwk.kty]?.test(alg)) continue;
    try {
      const key = await jose.importJWK(jwk, alg);
      await jose.compactVerify(token, key, { algorithms: [alg] });
      return { payload };
    } catch {
      // This key does not verify it: try the next.
    }
  }
  return {
    message: kidAlgMatched
      ? "Jwt verification fails"
      : "Jwks doesn't have key to match kid or alg from Jwt",
  };
}

function normalizedPayload(
  payload: Record<string, unknown>,
  provider: JwtProvider,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...payload };
  for (const claim of provider.normalize_payload_in_metadata?.space_delimited_claims ?? []) {
    const value = out[claim];
    if (typeof value === "string") out[claim] = value.split(" ").filter((s) => s !== "");
  }
  return out;
}

interface JwtResult {
  reply?: { status: number; body: string; wwwAuthenticate?: string };
}

async function runJwtAuthn(
  config: JwtAuthentication,
  perRoute: JwtPerRoute | undefined,
  bootstrap: EnvoyBootstrap,
  req: Request,
  reqHeaders: Record<string, string>,
  upstreamHeaders: Record<string, string>,
  metadata: DynamicMetadata,
  options: ModelOptions,
): Promise<JwtResult> {
  // filter.cc decodeHeaders: before any requirement is looked at.
  if (config.bypass_cors_preflight === true && isCorsPreflight(reqHeaders)) return {};
  let provider: JwtProvider | undefined;
  if (perRoute) {
    if (perRoute.disabled) return {};
    const requirement = config.requirement_map?.[perRoute.requirement_name ?? ""];
    if (!requirement)
      return {
        reply: { status: 403, body: "Failed JWT authentication: Wrong requirement_name" },
      };
    if (requirement.provider_name === undefined)
      throw new Error(`model: requirement not modelled: ${JSON.stringify(requirement)}`);
    provider = config.providers?.[requirement.provider_name];
    if (!provider) throw new Error(`model: no provider ${requirement.provider_name}`);
  } else {
    if ((config.rules ?? []).length > 0) throw new Error("model: jwt_authn rules not modelled");
    return {}; // No requirement for this request.
  }

  const keys = jwksOf(provider, bootstrap, options);
  const tokens = extractTokens(provider, req);
  let failure: JwtFailure | undefined;
  if (tokens.length === 0) failure = { message: "Jwt is missing" };
  // Every token must verify (authenticator.cc doneWithStatus); the last one found is checked first.
  for (const token of [...tokens].reverse()) {
    if (failure) break;
    const result = await verifyToken(token.value, provider, keys, options.now);
    if ("message" in result) {
      failure = result;
      break;
    }
    if (provider.forward !== true && token.header) delete upstreamHeaders[token.header];
    if (provider.payload_in_metadata)
      (metadata[JWT_AUTHN] ??= {})[provider.payload_in_metadata] = normalizedPayload(
        result.payload,
        provider,
      );
  }
  if (!failure) return {};

  // authenticator.cc doneWithStatus: the failure goes to the failed_status_in_metadata of the
  // provider whose keys the token was checked against (jwks_data_, set by startVerify); a missing
  // token never got there, and the fallback, jwks_cache getSingleProvider(), is the filter's only
  // provider or none at all.
  const missing = tokens.length === 0;
  const providers = Object.values(config.providers ?? {});
  const recorder = missing ? (providers.length === 1 ? providers[0] : undefined) : provider;
  if (recorder?.failed_status_in_metadata)
    (metadata[JWT_AUTHN] ??= {})[recorder.failed_status_in_metadata] = {
      message: failure.message,
    };
  const status = failure.audience ? 403 : 401;
  if (config.strip_failure_response) return { reply: { status, body: "" } };
  const scheme = req.scheme ?? "https";
  const uri = `${scheme}://${req.authority}${req.path.slice(0, 256)}`;
  return {
    reply: {
      status,
      body: failure.message,
      wwwAuthenticate: `Bearer realm="${uri}"${missing ? "" : ', error="invalid_token"'}`,
    },
  };
}

/** The provider's keys: inline, or what the test says its URI returns (fetched via a cluster). */
function jwksOf(
  provider: JwtProvider,
  bootstrap: EnvoyBootstrap,
  options: ModelOptions,
): jose.JWK[] | undefined {
  if (provider.local_jwks?.inline_string !== undefined)
    return (JSON.parse(provider.local_jwks.inline_string) as Jwks).keys;
  const remote = provider.remote_jwks?.http_uri;
  if (!remote) return undefined;
  // No such cluster: the fetch cannot go anywhere.
  if (!bootstrap.static_resources.clusters.some((c) => c.name === remote.cluster)) return undefined;
  return options.remoteJwks?.[remote.uri]?.keys;
}

// ---------------------------------------------------------------------------------------------
// RBAC
// ---------------------------------------------------------------------------------------------

function principalMatches(p: Principal, metadata: DynamicMetadata): boolean {
  if (p.any) return true;
  if (p.and_ids) return p.and_ids.ids.every((id) => principalMatches(id, metadata));
  if (p.or_ids) return p.or_ids.ids.some((id) => principalMatches(id, metadata));
  if (p.metadata) return metadataMatches(p.metadata, metadata);
  // sourced_metadata (rbac.proto, Envoy >= 1.33): DYNAMIC, the default, reads what `metadata` did.
  if (p.sourced_metadata && (p.sourced_metadata.metadata_source ?? "DYNAMIC") === "DYNAMIC")
    return metadataMatches(p.sourced_metadata.metadata_matcher, metadata);
  throw new Error(`model: principal not modelled: ${JSON.stringify(p)}`);
}

function rbacAllows(rules: RbacRules | undefined, metadata: DynamicMetadata): boolean {
  if (!rules) return true; // No rules: the filter enforces nothing.
  const matched = Object.values(rules.policies ?? {}).some((policy) => {
    const permitted = policy.permissions.some((perm) => {
      if (perm.any) return true;
      throw new Error(`model: permission not modelled: ${JSON.stringify(perm)}`);
    });
    return permitted && policy.principals.some((p) => principalMatches(p, metadata));
  });
  return (rules.action ?? "ALLOW") === "ALLOW" ? matched : !matched;
}

// ---------------------------------------------------------------------------------------------
// CORS
// ---------------------------------------------------------------------------------------------

/** A CORS preflight, as cors_filter.cc and jwt_authn's filter.cc both tell it. */
function isCorsPreflight(reqHeaders: Record<string, string>): boolean {
  return (
    reqHeaders[":method"] === "OPTIONS" &&
    (reqHeaders.origin ?? "") !== "" &&
    (reqHeaders["access-control-request-method"] ?? "") !== ""
  );
}

/** A request the CORS filter made a CORS request (is_cors_request_). */
interface CorsRequest {
  /** The policies that apply, most specific first. */
  policies: CorsPolicy[];
  /** The request's Origin when a policy allows it (latched_origin_). */
  allowedOrigin?: string;
}

type CorsSetting = Exclude<keyof CorsPolicy, "filter_enabled" | "shadow_enabled">;

/** A setting from the most specific policy that sets it (an empty string or list is unset). */
function corsSetting<K extends CorsSetting>(
  policies: CorsPolicy[],
  key: K,
): CorsPolicy[K] | undefined {
  for (const policy of policies) {
    const value = policy[key];
    if (value === undefined) continue;
    if ((typeof value === "string" || Array.isArray(value)) && value.length === 0) continue;
    return value;
  }
  return undefined;
}

/**
 * cors_filter.cc decodeHeaders: whether the request is a CORS request and, for a preflight the
 * filter answers itself, the headers of its 200.
 */
function corsDecode(
  hcm: HttpConnectionManager,
  route: EnvoyRoute | undefined,
  vh: VirtualHost | undefined,
  reqHeaders: Record<string, string>,
): { cors?: CorsRequest; answer?: Record<string, string> } {
  // No route entry (no route, or a direct response): the filter lets the request pass untouched.
  if (!route?.route) return {};
  const policies = [
    route.typed_per_filter_config?.[CORS],
    vh?.typed_per_filter_config?.[CORS],
    hcm.route_config.typed_per_filter_config?.[CORS],
  ].filter((p): p is CorsPolicy => p !== undefined);
  if (policies.length === 0) {
    if (route.route.cors !== undefined || vh?.cors !== undefined)
      throw new Error("model: a route's or virtual host's own `cors` field is not modelled");
    return {};
  }
  if (policies.some((p) => p.filter_enabled !== undefined || p.shadow_enabled !== undefined))
    throw new Error("model: CORS filter_enabled / shadow_enabled not modelled");
  const origin = reqHeaders.origin ?? "";
  if (origin === "") return {};
  const allowOrigins = corsSetting(policies, "allow_origin_string_match") ?? [];
  const allowed = allowOrigins.some((m) => stringMatches(m, "*") || stringMatches(m, origin));
  const cors: CorsRequest = { policies, ...(allowed ? { allowedOrigin: origin } : {}) };
  if (!isCorsPreflight(reqHeaders)) return { cors };
  if (!allowed && (corsSetting(policies, "forward_not_matching_preflights") ?? true))
    return { cors };

  const answer: Record<string, string> = {};
  if (allowed) answer["access-control-allow-origin"] = origin;
  if (corsSetting(policies, "allow_credentials") === true)
    answer["access-control-allow-credentials"] = "true";
  const methods = corsSetting(policies, "allow_methods");
  if (methods !== undefined)
    answer["access-control-allow-methods"] =
      methods === "*" ? reqHeaders["access-control-request-method"] : methods;
  const headers = corsSetting(policies, "allow_headers");
  if (headers !== undefined)
    answer["access-control-allow-headers"] =
      headers === "*" ? (reqHeaders["access-control-request-headers"] ?? "") : headers;
  const maxAge = corsSetting(policies, "max_age");
  if (maxAge !== undefined) answer["access-control-max-age"] = maxAge;
  if (
    corsSetting(policies, "allow_private_network_access") === true &&
    reqHeaders["access-control-request-private-network"] === "true"
  )
    answer["access-control-allow-private-network"] = "true";
  return { cors, answer };
}

/** cors_filter.cc encodeHeaders: every response to a CORS request from an allowed origin. */
function corsEncode(cors: CorsRequest | undefined, headers: Record<string, string>): void {
  if (cors?.allowedOrigin === undefined) return;
  headers["access-control-allow-origin"] = cors.allowedOrigin;
  if (corsSetting(cors.policies, "allow_credentials") === true)
    headers["access-control-allow-credentials"] = "true";
  const expose = corsSetting(cors.policies, "expose_headers");
  if (expose !== undefined) headers["access-control-expose-headers"] = expose;
}

// ---------------------------------------------------------------------------------------------
// Local replies
// ---------------------------------------------------------------------------------------------

function filterMatches(
  f: AccessLogFilter,
  status: number,
  reqHeaders: Record<string, string>,
  metadata: DynamicMetadata,
): boolean {
  if (f.and_filter)
    return f.and_filter.filters.every((g) => filterMatches(g, status, reqHeaders, metadata));
  if (f.or_filter)
    return f.or_filter.filters.some((g) => filterMatches(g, status, reqHeaders, metadata));
  if (f.status_code_filter) {
    const { op = "EQ", value } = f.status_code_filter.comparison;
    const v = value.default_value;
    return op === "EQ" ? status === v : op === "GE" ? status >= v : status <= v;
  }
  if (f.metadata_filter) {
    const { matcher, match_if_key_not_found = true } = f.metadata_filter;
    if (metadataValue(metadata, matcher) === undefined) return match_if_key_not_found;
    return metadataMatches(matcher, metadata);
  }
  if (f.header_filter) return headerMatches(f.header_filter.header, reqHeaders);
  throw new Error(`model: access log filter not modelled: ${JSON.stringify(f)}`);
}

function applyHeaders(headers: Record<string, string>, add: HeaderValueOption[] = []): void {
  for (const { header, append_action = "APPEND_IF_EXISTS_OR_ADD" } of add) {
    const key = header.key.toLowerCase();
    const present = headers[key] !== undefined;
    if (append_action === "APPEND_IF_EXISTS_OR_ADD")
      headers[key] = present ? `${headers[key]},${header.value}` : header.value;
    else if (append_action === "ADD_IF_ABSENT") headers[key] ??= header.value;
    else if (append_action === "OVERWRITE_IF_EXISTS_OR_ADD") headers[key] = header.value;
    else if (append_action === "OVERWRITE_IF_EXISTS") {
      if (present) headers[key] = header.value;
    } else throw new Error(`model: append_action ${append_action} not modelled`);
  }
}

function localReply(
  hcm: HttpConnectionManager,
  reqHeaders: Record<string, string>,
  metadata: DynamicMetadata,
  by: LocalReply["origin"]["by"],
  status: number,
  body: string,
  ownHeaders: (h: Record<string, string>) => void,
): LocalReply {
  const headers: Record<string, string> = {};
  ownHeaders(headers); // modify_headers, before the mappers
  let code = status;
  let text = body;
  for (const mapper of hcm.local_reply_config?.mappers ?? []) {
    if (!filterMatches(mapper.filter, code, reqHeaders, metadata)) continue;
    if (mapper.status_code !== undefined) code = mapper.status_code;
    applyHeaders(headers, mapper.headers_to_add);
    if (mapper.body?.inline_string !== undefined) text = mapper.body.inline_string;
    break; // the first matching mapper wins
  }
  if (text === "") delete headers["content-type"];
  else headers["content-type"] ??= "text/plain";
  return { status: code, body: text, headers, metadata, origin: { by, status } };
}

/**
 * What a client gets for a local reply of `status` with Envoy's own `body` from a connection
 * manager (any listener's): the first matching mapper applied, for a request with no headers.
 */
export function mappedLocalReply(hcmJson: unknown, status: number, body: string): LocalReply {
  const hcm = JSON.parse(JSON.stringify(hcmJson)) as HttpConnectionManager;
  return localReply(hcm, {}, {}, "router", status, body, () => undefined);
}

// ---------------------------------------------------------------------------------------------
// The request path
// ---------------------------------------------------------------------------------------------

function connectionManager(bootstrap: EnvoyBootstrap, listenerName: string): HttpConnectionManager {
  const listener = bootstrap.static_resources.listeners.find((l) => l.name === listenerName);
  if (!listener) throw new Error(`model: no listener ${listenerName}`);
  for (const chain of listener.filter_chains)
    for (const f of chain.filters)
      if (f.name === HCM) return f.typed_config as unknown as HttpConnectionManager;
  throw new Error(`model: listener ${listenerName} has no HTTP connection manager`);
}

/** The most specific per-filter config: the route's, else its virtual host's, else the route table's. */
function perFilter<T>(
  hcm: HttpConnectionManager,
  name: string,
  route: EnvoyRoute | undefined,
  vh: VirtualHost | undefined,
): T | undefined {
  return (route?.typed_per_filter_config?.[name] ??
    vh?.typed_per_filter_config?.[name] ??
    hcm.route_config.typed_per_filter_config?.[name]) as T | undefined;
}

/** What the gateway's Envoy does with one request, read from its generated bootstrap. */
export async function evaluate(
  bootstrapJson: unknown,
  req: Request,
  options: ModelOptions,
): Promise<Outcome> {
  const bootstrap = JSON.parse(JSON.stringify(bootstrapJson)) as EnvoyBootstrap;
  const hcm = connectionManager(bootstrap, options.listener ?? "gateway");
  const reqHeaders = {
    ...lower(req.headers),
    ":path": req.path,
    ":authority": req.authority,
    ":method": req.method,
  };
  const upstreamHeaders = lower(req.headers);
  const metadata: DynamicMetadata = {};
  /** Set once the CORS filter has made this a CORS request; its encode path then runs on replies. */
  let cors: CorsRequest | undefined;
  const reply = (
    by: LocalReply["origin"]["by"],
    status: number,
    body: string,
    own: (h: Record<string, string>) => void = () => undefined,
  ): LocalReply => {
    const out = localReply(hcm, reqHeaders, metadata, by, status, body, own);
    corsEncode(cors, out.headers); // encoder filters see the reply after the mappers
    return out;
  };

  const {
    vh,
    route,
    matched: matchedPrefix,
  } = selectRoute(hcm.route_config, req.authority, req.path, reqHeaders);

  for (const filter of hcm.http_filters) {
    if (filter.name === CORS) {
      const decoded = corsDecode(hcm, route, vh, reqHeaders);
      cors = decoded.cors;
      if (decoded.answer) {
        // Sent with encodeHeaders, not as a local reply: no mappers, but the encode path.
        const headers = decoded.answer;
        corsEncode(cors, headers);
        return { status: 200, body: "", headers, metadata, origin: { by: "cors", status: 200 } };
      }
    } else if (filter.name === JWT_AUTHN) {
      const config = (filter.typed_config ?? {}) as JwtAuthentication;
      const result = await runJwtAuthn(
        config,
        perFilter<JwtPerRoute>(hcm, filter.name, route, vh),
        bootstrap,
        req,
        reqHeaders,
        upstreamHeaders,
        metadata,
        options,
      );
      if (result.reply) {
        const { status, body, wwwAuthenticate } = result.reply;
        return reply("jwt_authn", status, body, (h) => {
          if (wwwAuthenticate !== undefined) h["www-authenticate"] = wwwAuthenticate;
        });
      }
    } else if (filter.name === RBAC) {
      const own = (filter.typed_config ?? {}) as { rules?: RbacRules };
      const rules = perFilter<RbacPerRoute>(hcm, filter.name, route, vh)?.rbac?.rules ?? own.rules;
      if (!rbacAllows(rules, metadata)) return reply("rbac", 403, "RBAC: access denied");
    } else if (filter.name === STATEFUL_SESSION) {
      // It picks the upstream host of a session; only `strict` would refuse a request (503).
      const own = (filter.typed_config ?? {}) as { strict?: boolean };
      const per = perFilter<{ stateful_session?: { strict?: boolean } }>(
        hcm,
        filter.name,
        route,
        vh,
      );
      if (own.strict === true || per?.stateful_session?.strict === true)
        throw new Error("model: strict stateful sessions not modelled");
    } else if (filter.name === ROUTER) {
      if (!route) return reply("router", 404, "");
      if (route.direct_response) {
        const { status, body } = route.direct_response;
        return reply("direct_response", status, body?.inline_string ?? "", (h) =>
          applyHeaders(h, route.response_headers_to_add),
        );
      }
      if (!route.route) throw new Error("model: route without an action");
      const { cluster, prefix_rewrite } = route.route;
      const path = rewrittenPath(prefix_rewrite, matchedPrefix ?? "", req.path);
      const upstream = options.upstream;
      if (upstream && "fails" in upstream)
        return reply("router", upstream.fails.status, upstream.fails.body);
      const responseHeaders = lower(upstream?.headers ?? {});
      for (const name of hcm.route_config.response_headers_to_remove ?? [])
        delete responseHeaders[name.toLowerCase()];
      corsEncode(cors, responseHeaders);
      return {
        status: "forwarded",
        cluster,
        path,
        headers: upstreamHeaders,
        metadata,
        responseHeaders,
      };
    } else {
      throw new Error(`model: HTTP filter ${filter.name} not modelled`);
    }
  }
  throw new Error("model: the filter chain has no router");
}
