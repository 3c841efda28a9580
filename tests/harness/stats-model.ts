/**
 * A model of the Prometheus series an Envoy of this mesh exposes on `/stats/prometheus`, derived
 * from its generated bootstrap, so tests can ask "does this series exist for this stack" and
 * check PromQL against it.
 *
 * Envoy's behaviour, followed from its source (vendor/envoy-stats/SOURCE.md):
 * - Tag extraction (source/common/stats/tag_producer_impl.cc, tag_extractor_impl.cc): every
 *   default extractor (vendor/envoy-stats/tag-rules.json) looks at the original stat name. A regex
 *   extractor's first group is the span removed, its second (or else the first) the value; a
 *   substring hint must occur and a negative match must not equal the value. A tokenized one
 *   (`cluster.$.**`) matches dot-separated tokens (`*` one, `**` any number, `$` the value) and
 *   removes the value with its following dot (the preceding one when it is last). Of extractors
 *   sharing a tag name, the first that matches wins. The removed spans are cut out once, at the
 *   end. Fixed-value `stats_tags` add their tag to every stat.
 * - Prometheus naming (source/server/admin/prometheus_stats.cc): `envoy_` + the extracted name
 *   with every character outside [a-zA-Z0-9_] turned into `_`; tag names sanitized the same way;
 *   no `_total` added to counters; a histogram is `_bucket` (with `le`), `_sum` and `_count`.
 *   Stats Envoy creates up front are emitted before any use (`usedonly` is off by default);
 *   response-code and per-policy RBAC counters appear once something is counted.
 * - Which stats exist: the per-object stats in Envoy's docs (configuration/upstream/
 *   cluster_manager/cluster_stats, http_conn_man/stats, listeners/stats, observability/statistics
 *   server stats, operations/overload_manager), for the objects the bootstrap declares. Response
 *   code stats exist once a response of that code or class is counted.
 * The extraction is checked against Envoy's own test vectors (tests/stats-model.spec.ts).
 */
import rules from "./vendor/envoy-stats/tag-rules.json";

interface RegexRule {
  tag: string;
  kind: "regex";
  regex: string;
  substr: string;
  negativeMatch: string;
}
interface TokenizedRule {
  tag: string;
  kind: "tokenized";
  pattern: string;
}
type Rule = RegexRule | TokenizedRule;

const RULES = rules as Rule[];

/** A stat name after tag extraction: what is left of the name, and its tags in order. */
export interface Extracted {
  name: string;
  tags: [string, string][];
}

/** One extractor's match: the value and the span [start, end) it removes. */
type Match = { value: string; start: number; end: number } | undefined;

// Regexes from RE2 syntax: no `u` flag (`[\w-\.]` has a literal `-` there, as in RE2).
const compiled = new Map<string, RegExp>();
function regexOf(source: string): RegExp {
  let re = compiled.get(source);
  if (!re) {
    re = new RegExp(source, "d");
    compiled.set(source, re);
  }
  return re;
}

function matchRegex(rule: RegexRule, name: string): Match {
  if (rule.substr !== "" && !name.includes(rule.substr)) return undefined;
  const m = regexOf(rule.regex).exec(name);
  const remove = m?.indices?.[1];
  if (!m || !remove || m[1] === "") return undefined;
  const value = m[2] ? m[2] : m[1];
  if (rule.negativeMatch !== "" && rule.negativeMatch === value) return undefined;
  return { value, start: remove[0], end: remove[1] };
}

