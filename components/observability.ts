/**
 * What Prometheus needs to watch the mesh (docs/observability.md): a prometheus-operator
 * `PodMonitor` for every mesh pod, and a `PrometheusRule` with the mesh's alerts. The rules are
 * built by a pure function from the model, so tests check every expression against the series
 * Envoy emits (tests/harness/stats-model.ts) and run them through `promtool test rules`.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { MeshModel, PROJECT } from "./config";
import { EXTENSION_NAMES, upstreamClusterName } from "./envoy";
import { MESH_SERVICE_TAG } from "./envoy/bootstrap";
import { meshDashboard } from "./dashboard";
import { EXPOSED_PATHS, meshLabels } from "./names";
import { PORT_NAMES } from "./pod";

export const PROMETHEUS_OPERATOR_API_VERSION = "monitoring.coreos.com/v1";

/** The pod label Prometheus takes each target's `job` from (PodMonitor `jobLabel`). */
const JOB_LABEL = "app.kubernetes.io/part-of";

/**
 * The series selector of this mesh's sidecars: its job (the `part-of` label, the same for every
 * mesh) and its namespace (the operator labels each target with its pod's namespace).
 */
export function meshSelector(model: MeshModel): string {
  return `job="${PROJECT}", namespace="${model.namespace}"`;
}

/** The PodMonitor and PrometheusRule's name: one of each per stack (namespace). */
export function monitoringName(model: MeshModel): string {
  return `${PROJECT}-${model.namespace}`;
}

/** A prometheus-operator PodMonitor's spec (monitoring.coreos.com/v1), the fields the mesh sets. */
export interface PodMonitorSpec {
  jobLabel: string;
  namespaceSelector: { matchNames: string[] };
  selector: { matchLabels: Record<string, string> };
  podMetricsEndpoints: { port: string; path: string; interval: string }[];
}

/**
 * Every mesh pod (the services' and the gateway's: all carry the `part-of` label) on the Envoy
 * metrics port. Pod discovery, not endpoints: before prometheus/prometheus#14929 endpoints
 * discovery missed ports that only a native sidecar (an init container) declares (#14927); pod
 * discovery lists init containers' ports.
 */
export function podMonitorSpec(model: MeshModel): PodMonitorSpec {
  return {
    jobLabel: JOB_LABEL,
    namespaceSelector: { matchNames: [model.namespace] },
    selector: { matchLabels: { [JOB_LABEL]: PROJECT } },
    podMetricsEndpoints: [
      {
        port: PORT_NAMES.metrics,
        path: EXPOSED_PATHS.metrics,
        interval: model.observability.metrics.interval,
      },
    ],
  };
}

/** One alerting rule as Prometheus loads it. */
export interface AlertRule {
  alert: string;
  expr: string;
  for: string;
  labels: { severity: "warning" | "critical" };
  annotations: { summary: string; description: string; runbook: string };
}

export interface RuleGroup {
  name: string;
  rules: AlertRule[];
}

const RUNBOOK = "docs/observability.md#alerts";

/** `{<selector>, <more>}`: a series matcher scoped to this mesh. */
export function meshMatchers(model: MeshModel, more = ""): string {
  return `{${meshSelector(model)}${more ? `, ${more}` : ""}}`;
}

/** A regex alternative of cluster names, for a label matcher. */
const anyOf = (names: string[]) =>
  names.map((n) => n.replace(/[.\\+*?[^\]$(){}=!<>|:-]/g, "\\$&")).join("|");

/** The clusters that are mesh edges (a caller's upstream per callee), as a label matcher. */
export const EDGE_CLUSTERS = `envoy_cluster_name=~"upstream_.+"`;
/** An edge's labels: the caller's Envoy and the callee's cluster. */
export const BY_EDGE = `${MESH_SERVICE_TAG}, envoy_cluster_name`;

/**
 * The mesh's alerts. An edge is a caller's sidecar (`mesh_service`) and one of its upstream
 * clusters (`envoy_cluster_name` = `upstream_<callee>`): the caller's view of the callee.
 */
