/**
 * The mesh's Grafana dashboard (docs/observability.md, "Dashboard"), as typed objects from
 * Grafana's own schema package (@grafana/schema: the classic dashboard JSON the Grafana sidecar
 * loads from a ConfigMap). Every query is PromQL over the series the mesh's Envoys expose;
 * tests/observability.spec.ts checks each against the stats model.
 */
import type { Dashboard, DataQuery, DataTransformerConfig, Panel, RowPanel } from "@grafana/schema";
import type { Options as NodeGraphOptions } from "@grafana/schema/dist/esm/raw/composable/nodegraph/panelcfg/x/NodeGraphPanelCfg_types.gen";
import { MeshModel, PROJECT } from "./config";
import { MESH_SERVICE_TAG } from "./envoy/bootstrap";
import { BY_EDGE, EDGE_CLUSTERS, meshMatchers } from "./observability";

/**
 * A Prometheus query as Grafana's Prometheus data source stores it: the schema's DataQuery fields
 * and the data source's own (a mapped type, so it fits the schema's `Record<string, unknown>`).
 */
type PrometheusQuery = Pick<DataQuery, "refId" | "datasource"> & {
  expr: string;
  legendFormat?: string;
  /** One value per series (tables, the node graph) instead of a range. */
  instant?: boolean;
  range?: boolean;
  format?: "time_series" | "table";
};

/** The data source every panel uses: the dashboard's `datasource` variable. */
const DATASOURCE = { type: "prometheus", uid: "${datasource}" };

const RATE = "5m";

/** Grid layout: 24 columns; panels placed left to right, top to bottom. */
class Grid {
  private x = 0;
  private y = 0;
  private rowHeight = 0;
  next(w: number, h: number): { x: number; y: number; w: number; h: number } {
    if (this.x + w > 24) {
      this.x = 0;
      this.y += this.rowHeight;
      this.rowHeight = 0;
    }
    const pos = { x: this.x, y: this.y, w, h };
    this.x += w;
    this.rowHeight = Math.max(this.rowHeight, h);
    return pos;
  }
  row(): { x: number; y: number; w: number; h: number } {
    if (this.x > 0) {
      this.y += this.rowHeight;
      this.x = 0;
      this.rowHeight = 0;
    }
    const pos = { x: 0, y: this.y, w: 24, h: 1 };
    this.y += 1;
    return pos;
  }
}

/** A `label_replace` step: the label to write, its replacement, the label read and its regex. */
type Relabel = [dst: string, replacement: string, src: string, regex: string];

/**
 * `expr` as node graph edges: `source` and `target` written by `ends`, `id` joined from them, and
 * nothing else kept but `by` (so `or` merges the same edge from two views).
 */
function edgeOf(expr: string, ends: Relabel[], by = "id, source, target"): string {
  const relabelled = ends.reduce(
    (e, [dst, replacement, src, regex]) =>
      `label_replace(${e}, "${dst}", "${replacement}", "${src}", "${regex}")`,
    expr,
  );
  return `sum by (${by}) (label_join(${relabelled}, "id", "->", "source", "target"))`;
}

/** Edges whose caller's Envoy counts requests and their status: the callee's name on its series. */
interface EdgeFamily {
  requests: string;
  errors: string;
  ends: Relabel[];
}

