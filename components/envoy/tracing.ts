/**
 * OpenTelemetry tracing (observability.tracing): every HTTP connection manager reports spans to
 * the collector through one cluster. Sampling is decided at the edge: the gateway starts a trace
 * for `samplingPercent` of the requests that arrive without one; sidecars start none themselves
 * and follow the trace context a request carries. Envoy's OpenTelemetry tracer gives a span with
 * a parent context the parent's sampled flag and uses the connection manager's decision only for
 * a request without one (source/extensions/tracers/opentelemetry/tracer.cc, startSpan: "Respect
 * the previous span's sampled flag"); the connection manager's samplings are each 100 % unless
 * set (http_connection_manager.proto, Tracing), so both are stated.
 */
import { TracingSpec } from "./model";
import { Duration, EXTENSION_NAMES, HcmTracing, TYPE_URLS } from "./types";

export const COLLECTOR_CLUSTER = "opentelemetry_collector";

/** How long Envoy waits for the collector to take a batch of spans. */
const EXPORT_TIMEOUT: Duration = "1s";

/** The connection manager's tracing for `service`; `edge` starts traces, a sidecar does not. */
export function hcmTracing(tracing: TracingSpec, service: string, edge: boolean): HcmTracing {
  const { collector } = tracing;
  return {
    provider: {
      name: EXTENSION_NAMES.openTelemetry,
      typed_config: {
        "@type": TYPE_URLS.openTelemetryConfig,
        service_name: service,
        ...(collector.protocol === "grpc"
          ? {
              grpc_service: {
                envoy_grpc: { cluster_name: COLLECTOR_CLUSTER },
                timeout: EXPORT_TIMEOUT,
              },
            }
          : {
              http_service: {
                http_uri: {
                  uri: `http://${collector.host}:${collector.port}/v1/traces`,
                  cluster: COLLECTOR_CLUSTER,
                  timeout: EXPORT_TIMEOUT,
                },
              },
            }),
      },
    },
    random_sampling: { value: edge ? tracing.samplingPercent : 0 },
    // x-client-trace-id would let any client force a trace.
    client_sampling: { value: 0 },
  };
}
