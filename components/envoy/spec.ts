/**
 * Names shared by the builders. The builders trust their SidecarSpec: it comes from the validated
 * mesh model (components/config/), where every check lives, with peers sorted by name.
 */
import { Peer } from "./model";
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

export { EXPOSED_PATHS } from "../names";

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
