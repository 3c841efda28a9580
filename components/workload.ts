/**
 * One mesh service in Kubernetes: its identity (ServiceAccount, TLS Secret), its sidecar config
 * (ConfigMap), its workload (a Deployment or StatefulSet of pods built by pod.ts and injector.ts)
 * and the Services other sidecars dial.
 *
 * The specs are built by pure functions from plain values so they can be tested and validated
 * without Pulumi; the component only wires them to resources.
 */
import { createHash } from "node:crypto";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { BuiltServiceModel, EnvoySettings, ServiceModel } from "./config";
import { commonLabels, objectNames, podSelectorLabels, selectorLabels } from "./names";
import {
  CertManagerCertificate,
  IdentitySource,
  LeafCertificateState,
  workloadIdentity,
} from "./identity";
import { injectMesh, MeshInjection } from "./injector";
import { appPodTemplate, EnvoyConfigSource, isReplicated, PORT_NAMES } from "./pod";

/** sha256 of the Envoy files, key by key. */
export function envoyConfigChecksum(files: Record<string, string>): string {
  const hash = createHash("sha256");
  for (const key of Object.keys(files).sort())
    hash.update(key).update("\0").update(files[key]).update("\0");
  return hash.digest("hex");
}

/**
 * `<service>-envoy-<hash>`: one immutable ConfigMap per Envoy config version, as kustomize's
 * configMapGenerator names them. A new version is a new object, created before the Deployment
 * moves to it; pods of the old ReplicaSet keep reading the old one until it is deleted.
 */
export function envoyConfigMapName(service: string, files: Record<string, string>): string {
  return `${objectNames(service).configMapPrefix}${envoyConfigChecksum(files).slice(0, 10)}`;
}

/** Pod template of a service the mesh builds: its app pod template with the mesh injected. */
export function podTemplate(
  service: BuiltServiceModel,
  envoy: EnvoySettings,
  config: EnvoyConfigSource,
  kubernetesMinor: number,
): k8s.types.input.core.v1.PodTemplateSpec {
  return injectMesh(appPodTemplate(service, envoy, kubernetesMinor), {
    service,
    envoy,
    config,
  });
}

/**
 * What the workload the mesh builds has, of either kind: the replica count (none when an HPA owns
 * it), the selector, the pods.
 */
function builtWorkload(
  service: BuiltServiceModel,
  envoy: EnvoySettings,
  config: EnvoyConfigSource,
  kubernetesMinor: number,
): Pick<k8s.types.input.apps.v1.DeploymentSpec, "replicas" | "selector" | "template"> {
  return {
    ...(service.autoscaling ? {} : { replicas: service.replicas }),
    selector: { matchLabels: selectorLabels(service.name) },
    template: podTemplate(service, envoy, config, kubernetesMinor),
  };
}

/** Deployment spec of a service. */
export function deploymentSpec(
  service: BuiltServiceModel,
  envoy: EnvoySettings,
  config: EnvoyConfigSource,
  kubernetesMinor: number,
): k8s.types.input.apps.v1.DeploymentSpec {
  return {
    ...builtWorkload(service, envoy, config, kubernetesMinor),
    // Never drop below the desired count while rolling: a new pod must be ready first.
    strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
  };
}

/**
 * StatefulSet spec of a service the mesh builds as one: stable pod names and DNS records under
 * its headless Service (`<name>-pods`, which callers' sidecars already resolve). Pods start and
 * stop in parallel (a mesh service needs no ordinal order, and OrderedReady would serialise
 * every rollout and scale-up); a rollout replaces one pod at a time, highest ordinal first.
 */
export function statefulSetSpec(
  service: BuiltServiceModel,
  envoy: EnvoySettings,
  config: EnvoyConfigSource,
  kubernetesMinor: number,
): k8s.types.input.apps.v1.StatefulSetSpec {
  return {
    ...builtWorkload(service, envoy, config, kubernetesMinor),
    serviceName: objectNames(service.name).podsService,
    podManagementPolicy: "Parallel",
    updateStrategy: { type: "RollingUpdate" },
  };
}

