/**
 * Unit tests for the mesh's alerts in `promtool test rules` form, and a runner for Prometheus' own
 * `promtool`. Each alert gets a case that fires and one that does not, fed with input series
 * named and labelled exactly as the stats model (tests/harness/stats-model.ts) says this stack's
 * Envoys emit them.
 *
 * promtool comes from Debian's `prometheus` package (.ci/run extracts it without starting a
 * server); `PROMTOOL` names the binary, else `promtool` on PATH.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { stringify } from "yaml";
import { AlertRule, RuleGroup } from "../../components/observability";
import { LabelValue, Series, seriesOfStat } from "./stats-model";

/** The promtool binary, or undefined when this machine has none. */
export function findPromtool(): string | undefined {
  const candidates = [process.env.PROMTOOL, "promtool"].filter((c): c is string => !!c);
  return candidates.find((c) => spawnSync(c, ["--version"]).status === 0);
}

export interface PromtoolResult {
  status: number | null;
  output: string;
}

/** Runs `promtool <args>` in `dir`. */
export function promtool(binary: string, dir: string, args: string[]): PromtoolResult {
  const run = spawnSync(binary, args, { cwd: dir, encoding: "utf8" });
  return { status: run.status, output: `${run.stdout}${run.stderr}` };
}

/**
 * A concrete label set for an input series: forms (a pod, an instance, a bucket's `le`) get the
 * values given, or example ones; a value the form does not allow throws.
 */
function concrete(
  labels: Record<string, LabelValue>,
  pod: string,
  given: Record<string, string> = {},
): Record<string, string> {
  const examples: Record<string, string> = {
    pod,
    instance: "10.0.0.7:15090",
    endpoint: "envoy-metrics",
    envoy_response_code: "503",
    ...given,
  };
  return Object.fromEntries(
    Object.entries(labels).map(([k, v]) => {
      if (typeof v === "string") return [k, v];
      const value = examples[k];
      if (value === undefined || !v.test(value))
        throw new Error(`promtool cases: no example value for label ${k}`);
      return [k, value];
    }),
  );
}

function seriesText(name: string, labels: Record<string, string>): string {
  const body = Object.entries(labels)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `${k}=${JSON.stringify(v)}`)
    .join(", ");
  return `${name}{${body}}`;
}

interface InputSeries {
  series: string;
  values: string;
}

/** One alert's firing and quiet cases, as promtool test_group entries. */
interface AlertCase {
  alert: string;
  fires: InputSeries[];
  quiet: InputSeries[];
  /** When to evaluate (after the alert's `for`). */
  at: string;
  /** The firing alert's labels besides severity. */
  labels: Record<string, string>;
}

/** `{{ $labels.x }}` filled in, as Prometheus expands the annotations of a firing alert. */
function expand(template: string, labels: Record<string, string>): string {
  return template.replace(/\{\{ \$labels\.([a-zA-Z_]+) \}\}/g, (_, k: string) => labels[k] ?? "");
}

export interface MeshWorkloadSeries {
  workload: string;
  series: Series[];
}

/**
 * The cases for every alert of `groups`, from the series of a caller (`caller`, with an upstream
 * cluster `edge`) as the stats model derives them. Throws for an alert it has no case for.
 */
