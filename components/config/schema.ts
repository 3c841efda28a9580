/**
 * The stack config's schema, key by key (docs/configuration.md): Envoy, certificates, services
 * with their traffic and egress, clients, the gateway and the network, and the raw types it yields.
 */
import { isIP } from "node:net";
import { z } from "zod";
import { PODS_SERVICE_SUFFIX } from "../names";
import {
  DNS_1035_LABEL,
  DNS_1123_LABEL,
  DNS_1123_SUBDOMAIN,
  KUBERNETES_FEATURES,
  kubernetesVersion,
  port,
  hours,
  image,
  resourcePair,
  labelSelector,
  peerSelector,
  DURATION,
  durationSeconds,
  duration,
  positiveCount,
  objectName,
  exactlyOne,
  envVar,
  envFromSource,
  seconds,
  probe,
  appVolume,
  labelMap,
  annotationMap,
  toleration,
  autoscalingSchema,
  cidr,
} from "./fields";

const envoySchema = z.strictObject({
  /** Envoy image, pinned. */
  image: image.default("envoyproxy/envoy:v1.36.2"),
  /** Envoy's --log-level. */
  logLevel: z
    .enum(["trace", "debug", "info", "warning", "error", "critical", "off"])
    .default("info"),
  ports: z
    .strictObject({
      inbound: port.default(15001),
      outbound: port.default(15006),
      admin: port.default(9901),
      health: port.default(15021),
      metrics: port.default(15090),
    })
    .prefault({}),
  resources: z
    .strictObject({
      requests: resourcePair.default({ cpu: "50m", memory: "64Mi" }),
      limits: resourcePair.default({ cpu: "500m", memory: "256Mi" }),
    })
    .prefault({}),
  /** Who may reach the health and metrics ports (the monitoring stack). Defaults to nobody. */
  scrapeFrom: z.array(peerSelector, { error: "must be a list of selectors" }).default([]),
  /**
   * native: Envoy is an init container with restartPolicy Always, so it is ready before the app
   * starts and gets SIGTERM only after the app has exited; container: a plain second container.
   * Defaults to native where kubernetesVersion has native sidecars, container otherwise.
   */
  sidecarMode: z.enum(["native", "container"], { error: "must be native or container" }).optional(),
  /**
   * Seconds of Envoy's graceful inbound drain at shutdown: callers are told to reconnect
   * (`Connection: close`, HTTP/2 GOAWAY) on a rising share of responses, all of them by the end.
   */
  drainSeconds: z
    .number({ error: "must be a number of seconds" })
    .int("must be whole seconds")
    .min(1, "must be between 1 and 300")
    .max(300, "must be between 1 and 300")
    .default(5),
  /** JSON access log lines on stdout for inbound and outbound requests. */
  accessLog: z.boolean({ error: "must be true or false" }).default(true),
  /** Cap on connections a sidecar accepts in all (Envoy's overload manager). */
  maxConnections: positiveCount.default(10000),
  /**
   * Where the listeners other pods and the kubelet reach are bound: `::` serves IPv4, IPv6 and
   * dual-stack pods on one socket; `0.0.0.0` only for nodes booted without IPv6 (ipv6.disable=1).
   */
  bindAddress: z.enum(["::", "0.0.0.0"], { error: 'must be "::" or "0.0.0.0"' }).default("::"),
  /** First loopback port of the `tcp` egress listeners, one port per entry in name order. */
  egressPortBase: port.default(15100),
});

/** The generation the mesh CA of a stack deployed before generations existed belongs to. */
export const DEFAULT_CA_GENERATION = "1";

/** A CA generation's name: part of its resources' names and of its certificate's subject. */
const caGeneration = z
  .string({ error: "must be a generation name" })
  .regex(/^[a-z0-9]([-a-z0-9]{0,18}[a-z0-9])?$/, "must be 1-20 lowercase letters, digits or '-'");

