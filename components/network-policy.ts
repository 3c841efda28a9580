/**
 * Zero-trust NetworkPolicies: the mesh must hold even for a pod that skips the sidecar. Every rule
 * is derived from the one topology (`calls`, and the `callers` derived from it), so the network
 * layer and the mTLS allow-lists can never disagree.
 *
 * What is deliberately NOT allowed, and why no rule is needed for it:
 * - Kubelet probes come from the node, which NetworkPolicy always admits.
 * - The app -> Envoy outbound hop (127.0.0.1) and the admin port (127.0.0.1) never leave the pod.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import {
  exposedSourceRanges,
  GATEWAY_LISTEN_PORT,
  GatewayModel,
  MeshModel,
  PeerSelector,
  PROJECT,
  ServiceModel,
} from "./config";
import { meshLabels, PodOwner, podSelectorLabels } from "./names";

type PolicySpec = k8s.types.input.networking.v1.NetworkPolicySpec;
type PolicyPeer = k8s.types.input.networking.v1.NetworkPolicyPeer;
type PolicyPort = k8s.types.input.networking.v1.NetworkPolicyPort;
type IngressRule = k8s.types.input.networking.v1.NetworkPolicyIngressRule;
type EgressRule = k8s.types.input.networking.v1.NetworkPolicyEgressRule;

/** One NetworkPolicy: its fixed `metadata.name` and its spec. */
export interface NamedNetworkPolicySpec {
  name: string;
  spec: PolicySpec;
}

/** Name of the policy that isolates every mesh pod (ingress and egress). */
export const DEFAULT_DENY_POLICY = `${PROJECT}-default-deny`;

/** Name of a service's own policy. */
export function servicePolicyName(service: string): string {
  return `${service}-mesh`;
}

const tcp = (port: number): PolicyPort => ({ protocol: "TCP", port });

/** A copy of a config selector, so resource inputs never alias the model. */
function peerOf(selector: PeerSelector): PolicyPeer {
  return structuredClone(selector);
}

/**
 * Peer for the pods of a mesh service. A bare podSelector means "in the policy's namespace",
 * which is the mesh's namespace.
 */
function servicePeer(service: PodOwner): PolicyPeer {
  return { podSelector: { matchLabels: podSelectorLabels(service) } };
}

/** Whose pods a name is: a service's (adopted or not), else the gateway's. */
type PodOwners = (name: string) => PodOwner;

function servicePolicy(
  model: MeshModel,
  svc: ServiceModel,
  owners: PodOwners,
): NamedNetworkPolicySpec {
  const ports = model.envoy.ports;
  const ingress: IngressRule[] = [];
  // A rule with an empty `from` admits everyone, so a rule is only written when it has peers.
  // Mesh callers and the gateway by their pods; clients outside the mesh through `expose` below.
  const meshCallers = svc.callers.filter((c) => c.kind !== "client");
  if (meshCallers.length > 0) {
    ingress.push({
      from: meshCallers.map((c) => servicePeer(owners(c.name))),
      ports: [tcp(ports.inbound)],
    });
  }
  // Clients given a Secret run inside the cluster, in that Secret's namespace.
  const inCluster = svc.callers
    .filter((c) => c.kind === "client")
    .flatMap((c) => model.clients.find((client) => client.name === c.name)?.secret ?? []);
  if (inCluster.length > 0) {
    ingress.push({
      from: [...new Set(inCluster.map((s) => s.namespace))].sort().map((ns) => ({
        namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": ns } },
      })),
      ports: [tcp(ports.inbound)],
    });
  }
  if (svc.expose) {
    // The published Service keeps client addresses (externalTrafficPolicy Local), so these
    // ipBlocks see them; without sourceRanges, anyone may try the handshake.
    ingress.push({
      from: exposedSourceRanges(svc.expose).map((cidr) => ({ ipBlock: { cidr } })),
      ports: [tcp(ports.inbound)],
    });
  }
  if (svc.directPortAllowedFrom.length > 0) {
    ingress.push({ from: svc.directPortAllowedFrom.map(peerOf), ports: [tcp(svc.port)] });
  }
  ingress.push(...scrapeIngress(model));

  const egress: EgressRule[] = [];
  if (svc.upstreams.length > 0) {
    // Evaluated on the callee pods (after the Service's DNAT), hence pod selectors, not Services.
    egress.push({
      to: svc.upstreams.map((u) => servicePeer(owners(u.name))),
      ports: [tcp(ports.inbound)],
    });
  }
  // Egress beyond the mesh: the entry's port, to its CIDRs or (without them) any address.
  // NetworkPolicy cannot name a host; Envoy pins the host (SNI and certificate for https).
  for (const e of svc.egress) {
    egress.push({
      ...(e.cidrs ? { to: e.cidrs.map((cidr) => ({ ipBlock: { cidr } })) } : {}),
      ports: [tcp(e.port)],
    });
  }
  egress.push(dnsEgress(model), ...collectorEgress(model));
  return workloadPolicy(svc, ingress, egress);
}

