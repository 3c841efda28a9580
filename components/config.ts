/**
 * Stack configuration: the user-facing contract (docs/configuration.md), parsed with a
 * schema into one typed model with defaults. Every problem is reported with the config key that
 * holds it, before any resource is registered.
 */
import * as pulumi from "@pulumi/pulumi";
import { isIP } from "node:net";
import { z } from "zod";
import {
  PROJECT,
  APP_TMP_PATH,
  DEFAULT_CONTAINER_ANNOTATION,
  MESH_POD_LABEL_KEYS,
  MESH_VOLUMES,
  OUTBOUND_URL_ENV,
  SCRAPE_ANNOTATION_PREFIX,
  defaultClientSecretName,
  EXTERNAL_SERVICE_SUFFIX,
  gatewayObjectNames,
  objectNames,
  PODS_SERVICE_SUFFIX,
  RESOURCE_METADATA_PATH,
  serviceFqdn,
  serviceHostnames,
} from "./names";

import { schemaKeysAt, stackKeyProblems, suggestion, withEntryName } from "./config-keys";

export { PROJECT } from "./names";

/** DNS-1035 label: Service names must start with a letter (Kubernetes rejects "1api"). */
const DNS_1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
/** DNS-1123 label: namespaces may start with a digit. */
const DNS_1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** Kubernetes resource quantities as used for cpu and memory (e.g. 50m, 0.5, 64Mi, 1G). */
const QUANTITY = /^([0-9]+(\.[0-9]+)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;

/** The oldest Kubernetes minor this program supports (PDB unhealthyPodEvictionPolicy, matchLabelKeys). */
export const MIN_KUBERNETES_MINOR = 27;

/**
 * Version-dependent features, by the first Kubernetes minor that has them enabled by default.
 * docs/configuration.md's version matrix lists the same table.
 */
export const KUBERNETES_FEATURES = {
  /** Init containers with `restartPolicy: Always` (SidecarContainers, beta and on in 1.29). */
  nativeSidecars: 29,
  /** `lifecycle.preStop.sleep` (PodLifecycleSleepAction, beta and on in 1.30). */
  preStopSleep: 30,
  /**
   * Named Service targetPorts resolved on sidecar (init) containers (kubernetes#127958, fixed by
   * #127976 in 1.32). The program never relies on it: sidecar target ports are numeric.
   */
  namedSidecarTargetPorts: 32,
} as const;

/** `"1.29"` -> 29. Only valid after the schema has checked the form. */
export function kubernetesMinor(version: string): number {
  return Number(version.split(".")[1]);
}

const kubernetesVersion = z
  .string({
    error: 'must be a quoted Kubernetes minor version such as "1.29" (YAML reads 1.30 as 1.3)',
  })
  .regex(/^1\.(0|[1-9][0-9]*)$/, 'must be a Kubernetes minor version such as "1.29"')
  .refine(
    (v) => kubernetesMinor(v) >= MIN_KUBERNETES_MINOR,
    `must be 1.${MIN_KUBERNETES_MINOR} or later (quote it: YAML reads 1.30 as 1.3)`,
  );

const port = z
  .number({ error: "must be a number" })
  .int("must be a whole number")
  .min(1, "must be between 1 and 65535")
  .max(65535, "must be between 1 and 65535");

const hours = z
  .number({ error: "must be a number of hours" })
  .int("must be whole hours")
  .positive("must be positive");

/**
 * A container image pinned by tag or digest. `latest` and untagged references float: a rollout
 * could then run code nobody reviewed.
 */
const image = z
  .string({ error: "is required (a container image pinned by tag or digest)" })
  .min(1, "is required (a container image pinned by tag or digest)")
  .refine((ref) => !/\s/.test(ref), "must not contain whitespace")
  .refine(
    (ref) => isPinnedImage(ref),
    "must be pinned by a tag other than 'latest' or by a digest (image:tag or image@sha256:...)",
  );

/** True when an image reference names a tag other than `latest`, or a digest. */
export function isPinnedImage(ref: string): boolean {
  if (/@sha256:[0-9a-f]{64}$/.test(ref)) return true;
  const lastSegment = ref.slice(ref.lastIndexOf("/") + 1);
  const colon = lastSegment.lastIndexOf(":");
  if (colon < 0) return false;
  const tag = lastSegment.slice(colon + 1);
  return /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/.test(tag) && tag !== "latest";
}

const QUANTITY_FACTOR: Record<string, number> = {
  "": 1,
  m: 1e-3,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};

/** The number a Kubernetes quantity stands for: "500m" -> 0.5 (cores), "256Mi" -> 268435456. */
export function quantityValue(q: string): number {
  const m = QUANTITY.exec(q);
  if (!m) throw new Error(`internal: "${q}" is not a quantity`);
  return Number(q.slice(0, q.length - (m[3] ?? "").length)) * QUANTITY_FACTOR[m[3] ?? ""];
}

const quantity = z
  .string({ error: "must be a Kubernetes quantity string such as 50m or 64Mi" })
  .regex(QUANTITY, "must be a Kubernetes quantity such as 50m or 64Mi");

const resourcePair = z.strictObject({ cpu: quantity, memory: quantity });

/** A Kubernetes label selector, as NetworkPolicy peers take it. */
const labelSelector = z.strictObject({
  matchLabels: z.record(z.string(), z.string({ error: "label values must be strings" })).optional(),
  matchExpressions: z
    .array(
      z.strictObject({
        key: z.string().min(1, "is required"),
        operator: z.enum(["In", "NotIn", "Exists", "DoesNotExist"], {
          error: "must be In, NotIn, Exists or DoesNotExist",
        }),
        values: z.array(z.string()).optional(),
      }),
    )
    .optional(),
});

/** Who may connect, in NetworkPolicy terms: pods and/or namespaces selected by labels. */
const peerSelector = z
  .strictObject({
    namespaceSelector: labelSelector.optional(),
    podSelector: labelSelector.optional(),
  })
  .refine((p) => p.namespaceSelector !== undefined || p.podSelector !== undefined, {
    message: "needs a namespaceSelector and/or a podSelector",
  });
export type PeerSelector = z.infer<typeof peerSelector>;

/** A duration in Envoy's form: a number and a unit, e.g. "250ms", "7s", "5m", "1h". */
const DURATION = /^([0-9]+(\.[0-9]+)?)(ms|s|m|h)$/;
const UNIT_SECONDS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600 };

/** Seconds in a duration the schema has accepted. */
export function durationSeconds(value: string): number {
  const m = DURATION.exec(value);
  if (!m) throw new Error(`internal: "${value}" is not a duration`);
  return Number(m[1]) * UNIT_SECONDS[m[3]];
}

/** A positive duration, at least 1 ms. */
const duration = z
  .string({ error: 'must be a duration such as "250ms", "7s" or "5m"' })
  .regex(DURATION, 'must be a duration such as "250ms", "7s" or "5m"')
  .refine((v) => !DURATION.test(v) || durationSeconds(v) >= 0.001, "must be at least 1ms");

