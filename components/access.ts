/**
 * Who may call whom, as readable lines (the stack output `access`): every allowed edge, sorted, so
 * `pulumi preview --diff` shows who gains or loses access. Derived from the same model the
 * allow-lists, RBAC policies and NetworkPolicies are built from.
 */
import { exposedSourceRanges, MeshModel, PeerSelector } from "./config";
import { GATEWAY_DEFAULT_PORT } from "./config";

type Selector = NonNullable<PeerSelector["podSelector"]>;

function describeSelector(s: Selector): string {
  const labels = Object.entries(s.matchLabels ?? {}).map(([k, v]) => `${k}=${v}`);
  const exprs = (s.matchExpressions ?? []).map(
    (e) => `${e.key} ${e.operator}${e.values ? ` (${e.values.join(", ")})` : ""}`,
  );
  const all = [...labels, ...exprs];
  return all.length > 0 ? all.join(",") : "any";
}

/** A NetworkPolicy peer in words: `pods{app=x} in namespaces{team=y}`. */
export function describePeer(p: PeerSelector): string {
  const pods = p.podSelector ? `pods{${describeSelector(p.podSelector)}}` : "";
  const namespaces = p.namespaceSelector
    ? `namespaces{${describeSelector(p.namespaceSelector)}}`
    : "";
  return pods && namespaces ? `${pods} in ${namespaces}` : pods || `pods in ${namespaces}`;
}

/** `GET,POST /books/*,/authors` or `any request`. */
function limits(methods: string[], paths: string[]): string {
  const m = methods.length > 0 ? methods.join(",") : "";
  const p = paths.length > 0 ? paths.join(",") : "";
  return [m, p].filter((x) => x !== "").join(" ") || "any request";
}

/**
 * Every allowed edge of the mesh, one line each, sorted: calls between services and from clients
 * and the gateway (with their method and path limits), the gateway's routes from outside, services
 * published by `expose`, direct app ports, egress, and the metrics scrapers.
 */
export function accessLines(model: MeshModel): string[] {
  const inbound = model.envoy.ports.inbound;
  const lines: string[] = [];
  for (const svc of model.services) {
    for (const c of svc.callers) {
      const who = c.kind === "client" ? `client/${c.name}` : c.name;
      lines.push(`${who} -> ${svc.name} :${inbound} ${limits(c.methods, c.paths)}`);
    }
    if (svc.expose)
      for (const range of exposedSourceRanges(svc.expose))
        lines.push(`${range} -> ${svc.name} :${svc.expose.port ?? inbound} (expose, mTLS)`);
    if (svc.exposeDirectPort)
      for (const peer of svc.directPortAllowedFrom)
        lines.push(`${describePeer(peer)} -> ${svc.name} :${svc.port} (direct, plain HTTP)`);
    for (const e of svc.egress) lines.push(`${svc.name} -> ${e.host}:${e.port} (egress)`);
  }
  const gw = model.gateway;
  if (gw) {
    const port = gw.service.port ?? GATEWAY_DEFAULT_PORT;
    const from = gw.service.from
      ? gw.service.from.map(describePeer)
      : (gw.service.sourceRanges ?? ["internet"]);
    for (const r of gw.routes)
      for (const who of from)
        lines.push(
          `${who} -> ${gw.name} :${port} ${r.host ?? gw.hostname ?? "*"}${r.pathPrefix} -> ${r.upstream.name} (${r.public ? "public" : r.jwt ? "token" : "no token"})`,
        );
  }
  for (const peer of model.envoy.scrapeFrom)
    lines.push(
      `${describePeer(peer)} -> every mesh pod :${model.envoy.ports.metrics},${model.envoy.ports.health} (metrics, health)`,
    );
  return [...new Set(lines)].sort();
}