export function alertRules(model: MeshModel): RuleGroup[] {
  const a = model.observability.alerts;
  const edge = EDGE_CLUSTERS;
  const byEdge = BY_EDGE;
  // p99 only where a response is not a stream: SSE and other long responses make it meaningless.
  const plain = model.services
    .filter((s) => !s.traffic.streaming)
    .map((s) => upstreamClusterName(s));
  // Envoy's gauge counts whole days left (floor): half the renewal window, in those days. The
  // config keeps certificateExpiryHours below it, so the warning comes before the critical alert.
  const renewalDays = Math.max(1, Math.floor(model.certificates.earlyRenewalHours / 2 / 24));
  const overload = [
    EXTENSION_NAMES.stopAcceptingRequests,
    EXTENSION_NAMES.rejectIncomingConnections,
  ];
  const overloadSeries = overload.map(
    (action) => `envoy_overload_${action.replace(/\./g, "_")}_active${meshMatchers(model)}`,
  );
  const rules: AlertRule[] = [
    {
      alert: "MeshEdgeErrors",
      expr: `sum by (${byEdge}) (rate(envoy_cluster_upstream_rq_xx${meshMatchers(model, `${edge}, envoy_response_code_class="5"`)}[5m])) / sum by (${byEdge}) (rate(envoy_cluster_upstream_rq_total${meshMatchers(model, edge)}[5m])) > ${a.edgeErrorRatio}`,
      for: a.for,
      labels: { severity: "warning" },
      annotations: {
        summary: "A mesh edge answers 5xx",
        description: `More than ${a.edgeErrorRatio * 100}% of {{ $labels.${MESH_SERVICE_TAG} }}'s requests to {{ $labels.envoy_cluster_name }} end in 5xx.`,
        runbook: RUNBOOK,
      },
    },
    ...(plain.length > 0
      ? [
          {
            alert: "MeshEdgeLatency",
            expr: `histogram_quantile(0.99, sum by (le, ${byEdge}) (rate(envoy_cluster_upstream_rq_time_bucket${meshMatchers(model, `envoy_cluster_name=~"${anyOf(plain)}"`)}[5m]))) > ${a.edgeP99Milliseconds}`,
            for: a.for,
            labels: { severity: "warning" as const },
            annotations: {
              summary: "A mesh edge is slow",
              description: `The p99 of {{ $labels.${MESH_SERVICE_TAG} }}'s requests to {{ $labels.envoy_cluster_name }} is above ${a.edgeP99Milliseconds} ms.`,
              runbook: RUNBOOK,
            },
          },
        ]
      : []),
    {
      alert: "MeshCertificateRenewalMissed",
      expr: `min by (${MESH_SERVICE_TAG}) (envoy_server_days_until_first_cert_expiring${meshMatchers(model)}) < ${renewalDays}`,
      for: "1h",
      labels: { severity: "warning" },
      annotations: {
        summary: "A certificate was not renewed in time",
        description: `{{ $labels.${MESH_SERVICE_TAG} }} holds a certificate with fewer than ${renewalDays} days left: half its renewal window (earlyRenewalHours ${model.certificates.earlyRenewalHours}) has passed without a renewal.`,
        runbook: RUNBOOK,
      },
    },
    {
      alert: "MeshCertificateExpiring",
      expr: `min by (${MESH_SERVICE_TAG}) (envoy_server_days_until_first_cert_expiring${meshMatchers(model)}) * 24 < ${a.certificateExpiryHours}`,
      for: "5m",
      labels: { severity: "critical" },
      annotations: {
        summary: "A certificate expires soon",
        description: `{{ $labels.${MESH_SERVICE_TAG} }} holds a certificate that expires within ${a.certificateExpiryHours} h; its peers will refuse it then.`,
        runbook: RUNBOOK,
      },
    },
    {
      alert: "MeshCircuitBreakerOpen",
      expr: ["rq", "rq_pending", "cx"]
        .map(
          (kind) =>
            `sum by (${byEdge}) (envoy_cluster_circuit_breakers_default_${kind}_open${meshMatchers(model, edge)})`,
        )
        .join(" + ")
        .concat(" > 0"),
      for: "1m",
      labels: { severity: "warning" },
      annotations: {
        summary: "A circuit breaker is open",
        description: `{{ $labels.${MESH_SERVICE_TAG} }} refuses requests to {{ $labels.envoy_cluster_name }}: its connection, request or pending limit is reached.`,
        runbook: RUNBOOK,
      },
    },
    {
      alert: "MeshOutlierEjections",
      expr: `sum by (${byEdge}) (increase(envoy_cluster_outlier_detection_ejections_enforced_total${meshMatchers(model, edge)}[10m])) > 0`,
      for: "0m",
      labels: { severity: "warning" },
      annotations: {
        summary: "Pods were ejected from a mesh edge",
        description: `{{ $labels.${MESH_SERVICE_TAG} }} ejected pods of {{ $labels.envoy_cluster_name }} for gateway errors or connect failures in the last 10 minutes.`,
        runbook: RUNBOOK,
      },
    },
    {
      alert: "MeshOverloaded",
      // Each action compared on its own: `a or b` would drop b wherever a has the same labels.
      expr: overloadSeries
        .map((series) => `(max by (${MESH_SERVICE_TAG}) (${series}) > 0)`)
        .join(" or "),
      for: "1m",
      labels: { severity: "critical" },
      annotations: {
        summary: "An Envoy is shedding load",
        description: `{{ $labels.${MESH_SERVICE_TAG} }}'s Envoy is near its heap limit and refuses new requests or connections.`,
        runbook: RUNBOOK,
      },
    },
    {
      alert: "MeshSidecarDown",
      expr: `up${meshMatchers(model)} == 0`,
      for: a.for,
      labels: { severity: "critical" },
      annotations: {
        summary: "A sidecar stopped reporting",
        description: "Prometheus cannot scrape {{ $labels.pod }}'s Envoy.",
        runbook: RUNBOOK,
      },
    },
  ];
  return [{ name: `${PROJECT}.${model.namespace}`, rules }];
}