const positiveCount = z
  .number({ error: "must be a number" })
  .int("must be a whole number")
  .min(1, "must be at least 1");

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
  /** First loopback port of the `tcp` egress listeners, one port per entry in name order. */
  egressPortBase: port.default(15100),
});

const certificatesSchema = z
  .strictObject({
    algorithm: z.enum(["ECDSA", "RSA"], { error: "must be ECDSA or RSA" }).default("ECDSA"),
    /** ECDSA only; P256 unless set. */
    ecdsaCurve: z.enum(["P256", "P384"], { error: "must be P256 or P384" }).optional(),
    /** RSA only; 2048 unless set. */
    rsaBits: z
      .union([z.literal(2048), z.literal(3072), z.literal(4096)], {
        error: "must be 2048, 3072 or 4096",
      })
      .optional(),
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
  })
  .superRefine((c, ctx) => {
    if (c.algorithm === "ECDSA" && c.rsaBits !== undefined)
      ctx.addIssue({ code: "custom", path: ["rsaBits"], message: "only applies to algorithm RSA" });
    if (c.algorithm === "RSA" && c.ecdsaCurve !== undefined)
      ctx.addIssue({
        code: "custom",
        path: ["ecdsaCurve"],
        message: "only applies to algorithm ECDSA",
      });
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
    if (c.caEarlyRenewalHours >= c.caValidityHours) {
      ctx.addIssue({
        code: "custom",
        path: ["caEarlyRenewalHours"],
        message: `must be less than caValidityHours (${c.caValidityHours})`,
      });
    }
  });

const serviceName = z
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

// ---- Kubernetes-shaped app settings: the same field names and forms as a pod spec. ----

/** A name of a Kubernetes object (Secret, ConfigMap) the stack refers to. */
const objectName = z
  .string({ error: "must be an object name" })
  .max(253, "must be at most 253 characters")
  .regex(DNS_1123_SUBDOMAIN, "must be a DNS-1123 name (lowercase letters, digits, '-', '.')");

/** Exactly one of `keys` is set; zod cannot express a oneof over optional fields directly. */
function exactlyOne<T extends object>(keys: (keyof T & string)[]) {
  return (value: T, ctx: z.RefinementCtx) => {
    const set = keys.filter((k) => value[k] !== undefined);
    if (set.length !== 1)
      ctx.addIssue({
        code: "custom",
        message: `needs exactly one of ${keys.join(", ")}${set.length > 1 ? ` (got ${set.join(", ")})` : ""}`,
      });
  };
}

const keyRef = z.strictObject({
  name: objectName,
  key: z.string().min(1, "is required"),
  optional: z.boolean().optional(),
});

const envVar = z
  .strictObject({
    name: z
      .string({ error: "is required" })
      .regex(/^[-._a-zA-Z][-._a-zA-Z0-9]*$/, "must be an environment variable name"),
    value: z.string({ error: "must be a string (quote numbers)" }).optional(),
    valueFrom: z
      .strictObject({ secretKeyRef: keyRef.optional(), configMapKeyRef: keyRef.optional() })
      .superRefine(exactlyOne(["secretKeyRef", "configMapKeyRef"]))
      .optional(),
  })
  .superRefine(exactlyOne(["value", "valueFrom"]));

const objectRef = z.strictObject({ name: objectName, optional: z.boolean().optional() });
const envFromSource = z
  .strictObject({
    secretRef: objectRef.optional(),
    configMapRef: objectRef.optional(),
    prefix: z.string().optional(),
  })
  .superRefine(exactlyOne(["secretRef", "configMapRef"]));

const seconds = (min: number) =>
  z
    .number({ error: "must be a number of seconds" })
    .int("must be whole seconds")
    .min(min, `must be at least ${min}`);

/** A probe port: a number, or the app container's port name `http`. */
const probePort = z.union([port, z.literal("http")], {
  error: 'must be a port number or "http" (the app port)',
});
const probe = z
  .strictObject({
    httpGet: z
      .strictObject({
        path: z.string().startsWith("/", "must start with /").default("/"),
        port: probePort,
        scheme: z.enum(["HTTP", "HTTPS"]).optional(),
        httpHeaders: z
          .array(z.strictObject({ name: z.string().min(1), value: z.string() }))
          .optional(),
      })
      .optional(),
    tcpSocket: z.strictObject({ port: probePort }).optional(),
    exec: z.strictObject({ command: z.array(z.string()).min(1, "must not be empty") }).optional(),
    initialDelaySeconds: seconds(0).optional(),
    periodSeconds: seconds(1).optional(),
    timeoutSeconds: seconds(1).optional(),
    successThreshold: positiveCount.optional(),
    failureThreshold: positiveCount.optional(),
  })
  .superRefine(exactlyOne(["httpGet", "tcpSocket", "exec"]));
export type ProbeSettings = z.infer<typeof probe>;

const keyToPath = z.array(
  z.strictObject({
    key: z.string().min(1),
    path: z
      .string()
      .min(1)
      .refine(
        (p) => !p.startsWith("/") && !p.split("/").includes(".."),
        "must be a relative path without '..'",
      ),
    mode: z.number().int().optional(),
  }),
);
const appVolume = z
  .strictObject({
    name: z
      .string({ error: "is required" })
      .max(63)
      .regex(DNS_1123_LABEL, "must be a DNS-1123 label (lowercase letters, digits, '-')"),
    mountPath: z
      .string({ error: "is required (an absolute path)" })
      .regex(/^\/[^:]*$/, "must be an absolute path without ':'")
      .refine((p) => p.replace(/\/+$/, "") !== "", "must not be / (it would hide the whole image)")
      .refine((p) => !p.split("/").includes(".."), "must not contain '..'"),
    readOnly: z.boolean().optional(),
    emptyDir: z
      .strictObject({ medium: z.enum(["", "Memory"]).optional(), sizeLimit: quantity.optional() })
      .optional(),
    secret: z
      .strictObject({
        secretName: objectName,
        items: keyToPath.optional(),
        optional: z.boolean().optional(),
      })
      .optional(),
    configMap: z
      .strictObject({
        name: objectName,
        items: keyToPath.optional(),
        optional: z.boolean().optional(),
      })
      .optional(),
  })
  .superRefine(exactlyOne(["emptyDir", "secret", "configMap"]));
export type AppVolume = z.infer<typeof appVolume>;

/** A label key: optional DNS prefix, then a name of at most 63 characters. */
const LABEL_KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_VALUE = /^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$/;
/** A qualified name, as label and annotation keys are: `[prefix/]name`. */
const qualifiedName = z
  .string()
  .regex(LABEL_KEY, "keys must be [prefix/]name, name at most 63 characters")
  .refine((k) => k.indexOf("/") <= 253, "key prefixes must be at most 253 characters");
const labelMap = z.record(
  qualifiedName,
  z
    .string({ error: "label values must be strings (quote numbers and booleans)" })
    .regex(LABEL_VALUE, "label values must be at most 63 characters of [A-Za-z0-9-_.]"),
);
const annotationMap = z.record(
  qualifiedName,
  z.string({ error: "values must be strings (quote numbers and booleans)" }),
);