/** A key's algorithm and its size, as keys in `certificates` and its `ca.keys` take them. */
const keyFields = {
  algorithm: z.enum(["ECDSA", "RSA"], { error: "must be ECDSA or RSA" }),
  /** ECDSA only; P256 unless set. */
  ecdsaCurve: z.enum(["P256", "P384"], { error: "must be P256 or P384" }).optional(),
  /** RSA only; 2048 unless set. */
  rsaBits: z
    .union([z.literal(2048), z.literal(3072), z.literal(4096)], {
      error: "must be 2048, 3072 or 4096",
    })
    .optional(),
};

/** A size that does not fit the algorithm is refused where it is written. */
function keySizeIssues(
  k: { algorithm: "ECDSA" | "RSA"; ecdsaCurve?: unknown; rsaBits?: unknown },
  ctx: z.RefinementCtx,
): void {
  if (k.algorithm === "ECDSA" && k.rsaBits !== undefined)
    ctx.addIssue({ code: "custom", path: ["rsaBits"], message: "only applies to algorithm RSA" });
  if (k.algorithm === "RSA" && k.ecdsaCurve !== undefined)
    ctx.addIssue({
      code: "custom",
      path: ["ecdsaCurve"],
      message: "only applies to algorithm ECDSA",
    });
}

/** A CA generation's own key, when it differs from certificates.algorithm and its size. */
const caKey = z.strictObject(keyFields).superRefine(keySizeIssues);
/** A key as written in the config: its size may be left to the default. */
export type RawKey = z.infer<typeof caKey>;

/**
 * The mesh CAs: every sidecar trusts each `trusted` generation; leaves are signed by `signing`.
 * A CA is re-keyed by adding a generation, in three `pulumi up`s (docs/operations.md).
 */
const caGenerations = z
  .strictObject({
    signing: caGeneration.default(DEFAULT_CA_GENERATION),
    trusted: z
      .array(caGeneration, { error: "must be a list of generation names" })
      .min(1, "must list at least one generation")
      .default([DEFAULT_CA_GENERATION]),
    keys: z.record(caGeneration, caKey).default({}),
  })
  .superRefine((ca, ctx) => {
    if (!ca.trusted.includes(ca.signing))
      ctx.addIssue({
        code: "custom",
        path: ["signing"],
        message: `must be one of trusted (${ca.trusted.join(", ")}): sign only with a generation every sidecar already trusts (add it to trusted, pulumi up, wait for the pods, then sign with it)`,
      });
    const seen = new Set<string>();
    ca.trusted.forEach((g, i) => {
      if (seen.has(g))
        ctx.addIssue({ code: "custom", path: ["trusted", i], message: `lists "${g}" twice` });
      seen.add(g);
    });
    for (const g of Object.keys(ca.keys))
      if (!ca.trusted.includes(g))
        ctx.addIssue({
          code: "custom",
          path: ["keys", g],
          message: `is not a trusted generation (${ca.trusted.join(", ")})`,
        });
  });

