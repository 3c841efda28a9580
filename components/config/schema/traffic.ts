/**
 * A service's `traffic` policy (timeouts, retries, breakers, outlier detection, rate limits,
 * session affinity) and its `egress` targets (docs/traffic.md).
 */
import { z } from "zod";
import { isIP } from "node:net";
import {
  DNS_1123_LABEL,
  port,
  DURATION,
  durationSeconds,
  duration,
  positiveCount,
  cidr,
} from "../fields";

/** Envoy's own route timeout, which plain routes keep unless `traffic.timeout` says otherwise. */
export const DEFAULT_ROUTE_TIMEOUT = "15s";

/** Idle timeout of streaming routes unless `traffic.idleTimeout` says otherwise. */
export const STREAMING_IDLE_TIMEOUT = "1h";

/**
 * Envoy's retry_on conditions (x-envoy-retry-on and x-envoy-retry-grpc-on in Envoy's router
 * docs). Envoy drops an unknown one silently, which would turn retries off without a word.
 */
const RETRY_ON = [
  "5xx",
  "gateway-error",
  "reset",
  "reset-before-request",
  "connect-failure",
  "envoy-ratelimited",
  "retriable-4xx",
  "refused-stream",
  "retriable-status-codes",
  "retriable-headers",
  "http3-post-connect-failure",
  "cancelled",
  "deadline-exceeded",
  "internal",
  "resource-exhausted",
  "unavailable",
];

/** Headers the stateful-session filter must not rewrite: HTTP's own. */
const PROTOCOL_HEADERS = [
  "host",
  "content-type",
  "content-length",
  "connection",
  "transfer-encoding",
  "te",
  "upgrade",
  "cookie",
  "set-cookie",
  "location",
];

/**
 * How callers reach a service and how it takes requests (docs/traffic.md has each default and
 * why). Applied to every caller's outbound route and cluster, and to the service's inbound side.
 */
