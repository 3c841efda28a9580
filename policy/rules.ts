/**
 * The mesh's guardrails as pure functions: each rule takes one resource as the policy engine
 * shows it (type token + input properties) and returns its violations as messages.
 *
 * Nothing here imports Pulumi or the program: the rules run in the policy pack (index.ts), and
 * in tests against the resources a mocked program run registers. The names below (container
 * `envoy`, ConfigMap key `envoy.json`, port `mtls`, `<name>-envoy-<hash>` / `<name>-tls`) are the
 * program's contract; tests/policy.spec.ts checks they still match components/.
 *
 * The rules only read properties (never catch): during preview an unknown value throws the
 * policy SDK's UnknownValueError, which the SDK turns into an advisory "can't run" note.
 */

/** One resource, as a policy sees it: its type token and its inputs. */
export interface PolicyResource {
  type: string;
  props: Record<string, unknown>;
}

/** What the rules need to know about the stack being checked. */
export interface MeshContext {
  /** Stack name; "" when unknown, which the port rule treats as strict (fails closed). */
  stack: string;
  /** The mesh namespace (`bookapi-mesh:namespace`). */
  namespace: string;
  /** Envoy's inbound (mTLS) port (`bookapi-mesh:envoy.ports.inbound`). */
  inboundPort: number;
  /** Stacks in which a mesh Service may publish nothing but the mTLS port. */
  strictStacks: readonly string[];
  /** `bookapi-mesh:podSecurity`; a restricted stack is strict for the gateway-token rule too. */
  podSecurity?: string;
}

/** A rule: its policy name and description, the types it inspects, and the check. */
export interface Rule {
  name: string;
  description: string;
  types: readonly string[];
  check: (resource: PolicyResource, ctx: MeshContext) => string[];
  /** Whether the rule reads ctx.strictStacks (the pack then makes it a policy config option). */
  usesStrictStacks?: boolean;
}

/** Names the program gives things, which the rules rely on. */
export const MESH = {
  project: "bookapi-mesh",
  partOfLabel: "app.kubernetes.io/part-of",
  sidecarName: "envoy",
  /** Envoy ConfigMaps are versions named `<name>-envoy-<content hash>`. */
  configMapInfix: "-envoy-",
  secretSuffix: "-tls",
  /** cert-manager mode: the Secret the workload's Certificate writes, mounted projected. */
  certManagerSecretSuffix: "-cert",
  bootstrapKey: "envoy.json",
  inboundListener: "inbound",
  mtlsPortName: "mtls",
  /** The ingress gateway's objects carry this component label; its Service publishes `https`. */
  componentLabel: "app.kubernetes.io/component",
  gatewayComponent: "gateway",
  gatewayPortName: "https",
  /** The gateway's TLS listener in its pod (components/config/gateway.ts GATEWAY_LISTEN_PORT). */
  gatewayTargetPort: 8443,
  /** Route metadata (namespace, key) marking a gateway route public on purpose. */
  publicRouteMetadata: ["bookapi-mesh", "public"],
  jwtAuthnFilter: "envoy.filters.http.jwt_authn",
  defaultNamespace: "default",
  defaultInboundPort: 15001,
  defaultStrictStacks: ["prod"],
  /** On an adopted workload's pods: the mesh service they serve (its ConfigMap and Secret). */
  serviceLabel: "bookapi-mesh/service",
  /** `disabled` on a workload or its pods: the injector leaves it alone, and so does the pack. */
  injectLabel: "bookapi-mesh/inject",
  /** On an adopted service's ServiceAccount: the workload it adopts, `<Kind>/<name>`. */
  adoptedWorkloadAnnotation: "bookapi-mesh/workload",
} as const;

export const TYPES = {
  deployment: "kubernetes:apps/v1:Deployment",
  statefulSet: "kubernetes:apps/v1:StatefulSet",
  daemonSet: "kubernetes:apps/v1:DaemonSet",
  replicaSet: "kubernetes:apps/v1:ReplicaSet",
  job: "kubernetes:batch/v1:Job",
  cronJob: "kubernetes:batch/v1:CronJob",
  pod: "kubernetes:core/v1:Pod",
  configMap: "kubernetes:core/v1:ConfigMap",
  service: "kubernetes:core/v1:Service",
  serviceAccount: "kubernetes:core/v1:ServiceAccount",
} as const;

const DOWNSTREAM_TLS_CONTEXT =
  "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext";

// ---------------------------------------------------------------------------------------------
// Reading untyped properties

