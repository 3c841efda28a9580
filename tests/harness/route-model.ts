/**
 * Envoy's route choice, as the tests model it once (config/route/v3/route_components.proto,
 * "Route matching" in Envoy's docs): the virtual host whose domains hold the request's host
 * exactly, ignoring case (and its `:port` under ignore_port_in_host_matching), else the `*` host;
 * then the first route whose path matcher fits the path without its query (`path` exact,
 * `prefix`, `path_separated_prefix` p: p itself or p + "/...") and whose header matchers all fit.
 * prefix_rewrite replaces the part the path matcher took.
 *
 * Written from Envoy's docs, independently of the builders: it declares its own loose shapes of
 * Envoy's JSON, and throws on what it does not model (regex routes, domain wildcards other than
 * `*`, header matchers other than string and presence).
 */

export interface StringMatch {
  exact?: string;
  prefix?: string;
  suffix?: string;
  contains?: string;
  safe_regex?: { regex: string };
  ignore_case?: boolean;
}

export interface HeaderMatcher {
  name: string;
  string_match?: StringMatch;
  present_match?: boolean;
  invert_match?: boolean;
}

export interface RouteMatch {
  path?: string;
  prefix?: string;
  path_separated_prefix?: string;
  safe_regex?: unknown;
  headers?: HeaderMatcher[];
}

export interface RouteLike {
  match: RouteMatch;
}

export interface VirtualHostLike<R extends RouteLike = RouteLike> {
  domains: string[];
  routes: R[];
}

export interface RouteConfigLike<V extends VirtualHostLike> {
  ignore_port_in_host_matching?: boolean;
  virtual_hosts: V[];
}

const withoutQuery = (path: string): string => path.split(/[?#]/, 1)[0];

/** RE2 safe_regex in a matcher: the whole value must match; a leading `(?i)` ignores case. */
function fullMatch(regex: string, value: string): boolean {
  const caseless = regex.startsWith("(?i)");
  return new RegExp(`^(?:${caseless ? regex.slice(4) : regex})$`, caseless ? "iu" : "u").test(
    value,
  );
}

/** StringMatcher: ignore_case lower-cases both sides of exact / prefix / suffix / contains. */
export function stringMatches(m: StringMatch, value: string): boolean {
  const fold = (s: string) => (m.ignore_case === true ? s.toLowerCase() : s);
  const v = fold(value);
  if (m.exact !== undefined) return v === fold(m.exact);
  if (m.prefix !== undefined) return v.startsWith(fold(m.prefix));
  if (m.suffix !== undefined) return v.endsWith(fold(m.suffix));
  if (m.contains !== undefined) return v.includes(fold(m.contains));
  if (m.safe_regex) return fullMatch(m.safe_regex.regex, value);
  throw new Error(`model: string matcher not modelled: ${JSON.stringify(m)}`);
}

/** A header matcher against request headers keyed in lower case (`:method`, `:path`, ...). */
export function headerMatches(m: HeaderMatcher, headers: Record<string, string>): boolean {
  const value = headers[m.name.toLowerCase()];
  let result: boolean;
  if (m.present_match !== undefined) result = (value !== undefined) === m.present_match;
  else if (m.string_match) result = value !== undefined && stringMatches(m.string_match, value);
  else throw new Error(`model: header matcher not modelled: ${JSON.stringify(m)}`);
  return m.invert_match ? !result : result;
}

/** The part of the path a route's path matcher took, or undefined when it does not fit. */
export function pathMatch(match: RouteMatch, path: string): string | undefined {
  if (match.safe_regex !== undefined) throw new Error("model: regex routes not modelled");
  const p = withoutQuery(path);
  if (match.path !== undefined) return p === match.path ? match.path : undefined;
  if (match.prefix !== undefined) return p.startsWith(match.prefix) ? match.prefix : undefined;
  const sep = match.path_separated_prefix;
  if (sep !== undefined) return p === sep || p.startsWith(`${sep}/`) ? sep : undefined;
  throw new Error(`model: route match not modelled: ${JSON.stringify(match)}`);
}

export function selectVirtualHost<V extends VirtualHostLike>(
  rc: RouteConfigLike<V>,
  authority: string,
): V | undefined {
  const host = (
    rc.ignore_port_in_host_matching ? authority.replace(/:[0-9]+$/, "") : authority
  ).toLowerCase();
  for (const vh of rc.virtual_hosts)
    for (const d of vh.domains)
      if (d !== "*" && d.includes("*")) throw new Error(`model: domain ${d} not modelled`);
  return (
    rc.virtual_hosts.find((vh) => vh.domains.some((d) => d.toLowerCase() === host)) ??
    rc.virtual_hosts.find((vh) => vh.domains.includes("*"))
  );
}

/** The virtual host and route Envoy picks, and the part of the path the route matched. */
export function selectRoute<V extends VirtualHostLike>(
  rc: RouteConfigLike<V>,
  authority: string,
  path: string,
  headers: Record<string, string>,
): { vh?: V; route?: V["routes"][number]; matched?: string } {
  const vh = selectVirtualHost(rc, authority);
  for (const route of vh?.routes ?? []) {
    const matched = pathMatch(route.match, path);
    if (matched === undefined) continue;
    if (!(route.match.headers ?? []).every((h) => headerMatches(h, headers))) continue;
    return { vh, route, matched };
  }
  return { vh };
}

/** The path sent upstream: prefix_rewrite replaces what the path matcher took. */
export function rewrittenPath(
  prefixRewrite: string | undefined,
  matched: string,
  path: string,
): string {
  return prefixRewrite === undefined ? path : prefixRewrite + path.slice(matched.length);
}