/** Matches pattern tokens from `p` against name tokens from `n`; returns the `$` token's index. */
function matchTokens(pattern: string[], tokens: string[], p = 0, n = 0): number | undefined {
  if (p === pattern.length) return n === tokens.length ? -1 : undefined;
  const t = pattern[p];
  if (t === "**") {
    // Last in the pattern it takes the rest, at least one token (Envoy's loop stops once the name
    // runs out, leaving the pattern unfinished).
    if (p === pattern.length - 1) return n < tokens.length ? -1 : undefined;
    for (let k = n; k <= tokens.length; k++) {
      const found = matchTokens(pattern, tokens, p + 1, k);
      if (found !== undefined) return found;
    }
    return undefined;
  }
  if (n === tokens.length) return undefined;
  if (t !== "*" && t !== "$" && t !== tokens[n]) return undefined;
  const rest = matchTokens(pattern, tokens, p + 1, n + 1);
  if (rest === undefined) return undefined;
  return t === "$" ? n : rest;
}

function matchTokenized(rule: TokenizedRule, name: string): Match {
  const tokens = name.split(".");
  const pattern = rule.pattern.split(".");
  const at = matchTokens(pattern, tokens);
  if (at === undefined || at < 0) return undefined;
  let start = tokens.slice(0, at).reduce((n, t) => n + t.length + 1, 0);
  const value = tokens[at];
  let end = start + value.length;
  if (at < tokens.length - 1) end += 1;
  else if (start > 0) start -= 1;
  return { value, start, end };
}

/** Envoy's default tag extraction of one stat name, then the fixed tags. */
export function extractTags(name: string, fixed: [string, string][] = []): Extracted {
  const tags: [string, string][] = [];
  const removed: [number, number][] = [];
  const seen = new Set<string>();
  // Regex extractors are added before tokenized ones (TagProducerImpl::addDefaultExtractors).
  for (const rule of [
    ...RULES.filter((r) => r.kind === "regex"),
    ...RULES.filter((r) => r.kind === "tokenized"),
  ]) {
    if (seen.has(rule.tag)) continue;
    const m = rule.kind === "regex" ? matchRegex(rule, name) : matchTokenized(rule, name);
    if (!m) continue;
    seen.add(rule.tag);
    tags.push([rule.tag, m.value]);
    removed.push([m.start, m.end]);
  }
  const keep = [...name].map((_, i) => !removed.some(([s, e]) => i >= s && i < e));
  return {
    name: [...name].filter((_, i) => keep[i]).join(""),
    tags: [...tags, ...fixed],
  };
}

const sanitize = (s: string) => s.replace(/[^a-zA-Z0-9_]/g, "_");

/** A label's value: known, or known only by its form (a pod's name, a response code). */
export type LabelValue = string | RegExp;

/** One Prometheus series family as the scrape stores it. */
export interface Series {
  name: string;
  labels: Record<string, LabelValue>;
  /** The Envoy stat it comes from. */
  stat: string;
  type: "counter" | "gauge" | "histogram";
}

type StatKind = "counter" | "gauge" | "histogram";

/** Stats Envoy keeps per cluster (cluster_stats), those the mesh's queries and alerts read. */
const CLUSTER_STATS: [string, StatKind][] = [
  ["upstream_rq_total", "counter"],
  ["upstream_rq_retry", "counter"],
  ["upstream_rq_timeout", "counter"],
  ["upstream_rq_pending_overflow", "counter"],
  ["upstream_rq_active", "gauge"],
  ["upstream_cx_total", "counter"],
  ["upstream_cx_active", "gauge"],
  ["upstream_cx_connect_fail", "counter"],
  ["upstream_cx_http1_total", "counter"],
  ["upstream_cx_http2_total", "counter"],
  ["upstream_rq_time", "histogram"],
  ["circuit_breakers.default.cx_open", "gauge"],
  ["circuit_breakers.default.rq_open", "gauge"],
  ["circuit_breakers.default.rq_pending_open", "gauge"],
  ["circuit_breakers.default.rq_retry_open", "gauge"],
];

/** Per cluster with outlier detection configured. */
const OUTLIER_STATS: [string, StatKind][] = [
  ["outlier_detection.ejections_enforced_total", "counter"],
  ["outlier_detection.ejections_active", "gauge"],
];