/**
 * Service spec: the mTLS port always; the app port only when the stack exposes it. Target ports
 * are numbers: a name declared only on the native sidecar (an init container) resolves to no
 * endpoint before Kubernetes 1.32 (kubernetes#127958), and stays unreliable after it
 * (kubernetes#134651 for LoadBalancer Services, projectcalico/calico#8881 for policies).
 */
export function serviceSpec(
  service: ServiceModel,
  envoy: EnvoySettings,
): k8s.types.input.core.v1.ServiceSpec {
  const ports = [mtlsServicePort(envoy)];
  if (service.exposeDirectPort) {
    ports.push({
      name: PORT_NAMES.app,
      port: service.port,
      targetPort: service.port,
      protocol: "TCP",
    });
  }
  return { type: "ClusterIP", selector: podSelectorLabels(service), ports };
}

/** The mTLS port of a Service, `port` (the sidecar's inbound port by default) to that port. */
function mtlsServicePort(
  envoy: EnvoySettings,
  port = envoy.ports.inbound,
): k8s.types.input.core.v1.ServicePort {
  return { name: PORT_NAMES.inbound, port, targetPort: envoy.ports.inbound, protocol: "TCP" };
}

/**
 * The headless Service callers' sidecars resolve: one DNS record per ready pod, so Envoy balances
 * per request and can eject a bad pod (through the ClusterIP Service Envoy would see one host).
 */
export function podsServiceSpec(
  service: ServiceModel,
  envoy: EnvoySettings,
): k8s.types.input.core.v1.ServiceSpec {
  return {
    clusterIP: "None",
    selector: podSelectorLabels(service),
    ports: [mtlsServicePort(envoy)],
  };
}

/**
 * The Service that publishes a service's mTLS port outside the cluster (`expose`), beside the
 * in-mesh one, which stays ClusterIP. `externalTrafficPolicy: Local` keeps the client's address
 * (kube-proxy would otherwise SNAT it to a node's), so the NetworkPolicy's ipBlocks see who
 * connects; the load balancer's own sourceRanges filter where the cloud supports them.
 */
export function externalServiceSpec(
  service: ServiceModel,
  envoy: EnvoySettings,
  expose: NonNullable<ServiceModel["expose"]>,
): k8s.types.input.core.v1.ServiceSpec {
  const port: k8s.types.input.core.v1.ServicePort = {
    ...mtlsServicePort(envoy, expose.type === "LoadBalancer" ? expose.port : undefined),
    ...(expose.type === "NodePort" && expose.port !== undefined ? { nodePort: expose.port } : {}),
  };
  return {
    type: expose.type,
    selector: podSelectorLabels(service),
    ports: [port],
    externalTrafficPolicy: "Local",
    ...(expose.type === "LoadBalancer" && expose.sourceRanges
      ? { loadBalancerSourceRanges: [...expose.sourceRanges] }
      : {}),
  };
}

/** pulumi-kubernetes skips its readiness wait for an object with this annotation (#417). */
export const SKIP_AWAIT_ANNOTATION = "pulumi.com/skipAwait";

/**
 * The annotations and resource options of a Service published outside the cluster: its own
 * annotations, and how long `pulumi up` waits for it (`waitForAddress`). pulumi-kubernetes waits
 * up to 10 minutes for a LoadBalancer's address; `customTimeouts` bound that wait (#672) and the
 * skipAwait annotation drops it.
 */
export function publishedServiceWait(published: {
  annotations?: Record<string, string>;
  waitForAddress: boolean | string;
}): { annotations?: Record<string, string>; customTimeouts?: pulumi.CustomTimeouts } {
  const wait = published.waitForAddress;
  const annotations = {
    ...published.annotations,
    ...(wait === false ? { [SKIP_AWAIT_ANNOTATION]: "true" } : {}),
  };
  return {
    ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
    ...(typeof wait === "string" ? { customTimeouts: { create: wait, update: wait } } : {}),
  };
}

