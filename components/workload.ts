/**
 * One mesh service in Kubernetes: its identity (ServiceAccount, TLS Secret), its sidecar config
 * (ConfigMap), the pods (Deployment: app + Envoy) and the Service other sidecars dial.
 *
 * The specs are built by pure functions from plain values so they can be tested and validated
 * without Pulumi; the component only wires them to resources.
 */
import { createHash } from "node:crypto";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { EnvoySettings, PROJECT, ServiceModel } from "./config";
import { CERT_FILES, ENVOY_FILES, SIDECAR_PATHS } from "./envoy/model";

/** UID/GID of the `envoy` user in the official Envoy image. */
export const ENVOY_UID = 101;

/** Container port names; Services and probes refer to ports by these names. */
export const PORT_NAMES = {
  app: "http",
  inbound: "mtls",
  health: "envoy-health",
  metrics: "envoy-metrics",
} as const;

/** Names of the Kubernetes objects of one service; all fixed, because other objects refer to them. */
export function objectNames(service: string) {
  return {
    serviceAccount: service,
    secret: `${service}-tls`,
    configMap: `${service}-envoy`,
    deployment: service,
    service,
  };
}

/** Labels that select a service's pods. Kept minimal: a Deployment's selector is immutable. */
export function selectorLabels(service: string): Record<string, string> {
  return { "app.kubernetes.io/name": service, "app.kubernetes.io/part-of": PROJECT };
}

/** The recommended `app.kubernetes.io/*` labels for every object of a service. */
export function commonLabels(service: string): Record<string, string> {
  return {
    ...selectorLabels(service),
    "app.kubernetes.io/instance": service,
    "app.kubernetes.io/managed-by": "pulumi",
  };
}

/** sha256 of the Envoy ConfigMap data: in a pod annotation it rolls pods when the config changes. */
export function envoyConfigChecksum(files: Record<string, string>): string {
  const hash = createHash("sha256");
  for (const key of Object.keys(files).sort())
    hash.update(key).update("\0").update(files[key]).update("\0");
  return hash.digest("hex");
}

/** The outbound URL the app calls to reach its dependencies through Envoy. */
export function outboundUrl(envoy: EnvoySettings): string {
  return `http://127.0.0.1:${envoy.ports.outbound}`;
}

const VOLUMES = { config: "envoy-config", certs: "envoy-certs", tmp: "tmp" } as const;

function hardenedContainer(uid: number): k8s.types.input.core.v1.SecurityContext {
  return {
    runAsNonRoot: true,
    runAsUser: uid,
    runAsGroup: uid,
    readOnlyRootFilesystem: true,
    allowPrivilegeEscalation: false,
    privileged: false,
    capabilities: { drop: ["ALL"] },
    seccompProfile: { type: "RuntimeDefault" },
  };
}

/** The Envoy sidecar container. */
export function envoyContainer(
  service: ServiceModel,
  envoy: EnvoySettings,
): k8s.types.input.core.v1.Container {
  return {
    name: "envoy",
    image: envoy.image,
    // Bypass the image's entrypoint script, which only matters when starting as root.
    command: ["envoy"],
    args: [
      "--config-path",
      `${SIDECAR_PATHS.configDir}/${ENVOY_FILES.bootstrap}`,
      "--log-level",
      envoy.logLevel,
      "--service-node",
      service.name,
      "--service-cluster",
      service.name,
      // Hot restart needs shared memory and a writable /dev/shm; Kubernetes restarts pods instead.
      "--disable-hot-restart",
      "--drain-time-s",
      String(envoy.drainSeconds),
    ],
    ports: [
      { name: PORT_NAMES.inbound, containerPort: envoy.ports.inbound, protocol: "TCP" },
      { name: PORT_NAMES.health, containerPort: envoy.ports.health, protocol: "TCP" },
      { name: PORT_NAMES.metrics, containerPort: envoy.ports.metrics, protocol: "TCP" },
    ],
    readinessProbe: {
      httpGet: { path: "/healthz/ready", port: PORT_NAMES.health },
      periodSeconds: 5,
      failureThreshold: 3,
    },
    resources: { requests: { ...envoy.resources.requests }, limits: { ...envoy.resources.limits } },
    // Keeps Envoy serving while the app finishes its in-flight calls through it.
    lifecycle: {
      preStop: { exec: { command: ["sleep", String(shutdownTiming(envoy).preStopSeconds)] } },
    },
    securityContext: hardenedContainer(ENVOY_UID),
    volumeMounts: [
      { name: VOLUMES.config, mountPath: SIDECAR_PATHS.configDir, readOnly: true },
      { name: VOLUMES.certs, mountPath: SIDECAR_PATHS.certDir, readOnly: true },
    ],
  };
}