type Obj = Record<string, unknown>;

function obj(value: unknown): Obj | undefined {
  return value !== null && typeof value === "object" && !Array.isArray(value)
    ? (value as Obj)
    : undefined;
}

function list(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function objects(value: unknown): Obj[] {
  return list(value).flatMap((v): Obj[] => {
    const o = obj(v);
    return o === undefined ? [] : [o];
  });
}

function str(value: unknown): string | undefined {
  return typeof value === "string" ? value : undefined;
}

/** The value at a path of object keys, or undefined where the path breaks off. */
function at(value: unknown, ...path: string[]): unknown {
  let current = value;
  for (const key of path) {
    const o = obj(current);
    if (o === undefined) return undefined;
    current = o[key];
  }
  return current;
}

function metadataName(props: Obj): string | undefined {
  return str(at(props, "metadata", "name"));
}

/** `Kind "name"`, for messages. */
function describe(resource: PolicyResource): string {
  const kind = resource.type.slice(resource.type.lastIndexOf(":") + 1);
  return `${kind} "${metadataName(resource.props) ?? "(unnamed)"}"`;
}

/** Part of the mesh: labelled as ours, or in the mesh namespace (absent = "default"). */
export function inMesh(props: Obj, ctx: MeshContext): boolean {
  if (str(at(props, "metadata", "labels", MESH.partOfLabel)) === MESH.project) return true;
  return (str(at(props, "metadata", "namespace")) ?? MESH.defaultNamespace) === ctx.namespace;
}

/** The pod spec of a pod-bearing object, or undefined for other types. */
function podSpec(resource: PolicyResource): Obj | undefined {
  const p = resource.props;
  switch (resource.type) {
    case TYPES.pod:
      return obj(at(p, "spec"));
    case TYPES.cronJob:
      return obj(at(p, "spec", "jobTemplate", "spec", "template", "spec"));
    case TYPES.deployment:
    case TYPES.statefulSet:
    case TYPES.daemonSet:
    case TYPES.replicaSet:
    case TYPES.job:
      return obj(at(p, "spec", "template", "spec"));
    default:
      return undefined;
  }
}

function parseJson(text: string): { value: unknown } | { error: string } {
  try {
    return { value: JSON.parse(text) as unknown };
  } catch (err) {
    return { error: err instanceof Error ? err.message : String(err) };
  }
}

/** The parsed `envoy.json` of a ConfigMap; undefined when it has none. */
function bootstrapOf(
  resource: PolicyResource,
): { data: Obj; bootstrap: unknown } | { data: Obj; error: string } | undefined {
  if (resource.type !== TYPES.configMap) return undefined;
  const data = obj(resource.props.data);
  const text = str(data?.[MESH.bootstrapKey]);
  if (data === undefined || text === undefined) return undefined;
  const parsed = parseJson(text);
  return "error" in parsed ? { data, error: parsed.error } : { data, bootstrap: parsed.value };
}

// ---------------------------------------------------------------------------------------------
// 1. Every mesh workload carries the Envoy sidecar, with its config and certificates

/** A workload's pod template labels. */
function podLabels(resource: PolicyResource): Obj {
  return obj(at(resource.props, "spec", "template", "metadata", "labels")) ?? {};
}

/** Opted out of the mesh on purpose (`bookapi-mesh/inject: disabled`, on it or its pods). */
function injectionDisabled(resource: PolicyResource): boolean {
  const own = str(at(resource.props, "metadata", "labels", MESH.injectLabel));
  return own === "disabled" || str(podLabels(resource)[MESH.injectLabel]) === "disabled";
}

export function checkEnvoySidecar(resource: PolicyResource, ctx: MeshContext): string[] {
  const workload = resource.type === TYPES.deployment || resource.type === TYPES.statefulSet;
  if (!workload || !inMesh(resource.props, ctx) || injectionDisabled(resource)) return [];
  const what = describe(resource);
  // An adopted workload's pods serve the service their label names; the mesh's own are named so.
  const name = str(podLabels(resource)[MESH.serviceLabel]) ?? metadataName(resource.props);
  if (name === undefined) {
    return [`${what} has no metadata.name, so its Envoy ConfigMap and Secret cannot be checked`];
  }
  const pod = podSpec(resource);
  // Found by name, never by identity: the policy SDK hands out a fresh proxy on every access.
  const isSidecar = (c: Obj) => c.name === MESH.sidecarName;
  const container = objects(pod?.containers).find(isSidecar);
  const initContainer = container ? undefined : objects(pod?.initContainers).find(isSidecar);
  const sidecar = container ?? initContainer;
  if (sidecar === undefined) {
    return [
      `${what} has no Envoy sidecar: no container (or initContainer with restartPolicy Always) named "${MESH.sidecarName}"`,
    ];
  }
  const problems: string[] = [];
  if (initContainer !== undefined && initContainer.restartPolicy !== "Always") {
    problems.push(
      `${what}: initContainer "${MESH.sidecarName}" lacks restartPolicy Always, so it is not a native sidecar (the app would wait for Envoy to exit)`,
    );
  }

  // Which ConfigMaps and Secrets the sidecar's mounted volumes carry (projected ones included).
  const mounted = new Set(objects(sidecar.volumeMounts).flatMap((m) => str(m.name) ?? []));
  const configMaps: string[] = [];
  const secrets: string[] = [];
  for (const volume of objects(pod?.volumes)) {
    if (!mounted.has(str(volume.name) ?? "")) continue;
    const cm = str(at(volume, "configMap", "name"));
    const secret = str(at(volume, "secret", "secretName"));
    if (cm !== undefined) configMaps.push(cm);
    if (secret !== undefined) secrets.push(secret);
    for (const source of objects(at(volume, "projected", "sources"))) {
      const pcm = str(at(source, "configMap", "name"));
      const psecret = str(at(source, "secret", "name"));
      if (pcm !== undefined) configMaps.push(pcm);
      if (psecret !== undefined) secrets.push(psecret);
    }
  }
  const configMapPrefix = `${name}${MESH.configMapInfix}`;
  const secret = `${name}${MESH.secretSuffix}`;
  const certManagerSecret = `${name}${MESH.certManagerSecretSuffix}`;
  if (
    !configMaps.some(
      (cm) =>
        /^[0-9a-f]+$/.test(cm.slice(configMapPrefix.length)) && cm.startsWith(configMapPrefix),
    )
  ) {
    problems.push(
      `${what}: the Envoy sidecar does not mount a ConfigMap "${configMapPrefix}<hash>"`,
    );
  }
  if (!secrets.includes(secret) && !secrets.includes(certManagerSecret)) {
    problems.push(
      `${what}: the Envoy sidecar does not mount Secret "${secret}" (or "${certManagerSecret}", its cert-manager Certificate's)`,
    );
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// 2. The inbound listener requires a client certificate signed by a CA served by SDS

/** Whether an Envoy DataSource names a non-empty source. */
function nonEmptyDataSource(source: unknown): boolean {
  return [
    at(source, "filename"),
    at(source, "inline_string"),
    at(source, "inline_bytes"),
    at(source, "environment_variable"),
  ].some((v) => typeof v === "string" && v.trim() !== "");
}

/** What is wrong with a trust SDS reference, resolved against the ConfigMap's files. */
function trustProblem(sds: Obj, data: Obj): string | undefined {
  const secretName = str(sds.name);
  if (!secretName) return "its trust SDS config names no secret";
  const path =
    str(at(sds, "sds_config", "path_config_source", "path")) ?? str(at(sds, "sds_config", "path"));
  if (path === undefined) {
    return `trust secret "${secretName}" is not served by file-based SDS, so its CA cannot be verified`;
  }
  const key = path.slice(path.lastIndexOf("/") + 1);
  const text = str(data[key]);
  if (text === undefined) return `trust SDS file "${path}" is not in this ConfigMap`;
  const parsed = parseJson(text);
  if ("error" in parsed) return `trust SDS file "${key}" is not valid JSON (${parsed.error})`;
  const secret = objects(at(parsed.value, "resources")).find((r) => r.name === secretName);
  if (secret === undefined) return `trust SDS file "${key}" has no secret "${secretName}"`;
  if (!nonEmptyDataSource(at(secret, "validation_context", "trusted_ca"))) {
    return `trust secret "${secretName}" in "${key}" has no trusted_ca`;
  }
  return undefined;
}

export function checkInboundMtls(resource: PolicyResource): string[] {
  const parsed = bootstrapOf(resource);
  if (parsed === undefined) return [];
  const what = describe(resource);
  if ("error" in parsed) {
    return [`${what}: ${MESH.bootstrapKey} is not valid JSON, so inbound mTLS cannot be verified`];
  }
  const problems: string[] = [];
  const listeners = objects(at(parsed.bootstrap, "static_resources", "listeners"));
  for (const listener of listeners.filter((l) => l.name === MESH.inboundListener)) {
    const chains = [
      ...objects(listener.filter_chains),
      ...(obj(listener.default_filter_chain) ? [obj(listener.default_filter_chain) as Obj] : []),
    ];
    if (chains.length === 0) {
      problems.push(`${what}: listener "${MESH.inboundListener}" has no filter chain`);
    }
    chains.forEach((chain, i) => {
      const where = `${what}: listener "${MESH.inboundListener}" filter chain ${i}`;
      const tls = obj(at(chain, "transport_socket", "typed_config"));
      if (tls === undefined || tls["@type"] !== DOWNSTREAM_TLS_CONTEXT) {
        problems.push(`${where} does not terminate TLS (no DownstreamTlsContext)`);
        return;
      }
      if (tls.require_client_certificate !== true) {
        problems.push(
          `${where} does not set require_client_certificate: true, so callers without a certificate get in`,
        );
      }
      const common = obj(tls.common_tls_context);
      const sds =
        obj(common?.validation_context_sds_secret_config) ??
        obj(at(common, "combined_validation_context", "validation_context_sds_secret_config"));
      if (sds === undefined) {
        problems.push(`${where} has no trusted CA via SDS (validation_context_sds_secret_config)`);
        return;
      }
      const problem = trustProblem(sds, parsed.data);
      if (problem !== undefined) problems.push(`${where}: ${problem}`);
    });
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// 3. Envoy's admin interface listens on loopback only

/** 127.0.0.0/8 or ::1. */
export function isLoopback(address: string): boolean {
  return (
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(address) ||
    address === "::1" ||
    address === "0:0:0:0:0:0:0:1"
  );
}

export function checkAdminLoopback(resource: PolicyResource): string[] {
  const parsed = bootstrapOf(resource);
  if (parsed === undefined) return [];
  const what = describe(resource);
  if ("error" in parsed) {
    return [
      `${what}: ${MESH.bootstrapKey} is not valid JSON, so the admin address cannot be verified`,
    ];
  }
  // No admin, no address, or a pipe (a Unix socket): nothing listens on the network.
  const socket = obj(at(parsed.bootstrap, "admin", "address", "socket_address"));
  if (socket === undefined) return [];
  const address = str(socket.address) ?? "";
  return isLoopback(address)
    ? []
    : [
        `${what}: Envoy admin binds to "${address}"; it must bind to 127.0.0.1 or ::1 (use kubectl port-forward)`,
      ];
}

// ---------------------------------------------------------------------------------------------
// 4. No private key in a ConfigMap

const PRIVATE_KEY_PEM = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/;

export function checkNoPrivateKeyInConfigMap(resource: PolicyResource): string[] {
  if (resource.type !== TYPES.configMap) return [];
  const what = describe(resource);
  const found: string[] = [];
  for (const [field, decode] of [
    ["data", (v: string) => v],
    ["binaryData", (v: string) => Buffer.from(v, "base64").toString("latin1")],
  ] as const) {
    for (const [key, value] of Object.entries(obj(resource.props[field]) ?? {})) {
      const text = str(value);
      const marker = text === undefined ? null : PRIVATE_KEY_PEM.exec(decode(text));
      if (marker) {
        // Name the marker, never the key material.
        found.push(
          `${what}: ${field} key "${key}" holds a private key (${marker[0]}); keys belong in a Secret`,
        );
      }
    }
  }
  return found;
}

// ---------------------------------------------------------------------------------------------
// 5. Images pinned by tag (not latest) or sha256 digest

/** Why an image reference is not pinned; undefined when it is. */
export function imagePinProblem(image: unknown): string | undefined {
  if (typeof image !== "string" || image.trim() === "") return "has no image";
  const digestAt = image.indexOf("@");
  if (digestAt >= 0) {
    const digest = image.slice(digestAt + 1);
    return /^sha256:[0-9a-f]{64}$/.test(digest)
      ? undefined
      : `"${image}" has a digest that is not sha256:<64 hex digits>`;
  }
  // A tag follows the last ':' after the last '/' (a ':' before it is a registry port).
  const colon = image.lastIndexOf(":");
  if (colon <= image.lastIndexOf("/")) return `"${image}" has no tag, which means latest`;
  return image.slice(colon + 1) === "latest" ? `"${image}" uses the latest tag` : undefined;
}

export function checkImagesPinned(resource: PolicyResource): string[] {
  const pod = podSpec(resource);
  if (pod === undefined) return [];
  const what = describe(resource);
  const problems: string[] = [];
  for (const field of ["initContainers", "containers", "ephemeralContainers"] as const) {
    for (const container of objects(pod[field])) {
      const problem = imagePinProblem(container.image);
      if (problem !== undefined) {
        const kind = field === "containers" ? "container" : field.replace(/s$/, "");
        problems.push(
          `${what}: ${kind} "${str(container.name) ?? "?"}" ${problem}; pin a version tag or @sha256 digest`,
        );
      }
    }
  }
  return problems;
}

// ---------------------------------------------------------------------------------------------
// 6. In strict stacks (prod) a mesh Service publishes only the mTLS port

/** Whether the stack is strict; an unknown stack ("") is, so the rule fails closed. */
export function isStrictStack(ctx: MeshContext): boolean {
  return ctx.stack === "" || ctx.strictStacks.includes(ctx.stack);
}

export function checkServicePorts(resource: PolicyResource, ctx: MeshContext): string[] {
  if (resource.type !== TYPES.service || !inMesh(resource.props, ctx) || !isStrictStack(ctx)) {
    return [];
  }
  const what = describe(resource);
  const stack = ctx.stack === "" ? "an unknown stack (treated as strict)" : `stack "${ctx.stack}"`;
  const allowedTargets: unknown[] = [MESH.mtlsPortName, ctx.inboundPort];
  // The gateway's pod is Envoy alone: its TLS listener is all there is to publish.
  const gateway =
    str(at(resource.props, "metadata", "labels", MESH.componentLabel)) === MESH.gatewayComponent;
  return objects(at(resource.props, "spec", "ports")).flatMap((port) => {
    const target = port.targetPort ?? port.port;
    if (port.name === MESH.mtlsPortName && allowedTargets.includes(target)) return [];
    if (gateway && port.name === MESH.gatewayPortName && target === MESH.gatewayTargetPort)
      return [];
    const label = `${String(port.port)}${typeof port.name === "string" ? ` (${port.name})` : ""}`;
    return [
      `${what} publishes port ${label} -> ${String(target)} in ${stack}; only the "${MESH.mtlsPortName}" port to Envoy's inbound ${ctx.inboundPort} may be published there`,
    ];
  });
}

// ---------------------------------------------------------------------------------------------
// 7. In strict stacks the gateway forwards nothing from outside without a token check

/** Every route of the HTTP connection managers of the listeners on `port`. */
function httpRoutesOn(bootstrap: unknown, port: number): Obj[] {
  return objects(at(bootstrap, "static_resources", "listeners"))
    .filter((l) => at(l, "address", "socket_address", "port_value") === port)
    .flatMap((l) => objects(l.filter_chains))
    .flatMap((fc) => objects(fc.filters))
    .flatMap((f) => objects(at(f, "typed_config", "route_config", "virtual_hosts")))
    .flatMap((vh) => objects(vh.routes));
}

export function checkGatewayRoutesNeedTokens(resource: PolicyResource, ctx: MeshContext): string[] {
  const strict = isStrictStack(ctx) || ctx.podSecurity === "restricted";
  const labels = at(resource.props, "metadata", "labels");
  if (!strict || str(at(labels, MESH.componentLabel)) !== MESH.gatewayComponent) return [];
  const parsed = bootstrapOf(resource);
  if (parsed === undefined || "error" in parsed) return [];
  const [ns, key] = MESH.publicRouteMetadata;
  // The edge listener only: the health and metrics listeners are for the cluster's own probes.
  return httpRoutesOn(parsed.bootstrap, MESH.gatewayTargetPort).flatMap((route) => {
    // Direct responses (metadata documents, 404s) forward nothing.
    if (obj(route.route) === undefined) return [];
    const requirement = at(
      route,
      "typed_per_filter_config",
      MESH.jwtAuthnFilter,
      "requirement_name",
    );
    if (str(requirement) !== undefined) return [];
    if (at(route, "metadata", "filter_metadata", ns, key) === true) return [];
    return [
      `${describe(resource)}: the gateway forwards ${JSON.stringify(route.match)} to ${String(at(route, "route", "cluster"))} with no token check in a strict stack; set gateway.auth, or mark the route public`,
    ];
  });
}

// ---------------------------------------------------------------------------------------------
// 8. Every adopted service has exactly one workload carrying its sidecar (a stack policy)

/**
 * An adopted service (its ServiceAccount names the workload it adopts) needs exactly one
 * Deployment or StatefulSet in the stack whose pods carry its sidecar: none means a typo in
 * `services[].workload` or an injector registered too late, and its pods would run without the
 * mesh; two means the label matched a second workload. `elsewhere` lists services whose
 * workloads another tool deploys (e.g. Helm with `npm run inject` as post-renderer).
 */
export function checkAdoptedWorkloads(
  resources: PolicyResource[],
  ctx: MeshContext,
  elsewhere: readonly string[] = [],
): string[] {
  const carriers = resources.filter((r) => {
    if (r.type !== TYPES.deployment && r.type !== TYPES.statefulSet) return false;
    const pod = podSpec(r);
    const sidecar = (c: Obj) => c.name === MESH.sidecarName;
    return objects(pod?.containers).some(sidecar) || objects(pod?.initContainers).some(sidecar);
  });
  return resources.flatMap((r) => {
    if (r.type !== TYPES.serviceAccount || !inMesh(r.props, ctx)) return [];
    const adopts = str(at(r.props, "metadata", "annotations", MESH.adoptedWorkloadAnnotation));
    const service = metadataName(r.props);
    if (adopts === undefined || service === undefined || elsewhere.includes(service)) return [];
    const found = carriers.filter((w) => str(podLabels(w)[MESH.serviceLabel]) === service);
    if (found.length === 1) return [];
    return [
      found.length === 0
        ? `service "${service}" adopts ${adopts}, but no workload in this stack carries its sidecar: check services[].workload's kind and name, and that the injector is registered before the workload (or list the service in adoptedElsewhere if another tool deploys it)`
        : `service "${service}" adopts ${adopts}, but ${found.length} workloads carry its sidecar: ${found.map(describe).join(", ")}; one workload per service`,
    ];
  });
}

// ---------------------------------------------------------------------------------------------

const POD_TYPES = [
  TYPES.deployment,
  TYPES.statefulSet,
  TYPES.daemonSet,
  TYPES.replicaSet,
  TYPES.job,
  TYPES.cronJob,
  TYPES.pod,
] as const;

/** Every rule of the pack, in the order policies are listed. */
export const RULES: readonly Rule[] = [
  {
    name: "mesh-deployment-has-envoy-sidecar",
    description:
      "Every Deployment and StatefulSet in the mesh (unless labelled bookapi-mesh/inject: disabled) runs the Envoy sidecar (container, or native-sidecar initContainer) mounting its service's <name>-envoy-<hash> ConfigMap and <name>-tls Secret.",
    types: [TYPES.deployment, TYPES.statefulSet],
    check: checkEnvoySidecar,
  },
  {
    name: "envoy-inbound-requires-client-certificate",
    description:
      "Envoy's inbound listener terminates TLS, requires a client certificate and trusts a CA served by SDS.",
    types: [TYPES.configMap],
    check: checkInboundMtls,
  },
  {
    name: "envoy-admin-on-loopback",
    description: "Envoy's admin interface binds to 127.0.0.1 or ::1 only.",
    types: [TYPES.configMap],
    check: checkAdminLoopback,
  },
  {
    name: "no-private-key-in-configmap",
    description: "No ConfigMap holds a PEM private key; keys belong in Secrets.",
    types: [TYPES.configMap],
    check: checkNoPrivateKeyInConfigMap,
  },
  {
    name: "images-pinned",
    description:
      "Every container and initContainer image is pinned by a tag other than latest or by an @sha256 digest.",
    types: POD_TYPES,
    check: checkImagesPinned,
  },
  {
    name: "strict-stack-services-publish-only-mtls",
    description:
      "In strict stacks (prod), a mesh Service publishes only the mTLS port (the gateway's Service only its https port); app ports stay unreachable from outside the SAN allow-list.",
    types: [TYPES.service],
    check: checkServicePorts,
    usesStrictStacks: true,
  },
  {
    name: "strict-stack-gateway-routes-need-tokens",
    description:
      "In strict stacks (prod, and any stack with podSecurity restricted), every route the ingress gateway forwards checks a bearer token unless the stack marks it public.",
    types: [TYPES.configMap],
    check: checkGatewayRoutesNeedTokens,
    usesStrictStacks: true,
  },
];

/** Every violation of every rule for one resource, tagged with the rule's name. */
export function violations(
  resource: PolicyResource,
  ctx: MeshContext,
  rules: readonly Rule[] = RULES,
): { rule: string; message: string }[] {
  return rules.flatMap((rule) =>
    rule.types.includes(resource.type)
      ? rule.check(resource, ctx).map((message) => ({ rule: rule.name, message }))
      : [],
  );
}