/** Spans to the OpenTelemetry collector's pods, where tracing is on. */
function collectorEgress(model: MeshModel): EgressRule[] {
  const collector = model.observability.tracing?.collector;
  return collector ? [{ to: [peerOf(collector.pods)], ports: [tcp(collector.port)] }] : [];
}

/** Scrapers on the health and metrics ports, where `envoy.scrapeFrom` names them. */
function scrapeIngress(model: MeshModel): IngressRule[] {
  const { ports, scrapeFrom } = model.envoy;
  return scrapeFrom.length > 0
    ? [{ from: scrapeFrom.map(peerOf), ports: [tcp(ports.health), tcp(ports.metrics)] }]
    : [];
}

/** Cluster DNS: kube-dns by default; `network.dns` for NodeLocal DNSCache or another resolver. */
function dnsEgress(model: MeshModel): EgressRule {
  return {
    to: model.network.dns.peers.map((peer) => structuredClone(peer)),
    ports: model.network.dns.ports.map((p) => ({ ...p })),
  };
}

/** A workload's own policy over its pods, isolating both directions. */
function workloadPolicy(
  workload: PodOwner,
  ingress: IngressRule[],
  egress: EgressRule[],
): NamedNetworkPolicySpec {
  return {
    name: servicePolicyName(workload.name),
    spec: {
      podSelector: { matchLabels: podSelectorLabels(workload) },
      // Both types listed: an empty `ingress` then means "nothing", not "not isolated".
      policyTypes: ["Ingress", "Egress"],
      ingress,
      egress,
    },
  };
}

/**
 * The gateway's policy: clients from its sourceRanges (every address without them) on its TLS
 * port; out, only its routed services' mTLS port, DNS, and the JWKS hosts' https port.
 */
function gatewayPolicy(
  model: MeshModel,
  gateway: GatewayModel,
  owners: PodOwners,
): NamedNetworkPolicySpec {
  const ports = model.envoy.ports;
  const { type, sourceRanges, from } = gateway.service;
  // A ClusterIP gateway is reached from inside the cluster only, by the pods `from` names.
  const ranges = type === "ClusterIP" ? [] : (sourceRanges ?? ["0.0.0.0/0", "::/0"]);
  const peers: PolicyPeer[] = [
    ...ranges.map((cidr) => ({ ipBlock: { cidr } })),
    ...(from ?? []).map(peerOf),
  ];
  const ingress: IngressRule[] = [
    { from: peers, ports: [tcp(GATEWAY_LISTEN_PORT)] },
    ...scrapeIngress(model),
  ];
  const routed = [...new Set(gateway.routes.map((r) => r.upstream.name))].sort();
  // One rule per JWKS server and range, however many providers share them.
  const jwks = new Map<string, EgressRule>();
  for (const { jwt } of gateway.routes) {
    if (!jwt?.jwksServer) continue;
    const rule: EgressRule = {
      ...(jwt.jwksCidrs ? { to: jwt.jwksCidrs.map((cidr) => ({ ipBlock: { cidr } })) } : {}),
      ports: [tcp(jwt.jwksServer.port)],
    };
    jwks.set(JSON.stringify(rule), rule);
  }
  const egress: EgressRule[] = [
    { to: routed.map((name) => servicePeer(owners(name))), ports: [tcp(ports.inbound)] },
    ...jwks.values(),
    dnsEgress(model),
    ...collectorEgress(model),
  ];
  return workloadPolicy({ name: gateway.name, adopted: false }, ingress, egress);
}