/**
 * Shutdown order: the preStop sleep keeps Envoy serving while endpoints are removed and the app
 * finishes (Envoy itself exits on SIGTERM; --drain-time-s bounds listener drains), and the pod's
 * grace period outlasts the preStop, so the kubelet never kills Envoy early.
 */
export function shutdownTiming(envoy: EnvoySettings): {
  drainSeconds: number;
  preStopSeconds: number;
  terminationGracePeriodSeconds: number;
} {
  const preStopSeconds = envoy.drainSeconds + 5;
  return {
    drainSeconds: envoy.drainSeconds,
    preStopSeconds,
    terminationGracePeriodSeconds: preStopSeconds + 10,
  };
}

/**
 * Envoy as a native sidecar (Kubernetes >= 1.29): an init container that keeps running. Its
 * startup probe holds back the app until Envoy is ready, and it is stopped after the app.
 */
export function nativeSidecar(
  container: k8s.types.input.core.v1.Container,
): k8s.types.input.core.v1.Container {
  return {
    ...container,
    restartPolicy: "Always",
    startupProbe: {
      httpGet: { path: "/healthz/ready", port: PORT_NAMES.health },
      periodSeconds: 1,
      failureThreshold: 60,
    },
  };
}

/** The application container. */
export function appContainer(
  service: ServiceModel,
  envoy: EnvoySettings,
): k8s.types.input.core.v1.Container {
  return {
    name: "app",
    image: service.image,
    ports: [{ name: PORT_NAMES.app, containerPort: service.port, protocol: "TCP" }],
    env: service.calls.length > 0 ? [{ name: "MESH_OUTBOUND_URL", value: outboundUrl(envoy) }] : [],
    readinessProbe: { tcpSocket: { port: PORT_NAMES.app }, periodSeconds: 5 },
    resources: {
      requests: { ...service.resources.requests },
      limits: { ...service.resources.limits },
    },
    securityContext: hardenedContainer(service.runAsUser),
    // A read-only root filesystem still needs somewhere to write temporary files.
    volumeMounts: [{ name: VOLUMES.tmp, mountPath: "/tmp" }],
  };
}

/** Pod template of a service: app + Envoy, no API token, hardened. */
export function podTemplate(
  service: ServiceModel,
  envoy: EnvoySettings,
  envoyFiles: Record<string, string>,
): k8s.types.input.core.v1.PodTemplateSpec {
  const names = objectNames(service.name);
  return {
    metadata: {
      labels: commonLabels(service.name),
      annotations: {
        "checksum/envoy-config": envoyConfigChecksum(envoyFiles),
        // Advertise scraping only where a NetworkPolicy lets a scraper in.
        ...(envoy.scrapeFrom.length > 0
          ? {
              "prometheus.io/scrape": "true",
              "prometheus.io/port": String(envoy.ports.metrics),
              "prometheus.io/path": "/stats/prometheus",
            }
          : {}),
      },
    },
    spec: {
      serviceAccountName: names.serviceAccount,
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      securityContext: {
        runAsNonRoot: true,
        // Secret files are mode 0440 owned by this group, readable by both containers.
        fsGroup: service.runAsUser,
        seccompProfile: { type: "RuntimeDefault" },
      },
      terminationGracePeriodSeconds: shutdownTiming(envoy).terminationGracePeriodSeconds,
      ...(envoy.sidecarMode === "native"
        ? {
            initContainers: [nativeSidecar(envoyContainer(service, envoy))],
            containers: [appContainer(service, envoy)],
          }
        : { containers: [appContainer(service, envoy), envoyContainer(service, envoy)] }),
      volumes: [
        { name: VOLUMES.config, configMap: { name: names.configMap, defaultMode: 0o444 } },
        { name: VOLUMES.certs, secret: { secretName: names.secret, defaultMode: 0o440 } },
        { name: VOLUMES.tmp, emptyDir: { sizeLimit: "64Mi" } },
      ],
    },
  };
}