/** The stack's edge families; each only where the stack has such edges (others cannot exist). */
function graphEdgeFamilies(model: MeshModel, s: (more?: string) => string): EdgeFamily[] {
  const gateway = model.gateway?.name;
  const family = (
    by: string,
    metric: "envoy_cluster_upstream_rq" | "envoy_http_downstream_rq",
    selector: string,
    ends: Relabel[],
  ): EdgeFamily => ({
    requests: `sum by (${by}) (rate(${metric}_total${s(selector)}[${RATE}]))`,
    errors: `sum by (${by}) (rate(${metric}_xx${s(`${selector}, envoy_response_code_class="5"`)}[${RATE}]))`,
    ends,
  });
  const fromCaller: Relabel = ["source", "$1", MESH_SERVICE_TAG, "(.+)"];
  return [
    // Every caller's cluster per callee, the gateway's routes included.
    ...(gateway || model.services.some((x) => x.upstreams.length > 0)
      ? [
          family(BY_EDGE, "envoy_cluster_upstream_rq", EDGE_CLUSTERS, [
            fromCaller,
            ["target", "$1", "envoy_cluster_name", "upstream_(.+)"],
          ]),
        ]
      : []),
    // What the gateway's clients asked of it.
    ...(gateway
      ? [
          family(
            MESH_SERVICE_TAG,
            "envoy_http_downstream_rq",
            `${MESH_SERVICE_TAG}="${gateway}", envoy_http_conn_manager_prefix="gateway"`,
            [
              ["source", INTERNET_NODE, "", ""],
              ["target", "$1", MESH_SERVICE_TAG, "(.+)"],
            ],
          ),
        ]
      : []),
    // The services' egress only: the gateway's (its JWKS fetches) has no node.
    ...(model.services.some((x) => x.egress.length > 0)
      ? [
          family(
            BY_EDGE,
            "envoy_cluster_upstream_rq",
            `envoy_cluster_name=~"egress_.+"${gateway ? `, ${MESH_SERVICE_TAG}!="${gateway}"` : ""}`,
            [fromCaller, ["target", "egress/$1", "envoy_cluster_name", "egress_(.+)"]],
          ),
        ]
      : []),
  ];
}

/**
 * The node graph's node ids outside the mesh carry a `/`, which no service or gateway name can
 * hold, so they never merge with one: `client/<name>`, `egress/<name>`, and the internet's.
 */
const INTERNET_NODE = "external/internet";