export interface MeshMonitoringArgs {
  model: MeshModel;
  /** What every object is created after (the stack's claim on the namespace). */
  after: pulumi.Resource[];
}

/**
 * The PodMonitor (observability.metrics.discovery podMonitor), the PrometheusRule (alerts) and the
 * dashboard's ConfigMap (observability.dashboard).
 */
export class MeshMonitoring extends pulumi.ComponentResource {
  public readonly podMonitor?: k8s.apiextensions.CustomResource;
  public readonly prometheusRule?: k8s.apiextensions.CustomResource;
  public readonly dashboard?: k8s.core.v1.ConfigMap;

  constructor(name: string, args: MeshMonitoringArgs, opts?: pulumi.ComponentResourceOptions) {
    super("bookapi-mesh:observability:MeshMonitoring", name, {}, opts);
    const { model } = args;
    const o = model.observability;
    const metadata = {
      name: monitoringName(model),
      namespace: o.prometheus.namespace ?? model.namespace,
      labels: { ...meshLabels(), ...o.prometheus.labels },
    };
    const childOpts = { parent: this, deleteBeforeReplace: true, dependsOn: args.after };
    if (o.metrics.discovery === "podMonitor")
      this.podMonitor = new k8s.apiextensions.CustomResource(
        `${name}-pod-monitor`,
        {
          apiVersion: PROMETHEUS_OPERATOR_API_VERSION,
          kind: "PodMonitor",
          metadata,
          spec: podMonitorSpec(model),
        },
        childOpts,
      );
    if (o.alerts.enabled)
      this.prometheusRule = new k8s.apiextensions.CustomResource(
        `${name}-rules`,
        {
          apiVersion: PROMETHEUS_OPERATOR_API_VERSION,
          kind: "PrometheusRule",
          metadata,
          spec: { groups: alertRules(model) },
        },
        childOpts,
      );
    if (o.dashboard.enabled)
      this.dashboard = new k8s.core.v1.ConfigMap(
        `${name}-dashboard`,
        {
          metadata: {
            name: `${monitoringName(model)}-dashboard`,
            namespace: o.dashboard.namespace ?? model.namespace,
            labels: { ...meshLabels(), ...o.dashboard.labels },
          },
          data: { [dashboardFile(model)]: `${JSON.stringify(meshDashboard(model), null, 2)}\n` },
        },
        childOpts,
      );
    this.registerOutputs({});
  }
}

/** The dashboard's file name in its ConfigMap (the Grafana sidecar writes it under that name). */
export function dashboardFile(model: MeshModel): string {
  return `${monitoringName(model)}.json`;
}
