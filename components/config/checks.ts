/**
 * Cross-field rules the per-field schema cannot express: the topology, the port plan, calls,
 * egress, and app settings that collide with what the mesh owns.
 */
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
  PODS_SERVICE_SUFFIX,
  serviceFqdn,
  serviceHostnames,
} from "../names";
import { KUBERNETES_FEATURES, MIN_STOP_WINDOW_SECONDS, kubernetesMinor } from "./fields";
import { RawAdoptedService, RawBuiltService, RawMesh, RawService } from "./schema";
import { resolveEgress } from "./model";
import { meshSecretNames, gatewayProblems } from "./gateway";

/** Cross-field rules the per-field schema cannot express: the topology and the port plan. */
export function topologyProblems(cfg: RawMesh): string[] {
  const problems: string[] = [];
  const names = cfg.services.map((s) => s.name);
  const known = new Set(names);
  // Indexes built once: a check per service or client that scanned the whole list made parsing
  // quadratic in the number of services.
  const firstService = firstIndexes(names);
  const firstClient = firstIndexes(cfg.clients.map((c) => c.name));
  let meshSecrets: Set<string> | undefined;
  const knownList = knownServices(known);
  const workloads = workloadIndex(cfg);

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
    if (
      client.secret?.namespace === cfg.namespace &&
      (meshSecrets ??= new Set(meshSecretNames(cfg))).has(secretName)
    )
      problems.push(
        `${key}.secret.name: "${secretName}" is a Secret the mesh writes in ${cfg.namespace}; pick another name`,
      );
    if (firstClient.get(client.name) !== i)
      problems.push(`${key}.name: duplicate client name "${client.name}"`);
    problems.push(...callProblems(key, client.calls, known, knownList));
  });

  if (cfg.gateway) problems.push(...gatewayProblems(cfg, cfg.gateway, known, knownList));

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
    problems.push(
      ...(svc.workload
        ? adoptedProblems(cfg, svc, i, key, workloads)
        : appSettingProblems(cfg, svc, key)),
    );
    problems.push(...egressProblems(cfg, svc, key, meshHosts));
    if (firstService.get(svc.name) !== i)
      problems.push(`${key}.name: duplicate service name "${svc.name}"`);
    const clash = meshPorts.find(([, p]) => p === svc.port);
    if (clash)
      problems.push(
        `${key}.port: ${svc.port} is Envoy's ${clash[0]} port (envoy.ports.${clash[0]}); pick another app port`,
      );
    problems.push(...callProblems(key, svc.calls, known, knownList, svc.name));
  });
  if (cfg.certificates.issuer === "cert-manager") problems.push(...commonNameProblems(cfg));
  problems.push(...observabilityProblems(cfg));
  return problems;
}

/** observability.metrics.discovery, or its default: annotations where a scraper is let in. */
export function metricsDiscovery(cfg: RawMesh): "podMonitor" | "annotations" | "none" {
  return (
    cfg.observability.metrics.discovery ??
    (cfg.envoy.scrapeFrom.length > 0 ? "annotations" : "none")
  );
}

/** Discovery that no NetworkPolicy lets through, and alerts without the PodMonitor they read. */
function observabilityProblems(cfg: RawMesh): string[] {
  const problems: string[] = [];
  const { discovery } = cfg.observability.metrics;
  if (
    (discovery === "podMonitor" || discovery === "annotations") &&
    cfg.envoy.scrapeFrom.length === 0
  )
    problems.push(
      `${PROJECT}:observability.metrics.discovery: ${discovery} needs envoy.scrapeFrom (the Prometheus pods): without it the NetworkPolicies let no scraper reach the metrics port`,
    );
  const { alerts } = cfg.observability;
  // Envoy's gauge counts whole days: the warning fires below R days, the critical alert below
  // ceil(H / 24) days, so the warning comes first only when H <= 24 * (R - 1).
  const warnDays = Math.max(1, Math.floor(cfg.certificates.earlyRenewalHours / 48));
  const latest = 24 * (warnDays - 1);
  if (alerts.enabled && alerts.certificateExpiryHours > latest)
    problems.push(
      latest === 0
        ? `${PROJECT}:observability.alerts.certificateExpiryHours: with certificates.earlyRenewalHours ${cfg.certificates.earlyRenewalHours} the MeshCertificateRenewalMissed warning fires at 1 day left (half the window, in the whole days Envoy counts), leaving no earlier day for the critical MeshCertificateExpiring; lengthen earlyRenewalHours to 96 or more`
        : `${PROJECT}:observability.alerts.certificateExpiryHours: ${alerts.certificateExpiryHours} h would fire the critical MeshCertificateExpiring no later than the MeshCertificateRenewalMissed warning (below ${warnDays} days left: half of certificates.earlyRenewalHours, in the whole days Envoy counts); set it to ${latest} or less`,
    );
  if (cfg.observability.alerts.enabled && discovery !== "podMonitor")
    problems.push(
      `${PROJECT}:observability.alerts.enabled: the alerts read the series of the mesh's PodMonitor (its job and the sidecars' up); set observability.metrics.discovery to podMonitor`,
    );
  return problems;
}

/** X.509's upper bound on a common name (RFC 5280 ub-common-name), which cert-manager enforces. */
const MAX_COMMON_NAME = 64;