/**
 * At most one pod of a replicated service down for a voluntary disruption (a node drain); pods
 * that are not ready anyway may always be evicted, so a crash-looping pod cannot block a drain.
 */
export function podDisruptionBudgetSpec(
  service: Pick<ServiceModel, "name">,
): k8s.types.input.policy.v1.PodDisruptionBudgetSpec {
  return {
    maxUnavailable: 1,
    selector: { matchLabels: selectorLabels(service.name) },
    unhealthyPodEvictionPolicy: "AlwaysAllow",
  };
}

/** Scales the workload on CPU use (relative to requests, which every container sets). */
export function autoscalerSpec(
  service: BuiltServiceModel,
  autoscaling: NonNullable<BuiltServiceModel["autoscaling"]>,
): k8s.types.input.autoscaling.v2.HorizontalPodAutoscalerSpec {
  return {
    scaleTargetRef: { apiVersion: "apps/v1", ...service.workload },
    minReplicas: autoscaling.minReplicas,
    maxReplicas: autoscaling.maxReplicas,
    metrics: [
      {
        type: "Resource",
        resource: {
          name: "cpu",
          target: { type: "Utilization", averageUtilization: autoscaling.targetCPUUtilization },
        },
      },
    ],
  };
}

/**
 * One Envoy config version as an immutable ConfigMap. A new name per version, so a replacement is
 * create-before-delete (no deleteBeforeReplace). Pulumi never deletes a version (retainOnDelete):
 * after a failed rollout the engine would delete the old one at the start of the next update,
 * under the ReplicaSet still serving, and `kubectl rollout undo` needs it too. Kubernetes deletes
 * every version with the ServiceAccount that owns them (`owner`; none when rendered, where there
 * are no UIDs), i.e. when the workload leaves the stack.
 */
export function versionedConfigMap(
  resourceName: string,
  metadata: { name: string; namespace: pulumi.Input<string>; labels: Record<string, string> },
  files: Record<string, string>,
  owner: k8s.core.v1.ServiceAccount | undefined,
  parent: pulumi.Resource,
  provider: pulumi.ProviderResource | undefined,
  after: pulumi.Resource[] = [],
): k8s.core.v1.ConfigMap {
  return new k8s.core.v1.ConfigMap(
    resourceName,
    {
      metadata: {
        ...metadata,
        ...(owner
          ? {
              ownerReferences: [
                {
                  apiVersion: "v1",
                  kind: "ServiceAccount",
                  name: owner.metadata.name,
                  uid: owner.metadata.uid,
                },
              ],
            }
          : {}),
      },
      immutable: true,
      data: files,
    },
    // A rolled-back version is created again while it still exists: only this provider upserts.
    { parent, retainOnDelete: true, dependsOn: after, ...(provider ? { provider } : {}) },
  );
}

export interface MeshServiceArgs {
  /** The service, from the validated mesh model. */
  service: ServiceModel;
  /** Namespace of every object; pass the Namespace resource's name so it is created first. */
  namespace: pulumi.Input<string>;
  /** Sidecar settings. */
  envoy: EnvoySettings;
  /** Minor version of the oldest Kubernetes the stack targets (version-dependent choices). */
  kubernetesMinor: number;
  /** ConfigMap data: the Envoy files from the pure builders (no secrets). */
  envoyFiles: Record<string, string>;
  /** Its certificate, key and trust bundle: a Secret from the program, or a cert-manager Certificate. */
  identity: IdentitySource;
  /** Objects are rendered to YAML, not created: there are no UIDs to refer to. */
  rendered?: boolean;
  /** Its pods advertise scraping with `prometheus.io/*` annotations. */
  scrapeAnnotations: boolean;
  /** Provider of the Envoy ConfigMap versions (provider.ts: it upserts, for rollbacks). */
  envoyConfigProvider?: pulumi.ProviderResource;
  /** What every object is created after (the stack's claim on the namespace). */
  after?: pulumi.Resource[];
  /**
   * What the pods wait for besides their own objects: the NetworkPolicies that select them (no
   * pod runs unisolated) and the workloads of the services it calls (their pods admit it before
   * its own pods may call).
   */
  rolloutAfter?: pulumi.Resource[];
}

