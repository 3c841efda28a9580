/**
 * The whole mesh: namespace, CA, and per service a certificate plus its workload.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import {
  exposedSourceRanges,
  KUBERNETES_FEATURES,
  MeshConfig,
  MeshModel,
  parseMeshConfig,
  PROJECT,
  ServiceModel,
} from "./config";
import { buildEnvoyFiles } from "./envoy";
import { SIDECAR_PATHS, SidecarSpec } from "./envoy/model";
import { overloadSpec, tracingSpec, trafficSpec, upstreamSpec } from "./envoy-units";
import {
  addressWaitWarnings,
  gatewayFiles,
  gatewayRouteUrl,
  gatewayWarnings,
  MeshGateway,
} from "./gateway";
import { accessLines } from "./access";
import { CertManagerIssuer } from "./cert-manager";
import { MeshMonitoring } from "./observability";
import { LeafCertificateState, tlsSecret } from "./identity";
import {
  caRotationWarnings,
  ClientCertificate,
  leafTerms,
  meshCertificateAuthorities,
  renewalWarnings,
  ServiceCertificate,
  TrustState,
  validityOf,
} from "./pki";

import { commonLabels, meshLabels, STACK_CLAIM_NAME } from "./names";
import { MeshNetworkPolicies } from "./network-policy";
import { MeshProviderOptions, meshProviders } from "./provider";
import { RolloutOrder, rolloutOrder } from "./rollout-order";
import { AdoptedWorkload } from "./injector";
import { EnvoyConfigSource, outboundUrl } from "./pod";
import { envoyConfigMapName, MeshService } from "./workload";

/** Where and how clients outside the cluster reach the ingress gateway. */
export interface GatewayEndpoint {
  /** `<address>:<port>`, from the load balancer's status where there is one. */
  endpoint: string;
  /** Per route: the URL a client uses and, when a token is needed, its resource metadata URL. */
  routes: { url: string; service: string; resourceMetadata?: string }[];
}

/** What a client outside the mesh needs besides its key and the CA certificate. */
export interface ClientEndpoint {
  certificate: string;
  spiffeId: string;
  /** The services it may call. */
  calls: string[];
}

/** Where a service can be reached. */
export interface ServiceEndpoints {
  /** In-cluster mTLS endpoint other sidecars dial: `<fqdn>:<inbound>`. */
  mtls: string;
  /** The app port on the Service, only where the stack exposes it. */
  direct?: string;
  /** The URL this service's app calls for its dependencies; only for services that call others. */
  outbound?: string;
}

/** The Envoy builders' input for one service: the model's view of it, in Envoy's units. */
export function sidecarSpec(model: MeshModel, service: ServiceModel): SidecarSpec {
  return {
    service: service.name,
    fqdn: service.fqdn,
    appPort: service.port,
    ports: { ...model.envoy.ports },
    callers: service.callers.map(({ kind, ...c }) => ({
      ...c,
      ...(kind !== "service" ? { kind } : {}),
      methods: [...c.methods],
      paths: [...c.paths],
    })),
    upstreams: service.upstreams.map(upstreamSpec),
    traffic: trafficSpec(service.traffic),
    egress: service.egress.map((e) => ({
      name: e.name,
      host: e.host,
      port: e.port,
      protocol: e.protocol,
      ...(e.local ? { localPort: e.local.port } : {}),
    })),
    accessLog: model.envoy.accessLog,
    ...tracingSpec(model),
    overload: overloadSpec(model.envoy),
    bindAddress: model.envoy.bindAddress,
    paths: SIDECAR_PATHS,
  };
}