/** Kubernetes' own rules for a toleration (validateTolerations). */
const toleration = z
  .strictObject({
    key: qualifiedName.optional(),
    operator: z.enum(["Exists", "Equal"], { error: "must be Exists or Equal" }).optional(),
    value: z.string().optional(),
    effect: z
      .enum(["NoSchedule", "PreferNoSchedule", "NoExecute"], {
        error: "must be NoSchedule, PreferNoSchedule or NoExecute",
      })
      .optional(),
    tolerationSeconds: z.number().int().optional(),
  })
  .superRefine((t, ctx) => {
    const operator = t.operator ?? "Equal";
    if (!t.key && operator !== "Exists")
      ctx.addIssue({
        code: "custom",
        path: ["operator"],
        message: "must be Exists when the key is empty (it then matches every taint)",
      });
    if (operator === "Exists" && t.value)
      ctx.addIssue({
        code: "custom",
        path: ["value"],
        message: "must be empty with operator Exists",
      });
    if (t.tolerationSeconds !== undefined && t.effect !== "NoExecute")
      ctx.addIssue({
        code: "custom",
        path: ["tolerationSeconds"],
        message: "only applies with effect NoExecute",
      });
  });

const autoscalingSchema = z
  .strictObject({
    minReplicas: z.number().int("must be a whole number").min(1, "must be at least 1").default(2),
    maxReplicas: z
      .number({ error: "is required" })
      .int("must be a whole number")
      .min(1, "must be at least 1"),
    targetCPUUtilization: z
      .number()
      .int("must be a whole percentage")
      .min(1, "must be between 1 and 100")
      .max(100, "must be between 1 and 100")
      .default(80),
  })
  .superRefine((a, ctx) => {
    if (a.maxReplicas < a.minReplicas)
      ctx.addIssue({
        code: "custom",
        path: ["maxReplicas"],
        message: `must be at least minReplicas (${a.minReplicas}; it defaults to 2)`,
      });
  });

/** Envoy's own route timeout, which plain routes keep unless `traffic.timeout` says otherwise. */
export const DEFAULT_ROUTE_TIMEOUT = "15s";

/** Idle timeout of streaming routes unless `traffic.idleTimeout` says otherwise. */
export const STREAMING_IDLE_TIMEOUT = "1h";

