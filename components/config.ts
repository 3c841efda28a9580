/**
 * Stack configuration: the user-facing contract (DESIGN.md "Stack configuration"), parsed with a
 * schema into one typed model with defaults. Every problem is reported with the config key that
 * holds it, before any resource is registered.
 */
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";

/** The Pulumi project name, which is also the config namespace. */
export const PROJECT = "bookapi-mesh";

/** DNS-1035 label: Service names must start with a letter (Kubernetes rejects "1api"). */
const DNS_1035_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
/** DNS-1123 label: namespaces may start with a digit. */
const DNS_1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS_1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** Kubernetes resource quantities as used for cpu and memory (e.g. 50m, 0.5, 64Mi, 1G). */
const QUANTITY = /^([0-9]+(\.[0-9]+)?|\.[0-9]+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;

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
    .default({ inbound: 15001, outbound: 15006, admin: 9901, health: 15021, metrics: 15090 }),
  resources: z
    .strictObject({
      requests: resourcePair.default({ cpu: "50m", memory: "64Mi" }),
      limits: resourcePair.default({ cpu: "500m", memory: "256Mi" }),
    })
    .default({
      requests: { cpu: "50m", memory: "64Mi" },
      limits: { cpu: "500m", memory: "256Mi" },
    }),
  /** Who may reach the health and metrics ports (the monitoring stack). Defaults to nobody. */
  scrapeFrom: z.array(peerSelector, { error: "must be a list of selectors" }).default([]),
  /**
   * native: Envoy is an init container with restartPolicy Always (Kubernetes >= 1.29), so it is
   * ready before the app starts and stops after it; container: a plain second container.
   */
  sidecarMode: z
    .enum(["native", "container"], { error: "must be native or container" })
    .default("native"),
  /** Seconds Envoy drains connections on shutdown; preStop and the grace period follow from it. */
  drainSeconds: z
    .number({ error: "must be a number of seconds" })
    .int("must be whole seconds")
    .min(1, "must be between 1 and 300")
    .max(300, "must be between 1 and 300")
    .default(10),
});