/** On an adopted service's ServiceAccount: the workload it adopts (`<kind>/<name>`), for policies. */
export const ADOPTED_WORKLOAD_ANNOTATION = "bookapi-mesh/workload";

/**
 * A mesh service: ServiceAccount, TLS Secret (or cert-manager Certificate), Envoy ConfigMap,
 * Services, and its workload (a Deployment or StatefulSet), plus a PodDisruptionBudget when
 * replicated and an HPA when autoscaled. An adopted service (`workload`) gets all but the workload
 * and what belongs to it: its owner declares the pods, into which the sidecar is injected
 * (`injection`, docs/injection.md).
 *
 * What a change does on a live cluster (docs/operations.md has the table): a certificate renewal
 * updates the Secret in place (the provider needs `enableSecretMutable`, see provider.ts) and
 * Envoy reloads it through SDS, no pod restarts; an Envoy config change creates a new immutable
 * ConfigMap and rolls the workload onto it; old versions stay for the old ReplicaSets.
 */
export class MeshService extends pulumi.ComponentResource {
  public readonly serviceAccount: k8s.core.v1.ServiceAccount;
  /** Its identity Secret, when the program writes it (`certificates.issuer: pulumi`). */
  public readonly secret?: k8s.core.v1.Secret;
  /** Its cert-manager Certificate (`certificates.issuer: cert-manager`). */
  public readonly certificate?: CertManagerCertificate;
  /** Its certificate as the stack's `certificates` output shows it. */
  public readonly certificateState: pulumi.Output<LeafCertificateState>;
  public readonly configMap: k8s.core.v1.ConfigMap;
  /** The workload the mesh builds; none for an adopted service. */
  public readonly workload?: k8s.apps.v1.Deployment | k8s.apps.v1.StatefulSet;
  public readonly service: k8s.core.v1.Service;
  /** Headless: resolves to the ready pods, for callers' sidecars. */
  public readonly podsService: k8s.core.v1.Service;
  /** Publishes the mTLS port outside the cluster, with `expose`. */
  public readonly externalService?: k8s.core.v1.Service;
  public readonly podDisruptionBudget?: k8s.policy.v1.PodDisruptionBudget;
  public readonly autoscaler?: k8s.autoscaling.v2.HorizontalPodAutoscaler;
  /** What the sidecar injector adds to this service's pods, and what they need first. */
  public readonly injection: MeshInjection;
  /** Objects the pods mount or are isolated by, which must exist before they start. */
  public readonly podsNeed: pulumi.Resource[];
  public readonly workloadName: pulumi.Output<string>;
  public readonly serviceName: pulumi.Output<string>;
  /** `<fqdn>:<inbound>`: where other sidecars reach this service. */
  public readonly mtlsEndpoint: pulumi.Output<string>;

