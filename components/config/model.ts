/**
 * The validated mesh model the components build from, and the small derivations of it that do
 * not depend on the whole config (key spec, egress ports).
 */
import { PeerSelector, AppVolume } from "./fields";
import {
  TrafficPolicy,
  EgressTarget,
  ExposeSettings,
  RawMesh,
  RawBuiltService,
  RawGateway,
  WorkloadKind,
  EnvoySettings,
  NetworkSettings,
  KeySpec,
  RawKey,
  CertificateSettings,
  ObservabilitySettings,
  ResourcePair,
} from "./schema";

/** The Deployment or StatefulSet whose pods serve a service. */
export interface WorkloadModel {
  kind: WorkloadKind;
  name: string;
}

/** What every service of the mesh has, whoever declares its pods. */
interface ServiceBase {
  name: string;
  port: number;
  workload: WorkloadModel;
  exposeDirectPort: boolean;
  /** The pod's shutdown budget, which the sidecar's stop timeline is built for. */
  terminationGracePeriodSeconds: number;
  /** The stack's and the service's own, de-duplicated. */
  imagePullSecrets: string[];
  /** Services this one calls, sorted by name. */
  upstreams: UpstreamModel[];
  /** Services allowed to call this one, derived from every service's `calls`, sorted by name. */
  callers: CallerModel[];
  /** `<name>.<ns>.svc.<clusterDomain>`: the name other sidecars dial and verify. */
  fqdn: string;
  /** The certificate's DNS SANs: short name, `.ns`, `.ns.svc`, FQDN. */
  dnsNames: string[];
  /** `spiffe://<trustDomain>/ns/<ns>/sa/<name>`: the certificate's URI SAN. */
  spiffeId: string;
  /** Who may reach the app port directly; empty = nobody. */
  directPortAllowedFrom: PeerSelector[];
  /** `<name>-pods.<ns>.svc.<clusterDomain>`: the headless Service callers' Envoys resolve. */
  podsFqdn: string;
  /** Published outside the cluster on a Service of its own. */
  expose?: ExposeSettings;
  traffic: TrafficPolicy;
  /** Destinations outside the mesh, sorted by name. */
  egress: ResolvedEgress[];
}

/** A service whose pods the mesh builds (its workload has the service's name). */
export interface BuiltServiceModel extends ServiceBase {
  adopted: false;
  image: string;
  /** The fixed replica count, or autoscaling's minimum. */
  replicas: number;
  /** When set, an HPA owns the replica count. */
  autoscaling?: RawBuiltService["autoscaling"];
  resources: { requests: ResourcePair; limits: ResourcePair };
  runAsUser: number;
  preStopSeconds: number;
  env: RawBuiltService["env"];
  envFrom: RawBuiltService["envFrom"];
  command?: string[];
  args?: string[];
  probes: RawBuiltService["probes"];
  volumes: AppVolume[];
  podLabels: Record<string, string>;
  podAnnotations: Record<string, string>;
  nodeSelector: Record<string, string>;
  tolerations: RawBuiltService["tolerations"];
}

/** A service whose pods someone else declares (`workload`): the mesh injects its sidecar. */
export interface AdoptedServiceModel extends ServiceBase {
  adopted: true;
}

/** One service of the mesh, with its derived identity and callers. */
export type ServiceModel = BuiltServiceModel | AdoptedServiceModel;

/** An egress target with what the pod gets for it. */
export type ResolvedEgress = EgressTarget & {
  /** For `tcp`: the loopback port of its Envoy listener, and the env var that holds the address. */
  local?: { port: number; env: string };
};

/** A service's identity, as its peers see it. */
export interface PeerIdentity {
  name: string;
  fqdn: string;
  spiffeId: string;
}

/**
 * A caller and what it may do on the callee, from the caller's `calls` entry: a mesh service, or
 * a client outside the mesh, which has a SPIFFE ID but no DNS name.
 */
export interface CallerModel {
  /** A mesh service, a client with a mesh certificate, or the ingress gateway. */
  kind: "service" | "client" | "gateway";
  name: string;
  /** Services and the gateway. */
  fqdn?: string;
  spiffeId: string;
  /** HTTP methods allowed; empty = all. */
  methods: string[];
  /** Paths allowed (`/a` exact, `/a/*` prefix); empty = all. */
  paths: string[];
}

/** A callee, with how its pods are found and how calls to it behave. */
export interface UpstreamModel extends PeerIdentity {
  podsFqdn: string;
  traffic: TrafficPolicy;
}

/** A client outside the mesh: its identity and the services it may call. */
export interface ClientModel {
  name: string;
  /** `spiffe://<trustDomain>/ns/<ns>/client/<name>`: never a service's (`/sa/`). */
  spiffeId: string;
  /** Services it calls, sorted. */
  calls: string[];
  /** Where a Secret with its certificate and key goes, if anywhere. */
  secret?: { namespace: string; name: string };
}