export function alertCases(
  groups: RuleGroup[],
  caller: MeshWorkloadSeries,
  edge: string,
  target: Record<string, LabelValue>,
): AlertCase[] {
  const pod = `${caller.workload}-7d9f8c6b5d-x2x4k`;
  const input = (stat: string, values: string, suffix = "", given: Record<string, string> = {}) =>
    inputOf(caller.series, stat, values, pod, suffix, given);
  const cluster = (s: string) => `cluster.${edge}.${s}`;
  const edgeLabels = { mesh_service: caller.workload, envoy_cluster_name: edge };
  const bucket = (le: string, values: string) =>
    input(cluster("upstream_rq_time"), values, "_bucket", { le });
  const byName: Record<string, Omit<AlertCase, "alert">> = {
    MeshEdgeErrors: {
      fires: [
        input(cluster("upstream_rq_5xx"), "0+10x20"),
        input(cluster("upstream_rq_total"), "0+100x20"),
      ],
      quiet: [
        input(cluster("upstream_rq_5xx"), "0+1x20"),
        input(cluster("upstream_rq_total"), "0+100x20"),
      ],
      at: "15m",
      labels: edgeLabels,
    },
    MeshEdgeLatency: {
      fires: [
        bucket("500", "0+0x20"),
        bucket("1000", "0+0x20"),
        bucket("2500", "0+100x20"),
        bucket("+Inf", "0+100x20"),
      ],
      quiet: [
        bucket("500", "0+100x20"),
        bucket("1000", "0+100x20"),
        bucket("2500", "0+100x20"),
        bucket("+Inf", "0+100x20"),
      ],
      at: "15m",
      labels: edgeLabels,
    },
    MeshCertificateRenewalMissed: {
      fires: [input("server.days_until_first_cert_expiring", "1x200")],
      quiet: [input("server.days_until_first_cert_expiring", "10x200")],
      at: "90m",
      labels: { mesh_service: caller.workload },
    },
    MeshCertificateExpiring: {
      fires: [input("server.days_until_first_cert_expiring", "0x20")],
      quiet: [input("server.days_until_first_cert_expiring", "30x20")],
      at: "10m",
      labels: { mesh_service: caller.workload },
    },
    MeshCircuitBreakerOpen: {
      fires: [
        input(cluster("circuit_breakers.default.rq_open"), "1x20"),
        input(cluster("circuit_breakers.default.rq_pending_open"), "0x20"),
        input(cluster("circuit_breakers.default.cx_open"), "0x20"),
      ],
      quiet: [
        input(cluster("circuit_breakers.default.rq_open"), "0x20"),
        input(cluster("circuit_breakers.default.rq_pending_open"), "0x20"),
        input(cluster("circuit_breakers.default.cx_open"), "0x20"),
      ],
      at: "5m",
      labels: edgeLabels,
    },
    MeshOutlierEjections: {
      fires: [input(cluster("outlier_detection.ejections_enforced_total"), "0 0 0 1 1 1 1")],
      quiet: [input(cluster("outlier_detection.ejections_enforced_total"), "0x6")],
      at: "5m",
      labels: edgeLabels,
    },
    MeshOverloaded: {
      // The second action alone must fire too.
      fires: [
        input("overload.envoy.overload_actions.stop_accepting_requests.active", "0x20"),
        input("overload.envoy.overload_actions.reject_incoming_connections.active", "1x20"),
      ],
      quiet: [
        input("overload.envoy.overload_actions.stop_accepting_requests.active", "0x20"),
        input("overload.envoy.overload_actions.reject_incoming_connections.active", "0x20"),
      ],
      at: "5m",
      labels: { mesh_service: caller.workload },
    },
    MeshSidecarDown: {
      fires: [{ series: seriesText("up", concrete(target, pod)), values: "0x20" }],
      quiet: [{ series: seriesText("up", concrete(target, pod)), values: "1x20" }],
      at: "10m",
      labels: concrete(target, pod),
    },
  };
  return groups
    .flatMap((g) => g.rules)
    .map((rule: AlertRule) => {
      const c = byName[rule.alert];
      if (!c) throw new Error(`promtool cases: no case for alert ${rule.alert}`);
      return { alert: rule.alert, ...c };
    });
}

/**
 * The rule file `<name>-rules.yaml` and the promtool test file `<name>-tests.yaml` for `groups`
 * and `cases`, written into `dir`; returns their names.
 */
export function writePromtoolFiles(
  dir: string,
  name: string,
  groups: RuleGroup[],
  cases: AlertCase[],
): { rules: string; tests: string } {
  const files = { rules: `${name}-rules.yaml`, tests: `${name}-tests.yaml` };
  fs.writeFileSync(path.join(dir, files.rules), stringify({ groups }));
  const rules = new Map(groups.flatMap((g) => g.rules).map((r) => [r.alert, r]));
  const tests = cases.flatMap((c) => {
    const rule = rules.get(c.alert) as AlertRule;
    const labels = { ...c.labels, severity: rule.labels.severity };
    const annotations = Object.fromEntries(
      Object.entries(rule.annotations).map(([k, v]) => [k, expand(v, labels)]),
    );
    return [
      {
        name: `${c.alert} fires`,
        interval: "1m",
        input_series: c.fires,
        alert_rule_test: [
          {
            eval_time: c.at,
            alertname: c.alert,
            exp_alerts: [{ exp_labels: labels, exp_annotations: annotations }],
          },
        ],
      },
      {
        name: `${c.alert} stays quiet`,
        interval: "1m",
        input_series: c.quiet,
        alert_rule_test: [{ eval_time: c.at, alertname: c.alert, exp_alerts: [] }],
      },
    ];
  });
  fs.writeFileSync(
    path.join(dir, files.tests),
    stringify({ rule_files: [files.rules], evaluation_interval: "1m", tests }),
  );
  return files;
}

/** A fresh folder for promtool's files. */
export function promtoolDir(): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), "bookapi-mesh-promtool-"));
}

/** A PromQL expression evaluated by promtool on input series, and the samples it must give. */
export interface ExprTest {
  expr: string;
  evalTime: string;
  input: InputSeries[];
  samples: { labels: string; value: number }[];
}

/** A promtool test file of expression tests (no rules), written into `dir`; returns its name. */
export function writeExprTests(dir: string, name: string, tests: ExprTest[]): string {
  const file = `${name}-tests.yaml`;
  fs.writeFileSync(
    path.join(dir, file),
    stringify({
      rule_files: [],
      evaluation_interval: "1m",
      tests: tests.map((t) => ({
        interval: "1m",
        input_series: t.input,
        promql_expr_test: [
          {
            expr: t.expr,
            eval_time: t.evalTime,
            exp_samples: t.samples.map((s) => ({ labels: s.labels, value: s.value })),
          },
        ],
      })),
    }),
  );
  return file;
}

/**
 * An input series for a stat of `series` (the stats model's): its labels, with example values for
 * those known only by their form (or `given` ones, such as a bucket's `le`).
 */
export function inputOf(
  series: Series[],
  stat: string,
  values: string,
  pod: string,
  suffix = "",
  given: Record<string, string> = {},
): InputSeries {
  const s = seriesOfStat(series, stat, suffix);
  return { series: seriesText(s.name, concrete(s.labels, pod, given)), values };
}