/** Deployment spec of a service. */
export function deploymentSpec(
  service: ServiceModel,
  envoy: EnvoySettings,
  envoyFiles: Record<string, string>,
): k8s.types.input.apps.v1.DeploymentSpec {
  return {
    replicas: service.replicas,
    selector: { matchLabels: selectorLabels(service.name) },
    // Never drop below the desired count while rolling: a new pod must be ready first.
    strategy: { type: "RollingUpdate", rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
    template: podTemplate(service, envoy, envoyFiles),
  };
}

/** Service spec: the mTLS port always; the app port only when the stack exposes it. */
export function serviceSpec(
  service: ServiceModel,
  envoy: EnvoySettings,
): k8s.types.input.core.v1.ServiceSpec {
  const ports: k8s.types.input.core.v1.ServicePort[] = [
    {
      name: PORT_NAMES.inbound,
      port: envoy.ports.inbound,
      targetPort: PORT_NAMES.inbound,
      protocol: "TCP",
    },
  ];
  if (service.exposeDirectPort) {
    ports.push({
      name: PORT_NAMES.app,
      port: service.port,
      targetPort: PORT_NAMES.app,
      protocol: "TCP",
    });
  }
  return { type: "ClusterIP", selector: selectorLabels(service.name), ports };
}

/** Key material for one service's Secret. */
export interface ServiceTlsMaterial {
  certPem: pulumi.Input<string>;
  /** Must be a Pulumi secret. */
  privateKeyPem: pulumi.Input<string>;
  caCertPem: pulumi.Input<string>;
}

export interface MeshServiceArgs {
  /** The service, from the validated mesh model. */
  service: ServiceModel;
  /** Namespace of every object; pass the Namespace resource's name so it is created first. */
  namespace: pulumi.Input<string>;
  /** Sidecar settings. */
  envoy: EnvoySettings;
  /** ConfigMap data: the Envoy files from the pure builders (no secrets). */
  envoyFiles: Record<string, string>;
  /** The service's certificate, key and the CA certificate. */
  tls: ServiceTlsMaterial;
}

/** A mesh service: ServiceAccount, TLS Secret, Envoy ConfigMap, Deployment and Service. */
export class MeshService extends pulumi.ComponentResource {
  public readonly deploymentName: pulumi.Output<string>;
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
    const childOpts = { parent: this, deleteBeforeReplace: true };

    const account = new k8s.core.v1.ServiceAccount(
      `${name}-sa`,
      { metadata: meta(names.serviceAccount), automountServiceAccountToken: false },
      childOpts,
    );
    const secret = new k8s.core.v1.Secret(
      `${name}-tls`,
      {
        metadata: meta(names.secret),
        type: "kubernetes.io/tls",
        stringData: {
          [CERT_FILES.certificate]: args.tls.certPem,
          [CERT_FILES.privateKey]: pulumi.secret(args.tls.privateKeyPem),
          [CERT_FILES.ca]: args.tls.caCertPem,
        },
      },
      childOpts,
    );
    const configMap = new k8s.core.v1.ConfigMap(
      `${name}-envoy`,
      { metadata: meta(names.configMap), data: args.envoyFiles },
      childOpts,
    );
    const deployment = new k8s.apps.v1.Deployment(
      `${name}-deployment`,
      { metadata: meta(names.deployment), spec: deploymentSpec(svc, args.envoy, args.envoyFiles) },
      { ...childOpts, dependsOn: [account, secret, configMap] },
    );
    const service = new k8s.core.v1.Service(
      `${name}-service`,
      { metadata: meta(names.service), spec: serviceSpec(svc, args.envoy) },
      childOpts,
    );

    this.deploymentName = deployment.metadata.name;
    this.serviceName = service.metadata.name;
    this.mtlsEndpoint = pulumi.output(`${svc.fqdn}:${args.envoy.ports.inbound}`);
    this.registerOutputs({
      deploymentName: this.deploymentName,
      serviceName: this.serviceName,
      mtlsEndpoint: this.mtlsEndpoint,
    });
  }
}