const certificatesSchema = z
  .strictObject({
    algorithm: z.enum(["ECDSA", "RSA"], { error: "must be ECDSA or RSA" }).default("ECDSA"),
    ecdsaCurve: z.enum(["P256", "P384"], { error: "must be P256 or P384" }).default("P256"),
    rsaBits: z
      .union([z.literal(2048), z.literal(3072), z.literal(4096)], {
        error: "must be 2048, 3072 or 4096",
      })
      .default(2048),
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
  .max(63, "must be at most 63 characters (a DNS label)")
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

const serviceSchema = z.strictObject({
  name: serviceName,
  image,
  port,
  replicas: z
    .number({ error: "must be a number" })
    .int("must be a whole number")
    .min(1, "must be at least 1")
    .default(1),
  exposeDirectPort: z.boolean({ error: "must be true or false" }).default(false),
  calls: z
    .array(
      // The plain form `calls: [bookapi]` is shorthand for `{ service: bookapi }`.
      z.preprocess((call) => (typeof call === "string" ? { service: call } : call), callSchema),
      {
        error: "must be a list of service names",
      },
    )
    .default([]),
  /** Who may reach the app port directly (bypassing Envoy). Defaults to nobody. */
  directPortAllowedFrom: z
    .array(peerSelector, { error: "must be a list of selectors" })
    .default([]),
  resources: z
    .strictObject({
      requests: resourcePair.default({ cpu: "100m", memory: "128Mi" }),
      limits: resourcePair.default({ cpu: "1", memory: "512Mi" }),
    })
    .default({ requests: { cpu: "100m", memory: "128Mi" }, limits: { cpu: "1", memory: "512Mi" } }),
  /** A numeric UID, so the kubelet can enforce runAsNonRoot whatever USER the image names. */
  runAsUser: z
    .number({ error: "must be a numeric user id" })
    .int("must be a whole number")
    .min(1, "must not be 0 (root)")
    .default(10001),
});

const rawMeshSchema = z.strictObject({
  namespace: z
    .string()
    .max(63, "must be at most 63 characters")
    .regex(DNS_1123_LABEL, "must be a DNS-1123 label (lowercase letters, digits, '-')")
    .default("default"),
  createNamespace: z.boolean({ error: "must be true or false" }).optional(),
  clusterDomain: z
    .string()
    .max(253)
    .regex(DNS_1123_SUBDOMAIN, "must be a DNS domain such as cluster.local")
    .default("cluster.local"),
  envoy: envoySchema.default(envoySchema.parse({})),
  certificates: certificatesSchema.default(certificatesSchema.parse({})),
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
export type EnvoySettings = RawMesh["envoy"];
export type CertificateSettings = RawMesh["certificates"];
export type ResourcePair = z.infer<typeof resourcePair>;

/** One service of the mesh, with its derived identity and callers. */
export interface ServiceModel {
  name: string;
  image: string;
  port: number;
  replicas: number;
  exposeDirectPort: boolean;
  resources: { requests: ResourcePair; limits: ResourcePair };
  runAsUser: number;
  /** Services this one calls, sorted. */
  calls: string[];
  /** Services allowed to call this one: derived from every service's `calls`, sorted. */
  callers: string[];
  /** `<name>.<ns>.svc.<clusterDomain>`: the name other sidecars dial and verify. */
  fqdn: string;
  /** The certificate's DNS SANs: short name, `.ns`, `.ns.svc`, FQDN. */
  dnsNames: string[];
  /** `spiffe://<trustDomain>/ns/<ns>/sa/<name>`: the certificate's URI SAN. */
  spiffeId: string;
  /** Per caller, the L7 limits it declared (empty lists = anything). Sorted by caller. */
  callerRules: CallerRule[];
  /** Who may reach the app port directly; empty = nobody. */
  directPortAllowedFrom: PeerSelector[];
}

/** What one caller may do on a callee, from the caller's `calls` entry. */
export interface CallerRule {
  caller: string;
  /** HTTP methods allowed; empty = all. */
  methods: string[];
  /** Paths allowed (`/a` exact, `/a/*` prefix); empty = all. */
  paths: string[];
}

/** The whole validated mesh. */
export interface MeshModel {
  namespace: string;
  /** Whether the program creates the namespace (never for `default`). */
  createNamespace: boolean;
  clusterDomain: string;
  envoy: EnvoySettings;
  certificates: CertificateSettings;
  /** Services sorted by name, so output does not depend on config order. */
  services: ServiceModel[];
  /** When set, Kubernetes objects are written as YAML into this folder instead of a cluster. */
  renderYamlToDirectory?: string;
  /** Pod Security Standard label set on the namespace (only when the program creates it). */
  podSecurity?: "restricted" | "baseline" | "privileged";
}

/** Stack config that cannot be deployed. The message names every offending key. */
export class MeshConfigError extends pulumi.RunError {
  constructor(public readonly problems: string[]) {
    super(`Invalid stack config:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
    this.name = "MeshConfigError";
  }
}

/** Top-level keys whose values are structured (YAML objects/lists, stored by Pulumi as JSON). */
const STRUCTURED_KEYS = new Set(["envoy", "certificates", "services"]);
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
          return `${keyOf(issue.path)}: unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => JSON.stringify(k)).join(", ")} (a typo?)`;
        }
        return `${keyOf(issue.path)}: ${issue.message}`;
      }),
    );
  }
  const cfg = parsed.data;
  const problems = topologyProblems(cfg);
  if (problems.length > 0) throw new MeshConfigError(problems);

  const createNamespace = cfg.namespace !== "default" && (cfg.createNamespace ?? true);
  const services = [...cfg.services]
    .sort((a, b) => a.name.localeCompare(b.name))
    .map((svc): ServiceModel => {
      // The schema turned every `calls` entry into its object form.
      const callerRules = cfg.services
        .flatMap((other) =>
          other.calls
            .filter((call) => call.service === svc.name)
            .map((call): CallerRule => ({
              caller: other.name,
              methods: call.methods ?? [],
              paths: call.paths ?? [],
            })),
        )
        .sort((a, b) => (a.caller < b.caller ? -1 : a.caller > b.caller ? 1 : 0));
      const fqdn = `${svc.name}.${cfg.namespace}.svc.${cfg.clusterDomain}`;
      return {
        name: svc.name,
        image: svc.image,
        port: svc.port,
        replicas: svc.replicas,
        exposeDirectPort: svc.exposeDirectPort,
        resources: svc.resources,
        runAsUser: svc.runAsUser,
        calls: svc.calls.map((call) => call.service).sort(),
        callers: callerRules.map((rule) => rule.caller),
        callerRules,
        spiffeId: `spiffe://${cfg.certificates.trustDomain}/ns/${cfg.namespace}/sa/${svc.name}`,
        directPortAllowedFrom: svc.directPortAllowedFrom,
        fqdn,
        dnsNames: [
          svc.name,
          `${svc.name}.${cfg.namespace}`,
          `${svc.name}.${cfg.namespace}.svc`,
          fqdn,
        ],
      };
    });
  return {
    namespace: cfg.namespace,
    createNamespace,
    clusterDomain: cfg.clusterDomain,
    envoy: cfg.envoy,
    certificates: cfg.certificates,
    services,
    ...(cfg.renderYamlToDirectory ? { renderYamlToDirectory: cfg.renderYamlToDirectory } : {}),
    ...(cfg.podSecurity ? { podSecurity: cfg.podSecurity } : {}),
  };
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

  cfg.services.forEach((svc, i) => {
    const key = `${PROJECT}:services[${i}]`;
    if (names.indexOf(svc.name) !== i)
      problems.push(`${key}.name: duplicate service name "${svc.name}"`);
    const clash = meshPorts.find(([, p]) => p === svc.port);
    if (clash)
      problems.push(
        `${key}.port: ${svc.port} is Envoy's ${clash[0]} port (envoy.ports.${clash[0]}); pick another app port`,
      );
    const callees = svc.calls.map((call) => call.service);
    callees.forEach((callee, j) => {
      if (callee === svc.name)
        problems.push(`${key}.calls[${j}]: service "${svc.name}" cannot call itself`);
      else if (!known.has(callee))
        problems.push(
          `${key}.calls[${j}]: unknown service "${callee}" (known: ${[...known].sort().join(", ")})`,
        );
      else if (callees.indexOf(callee) !== j)
        problems.push(`${key}.calls[${j}]: "${callee}" is listed twice`);
    });
  });
  return problems;
}

/** Reads and validates this stack's config. */
export function loadMeshConfig(
  all: Record<string, string> = pulumi.runtime.allConfig(),
): MeshModel {
  const { raw, problems } = rawConfigFrom(all);
  if (problems.length > 0) throw new MeshConfigError(problems);
  return parseMeshConfig(raw);
}