/** Per HTTP connection manager (http_conn_man/stats). */
const HCM_STATS: [string, StatKind][] = [
  ["downstream_rq_total", "counter"],
  ["downstream_rq_time", "histogram"],
  ["downstream_cx_active", "gauge"],
  ["downstream_cx_http1_total", "counter"],
  ["downstream_cx_http2_total", "counter"],
];

/** Per listener with TLS (listeners/stats, the TLS transport socket's `ssl.*`). */
const LISTENER_STATS: [string, StatKind][] = [
  ["downstream_cx_total", "counter"],
  ["downstream_cx_active", "gauge"],
];
const TLS_STATS: [string, StatKind][] = [
  ["ssl.handshake", "counter"],
  ["ssl.connection_error", "counter"],
  ["ssl.no_certificate", "counter"],
  ["ssl.fail_verify_no_cert", "counter"],
  ["ssl.fail_verify_error", "counter"],
  ["ssl.fail_verify_san", "counter"],
];

/** Server-wide (statistics: server). */
const SERVER_STATS: [string, StatKind][] = [
  ["server.live", "gauge"],
  ["server.uptime", "gauge"],
  ["server.days_until_first_cert_expiring", "gauge"],
  ["server.memory_allocated", "gauge"],
  ["server.memory_heap_size", "gauge"],
];

/** The labels every target of the mesh's PodMonitor carries (prometheus-operator's relabelling). */
export function targetLabels(job: string, namespace: string): Record<string, LabelValue> {
  return {
    job,
    namespace,
    pod: /^.+$/,
    container: "envoy",
    endpoint: /^.+$/,
    instance: /^.+$/,
  };
}

type Json = Record<string, unknown>;

function objects(v: unknown): Json[] {
  return Array.isArray(v) ? (v as Json[]) : [];
}

/** Every `typed_config` below `v` with its `@type` (filters, transport sockets, HCMs). */
function typedConfigs(v: unknown, out: Json[] = []): Json[] {
  if (Array.isArray(v)) for (const x of v) typedConfigs(x, out);
  else if (v && typeof v === "object") {
    const o = v as Json;
    if (typeof o["@type"] === "string") out.push(o);
    for (const x of Object.values(o)) typedConfigs(x, out);
  }
  return out;
}

const typeIs = (o: Json, suffix: string) => String(o["@type"]).endsWith(suffix);

