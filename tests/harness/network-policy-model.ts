/**
 * A small model of Kubernetes NetworkPolicy semantics (networking.k8s.io/v1), enough to decide
 * whether one pod may open a connection to another pod's port. Written from the API reference,
 * independently of the code that builds the policies, so tests can check the policies' effect
 * rather than their shape.
 *
 * Modelled: pod selection, isolation per direction, policyTypes defaulting, podSelector /
 * namespaceSelector peers (AND when both), ipBlock peers (cidr minus except) matched against an
 * endpoint's address, matchLabels and matchExpressions, numeric ports with endPort, protocol
 * defaulting to TCP, empty/omitted `from`/`to`/`ports` meaning "all". An endpoint outside the
 * cluster (`external`) is selected by ipBlocks only and isolated by no policy. Whether the
 * address a policy sees is the client's is the Service's business (externalTrafficPolicy).
 * Not modelled (rejected loudly, so a policy using them cannot pass by accident): named ports.
 */
import { BlockList, isIP } from "node:net";
import { kindOf, kubernetesObjects, metadataName, ProgramRun } from "./program";

export interface LabelSelectorRequirement {
  key: string;
  operator: "In" | "NotIn" | "Exists" | "DoesNotExist";
  values?: string[];
}

export interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export interface PolicyPeer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: { cidr: string; except?: string[] };
}

export interface PolicyPort {
  port?: number | string;
  endPort?: number;
  protocol?: "TCP" | "UDP" | "SCTP";
}

export interface IngressRule {
  from?: PolicyPeer[];
  ports?: PolicyPort[];
}

export interface EgressRule {
  to?: PolicyPeer[];
  ports?: PolicyPort[];
}

export interface PolicySpec {
  podSelector: LabelSelector;
  policyTypes?: Array<"Ingress" | "Egress">;
  ingress?: IngressRule[];
  egress?: EgressRule[];
}

/** A NetworkPolicy object, reduced to what decides traffic. */
export interface Policy {
  name: string;
  namespace: string;
  spec: PolicySpec;
}

export interface Pod {
  name: string;
  namespace: string;
  labels: Record<string, string>;
  /** The address policies see for it; needed only where an ipBlock may apply. */
  ip?: string;
  /** Outside the cluster: no namespace, no labels, no policy of its own. */
  external?: boolean;
}

/** Whether `ip` is inside `cidr` (IPv4 or IPv6). */
function inCidr(ip: string, cidr: string): boolean {
  const [address, prefix] = cidr.split("/");
  const family = isIP(address) === 6 ? "ipv6" : "ipv4";
  if ((isIP(ip) === 6 ? "ipv6" : "ipv4") !== family) return false;
  const list = new BlockList();
  list.addSubnet(address, Number(prefix), family);
  return list.check(ip, family);
}

export interface Cluster {
  /** Namespace name -> its labels. */
  namespaces: Record<string, Record<string, string>>;
  policies: Policy[];
}

export type Protocol = "TCP" | "UDP" | "SCTP";

/** Whether a label selector matches a label set; `{}` matches everything. */
export function selectorMatches(selector: LabelSelector, labels: Record<string, string>): boolean {
  for (const [key, value] of Object.entries(selector.matchLabels ?? {})) {
    if (labels[key] !== value) return false;
  }
  for (const req of selector.matchExpressions ?? []) {
    const has = Object.prototype.hasOwnProperty.call(labels, req.key);
    const values = req.values ?? [];
    switch (req.operator) {
      case "In":
        if (!has || !values.includes(labels[req.key])) return false;
        break;
      case "NotIn":
        if (has && values.includes(labels[req.key])) return false;
        break;
      case "Exists":
        if (!has) return false;
        break;
      case "DoesNotExist":
        if (has) return false;
        break;
      default:
        throw new Error(
          `unknown selector operator ${String((req as { operator: unknown }).operator)}`,
        );
    }
  }
  return true;
}

/** policyTypes as the API server defaults them: Ingress always, Egress if egress rules exist. */
export function effectivePolicyTypes(spec: PolicySpec): Array<"Ingress" | "Egress"> {
  if (spec.policyTypes && spec.policyTypes.length > 0) return spec.policyTypes;
  return spec.egress && spec.egress.length > 0 ? ["Ingress", "Egress"] : ["Ingress"];
}

function namespaceLabels(cluster: Cluster, namespace: string): Record<string, string> {
  const labels = cluster.namespaces[namespace];
  if (!labels) throw new Error(`namespace ${namespace} is not in the cluster model`);
  return labels;
}

