/**
 * The mesh model's settings in Envoy's units, shared by the sidecars and the gateway.
 */
import {
  DEFAULT_ROUTE_TIMEOUT,
  durationSeconds,
  EnvoySettings,
  quantityValue,
  MeshModel,
  STREAMING_IDLE_TIMEOUT,
  TrafficPolicy,
  UpstreamModel,
} from "./config";
import { TracingSpec, TrafficSpec, Upstream } from "./envoy/model";
import { envoyDuration } from "./envoy/spec";

/**
 * Envoy's heap ceiling as a share of the sidecar's memory limit: the rest covers what the heap
 * monitor does not count (thread stacks, the binary, kernel buffers), so the overload actions
 * act before the kubelet's OOM kill.
 */
export const HEAP_SHARE_OF_MEMORY_LIMIT = 0.8;

/** The overload manager's limits of one Envoy, from its container's settings. */
export function overloadSpec(envoy: EnvoySettings): {
  maxHeapBytes: number;
  maxConnections: number;
} {
  return {
    maxHeapBytes: Math.floor(
      quantityValue(envoy.resources.limits.memory) * HEAP_SHARE_OF_MEMORY_LIMIT,
    ),
    maxConnections: envoy.maxConnections,
  };
}

/** A dependency as a caller's Envoy dials it (a sidecar's upstream, a gateway route's). */
export function upstreamSpec({ traffic, ...peer }: UpstreamModel): Upstream {
  return { ...peer, traffic: trafficSpec(traffic) };
}

/** A service's traffic policy in Envoy's units, its defaults filled in. */
export function trafficSpec(t: TrafficPolicy): TrafficSpec {
  const d = (value: string) => envoyDuration(durationSeconds(value));
  const idle = t.idleTimeout ?? (t.streaming ? STREAMING_IDLE_TIMEOUT : undefined);
  return {
    // A streamed response may last any time: no route timeout, only the idle timeout.
    timeout: t.streaming ? "0s" : d(t.timeout ?? DEFAULT_ROUTE_TIMEOUT),
    ...(idle ? { idleTimeout: d(idle) } : {}),
    streaming: t.streaming,
    protocol: t.protocol,
    connectTimeout: d(t.connectTimeout),
    retries: {
      attempts: t.retries.attempts,
      retryOn: t.retries.retryOn,
      ...(t.retries.perTryTimeout ? { perTryTimeout: d(t.retries.perTryTimeout) } : {}),
      backoff: { base: d(t.retries.backoff.base), max: d(t.retries.backoff.max) },
      budget: { ...t.retries.budget },
    },
    // Unset limits stay unset: the caller's Envoy sizes them (connections.ts breakerLimits).
    circuitBreaker: {
      maxConnections: t.circuitBreaker.maxConnections,
      maxPendingRequests: t.circuitBreaker.maxPendingRequests,
      maxRequests: t.circuitBreaker.maxRequests,
    },
    outlierDetection: {
      consecutiveGatewayErrors: t.outlierDetection.consecutiveGatewayErrors,
      consecutiveLocalOriginFailures: t.outlierDetection.consecutiveLocalOriginFailures,
      consecutive5xx: t.outlierDetection.consecutive5xx,
      ejectOnAppErrors: t.outlierDetection.ejectOnAppErrors,
      interval: d(t.outlierDetection.interval),
      baseEjectionTime: d(t.outlierDetection.baseEjectionTime),
      maxEjectionPercent: t.outlierDetection.maxEjectionPercent,
    },
    ...(t.rateLimit
      ? {
          rateLimit: {
            requestsPerSecond: t.rateLimit.requestsPerSecond,
            burst: t.rateLimit.burst ?? t.rateLimit.requestsPerSecond,
          },
        }
      : {}),
    ...(t.sessionAffinity ? { sessionAffinity: { header: t.sessionAffinity.header } } : {}),
  };
}

/** The Envoy builders' tracing settings, where observability.tracing is set. */
export function tracingSpec(model: MeshModel): { tracing?: TracingSpec } {
  const t = model.observability.tracing;
  if (!t) return {};
  const { host, port, protocol } = t.collector;
  return { tracing: { collector: { host, port, protocol }, samplingPercent: t.samplingPercent } };
}
