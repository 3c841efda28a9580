import assert from "node:assert/strict";
import * as k8s from "@pulumi/kubernetes";
import { X509Certificate } from "node:crypto";
import { loadMeshConfig, MeshModel } from "../components/config";
import { STACK_CLAIM_NAME } from "../components/names";
import { monitoringName } from "../components/observability";
import { envoyConfigMapName } from "../components/workload";
import {
  builtService,
  builtServices,
  envoyConfigMapOf,
  findObject,
  kindOf,
  kubernetesObjects,
  metadataName,
  ofType,
  ProgramRun,
  runProgram,
  runStack,
  STACKS,
  stackConfig,
  StackName,
} from "./harness/program";

// Kubernetes' own types, in the plain (output) form the objects have once resolved.
type Container = k8s.types.output.core.v1.Container;
type PodSpec = k8s.types.output.core.v1.PodSpec;
type DeploymentSpec = k8s.types.output.apps.v1.DeploymentSpec;
type ServicePort = Pick<k8s.types.output.core.v1.ServicePort, "name" | "port" | "targetPort">;

/** The app and Envoy containers of a pod, wherever the sidecar mode puts Envoy. */
function containersOf(pod: PodSpec): { app: Container; envoy: Container } {
  const all = [...(pod.initContainers ?? []), ...pod.containers];
  const app = pod.containers.find((c) => c.name === "app");
  const envoy = all.find((c) => c.name === "envoy");
  assert.ok(app && envoy, "pod lacks the app or the envoy container");
  return { app, envoy };
}
const spec = <T>(r: { inputs: Record<string, unknown> }): T => r.inputs.spec as T;

/** Certificates the fake tls provider issued, keyed by the resource's logical name. */
function certificate(run: ProgramRun, logicalName: string): X509Certificate {
  const [cert] = run.resources.filter((r) => r.name === logicalName);
  assert.ok(cert, `no resource ${logicalName}`);
  return new X509Certificate(String(cert.state.certPem));
}

function dnsSans(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? "")
    .split(", ")
    .filter((s) => s.startsWith("DNS:"))
    .map((s) => s.slice(4))
    .sort();
}