/** The queries of the dashboard, by what they show; each is checked against the stats model. */
export function dashboardQueries(model: MeshModel) {
  const s = (more = "") => meshMatchers(model, more);
  const gateway = model.gateway?.name;
  const inboundHcm = `envoy_http_conn_manager_prefix=~"inbound|gateway"`;
  const edgeFamilies = graphEdgeFamilies(model, s);
  // The callee's view of each caller (its RBAC policy per caller, clients included).
  const calleeView = edgeOf(
    `sum by (${MESH_SERVICE_TAG}, envoy_rbac_policy_name) (rate(envoy_http_rbac_policy_allowed${s(`envoy_http_conn_manager_prefix="inbound"`)}[${RATE}]))`,
    [
      ["source", "$2", "envoy_rbac_policy_name", "(caller|gateway)-(.+)"],
      ["source", "client/$1", "envoy_rbac_policy_name", "client-(.+)"],
      ["target", "$1", MESH_SERVICE_TAG, "(.+)"],
    ],
  );
  // Nodes: every service and the gateway with requests/s in; the internet, each client and each
  // egress target. Every node is there even when nothing is scraped from it (a 0 taken by
  // `max`), so no edge ever lacks an end (the node graph cannot draw one that does).
  const titled = (expr: string) => `label_replace(${expr}, "title", "$1", "id", "(.+)")`;
  const fixedNode = ([id, title]: [string, string]) =>
    `label_replace(label_replace(vector(0), "id", "${id}", "", ""), "title", "${title}", "", "")`;
  const named = (id: string): [string, string] => [id, id];
  const nodeIds: [string, string][] = [
    ...model.services.map((x) => named(x.name)),
    ...(gateway ? [named(gateway), [INTERNET_NODE, "internet"] as [string, string]] : []),
    ...model.clients.map((c) => named(`client/${c.name}`)),
    ...[...new Set(model.services.flatMap((x) => x.egress.map((e) => e.name)))].map((e) =>
      named(`egress/${e}`),
    ),
  ];
  const nodes = `max by (id, title) (${[
    titled(
      `label_replace(sum by (${MESH_SERVICE_TAG}) (rate(envoy_http_downstream_rq_total${s(inboundHcm)}[${RATE}])), "id", "$1", "${MESH_SERVICE_TAG}", "(.+)")`,
    ),
    ...nodeIds.map(fixedNode),
  ].join(" or ")})`;
  const byService = (expr: string) => `sum by (${MESH_SERVICE_TAG}) (${expr})`;
  const inboundRate = (more = "") =>
    `rate(envoy_http_downstream_rq_xx${s(`${inboundHcm}${more ? `, ${more}` : ""}`)}[${RATE}])`;
  const latency = (q: number, by: string, metric: string, more: string) =>
    `histogram_quantile(${q}, sum by (le, ${by}) (rate(${metric}${s(more)}[${RATE}])))`;
  const edge = EDGE_CLUSTERS;
  const byEdge = BY_EDGE;
  // Requests/s per edge: as the callee counts them where it does (`or` keeps the left side of an
  // edge both sides report), else as the sender's Envoy does (a callee not scraped, egress, and
  // the internet's edge: the gateway's own count). Every configured call is an edge, idle ones at
  // 0 (each cluster's request counter exists from the start). Labelled `id`, `source`, `target`.
  const edges = [calleeView, ...edgeFamilies.map((f) => edgeOf(f.requests, f.ends))].join(" or ");
  return {
    graph: {
      nodes,
      edges,
      // The share of 5xx per edge in percent, as the sender's Envoy counts attempts (retries
      // included); NaN (drawn blank) where nobody counts it (an outside client's edge) or nothing
      // was sent. One row for every edge of `edges`, labelled `id` only: the panel's inner join
      // then keeps exactly the edges both queries return (they run one after the other, so an edge
      // new or gone between them is left out for one refresh rather than drawn without ends).
      edgeErrors: `${edgeFamilies
        .map((f) =>
          edgeOf(`100 * (${f.errors} or ${f.requests} * 0) / (${f.requests} > 0)`, f.ends, "id"),
        )
        .join(" or ")} or on (id) (sum by (id) (${edges}) * NaN)`,
    },
    service: {
      requests: byService(`rate(envoy_http_downstream_rq_total${s(inboundHcm)}[${RATE}])`),
      success: `1 - (${byService(inboundRate(`envoy_response_code_class="5"`))} / ${byService(inboundRate())})`,
      p50: latency(0.5, MESH_SERVICE_TAG, "envoy_http_downstream_rq_time_bucket", inboundHcm),
      p95: latency(0.95, MESH_SERVICE_TAG, "envoy_http_downstream_rq_time_bucket", inboundHcm),
      p99: latency(0.99, MESH_SERVICE_TAG, "envoy_http_downstream_rq_time_bucket", inboundHcm),
      rbacDenied: byService(
        `rate(envoy_http_rbac_denied${s(`envoy_http_conn_manager_prefix="inbound"`)}[${RATE}])`,
      ),
      connectionsDenied: byService(`rate(envoy_rbac_denied${s()}[${RATE}])`),
      rateLimited: byService(`rate(envoy_http_local_rate_limit_rate_limited${s()}[${RATE}])`),
      refusedHandshakes: byService(
        ["fail_verify_no_cert", "fail_verify_error", "fail_verify_san", "connection_error"]
          .map(
            (m) =>
              `rate(envoy_listener_ssl_${m}${s(`envoy_listener_address=~"inbound|gateway"`)}[${RATE}])`,
          )
          .join(" + "),
      ),
      certificateDays: `min by (${MESH_SERVICE_TAG}) (envoy_server_days_until_first_cert_expiring${s()})`,
    },
    edge: {
      errors: `sum by (${byEdge}) (rate(envoy_cluster_upstream_rq_xx${s(`${edge}, envoy_response_code_class="5"`)}[${RATE}])) / sum by (${byEdge}) (rate(envoy_cluster_upstream_rq_total${s(edge)}[${RATE}]))`,
      p99: latency(0.99, byEdge, "envoy_cluster_upstream_rq_time_bucket", edge),
      retries: `sum by (${byEdge}) (rate(envoy_cluster_upstream_rq_retry${s(edge)}[${RATE}]))`,
      breakers: ["cx", "rq", "rq_pending"]
        .map(
          (k) => `sum by (${byEdge}) (envoy_cluster_circuit_breakers_default_${k}_open${s(edge)})`,
        )
        .join(" + "),
      ejections: `sum by (${byEdge}) (increase(envoy_cluster_outlier_detection_ejections_enforced_total${s(edge)}[${RATE}]))`,
      http1: `sum by (${byEdge}) (rate(envoy_cluster_upstream_cx_http1_total${s(edge)}[${RATE}]))`,
      http2: `sum by (${byEdge}) (rate(envoy_cluster_upstream_cx_http2_total${s(edge)}[${RATE}]))`,
    },
  };
}