/** The Envoy stat names (before tag extraction) of one bootstrap, with their kinds. */
export function statsOf(bootstrap: Json): [string, StatKind][] {
  const stats: [string, StatKind][] = [...SERVER_STATS];
  const sr = (bootstrap.static_resources ?? {}) as Json;
  for (const c of objects(sr.clusters)) {
    const name = String(c.name);
    for (const [s, k] of CLUSTER_STATS) stats.push([`cluster.${name}.${s}`, k]);
    if (c.outlier_detection !== undefined)
      for (const [s, k] of OUTLIER_STATS) stats.push([`cluster.${name}.${s}`, k]);
    // Dynamic: per response code class and code, once one is counted.
    for (const cls of ["1", "2", "3", "4", "5"])
      stats.push([`cluster.${name}.upstream_rq_${cls}xx`, "counter"]);
    stats.push([`cluster.${name}.upstream_rq_200`, "counter"]);
  }
  for (const l of objects(sr.listeners)) {
    const prefix = String(l.stat_prefix ?? l.name);
    for (const [s, k] of LISTENER_STATS) stats.push([`listener.${prefix}.${s}`, k]);
    const tls = objects(l.filter_chains).some(
      (fc) => (fc.transport_socket as Json | undefined)?.name === "envoy.transport_sockets.tls",
    );
    if (tls) for (const [s, k] of TLS_STATS) stats.push([`listener.${prefix}.${s}`, k]);
    for (const config of typedConfigs(l.filter_chains)) {
      if (typeIs(config, ".HttpConnectionManager")) {
        const hcm = String(config.stat_prefix);
        for (const [s, k] of HCM_STATS) stats.push([`http.${hcm}.${s}`, k]);
        for (const cls of ["1", "2", "3", "4", "5"])
          stats.push([`http.${hcm}.downstream_rq_${cls}xx`, "counter"]);
        for (const f of typedConfigs(config.http_filters)) {
          if (typeIs(f, "rbac.v3.RBAC") && String(f["@type"]).includes("filters.http")) {
            const p = typeof f.rules_stat_prefix === "string" ? `${f.rules_stat_prefix}.` : "";
            stats.push([`http.${hcm}.rbac.${p}allowed`, "counter"]);
            stats.push([`http.${hcm}.rbac.${p}denied`, "counter"]);
            // Per policy (envoyproxy/envoy#32313): `<prefix>policy.<name>.allowed|denied`.
            if (f.track_per_rule_stats === true)
              for (const policy of Object.keys(((f.rules ?? {}) as Json).policies ?? {}))
                for (const s of ["allowed", "denied"])
                  stats.push([`http.${hcm}.rbac.${p}policy.${policy}.${s}`, "counter"]);
          }
          if (typeIs(f, ".LocalRateLimit") && typeof f.stat_prefix === "string")
            for (const s of ["enabled", "enforced", "ok", "rate_limited"])
              stats.push([`${f.stat_prefix}.http_local_rate_limit.${s}`, "counter"]);
        }
      }
      if (typeIs(config, "filters.network.rbac.v3.RBAC"))
        for (const s of ["allowed", "denied"])
          stats.push([`${String(config.stat_prefix)}.rbac.${s}`, "counter"]);
    }
  }
  const overload = (bootstrap.overload_manager ?? {}) as Json;
  for (const a of objects(overload.actions))
    for (const s of ["active", "scale_percent"])
      stats.push([`overload.${String(a.name)}.${s}`, "gauge"]);
  return stats;
}

/** The series one Envoy exposes, as a PodMonitor target with `target` labels stores them. */
export function seriesOf(envoy: object, target: Record<string, LabelValue>): Series[] {
  const bootstrap = envoy as Json;
  const fixed = (
    ((bootstrap.stats_config ?? {}) as Json).stats_tags as
      { tag_name: string; fixed_value?: string }[] | undefined
  )
    ?.filter((t) => t.fixed_value !== undefined)
    .map((t): [string, string] => [t.tag_name, t.fixed_value as string]);
  const out: Series[] = [];
  for (const [stat, type] of statsOf(bootstrap)) {
    const e = extractTags(stat, fixed);
    const labels: Record<string, LabelValue> = { ...target };
    for (const [k, v] of e.tags) labels[sanitize(k)] = v;
    // A response code (`_rq_200`) stands for any code: its value is known only by its form.
    if (labels.envoy_response_code !== undefined) labels.envoy_response_code = /^\d{3}$/;
    const name = `envoy_${sanitize(e.name)}`;
    if (type === "histogram") {
      out.push({ name: `${name}_bucket`, labels: { ...labels, le: /^.+$/ }, stat, type });
      out.push({ name: `${name}_sum`, labels, stat, type });
      out.push({ name: `${name}_count`, labels, stat, type });
    } else out.push({ name, labels, stat, type });
  }
  return out;
}

/** Whether a series' label value can be `value`. */
export function labelCanBe(v: LabelValue | undefined, value: string): boolean {
  return v !== undefined && (typeof v === "string" ? v === value : v.test(value));
}

/** The series of `stat` (an Envoy stat name) in `series`, or a thrown error naming it. */
export function seriesOfStat(series: Series[], stat: string, suffix = ""): Series {
  const found = series.find((s) => s.stat === stat && s.name.endsWith(suffix));
  if (!found) throw new Error(`stats model: no series for ${stat}${suffix}`);
  return found;
}
