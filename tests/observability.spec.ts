/**
 * Observability (docs/observability.md): the series each stack's Envoys expose, derived by a model
 * of Envoy's tag extraction checked against Envoy's own test vectors; the PodMonitor and the
 * NetworkPolicy that lets its scraper in; the alerts, every expression checked against the series
 * and unit-tested with Prometheus' own promtool.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import vectors from "./harness/vendor/envoy-stats/tag-vectors.json";
import { loadMeshConfig, MeshModel } from "../components/config";
import { ENVOY_FILES } from "../components/envoy";
import { dashboardExpressions, dashboardQueries, meshDashboard } from "../components/dashboard";
import {
  alertRules,
  dashboardFile,
  meshSelector,
  monitoringName,
  podMonitorSpec,
} from "../components/observability";
import { accessLines } from "../components/access";
import { Bootstrap } from "../components/envoy/types";
import { hcm } from "./harness/traffic-fixtures";
import { validateBootstrap } from "./harness/envoy-schema";
import { Cluster, egressAllowed, Pod, registeredPolicies } from "./harness/network-policy-model";
import { checkExpression } from "./harness/promql-check";
import {
  DrawnGraph,
  drawNodeGraph,
  grafanaTransform,
  prometheusTableFrames,
  Sample,
} from "./harness/node-graph";
import {
  alertCases,
  findPromtool,
  inputOf,
  promtool,
  promtoolDir,
  writeExprTests,
  writePromtoolFiles,
} from "./harness/promtool";
import {
  envoyConfigMapOf,
  findObject,
  ProgramRun,
  runProgram,
  runStack,
  once,
  stackConfig,
  stackConfigWithObservability,
  stackConfigWithServices,
  StackName,
} from "./harness/program";
import { extractTags, LabelValue, Series, seriesOf, targetLabels } from "./harness/stats-model";
import { PROJECT } from "../components/names";
import type { Dashboard, Panel } from "@grafana/schema";
import type { Options as NodeGraphOptions } from "@grafana/schema/dist/esm/raw/composable/nodegraph/panelcfg/x/NodeGraphPanelCfg_types.gen";

const WORKLOADS = ["bookapi", "bookapi-mcp-server", "mesh-gateway"];

/** Every series of a stack's Envoys, as its PodMonitor's targets store them. */
/** A workload's Envoy bootstrap, as its ConfigMap carries it. */
const bootstrapOfRun = (run: ProgramRun, w: string) =>
  JSON.parse(
    (envoyConfigMapOf(run, w).inputs.data as Record<string, string>)[ENVOY_FILES.bootstrap],
  ) as Bootstrap;

function meshSeries(run: ProgramRun, model: MeshModel): Series[] {
  const target = targetLabels(PROJECT, model.namespace);
  return WORKLOADS.flatMap((w) => seriesOf(bootstrapOfRun(run, w), target));
}

/** The dashboard's node graph panel, and its options as the panel's schema types them. */
function nodeGraphPanel(dashboard: Dashboard): { panel: Panel; options: NodeGraphOptions } {
  const panel = (dashboard.panels ?? []).find((p): p is Panel => p.type === "nodeGraph");
  assert.ok(panel, "the dashboard has a node graph");
  return { panel, options: panel.options as NodeGraphOptions };
}

const has = (series: Series[], name: string, labels: Record<string, string>) =>
  series.some(
    (s) =>
      s.name === name &&
      Object.entries(labels).every(([k, v]) => {
        const l: LabelValue | undefined = s.labels[k];
        return typeof l === "string" ? l === v : l?.test(v) === true;
      }),
  );