/** Traffic settings that are valid but cannot work as the stack stands. */
export function trafficWarnings(model: MeshModel): string[] {
  const warnings: string[] = [];
  for (const svc of model.services) {
    const { sessionAffinity, outlierDetection } = svc.traffic;
    // Affinity is applied where a replica is chosen: in callers' sidecars and the gateway.
    if (sessionAffinity && !svc.callers.some((c) => c.kind !== "client"))
      warnings.push(
        `services "${svc.name}": traffic.sessionAffinity acts in the sidecars that call it and in the gateway, and neither reaches it yet; clients reaching it otherwise are not pinned to a replica`,
      );
    // An adopted workload's replica count is its owner's: not known here, so taken as several.
    const pods = svc.adopted ? undefined : svc.replicas;
    if (sessionAffinity && svc.expose && (pods ?? 2) > 1)
      warnings.push(
        `services "${svc.name}": clients reaching it through expose are balanced per connection by the load balancer, not by session: a session may land on a replica that does not know it`,
      );
    if (svc.expose) {
      warnings.push(...addressWaitWarnings(`services "${svc.name}": expose`, svc.expose));
      const everyone = exposedSourceRanges(svc.expose).filter(
        (r) => r === "0.0.0.0/0" || r === "::/0",
      );
      if (everyone.length > 0)
        warnings.push(
          `services "${svc.name}": expose admits every address (${everyone.join(", ")}${svc.expose.sourceRanges ? "" : ": no sourceRanges"}); only a mesh certificate on its allow-list gets through the handshake`,
        );
      const nodePort = svc.expose.type === "NodePort" ? svc.expose.port : undefined;
      if (nodePort !== undefined && (nodePort < 30000 || nodePort > 32767))
        warnings.push(
          `services "${svc.name}": expose.port ${nodePort} is outside Kubernetes' default node port range (30000-32767); the API server refuses it unless the cluster's --service-node-port-range includes it`,
        );
    }
    if (!svc.adopted && svc.workload.kind === "StatefulSet" && !svc.autoscaling && svc.replicas < 2)
      warnings.push(
        `services "${svc.name}": a StatefulSet of one replica stops its pod before starting the next on every rollout (an Envoy config change, a new caller): it is down meanwhile; give it replicas: 2 or more`,
      );
    // Envoy ejects a host only while the ejected share stays within maxEjectionPercent.
    if (pods !== undefined && pods > 1 && 100 / pods > outlierDetection.maxEjectionPercent)
      warnings.push(
        `services "${svc.name}": traffic.outlierDetection.maxEjectionPercent ${outlierDetection.maxEjectionPercent} is less than one pod of ${pods} (${Math.ceil(100 / pods)} %), so no pod is ever ejected`,
      );
  }
  return warnings;
}

/** Labels of a namespace the program creates; with podSecurity, the Pod Security admission ones. */
export function namespaceLabels(model: MeshModel): Record<string, string> {
  const labels = meshLabels();
  if (model.podSecurity) {
    for (const mode of ["enforce", "audit", "warn"]) {
      labels[`pod-security.kubernetes.io/${mode}`] = model.podSecurity;
      // Pinned to the oldest cluster version the stack targets, not "latest": a cluster upgrade
      // then cannot start rejecting pods by itself.
      labels[`pod-security.kubernetes.io/${mode}-version`] = `v${model.kubernetesVersion}`;
    }
  }
  return labels;
}

/** Endpoints of every service, keyed by service name. */
export function endpointsOf(model: MeshModel): Record<string, ServiceEndpoints> {
  const endpoints: Record<string, ServiceEndpoints> = {};
  for (const svc of model.services) {
    endpoints[svc.name] = {
      mtls: `${svc.fqdn}:${model.envoy.ports.inbound}`,
      ...(svc.exposeDirectPort ? { direct: `${svc.fqdn}:${svc.port}` } : {}),
      ...(svc.upstreams.length > 0 ? { outbound: outboundUrl(model.envoy) } : {}),
    };
  }
  return endpoints;
}

/**
 * What the mesh is built from: its config as an object, validated here with the stack config's
 * schema, or a model already validated (loadMeshConfig reads it from the stack config).
 */
export type MeshSource =
  | {
      /** The config, keyed as the stack config (docs/configuration.md). */
      config: MeshConfig;
      model?: never;
    }
  | {
      /** A model from loadMeshConfig or parseMeshConfig. */
      model: MeshModel;
      config?: never;
    };

/**
 * `cluster` and `lastTrust` are for the providers the mesh creates (provider.ts meshProviders):
 * it creates them unless it is given a Kubernetes provider (`provider`, `providers` or its
 * parent's), and then refuses them.
 */