const cidr = z.string({ error: "must be a CIDR such as 169.254.20.10/32" }).refine((value) => {
  const [address, length, ...rest] = value.split("/");
  const family = isIP(address);
  return (
    rest.length === 0 &&
    family !== 0 &&
    /^[0-9]+$/.test(length ?? "") &&
    Number(length) <= (family === 4 ? 32 : 128)
  );
}, "must be a CIDR such as 169.254.20.10/32");

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
      })
      .prefault({}),
    circuitBreaker: z
      .strictObject({
        maxConnections: positiveCount.default(1024),
        maxPendingRequests: positiveCount.default(1024),
        maxRequests: positiveCount.default(1024),
        maxRetries: positiveCount.default(3),
      })
      .prefault({}),
    outlierDetection: z
      .strictObject({
        consecutive5xx: positiveCount.default(5),
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
const scope = z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, "must be an OAuth scope token");

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
    /** How long fetched keys are kept (Envoy's default is 10 minutes). */
    jwksCacheDuration: duration.default("10m"),
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
const pathPrefix = z
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

const rawMeshSchema = z.strictObject({
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

type RawMesh = z.infer<typeof rawMeshSchema>;
type RawService = RawMesh["services"][number];
type RawGateway = NonNullable<RawMesh["gateway"]>;
/** Envoy settings with the sidecar mode resolved for the stack's Kubernetes version. */
export type EnvoySettings = Omit<RawMesh["envoy"], "sidecarMode"> & {
  sidecarMode: "native" | "container";
};
export type NetworkSettings = RawMesh["network"];
/** Key algorithm and size of every key of the mesh, as the tls provider takes them. */
export type KeySpec =
  | { algorithm: "ECDSA"; ecdsaCurve: "P256" | "P384" }
  | { algorithm: "RSA"; rsaBits: 2048 | 3072 | 4096 };
/** Certificate settings, the key as one discriminated union. */
export type CertificateSettings = Omit<
  RawMesh["certificates"],
  "algorithm" | "ecdsaCurve" | "rsaBits"
> & { key: KeySpec };
export type ResourcePair = z.infer<typeof resourcePair>;

/** One service of the mesh, with its derived identity and callers. */
export interface ServiceModel {
  name: string;
  image: string;
  port: number;
  /** The fixed replica count, or autoscaling's minimum. */
  replicas: number;
  /** When set, an HPA owns the replica count. */
  autoscaling?: RawService["autoscaling"];
  exposeDirectPort: boolean;
  resources: { requests: ResourcePair; limits: ResourcePair };
  runAsUser: number;
  preStopSeconds: number;
  terminationGracePeriodSeconds: number;
  env: RawService["env"];
  envFrom: RawService["envFrom"];
  /** The stack's and the service's own, de-duplicated. */
  imagePullSecrets: string[];
  command?: string[];
  args?: string[];
  probes: RawService["probes"];
  volumes: AppVolume[];
  podLabels: Record<string, string>;
  podAnnotations: Record<string, string>;
  nodeSelector: Record<string, string>;
  tolerations: RawService["tolerations"];
  /** Services this one calls, sorted by name. */
  upstreams: UpstreamModel[];
  /** Services allowed to call this one, derived from every service's `calls`, sorted by name. */
  callers: CallerModel[];
  /** `<name>.<ns>.svc.<clusterDomain>`: the name other sidecars dial and verify. */
  fqdn: string;
  /** The certificate's DNS SANs: short name, `.ns`, `.ns.svc`, FQDN. */
  dnsNames: string[];
  /** `spiffe://<trustDomain>/ns/<ns>/sa/<name>`: the certificate's URI SAN. */
  spiffeId: string;
  /** Who may reach the app port directly; empty = nobody. */
  directPortAllowedFrom: PeerSelector[];
  /** `<name>-pods.<ns>.svc.<clusterDomain>`: the headless Service callers' Envoys resolve. */
  podsFqdn: string;
  /** Published outside the cluster on a Service of its own. */
  expose?: ExposeSettings;
  traffic: TrafficPolicy;
  /** Destinations outside the mesh, sorted by name. */
  egress: ResolvedEgress[];
}

/** An egress target with what the pod gets for it. */
export type ResolvedEgress = EgressTarget & {
  /** For `tcp`: the loopback port of its Envoy listener, and the env var that holds the address. */
  local?: { port: number; env: string };
};

/** A service's identity, as its peers see it. */
export interface PeerIdentity {
  name: string;
  fqdn: string;
  spiffeId: string;
}

/**
 * A caller and what it may do on the callee, from the caller's `calls` entry: a mesh service, or
 * a client outside the mesh, which has a SPIFFE ID but no DNS name.
 */
export interface CallerModel {
  /** A mesh service, a client with a mesh certificate, or the ingress gateway. */
  kind: "service" | "client" | "gateway";
  name: string;
  /** Services and the gateway. */
  fqdn?: string;
  spiffeId: string;
  /** HTTP methods allowed; empty = all. */
  methods: string[];
  /** Paths allowed (`/a` exact, `/a/*` prefix); empty = all. */
  paths: string[];
}

/** A callee, with how its pods are found and how calls to it behave. */
export interface UpstreamModel extends PeerIdentity {
  podsFqdn: string;
  traffic: TrafficPolicy;
}

/** A client outside the mesh: its identity and the services it may call. */
export interface ClientModel {
  name: string;
  /** `spiffe://<trustDomain>/ns/<ns>/client/<name>`: never a service's (`/sa/`). */
  spiffeId: string;
  /** Services it calls, sorted. */
  calls: string[];
  /** Where a Secret with its certificate and key goes, if anywhere. */
  secret?: { namespace: string; name: string };
}

/** Bearer-token validation of one provider, as Envoy's JWT authn filter gets it. */
export interface JwtModel {
  /** Provider name in the gateway's config: `gateway`, or `route-<i>` for a route's own. */
  provider: string;
  issuer: string;
  audiences: string[];
  jwksUri?: string;
  /** Where jwksUri points: its host (an IPv6 literal without brackets) and port. */
  jwksServer?: { host: string; port: number };
  /** JSON text of an inline JWKS. */
  jwks?: string;
  jwksCidrs?: string[];
  jwksCacheDuration: string;
  requiredScopes: string[];
}

/** One gateway route, resolved: its service, and the token check that guards it. */
export interface GatewayRouteModel {
  /** Answers for this host only; every host when absent. */
  host?: string;
  pathPrefix: string;
  rewritePrefix?: string;
  /** The routed service, as the gateway dials it. */
  upstream: UpstreamModel;
  /** Token validation on this route; absent: none. */
  jwt?: JwtModel;
  /** Marked public: no token check, on purpose. */
  public: boolean;
  /**
   * With jwt: the protected resource (RFC 9728) this route is, `https://<host><pathPrefix>`, and
   * the URL its metadata is served at (`/.well-known/oauth-protected-resource<pathPrefix>`).
   */
  resource?: { url: string; metadataPath: string; metadataUrl: string };
}

/** The ingress gateway, with its own mesh identity (it calls its routed services over mTLS). */
export interface GatewayModel extends PeerIdentity {
  replicas: number;
  hostname?: string;
  /**
   * The port in the URLs clients use (443 is left out of them); absent for a NodePort gateway
   * whose node port Kubernetes assigns (no route needs it at preview).
   */
  publicPort?: number;
  preStopSeconds: number;
  minReadySeconds: number;
  service: RawGateway["service"];
  tls: RawGateway["tls"];
  /** Its mesh certificate's DNS SANs (short name to FQDN). */
  dnsNames: string[];
  /** Most specific first within a host: Envoy takes the first route that matches. */
  routes: GatewayRouteModel[];
  cors?: RawGateway["cors"];
}

/** The whole validated mesh. */
export interface MeshModel {
  namespace: string;
  /** Whether the program creates the namespace (never for `default`). */
  createNamespace: boolean;
  clusterDomain: string;
  /** The oldest Kubernetes version the stack targets, e.g. "1.29". */
  kubernetesVersion: string;
  /** Its minor number, for version checks. */
  kubernetesMinor: number;
  envoy: EnvoySettings;
  certificates: CertificateSettings;
  network: NetworkSettings;
  /** Clients outside the mesh, sorted by name. */
  clients: ClientModel[];
  gateway?: GatewayModel;
  /** The stack's image pull Secrets (each service adds its own). */
  imagePullSecrets: string[];
  /** Services sorted by name, so output does not depend on config order. */
  services: ServiceModel[];
  /** When set, Kubernetes objects are written as YAML into this folder instead of a cluster. */
  renderYamlToDirectory?: string;
  /** Pod Security Standard label set on the namespace (only when the program creates it). */
  podSecurity?: "restricted" | "baseline" | "privileged";
  /** Stack keys that are valid but have no effect, for preview to warn about. */
  configWarnings: string[];
}

/** Stack config that cannot be deployed. The message names every offending key. */
export class MeshConfigError extends pulumi.RunError {
  public readonly problems: string[];
  /** With the raw config, a problem about `services[i]` or `clients[i]` also names the entry. */
  constructor(problems: string[], raw?: Record<string, unknown>) {
    const named = raw ? problems.map((p) => withEntryName(p, raw)) : problems;
    super(`Invalid stack config:\n${named.map((p) => `  - ${p}`).join("\n")}`);
    this.problems = named;
    this.name = "MeshConfigError";
  }
}

/** Top-level keys whose values are structured (YAML objects/lists, stored by Pulumi as JSON). */
const STRUCTURED_KEYS = new Set([
  "clients",
  "gateway",
  "envoy",
  "certificates",
  "services",
  "network",
  "imagePullSecrets",
]);
const BOOLEAN_KEYS = new Set(["createNamespace"]);

/**
 * Turns Pulumi's flat config (`bookapi-mesh:key` -> string) into the raw object the schema parses.
 * Keys of other namespaces (e.g. `kubernetes:`) are left alone; unknown keys of ours are kept so
 * the strict schema reports them as typos.
 */
export function rawConfigFrom(all: Record<string, string>): {
  raw: Record<string, unknown>;
  problems: string[];
} {
  const raw: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [fullKey, value] of Object.entries(all)) {
    const [ns, key] = splitKey(fullKey);
    if (ns !== PROJECT) continue;
    if (STRUCTURED_KEYS.has(key)) {
      try {
        raw[key] = JSON.parse(value);
      } catch {
        problems.push(
          `${PROJECT}:${key}: must be a structured value (a YAML object or list), got ${JSON.stringify(value)}`,
        );
      }
    } else if (BOOLEAN_KEYS.has(key)) {
      raw[key] = value === "true" ? true : value === "false" ? false : value;
    } else {
      raw[key] = value;
    }
  }
  return { raw, problems };
}

function splitKey(fullKey: string): [string, string] {
  const i = fullKey.indexOf(":");
  // Pulumi also accepts `ns:config:key` in older state; normalise to `ns`, `key`.
  const rest = fullKey.slice(i + 1).replace(/^config:/, "");
  return [fullKey.slice(0, i), rest];
}

/** Renders a schema path as the config key a user writes: `bookapi-mesh:services[1].calls[0]`. */
function keyOf(path: ReadonlyArray<PropertyKey>): string {
  let key = PROJECT;
  path.forEach((part, i) => {
    if (typeof part === "number") key += `[${part}]`;
    else key += i === 0 ? `:${String(part)}` : `.${String(part)}`;
  });
  return key;
}

/** Validates raw config and derives the mesh model. Throws MeshConfigError listing every problem. */
export function parseMeshConfig(raw: Record<string, unknown>): MeshModel {
  const parsed = rawMeshSchema.safeParse(raw);
  if (!parsed.success) {
    throw new MeshConfigError(
      parsed.error.issues.map((issue) => {
        if (issue.code === "unrecognized_keys") {
          const known = schemaKeysAt(rawMeshSchema, issue.path);
          return `${keyOf(issue.path)}: unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `${JSON.stringify(k)}${suggestion(k, known) || " (a typo?)"}`).join(", ")}`;
        }
        if (issue.code === "invalid_key") {
          // A map key (label, annotation, node selector): say what is wrong with it.
          return `${keyOf(issue.path)}: ${issue.issues.map((i) => i.message).join("; ")}`;
        }
        return `${keyOf(issue.path)}: ${issue.message}`;
      }),
      raw,
    );
  }
  const cfg = parsed.data;
  const problems = topologyProblems(cfg);
  if (problems.length > 0) throw new MeshConfigError(problems, raw);

  const createNamespace = cfg.namespace !== "default" && (cfg.createNamespace ?? true);
  const minor = kubernetesMinor(cfg.kubernetesVersion);
  const byName = (a: { name: string }, b: { name: string }) =>
    a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  const identity = (name: string): PeerIdentity => ({
    name,
    fqdn: serviceFqdn(name, cfg.namespace, cfg.clusterDomain),
    spiffeId: `spiffe://${cfg.certificates.trustDomain}/ns/${cfg.namespace}/sa/${name}`,
  });
  const clientSpiffeId = (name: string) =>
    `spiffe://${cfg.certificates.trustDomain}/ns/${cfg.namespace}/client/${name}`;
  const podsFqdn = (name: string) =>
    serviceFqdn(objectNames(name).podsService, cfg.namespace, cfg.clusterDomain);
  const declared = new Map(cfg.services.map((svc) => [svc.name, svc]));
  const upstreamOf = (name: string): UpstreamModel => {
    const callee = declared.get(name);
    // topologyProblems has rejected unknown callees.
    if (!callee) throw new Error(`internal: unknown callee ${name}`);
    return { ...identity(name), podsFqdn: podsFqdn(name), traffic: callee.traffic };
  };
  const gateway = cfg.gateway
    ? gatewayModel(cfg.gateway, identity(cfg.gateway.name), upstreamOf, (name) =>
        serviceHostnames(name, cfg.namespace, cfg.clusterDomain),
      )
    : undefined;
  const services = [...cfg.services].sort(byName).map((svc): ServiceModel => {
    const { fqdn, spiffeId } = identity(svc.name);
    // The schema turned every `calls` entry into its object form.
    const rules = (call: { methods?: string[]; paths?: string[] }) => ({
      methods: call.methods ?? [],
      paths: call.paths ?? [],
    });
    // Who calls this service, with the rules of their `calls` entry: services, then clients.
    const callersAmong = <T extends { name: string; calls: typeof svc.calls }>(
      who: T[],
      caller: (w: T) => Omit<CallerModel, "methods" | "paths">,
    ): CallerModel[] =>
      who
        .flatMap((w) =>
          w.calls
            .filter((call) => call.service === svc.name)
            .map((call): CallerModel => ({ ...caller(w), ...rules(call) })),
        )
        .sort(byName);
    const callers = [
      ...callersAmong(cfg.services, (s) => ({ kind: "service", ...identity(s.name) })),
      ...callersAmong(cfg.clients, (c) => ({
        kind: "client",
        name: c.name,
        spiffeId: clientSpiffeId(c.name),
      })),
      ...(cfg.gateway && gateway?.routes.some((r) => r.upstream.name === svc.name)
        ? [
            {
              kind: "gateway" as const,
              ...identity(cfg.gateway.name),
              methods: [],
              paths: gatewayPaths(cfg.gateway.routes, svc.name),
            },
          ]
        : []),
    ];
    const upstreams = svc.calls.map((call) => upstreamOf(call.service)).sort(byName);
    return {
      name: svc.name,
      image: svc.image,
      port: svc.port,
      replicas: svc.autoscaling?.minReplicas ?? svc.replicas ?? 1,
      ...(svc.autoscaling ? { autoscaling: svc.autoscaling } : {}),
      exposeDirectPort: svc.exposeDirectPort,
      resources: svc.resources,
      runAsUser: svc.runAsUser,
      preStopSeconds: svc.preStopSeconds,
      terminationGracePeriodSeconds: svc.terminationGracePeriodSeconds ?? svc.preStopSeconds + 20,
      env: svc.env,
      envFrom: svc.envFrom,
      imagePullSecrets: [...new Set([...cfg.imagePullSecrets, ...svc.imagePullSecrets])],
      ...(svc.command ? { command: svc.command } : {}),
      ...(svc.args ? { args: svc.args } : {}),
      probes: svc.probes,
      volumes: svc.volumes,
      podLabels: svc.podLabels,
      podAnnotations: svc.podAnnotations,
      nodeSelector: svc.nodeSelector,
      tolerations: svc.tolerations,
      upstreams,
      callers,
      spiffeId,
      directPortAllowedFrom: svc.directPortAllowedFrom,
      fqdn,
      podsFqdn: podsFqdn(svc.name),
      ...(svc.expose ? { expose: svc.expose } : {}),
      traffic: svc.traffic,
      egress: resolveEgress(svc.egress, cfg.envoy.egressPortBase),
      dnsNames: serviceHostnames(svc.name, cfg.namespace, cfg.clusterDomain),
    };
  });
  return {
    namespace: cfg.namespace,
    createNamespace,
    clusterDomain: cfg.clusterDomain,
    kubernetesVersion: cfg.kubernetesVersion,
    kubernetesMinor: minor,
    envoy: {
      ...cfg.envoy,
      sidecarMode:
        cfg.envoy.sidecarMode ??
        (minor >= KUBERNETES_FEATURES.nativeSidecars ? "native" : "container"),
    },
    certificates: certificateSettings(cfg.certificates),
    network: cfg.network,
    ...(gateway ? { gateway } : {}),
    imagePullSecrets: [...cfg.imagePullSecrets],
    clients: [...cfg.clients].sort(byName).map((client) => ({
      name: client.name,
      spiffeId: clientSpiffeId(client.name),
      calls: client.calls.map((call) => call.service).sort(),
      ...(client.secret
        ? {
            secret: {
              namespace: client.secret.namespace,
              name: client.secret.name ?? defaultClientSecretName(client.name),
            },
          }
        : {}),
    })),
    services,
    ...(cfg.renderYamlToDirectory ? { renderYamlToDirectory: cfg.renderYamlToDirectory } : {}),
    ...(cfg.podSecurity ? { podSecurity: cfg.podSecurity } : {}),
    configWarnings: [],
  };
}

/**
 * How long a new gateway pod must be ready before the rollout counts it and stops an old one,
 * per Service type: long enough for whatever sends traffic to it to have marked it healthy
 * (docs/gateway.md, "Rollouts and the load balancer", cites each provider's health checks).
 * A cloud load balancer checks the node's health check port every 3-10 s and needs 1-3
 * successes (the slowest default found, an AWS Load Balancer Controller NLB in IP mode: 10 s x 3):
 * 30 s. A NodePort's traffic comes through a load
 * balancer of yours, unknown here, or straight to nodes: 10 s. A ClusterIP gateway's clients
 * are pods, which see it as soon as its endpoint is ready: 5 s.
 */
export const GATEWAY_MIN_READY_SECONDS = { LoadBalancer: 30, NodePort: 10, ClusterIP: 5 } as const;

/** Port of the gateway's TLS listener in its pod; its Service maps the public port to it. */
export const GATEWAY_LISTEN_PORT = 8443;

/** The gateway Service's port unless `gateway.service.port` says otherwise. */
export const GATEWAY_DEFAULT_PORT = 443;

/**
 * Paths the gateway may request from `service`: the prefixes its routes forward there, after
 * rewriting, each exactly and everything below it. A route forwarding `/` leaves no limit.
 */
function gatewayPaths(routes: RawGateway["routes"], service: string): string[] {
  const prefixes = routes
    .filter((r) => r.service === service)
    .map((r) => r.rewritePrefix ?? r.pathPrefix);
  if (prefixes.includes("/")) return [];
  return [...new Set(prefixes.flatMap((p) => [p, `${p}/*`]))].sort();
}

/** An https URL's host (an IPv6 literal comes bracketed in a URL, never in an address) and port. */
function urlServer(uri: string): { host: string; port: number } {
  const url = new URL(uri);
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: url.port ? Number(url.port) : 443,
  };
}

/** The JWT provider guarding route `i`: its own, none when public, else the gateway's. */
function routeJwt(gw: RawGateway, i: number): JwtModel | undefined {
  const route = gw.routes[i];
  if (route.public) return undefined;
  const [provider, jwt] = route.auth
    ? [`route-${i}`, route.auth.jwt]
    : gw.auth
      ? ["gateway", gw.auth.jwt]
      : [undefined, undefined];
  if (!provider || !jwt) return undefined;
  return {
    provider,
    issuer: jwt.issuer,
    audiences: [...jwt.audiences],
    ...(jwt.jwksUri ? { jwksUri: jwt.jwksUri, jwksServer: urlServer(jwt.jwksUri) } : {}),
    ...(jwt.jwks ? { jwks: jwt.jwks } : {}),
    ...(jwt.jwksCidrs ? { jwksCidrs: [...jwt.jwksCidrs] } : {}),
    jwksCacheDuration: jwt.jwksCacheDuration,
    requiredScopes: [...jwt.requiredScopes],
  };
}

/**
 * The port clients dial: `publicPort`, else the published port (the node port for NodePort,
 * unknown until Kubernetes assigns one), else 443.
 */
function gatewayPublicPort(gw: RawGateway): number | undefined {
  if (gw.publicPort !== undefined) return gw.publicPort;
  if (gw.service.type === "NodePort") return gw.service.port;
  return gw.service.type === "LoadBalancer"
    ? (gw.service.port ?? GATEWAY_DEFAULT_PORT)
    : GATEWAY_DEFAULT_PORT;
}

/** The gateway model: routes resolved and ordered, each with its token check and resource. */
function gatewayModel(
  gw: RawGateway,
  self: PeerIdentity,
  upstreamOf: (service: string) => UpstreamModel,
  hostnames: (name: string) => string[],
): GatewayModel {
  const publicPort = gatewayPublicPort(gw);
  const routes = gw.routes.map((route, i): GatewayRouteModel => {
    const jwt = routeJwt(gw, i);
    // topologyProblems has made sure an authenticated route has a host and a known port.
    const host = `${route.host ?? gw.hostname ?? ""}${publicPort === undefined || publicPort === GATEWAY_DEFAULT_PORT ? "" : `:${publicPort}`}`;
    const suffix = route.pathPrefix === "/" ? "" : route.pathPrefix;
    return {
      ...(route.host ? { host: route.host } : {}),
      pathPrefix: route.pathPrefix,
      ...(route.rewritePrefix ? { rewritePrefix: route.rewritePrefix } : {}),
      upstream: upstreamOf(route.service),
      public: route.public,
      ...(jwt
        ? {
            jwt,
            resource: {
              url: `https://${host}${suffix || "/"}`,
              metadataPath: `${RESOURCE_METADATA_PATH}${suffix}`,
              metadataUrl: `https://${host}${RESOURCE_METADATA_PATH}${suffix}`,
            },
          }
        : {}),
    };
  });
  // Envoy takes the first matching route: longer prefixes first, config order among equals.
  const ordered = routes
    .map((route, i) => ({ route, i }))
    .sort((a, b) => b.route.pathPrefix.length - a.route.pathPrefix.length || a.i - b.i)
    .map(({ route }) => route);
  return {
    ...self,
    replicas: gw.replicas,
    ...(gw.hostname ? { hostname: gw.hostname } : {}),
    ...(publicPort !== undefined ? { publicPort } : {}),
    preStopSeconds: gw.preStopSeconds,
    minReadySeconds: gw.minReadySeconds ?? GATEWAY_MIN_READY_SECONDS[gw.service.type],
    service: gw.service,
    tls: gw.tls,
    dnsNames: hostnames(gw.name),
    routes: ordered,
    ...(gw.cors ? { cors: gw.cors } : {}),
  };
}

function certificateSettings(raw: RawMesh["certificates"]): CertificateSettings {
  const { algorithm, ecdsaCurve, rsaBits, ...rest } = raw;
  const key: KeySpec =
    algorithm === "ECDSA"
      ? { algorithm, ecdsaCurve: ecdsaCurve ?? "P256" }
      : { algorithm, rsaBits: rsaBits ?? 2048 };
  return { ...rest, key };
}

/** Cross-field rules the per-field schema cannot express: the topology and the port plan. */
function topologyProblems(cfg: RawMesh): string[] {
  const problems: string[] = [];
  const names = cfg.services.map((s) => s.name);
  const known = new Set(names);

  const meshPorts = Object.entries(cfg.envoy.ports);
  const seen = new Map<number, string>();
  for (const [role, p] of meshPorts) {
    const clash = seen.get(p);
    if (clash)
      problems.push(`${PROJECT}:envoy.ports.${role}: ${p} is already used by envoy.ports.${clash}`);
    else seen.set(p, role);
  }

  if (cfg.podSecurity && (cfg.namespace === "default" || cfg.createNamespace === false)) {
    problems.push(
      `${PROJECT}:podSecurity: only applies to a namespace the program creates (namespace is "${cfg.namespace}"${cfg.createNamespace === false ? ", createNamespace is false" : ""}); label that namespace yourself`,
    );
  }

  const minor = kubernetesMinor(cfg.kubernetesVersion);
  if (cfg.envoy.sidecarMode === "native" && minor < KUBERNETES_FEATURES.nativeSidecars) {
    problems.push(
      `${PROJECT}:envoy.sidecarMode: native sidecars need Kubernetes 1.${KUBERNETES_FEATURES.nativeSidecars} or later (kubernetesVersion is "${cfg.kubernetesVersion}"); use container`,
    );
  }

  const meshHosts = new Set(
    cfg.services.flatMap((s) => serviceHostnames(s.name, cfg.namespace, cfg.clusterDomain)),
  );
  cfg.clients.forEach((client, i) => {
    const key = `${PROJECT}:clients[${i}]`;
    const secretName = client.secret?.name ?? defaultClientSecretName(client.name);
    if (client.secret?.namespace === cfg.namespace && meshSecretNames(cfg).includes(secretName))
      problems.push(
        `${key}.secret.name: "${secretName}" is a Secret the mesh writes in ${cfg.namespace}; pick another name`,
      );
    if (cfg.clients.findIndex((c) => c.name === client.name) !== i)
      problems.push(`${key}.name: duplicate client name "${client.name}"`);
    problems.push(...callProblems(key, client.calls, known));
  });

  if (cfg.gateway) problems.push(...gatewayProblems(cfg, cfg.gateway, known));

  cfg.services.forEach((svc, i) => {
    const key = `${PROJECT}:services[${i}]`;
    const published = svc.name.slice(0, -EXTERNAL_SERVICE_SUFFIX.length);
    if (svc.name.endsWith(EXTERNAL_SERVICE_SUFFIX) && known.has(published))
      problems.push(
        `${key}.name: "${svc.name}" is the Service that publishes "${published}" (expose); pick another name`,
      );
    if (
      svc.name.endsWith(PODS_SERVICE_SUFFIX) &&
      known.has(svc.name.slice(0, -PODS_SERVICE_SUFFIX.length))
    )
      problems.push(
        `${key}.name: "${svc.name}" is the headless Service of "${svc.name.slice(0, -PODS_SERVICE_SUFFIX.length)}"; pick another name`,
      );
    problems.push(...appSettingProblems(cfg, svc, key));
    problems.push(...egressProblems(cfg, svc, key, meshHosts));
    if (names.indexOf(svc.name) !== i)
      problems.push(`${key}.name: duplicate service name "${svc.name}"`);
    const clash = meshPorts.find(([, p]) => p === svc.port);
    if (clash)
      problems.push(
        `${key}.port: ${svc.port} is Envoy's ${clash[0]} port (envoy.ports.${clash[0]}); pick another app port`,
      );
    problems.push(...callProblems(key, svc.calls, known, svc.name));
  });
  return problems;
}

/** Secrets the program writes in the mesh namespace: each service's and the gateway's. */
function meshSecretNames(cfg: RawMesh): string[] {
  const gateway = cfg.gateway ? gatewayObjectNames(cfg.gateway.name) : undefined;
  return [
    ...cfg.services.map((s) => objectNames(s.name).secret),
    ...(gateway ? [gateway.secret, gateway.edgeSecret] : []),
  ];
}

/** Gateway settings that clash with the services, the ports, or each other. */
function gatewayProblems(cfg: RawMesh, gw: RawGateway, known: Set<string>): string[] {
  const key = `${PROJECT}:gateway`;
  const problems: string[] = [];
  // The gateway's objects share the namespace with the services' (and their -pods, -ext).
  const taken = cfg.services.flatMap((s) => {
    const names = objectNames(s.name);
    return [names.service, names.podsService, names.externalService];
  });
  if (taken.includes(gw.name))
    problems.push(`${key}.name: "${gw.name}" is the name of a service's Service; pick another`);
  // Service `<gw>-edge` would write the Secret `<gw>-edge-tls` the gateway's certificate uses.
  if (known.has(`${gw.name}-edge`))
    problems.push(
      `${key}.name: the service "${gw.name}-edge" writes the Secret ${gatewayObjectNames(gw.name).edgeSecret}, which the gateway uses; pick another name`,
    );
  for (const [role, p] of Object.entries(cfg.envoy.ports))
    if (p === GATEWAY_LISTEN_PORT)
      problems.push(
        `${key}: its TLS listener uses port ${GATEWAY_LISTEN_PORT} in the pod, which envoy.ports.${role} also uses; pick another envoy.ports.${role}`,
      );
  if (gw.tls.secretName) {
    if (meshSecretNames(cfg).includes(gw.tls.secretName))
      problems.push(
        `${key}.tls.secretName: "${gw.tls.secretName}" is a mesh identity Secret the program writes; name the Secret that holds the gateway's public certificate`,
      );
  }
  const authenticated = (r: RawGateway["routes"][number]) =>
    !r.public && (r.auth ?? gw.auth) !== undefined;
  if (gw.service.type === "ClusterIP" && !gw.service.from)
    problems.push(
      `${key}.service.from: a ClusterIP gateway needs the pods that may connect (an ingress controller); ipBlocks do not reliably match pod addresses`,
    );
  if (gw.service.type === "ClusterIP" && gw.service.sourceRanges)
    problems.push(
      `${key}.service.sourceRanges: a ClusterIP gateway is reached from inside the cluster only; name its clients in service.from`,
    );
  // An assigned node port is known only after the Service exists; resource URLs are built
  // before. Without authenticated routes, Kubernetes may pick it, so two stacks never collide.
  if (
    gw.service.type === "NodePort" &&
    gw.service.port === undefined &&
    gw.publicPort === undefined &&
    gw.routes.some(authenticated)
  )
    problems.push(
      `${key}.service.port: a NodePort gateway with authenticated routes needs its node port fixed (30000-32767 by default): resource URLs carry it (or set publicPort)`,
    );
  const namesHosts = gw.routes.some((r) => r.host !== undefined);
  const seen = new Set<string>();
  gw.routes.forEach((route, i) => {
    const rkey = `${key}.routes[${i}]`;
    if (!known.has(route.service))
      problems.push(
        `${rkey}.service: unknown service "${route.service}" (known: ${[...known].sort().join(", ")})`,
      );
    const where = `${route.host ?? "*"} ${route.pathPrefix}`;
    if (seen.has(where))
      problems.push(
        `${rkey}.pathPrefix: ${route.pathPrefix} is already routed${route.host ? ` for ${route.host}` : ""}`,
      );
    seen.add(where);
    if (route.public && route.auth)
      problems.push(`${rkey}.public: a public route takes no auth; drop one of them`);
    // Stacks held to the restricted Pod Security Standard are the production-like ones: there
    // an edge without a token check must be asked for, not be what an omission gives.
    if (cfg.podSecurity === "restricted" && !route.public && !(route.auth ?? gw.auth))
      problems.push(
        `${rkey}: forwards ${route.pathPrefix} to "${route.service}" from outside the cluster with no token check, which a stack with podSecurity restricted refuses; set gateway.auth (or this route's auth), or public: true to publish it without one`,
      );
    if (authenticated(route) && !route.host && !gw.hostname)
      problems.push(
        `${rkey}.host: an authenticated route needs a host (here or gateway.hostname) for its resource URL (RFC 9728, MCP authorization)`,
      );
    // A route without a host answers on every named host too, where its resource URL (one host)
    // would not be the URL the client used (RFC 9728 3.3).
    if (authenticated(route) && !route.host && namesHosts)
      problems.push(
        `${rkey}.host: other routes name their hosts, and this authenticated route would answer on them with the resource URL of ${gw.hostname ?? "gateway.hostname"}; name its host`,
      );
    const reserved = RESOURCE_METADATA_PATH;
    if (
      gw.routes.some(authenticated) &&
      (route.pathPrefix === reserved || route.pathPrefix.startsWith(`${reserved}/`))
    )
      problems.push(`${rkey}.pathPrefix: ${reserved} is served by the gateway itself`);
  });
  return problems;
}

/** A `calls` list's entries naming no known service, repeating one, or (for a service) itself. */
function callProblems(
  key: string,
  calls: { service: string }[],
  known: Set<string>,
  self?: string,
): string[] {
  const callees = calls.map((call) => call.service);
  return callees.flatMap((callee, j) => {
    if (callee === self) return [`${key}.calls[${j}]: service "${self}" cannot call itself`];
    if (!known.has(callee))
      return [
        `${key}.calls[${j}]: unknown service "${callee}" (known: ${[...known].sort().join(", ")})`,
      ];
    if (callees.indexOf(callee) !== j) return [`${key}.calls[${j}]: "${callee}" is listed twice`];
    return [];
  });
}

/** `EGRESS_<NAME>_ADDR`: where the app finds a tcp egress target's local listener. */
export function egressEnvName(name: string): string {
  return `EGRESS_${name.toUpperCase().replace(/-/g, "_")}_ADDR`;
}

/** Egress sorted by name; tcp targets get consecutive loopback ports from `base`. */
function resolveEgress(egress: EgressTarget[], base: number): ResolvedEgress[] {
  let next = base;
  return [...egress]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((e) =>
      e.protocol === "tcp"
        ? { ...e, local: { port: next++, env: egressEnvName(e.name) } }
        : { ...e },
    );
}

/** A list's entries that repeat an earlier one, with their index. */
function repeats<T>(values: T[]): [T, number][] {
  return values.flatMap((v, i): [T, number][] => (values.indexOf(v) !== i ? [[v, i]] : []));
}

/** Egress entries that clash with each other, the mesh, its ports or the app's env. */
function egressProblems(
  cfg: RawMesh,
  svc: RawService,
  key: string,
  meshHosts: Set<string>,
): string[] {
  const problems: string[] = [];
  for (const [name, j] of repeats(svc.egress.map((e) => e.name)))
    problems.push(`${key}.egress[${j}].name: "${name}" is listed twice`);
  // The outbound listener picks an HTTP egress entry by host name alone (ports are ignored).
  const httpHosts = svc.egress.map((e) => (e.protocol === "tcp" ? undefined : e.host));
  for (const [host, j] of repeats(httpHosts))
    if (host !== undefined)
      problems.push(`${key}.egress[${j}].host: "${host}" is already an http/https egress entry`);
  const taken = new Map<number, string>(
    Object.entries(cfg.envoy.ports).map(([role, p]) => [p, `envoy.ports.${role}`]),
  );
  taken.set(svc.port, "the app port");
  const userEnv = new Set(svc.env.map((e) => e.name));
  for (const e of resolveEgress(svc.egress, cfg.envoy.egressPortBase)) {
    const j = svc.egress.findIndex((x) => x.name === e.name);
    if (meshHosts.has(e.host))
      problems.push(
        `${key}.egress[${j}].host: "${e.host}" is a mesh service; list it in calls instead`,
      );
    if (!e.local) continue;
    if (e.local.port > 65535)
      problems.push(`${key}.egress[${j}]: no loopback port left above envoy.egressPortBase`);
    const clash = taken.get(e.local.port);
    if (clash)
      problems.push(
        `${key}.egress[${j}]: its listener port ${e.local.port} (from envoy.egressPortBase) is ${clash}`,
      );
    if (userEnv.has(e.local.env))
      problems.push(`${key}.env: ${e.local.env} is set by the mesh for egress "${e.name}"`);
  }
  return problems;
}

/** Shutdown timing, replica ownership, and app settings that collide with what the mesh owns. */
function appSettingProblems(cfg: RawMesh, svc: RawService, key: string): string[] {
  const problems: string[] = [];
  if (svc.replicas !== undefined && svc.autoscaling !== undefined)
    problems.push(`${key}.replicas: not with autoscaling, which owns the replica count`);
  if (svc.preStopSeconds < cfg.envoy.drainSeconds)
    problems.push(
      `${key}.preStopSeconds: must be at least envoy.drainSeconds (${cfg.envoy.drainSeconds}), so the app still serves while Envoy tells callers to reconnect`,
    );
  if (
    svc.terminationGracePeriodSeconds !== undefined &&
    svc.terminationGracePeriodSeconds < svc.preStopSeconds + 5
  )
    problems.push(
      `${key}.terminationGracePeriodSeconds: must be at least preStopSeconds + 5 (${svc.preStopSeconds + 5}), leaving the app at least 3 s after its SIGTERM before Envoy's own 2 s stop window`,
    );

  const meshVolumes: string[] = Object.values(MESH_VOLUMES);
  svc.volumes.forEach((v, j) => {
    if (meshVolumes.includes(v.name))
      problems.push(`${key}.volumes[${j}].name: "${v.name}" is a volume the mesh owns`);
    const path = v.mountPath.replace(/\/+$/, "") || "/";
    if (path === APP_TMP_PATH || path.startsWith(`${APP_TMP_PATH}/`))
      problems.push(
        `${key}.volumes[${j}].mountPath: ${APP_TMP_PATH} is the mesh's writable scratch volume; mount elsewhere`,
      );
  });
  for (const [name, j] of repeats(svc.volumes.map((v) => v.name)))
    problems.push(`${key}.volumes[${j}].name: "${name}" is listed twice`);
  for (const [path, j] of repeats(svc.volumes.map((v) => v.mountPath)))
    problems.push(`${key}.volumes[${j}].mountPath: ${path} is mounted twice`);

  svc.env.forEach((e, j) => {
    if (e.name === OUTBOUND_URL_ENV)
      problems.push(`${key}.env[${j}].name: ${OUTBOUND_URL_ENV} is set by the mesh`);
  });
  for (const [name, j] of repeats(svc.env.map((e) => e.name)))
    problems.push(`${key}.env[${j}].name: "${name}" is set twice`);

  const meshLabels: string[] = [...MESH_POD_LABEL_KEYS];
  for (const label of Object.keys(svc.podLabels))
    if (meshLabels.includes(label))
      problems.push(`${key}.podLabels: "${label}" is a label the mesh sets (selectors use it)`);
  for (const annotation of Object.keys(svc.podAnnotations)) {
    if (annotation === DEFAULT_CONTAINER_ANNOTATION)
      problems.push(`${key}.podAnnotations: "${annotation}" is set by the mesh`);
    if (cfg.envoy.scrapeFrom.length > 0 && annotation.startsWith(SCRAPE_ANNOTATION_PREFIX))
      problems.push(
        `${key}.podAnnotations: "${annotation}" is set by the mesh while envoy.scrapeFrom is set`,
      );
  }
  return problems;
}

/** Reads and validates this stack's config. */
export function loadMeshConfig(
  all: Record<string, string> = pulumi.runtime.allConfig(),
): MeshModel {
  const keys = stackKeyProblems(all);
  const { raw, problems } = rawConfigFrom(all);
  if (keys.problems.length + problems.length > 0)
    throw new MeshConfigError([...keys.problems, ...problems]);
  return { ...parseMeshConfig(raw), configWarnings: keys.warnings };
}