/** Every PromQL expression of the dashboard, for the checks. */
export function dashboardExpressions(dashboard: Dashboard): string[] {
  return (dashboard.panels ?? []).flatMap((p) =>
    ((p as Panel).targets ?? []).map((t) => String(t.expr)),
  );
}

function query(refId: string, expr: string, extra: Partial<PrometheusQuery> = {}): PrometheusQuery {
  return { refId, datasource: DATASOURCE, expr, ...extra };
}

/**
 * A node graph frame from an instant table query. The node graph finds its fields by name
 * (`mainstat`, nodeGraph/utils.ts), while a rename only sets a display name, and with several
 * table queries the value column is `Value #<refId>` (grafana-prometheus result_transformer.ts):
 * so the value is copied into a field really named `stat`, and the original dropped.
 */
function asFrame(refId: string, stat: "mainstat" | "secondarystat"): DataTransformerConfig[] {
  const value = `Value #${refId}`;
  const filter = { id: "byRefId", options: refId };
  return [
    {
      id: "calculateField",
      filter,
      // `Value` alone when only this query returned data (the suffix counts the queries present);
      // `last` keeps a NaN, which `sum` would make 0.
      options: {
        mode: "reduceRow",
        reduce: { reducer: "last", include: [value, "Value"] },
        alias: stat,
      },
    },
    {
      id: "organize",
      filter,
      options: { excludeByName: { Time: true, [value]: true, Value: true } },
    },
  ];
}

/**
 * The node graph's transformations: each query's value into its stat field, then each edge's
 * error share joined onto the edge by `id`. An inner join: `edgeErrors` has a row for every edge
 * (NaN where there is no share), so it drops only an edge one query saw and the other did not.
 */
function graphTransformations(): DataTransformerConfig[] {
  return [
    ...asFrame("nodes", "mainstat"),
    ...asFrame("edges", "mainstat"),
    ...asFrame("edgeErrors", "secondarystat"),
    {
      id: "joinByField",
      // A regular expression: the `a|b` form is newer than the regex one.
      filter: { id: "byRefId", options: "/^(edges|edgeErrors)$/" },
      options: { byField: "id", mode: "inner" },
    },
  ];
}

function timeseries(
  grid: Grid,
  title: string,
  description: string,
  targets: PrometheusQuery[],
  unit: string,
  w = 8,
): Panel {
  return {
    type: "timeseries",
    title,
    description,
    datasource: DATASOURCE,
    gridPos: grid.next(w, 8),
    targets,
    fieldConfig: { defaults: { unit }, overrides: [] },
    options: {},
  };
}