export type ServiceMeshArgs = MeshSource &
  MeshProviderOptions & {
    /**
     * Provider of the Envoy ConfigMap versions. Defaults to the one the mesh creates beside its
     * own provider or, when it is given a Kubernetes provider, that one.
     */
    envoyConfigProvider?: pulumi.ProviderResource;
  };

/** What a service's pods take from the mesh besides the service: its config version, issuer, scraping. */
export function meshPodConfig(model: MeshModel, service: ServiceModel): EnvoyConfigSource {
  return {
    configMapName: envoyConfigMapName(service.name, buildEnvoyFiles(sidecarSpec(model, service))),
    issuer: model.certificates.issuer,
    scrapeAnnotations: model.observability.metrics.discovery === "annotations",
  };
}

/**
 * The adopted services and what injection adds to their pods, from the model alone: the input of
 * the offline injector (`npm run inject`). ServiceMesh's `adopted` is the same, plus what the pods
 * must wait for.
 */
export function adoptedWorkloads(model: MeshModel): AdoptedWorkload[] {
  return model.services
    .filter((s) => s.adopted)
    .map((service) => ({
      namespace: model.namespace,
      injection: { service, envoy: model.envoy, config: meshPodConfig(model, service) },
    }));
}

/** The call graph of the services (service -> the services it calls). */
export function callGraph(model: MeshModel): Map<string, string[]> {
  return new Map(model.services.map((s) => [s.name, s.upstreams.map((u) => u.name)]));
}

/** Services that call each other in a cycle: their rollouts cannot be ordered. */
export function cycleWarnings(order: RolloutOrder): string[] {
  return order.cycles.map(
    (group) =>
      `services ${group.map((n) => `"${n}"`).join(", ")} call each other in a cycle, so their rollouts are not ordered: add a calls entry between them in two steps (docs/operations.md, "Ordering")`,
  );
}

/** The mesh: CA + one certificate and workload per service. */
export class ServiceMesh extends pulumi.ComponentResource {
  public readonly namespace: pulumi.Output<string>;
  /** Public CA certificate, for clients outside the mesh that want to verify sidecars. */
  public readonly caCertificate: pulumi.Output<string>;
  public readonly endpoints: pulumi.Output<Record<string, ServiceEndpoints>>;
  public readonly services: Record<string, MeshService>;
  public readonly networkPolicies: MeshNetworkPolicies;
  /** Per client: its certificate (public), SPIFFE ID and the services it may call. */
  public readonly clients: pulumi.Output<Record<string, ClientEndpoint>>;
  /** Per client: its private key PEM, a Pulumi secret. */
  public readonly clientKeys: pulumi.Output<Record<string, string>>;
  /**
   * Per leaf certificate (`service/<name>`, `client/<name>`, `gateway/identity`, `gateway/edge`):
   * not-before, not-after, when renewal is due, key epoch and public key hash; for a workload
   * whose certificate cert-manager issues, its Certificate and status.
   */
  public readonly certificates: pulumi.Output<Record<string, LeafCertificateState>>;
  /** In cert-manager mode: the Issuer, its intermediate CA Secret and the trust ConfigMap. */
  public readonly certManager?: CertManagerIssuer;
  /** Every allowed edge, one readable line each, sorted: who may call whom (access.ts). */
  public readonly access: pulumi.Output<string[]>;
  /** The PodMonitor and PrometheusRule, where observability asks for them. */
  public readonly monitoring?: MeshMonitoring;
  /** The mesh CA: when it expires and is re-issued, and its certificate's SHA-256 fingerprint. */
  public readonly trust: pulumi.Output<TrustState>;
  /** Per exposed service: `<address>:<port>` once the load balancer has one. */
  public readonly exposed: pulumi.Output<Record<string, string>>;
  /** The ingress gateway, when the stack has one. */
  public readonly gateway?: MeshGateway;
  /** Where the gateway is reached, when the stack has one. */
  public readonly gatewayEndpoint: pulumi.Output<GatewayEndpoint | undefined>;
  /** The ConfigMap that claims the namespace for this stack; everything else waits for it. */
  public readonly stackClaim: k8s.core.v1.ConfigMap;
  /**
   * The adopted services (`services[].workload`): what the sidecar injector adds to their pods
   * and what those wait for. Pass it to `meshInjector` (docs/injection.md).
   */
  public readonly adopted: AdoptedWorkload[];
  /**
   * The Kubernetes provider of the mesh's objects: the one it was given, or its own
   * (`<name>-kubernetes`). Deploy the workloads it adopts with it, to reach the same cluster.
   */
  public readonly provider: pulumi.ProviderResource;