/**
 * Every NetworkPolicy of the mesh: a default deny for all mesh pods, then one policy per service
 * (and the gateway) that opens exactly what the topology and the stack's selectors allow.
 */
export function networkPolicySpecs(model: MeshModel): NamedNetworkPolicySpec[] {
  const byName = new Map<string, PodOwner>(model.services.map((s) => [s.name, s]));
  const owners: PodOwners = (name) => byName.get(name) ?? { name, adopted: false };
  return [
    {
      name: DEFAULT_DENY_POLICY,
      spec: {
        // Also catches mesh-labelled pods no service policy selects (e.g. a hand-made debug pod).
        podSelector: { matchLabels: { "app.kubernetes.io/part-of": PROJECT } },
        policyTypes: ["Ingress", "Egress"],
      },
    },
    ...model.services.map((svc) => servicePolicy(model, svc, owners)),
    ...(model.gateway ? [gatewayPolicy(model, model.gateway, owners)] : []),
  ];
}

export interface MeshNetworkPoliciesArgs {
  /** The validated mesh model (components/config/); the policies derive from its topology. */
  model: MeshModel;
  /** Namespace of the policies; pass the Namespace resource's name so it is created first. */
  namespace: pulumi.Input<string>;
  /** What every policy is created after (the stack's claim on the namespace). */
  after?: pulumi.Resource[];
}

/** The mesh's NetworkPolicies, one Kubernetes object per entry of networkPolicySpecs. */
export class MeshNetworkPolicies extends pulumi.ComponentResource {
  /** The NetworkPolicy objects, default deny first (for `dependsOn`). */
  public readonly policies: k8s.networking.v1.NetworkPolicy[];
  /** `metadata.name` of every policy, default deny first. */
  public readonly policyNames: pulumi.Output<string[]>;

  private readonly byName = new Map<string, k8s.networking.v1.NetworkPolicy>();

  constructor(name: string, args: MeshNetworkPoliciesArgs, opts?: pulumi.ComponentResourceOptions) {
    super("bookapi-mesh:network-policy:MeshNetworkPolicies", name, {}, opts);
    const labels = meshLabels();
    this.policies = networkPolicySpecs(args.model).map((policy) => {
      const resource = new k8s.networking.v1.NetworkPolicy(
        `${name}-${policy.name}`,
        {
          metadata: { name: policy.name, namespace: args.namespace, labels },
          spec: policy.spec,
        },
        // Fixed names: a replacement must delete the old object before creating its successor.
        { parent: this, deleteBeforeReplace: true, dependsOn: args.after ?? [] },
      );
      this.byName.set(policy.name, resource);
      return resource;
    });
    this.policyNames = pulumi.all(this.policies.map((p) => p.metadata.name));
    this.registerOutputs({ policyNames: this.policyNames });
  }

  /** The policies that select a workload's pods: the default deny and its own. */
  selecting(workload: string): k8s.networking.v1.NetworkPolicy[] {
    return [DEFAULT_DENY_POLICY, servicePolicyName(workload)].flatMap(
      (policy) => this.byName.get(policy) ?? [],
    );
  }
}
