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
function describePeer(p: PeerSelector): string {
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

/** One allowed edge: who, to what, on which port(s), and what it may do there. */
export interface AccessEdge {
  from: string;
  to: string;
  /** The port(s) on `to`, when `to` is not already `host:port`. */
  port?: string;
  detail: string;
}

/**
 * Every allowed edge of the mesh: calls between services and from clients and the gateway (with
 * their method and path limits), the gateway's routes from outside, services published by
 * `expose`, direct app ports, egress, and the metrics scrapers.
 */
export function accessEdges(model: MeshModel): AccessEdge[] {
  const inbound = String(model.envoy.ports.inbound);
  const edges: AccessEdge[] = [];
  for (const svc of model.services) {
    for (const c of svc.callers) {
      const from = c.kind === "client" ? `client/${c.name}` : c.name;
      edges.push({ from, to: svc.name, port: inbound, detail: limits(c.methods, c.paths) });
    }
    if (svc.expose)
      for (const range of exposedSourceRanges(svc.expose))
        edges.push({
          from: range,
          to: svc.name,
          port: String(svc.expose.port ?? inbound),
          detail: "(expose, mTLS)",
        });
    if (svc.exposeDirectPort)
      for (const peer of svc.directPortAllowedFrom)
        edges.push({
          from: describePeer(peer),
          to: svc.name,
          port: String(svc.port),
          detail: "(direct, plain HTTP)",
        });
    for (const e of svc.egress)
      edges.push({ from: svc.name, to: `${e.host}:${e.port}`, detail: "(egress)" });
  }
  const gw = model.gateway;
  if (gw) {
    const port = String(gw.service.port ?? GATEWAY_DEFAULT_PORT);
    const from = gw.service.from
      ? gw.service.from.map(describePeer)
      : (gw.service.sourceRanges ?? ["internet"]);
    for (const r of gw.routes)
      for (const who of from)
        edges.push({
          from: who,
          to: gw.name,
          port,
          detail: `${r.host ?? gw.hostname ?? "*"}${r.pathPrefix} -> ${r.upstream.name} (${r.public ? "public" : r.jwt ? "token" : "no token"})`,
        });
  }
  for (const peer of model.envoy.scrapeFrom)
    edges.push({
      from: describePeer(peer),
      to: "every mesh pod",
      port: `${model.envoy.ports.metrics},${model.envoy.ports.health}`,
      detail: "(metrics, health)",
    });
  return edges;
}

/** An edge as one readable line: `from -> to :port detail`. */
export function accessLine(e: AccessEdge): string {
  return `${e.from} -> ${e.to}${e.port ? ` :${e.port}` : ""} ${e.detail}`;
}

/** Every allowed edge as one line, sorted and without repeats: the stack output `access`. */
export function accessLines(model: MeshModel): string[] {
  return [...new Set(accessEdges(model).map(accessLine))].sort();
}