describe("the stats model (Envoy's tag extraction and Prometheus naming)", () => {
  it("extracts names and tags exactly as Envoy's own test vectors say, for every default tag", () => {
    for (const v of vectors as {
      stat: string;
      extracted: string;
      tags: Record<string, string>;
    }[]) {
      const got = extractTags(v.stat);
      assert.equal(got.name, v.extracted, v.stat);
      assert.deepEqual(Object.fromEntries(got.tags), v.tags, v.stat);
    }
    assert.ok(vectors.length >= 50);
  });

  it("names each caller-to-callee edge by the caller's mesh_service tag and the callee's cluster, with status classes and latency", async () => {
    const model = loadMeshConfig(stackConfig("prod"));
    const series = meshSeries(await runStack("prod"), model);
    const edge = { mesh_service: "bookapi-mcp-server", envoy_cluster_name: "upstream_bookapi" };
    assert.ok(has(series, "envoy_cluster_upstream_rq_total", edge));
    assert.ok(
      has(series, "envoy_cluster_upstream_rq_xx", { ...edge, envoy_response_code_class: "5" }),
    );
    assert.ok(has(series, "envoy_cluster_upstream_rq_time_bucket", { ...edge, le: "1000" }));
    // The gateway's routes are edges too, and every stat names its Envoy.
    assert.ok(
      has(series, "envoy_cluster_upstream_rq_total", {
        mesh_service: "mesh-gateway",
        envoy_cluster_name: "upstream_bookapi-mcp-server",
      }),
    );
    assert.ok(series.every((s) => typeof s.labels.mesh_service === "string"));
    // An edge that does not exist has no series.
    assert.ok(
      !has(series, "envoy_cluster_upstream_rq_total", {
        mesh_service: "bookapi",
        envoy_cluster_name: "upstream_bookapi-mcp-server",
      }),
    );
  });
});

