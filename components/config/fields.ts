/**
 * Field schemas the stack config is built from: Kubernetes names, quantities, selectors,
 * durations, ports, and the Kubernetes-shaped app settings (env, probes, volumes, tolerations),
 * each with the rules Kubernetes or Envoy apply to it.
 */
import { isIP } from "node:net";
import { z } from "zod";

/** DNS-1035 label: Service names must start with a letter (Kubernetes rejects "1api"). */
export const DNS_1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
/** DNS-1123 label: namespaces may start with a digit. */
export const DNS_1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
export const DNS_1123_SUBDOMAIN =
  /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** Kubernetes resource quantities as used for cpu and memory (e.g. 50m, 0.5, 64Mi, 1G). */
const QUANTITY = /^([0-9]+(\.[0-9]+)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;

/** The oldest Kubernetes minor this program supports (PDB unhealthyPodEvictionPolicy, matchLabelKeys). */
export const MIN_KUBERNETES_MINOR = 27;

/** The kubelet's floor between SIGTERM and SIGKILL (minimumGracePeriodInSeconds). */
export const MIN_STOP_WINDOW_SECONDS = 2;

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

export const kubernetesVersion = z
  .string({
    error: 'must be a quoted Kubernetes minor version such as "1.29" (YAML reads 1.30 as 1.3)',
  })
  .regex(/^1\.(0|[1-9][0-9]*)$/, 'must be a Kubernetes minor version such as "1.29"')
  .refine(
    (v) => kubernetesMinor(v) >= MIN_KUBERNETES_MINOR,
    `must be 1.${MIN_KUBERNETES_MINOR} or later (quote it: YAML reads 1.30 as 1.3)`,
  );

export const port = z
  .number({ error: "must be a number" })
  .int("must be a whole number")
  .min(1, "must be between 1 and 65535")
  .max(65535, "must be between 1 and 65535");

export const hours = z
  .number({ error: "must be a number of hours" })
  .int("must be whole hours")
  .positive("must be positive");

/**
 * A container image pinned by tag or digest. `latest` and untagged references float: a rollout
 * could then run code nobody reviewed.
 */
export const image = z
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

export const quantity = z
  .string({ error: "must be a Kubernetes quantity string such as 50m or 64Mi" })
  .regex(QUANTITY, "must be a Kubernetes quantity such as 50m or 64Mi");

export const resourcePair = z.strictObject({ cpu: quantity, memory: quantity });

/** A Kubernetes label selector, as NetworkPolicy peers take it. */
export const labelSelector = z.strictObject({
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
export const peerSelector = z
  .strictObject({
    namespaceSelector: labelSelector.optional(),
    podSelector: labelSelector.optional(),
  })
  .refine((p) => p.namespaceSelector !== undefined || p.podSelector !== undefined, {
    message: "needs a namespaceSelector and/or a podSelector",
  });
export type PeerSelector = z.infer<typeof peerSelector>;

/** A duration in Envoy's form: a number and a unit, e.g. "250ms", "7s", "5m", "1h". */
export const DURATION = /^([0-9]+(\.[0-9]+)?)(ms|s|m|h)$/;
const UNIT_SECONDS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600 };

/** Seconds in a duration the schema has accepted. */
export function durationSeconds(value: string): number {
  const m = DURATION.exec(value);
  if (!m) throw new Error(`internal: "${value}" is not a duration`);
  return Number(m[1]) * UNIT_SECONDS[m[3]];
}

/** A positive duration, at least 1 ms. */
export const duration = z
  .string({ error: 'must be a duration such as "250ms", "7s" or "5m"' })
  .regex(DURATION, 'must be a duration such as "250ms", "7s" or "5m"')
  .refine((v) => !DURATION.test(v) || durationSeconds(v) >= 0.001, "must be at least 1ms");

export const positiveCount = z
  .number({ error: "must be a number" })
  .int("must be a whole number")
  .min(1, "must be at least 1");

// ---- Kubernetes-shaped app settings: the same field names and forms as a pod spec. ----

/** A name of a Kubernetes object (Secret, ConfigMap) the stack refers to. */
export const objectName = z
  .string({ error: "must be an object name" })
  .max(253, "must be at most 253 characters")
  .regex(DNS_1123_SUBDOMAIN, "must be a DNS-1123 name (lowercase letters, digits, '-', '.')");

/** Exactly one of `keys` is set; zod cannot express a oneof over optional fields directly. */
export function exactlyOne<T extends object>(keys: (keyof T & string)[]) {
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

export const envVar = z
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
export const envFromSource = z
  .strictObject({
    secretRef: objectRef.optional(),
    configMapRef: objectRef.optional(),
    prefix: z.string().optional(),
  })
  .superRefine(exactlyOne(["secretRef", "configMapRef"]));

export const seconds = (min: number) =>
  z
    .number({ error: "must be a number of seconds" })
    .int("must be whole seconds")
    .min(min, `must be at least ${min}`);

/** A probe port: a number, or the app container's port name `http`. */
const probePort = z.union([port, z.literal("http")], {
  error: 'must be a port number or "http" (the app port)',
});
export const probe = z
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
export const appVolume = z
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
export const labelMap = z.record(
  qualifiedName,
  z
    .string({ error: "label values must be strings (quote numbers and booleans)" })
    .regex(LABEL_VALUE, "label values must be at most 63 characters of [A-Za-z0-9-_.]"),
);
export const annotationMap = z.record(
  qualifiedName,
  z.string({ error: "values must be strings (quote numbers and booleans)" }),
);

/** Kubernetes' own rules for a toleration (validateTolerations). */
export const toleration = z
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

export const autoscalingSchema = z
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

export const cidr = z
  .string({ error: "must be a CIDR such as 169.254.20.10/32" })
  .refine((value) => {
    const [address, length, ...rest] = value.split("/");
    const family = isIP(address);
    return (
      rest.length === 0 &&
      family !== 0 &&
      /^[0-9]+$/.test(length ?? "") &&
      Number(length) <= (family === 4 ? 32 : 128)
    );
  }, "must be a CIDR such as 169.254.20.10/32");

/** Who may reach a Service published outside the cluster, and its annotations (cloud LB settings). */
export const publishedServiceFields = {
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