/**
 * A workload's certificate names its FQDN as common name; cert-manager refuses a Certificate whose
 * common name is longer than 64 characters (internal/apis/certmanager/validation/certificate.go).
 */
function commonNameProblems(cfg: RawMesh): string[] {
  const workloads: [string, string][] = [
    ...cfg.services.map((s, i): [string, string] => [`services[${i}].name`, s.name]),
    ...(cfg.gateway ? [["gateway.name", cfg.gateway.name] as [string, string]] : []),
  ];
  return workloads.flatMap(([key, name]) => {
    const fqdn = serviceFqdn(name, cfg.namespace, cfg.clusterDomain);
    return fqdn.length > MAX_COMMON_NAME
      ? [
          `${PROJECT}:${key}: with certificates.issuer cert-manager its certificate's common name "${fqdn}" has ${fqdn.length} characters; cert-manager refuses more than ${MAX_COMMON_NAME} (shorten the name, the namespace or clusterDomain)`,
        ]
      : [];
  });
}

/** Each value's first index in `values`. */
function firstIndexes<T>(values: T[]): Map<T, number> {
  const first = new Map<T, number>();
  values.forEach((v, i) => {
    if (!first.has(v)) first.set(v, i);
  });
  return first;
}

/**
 * The known services as an "unknown service" problem lists them: sorted once, when first needed
 * (a problem per bad call would otherwise sort them all again).
 */
function knownServices(known: Set<string>): () => string {
  let list: string | undefined;
  return () => (list ??= [...known].sort().join(", "));
}

/** A `calls` list's entries naming no known service, repeating one, or (for a service) itself. */
function callProblems(
  key: string,
  calls: { service: string }[],
  known: Set<string>,
  knownList: () => string,
  self?: string,
): string[] {
  const callees = calls.map((call) => call.service);
  const first = firstIndexes(callees);
  return callees.flatMap((callee, j) => {
    if (callee === self) return [`${key}.calls[${j}]: service "${self}" cannot call itself`];
    if (!known.has(callee))
      return [`${key}.calls[${j}]: unknown service "${callee}" (known: ${knownList()})`];
    if (first.get(callee) !== j) return [`${key}.calls[${j}]: "${callee}" is listed twice`];
    return [];
  });
}

/** A list's entries that repeat an earlier one, with their index. */
export function repeats<T>(values: T[]): [T, number][] {
  const first = firstIndexes(values);
  return values.flatMap((v, i): [T, number][] => (first.get(v) !== i ? [[v, i]] : []));
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
  const userEnv = new Set((svc.env ?? []).map((e) => e.name));
  const firstEgress = firstIndexes(svc.egress.map((x) => x.name));
  for (const e of resolveEgress(svc.egress, cfg.envoy.egressPortBase)) {
    const j = firstEgress.get(e.name) ?? -1;
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

/** Workloads by `<kind>/<name>`: the first service adopting each, and those the mesh builds. */
interface WorkloadIndex {
  firstAdopter: Map<string, number>;
  built: Set<string>;
}

function workloadIndex(cfg: RawMesh): WorkloadIndex {
  const firstAdopter = new Map<string, number>();
  const built = new Set<string>();
  cfg.services.forEach((s, i) => {
    if (!s.workload) built.add(`${s.kind}/${s.name}`);
    else if (!firstAdopter.has(`${s.workload.kind}/${s.workload.name}`))
      firstAdopter.set(`${s.workload.kind}/${s.workload.name}`, i);
  });
  return { firstAdopter, built };
}

/**
 * An adopted workload taken twice, or one the mesh builds itself; a shutdown budget too short for
 * the sidecar's drain and stop window.
 */
function adoptedProblems(
  cfg: RawMesh,
  svc: RawAdoptedService,
  i: number,
  key: string,
  workloads: WorkloadIndex,
): string[] {
  const problems: string[] = [];
  const { kind, name } = svc.workload;
  const first = workloads.firstAdopter.get(`${kind}/${name}`);
  if (first !== i)
    problems.push(
      `${key}.workload: ${kind} "${name}" is already adopted by services[${first}]; one service per workload`,
    );
  if (workloads.built.has(`${kind}/${name}`))
    problems.push(
      `${key}.workload.name: "${name}" is the ${kind} the mesh builds for service "${name}"`,
    );
  if (svc.terminationGracePeriodSeconds < cfg.envoy.drainSeconds + MIN_STOP_WINDOW_SECONDS)
    problems.push(
      `${key}.terminationGracePeriodSeconds: must be at least envoy.drainSeconds + ${MIN_STOP_WINDOW_SECONDS} (${cfg.envoy.drainSeconds + MIN_STOP_WINDOW_SECONDS}): Envoy drains, then stops`,
    );
  return problems;
}

/** Shutdown timing, replica ownership, and app settings that collide with what the mesh owns. */
function appSettingProblems(cfg: RawMesh, svc: RawBuiltService, key: string): string[] {
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
    if (metricsDiscovery(cfg) === "annotations" && annotation.startsWith(SCRAPE_ANNOTATION_PREFIX))
      problems.push(
        `${key}.podAnnotations: "${annotation}" is set by the mesh while observability.metrics.discovery is annotations`,
      );
  }
  return problems;
}