const certificatesSchema = z
  .strictObject({
    ...keyFields,
    algorithm: keyFields.algorithm.default("ECDSA"),
    caValidityHours: hours.default(87600),
    /** The CA is re-issued this long before it expires (which re-signs every service). */
    caEarlyRenewalHours: z.number().int().nonnegative().default(720),
    validityHours: hours.default(2160),
    /** Trust domain of the SPIFFE IDs in the certificates' URI SANs. */
    trustDomain: z
      .string()
      .max(253)
      .regex(DNS_1123_SUBDOMAIN, "must be a DNS-style trust domain such as cluster.local")
      .default("cluster.local"),
    earlyRenewalHours: z
      .number({ error: "must be a number of hours" })
      .int("must be whole hours")
      .nonnegative("must not be negative")
      .default(360),
    /**
     * Leaf keys (services, clients, the gateway) are replaced at the first `pulumi up` of every
     * period this long (counted from the Unix epoch); validityHours when unset.
     */
    keyRotationHours: hours.optional(),
    /**
     * How often a scheduled `pulumi up` runs (the operator's statement: nothing renews between
     * runs); preview warns when a renewal window gives it fewer than two chances.
     */
    upEveryHours: hours.optional(),
    ca: caGenerations.prefault({}),
    /**
     * Who signs the mesh identities of the workloads (services and the gateway): the program
     * (`pulumi`, renewed when `pulumi up` runs) or cert-manager (one Certificate per workload, from
     * an intermediate CA the program signs; docs/operations.md, "cert-manager mode").
     */
    issuer: z
      .enum(["pulumi", "cert-manager"], { error: "must be pulumi or cert-manager" })
      .default("pulumi"),
    /**
     * cert-manager mode: lifetime of the intermediate CA its Issuer signs with. It is re-signed
     * validityHours + earlyRenewalHours before it expires, because cert-manager's CA issuer does
     * not cap a certificate at its issuer's expiry.
     */
    intermediateValidityHours: hours.default(8760),
    /** Any text; changing it replaces every leaf key at the next `pulumi up`. */
    keyEpoch: z
      .string({ error: "must be a string" })
      .max(63, "must be at most 63 characters")
      .default(""),
  })
  .superRefine((c, ctx) => {
    keySizeIssues(c, ctx);
    if (c.earlyRenewalHours >= c.validityHours) {
      ctx.addIssue({
        code: "custom",
        path: ["earlyRenewalHours"],
        message: `must be less than validityHours (${c.validityHours})`,
      });
    }
    if (c.validityHours > c.caValidityHours) {
      ctx.addIssue({
        code: "custom",
        path: ["validityHours"],
        message: `must not exceed caValidityHours (${c.caValidityHours}): a certificate cannot outlive its CA`,
      });
    }
    if (c.keyRotationHours !== undefined && c.keyRotationHours > c.validityHours) {
      ctx.addIssue({
        code: "custom",
        path: ["keyRotationHours"],
        message: `must not exceed validityHours (${c.validityHours}): a key would outlive the certificates it signs for`,
      });
    }
    if (c.caEarlyRenewalHours >= c.caValidityHours) {
      ctx.addIssue({
        code: "custom",
        path: ["caEarlyRenewalHours"],
        message: `must be less than caValidityHours (${c.caValidityHours})`,
      });
    }
    if (c.issuer === "cert-manager") certManagerIssues(c, ctx);
  });

/**
 * cert-manager's admission rules for a Certificate's duration and renewBefore
 * (internal/apis/certmanager/validation/certificate.go ValidateDuration: duration at least 1 h,
 * renewBefore at least 5 min and less than duration), as config errors; and an intermediate that
 * outlives every certificate it signs.
 */
function certManagerIssues(
  c: {
    validityHours: number;
    earlyRenewalHours: number;
    intermediateValidityHours: number;
    caValidityHours: number;
  },
  ctx: z.RefinementCtx,
): void {
  // validityHours is whole positive hours, so duration is at least cert-manager's 1 h minimum.
  if (c.earlyRenewalHours < 1)
    ctx.addIssue({
      code: "custom",
      path: ["earlyRenewalHours"],
      message:
        "must be at least 1 with issuer cert-manager: it is the Certificates' renewBefore, which cert-manager refuses under 5 minutes",
    });
  const lead = c.validityHours + c.earlyRenewalHours;
  if (c.intermediateValidityHours <= lead)
    ctx.addIssue({
      code: "custom",
      path: ["intermediateValidityHours"],
      message: `must be more than validityHours + earlyRenewalHours (${lead}): the intermediate is re-signed that long before it expires, so every certificate it signs expires first`,
    });
  if (c.intermediateValidityHours > c.caValidityHours)
    ctx.addIssue({
      code: "custom",
      path: ["intermediateValidityHours"],
      message: `must not exceed caValidityHours (${c.caValidityHours}): the intermediate cannot outlive the CA that signs it`,
    });
}

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
const observabilitySchema = z
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

export const serviceName = z
  .string({ error: "is required" })
  .max(
    63 - PODS_SERVICE_SUFFIX.length,
    `must be at most ${63 - PODS_SERVICE_SUFFIX.length} characters (its headless Service "<name>${PODS_SERVICE_SUFFIX}" is a DNS label of at most 63)`,
  )
  .regex(
    DNS_1035_LABEL,
    "must be a DNS label: lowercase letters, digits and '-', starting with a letter",
  );

const HTTP_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"] as const;

