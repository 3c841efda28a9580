/**
 * Names shared by the builders, and the guard that turns a SidecarSpec into the canonical form
 * every builder assumes (peers sorted and de-duplicated, ports distinct).
 */
import { EnvoyPorts, Peer, SidecarSpec } from "./model";
import { Duration } from "./types";

/** Listener names (also their stat prefixes). */
export const LISTENER_NAMES = {
  inbound: "inbound",
  outbound: "outbound",
  health: "health",
  metrics: "metrics",
} as const;

/** Fixed cluster names; upstream clusters are named by `upstreamClusterName`. */
export const CLUSTER_NAMES = {
  localApp: "local_app",
  admin: "admin",
} as const;

/** Paths the health and metrics listeners expose, and what they map to on the admin API. */
export const EXPOSED_PATHS = {
  health: "/healthz/ready",
  /** Envoy's admin readiness endpoint: 200 only once the server is LIVE. */
  adminReady: "/ready",
  metrics: "/stats/prometheus",
} as const;

/** The cluster that carries calls to one dependency. */
export function upstreamClusterName(peer: Peer): string {
  return `upstream_${peer.name}`;
}

/** The cluster (and, for tcp, the listener) of one egress target. */
export function egressName(egress: { name: string }): string {
  return `egress_${egress.name}`;
}

/**
 * Seconds as a protobuf JSON Duration: whole seconds plain ("300s"), fractions with 3 digits
 * ("0.250s"), as the JSON mapping writes them.
 */
export function envoyDuration(seconds: number): Duration {
  const millis = Math.round(seconds * 1000);
  return (millis % 1000 === 0 ? `${millis / 1000}s` : `${(millis / 1000).toFixed(3)}s`) as Duration;
}

const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function checkPeer(peer: Peer, where: string): void {
  if (!LABEL.test(peer.name)) {
    throw new Error(`${where}: "${peer.name}" is not a DNS-1123 label`);
  }
  const labels = peer.fqdn.split(".");
  if (labels.length < 2 || !labels.every((l) => LABEL.test(l)) || labels[0] !== peer.name) {
    throw new Error(
      `${where}: fqdn "${peer.fqdn}" must be "${peer.name}.<namespace>..." (DNS labels)`,
    );
  }
}

/** Sorted by name, duplicates (same name and fqdn) dropped; a name with two fqdns is a bug. */
function canonicalPeers<P extends Peer>(peers: P[], where: string): P[] {
  const byName = new Map<string, P>();
  for (const peer of peers) {
    checkPeer(peer, where);
    const seen = byName.get(peer.name);
    if (seen && seen.fqdn !== peer.fqdn) {
      throw new Error(`${where}: "${peer.name}" given as both ${seen.fqdn} and ${peer.fqdn}`);
    }
    byName.set(peer.name, { ...peer });
  }
  return [...byName.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/**
 * Validates a spec and returns its canonical form. Peer order is not meaningful in the mesh
 * config, so sorting here keeps the generated files (and the pod checksum) independent of it.
 * Errors here mean the model handed the builders something Envoy would refuse to start with.
 */
export function canonicalSpec(spec: SidecarSpec): SidecarSpec {
  const ports: [string, number][] = [
    ...(Object.keys(spec.ports) as (keyof EnvoyPorts)[]).map((k): [string, number] => [
      `ports.${k}`,
      spec.ports[k],
    ]),
    ["appPort", spec.appPort],
  ];
  const used = new Map<number, string>();
  for (const [key, port] of ports) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) {
      throw new Error(`${key}: ${port} is not a TCP port (1-65535)`);
    }
    // The app and every Envoy listener share the pod's network namespace.
    const clash = used.get(port);
    if (clash) throw new Error(`${key}: port ${port} is already used by ${clash}`);
    used.set(port, key);
  }
  for (const [key, dir] of Object.entries(spec.paths)) {
    if (!dir.startsWith("/") || dir.endsWith("/")) {
      throw new Error(`paths.${key}: "${dir}" must be absolute, without a trailing slash`);
    }
  }
  // Both are mounts; one inside or on top of the other would hide files.
  const { configDir, certDir } = spec.paths;
  if (
    configDir === certDir ||
    configDir.startsWith(`${certDir}/`) ||
    certDir.startsWith(`${configDir}/`)
  ) {
    throw new Error(`paths: configDir "${configDir}" and certDir "${certDir}" must not nest`);
  }
  checkPeer({ name: spec.service, fqdn: spec.fqdn }, "service");
  return {
    ...spec,
    ports: { ...spec.ports },
    paths: { ...spec.paths },
    callers: canonicalPeers(spec.callers, "callers"),
    upstreams: canonicalPeers(spec.upstreams, "upstreams"),
  };
}
