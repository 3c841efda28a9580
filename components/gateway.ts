/**
 * The ingress gateway in Kubernetes: a standalone Envoy with its own mesh identity (it calls its
 * routed services over mTLS like any caller), its public certificate, and a Service published
 * outside the cluster. Specs are pure functions; the component wires them to resources.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import {
  durationSeconds,
  EnvoySettings,
  GATEWAY_DEFAULT_PORT,
  GATEWAY_LISTEN_PORT,
  GatewayModel,
  MeshConfigError,
  MeshModel,
} from "./config";
import { buildGatewayFiles, GatewaySpec, JwtSpec } from "./envoy";
import { envoyDuration } from "./envoy/spec";
import { overloadSpec, tracingSpec, upstreamSpec } from "./envoy-units";
import {
  commonLabels,
  GATEWAY_PATHS,
  gatewayObjectNames,
  MESH_VOLUMES,
  selectorLabels,
} from "./names";
import { CertManagerIssuer } from "./cert-manager";
import {
  CertManagerCertificate,
  LeafCertificateState,
  tlsSecret,
  workloadIdentity,
} from "./identity";
import { leafTerms, ServiceCertificate, Signer, validityOf } from "./pki";
import { MIN_STOP_WINDOW_SECONDS, ShutdownPlan } from "./shutdown";
import {
  ENVOY_UID,
  envoyContainerOf,
  EnvoyConfigSource,
  meshPodSpec,
  scrapeAnnotations,
} from "./pod";
import {
  envoyConfigMapName,
  podDisruptionBudgetSpec,
  publishedServiceWait,
  versionedConfigMap,
} from "./workload";

/** Container port name of the gateway's TLS listener. */
export const GATEWAY_PORT_NAME = "https";

/** Label that tells the gateway's pods from a service's. */
export const COMPONENT_LABEL = { "app.kubernetes.io/component": "gateway" } as const;

/** The gateway's public certificate Secret: the user's, or the self-signed one the program writes. */
export function edgeSecretName(gateway: GatewayModel): string {
  return gateway.tls.secretName ?? gatewayObjectNames(gateway.name).edgeSecret;
}

/** A provider's token check in Envoy's units. */
function jwtSpec(jwt: NonNullable<GatewayModel["routes"][number]["jwt"]>): JwtSpec {
  const jwks: JwtSpec["jwks"] =
    jwt.jwksUri && jwt.jwksServer
      ? {
          uri: jwt.jwksUri,
          ...jwt.jwksServer,
          cacheDuration: envoyDuration(durationSeconds(jwt.jwksCacheDuration)),
        }
      : { inline: jwt.jwks ?? "" };
  return {
    provider: jwt.provider,
    issuer: jwt.issuer,
    audiences: [...jwt.audiences],
    jwks,
    requiredScopes: [...jwt.requiredScopes],
  };
}

/** The Envoy builders' input for the gateway. */
export function gatewaySpec(model: MeshModel, gateway: GatewayModel): GatewaySpec {
  return {
    name: gateway.name,
    listenPort: GATEWAY_LISTEN_PORT,
    ports: { ...model.envoy.ports },
    routes: gateway.routes.map((r) => ({
      ...(r.host ? { host: r.host } : {}),
      pathPrefix: r.pathPrefix,
      ...(r.rewritePrefix ? { rewritePrefix: r.rewritePrefix } : {}),
      upstream: upstreamSpec(r.upstream),
      ...(r.jwt ? { jwt: jwtSpec(r.jwt) } : {}),
      ...(r.resource ? { resource: { ...r.resource } } : {}),
      ...(r.public ? { public: true as const } : {}),
    })),
    ...(gateway.cors
      ? {
          cors: {
            allowOrigins: [...gateway.cors.allowOrigins],
            maxAge: envoyDuration(durationSeconds(gateway.cors.maxAge)),
          },
        }
      : {}),
    accessLog: model.envoy.accessLog,
    ...tracingSpec(model),
    overload: overloadSpec(model.envoy),
    bindAddress: model.envoy.bindAddress,
    paths: GATEWAY_PATHS,
  };
}

/** What preview says about `waitForAddress` when it is not the default wait. */
export function addressWaitWarnings(
  what: string,
  published: { type: string; waitForAddress: boolean | string },
): string[] {
  const wait = published.waitForAddress;
  if (wait === true) return [];
  const address = published.type === "LoadBalancer" ? "its load balancer's address" : "it";
  return [
    wait === false
      ? `${what}.waitForAddress is false: pulumi up does not wait for ${address}; outputs show it as pending until a pulumi up --refresh after it is there`
      : `${what}.waitForAddress is ${wait}: pulumi up fails if ${address} is not ready by then (the provider's default is 10m)`,
  ];
}