describe("the mesh program, per shipped stack", () => {
  const runs = new Map<StackName, ProgramRun>();
  const models = new Map<StackName, MeshModel>();
  before(async () => {
    for (const stack of STACKS) {
      runs.set(stack, await runStack(stack));
      models.set(stack, loadMeshConfig(stackConfig(stack)));
    }
  });
  const runOf = (stack: StackName) => runs.get(stack) as ProgramRun;
  const modelOf = (stack: StackName) => models.get(stack) as MeshModel;

  for (const stack of STACKS) {
    describe(`stack ${stack}`, () => {
      it("holds exactly the two services of the seed design, bookapi-mcp-server calling bookapi", () => {
        const model = modelOf(stack);
        assert.deepEqual(
          model.services.map((s) => [s.name, s.port, s.upstreams.map((u) => u.name)]),
          [
            ["bookapi", 5288, []],
            ["bookapi-mcp-server", 5289, ["bookapi"]],
          ],
        );
      });

      it("registers exactly the expected Kubernetes objects, each with its fixed name in the stack's namespace", () => {
        const run = runOf(stack);
        const model = modelOf(stack);
        const expected: string[] = ["ConfigMap/bookapi-mesh-stack"];
        if (model.createNamespace) expected.push(`Namespace/${model.namespace}`);
        for (const s of ["bookapi", "bookapi-mcp-server"]) {
          expected.push(
            `ServiceAccount/${s}`,
            `Secret/${s}-tls`,
            `ConfigMap/${s}-envoy-<hash>`,
            `Deployment/${s}`,
            `Service/${s}`,
            `Service/${s}-pods`,
          );
          if (builtService(model, s).replicas !== 1) expected.push(`PodDisruptionBudget/${s}`);
        }
        expected.push(
          "NetworkPolicy/bookapi-mesh-default-deny",
          "NetworkPolicy/bookapi-mesh",
          "NetworkPolicy/bookapi-mcp-server-mesh",
        );
        // Every shipped stack routes the MCP server through the gateway.
        const gw = model.gateway;
        assert.ok(gw);
        expected.push(
          `ServiceAccount/${gw.name}`,
          `Secret/${gw.name}-tls`,
          `ConfigMap/${gw.name}-envoy-<hash>`,
          `Deployment/${gw.name}`,
          `Service/${gw.name}`,
          `NetworkPolicy/${gw.name}-mesh`,
          ...(gw.tls.selfSigned ? [`Secret/${gw.name}-edge-tls`] : []),
          ...(gw.replicas > 1 ? [`PodDisruptionBudget/${gw.name}`] : []),
        );
        // The prometheus-operator objects live where its Prometheus looks for them.
        const o = model.observability;
        const monitoring = o.prometheus.namespace ?? model.namespace;
        if (o.metrics.discovery === "podMonitor")
          expected.push(`PodMonitor/bookapi-mesh-${model.namespace}`);
        if (o.alerts.enabled) expected.push(`PrometheusRule/bookapi-mesh-${model.namespace}`);
        if (o.dashboard.enabled)
          expected.push(`ConfigMap/bookapi-mesh-${model.namespace}-dashboard`);
        const actual = kubernetesObjects(run).map((r) =>
          `${kindOf(r.type)}/${metadataName(r)}`.replace(/-envoy-[0-9a-f]{10}$/, "-envoy-<hash>"),
        );
        assert.deepEqual(actual.sort(), expected.sort());
        for (const r of kubernetesObjects(run)) {
          if (kindOf(r.type) === "Namespace") continue;
          const kind = kindOf(r.type);
          assert.equal(
            (r.inputs.metadata as { namespace: string }).namespace,
            kind === "PodMonitor" || kind === "PrometheusRule"
              ? monitoring
              : metadataName(r).endsWith("-dashboard")
                ? (o.dashboard.namespace ?? model.namespace)
                : model.namespace,
            `${r.name}`,
          );
        }
      });

      it("replaces fixed-name objects delete-first and versioned Envoy ConfigMaps create-first, keeping old versions owned by the ServiceAccount, each parented to a mesh component", () => {
        const run = runOf(stack);
        for (const r of kubernetesObjects(run)) {
          const kind = kindOf(r.type);
          // Updated in place: the namespace claim and the dashboard (nothing running reads them).
          const inPlace = [
            STACK_CLAIM_NAME,
            `${monitoringName(loadMeshConfig(stackConfig(stack)))}-dashboard`,
          ];
          if (kind === "ConfigMap" && !inPlace.includes(metadataName(r))) {
            assert.equal(r.deleteBeforeReplace, false, r.name);
            assert.equal(r.inputs.immutable, true, r.name);
            // Versions outlive their place in state; Kubernetes collects them with their owner.
            assert.equal(r.retainOnDelete, true, r.name);
            const owners = (
              r.inputs.metadata as { ownerReferences?: Array<Record<string, unknown>> }
            ).ownerReferences;
            if (stack === "local") assert.equal(owners, undefined, "a render has no UIDs");
            else {
              const service = metadataName(r).replace(/-envoy-[0-9a-f]{10}$/, "");
              const account = findObject(run, "ServiceAccount", service);
              assert.deepEqual(owners, [
                {
                  apiVersion: "v1",
                  kind: "ServiceAccount",
                  name: service,
                  uid: (account.state.metadata as { uid: string }).uid,
                },
              ]);
            }
          } else {
            assert.equal(r.retainOnDelete, false, r.name);
            if (kind !== "Namespace") assert.equal(r.deleteBeforeReplace, true, r.name);
          }
          assert.match(r.parent, /::bookapi-mesh:(mesh|workload|network-policy|gateway):/, r.name);
        }
      });

      it("creates one CA and one key, CSR and certificate per service, the gateway's identity and a self-signed gateway certificate with the tls provider", () => {
        const run = runOf(stack);
        // Both services, the gateway's mesh identity, and in dev its public certificate.
        const issued = 3 + (modelOf(stack).gateway?.tls.selfSigned ? 1 : 0);
        assert.equal(ofType(run, "tls:index/selfSignedCert:SelfSignedCert").length, 1);
        assert.equal(ofType(run, "tls:index/privateKey:PrivateKey").length, issued + 1);
        assert.equal(ofType(run, "tls:index/certRequest:CertRequest").length, issued);
        assert.equal(ofType(run, "tls:index/locallySignedCert:LocallySignedCert").length, issued);
        const [ca] = ofType(run, "tls:index/selfSignedCert:SelfSignedCert");
        assert.equal(ca.inputs.isCaCertificate, true);
        assert.deepEqual([...(ca.inputs.allowedUses as string[])].sort(), [
          "cert_signing",
          "crl_signing",
        ]);
        assert.equal(ca.inputs.validityPeriodHours, modelOf(stack).certificates.caValidityHours);
      });

      it("issues each service a certificate with its four DNS SANs, both TLS roles and the stack's lifetime", () => {
        const run = runOf(stack);
        const model = modelOf(stack);
        const ca = new X509Certificate(String(run.outputs.caCertificate));
        for (const svc of model.services) {
          const cert = certificate(run, `mesh-${svc.name}-cert`);
          assert.deepEqual(
            dnsSans(cert),
            [
              svc.name,
              `${svc.name}.${model.namespace}`,
              `${svc.name}.${model.namespace}.svc`,
              `${svc.name}.${model.namespace}.svc.cluster.local`,
            ].sort(),
          );
          assert.ok(cert.verify(ca.publicKey), "signed by the mesh CA");
          const [signed] = run.resources.filter((r) => r.name === `mesh-${svc.name}-cert`);
          assert.deepEqual([...(signed.inputs.allowedUses as string[])].sort(), [
            "client_auth",
            "digital_signature",
            "server_auth",
          ]);
          assert.equal(signed.inputs.validityPeriodHours, model.certificates.validityHours);
          assert.equal(signed.inputs.earlyRenewalHours, model.certificates.earlyRenewalHours);
        }
      });

      it("puts the service's own certificate, key and the CA certificate in its kubernetes.io/tls Secret, key sent as a secret", () => {
        const run = runOf(stack);
        for (const name of ["bookapi", "bookapi-mcp-server"]) {
          const secret = findObject(run, "Secret", `${name}-tls`);
          assert.equal(secret.inputs.type, "kubernetes.io/tls");
          const data = secret.inputs.stringData as Record<string, string>;
          assert.deepEqual(Object.keys(data).sort(), ["ca.crt", "tls.crt", "tls.key"]);
          assert.match(data["tls.key"], /-----BEGIN (EC |RSA )?PRIVATE KEY-----/);
          assert.equal(
            data["tls.crt"],
            String(run.resources.find((r) => r.name === `mesh-${name}-cert`)?.state.certPem),
          );
          assert.equal(data["ca.crt"], run.outputs.caCertificate);
          assert.ok(
            secret.secretInputs.includes("stringData.tls.key") ||
              secret.secretInputs.includes("stringData"),
            JSON.stringify(secret.secretInputs),
          );
        }
      });

      it("keeps every private key out of ConfigMaps and stack outputs, and the CA key out of the cluster", () => {
        const run = runOf(stack);
        for (const cm of kubernetesObjects(run).filter((r) => kindOf(r.type) === "ConfigMap")) {
          assert.doesNotMatch(JSON.stringify(cm.inputs), /PRIVATE KEY/);
        }
        assert.doesNotMatch(JSON.stringify(run.outputs), /PRIVATE KEY/);
        const caKey = String(
          ofType(run, "tls:index/privateKey:PrivateKey").find((r) => r.name === "mesh-ca-key")
            ?.state.privateKeyPem,
        );
        assert.match(caKey, /PRIVATE KEY/);
        for (const r of kubernetesObjects(run))
          assert.ok(!JSON.stringify(r.inputs).includes(caKey.trim().split("\n")[1]), r.name);
      });

      it("exports each service's endpoints, the public CA certificate and the namespace, and keeps only the client keys secret", () => {
        const run = runOf(stack);
        const model = modelOf(stack);
        const ns = model.namespace;
        const direct = model.services[0].exposeDirectPort;
        assert.deepEqual(run.outputs.endpoints, {
          bookapi: {
            mtls: `bookapi.${ns}.svc.cluster.local:15001`,
            ...(direct ? { direct: `bookapi.${ns}.svc.cluster.local:5288` } : {}),
          },
          "bookapi-mcp-server": {
            mtls: `bookapi-mcp-server.${ns}.svc.cluster.local:15001`,
            ...(direct ? { direct: `bookapi-mcp-server.${ns}.svc.cluster.local:5289` } : {}),
            outbound: "http://127.0.0.1:15006",
          },
        });
        assert.equal(run.outputs.namespace, ns);
        assert.match(String(run.outputs.caCertificate), /^-----BEGIN CERTIFICATE-----/);
        // The shipped stacks have no clients or exposed services yet.
        assert.deepEqual(
          [run.outputs.clients, run.outputs.clientKeys, run.outputs.exposed],
          [{}, {}, {}],
        );
        assert.deepEqual(run.secretOutputs, ["clientKeys"]);
      });

      it("runs each Deployment with the stack's replicas, an app and an Envoy container, and rolls pods when the Envoy config changes", () => {
        const run = runOf(stack);
        const model = modelOf(stack);
        for (const svc of builtServices(model)) {
          const deployment = findObject(run, "Deployment", svc.name);
          const d = spec<DeploymentSpec>(deployment);
          assert.equal(d.replicas, svc.replicas);
          // Native sidecar mode (the default): Envoy is an always-restarting init container.
          assert.deepEqual(
            d.template.spec.containers.map((c) => c.name),
            ["app"],
          );
          assert.deepEqual(
            d.template.spec.initContainers?.map((c) => c.name),
            ["envoy"],
          );
          const { app, envoy } = containersOf(d.template.spec);
          assert.equal(envoy.restartPolicy, "Always");
          assert.deepEqual(envoy.startupProbe?.httpGet, {
            path: "/healthz/ready",
            port: "envoy-health",
          });
          assert.equal(app.image, svc.image);
          assert.deepEqual(app.ports, [{ name: "http", containerPort: svc.port, protocol: "TCP" }]);
          assert.equal(envoy.image, model.envoy.image);
          assert.deepEqual(
            envoy.ports?.map((p) => p.containerPort),
            [15001, 15021, 15090],
          );
          assert.deepEqual(envoy.readinessProbe?.httpGet, {
            path: "/healthz/ready",
            port: "envoy-health",
          });
          const cm = envoyConfigMapOf(run, svc.name);
          assert.equal(
            metadataName(cm),
            envoyConfigMapName(svc.name, cm.inputs.data as Record<string, string>),
          );
          assert.equal(
            d.template.metadata.annotations["kubectl.kubernetes.io/default-container"],
            "app",
          );
          for (const [k, v] of Object.entries(d.selector.matchLabels))
            assert.equal(d.template.metadata.labels[k], v);
          assert.equal(d.template.metadata.labels["app.kubernetes.io/name"], svc.name);
        }
      });

      it("mounts the service's own ConfigMap and Secret into the sidecar only, read-only", () => {
        const run = runOf(stack);
        for (const name of ["bookapi", "bookapi-mcp-server"]) {
          const pod = spec<DeploymentSpec>(findObject(run, "Deployment", name)).template.spec;
          const volumes = Object.fromEntries(pod.volumes.map((v) => [v.name, v]));
          const { app, envoy } = containersOf(pod);
          const envoyMounts = Object.fromEntries(
            (envoy.volumeMounts ?? []).map((m) => [m.mountPath, m]),
          );
          assert.equal(
            volumes[envoyMounts["/etc/envoy/config"].name].configMap?.name,
            metadataName(envoyConfigMapOf(run, name)),
          );
          assert.equal(
            volumes[envoyMounts["/etc/envoy/certs"].name].secret?.secretName,
            `${name}-tls`,
          );
          assert.ok(Object.values(envoyMounts).every((m) => m.readOnly === true));
          assert.ok(
            !(app.volumeMounts ?? []).some((m) => volumes[m.name].secret),
            "the app never sees key material",
          );
        }
      });

      it("hardens every container and mounts no service-account token", () => {
        const run = runOf(stack);
        for (const name of ["bookapi", "bookapi-mcp-server"]) {
          const pod = spec<DeploymentSpec>(findObject(run, "Deployment", name)).template.spec;
          assert.equal(pod.automountServiceAccountToken, false);
          assert.equal(pod.serviceAccountName, name);
          for (const c of [...(pod.initContainers ?? []), ...pod.containers]) {
            const sc = c.securityContext ?? {};
            assert.equal(sc.runAsNonRoot, true, c.name);
            assert.equal(sc.readOnlyRootFilesystem, true, c.name);
            assert.equal(sc.allowPrivilegeEscalation, false, c.name);
            assert.deepEqual(sc.capabilities, { drop: ["ALL"] }, c.name);
            assert.deepEqual(sc.seccompProfile, { type: "RuntimeDefault" }, c.name);
            assert.ok(c.resources?.requests?.cpu && c.resources?.limits?.memory, c.name);
          }
          assert.equal(
            findObject(run, "ServiceAccount", name).inputs.automountServiceAccountToken,
            false,
          );
        }
      });

      it("publishes 15001 as mtls on each Service and the app port only where exposed", () => {
        const run = runOf(stack);
        for (const svc of modelOf(stack).services) {
          const s = spec<{ ports: ServicePort[]; selector: Record<string, string> }>(
            findObject(run, "Service", svc.name),
          );
          // Numeric: a named port on the native sidecar resolves to nothing before 1.32.
          const expected: ServicePort[] = [{ name: "mtls", port: 15001, targetPort: 15001 }];
          if (svc.exposeDirectPort)
            expected.push({ name: "http", port: svc.port, targetPort: svc.port });
          assert.deepEqual(
            s.ports.map(({ name, port, targetPort }) => ({ name, port, targetPort })),
            expected,
          );
          const labels = spec<DeploymentSpec>(findObject(run, "Deployment", svc.name)).template
            .metadata.labels;
          for (const [k, v] of Object.entries(s.selector)) assert.equal(labels[k], v);
        }
      });
    });
  }

  for (const stack of STACKS) {
    it(`uses the mesh's Kubernetes provider (mutable Secrets, forced applies) for every object of the ${stack} stack and the upserting one for Envoy ConfigMap versions only, both rendering YAML only in local`, () => {
      const run = runOf(stack);
      const providers = ofType(run, "pulumi:providers:kubernetes");
      assert.deepEqual(
        providers.map((p) => p.name),
        ["kubernetes", "kubernetes-envoy-config"],
      );
      const [mesh, envoyConfig] = providers;
      for (const provider of providers) {
        assert.equal(String(provider.inputs.enableSecretMutable), "true");
        assert.equal(String(provider.inputs.enablePatchForce), "true");
        assert.equal(
          provider.inputs.renderYamlToDirectory,
          stack === "local" ? "rendered" : undefined,
        );
      }
      assert.equal(mesh.inputs.upsertExistingObjects, undefined);
      assert.equal(String(envoyConfig.inputs.upsertExistingObjects), "true");
      for (const r of kubernetesObjects(run)) {
        const versioned = /-envoy-[0-9a-f]{10}$/.test(metadataName(r));
        const provider = versioned ? envoyConfig : mesh;
        assert.ok(r.provider.startsWith(provider.urn), `${r.name} uses ${r.provider}`);
      }
    });
  }

  it("keeps the state of stacks deployed before the identity resources were renamed: each answers to its former name", () => {
    const run = runOf("prod");
    for (const svc of ["bookapi", "bookapi-mcp-server"]) {
      const aliasesOf = (type: string, name: string) =>
        run.resources.find((r) => r.type === type && r.name === name)?.aliasNames;
      assert.deepEqual(aliasesOf("bookapi-mesh:pki:ServiceCertificate", `mesh-${svc}`), [
        `mesh-${svc}-cert`,
      ]);
      for (const [type, child] of [
        ["tls:index/privateKey:PrivateKey", "key"],
        ["tls:index/certRequest:CertRequest", "csr"],
        ["tls:index/locallySignedCert:LocallySignedCert", "cert"],
      ])
        assert.deepEqual(aliasesOf(type, `mesh-${svc}-${child}`), [`mesh-${svc}-cert-${child}`]);
    }
  });

  it("exposes direct ports in dev and not in staging or prod, and runs prod with more than one replica", () => {
    assert.ok(builtServices(modelOf("dev")).every((s) => s.exposeDirectPort && s.replicas === 1));
    assert.ok(modelOf("staging").services.every((s) => !s.exposeDirectPort));
    assert.ok(builtServices(modelOf("prod")).every((s) => !s.exposeDirectPort && s.replicas >= 2));
    assert.ok(
      modelOf("prod").certificates.validityHours < modelOf("dev").certificates.validityHours,
    );
  });
});

describe("a third service", () => {
  it("joins the mesh by config alone, with callers derived for the services it calls", async () => {
    const config = stackConfig("dev");
    const services = JSON.parse(config["bookapi-mesh:services"]) as Array<Record<string, unknown>>;
    services.push({
      name: "reviews",
      image: "registry.example.com/reviews:2.1.0",
      port: 7070,
      calls: ["bookapi", "bookapi-mcp-server"],
    });
    const run = await runProgram({ ...config, "bookapi-mesh:services": JSON.stringify(services) });
    for (const kind of ["ServiceAccount", "Deployment", "Service"])
      findObject(run, kind, "reviews");
    findObject(run, "Secret", "reviews-tls");
    envoyConfigMapOf(run, "reviews");
    const endpoints = run.outputs.endpoints as Record<string, { outbound?: string }>;
    assert.equal(endpoints.reviews.outbound, "http://127.0.0.1:15006");
    // Three services, the gateway's identity and its self-signed dev certificate.
    assert.equal(ofType(run, "tls:index/locallySignedCert:LocallySignedCert").length, 5);
  });
});