/** A call with L7 limits: only these methods and paths (`/a` exact, `/a/*` prefix). */
const callSchema = z.strictObject({
  service: z.string({ error: "must name a service" }),
  methods: z
    .array(z.enum(HTTP_METHODS, { error: `must be one of ${HTTP_METHODS.join(", ")}` }))
    .min(1, "must list at least one method (omit it to allow all)")
    .optional(),
  paths: z
    .array(
      z.string().regex(/^\/[^*?#\s]*(\*)?$/, "must start with / and may end with * (prefix match)"),
    )
    .min(1, "must list at least one path (omit it to allow all)")
    .optional(),
});

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
const trafficSchema = z
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
const egressSchema = z.strictObject({
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

/** `calls: [bookapi]` is shorthand for `calls: [{ service: bookapi }]`. */
const callsSchema = z.array(
  z.preprocess((call) => (typeof call === "string" ? { service: call } : call), callSchema),
  { error: "must be a list of service names" },
);

/** Who may reach a Service published outside the cluster, and its annotations (cloud LB settings). */
const publishedServiceFields = {
  /** Who may connect (NetworkPolicy ipBlocks, and the load balancer where it supports it). */
  sourceRanges: z
    .array(cidr, { error: "must be a list of CIDRs" })
    .min(1, "must list at least one CIDR (omit it to admit every address)")
    .optional(),
  annotations: z
    .record(
      z.string().min(1),
      z.string({ error: "values must be strings (quote numbers and booleans)" }),
    )
    .optional(),
  /**
   * How long `pulumi up` waits for the Service (a LoadBalancer's address among it): true, the
   * provider's 10 minutes; a duration; or false, not at all (a cluster without a load-balancer
   * controller never gives one). Preview says so when it is not true.
   */
  waitForAddress: z
    .union([z.boolean(), duration], { error: "must be true, false or a duration such as 5m" })
    .default(true),
};

/**
 * Publishes a service's mTLS port outside the cluster through a Service of its own, so the in-mesh
 * Service is untouched. Callers still need a mesh certificate on the allow-list (`clients`).
 */
const exposeSchema = z.strictObject({
  type: z.enum(["LoadBalancer", "NodePort"], { error: "must be LoadBalancer or NodePort" }),
  /** The published port (LoadBalancer) or node port (NodePort); the mTLS port when unset. */
  port: port.optional(),
  ...publishedServiceFields,
});
export type ExposeSettings = z.infer<typeof exposeSchema>;

/** Who may reach an exposed service: its sourceRanges, or every address when it names none. */
export function exposedSourceRanges(expose: ExposeSettings): string[] {
  return expose.sourceRanges ?? ["0.0.0.0/0", "::/0"];
}

/** A caller outside the mesh that holds a mesh certificate (a CLI, an agent, a job). */
const clientSchema = z.strictObject({
  name: z
    .string({ error: "is required" })
    .max(63, "must be at most 63 characters")
    .regex(DNS_1123_LABEL, "must be a DNS-1123 label (lowercase letters, digits, '-')"),
  calls: callsSchema.min(
    1,
    "must list at least one service (a client that calls nothing is no client)",
  ),
  /** Also write the client's certificate, key and the CA into this Secret, for in-cluster use. */
  secret: z
    .strictObject({
      namespace: z.string().regex(DNS_1123_LABEL, "must be a namespace name"),
      name: objectName.optional(),
    })
    .optional(),
});

/** An https URL (the JWKS endpoint): Envoy fetches it over TLS, verifying the server. */
const httpsUrl = z.string({ error: "must be an https:// URL" }).refine((value) => {
  try {
    const url = new URL(value);
    return url.protocol === "https:" && url.hostname !== "" && url.username === "";
  } catch {
    return false;
  }
}, "must be an https:// URL");

/** The public members of each key type Envoy verifies with (RFC 7518 6.2, 6.3; RFC 8037 2). */
const JWK_MEMBERS: Record<string, string[]> = {
  RSA: ["n", "e"],
  EC: ["crv", "x", "y"],
  OKP: ["crv", "x"],
};

/** A JSON Web Key Set, as an object or its JSON text; public keys only, so a ConfigMap may hold it. */
const jwksDocument = z
  .union([z.string(), z.record(z.string(), z.unknown())], {
    error: "must be a JWKS: an object with keys, or its JSON text",
  })
  .transform((value, ctx) => {
    let doc: unknown = value;
    if (typeof value === "string") {
      try {
        doc = JSON.parse(value);
      } catch {
        ctx.addIssue({ code: "custom", message: "must be valid JSON (a JWKS)" });
        return z.NEVER;
      }
    }
    const keys = (doc as { keys?: unknown }).keys;
    if (!Array.isArray(keys) || keys.length === 0) {
      ctx.addIssue({ code: "custom", message: "must be a JWKS with a non-empty keys list" });
      return z.NEVER;
    }
    for (const key of keys as Record<string, unknown>[]) {
      // A private JWK carries "d" (EC, RSA, OKP) or "k" (symmetric): it has no place in a config.
      if (typeof key !== "object" || key === null || "d" in key || "k" in key) {
        ctx.addIssue({ code: "custom", message: "must hold public keys only (no d or k members)" });
        return z.NEVER;
      }
      // Envoy drops an inline JWKS it cannot read with a log line only (jwks_cache.cc), and then
      // refuses every token: each key needs its type's public members (RFC 7518 6).
      const members = JWK_MEMBERS[String(key.kty)];
      const missing = members?.filter((m) => typeof key[m] !== "string");
      if (!members || (missing && missing.length > 0)) {
        ctx.addIssue({
          code: "custom",
          message: members
            ? `must give each ${String(key.kty)} key its ${members.join(", ")} (missing ${missing?.join(", ")})`
            : `must hold RSA, EC or OKP keys (got kty ${JSON.stringify(key.kty)})`,
        });
        return z.NEVER;
      }
    }
    return JSON.stringify(doc);
  });

/** OAuth scope tokens (RFC 6749 3.3): printable ASCII without space, quote or backslash. */
export const scope = z
  .string()
  .regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, "must be an OAuth scope token");

/** Bearer-token validation at the gateway (Envoy JWT authn). */
const jwtSchema = z
  .strictObject({
    /**
     * The `iss` every token must carry; also the authorization server the metadata names, whose
     * identifier is an https URL (RFC 8414 2).
     */
    issuer: httpsUrl,
    /** Accepted `aud` values; MCP requires tokens to be checked for audience. */
    audiences: z
      .array(z.string().min(1), { error: "must be a list of audiences" })
      .min(1, "must list at least one audience (tokens must be meant for this server)"),
    jwksUri: httpsUrl.optional(),
    /** Inline public keys, instead of jwksUri. */
    jwks: jwksDocument.optional(),
    /** Where the NetworkPolicy lets the JWKS fetch go (port 443); any address when omitted. */
    jwksCidrs: z
      .array(cidr, { error: "must be a list of CIDRs" })
      .min(1, "must list at least one CIDR (omit it for any address)")
      .optional(),
    /**
     * How long fetched keys are kept (Envoy's default is 10 minutes). Envoy fetches again only
     * when this runs out, not on an unknown `kid`: a token signed with a key published since then
     * gets 401 until the next fetch.
     */
    jwksCacheDuration: duration.default("1m"),
    /** Scopes every token must hold (the `scope` claim, space-separated). */
    requiredScopes: z.array(scope, { error: "must be a list of scopes" }).default([]),
  })
  .superRefine(exactlyOne(["jwksUri", "jwks"]))
  .superRefine((jwt, ctx) => {
    if (jwt.jwksCidrs && !jwt.jwksUri)
      ctx.addIssue({ code: "custom", path: ["jwksCidrs"], message: "only applies with jwksUri" });
  });
export type JwtSettings = z.infer<typeof jwtSchema>;

const authSchema = z.strictObject({ jwt: jwtSchema });

/** A path prefix: `/`, or segments without a trailing slash (it matches `/p` and `/p/...`). */
export const pathPrefix = z
  .string({ error: "must be a path such as /mcp" })
  .regex(
    /^\/([A-Za-z0-9._~!$&'()*+,;=:@%-]+(\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*)?$/,
    "must be / or a path such as /mcp (no trailing slash, query or wildcard)",
  );

const gatewayRouteSchema = z.strictObject({
  /** Host this route answers for; any host when omitted. */
  host: z
    .string()
    .max(253)
    .regex(DNS_1123_SUBDOMAIN, "must be a DNS name such as mcp.example.com")
    .optional(),
  pathPrefix,
  service: z.string({ error: "must name a service" }),
  /** Replaces pathPrefix before the request reaches the service. */
  rewritePrefix: pathPrefix.optional(),
  /** This route's own token validation, instead of the gateway's. */
  auth: authSchema.optional(),
  /** No token needed on this route even when the gateway sets auth. */
  public: z.boolean({ error: "must be true or false" }).default(false),
});

/** The gateway's Service: how clients outside the cluster reach it. */
const gatewayServiceSchema = z.strictObject({
  type: z
    .enum(["LoadBalancer", "NodePort", "ClusterIP"], {
      error: "must be LoadBalancer, NodePort or ClusterIP",
    })
    .default("LoadBalancer"),
  /** The published port (the node port for NodePort); 443 by default. */
  port: port.optional(),
  ...publishedServiceFields,
  /**
   * Pods that may connect (an ingress controller in front): ipBlocks do not reliably match pod
   * addresses (NetworkPolicy docs), so a ClusterIP gateway names its clients this way.
   */
  from: z.array(peerSelector, { error: "must be a list of selectors" }).optional(),
});

const gatewayTlsSchema = z
  .strictObject({
    /** A kubernetes.io/tls Secret in the mesh namespace (cert-manager, or your own). */
    secretName: objectName.optional(),
    /** A certificate from the mesh CA: for development, clients must trust the mesh CA. */
    selfSigned: z
      .strictObject({
        dnsNames: z
          .array(z.string().max(253).regex(DNS_1123_SUBDOMAIN, "must be DNS names"), {
            error: "must be a list of DNS names",
          })
          .min(1, "must list at least one DNS name"),
      })
      .optional(),
  })
  .superRefine(exactlyOne(["secretName", "selfSigned"]));

/** Browsers may call the gateway from these origins (CORS). */
const corsSchema = z.strictObject({
  allowOrigins: z
    .array(
      z
        .string()
        .regex(/^https?:\/\/[^/\s*]+$/, "must be an origin such as https://app.example.com"),
      { error: "must be a list of origins" },
    )
    .min(1, "must list at least one origin"),
  maxAge: duration.default("10m"),
});

/** The ingress gateway: a standalone Envoy at the edge with its own mesh identity. */
const gatewaySchema = z.strictObject({
  name: z
    .string()
    .max(40, "must be at most 40 characters")
    .regex(DNS_1035_LABEL, "must be a DNS label starting with a letter")
    .default("mesh-gateway"),
  replicas: positiveCount.default(1),
  /** The public host name clients use: resource metadata URLs and the default route host. */
  hostname: z
    .string()
    .max(253)
    .regex(DNS_1123_SUBDOMAIN, "must be a DNS name such as mcp.example.com")
    .optional(),
  service: gatewayServiceSchema.prefault({}),
  /**
   * The port clients put in URLs, when it is not what the Service publishes (a ClusterIP gateway
   * behind an ingress); part of every resource URL the gateway announces.
   */
  publicPort: port.optional(),
  /**
   * Seconds a stopping gateway pod keeps serving while the load balancer takes it out: with
   * externalTrafficPolicy Local the load balancer learns of it only through failed health checks.
   */
  preStopSeconds: seconds(1).max(300, "must be at most 300").default(30),
  /**
   * Seconds a new pod must be ready before the rollout counts it (the load balancer's turn);
   * by default per service.type (GATEWAY_MIN_READY_SECONDS).
   */
  minReadySeconds: seconds(0).max(300, "must be at most 300").optional(),
  tls: gatewayTlsSchema,
  routes: z
    .array(gatewayRouteSchema, { error: "must be a list of { pathPrefix, service }" })
    .min(1, "must list at least one route"),
  auth: authSchema.optional(),
  cors: corsSchema.optional(),
});

const serviceSchema = z.strictObject({
  name: serviceName,
  image,
  port,
  /** Fixed replica count (default 1); not with `autoscaling`, which then owns it. */
  replicas: positiveCount.optional(),
  autoscaling: autoscalingSchema.optional(),
  /** Seconds the app keeps serving after its pod starts terminating, before its SIGTERM. */
  preStopSeconds: seconds(1).max(300, "must be at most 300").default(10),
  /** The pod's whole shutdown budget; defaults to preStopSeconds + 20. */
  terminationGracePeriodSeconds: seconds(1).max(3600, "must be at most 3600").optional(),
  env: z.array(envVar, { error: "must be a list of { name, value | valueFrom }" }).default([]),
  envFrom: z
    .array(envFromSource, { error: "must be a list of { secretRef | configMapRef }" })
    .default([]),
  imagePullSecrets: z.array(objectName, { error: "must be a list of Secret names" }).default([]),
  command: z.array(z.string(), { error: "must be a list of strings" }).optional(),
  args: z.array(z.string(), { error: "must be a list of strings" }).optional(),
  probes: z
    .strictObject({
      readiness: probe.optional(),
      liveness: probe.optional(),
      startup: probe.optional(),
    })
    .superRefine((probes, ctx) => {
      // Kubernetes rejects any other value for these two.
      for (const kind of ["liveness", "startup"] as const)
        if ((probes[kind]?.successThreshold ?? 1) !== 1)
          ctx.addIssue({
            code: "custom",
            path: [kind, "successThreshold"],
            message: "must be 1 for liveness and startup probes",
          });
    })
    .default({}),
  volumes: z.array(appVolume, { error: "must be a list of volumes" }).default([]),
  podLabels: labelMap.default({}),
  podAnnotations: annotationMap.default({}),
  nodeSelector: labelMap.default({}),
  tolerations: z.array(toleration, { error: "must be a list of tolerations" }).default([]),
  exposeDirectPort: z.boolean({ error: "must be true or false" }).default(false),
  calls: callsSchema.default([]),
  expose: exposeSchema.optional(),
  /** Who may reach the app port directly (bypassing Envoy). Defaults to nobody. */
  directPortAllowedFrom: z
    .array(peerSelector, { error: "must be a list of selectors" })
    .default([]),
  resources: z
    .strictObject({
      requests: resourcePair.default({ cpu: "100m", memory: "128Mi" }),
      limits: resourcePair.default({ cpu: "1", memory: "512Mi" }),
    })
    .prefault({}),
  /** A numeric UID, so the kubelet can enforce runAsNonRoot whatever USER the image names. */
  runAsUser: z
    .number({ error: "must be a numeric user id" })
    .int("must be a whole number")
    .min(1, "must not be 0 (root)")
    .default(10001),
  traffic: trafficSchema.prefault({}),
  egress: z
    .array(egressSchema, { error: "must be a list of { name, host, port, protocol }" })
    .default([]),
});

/** A NetworkPolicy peer: pods/namespaces by label, or an address block (e.g. NodeLocal DNSCache). */
const networkPeer = z
  .strictObject({
    namespaceSelector: labelSelector.optional(),
    podSelector: labelSelector.optional(),
    ipBlock: z.strictObject({ cidr, except: z.array(cidr).optional() }).optional(),
  })
  .superRefine((p, ctx) => {
    const selects = p.namespaceSelector !== undefined || p.podSelector !== undefined;
    if (selects === (p.ipBlock !== undefined))
      ctx.addIssue({
        code: "custom",
        message: "needs either an ipBlock or a namespaceSelector and/or podSelector",
      });
  });
export type NetworkPeer = z.infer<typeof networkPeer>;

/** Cluster DNS as kube-dns/CoreDNS is labelled in (nearly) every distribution. */
export const DEFAULT_DNS_PEERS: NetworkPeer[] = [
  {
    // `kubernetes.io/metadata.name` is set by the API server itself (>= 1.22): it cannot be forged.
    namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } },
    podSelector: { matchLabels: { "k8s-app": "kube-dns" } },
  },
];
export const DEFAULT_DNS_PORTS: { protocol: "UDP" | "TCP"; port: number }[] = [
  { protocol: "UDP", port: 53 },
  { protocol: "TCP", port: 53 },
];

const networkSchema = z.strictObject({
  dns: z
    .strictObject({
      peers: z
        .array(networkPeer, { error: "must be a list of peers" })
        .min(1, "must list at least one peer (pods could not resolve names)")
        .default(DEFAULT_DNS_PEERS),
      ports: z
        .array(
          z.strictObject({
            protocol: z.enum(["UDP", "TCP"], { error: "must be UDP or TCP" }),
            port,
          }),
        )
        .min(1, "must list at least one port")
        .default(DEFAULT_DNS_PORTS),
    })
    .prefault({}),
});

export const rawMeshSchema = z.strictObject({
  namespace: z
    .string()
    .max(63, "must be at most 63 characters")
    .regex(DNS_1123_LABEL, "must be a DNS-1123 label (lowercase letters, digits, '-')")
    .default("default"),
  createNamespace: z.boolean({ error: "must be true or false" }).optional(),
  /** The oldest Kubernetes version the stack's clusters run; drives version-dependent choices. */
  kubernetesVersion: kubernetesVersion.default(`1.${KUBERNETES_FEATURES.nativeSidecars}`),
  network: networkSchema.prefault({}),
  /** Secrets for pulling images, for every service (services add their own). */
  imagePullSecrets: z.array(objectName, { error: "must be a list of Secret names" }).default([]),
  /** Callers outside the mesh, each with a certificate from the mesh CA. */
  clients: z.array(clientSchema, { error: "must be a list of { name, calls }" }).default([]),
  clusterDomain: z
    .string()
    .max(253)
    .regex(DNS_1123_SUBDOMAIN, "must be a DNS domain such as cluster.local")
    .default("cluster.local"),
  envoy: envoySchema.prefault({}),
  certificates: certificatesSchema.prefault({}),
  observability: observabilitySchema,
  /** An ingress gateway in front of the mesh. */
  gateway: gatewaySchema.optional(),
  services: z
    .array(serviceSchema, { error: "is required: a list of services" })
    .min(1, "must list at least one service"),
  renderYamlToDirectory: z.string().min(1, "must be a folder path").optional(),
  /** Pod Security Standard enforced on the namespace the program creates. */
  podSecurity: z
    .enum(["restricted", "baseline", "privileged"], {
      error: "must be restricted, baseline or privileged",
    })
    .optional(),
});

export type RawMesh = z.infer<typeof rawMeshSchema>;
export type RawService = RawMesh["services"][number];
export type RawGateway = NonNullable<RawMesh["gateway"]>;
/** Envoy settings with the sidecar mode resolved for the stack's Kubernetes version. */
export type EnvoySettings = Omit<RawMesh["envoy"], "sidecarMode"> & {
  sidecarMode: "native" | "container";
};
export type NetworkSettings = RawMesh["network"];
/** Observability settings, with the metrics discovery resolved. */
export type ObservabilitySettings = Omit<RawMesh["observability"], "metrics"> & {
  metrics: Omit<RawMesh["observability"]["metrics"], "discovery"> & {
    discovery: "podMonitor" | "annotations" | "none";
  };
};
/** Key algorithm and size of every key of the mesh, as the tls provider takes them. */
export type KeySpec =
  | { algorithm: "ECDSA"; ecdsaCurve: "P256" | "P384" }
  | { algorithm: "RSA"; rsaBits: 2048 | 3072 | 4096 };
/** Certificate settings, the key as one discriminated union. */
export type CertificateSettings = Omit<
  RawMesh["certificates"],
  "algorithm" | "ecdsaCurve" | "rsaBits" | "keyRotationHours" | "ca"
> & {
  key: KeySpec;
  keyRotationHours: number;
  /** Generations in trust order; each with its CA's key. */
  ca: { signing: string; trusted: string[]; keys: Record<string, KeySpec> };
};
export type ResourcePair = z.infer<typeof resourcePair>;