  constructor(name: string, args: ServiceMeshArgs, opts?: pulumi.ComponentResourceOptions) {
    // Validated before anything is registered, so bad config fails at preview.
    const model = args.model ?? parseMeshConfig(args.config);
    super("bookapi-mesh:mesh:ServiceMesh", name, {}, opts);

    // The caller's Kubernetes provider, else the mesh's own with its settings (provider.ts).
    const given = this.getProvider("kubernetes:core/v1:ConfigMap");
    if (given && (args.cluster !== undefined || args.lastTrust !== undefined))
      throw new pulumi.ResourceError(
        "cluster and lastTrust are for the providers the mesh creates, and it was given a Kubernetes provider: create that one with meshProviders, or pass none",
        this,
      );
    let envoyConfigProvider = args.envoyConfigProvider;
    let child: pulumi.ResourceOptions = { parent: this };
    if (given) {
      this.provider = given;
    } else {
      const own = meshProviders(`${name}-kubernetes`, model, args, { parent: this });
      this.provider = own.provider;
      envoyConfigProvider ??= own.envoyConfigProvider;
      // Children inherit a provider the mesh was given; its own is passed down.
      child = { parent: this, provider: own.provider };
    }

    let namespace: pulumi.Output<string>;
    if (model.createNamespace) {
      const ns = new k8s.core.v1.Namespace(
        `${name}-namespace`,
        {
          metadata: { name: model.namespace, labels: namespaceLabels(model) },
        },
        child,
      );
      namespace = ns.metadata.name;
    } else {
      namespace = pulumi.output(model.namespace);
    }
    // One stack per namespace: every object below depends on the claim (dependsOn, not its
    // namespace output: an input taken from an output would make the engine plan every object's
    // replacement whenever the claim is replaced), so a second stack stops at the claim.
    this.stackClaim = new k8s.core.v1.ConfigMap(
      `${name}-stack-claim`,
      {
        metadata: { name: STACK_CLAIM_NAME, namespace, labels: meshLabels() },
        data: { project: pulumi.getProject(), stack: pulumi.getStack() },
      },
      // Its data only names the stack; a rename or a hand edit must not replace it.
      { ...child, deleteBeforeReplace: true, ignoreChanges: ["data"] },
    );
    const after = [this.stackClaim];

    // Checked before any resource is registered: a gateway config too large fails the preview.
    const gatewayEnvoyFiles = model.gateway ? gatewayFiles(model, model.gateway) : undefined;

    const pki = meshCertificateAuthorities(name, model.namespace, model.certificates, this);
    const { signer } = pki;
    if (model.certificates.issuer === "cert-manager")
      this.certManager = new CertManagerIssuer(
        `${name}-cert-manager`,
        {
          signer,
          certificates: model.certificates,
          namespace,
          namespaceName: model.namespace,
          labels: meshLabels(),
          after,
        },
        child,
      );
    const certManager = this.certManager;

    // Only the mesh's own apps get its preStop; an adopted app's shutdown is its owner's.
    if (
      model.kubernetesMinor < KUBERNETES_FEATURES.preStopSleep &&
      model.services.some((s) => !s.adopted)
    ) {
      void pulumi.log.warn(
        `kubernetesVersion "${model.kubernetesVersion}": each app's preStop delay runs \`sleep\` from the app's own image (the kubelet's sleep action needs 1.${KUBERNETES_FEATURES.preStopSleep}); an image without it (distroless, scratch) gets SIGTERM at once and drops requests on every rollout. Set kubernetesVersion to "1.${KUBERNETES_FEATURES.preStopSleep}" or later once every cluster of the stack runs it`,
        this,
      );
    }

    for (const warning of [
      ...model.configWarnings,
      ...trafficWarnings(model),
      ...renewalWarnings(model.certificates),
      ...caRotationWarnings(model.certificates.ca),
    ])
      void pulumi.log.warn(warning, this);

    // Before any pod: the NetworkPolicies that isolate it (the default deny and its own).
    this.networkPolicies = new MeshNetworkPolicies(
      `${name}-netpol`,
      { model, namespace, after },
      child,
    );

    const o = model.observability;
    if (o.metrics.discovery === "podMonitor" || o.alerts.enabled || o.dashboard.enabled)
      this.monitoring = new MeshMonitoring(`${name}-monitoring`, { model, after }, child);

    // Callees first, so each caller's Deployment can wait for theirs.
    const order = rolloutOrder(callGraph(model));
    for (const warning of cycleWarnings(order)) void pulumi.log.warn(warning, this);
    const byName = new Map(model.services.map((s) => [s.name, s]));
    this.services = {};
    const leaves: Record<string, pulumi.Output<LeafCertificateState>> = {};
    for (const svc of order.order.map((n) => byName.get(n) as ServiceModel)) {
      if (svc.exposeDirectPort && svc.directPortAllowedFrom.length === 0) {
        void pulumi.log.warn(
          `services "${svc.name}": exposeDirectPort publishes port ${svc.port} on the Service, but directPortAllowedFrom is empty, so the NetworkPolicy lets nobody reach it`,
          this,
        );
      }
      const identityNames = {
        commonName: svc.fqdn,
        dnsNames: svc.dnsNames,
        uris: [svc.spiffeId],
      };
      this.services[svc.name] = new MeshService(
        `${name}-${svc.name}`,
        {
          service: svc,
          namespace,
          envoy: model.envoy,
          kubernetesMinor: model.kubernetesMinor,
          rendered: model.renderYamlToDirectory !== undefined,
          scrapeAnnotations: model.observability.metrics.discovery === "annotations",
          envoyFiles: buildEnvoyFiles(sidecarSpec(model, svc)),
          identity: certManager
            ? certManager.identity(svc.name, identityNames, commonLabels(svc.name))
            : {
                issuer: "pulumi",
                tls: new ServiceCertificate(
                  `${name}-${svc.name}`,
                  { ...signer, ...leafTerms(model.certificates), ...identityNames },
                  child,
                ),
              },
          envoyConfigProvider,
          after,
          rolloutAfter: [
            ...this.networkPolicies.selecting(svc.name),
            // An adopted callee's workload is its owner's: nothing of it to wait for here.
            ...(order.waitsFor.get(svc.name) ?? []).flatMap(
              (callee) => this.services[callee].workload ?? [],
            ),
          ],
        },
        child,
      );
      leaves[`service/${svc.name}`] = this.services[svc.name].certificateState;
    }
    this.adopted = model.services
      .filter((s) => s.adopted)
      .map((s) => ({
        namespace: model.namespace,
        injection: this.services[s.name].injection,
        podsNeed: this.services[s.name].podsNeed,
      }));

    const clientCerts = model.clients.map((client) => {
      const cert = new ClientCertificate(
        `${name}-client-${client.name}`,
        {
          ...signer,
          ...leafTerms(model.certificates),
          commonName: `${PROJECT} client ${client.name}`,
          uris: [client.spiffeId],
        },
        child,
      );
      if (client.secret) {
        // For callers inside the cluster but outside the mesh; the namespace is theirs.
        tlsSecret(
          `${name}-client-${client.name}-tls`,
          {
            name: client.secret.name,
            // The mesh namespace through its resource, so the Secret waits for it.
            namespace:
              client.secret.namespace === model.namespace ? namespace : client.secret.namespace,
            labels: meshLabels(),
          },
          cert,
          { ...child, deleteBeforeReplace: true, dependsOn: after },
        );
      }
      return { client, cert };
    });

    if (model.gateway && gatewayEnvoyFiles) {
      for (const warning of gatewayWarnings(model.gateway)) void pulumi.log.warn(warning, this);
      this.gateway = new MeshGateway(
        `${name}-gateway`,
        {
          model,
          gateway: model.gateway,
          namespace,
          signer,
          certManager,
          envoyFiles: gatewayEnvoyFiles,
          rolloutAfter: [
            ...this.networkPolicies.selecting(model.gateway.name),
            ...[...new Set(model.gateway.routes.map((r) => r.upstream.name))].flatMap(
              (svc) => this.services[svc].workload ?? [],
            ),
          ],
          after,
          rendered: model.renderYamlToDirectory !== undefined,
          envoyConfigProvider,
        },
        child,
      );
    }
    const gatewayModel = model.gateway;
    this.gatewayEndpoint =
      this.gateway && gatewayModel
        ? pulumi
            .all([this.gateway.endpoint, this.gateway.nodePort])
            .apply(([endpoint, nodePort]): GatewayEndpoint => ({
              endpoint,
              routes: gatewayModel.routes.map((r) => ({
                url: gatewayRouteUrl(gatewayModel, r, endpoint, nodePort),
                service: r.upstream.name,
                ...(r.resource ? { resourceMetadata: r.resource.metadataUrl } : {}),
              })),
            }))
        : pulumi.output(undefined);

    this.namespace = namespace;
    this.caCertificate = signer.trustBundle;
    for (const { client, cert } of clientCerts) leaves[`client/${client.name}`] = cert.validity;
    const leafValidity = validityOf(leaves);
    this.certificates = pulumi
      .all([leafValidity, this.gateway?.certificates ?? {}])
      .apply(([own, gateway]) => ({
        ...own,
        ...Object.fromEntries(Object.entries(gateway).map(([k, v]) => [`gateway/${k}`, v])),
      }));
    this.trust = certManager
      ? pulumi.all([pki.trust, certManager.intermediate.validity]).apply(([trust, v]) => ({
          ...trust,
          intermediate: {
            generation: model.certificates.ca.signing,
            notAfter: v.notAfter,
            renewalDue: v.renewalDue,
          },
        }))
      : pki.trust;
    this.endpoints = pulumi.output(endpointsOf(model));
    this.access = pulumi.output(accessLines(model));
    this.clients = pulumi
      .all(clientCerts.map(({ cert }) => cert.certPem))
      .apply((pems) =>
        Object.fromEntries(
          clientCerts.map(({ client }, i) => [
            client.name,
            { certificate: pems[i], spiffeId: client.spiffeId, calls: client.calls },
          ]),
        ),
      );
    this.clientKeys = pulumi.secret(
      pulumi
        .all(clientCerts.map(({ cert }) => cert.privateKeyPem))
        .apply((keys) =>
          Object.fromEntries(clientCerts.map(({ client }, i) => [client.name, keys[i]])),
        ),
    );
    const exposedServices = model.services.filter((svc) => svc.expose);
    this.exposed = pulumi
      .all(
        exposedServices.map((svc) => {
          const ext = this.services[svc.name].externalService;
          return pulumi.all([ext?.status, ext?.spec]);
        }),
      )
      .apply((views) =>
        Object.fromEntries(
          exposedServices.map((svc, i) => {
            const [status, spec] = views[i];
            if (svc.expose?.type === "NodePort") {
              const nodePort = spec?.ports?.[0]?.nodePort ?? svc.expose.port;
              return [
                svc.name,
                `<any node running a pod>:${nodePort ?? "(assigned by Kubernetes)"}`,
              ];
            }
            const ingress = status?.loadBalancer?.ingress?.[0];
            const address = ingress?.ip ?? ingress?.hostname;
            const port = svc.expose?.port ?? model.envoy.ports.inbound;
            // An IPv6 address needs brackets before its port.
            const host = address?.includes(":") ? `[${address}]` : address;
            return [svc.name, host ? `${host}:${port}` : "pending (no load balancer address yet)"];
          }),
        ),
      );
    this.registerOutputs({
      namespace: this.namespace,
      caCertificate: this.caCertificate,
      endpoints: this.endpoints,
      clients: this.clients,
      clientKeys: this.clientKeys,
      certificates: this.certificates,
      trust: this.trust,
      access: this.access,
      exposed: this.exposed,
      gateway: this.gatewayEndpoint,
    });
  }
}
