/**
 * Stack configuration: the user-facing contract (docs/configuration.md), parsed with a
 * schema into one typed model with defaults. Every problem is reported with the config key that
 * holds it, before any resource is registered. This module reads the stack's keys and derives
 * the model; the schema, the model's types and the cross-field checks live beside it.
 */
import * as pulumi from "@pulumi/pulumi";
import { z } from "zod";
import {
  PROJECT,
  defaultClientSecretName,
  objectNames,
  serviceFqdn,
  serviceHostnames,
} from "../names";
import { schemaKeysAt, stackKeyProblems, suggestion, withEntryName } from "../config-keys";
import { KUBERNETES_FEATURES, kubernetesMinor } from "./fields";
import { RawGateway, rawMeshSchema } from "./schema";
import {
  ServiceModel,
  PeerIdentity,
  CallerModel,
  UpstreamModel,
  MeshModel,
  certificateSettings,
  resolveEgress,
} from "./model";
import { gatewayPaths, gatewayModel } from "./gateway";
import { metricsDiscovery, topologyProblems } from "./checks";

export {
  MIN_KUBERNETES_MINOR,
  MIN_STOP_WINDOW_SECONDS,
  KUBERNETES_FEATURES,
  kubernetesMinor,
  isPinnedImage,
  quantityValue,
  PeerSelector,
  durationSeconds,
  ProbeSettings,
  AppVolume,
} from "./fields";
export {
  DEFAULT_ROUTE_TIMEOUT,
  STREAMING_IDLE_TIMEOUT,
  TrafficPolicy,
  DEFAULT_TRAFFIC_POLICY,
  EgressTarget,
  ExposeSettings,
  exposedSourceRanges,
  JwtSettings,
  NetworkPeer,
  DEFAULT_DNS_PEERS,
  DEFAULT_DNS_PORTS,
  EnvoySettings,
  NetworkSettings,
  KeySpec,
  CertificateSettings,
  ObservabilitySettings,
  DEFAULT_CA_GENERATION,
  ResourcePair,
  OWNER_KEYS,
  WorkloadKind,
  MeshConfig,
} from "./schema";
export {
  ServiceModel,
  BuiltServiceModel,
  AdoptedServiceModel,
  WorkloadModel,
  ResolvedEgress,
  PeerIdentity,
  CallerModel,
  UpstreamModel,
  ClientModel,
  JwtModel,
  GatewayRouteModel,
  GatewayModel,
  MeshModel,
  egressEnvName,
} from "./model";
export { GATEWAY_MIN_READY_SECONDS, GATEWAY_LISTEN_PORT, GATEWAY_DEFAULT_PORT } from "./gateway";
export { PROJECT } from "../names";

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
  "observability",
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

/**
 * A `services[i]` entry that fits neither form is one invalid_union issue holding each form's
 * issues: the entry's own form is the one `workload` picks (zod 4 reports a form's issues directly
 * when only that form got past the keys it must have).
 */
function serviceBranchIssues(
  issue: z.core.$ZodIssue,
  raw: Record<string, unknown>,
): z.core.$ZodIssue[] {
  const [list, index] = issue.path;
  if (
    issue.code !== "invalid_union" ||
    list !== "services" ||
    typeof index !== "number" ||
    issue.path.length !== 2
  )
    return [issue];
  const entry = Array.isArray(raw.services) ? (raw.services[index] as unknown) : undefined;
  const adopted = entry !== null && typeof entry === "object" && "workload" in entry;
  // The union's forms in order: built, adopted.
  return (issue.errors[adopted ? 1 : 0] ?? []).map((i) => ({
    ...i,
    path: [...issue.path, ...i.path],
  }));
}

/** Appends `value` to the list `index` holds at `key`. */
function addTo<T>(index: Map<string, T[]>, key: string, value: T): void {
  const list = index.get(key);
  if (list) list.push(value);
  else index.set(key, [value]);
}