export const trafficSchema = z
  .strictObject({
    /** Whole-request timeout of plain (non-streaming) routes. */
    timeout: duration.optional(),
    /** Longest pause between bytes of a request or response. */
    idleTimeout: duration.optional(),
    /** Long-lived responses (Server-Sent Events, MCP): no route timeout, only the idle timeout. */
    streaming: z.boolean({ error: "must be true or false" }).default(false),
    /**
     * What callers' sidecars speak to this service's sidecar over mTLS: HTTP/2 (many requests
     * and streams on one connection) or HTTP/1.1 (one request per connection at a time).
     */
    protocol: z.enum(["http2", "http1"], { error: "must be http2 or http1" }).default("http2"),
    /** How long a caller's sidecar waits for a TCP connection to one of this service's pods. */
    connectTimeout: duration.default("1s"),
    retries: z
      .strictObject({
        attempts: z
          .number()
          .int("must be a whole number")
          .min(0, "must not be negative")
          .default(2),
        /** Envoy's retry_on conditions for idempotent methods; others retry only what never left. */
        retryOn: z
          .string()
          .refine(
            (v) => v.split(",").every((c) => RETRY_ON.includes(c)),
            `must be Envoy retry_on conditions separated by commas: ${RETRY_ON.join(", ")}`,
          )
          .default("connect-failure,refused-stream,reset"),
        perTryTimeout: duration.optional(),
        backoff: z
          .strictObject({ base: duration.default("25ms"), max: duration.default("250ms") })
          .prefault({}),
        /** Retries waiting at once, per caller sidecar: a share of its active requests. */
        budget: z
          .strictObject({
            percent: z
              .number({ error: "must be a percentage" })
              .min(1, "must be between 1 and 100")
              .max(100, "must be between 1 and 100")
              .default(100),
            minConcurrency: positiveCount.default(10),
          })
          .prefault({}),
      })
      .prefault({}),
    /** Per caller sidecar; unset limits are sized from the caller's Envoy memory limit. */
    circuitBreaker: z
      .strictObject({
        maxConnections: positiveCount.optional(),
        maxPendingRequests: positiveCount.default(256),
        maxRequests: positiveCount.optional(),
        maxRetries: z
          .never({ error: "was replaced by retries.budget (a share of active requests)" })
          .optional(),
      })
      .prefault({}),
    outlierDetection: z
      .strictObject({
        /** Replies 502, 503 or 504 in a row: the pod's sidecar cannot reach its app. */
        consecutiveGatewayErrors: positiveCount.default(5),
        /**
         * Local-origin failures in a row: in effect connect failures (the pod is gone), since a
         * reset or timeout after a successful connect starts the count again.
         */
        consecutiveLocalOriginFailures: positiveCount.default(5),
        /** Any 5xx in a row; ejects only with ejectOnAppErrors (an app's 500 is often an answer). */
        consecutive5xx: positiveCount.default(5),
        ejectOnAppErrors: z.boolean({ error: "must be true or false" }).default(false),
        interval: duration.default("10s"),
        baseEjectionTime: duration.default("30s"),
        maxEjectionPercent: z
          .number()
          .int("must be a whole percentage")
          .min(1, "must be between 1 and 100")
          .max(100, "must be between 1 and 100")
          .default(50),
      })
      .prefault({}),
    /** Per replica: Envoy's local rate limit on the inbound side. */
    rateLimit: z
      .strictObject({ requestsPerSecond: positiveCount, burst: positiveCount.optional() })
      .refine((r) => r.burst === undefined || r.burst >= r.requestsPerSecond, {
        path: ["burst"],
        message: "must be at least requestsPerSecond (the bucket refills that many each second)",
      })
      .optional(),
    /** Requests carrying this response header's value go back to the replica that set it. */
    sessionAffinity: z
      .strictObject({
        header: z
          .string({ error: "is required (a header name such as mcp-session-id)" })
          .regex(/^[A-Za-z0-9-]+$/, "must be an HTTP header name")
          .transform((h) => h.toLowerCase())
          .refine(
            (h) => !PROTOCOL_HEADERS.includes(h),
            "must be the app's own session header, not one HTTP itself uses",
          ),
      })
      .optional(),
  })
  .superRefine((t, ctx) => {
    if (t.streaming && t.timeout !== undefined)
      ctx.addIssue({
        code: "custom",
        path: ["timeout"],
        message:
          "must not be set on a streaming service (it would cut long responses); use idleTimeout",
      });
    if (t.streaming && t.retries.perTryTimeout !== undefined)
      ctx.addIssue({
        code: "custom",
        path: ["retries", "perTryTimeout"],
        message: "must not be set on a streaming service (it would cut long responses)",
      });
    // Fields that failed their own check are reported there; compare only valid ones.
    const secs = (v: string | undefined) =>
      v !== undefined && DURATION.test(v) ? durationSeconds(v) : undefined;
    const timeout = secs(t.timeout ?? DEFAULT_ROUTE_TIMEOUT);
    const perTry = secs(t.retries.perTryTimeout);
    if (!t.streaming && timeout !== undefined && perTry !== undefined && perTry > timeout)
      ctx.addIssue({
        code: "custom",
        path: ["retries", "perTryTimeout"],
        message: `must not be longer than timeout (${t.timeout ?? `${DEFAULT_ROUTE_TIMEOUT}, the default`})`,
      });
    const base = secs(t.retries.backoff.base);
    const max = secs(t.retries.backoff.max);
    if (base !== undefined && max !== undefined && max < base)
      ctx.addIssue({
        code: "custom",
        path: ["retries", "backoff", "max"],
        message: `must not be shorter than backoff.base (${t.retries.backoff.base})`,
      });
  });
export type TrafficPolicy = z.infer<typeof trafficSchema>;
/** A service's traffic policy when its stack says nothing. */
export const DEFAULT_TRAFFIC_POLICY: TrafficPolicy = trafficSchema.parse({});

/** A host name (DNS) or an IP address, as an egress target. */
const egressHost = z
  .string({ error: "is required (a DNS name or IP address)" })
  .max(253)
  .refine(
    (h) =>
      isIP(h) !== 0 || /^([a-z0-9]([-a-z0-9]*[a-z0-9])?\.)*[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(h),
    "must be a lowercase DNS name or an IP address",
  );

/** A destination outside the mesh. */
export const egressSchema = z.strictObject({
  name: z
    .string({ error: "is required" })
    .max(40, "must be at most 40 characters")
    .regex(DNS_1123_LABEL, "must be a DNS-1123 label (lowercase letters, digits, '-')"),
  host: egressHost,
  port,
  protocol: z.enum(["http", "https", "tcp"], { error: "must be http, https or tcp" }),
  /** Where the NetworkPolicy lets this traffic go; any address when omitted. */
  cidrs: z
    .array(cidr, { error: "must be a list of CIDRs" })
    .min(1, "must list at least one CIDR (omit it for any address)")
    .optional(),
});
export type EgressTarget = z.infer<typeof egressSchema>;