/** Bearer-token validation of one provider, as Envoy's JWT authn filter gets it. */
export interface JwtModel {
  /** Provider name in the gateway's config: `gateway`, or `route-<i>` for a route's own. */
  provider: string;
  issuer: string;
  audiences: string[];
  jwksUri?: string;
  /** Where jwksUri points: its host (an IPv6 literal without brackets) and port. */
  jwksServer?: { host: string; port: number };
  /** JSON text of an inline JWKS. */
  jwks?: string;
  jwksCidrs?: string[];
  jwksCacheDuration: string;
  requiredScopes: string[];
}

/** One gateway route, resolved: its service, and the token check that guards it. */
export interface GatewayRouteModel {
  /** Answers for this host only; every host when absent. */
  host?: string;
  pathPrefix: string;
  rewritePrefix?: string;
  /** The routed service, as the gateway dials it. */
  upstream: UpstreamModel;
  /** Token validation on this route; absent: none. */
  jwt?: JwtModel;
  /** Marked public: no token check, on purpose. */
  public: boolean;
  /**
   * With jwt: the protected resource (RFC 9728) this route is, `https://<host><pathPrefix>`, and
   * the URL its metadata is served at (`/.well-known/oauth-protected-resource<pathPrefix>`).
   */
  resource?: { url: string; metadataPath: string; metadataUrl: string };
}

/** The ingress gateway, with its own mesh identity (it calls its routed services over mTLS). */
export interface GatewayModel extends PeerIdentity {
  replicas: number;
  hostname?: string;
  /**
   * The port in the URLs clients use (443 is left out of them); absent for a NodePort gateway
   * whose node port Kubernetes assigns (no route needs it at preview).
   */
  publicPort?: number;
  preStopSeconds: number;
  minReadySeconds: number;
  service: RawGateway["service"];
  tls: RawGateway["tls"];
  /** Its mesh certificate's DNS SANs (short name to FQDN). */
  dnsNames: string[];
  /** Most specific first within a host: Envoy takes the first route that matches. */
  routes: GatewayRouteModel[];
  cors?: RawGateway["cors"];
}

/** The whole validated mesh. */
export interface MeshModel {
  namespace: string;
  /** Whether the program creates the namespace (never for `default`). */
  createNamespace: boolean;
  clusterDomain: string;
  /** The oldest Kubernetes version the stack targets, e.g. "1.29". */
  kubernetesVersion: string;
  /** Its minor number, for version checks. */
  kubernetesMinor: number;
  envoy: EnvoySettings;
  certificates: CertificateSettings;
  observability: ObservabilitySettings;
  network: NetworkSettings;
  /** Clients outside the mesh, sorted by name. */
  clients: ClientModel[];
  gateway?: GatewayModel;
  /** The stack's image pull Secrets (each service adds its own). */
  imagePullSecrets: string[];
  /** Services sorted by name, so output does not depend on config order. */
  services: ServiceModel[];
  /** When set, Kubernetes objects are written as YAML into this folder instead of a cluster. */
  renderYamlToDirectory?: string;
  /** Pod Security Standard label set on the namespace (only when the program creates it). */
  podSecurity?: "restricted" | "baseline" | "privileged";
  /** Stack keys that are valid but have no effect, for preview to warn about. */
  configWarnings: string[];
}

export function certificateSettings(raw: RawMesh["certificates"]): CertificateSettings {
  const { algorithm, ecdsaCurve, rsaBits, keyRotationHours, ca, ...rest } = raw;
  const keySpec = (k: RawKey): KeySpec =>
    k.algorithm === "ECDSA"
      ? { algorithm: "ECDSA", ecdsaCurve: k.ecdsaCurve ?? "P256" }
      : { algorithm: "RSA", rsaBits: k.rsaBits ?? 2048 };
  const key = keySpec({ algorithm, ecdsaCurve, rsaBits });
  return {
    ...rest,
    key,
    keyRotationHours: keyRotationHours ?? rest.validityHours,
    ca: {
      signing: ca.signing,
      trusted: [...ca.trusted],
      keys: Object.fromEntries(ca.trusted.map((g) => [g, ca.keys[g] ? keySpec(ca.keys[g]) : key])),
    },
  };
}

/** `EGRESS_<NAME>_ADDR`: where the app finds a tcp egress target's local listener. */
export function egressEnvName(name: string): string {
  return `EGRESS_${name.toUpperCase().replace(/-/g, "_")}_ADDR`;
}

/** Egress sorted by name; tcp targets get consecutive loopback ports from `base`. */
export function resolveEgress(egress: EgressTarget[], base: number): ResolvedEgress[] {
  let next = base;
  return [...egress]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((e) =>
      e.protocol === "tcp"
        ? { ...e, local: { port: next++, env: egressEnvName(e.name) } }
        : { ...e },
    );
}
