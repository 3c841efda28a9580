/**
 * The `observability` key: where the Prometheus operator looks, metrics discovery, alerts, the
 * dashboard and tracing (docs/observability.md).
 */
import { z } from "zod";
import {
  DNS_1123_LABEL,
  DNS_1123_SUBDOMAIN,
  port,
  hours,
  peerSelector,
  duration,
  labelMap,
} from "../fields";

/** Where the Prometheus operator looks for the PodMonitor and the PrometheusRule. */
const prometheusSchema = z
  .strictObject({
    /** Their namespace; the mesh namespace when unset. */
    namespace: z
      .string()
      .max(63, "must be at most 63 characters")
      .regex(DNS_1123_LABEL, "must be a DNS-1123 label (lowercase letters, digits, '-')")
      .optional(),
    /** Labels the operator selects them by (kube-prometheus-stack: `release: <its release>`). */
    labels: labelMap.default({}),
  })
  .prefault({});

/** Metrics, alerts: docs/observability.md. */
export const observabilitySchema = z
  .strictObject({
    prometheus: prometheusSchema,
    metrics: z
      .strictObject({
        /**
         * How Prometheus finds the sidecars: a prometheus-operator PodMonitor, the
         * `prometheus.io/*` pod annotations, or not at all. `annotations` when envoy.scrapeFrom
         * is set, `none` otherwise.
         */
        discovery: z
          .enum(["podMonitor", "annotations", "none"], {
            error: "must be podMonitor, annotations or none",
          })
          .optional(),
        /** The PodMonitor's scrape interval. */
        interval: duration.default("30s"),
      })
      .prefault({}),
    /** The mesh's Grafana dashboard, as a ConfigMap the Grafana sidecar loads. */
    dashboard: z
      .strictObject({
        enabled: z.boolean({ error: "must be true or false" }).default(false),
        /** Where the Grafana sidecar looks; the mesh namespace when unset. */
        namespace: z
          .string()
          .max(63, "must be at most 63 characters")
          .regex(DNS_1123_LABEL, "must be a DNS-1123 label (lowercase letters, digits, '-')")
          .optional(),
        /** The label the sidecar selects dashboards by (its `label`/`labelValue` settings). */
        labels: labelMap.default({ grafana_dashboard: "1" }),
      })
      .prefault({}),
    /** OpenTelemetry tracing from every Envoy to a collector (off unless set). */
    tracing: z
      .strictObject({
        collector: z.strictObject({
          /** The collector's address, e.g. its Service's DNS name. */
          host: z
            .string({ error: "must be a DNS name" })
            .max(253)
            .regex(DNS_1123_SUBDOMAIN, "must be a DNS name such as otel-collector.monitoring.svc"),
          port,
          /** OTLP over gRPC (4317 by convention) or over HTTP (4318). */
          protocol: z.enum(["grpc", "http"], { error: "must be grpc or http" }).default("grpc"),
          /** The collector's pods: the NetworkPolicies let every mesh pod send spans to them. */
          pods: peerSelector,
        }),
        /** Share of new requests (without a trace context) the gateway starts a trace for. */
        samplingPercent: z
          .number({ error: "must be a number" })
          .min(0, "must be between 0 and 100")
          .max(100, "must be between 0 and 100")
          .default(1),
      })
      .optional(),
    /** A PrometheusRule with the mesh's alerts (needs discovery podMonitor). */
    alerts: z
      .strictObject({
        enabled: z.boolean({ error: "must be true or false" }).default(false),
        /** Share of an edge's requests answered 5xx that fires MeshEdgeErrors. */
        edgeErrorRatio: z
          .number({ error: "must be a number" })
          .gt(0, "must be more than 0")
          .lt(1, "must be less than 1")
          .default(0.05),
        /** p99 of a non-streaming edge, in milliseconds, that fires MeshEdgeLatency. */
        edgeP99Milliseconds: z
          .number({ error: "must be a number of milliseconds" })
          .int("must be whole milliseconds")
          .positive("must be positive")
          .default(1000),
        /** A certificate with less than this left fires MeshCertificateExpiring. */
        certificateExpiryHours: hours.default(24),
        /** How long a condition must hold before its alert fires. */
        for: duration.default("5m"),
      })
      .prefault({}),
  })
  .prefault({});