/** Validates raw config and derives the mesh model. Throws MeshConfigError listing every problem. */
export function parseMeshConfig(raw: Record<string, unknown>): MeshModel {
  const parsed = rawMeshSchema.safeParse(raw);
  if (!parsed.success) {
    throw new MeshConfigError(
      parsed.error.issues
        .flatMap((i) => serviceBranchIssues(i, raw))
        .map((issue) => {
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
  // Each service's callers and gateway routes, indexed once by callee, rather than every
  // service's scan of the whole config (quadratic in the number of services).
  const serviceCallers = new Map<string, CallerModel[]>();
  const clientCallers = new Map<string, CallerModel[]>();
  const gatewayRoutes = new Map<string, RawGateway["routes"]>();
  // The schema turned every `calls` entry into its object form.
  const rules = (call: { methods?: string[]; paths?: string[] }) => ({
    methods: call.methods ?? [],
    paths: call.paths ?? [],
  });
  for (const s of cfg.services)
    for (const call of s.calls)
      addTo(serviceCallers, call.service, {
        kind: "service",
        ...identity(s.name),
        ...rules(call),
      });
  for (const c of cfg.clients)
    for (const call of c.calls)
      addTo(clientCallers, call.service, {
        kind: "client",
        name: c.name,
        spiffeId: clientSpiffeId(c.name),
        ...rules(call),
      });
  for (const route of cfg.gateway?.routes ?? []) addTo(gatewayRoutes, route.service, route);
  const services = [...cfg.services].sort(byName).map((svc): ServiceModel => {
    const { fqdn, spiffeId } = identity(svc.name);
    const routes = gatewayRoutes.get(svc.name);
    // Who calls this service, with the rules of their `calls` entry: services, then clients,
    // each in config order before the (stable) sort.
    const callers = [
      ...(serviceCallers.get(svc.name) ?? []).sort(byName),
      ...(clientCallers.get(svc.name) ?? []).sort(byName),
      ...(cfg.gateway && routes
        ? [
            {
              kind: "gateway" as const,
              ...identity(cfg.gateway.name),
              methods: [],
              paths: gatewayPaths(routes, svc.name),
            },
          ]
        : []),
    ];
    const upstreams = svc.calls.map((call) => upstreamOf(call.service)).sort(byName);
    const common = {
      name: svc.name,
      port: svc.port,
      exposeDirectPort: svc.exposeDirectPort,
      imagePullSecrets: [...new Set([...cfg.imagePullSecrets, ...svc.imagePullSecrets])],
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
    if (svc.workload)
      return {
        ...common,
        adopted: true,
        workload: { ...svc.workload },
        terminationGracePeriodSeconds: svc.terminationGracePeriodSeconds,
      };
    return {
      ...common,
      adopted: false,
      workload: { kind: svc.kind, name: objectNames(svc.name).deployment },
      image: svc.image,
      replicas: svc.autoscaling?.minReplicas ?? svc.replicas ?? 1,
      ...(svc.autoscaling ? { autoscaling: svc.autoscaling } : {}),
      resources: svc.resources,
      runAsUser: svc.runAsUser,
      preStopSeconds: svc.preStopSeconds,
      terminationGracePeriodSeconds: svc.terminationGracePeriodSeconds ?? svc.preStopSeconds + 20,
      env: svc.env,
      envFrom: svc.envFrom,
      ...(svc.command ? { command: svc.command } : {}),
      ...(svc.args ? { args: svc.args } : {}),
      probes: svc.probes,
      volumes: svc.volumes,
      podLabels: svc.podLabels,
      podAnnotations: svc.podAnnotations,
      nodeSelector: svc.nodeSelector,
      tolerations: svc.tolerations,
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
    observability: {
      ...cfg.observability,
      metrics: {
        ...cfg.observability.metrics,
        discovery: metricsDiscovery(cfg),
      },
    },
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