  constructor(name: string, args: MeshServiceArgs, opts?: pulumi.ComponentResourceOptions) {
    super("bookapi-mesh:workload:MeshService", name, {}, opts);
    const svc = args.service;
    const names = objectNames(svc.name);
    const labels = commonLabels(svc.name);
    const meta = (objectName: string) => ({ name: objectName, namespace: args.namespace, labels });
    // Fixed names: a replacement must delete the old object before creating its successor.
    const after = args.after ?? [];
    const childOpts = { parent: this, deleteBeforeReplace: true, dependsOn: after };

    this.serviceAccount = new k8s.core.v1.ServiceAccount(
      `${name}-sa`,
      {
        metadata: {
          ...meta(names.serviceAccount),
          ...(svc.adopted
            ? {
                annotations: {
                  [ADOPTED_WORKLOAD_ANNOTATION]: `${svc.workload.kind}/${svc.workload.name}`,
                },
              }
            : {}),
        },
        automountServiceAccountToken: false,
      },
      childOpts,
    );
    const identity = workloadIdentity(name, svc.name, meta, args.identity, childOpts);
    if (identity.issuer === "pulumi") this.secret = identity.secret;
    else this.certificate = identity.certificate;
    this.certificateState = identity.state;
    const configMapName = envoyConfigMapName(svc.name, args.envoyFiles);
    this.configMap = versionedConfigMap(
      `${name}-envoy`,
      meta(configMapName),
      args.envoyFiles,
      args.rendered ? undefined : this.serviceAccount,
      this,
      args.envoyConfigProvider,
      after,
    );
    this.injection = {
      service: svc,
      envoy: args.envoy,
      config: {
        configMapName,
        issuer: args.identity.issuer,
        scrapeAnnotations: args.scrapeAnnotations,
      },
    };
    this.podsNeed = [
      ...after,
      this.serviceAccount,
      ...identity.podsNeed,
      this.configMap,
      ...(args.rolloutAfter ?? []),
    ];
    if (!svc.adopted) {
      const spec = { svc, envoy: args.envoy, config: this.injection.config };
      const workloadOpts = { ...childOpts, dependsOn: this.podsNeed };
      this.workload =
        svc.workload.kind === "Deployment"
          ? new k8s.apps.v1.Deployment(
              `${name}-deployment`,
              {
                metadata: meta(names.deployment),
                spec: deploymentSpec(svc, spec.envoy, spec.config, args.kubernetesMinor),
              },
              workloadOpts,
            )
          : new k8s.apps.v1.StatefulSet(
              `${name}-statefulset`,
              {
                metadata: meta(names.deployment),
                spec: statefulSetSpec(svc, spec.envoy, spec.config, args.kubernetesMinor),
              },
              workloadOpts,
            );
    }
    this.service = new k8s.core.v1.Service(
      `${name}-service`,
      { metadata: meta(names.service), spec: serviceSpec(svc, args.envoy) },
      childOpts,
    );
    this.podsService = new k8s.core.v1.Service(
      `${name}-pods`,
      { metadata: meta(names.podsService), spec: podsServiceSpec(svc, args.envoy) },
      childOpts,
    );
    if (svc.expose) {
      const { annotations, customTimeouts } = publishedServiceWait(svc.expose);
      this.externalService = new k8s.core.v1.Service(
        `${name}-ext`,
        {
          metadata: { ...meta(names.externalService), ...(annotations ? { annotations } : {}) },
          spec: externalServiceSpec(svc, args.envoy, svc.expose),
        },
        { ...childOpts, ...(customTimeouts ? { customTimeouts } : {}) },
      );
    }
    if (!svc.adopted && isReplicated(svc)) {
      this.podDisruptionBudget = new k8s.policy.v1.PodDisruptionBudget(
        `${name}-pdb`,
        { metadata: meta(names.podDisruptionBudget), spec: podDisruptionBudgetSpec(svc) },
        childOpts,
      );
    }
    if (!svc.adopted && svc.autoscaling) {
      this.autoscaler = new k8s.autoscaling.v2.HorizontalPodAutoscaler(
        `${name}-hpa`,
        { metadata: meta(names.autoscaler), spec: autoscalerSpec(svc, svc.autoscaling) },
        { ...childOpts, dependsOn: this.workload ? [this.workload] : [] },
      );
    }

    this.workloadName = this.workload
      ? this.workload.metadata.name
      : pulumi.output(svc.workload.name);
    this.serviceName = this.service.metadata.name;
    this.mtlsEndpoint = pulumi.output(`${svc.fqdn}:${args.envoy.ports.inbound}`);
    this.registerOutputs({
      workloadName: this.workloadName,
      serviceName: this.serviceName,
      mtlsEndpoint: this.mtlsEndpoint,
    });
  }
}