/** Whether `peer` (a rule's from/to entry of a policy in `policyNamespace`) selects `pod`. */
export function peerMatches(
  cluster: Cluster,
  peer: PolicyPeer,
  policyNamespace: string,
  pod: Pod,
): boolean {
  if (peer.ipBlock !== undefined) {
    const { cidr, except = [] } = peer.ipBlock;
    if (pod.ip === undefined) throw new Error(`${pod.name} has no address for an ipBlock to match`);
    return inCidr(pod.ip, cidr) && !except.some((e) => inCidr(pod.ip as string, e));
  }
  if (pod.external) return false;
  if (peer.podSelector === undefined && peer.namespaceSelector === undefined)
    throw new Error("a peer needs a podSelector and/or a namespaceSelector");
  // Without a namespaceSelector, a podSelector looks only in the policy's own namespace.
  const inNamespace =
    peer.namespaceSelector === undefined
      ? pod.namespace === policyNamespace
      : selectorMatches(peer.namespaceSelector, namespaceLabels(cluster, pod.namespace));
  const podOk = peer.podSelector === undefined || selectorMatches(peer.podSelector, pod.labels);
  return inNamespace && podOk;
}

/** Whether a rule's `ports` admit port/protocol; omitted or empty means every port. */
export function portsMatch(
  ports: PolicyPort[] | undefined,
  port: number,
  protocol: Protocol,
): boolean {
  if (!ports || ports.length === 0) return true;
  return ports.some((p) => {
    if ((p.protocol ?? "TCP") !== protocol) return false;
    if (p.port === undefined) return true;
    if (typeof p.port === "string") throw new Error(`named port "${p.port}" is not modelled`);
    return p.endPort === undefined ? p.port === port : p.port <= port && port <= p.endPort;
  });
}

/** Whether a rule's peers admit `pod`; omitted or empty means every peer. */
function peersMatch(
  cluster: Cluster,
  peers: PolicyPeer[] | undefined,
  policyNamespace: string,
  pod: Pod,
): boolean {
  if (!peers || peers.length === 0) return true;
  return peers.some((peer) => peerMatches(cluster, peer, policyNamespace, pod));
}

/** Policies in the pod's namespace that select it and isolate it in `direction`. */
export function isolatingPolicies(
  cluster: Cluster,
  pod: Pod,
  direction: "Ingress" | "Egress",
): Policy[] {
  if (pod.external) return [];
  return cluster.policies.filter(
    (p) =>
      p.namespace === pod.namespace &&
      selectorMatches(p.spec.podSelector, pod.labels) &&
      effectivePolicyTypes(p.spec).includes(direction),
  );
}

/**
 * Whether the policies isolating `self` in one direction allow `peer` on port/protocol.
 * Policies are additive: any rule of any selecting policy suffices.
 */
function directionAllowed(
  cluster: Cluster,
  direction: "Ingress" | "Egress",
  self: Pod,
  peer: Pod,
  port: number,
  protocol: Protocol,
): boolean {
  const policies = isolatingPolicies(cluster, self, direction);
  if (policies.length === 0) return true;
  return policies.some((p) =>
    (direction === "Ingress"
      ? (p.spec.ingress ?? []).map((rule) => ({ peers: rule.from, ports: rule.ports }))
      : (p.spec.egress ?? []).map((rule) => ({ peers: rule.to, ports: rule.ports }))
    ).some(
      (rule) =>
        peersMatch(cluster, rule.peers, p.namespace, peer) &&
        portsMatch(rule.ports, port, protocol),
    ),
  );
}

/** Whether `dst` admits a connection from `src` on port/protocol (the ingress half). */
export function ingressAllowed(
  cluster: Cluster,
  src: Pod,
  dst: Pod,
  port: number,
  protocol: Protocol,
): boolean {
  return directionAllowed(cluster, "Ingress", dst, src, port, protocol);
}

/** Whether `src` may send a connection to `dst` on port/protocol (the egress half). */
export function egressAllowed(
  cluster: Cluster,
  src: Pod,
  dst: Pod,
  port: number,
  protocol: Protocol,
): boolean {
  return directionAllowed(cluster, "Egress", src, dst, port, protocol);
}

/** A connection needs both the source's egress and the destination's ingress to allow it. */
export function connectionAllowed(
  cluster: Cluster,
  src: Pod,
  dst: Pod,
  port: number,
  protocol: Protocol = "TCP",
): boolean {
  return (
    egressAllowed(cluster, src, dst, port, protocol) &&
    ingressAllowed(cluster, src, dst, port, protocol)
  );
}

/** The NetworkPolicies a program run registered, as the model reads them. */
export function registeredPolicies(run: ProgramRun): Policy[] {
  return kubernetesObjects(run)
    .filter((r) => kindOf(r.type) === "NetworkPolicy")
    .map((r) => ({
      name: metadataName(r),
      namespace: String((r.inputs.metadata as { namespace: unknown }).namespace),
      spec: JSON.parse(JSON.stringify(r.inputs.spec)) as PolicySpec,
    }));
}