describe("metrics discovery", () => {
  it("gives staging and prod a PodMonitor where kube-prometheus-stack looks, selecting every mesh pod on the Envoy metrics port", async () => {
    for (const stack of ["staging", "prod"] as const) {
      const model = loadMeshConfig(stackConfig(stack));
      const pm = findObject(await runStack(stack), "PodMonitor", monitoringName(model));
      const metadata = pm.inputs.metadata as { namespace: string; labels: Record<string, string> };
      assert.equal(metadata.namespace, "monitoring");
      assert.equal(metadata.labels.release, "kube-prometheus-stack");
      assert.deepEqual(pm.inputs.spec, podMonitorSpec(model));
      assert.deepEqual(podMonitorSpec(model).namespaceSelector, { matchNames: [model.namespace] });
      // Every Deployment's pods carry the selected label and name the metrics port so.
      for (const w of WORKLOADS) {
        const template = (
          findObject(await runStack(stack), "Deployment", w).inputs.spec as {
            template: {
              metadata: { labels: Record<string, string> };
              spec: {
                containers: { name: string; ports?: { name: string; containerPort: number }[] }[];
                initContainers?: {
                  name: string;
                  ports?: { name: string; containerPort: number }[];
                }[];
              };
            };
          }
        ).template;
        for (const [k, v] of Object.entries(podMonitorSpec(model).selector.matchLabels))
          assert.equal(template.metadata.labels[k], v, `${stack} ${w}`);
        const ports = [...(template.spec.initContainers ?? []), ...template.spec.containers]
          .filter((c) => c.name === "envoy")
          .flatMap((c) => c.ports ?? []);
        assert.ok(
          ports.some(
            (p) =>
              p.name === podMonitorSpec(model).podMetricsEndpoints[0].port &&
              p.containerPort === model.envoy.ports.metrics,
          ),
          `${stack} ${w}: ${JSON.stringify(ports)}`,
        );
      }
    }
  });

  it("refuses a discovery no NetworkPolicy lets through, and alerts without the PodMonitor they read, naming the key", () => {
    const prod = stackConfig("prod");
    const envoy = JSON.parse(prod["bookapi-mesh:envoy"]) as Record<string, unknown>;
    assert.throws(
      () =>
        loadMeshConfig({
          ...prod,
          "bookapi-mesh:envoy": JSON.stringify({ ...envoy, scrapeFrom: [] }),
        }),
      /bookapi-mesh:observability\.metrics\.discovery: podMonitor needs envoy\.scrapeFrom/,
    );
    assert.throws(
      () =>
        loadMeshConfig({
          ...prod,
          "bookapi-mesh:observability": JSON.stringify({
            metrics: { discovery: "annotations" },
            alerts: { enabled: true },
          }),
        }),
      /bookapi-mesh:observability\.alerts\.enabled: the alerts read the series of the mesh's PodMonitor/,
    );
    // prod renews 120 h before expiry: the warning fires below 2 whole days left, the critical
    // alert must wait for the last day.
    const expiry = (hours: number) =>
      stackConfigWithObservability("prod", {
        alerts: { enabled: true, certificateExpiryHours: hours },
      });
    assert.throws(
      () => loadMeshConfig(expiry(25)),
      /bookapi-mesh:observability\.alerts\.certificateExpiryHours: 25 h would fire the critical MeshCertificateExpiring no later than the MeshCertificateRenewalMissed warning \(below 2 days left.*set it to 24 or less/,
    );
    assert.doesNotThrow(() => loadMeshConfig(expiry(24)));
  });
});

describe("the mesh's alerts", () => {
  for (const stack of ["staging", "prod"] as const) {
    it(`parse, and read only series and labels the stats model derives for ${stack}`, async () => {
      const model = loadMeshConfig(stackConfig(stack));
      const series = meshSeries(await runStack(stack), model);
      const target = targetLabels(PROJECT, model.namespace);
      const run = await runStack(stack);
      const rule = findObject(run, "PrometheusRule", monitoringName(model));
      const groups = (rule.inputs.spec as { groups: ReturnType<typeof alertRules> }).groups;
      assert.deepEqual(groups, alertRules(model));
      const alerts = groups.flatMap((g) => g.rules);
      assert.ok(alerts.length >= 8, alerts.map((a) => a.alert).join());
      for (const a of alerts)
        assert.deepEqual(checkExpression(a.expr, series, target), [], `${a.alert}: ${a.expr}`);
    });
  }

  it("catches an expression that would select nothing: a renamed cluster, a missing tag, a typo, a bad parse", async () => {
    const model = loadMeshConfig(stackConfig("prod"));
    const series = meshSeries(await runStack("prod"), model);
    const target = targetLabels(PROJECT, model.namespace);
    const sel = meshSelector(model);
    const problems = (expr: string) => checkExpression(expr, series, target).join("\n");
    assert.match(
      problems(`envoy_cluster_upstream_rq_total{${sel}, envoy_cluster_name="upstream_ratings"}`),
      /select no series/,
    );
    assert.match(
      problems(`sum by (source_workload) (envoy_cluster_upstream_rq_total{${sel}})`),
      /by \(source_workload\)/,
    );
    assert.match(problems(`envoy_cluster_upstream_rq_totl{${sel}}`), /no such series/);
    assert.match(problems(`sum by (mesh_service (envoy_cluster_upstream_rq_total)`), /parse/);
    assert.match(problems(`up{job="bookapi-mesh", namespace="elsewhere"}`), /select no series/);
  });

  describe("with promtool (Prometheus' own rule checker and unit tester)", function () {
    const binary = findPromtool();
    before(function () {
      if (binary) return;
      // CI installs promtool (.ci/run); elsewhere set PROMTOOL to run these.
      if (process.env.CI) throw new Error("promtool is missing: .ci/run installs it");
      this.skip();
    });

    /** A stack's rules and, for each, cases on bookapi-mcp-server's edge to bookapi. */
    async function rulesAndCases(stack: StackName) {
      const model = loadMeshConfig(stackConfig(stack));
      const series = meshSeries(await runStack(stack), model);
      const caller = {
        workload: "bookapi-mcp-server",
        series: series.filter((s) => s.labels.mesh_service === "bookapi-mcp-server"),
      };
      const groups = alertRules(model);
      const target = targetLabels(PROJECT, model.namespace);
      return { groups, cases: alertCases(groups, caller, "upstream_bookapi", target) };
    }

    it("checks staging's and prod's rules and fires each alert on its firing case and never on its quiet one", async () => {
      const dir = promtoolDir();
      try {
        const files = [];
        for (const stack of ["staging", "prod"] as const) {
          const { groups, cases } = await rulesAndCases(stack);
          files.push(writePromtoolFiles(dir, stack, groups, cases));
        }
        const check = promtool(binary as string, dir, [
          "check",
          "rules",
          ...files.map((f) => f.rules),
        ]);
        assert.equal(check.status, 0, check.output);
        const test = promtool(binary as string, dir, [
          "test",
          "rules",
          ...files.map((f) => f.tests),
        ]);
        assert.equal(test.status, 0, test.output);
        // Every alert ran twice per stack.
        assert.equal(
          (fs.readFileSync(path.join(dir, files[1].tests), "utf8").match(/alertname:/g) ?? [])
            .length,
          2 * (await rulesAndCases("prod")).cases.length,
        );
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it("fails a case whose expectation is wrong, so the case above can fail", async () => {
      const { groups, cases } = await rulesAndCases("prod");
      // The quiet inputs under the firing expectation, for one alert.
      const swapped = cases
        .filter((c) => c.alert === "MeshEdgeErrors")
        .map((c) => ({ ...c, fires: c.quiet }));
      const dir = promtoolDir();
      try {
        const files = writePromtoolFiles(dir, "prod", groups, swapped);
        const test = promtool(binary as string, dir, ["test", "rules", files.tests]);
        assert.notEqual(test.status, 0);
        assert.match(test.output, /FAILED/);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
});

describe("who may call whom (the access output)", () => {
  it("lists every allowed edge of prod as one sorted line, with its limits, as the stack output", async () => {
    const run = await runStack("prod");
    assert.deepEqual(run.outputs.access, [
      "bookapi-mcp-server -> bookapi :15001 any request",
      "internet -> mesh-gateway :443 mcp.example.com/mcp -> bookapi-mcp-server (token)",
      "mesh-gateway -> bookapi-mcp-server :15001 /mcp,/mcp/*",
      "pods{app.kubernetes.io/name=prometheus} in namespaces{kubernetes.io/metadata.name=monitoring} -> every mesh pod :15090,15021 (metrics, health)",
    ]);
    assert.deepEqual(run.outputs.access, accessLines(loadMeshConfig(stackConfig("prod"))));
  });

  it("has a mesh line for exactly the pairs whose caller's Envoy has a cluster to the callee", async () => {
    const model = loadMeshConfig(stackConfig("prod"));
    const series = meshSeries(await runStack("prod"), model);
    const clusters = new Set(
      series
        .filter((s) => s.name === "envoy_cluster_upstream_rq_total")
        .map((s) => `${String(s.labels.mesh_service)} -> ${String(s.labels.envoy_cluster_name)}`)
        .filter((e) => e.includes("-> upstream_"))
        .map((e) => e.replace("-> upstream_", "-> ")),
    );
    const meshLines = accessLines(model)
      .filter((l) => / :15001 /.test(l) && !l.startsWith("client/"))
      .map((l) => l.slice(0, l.indexOf(" :")));
    assert.deepEqual(meshLines.sort(), [...clusters].sort());
  });

  it("shows a narrowed call as one line changed, so preview --diff shows who lost what", () => {
    const before = accessLines(loadMeshConfig(stackConfig("prod")));
    const after = accessLines(
      loadMeshConfig(
        stackConfigWithServices("prod", (services) => {
          const mcp = services.find((s) => s.name === "bookapi-mcp-server") as Record<
            string,
            unknown
          >;
          mcp.calls = [{ service: "bookapi", methods: ["GET"], paths: ["/books/*"] }];
        }),
      ),
    );
    assert.deepEqual(
      before.filter((l) => !after.includes(l)),
      ["bookapi-mcp-server -> bookapi :15001 any request"],
    );
    assert.deepEqual(
      after.filter((l) => !before.includes(l)),
      ["bookapi-mcp-server -> bookapi :15001 GET /books/*"],
    );
  });
});

describe("the dashboard", () => {
  for (const stack of ["staging", "prod"] as const) {
    it(`queries only series and labels the stats model derives for ${stack}, every expression parsed by Prometheus' grammar`, async () => {
      const model = loadMeshConfig(stackConfig(stack));
      const series = meshSeries(await runStack(stack), model);
      const target = targetLabels(PROJECT, model.namespace);
      const dashboard = meshDashboard(model);
      const exprs = dashboardExpressions(dashboard);
      assert.ok(exprs.length >= 18, String(exprs.length));
      for (const expr of exprs) assert.deepEqual(checkExpression(expr, series, target), [], expr);
      assert.ok((dashboard.panels ?? []).some((p) => p.type === "nodeGraph"));
    });
  }

  it("is a ConfigMap the Grafana sidecar loads (grafana_dashboard: 1, where the stack says), holding the typed dashboard", async () => {
    const model = loadMeshConfig(stackConfig("prod"));
    const cm = findObject(
      await runStack("prod"),
      "ConfigMap",
      `${monitoringName(model)}-dashboard`,
    );
    const metadata = cm.inputs.metadata as { namespace: string; labels: Record<string, string> };
    assert.equal(metadata.namespace, "monitoring");
    assert.equal(metadata.labels.grafana_dashboard, "1");
    const data = cm.inputs.data as Record<string, string>;
    assert.deepEqual(Object.keys(data), [dashboardFile(model)]);
    assert.deepEqual(
      JSON.parse(data[dashboardFile(model)]),
      JSON.parse(JSON.stringify(meshDashboard(model))),
    );
  });

  it("draws every edge of prod with its requests/s and 5xx share: queries evaluated by promtool, frames transformed by Grafana's own code", async function () {
    const binary = findPromtool();
    if (!binary) {
      if (process.env.CI) throw new Error("promtool is missing: .ci/run installs it");
      this.skip();
    }
    const model = loadMeshConfig(stackConfig("prod"));
    const series = meshSeries(await runStack("prod"), model);
    const of = (workload: string) => series.filter((s) => s.labels.mesh_service === workload);
    const q = dashboardQueries(model);
    const input = (workload: string, stat: string, values: string) =>
      inputOf(of(workload), stat, values, `${workload}-1`);
    type Results = Record<"nodes" | "edges" | "edgeErrors", Sample[]>;
    const node = (id: string, value: number, title = id): Sample => ({
      labels: { id, title },
      value,
    });
    const edge = (source: string, target: string, value: number): Sample => ({
      labels: { id: `${source}->${target}`, source, target },
      value,
    });
    const share = (source: string, target: string, value: number): Sample => ({
      labels: { id: `${source}->${target}` },
      value,
    });
    const internet = "external/internet";
    const cases: Array<{ input: typeof scenario; results: Results; drawn: string[][] }> = [];
    // Busy: bookapi is not scraped, so its edge comes from its caller's cluster alone;
    // bookapi-mcp-server counts 1/s from the gateway, whose own cluster counts 3/s (retries): the
    // callee's count wins.
    const scenario = [
      input("bookapi-mcp-server", "cluster.upstream_bookapi.upstream_rq_total", "0+240x10"),
      input("bookapi-mcp-server", "cluster.upstream_bookapi.upstream_rq_5xx", "0+60x10"),
      input(
        "bookapi-mcp-server",
        "http.inbound.rbac.policy.gateway-mesh-gateway.allowed",
        "0+60x10",
      ),
      input("bookapi-mcp-server", "http.inbound.downstream_rq_total", "0+60x10"),
      input("mesh-gateway", "cluster.upstream_bookapi-mcp-server.upstream_rq_total", "0+180x10"),
      input("mesh-gateway", "http.gateway.downstream_rq_total", "0+120x10"),
      input("mesh-gateway", "http.gateway.downstream_rq_5xx", "0+12x10"),
    ];
    cases.push({
      input: scenario,
      results: {
        nodes: [
          node("bookapi", 0),
          node("bookapi-mcp-server", 1),
          node(internet, 0, "internet"),
          node("mesh-gateway", 2),
        ],
        edges: [
          edge("bookapi-mcp-server", "bookapi", 4),
          edge(internet, "mesh-gateway", 2),
          edge("mesh-gateway", "bookapi-mcp-server", 1),
        ],
        edgeErrors: [
          share("bookapi-mcp-server", "bookapi", 25),
          share(internet, "mesh-gateway", 10),
          share("mesh-gateway", "bookapi-mcp-server", 0),
        ],
      },
      drawn: [
        ["bookapi-mcp-server->bookapi", "4.00 reqps", "25.00 % 5xx"],
        [`${internet}->mesh-gateway`, "2.00 reqps", "10.00 % 5xx"],
        ["mesh-gateway->bookapi-mcp-server", "1.00 reqps", "0.00 % 5xx"],
      ],
    });
    // Idle: only the gateway is scraped and sends nothing: its configured edge is drawn at 0,
    // with no share (NaN), and so is the internet's.
    cases.push({
      input: [
        input("mesh-gateway", "cluster.upstream_bookapi-mcp-server.upstream_rq_total", "7+0x10"),
        input("mesh-gateway", "http.gateway.downstream_rq_total", "7+0x10"),
      ],
      results: {
        nodes: [
          node("bookapi", 0),
          node("bookapi-mcp-server", 0),
          node(internet, 0, "internet"),
          node("mesh-gateway", 0),
        ],
        edges: [edge(internet, "mesh-gateway", 0), edge("mesh-gateway", "bookapi-mcp-server", 0)],
        edgeErrors: [
          share(internet, "mesh-gateway", NaN),
          share("mesh-gateway", "bookapi-mcp-server", NaN),
        ],
      },
      drawn: [
        [`${internet}->mesh-gateway`, "0.00 reqps", ""],
        ["mesh-gateway->bookapi-mcp-server", "0.00 reqps", ""],
      ],
    });
    const promLabels = (labels: Record<string, string>) =>
      `{${Object.entries(labels)
        .map(([k, v]) => `${k}="${v}"`)
        .join(", ")}}`;
    const dir = promtoolDir();
    try {
      const file = writeExprTests(
        dir,
        "graph",
        cases.flatMap(({ input: series, results }) =>
          (["nodes", "edges", "edgeErrors"] as const).map((refId) => {
            // promtool 2.42 finds NaN unequal to NaN: where NaN is expected, `x != bool x` (1
            // exactly for NaN) is checked instead.
            const nan = results[refId].some((r) => Number.isNaN(r.value));
            const expr = q.graph[refId];
            return {
              expr: nan ? `(${expr}) != bool (${expr})` : expr,
              evalTime: "5m",
              input: series,
              samples: results[refId].map((r) => ({
                labels: promLabels(r.labels),
                value: nan ? Number(Number.isNaN(r.value)) : r.value,
              })),
            };
          }),
        ),
      );
      const test = promtool(binary as string, dir, ["test", "rules", file]);
      assert.equal(test.status, 0, test.output);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    const { panel, options } = nodeGraphPanel(meshDashboard(model));
    for (const { results, drawn } of cases) {
      const graph = drawNodeGraph(
        await grafanaTransform(panel.transformations ?? [], prometheusTableFrames(results)),
        options,
      );
      assert.deepEqual(graph.errors, []);
      assert.deepEqual(graph.nodes, ["bookapi", "bookapi-mcp-server", internet, "mesh-gateway"]);
      assert.deepEqual(
        graph.edges.map((e) => [e.id, e.mainStat, e.secondaryStat]),
        drawn,
      );
    }
  });

  describe("the node graph's frames, through Grafana's transformations", () => {
    const panelOf = () => nodeGraphPanel(meshDashboard(loadMeshConfig(stackConfig("prod"))));
    const node = (id: string): Sample => ({ labels: { id, title: id }, value: 0 });
    const edge = (source: string, target: string, value: number): Sample => ({
      labels: { id: `${source}->${target}`, source, target },
      value,
    });
    const share = (id: string, value: number): Sample => ({ labels: { id }, value });
    const draw = async (results: Partial<Record<string, Sample[]>>) => {
      const { panel, options } = panelOf();
      return drawNodeGraph(
        await grafanaTransform(panel.transformations ?? [], prometheusTableFrames(results)),
        options,
      );
    };
    const stats = (graph: DrawnGraph) =>
      graph.edges.map((e) => [e.id, e.mainStat, e.secondaryStat]);

    it("draws an outside client's edge, whose share nobody counts (NaN), with its requests/s and a blank second stat", async () => {
      const drawn = await draw({
        nodes: [node("bookapi"), node("client/ci"), node("bookapi-mcp-server")],
        edges: [edge("client/ci", "bookapi", 3), edge("bookapi-mcp-server", "bookapi", 1)],
        edgeErrors: [share("bookapi-mcp-server->bookapi", 50), share("client/ci->bookapi", NaN)],
      });
      assert.deepEqual(drawn.errors, []);
      assert.deepEqual(stats(drawn), [
        ["bookapi-mcp-server->bookapi", "1.00 reqps", "50.00 % 5xx"],
        ["client/ci->bookapi", "3.00 reqps", ""],
      ]);
    });

    it("draws the edges when the error query gave no frame at all (older Grafana), and waits a refresh when it gave an empty one", async () => {
      const nodes = [node("a"), node("b")];
      const absent = await draw({ nodes, edges: [edge("a", "b", 2)] });
      assert.deepEqual(absent.errors, []);
      assert.deepEqual(stats(absent), [["a->b", "2.00 reqps", ""]]);
      // Both queries read the same series, so this is a scrape landing between them.
      const empty = await draw({ nodes, edges: [edge("a", "b", 2)], edgeErrors: [] });
      assert.deepEqual(empty, { nodes: ["a", "b"], edges: [], errors: [] });
    });

    it("leaves out, for one refresh, an edge only one of the two queries returned (they run one after the other), never drawing one without ends", async () => {
      const drawn = await draw({
        nodes: [node("a"), node("b"), node("c")],
        edges: [edge("a", "b", 2), edge("a", "c", 1)],
        edgeErrors: [share("a->b", 5), share("a->gone", 100)],
      });
      assert.deepEqual(drawn.errors, []);
      assert.deepEqual(stats(drawn), [["a->b", "2.00 reqps", "5.00 % 5xx"]]);
      // The first edges appearing between the two queries: an empty graph for one refresh.
      const first = await draw({ nodes: [node("a")], edges: [], edgeErrors: [share("a->b", 5)] });
      assert.deepEqual(first.errors, []);
      assert.deepEqual(first.edges, []);
    });

    it("would report an edge without ends, so the case above can fail", () => {
      const frames = prometheusTableFrames({
        nodes: [node("a")],
        edges: [edge("a", "gone", 1)],
      });
      const drawn = drawNodeGraph(frames, {});
      assert.deepEqual(drawn.errors, ["edge a->gone references a missing node gone"]);
    });
  });
});

describe("tracing (observability.tracing)", () => {
  const collector = {
    host: "otel-collector.monitoring.svc.cluster.local",
    port: 4317,
    protocol: "grpc",
    pods: {
      namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } },
      podSelector: { matchLabels: { "app.kubernetes.io/name": "otel-collector" } },
    },
  };
  const traced = once(() =>
    runProgram(
      stackConfigWithObservability("prod", { tracing: { collector, samplingPercent: 5 } }),
      "prod",
    ),
  );
  /** Every HTTP connection manager of a bootstrap, by listener. */
  const hcms = (b: Bootstrap) =>
    b.static_resources.listeners.map((l) => ({ listener: l.name, hcm: hcm(l) }));

  it("is off by default: no tracer and no collector in any Envoy", async () => {
    const run = await runStack("prod");
    for (const w of WORKLOADS) {
      const b = bootstrapOfRun(run, w);
      assert.ok(
        hcms(b).every(({ hcm }) => hcm.tracing === undefined),
        w,
      );
      assert.ok(!b.static_resources.clusters.some((c) => c.name === "opentelemetry_collector"));
    }
  });

  it("sends every Envoy's spans to the collector over OTLP/gRPC, starts traces only at the gateway, and passes Envoy's protos", async () => {
    const run = await traced();
    for (const w of WORKLOADS) {
      const b = bootstrapOfRun(run, w);
      assert.deepEqual(validateBootstrap(b), [], w);
      const cluster = b.static_resources.clusters.find((c) => c.name === "opentelemetry_collector");
      assert.ok(cluster, w);
      assert.match(JSON.stringify(cluster), /http2_protocol_options/);
      assert.match(JSON.stringify(cluster), /otel-collector\.monitoring\.svc\.cluster\.local/);
      for (const { listener, hcm } of hcms(b).filter(
        ({ listener }) => listener !== "health" && listener !== "metrics",
      )) {
        const t = hcm.tracing;
        assert.ok(t, `${w} ${listener}`);
        assert.equal(t.provider.typed_config.service_name, w);
        assert.deepEqual(t.provider.typed_config.grpc_service?.envoy_grpc, {
          cluster_name: "opentelemetry_collector",
        });
        assert.equal(t.random_sampling.value, w === "mesh-gateway" ? 5 : 0, `${w} ${listener}`);
        assert.equal(t.client_sampling.value, 0);
      }
    }
  });

  it("exports over OTLP/HTTP too: an HTTP/1.1 cluster and the collector's /v1/traces, passing Envoy's protos", async () => {
    const run = await runProgram(
      stackConfigWithObservability("prod", {
        tracing: { collector: { ...collector, port: 4318, protocol: "http" } },
      }),
      "prod",
    );
    for (const w of WORKLOADS) {
      const b = bootstrapOfRun(run, w);
      assert.deepEqual(validateBootstrap(b), [], w);
      const cluster = JSON.stringify(
        b.static_resources.clusters.find((c) => c.name === "opentelemetry_collector"),
      );
      assert.match(cluster, /"http_protocol_options"/);
      const tracing = hcms(b).find(({ hcm }) => hcm.tracing)?.hcm.tracing;
      assert.equal(
        tracing?.provider.typed_config.http_service?.http_uri.uri,
        "http://otel-collector.monitoring.svc.cluster.local:4318/v1/traces",
      );
    }
  });

  it("follows a trace the gateway sampled through every sidecar, and starts none inside the mesh (a model of Envoy's OpenTelemetry tracer)", async () => {
    const run = await traced();
    const sampling = (w: string, listener: string) =>
      (hcms(bootstrapOfRun(run, w)).find((h) => h.listener === listener)?.hcm.tracing
        ?.random_sampling.value ?? 0) / 100;
    // tracer.cc startSpan: a span with a parent context takes the parent's sampled flag; one
    // without takes the connection manager's decision (random_sampling, here a draw r in [0,1)).
    const span = (parent: boolean | undefined, randomSampling: number, r: number) =>
      parent !== undefined ? parent : r < randomSampling;
    // A new request from the internet, drawn inside the 5 %: sampled at the gateway, and the
    // sidecars on its way keep it (the apps forward traceparent).
    const atGateway = span(undefined, sampling("mesh-gateway", "gateway"), 0.01);
    assert.equal(atGateway, true);
    const inMcp = span(atGateway, sampling("bookapi-mcp-server", "inbound"), 0.99);
    const outMcp = span(inMcp, sampling("bookapi-mcp-server", "outbound"), 0.99);
    const inBookapi = span(outMcp, sampling("bookapi", "inbound"), 0.99);
    assert.deepEqual([inMcp, outMcp, inBookapi], [true, true, true]);
    // Drawn outside the 5 %: nobody on its way records it.
    assert.equal(span(undefined, sampling("mesh-gateway", "gateway"), 0.5), false);
    // A call an app starts with no trace context at all (no traceparent, no x-request-id trace
    // bit, no x-envoy-force-trace): its sidecar starts no trace, whatever the draw.
    assert.equal(span(undefined, sampling("bookapi-mcp-server", "outbound"), 0), false);
  });

  it("lets every mesh pod reach the collector's pods on its port, and nothing else of theirs", async () => {
    const run = await traced();
    const policies = registeredPolicies(run);
    const ns = (name: string) => ({ "kubernetes.io/metadata.name": name });
    const cluster: Cluster = {
      namespaces: { bookapi: ns("bookapi"), monitoring: ns("monitoring") },
      policies,
    };
    const otel: Pod = {
      name: "otel",
      namespace: "monitoring",
      labels: { "app.kubernetes.io/name": "otel-collector" },
    };
    for (const w of WORKLOADS) {
      const labels = (
        findObject(run, "Deployment", w).inputs.spec as {
          template: { metadata: { labels: Record<string, string> } };
        }
      ).template.metadata.labels;
      const pod: Pod = { name: w, namespace: "bookapi", labels };
      assert.equal(egressAllowed(cluster, pod, otel, 4317, "TCP"), true, w);
      assert.equal(egressAllowed(cluster, pod, otel, 4318, "TCP"), false, w);
    }
    assert.equal(
      egressAllowed(
        cluster,
        {
          name: "x",
          namespace: "bookapi",
          labels: {
            "app.kubernetes.io/part-of": "bookapi-mesh",
            "app.kubernetes.io/name": "bookapi",
          },
        },
        { ...otel, labels: {} },
        4317,
        "TCP",
      ),
      false,
      "only the collector's pods",
    );
  });
});