/** Warnings for a gateway that deploys but would not serve as meant. */
export function gatewayWarnings(gateway: GatewayModel): string[] {
  const warnings: string[] = [];
  const open = gateway.routes.filter((r) => !r.jwt && !r.public);
  for (const r of open)
    warnings.push(
      `gateway: route ${r.host ?? ""}${r.pathPrefix} reaches "${r.upstream.name}" without a token check (set gateway.auth, or routes[].public: true to say it is meant)`,
    );
  // RFC 2606 reserves these domains for examples: the shipped stacks' auth is one to edit.
  const placeholder = /(^|\.)example\.(com|org|net)$/;
  const issuers = new Set(gateway.routes.flatMap((r) => (r.jwt ? [r.jwt.issuer] : [])));
  for (const issuer of issuers)
    if (placeholder.test(new URL(issuer).hostname))
      warnings.push(
        `gateway: the token issuer ${issuer} is an example (RFC 2606): set gateway.auth.jwt to your authorization server before deploying; until then every token is refused (docs/gateway.md, first deploy)`,
      );
  warnings.push(...addressWaitWarnings("gateway: service", gateway.service));
  const { type, port } = gateway.service;
  if (type === "NodePort" && port !== undefined && (port < 30000 || port > 32767))
    warnings.push(
      `gateway: service.port ${port} is outside Kubernetes' default node port range (30000-32767); the API server refuses it unless the cluster's --service-node-port-range includes it`,
    );
  // MCP clients ask for tokens for the resource URL (RFC 8707); the issuer then puts it in `aud`.
  // Envoy compares audiences without the scheme and a trailing slash (check_audience.cc).
  const audience = (a: string) => a.replace(/^https?:\/\//, "").replace(/\/$/, "");
  for (const r of gateway.routes)
    if (r.jwt && r.resource && !r.jwt.audiences.map(audience).includes(audience(r.resource.url)))
      warnings.push(
        `gateway: route ${r.host ?? ""}${r.pathPrefix} is the resource ${r.resource.url}, which is not among its audiences (${r.jwt.audiences.join(", ")}); MCP clients ask for tokens for it, which Envoy would refuse`,
      );
  const byProvider = new Map<string, Set<string>>();
  for (const r of gateway.routes)
    if (r.jwt && r.resource)
      byProvider.set(
        r.jwt.provider,
        (byProvider.get(r.jwt.provider) ?? new Set()).add(r.resource.url),
      );
  for (const [provider, resources] of byProvider)
    if (resources.size > 1)
      warnings.push(
        `gateway: ${provider === "gateway" ? "gateway.auth" : provider} checks tokens for ${[...resources].join(", ")} with one list of audiences, so a token for one is accepted on all; give routes their own auth to keep them apart`,
      );
  const selfSignedNames = gateway.tls.selfSigned?.dnsNames ?? [];
  const hosts = [gateway.hostname, ...gateway.routes.map((r) => r.host)];
  for (const host of new Set(hosts.flatMap((h) => (h ? [h] : []))))
    if (gateway.tls.selfSigned && !selfSignedNames.includes(host))
      warnings.push(
        `gateway: ${host} is not among tls.selfSigned.dnsNames (${selfSignedNames.join(", ")}); clients checking the name refuse the certificate`,
      );
  if ("selfSigned" in gateway.tls && gateway.tls.selfSigned)
    warnings.push(
      `gateway: tls.selfSigned issues the public certificate from the mesh CA; clients must trust the mesh CA (the caCertificate output). Use tls.secretName with a public certificate outside development`,
    );
  return warnings;
}

/**
 * How the gateway stops: drain at once, and keep serving for preStopSeconds while the load
 * balancer takes the node out. With externalTrafficPolicy Local, kube-proxy's health check node
 * port fails once only terminating endpoints are left, and the load balancer stops sending after
 * its own failed checks (KEP-1669); until then new connections still arrive.
 */
export function gatewayShutdown(
  gateway: Pick<GatewayModel, "preStopSeconds">,
  envoy: EnvoySettings,
): ShutdownPlan {
  const hold = Math.max(envoy.drainSeconds, gateway.preStopSeconds);
  return {
    appPreStopSeconds: 0,
    envoy: { adminPort: envoy.ports.admin, drainSeconds: envoy.drainSeconds, holdSeconds: hold },
    terminationGracePeriodSeconds: hold + MIN_STOP_WINDOW_SECONDS + 3,
  };
}

/** The gateway's pod template: Envoy alone, hardened as the sidecars are. */
export function gatewayPodTemplate(
  gateway: GatewayModel,
  envoy: EnvoySettings,
  config: EnvoyConfigSource,
  imagePullSecrets: string[],
): k8s.types.input.core.v1.PodTemplateSpec {
  const stop = gatewayShutdown(gateway, envoy);
  const base = envoyContainerOf(gateway.name, envoy, stop, GATEWAY_PATHS, {
    name: GATEWAY_PORT_NAME,
    containerPort: GATEWAY_LISTEN_PORT,
  });
  const container: k8s.types.input.core.v1.Container = {
    ...base,
    volumeMounts: [
      ...base.volumeMounts,
      { name: MESH_VOLUMES.edgeCerts, mountPath: GATEWAY_PATHS.edgeCertDir, readOnly: true },
    ],
  };
  const pod = meshPodSpec({
    workload: gateway.name,
    // Secret files are mode 0440 owned by this group, readable by Envoy.
    fsGroup: ENVOY_UID,
    terminationGracePeriodSeconds: stop.terminationGracePeriodSeconds,
    imagePullSecrets,
    replicated: gateway.replicas > 1,
    configMapName: config.configMapName,
    issuer: config.issuer,
  });
  const annotations = scrapeAnnotations(envoy, config);
  return {
    metadata: {
      labels: { ...commonLabels(gateway.name), ...COMPONENT_LABEL },
      ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
    },
    spec: {
      ...pod,
      containers: [container],
      volumes: [
        ...pod.volumes,
        {
          name: MESH_VOLUMES.edgeCerts,
          secret: {
            secretName: edgeSecretName(gateway),
            defaultMode: 0o440,
            // Only the key pair: a cert-manager Secret also carries ca.crt, which is not ours.
            items: [
              { key: "tls.crt", path: "tls.crt" },
              { key: "tls.key", path: "tls.key" },
            ],
          },
        },
      ],
    },
  };
}

export function gatewayDeploymentSpec(
  gateway: GatewayModel,
  envoy: EnvoySettings,
  config: EnvoyConfigSource,
  imagePullSecrets: string[],
): k8s.types.input.apps.v1.DeploymentSpec {
  return {
    replicas: gateway.replicas,
    // A new pod counts as available only after the load balancer has had time to mark it healthy.
    minReadySeconds: gateway.minReadySeconds,
    selector: { matchLabels: selectorLabels(gateway.name) },
    strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
    template: gatewayPodTemplate(gateway, envoy, config, imagePullSecrets),
  };
}

/**
 * The gateway's Service: its public port (443 by default) to the TLS listener. Outside ClusterIP
 * it keeps the client's address (externalTrafficPolicy Local), so the NetworkPolicy's
 * sourceRanges see who connects.
 */
export function gatewayServiceSpec(gateway: GatewayModel): k8s.types.input.core.v1.ServiceSpec {
  const { type, port, sourceRanges } = gateway.service;
  const published = type === "NodePort" ? GATEWAY_DEFAULT_PORT : (port ?? GATEWAY_DEFAULT_PORT);
  return {
    type,
    selector: selectorLabels(gateway.name),
    ports: [
      {
        name: GATEWAY_PORT_NAME,
        port: published,
        targetPort: GATEWAY_LISTEN_PORT,
        protocol: "TCP",
        ...(type === "NodePort" && port !== undefined ? { nodePort: port } : {}),
      },
    ],
    ...(type === "ClusterIP" ? {} : { externalTrafficPolicy: "Local" }),
    ...(type === "LoadBalancer" && sourceRanges
      ? { loadBalancerSourceRanges: [...sourceRanges] }
      : {}),
  };
}

export interface MeshGatewayArgs {
  model: MeshModel;
  gateway: GatewayModel;
  namespace: pulumi.Input<string>;
  /** Who signs its certificates, and what it trusts. */
  signer: Signer;
  /** In cert-manager mode, the Issuer of its mesh identity. */
  certManager?: CertManagerIssuer;
  /** ConfigMap data: the gateway's Envoy files (`gatewayFiles`). */
  envoyFiles: Record<string, string>;
  /**
   * What the Deployment waits for besides its own objects, as a service's does: the
   * NetworkPolicies that select its pods, and the routed services' Deployments (a route added
   * or widened reaches pods whose allow-lists already admit it).
   */
  rolloutAfter?: pulumi.Resource[];
  rendered?: boolean;
  /** Provider of the Envoy ConfigMap versions (provider.ts: it upserts, for rollbacks). */
  envoyConfigProvider?: pulumi.ProviderResource;
  /** What every object is created after (the stack's claim on the namespace). */
  after?: pulumi.Resource[];
}

/** Kubernetes refuses a ConfigMap whose data exceeds 1 MiB; leave room for its metadata. */
export const CONFIGMAP_DATA_LIMIT_BYTES = 1000 * 1024;

/** The gateway's Envoy files, or a config error naming the routes when they cannot fit. */
export function gatewayFiles(model: MeshModel, gateway: GatewayModel): Record<string, string> {
  const files = buildGatewayFiles(gatewaySpec(model, gateway));
  const size = Object.entries(files).reduce(
    (n, [k, v]) => n + Buffer.byteLength(k) + Buffer.byteLength(v),
    0,
  );
  if (size > CONFIGMAP_DATA_LIMIT_BYTES)
    throw new MeshConfigError([
      `bookapi-mesh:gateway.routes: the gateway's Envoy config would be ${Math.ceil(size / 1024)} KiB, over the ${CONFIGMAP_DATA_LIMIT_BYTES / 1024} KiB a ConfigMap holds; use fewer routes or hosts (a route without a host is repeated on every named host)`,
    ]);
  return files;
}

/**
 * The ingress gateway: ServiceAccount, mesh identity Secret, public certificate Secret (when
 * self-signed), immutable Envoy ConfigMap, Deployment, Service and, when replicated, a PDB. The
 * same live-cluster rules as a mesh service (workload.ts): Secrets update in place, a config
 * change is a new ConfigMap first.
 */
export class MeshGateway extends pulumi.ComponentResource {
  public readonly serviceAccount: k8s.core.v1.ServiceAccount;
  /** Its mesh identity Secret, when the program writes it (`certificates.issuer: pulumi`). */
  public readonly secret?: k8s.core.v1.Secret;
  /** Its mesh identity's cert-manager Certificate (`certificates.issuer: cert-manager`). */
  public readonly certificate?: CertManagerCertificate;
  public readonly edgeSecret?: k8s.core.v1.Secret;
  public readonly configMap: k8s.core.v1.ConfigMap;
  public readonly deployment: k8s.apps.v1.Deployment;
  public readonly service: k8s.core.v1.Service;
  public readonly podDisruptionBudget?: k8s.policy.v1.PodDisruptionBudget;
  /** `<address>:<port>` clients dial, from the load balancer's status where there is one. */
  public readonly endpoint: pulumi.Output<string>;
  /** The node port of a NodePort gateway, as Kubernetes set it (fixed or assigned). */
  public readonly nodePort: pulumi.Output<number | undefined>;
  /** Dates and keys of its mesh identity and (selfSigned) public certificate. */
  public readonly certificates: pulumi.Output<Record<string, LeafCertificateState>>;

  constructor(name: string, args: MeshGatewayArgs, opts?: pulumi.ComponentResourceOptions) {
    super("bookapi-mesh:gateway:MeshGateway", name, {}, opts);
    const { model, gateway } = args;
    const names = gatewayObjectNames(gateway.name);
    const labels = { ...commonLabels(gateway.name), ...COMPONENT_LABEL };
    const meta = (objectName: string) => ({ name: objectName, namespace: args.namespace, labels });
    const after = args.after ?? [];
    const childOpts = { parent: this, deleteBeforeReplace: true, dependsOn: after };
    const certificates = model.certificates;

    const identityNames = {
      commonName: gateway.fqdn,
      dnsNames: gateway.dnsNames,
      uris: [gateway.spiffeId],
    };
    this.serviceAccount = new k8s.core.v1.ServiceAccount(
      `${name}-sa`,
      { metadata: meta(names.serviceAccount), automountServiceAccountToken: false },
      childOpts,
    );
    const identity = workloadIdentity(
      name,
      gateway.name,
      meta,
      // In cert-manager mode the mesh identity is cert-manager's; the public one stays the program's.
      args.certManager
        ? args.certManager.identity(gateway.name, identityNames, labels)
        : {
            issuer: "pulumi",
            tls: new ServiceCertificate(
              `${name}-identity`,
              { ...args.signer, ...leafTerms(certificates), ...identityNames },
              { parent: this },
            ),
          },
      childOpts,
    );
    if (identity.issuer === "pulumi") this.secret = identity.secret;
    else this.certificate = identity.certificate;
    const selfSigned = "selfSigned" in gateway.tls ? gateway.tls.selfSigned : undefined;
    const issued: Record<string, pulumi.Output<LeafCertificateState>> = {
      identity: identity.state,
    };
    if (selfSigned) {
      const edge = new ServiceCertificate(
        `${name}-edge`,
        {
          ...args.signer,
          ...leafTerms(certificates),
          commonName: selfSigned.dnsNames[0],
          dnsNames: selfSigned.dnsNames,
        },
        { parent: this },
      );
      this.edgeSecret = tlsSecret(`${name}-edge-tls`, meta(names.edgeSecret), edge, childOpts);
      issued.edge = edge.validity;
    }
    this.certificates = validityOf(issued);
    const files = args.envoyFiles;
    const configMapName = envoyConfigMapName(gateway.name, files);
    this.configMap = versionedConfigMap(
      `${name}-envoy`,
      meta(configMapName),
      files,
      args.rendered ? undefined : this.serviceAccount,
      this,
      args.envoyConfigProvider,
      after,
    );
    this.deployment = new k8s.apps.v1.Deployment(
      `${name}-deployment`,
      {
        metadata: meta(names.deployment),
        spec: gatewayDeploymentSpec(
          gateway,
          model.envoy,
          {
            configMapName,
            issuer: identity.issuer,
            scrapeAnnotations: model.observability.metrics.discovery === "annotations",
          },
          model.imagePullSecrets,
        ),
      },
      {
        ...childOpts,
        dependsOn: [
          ...after,
          this.serviceAccount,
          ...identity.podsNeed,
          this.configMap,
          ...(this.edgeSecret ? [this.edgeSecret] : []),
          ...(args.rolloutAfter ?? []),
        ],
      },
    );
    const { annotations, customTimeouts } = publishedServiceWait(gateway.service);
    this.service = new k8s.core.v1.Service(
      `${name}-service`,
      {
        metadata: { ...meta(names.service), ...(annotations ? { annotations } : {}) },
        spec: gatewayServiceSpec(gateway),
      },
      { ...childOpts, ...(customTimeouts ? { customTimeouts } : {}) },
    );
    if (gateway.replicas > 1) {
      this.podDisruptionBudget = new k8s.policy.v1.PodDisruptionBudget(
        `${name}-pdb`,
        {
          metadata: meta(names.podDisruptionBudget),
          spec: podDisruptionBudgetSpec(gateway),
        },
        childOpts,
      );
    }
    this.endpoint = pulumi
      .all([this.service.status, this.service.spec])
      .apply(([status, spec]) => gatewayEndpoint(gateway, status, spec));
    this.nodePort = this.service.spec.apply((spec) => spec?.ports?.[0]?.nodePort);
    this.registerOutputs({
      endpoint: this.endpoint,
      nodePort: this.nodePort,
      certificates: this.certificates,
    });
  }
}

/**
 * The URL a client uses for a route: its host (or the gateway's hostname) with the public port
 * (the node port Kubernetes assigned when none is set), else the gateway's endpoint.
 */
export function gatewayRouteUrl(
  gateway: GatewayModel,
  route: GatewayModel["routes"][number],
  endpoint: string,
  assignedNodePort?: number,
): string {
  const host = route.host ?? gateway.hostname;
  const published = gateway.publicPort ?? assignedNodePort ?? "<node port>";
  const port = published === GATEWAY_DEFAULT_PORT ? "" : `:${published}`;
  return `https://${host ? `${host}${port}` : endpoint}${route.pathPrefix}`;
}

/** Where clients reach the gateway, as far as Kubernetes knows it yet. */
export function gatewayEndpoint(
  gateway: GatewayModel,
  status: k8s.types.output.core.v1.ServiceStatus | undefined,
  spec: k8s.types.output.core.v1.ServiceSpec | undefined,
): string {
  const { type, port } = gateway.service;
  if (type === "NodePort")
    return `<any node running a gateway pod>:${spec?.ports?.[0]?.nodePort ?? port ?? "(assigned by Kubernetes)"}`;
  const published = port ?? GATEWAY_DEFAULT_PORT;
  if (type === "ClusterIP") return `${gateway.fqdn}:${published}`;
  const ingress = status?.loadBalancer?.ingress?.[0];
  const address = ingress?.hostname ?? ingress?.ip;
  if (!address) return "pending (no load balancer address yet)";
  return `${address.includes(":") ? `[${address}]` : address}:${published}`;
}