/** The mesh's dashboard for one stack. */
export function meshDashboard(model: MeshModel): Dashboard {
  const q = dashboardQueries(model);
  const grid = new Grid();
  const svc = `{{${MESH_SERVICE_TAG}}}`;
  const edge = `{{${MESH_SERVICE_TAG}}} → {{envoy_cluster_name}}`;
  // Ids are set in order below: Grafana keys panel state by them.
  const row = (title: string): RowPanel => ({
    id: 0,
    type: "row",
    title,
    collapsed: false,
    gridPos: grid.row(),
    panels: [],
  });
  // The node graph's own options type (its panelcfg schema), spread into the panel's options.
  const graphOptions: NodeGraphOptions = {
    nodes: { mainStatUnit: "reqps" },
    // The node graph writes a stat as its number and the unit's name (statToString).
    edges: { mainStatUnit: "reqps", secondaryStatUnit: "% 5xx" },
  };
  const panels: Array<Panel | RowPanel> = [
    row("Mesh"),
    {
      type: "nodeGraph",
      title: "Who calls whom",
      description:
        "Nodes: every service, the gateway, the internet, clients and egress hosts, with requests/s in. Edges (hover to read): requests/s (as the callee counts them where it can) and the share of 5xx as the sender's Envoy counted its attempts (blank on edges from outside clients and idle ones).",
      datasource: DATASOURCE,
      gridPos: grid.next(24, 14),
      targets: [
        query("nodes", q.graph.nodes, { instant: true, range: false, format: "table" }),
        query("edges", q.graph.edges, { instant: true, range: false, format: "table" }),
        query("edgeErrors", q.graph.edgeErrors, { instant: true, range: false, format: "table" }),
      ],
      transformations: graphTransformations(),
      options: { ...graphOptions },
    },
    row("Per service"),
    timeseries(
      grid,
      "Requests/s",
      "Requests each service (and the gateway) received.",
      [query("A", q.service.requests, { legendFormat: svc })],
      "reqps",
    ),
    timeseries(
      grid,
      "Success rate",
      "Share of requests answered with anything but 5xx.",
      [query("A", q.service.success, { legendFormat: svc })],
      "percentunit",
    ),
    timeseries(
      grid,
      "Latency p50 / p95 / p99",
      "Whole-request time as each service's Envoy saw it (for a streaming service: the stream's length).",
      [
        query("p50", q.service.p50, { legendFormat: `${svc} p50` }),
        query("p95", q.service.p95, { legendFormat: `${svc} p95` }),
        query("p99", q.service.p99, { legendFormat: `${svc} p99` }),
      ],
      "ms",
    ),
    timeseries(
      grid,
      "RBAC denials/s",
      "Requests refused with 403 (method or path not allowed for the caller), and connections the network RBAC refused (a caller not allowed at all is mostly refused earlier, at the handshake: see Refused handshakes).",
      [
        query("requests", q.service.rbacDenied, { legendFormat: `${svc} requests` }),
        query("connections", q.service.connectionsDenied, { legendFormat: `${svc} connections` }),
      ],
      "reqps",
    ),
    // Only where a service has a rate limit: elsewhere the series does not exist.
    ...(model.services.some((x) => x.traffic.rateLimit)
      ? [
          timeseries(
            grid,
            "Rate-limited/s",
            "Requests answered 429 by a service's rate limit.",
            [query("A", q.service.rateLimited, { legendFormat: svc })],
            "reqps",
          ),
        ]
      : []),
    timeseries(
      grid,
      "Refused handshakes/s",
      "TLS handshakes refused: no certificate, an untrusted CA, a name not on the allow-list, or another TLS error (the connection log says which).",
      [query("A", q.service.refusedHandshakes, { legendFormat: svc })],
      "cps",
    ),
    timeseries(
      grid,
      "Days to certificate expiry",
      "The soonest expiry of any certificate each Envoy holds, the CA bundle included.",
      [query("A", q.service.certificateDays, { legendFormat: svc })],
      "d",
    ),
    row("Per edge (caller → callee)"),
    timeseries(
      grid,
      "Error rate",
      "Share of 5xx per edge, as the caller saw it.",
      [query("A", q.edge.errors, { legendFormat: edge })],
      "percentunit",
    ),
    timeseries(
      grid,
      "Latency p99",
      "Per edge, as the caller saw it.",
      [query("A", q.edge.p99, { legendFormat: edge })],
      "ms",
    ),
    timeseries(
      grid,
      "Retries/s",
      "Retries per edge (bounded by the retry budget).",
      [query("A", q.edge.retries, { legendFormat: edge })],
      "reqps",
    ),
    timeseries(
      grid,
      "Circuit breakers open",
      "Connection, request and pending-queue breakers open per edge (1 each).",
      [query("A", q.edge.breakers, { legendFormat: edge })],
      "short",
    ),
    timeseries(
      grid,
      "Outlier ejections",
      "Pods ejected per edge in the last 5 minutes.",
      [query("A", q.edge.ejections, { legendFormat: edge })],
      "short",
    ),
    timeseries(
      grid,
      "New connections/s by protocol",
      "HTTP/1.1 and HTTP/2 connections opened per edge (HTTP/2 once both sides offer it).",
      [
        query("http1", q.edge.http1, { legendFormat: `${edge} HTTP/1.1` }),
        query("http2", q.edge.http2, { legendFormat: `${edge} HTTP/2` }),
      ],
      "cps",
    ),
  ];
  panels.forEach((p, i) => (p.id = i + 1));
  return {
    uid: `${PROJECT}-${model.namespace}`.slice(0, 40),
    title: `${PROJECT} (${model.namespace})`,
    tags: [PROJECT],
    editable: false,
    // @grafana/schema 13's own default dashboard is at 42.
    schemaVersion: 42,
    time: { from: "now-1h", to: "now" },
    refresh: "30s",
    templating: {
      list: [{ name: "datasource", label: "Prometheus", type: "datasource", query: "prometheus" }],
    },
    panels,
  };
}
