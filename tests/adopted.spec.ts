/**
 * Adopted workloads and the deploy-time injector (docs/injection.md): a service whose pods a chart
 * declares gets its identity, Envoy config, Services and NetworkPolicy and no workload of its own;
 * the transform adds the sidecar to the chart's Deployment (a stored render of a real chart) and a
 * StatefulSet, and the results go through the Kubernetes schema, the restricted profile, the
 * cross-references with the program's objects, Envoy's protos and the NetworkPolicy model. The
 * Pulumi mocks do not run transforms, so the transform is called as the engine would call it.
 */
import assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { loadMeshConfig, MeshConfigError } from "../components/config";
import { ENVOY_FILES } from "../components/envoy";
import {
  AdoptedWorkload,
  injectWorkload,
  meshInjector,
  WorkloadObject,
} from "../components/injector";
import { adoptedWorkloads, trafficWarnings } from "../components/mesh";
import { InjectionError } from "../components/injector";
import { PodTemplate } from "../components/pod";
import { validateBootstrap } from "./harness/envoy-schema";
import { meshContext } from "../policy/pack";
import { checkAdoptedWorkloads, checkEnvoySidecar, PolicyResource } from "../policy/rules";
import {
  checkKubernetesReferences,
  KubeObject,
  loadKubernetesSchemas,
  podSpecOf,
  PodSpec,
  validateKubernetesObject,
} from "./harness/kubernetes-schema";
import { connectionAllowed, Pod, registeredPolicies } from "./harness/network-policy-model";
import { chartObjects, engineCall } from "./harness/chart";
import { restrictedViolations } from "./harness/pod-security";
import {
  envoyConfigMapOf,
  kindOf,
  kubernetesObjects,
  metadataName,
  once,
  ProgramRun,
  runProgram,
  runStack,
  stackConfigWithServices,
} from "./harness/program";

/** prod with podinfo's chart adopted as `reviews` (called by the MCP server) and a StatefulSet. */
const adoptedConfig = (edit: (services: Array<Record<string, unknown>>) => void = () => {}) =>
  stackConfigWithServices("prod", (services) => {
    const mcp = services.find((s) => s.name === "bookapi-mcp-server") as { calls: string[] };
    mcp.calls = [...mcp.calls, "reviews"];
    services.push(
      {
        name: "reviews",
        port: 9898,
        workload: { kind: "Deployment", name: "reviews-podinfo" },
        calls: ["bookapi"],
      },
      { name: "ledger", port: 8080, workload: { kind: "StatefulSet", name: "ledger" } },
    );
    edit(services);
  });

const run = once((): Promise<ProgramRun> => runProgram(adoptedConfig(), "prod"));
const model = once(() => loadMeshConfig(adoptedConfig()));

/** A StatefulSet someone else declares, with its own pod security settings. */
const ledger = (): WorkloadObject => ({
  apiVersion: "apps/v1",
  kind: "StatefulSet",
  metadata: { name: "ledger", namespace: "bookapi" },
  spec: {
    serviceName: "ledger",
    replicas: 2,
    selector: { matchLabels: { app: "ledger" } },
    template: {
      metadata: { labels: { app: "ledger" } },
      spec: {
        securityContext: { runAsNonRoot: true, seccompProfile: { type: "RuntimeDefault" } },
        containers: [
          {
            name: "ledger",
            image: "registry.example.com/ledger:3.0.1",
            ports: [{ name: "http", containerPort: 8080 }],
            securityContext: {
              allowPrivilegeEscalation: false,
              readOnlyRootFilesystem: true,
              runAsUser: 1000,
              capabilities: { drop: ["ALL"] },
            },
          },
        ],
      },
    },
  },
});

const podLabels = (o: KubeObject | WorkloadObject) =>
  ((o.spec as { template: PodTemplate }).template.metadata?.labels ?? {}) as Record<string, string>;

describe("adopted workloads (services[].workload)", () => {
  before(loadKubernetesSchemas);

  it("give an adopted service its identity, Envoy config, Services and NetworkPolicy, and no workload of its own", async () => {
    const objects = kubernetesObjects(await run());
    const named = (kind: string, name: string) =>
      objects.filter((o) => kindOf(o.type) === kind && metadataName(o) === name);
    const sa = named("ServiceAccount", "reviews")[0];
    assert.deepEqual((sa.inputs.metadata as { annotations: unknown }).annotations, {
      "bookapi-mesh/workload": "Deployment/reviews-podinfo",
    });
    assert.equal(named("Secret", "reviews-tls").length, 1);
    // The mesh's own label alone: a chart may hold every app.kubernetes.io/* one.
    const selector = { "bookapi-mesh/service": "reviews" };
    for (const name of ["reviews", "reviews-pods"])
      assert.deepEqual(
        (named("Service", name)[0].inputs.spec as { selector: unknown }).selector,
        selector,
      );
    const policy = named("NetworkPolicy", "reviews-mesh")[0];
    assert.deepEqual(
      (policy.inputs.spec as { podSelector: { matchLabels: unknown } }).podSelector.matchLabels,
      selector,
    );
    for (const kind of [
      "Deployment",
      "StatefulSet",
      "PodDisruptionBudget",
      "HorizontalPodAutoscaler",
    ])
      for (const name of ["reviews", "reviews-podinfo", "ledger"])
        assert.equal(named(kind, name).length, 0, `${kind}/${name}`);
    const bootstrap = JSON.parse(
      (envoyConfigMapOf(await run(), "reviews").inputs.data as Record<string, string>)[
        ENVOY_FILES.bootstrap
      ],
    ) as unknown;
    assert.deepEqual(validateBootstrap(bootstrap), []);
  });

  it("refuse the keys a workload's owner holds, and a workload adopted twice or built by the mesh, naming each key", () => {
    const ownerKeys = adoptedConfig((services) => {
      Object.assign(services.find((s) => s.name === "reviews") as object, {
        image: "ghcr.io/stefanprodan/podinfo:6.9.1",
        replicas: 2,
        env: [{ name: "A", value: "b" }],
      });
    });
    const owned =
      "belongs to the adopted workload's owner (services[].workload): set it there, not here";
    const topology = adoptedConfig((services) =>
      services.push(
        { name: "reviews2", port: 9898, workload: { kind: "Deployment", name: "reviews-podinfo" } },
        { name: "twin", port: 9898, workload: { kind: "Deployment", name: "bookapi" } },
        {
          name: "quick",
          port: 9898,
          workload: { kind: "Deployment", name: "quick" },
          terminationGracePeriodSeconds: 3,
        },
      ),
    );
    for (const [config, problems] of [
      [
        ownerKeys,
        [
          `bookapi-mesh:services[2].image: ${owned} (service "reviews")`,
          `bookapi-mesh:services[2].replicas: ${owned} (service "reviews")`,
          `bookapi-mesh:services[2].env: ${owned} (service "reviews")`,
        ],
      ],
      [
        topology,
        [
          `bookapi-mesh:services[4].workload: Deployment "reviews-podinfo" is already adopted by services[2]; one service per workload (service "reviews2")`,
          `bookapi-mesh:services[5].workload.name: "bookapi" is the Deployment the mesh builds for service "bookapi" (service "twin")`,
          `bookapi-mesh:services[6].terminationGracePeriodSeconds: must be at least envoy.drainSeconds + 2 (7): Envoy drains, then stops (service "quick")`,
        ],
      ],
    ] as const)
      assert.throws(
        () => loadMeshConfig(config),
        (err: unknown) => {
          assert.ok(err instanceof MeshConfigError);
          assert.deepEqual(err.problems, problems);
          return true;
        },
      );
  });

  it("build a StatefulSet for a mesh service of kind StatefulSet, on its headless Service, with the pods a Deployment would have", async () => {
    const config = stackConfigWithServices("prod", (services) => {
      (services.find((s) => s.name === "bookapi") as Record<string, unknown>).kind = "StatefulSet";
    });
    const statefulRun = await runProgram(config, "prod");
    const objects = kubernetesObjects(statefulRun);
    const of = (kind: string) =>
      objects.filter((o) => kindOf(o.type) === kind && metadataName(o) === "bookapi");
    assert.equal(of("Deployment").length, 0);
    const [set] = of("StatefulSet");
    const spec = set.inputs.spec as {
      serviceName: string;
      podManagementPolicy: string;
      template: PodTemplate;
    };
    assert.equal(spec.serviceName, "bookapi-pods");
    assert.equal(spec.podManagementPolicy, "Parallel");
    // Rolled one pod at a time with no surge: a single replica is down on every rollout.
    const single = (replicas: number) =>
      trafficWarnings(
        loadMeshConfig(
          stackConfigWithServices("prod", (services) =>
            Object.assign(services.find((s) => s.name === "bookapi") as object, {
              kind: "StatefulSet",
              replicas,
            }),
          ),
        ),
      ).filter((w) => w.includes("StatefulSet of one replica"));
    assert.equal(single(1).length, 1);
    assert.deepEqual(single(2), []);
    const deployment = kubernetesObjects(await runStack("prod")).find(
      (o) => kindOf(o.type) === "Deployment" && metadataName(o) === "bookapi",
    );
    const deploymentTemplate = (deployment?.inputs.spec as { template: PodTemplate }).template;
    // Spread per revision: a StatefulSet's pods carry controller-revision-hash.
    const spread = (t: PodTemplate) =>
      (t.spec?.topologySpreadConstraints ?? []).map((c) => c.matchLabelKeys);
    assert.deepEqual(spread(spec.template), [
      ["controller-revision-hash"],
      ["controller-revision-hash"],
    ]);
    const withoutSpread = (t: PodTemplate) => ({
      ...t,
      spec: { ...t.spec, topologySpreadConstraints: [] },
    });
    assert.deepEqual(withoutSpread(spec.template), withoutSpread(deploymentTemplate));
    const problems = [
      ...validateKubernetesObject(
        JSON.parse(
          JSON.stringify({
            apiVersion: "apps/v1",
            kind: "StatefulSet",
            metadata: set.inputs.metadata,
            spec: set.inputs.spec,
          }),
        ) as KubeObject,
      ),
    ];
    assert.deepEqual(problems, []);
  });
});

describe("the deploy-time injector (meshInjector, a Pulumi transform)", () => {
  before(loadKubernetesSchemas);
  const adopted = () => adoptedWorkloads(model());
  const injectedChart = once(async () => {
    const transform = meshInjector(adopted());
    return Promise.all(
      chartObjects().map(async (o) => {
        const result = await engineCall(transform, o);
        return result ? ({ ...o, ...result.props } as KubeObject) : o;
      }),
    );
  });

  it("adds the sidecar to the chart's Deployment only, leaving its selector and every other object as they were", async () => {
    const before = chartObjects();
    const after = await injectedChart();
    const [service, deployment] = after;
    assert.deepEqual(service, before[0]);
    const spec = deployment.spec as { selector: unknown; replicas: number; template: PodTemplate };
    assert.deepEqual(spec.selector, (before[1].spec as { selector: unknown }).selector);
    assert.equal(spec.replicas, 1);
    const pod = spec.template.spec as NonNullable<PodTemplate["spec"]>;
    assert.deepEqual(
      (pod.initContainers ?? []).map((c) => c.name),
      ["envoy"],
    );
    assert.deepEqual(
      pod.containers.map((c) => c.name),
      ["podinfo"],
    );
    assert.deepEqual(podLabels(deployment), {
      "app.kubernetes.io/name": "reviews-podinfo",
      "bookapi-mesh/service": "reviews",
      "app.kubernetes.io/part-of": "bookapi-mesh",
    });
    // The chart's pod security settings stand; the mesh's fill only what it left out.
    assert.deepEqual(pod.securityContext, {
      runAsNonRoot: true,
      fsGroup: 100,
      seccompProfile: { type: "RuntimeDefault" },
      runAsUser: 100,
    });
    assert.equal(pod.terminationGracePeriodSeconds, 30);
    // The chart runs under the default ServiceAccount: the pod gets the mesh's, without a token.
    assert.equal(pod.serviceAccountName, "reviews");
    assert.equal(pod.automountServiceAccountToken, false);
  });

  it("gives pods that pass the Kubernetes schema, the restricted profile and every reference to the program's objects", async () => {
    const deployment = (await injectedChart())[1];
    const plain = JSON.parse(JSON.stringify(deployment)) as KubeObject;
    assert.deepEqual(validateKubernetesObject(plain), []);
    assert.deepEqual(restrictedViolations(podSpecOf(plain) as PodSpec), []);
    const programObjects = kubernetesObjects(await run()).map(
      (o) =>
        JSON.parse(
          JSON.stringify({
            apiVersion: "v1",
            kind: kindOf(o.type),
            metadata: o.inputs.metadata,
            spec: o.inputs.spec,
          }),
        ) as KubeObject,
    );
    const problems = checkKubernetesReferences([...programObjects, plain], model().kubernetesMinor);
    assert.deepEqual(
      problems.filter((p) => p.startsWith("Deployment/reviews-podinfo")),
      [],
    );
    // The ConfigMap it mounts is the version the program writes for the service.
    const configMap = metadataName(envoyConfigMapOf(await run(), "reviews"));
    const volumes = (podSpecOf(plain) as PodSpec).volumes ?? [];
    assert.ok(
      volumes.some((v) => v.configMap?.name === configMap),
      configMap,
    );
  });

  it("lets only the service's declared callers reach the injected pods, and them reach only what it calls", async () => {
    const deployment = (await injectedChart())[1];
    const cluster = {
      namespaces: { bookapi: { "kubernetes.io/metadata.name": "bookapi" } },
      policies: registeredPolicies(await run()),
    };
    const pod = (name: string, labels: Record<string, string>): Pod => ({
      name,
      namespace: "bookapi",
      labels,
    });
    const reviews = pod("reviews", podLabels(deployment));
    const meshPod = (name: string) =>
      pod(name, {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/part-of": "bookapi-mesh",
        "app.kubernetes.io/instance": name,
        "app.kubernetes.io/managed-by": "pulumi",
      });
    const inbound = model().envoy.ports.inbound;
    assert.ok(connectionAllowed(cluster, meshPod("bookapi-mcp-server"), reviews, inbound));
    assert.ok(!connectionAllowed(cluster, meshPod("bookapi"), reviews, inbound));
    assert.ok(!connectionAllowed(cluster, meshPod("bookapi-mcp-server"), reviews, 9898));
    assert.ok(connectionAllowed(cluster, reviews, meshPod("bookapi"), inbound));
    assert.ok(!connectionAllowed(cluster, reviews, meshPod("bookapi-mcp-server"), inbound));
  });

  it("injects a StatefulSet too, keeps its own pod security settings, and makes it wait for what its pods need", async () => {
    const marker = { urn: "marker" } as unknown as pulumi.Resource;
    const withNeeds: AdoptedWorkload[] = adopted().map((a) => ({ ...a, podsNeed: [marker] }));
    const result = await engineCall(meshInjector(withNeeds), ledger() as KubeObject);
    assert.ok(result);
    const spec = (result.props as WorkloadObject).spec as {
      serviceName: string;
      template: PodTemplate;
    };
    assert.equal(spec.serviceName, "ledger");
    const pod = spec.template.spec as NonNullable<PodTemplate["spec"]>;
    assert.deepEqual(pod.securityContext, ledger().spec?.template?.spec?.securityContext);
    // No fsGroup of its own: the identity files are readable by all, in a volume only Envoy mounts.
    const certs = (pod.volumes ?? []).find((v) => v.name === "envoy-certs");
    assert.equal(certs?.secret?.defaultMode, 0o444);
    const mounts = (c: { volumeMounts?: { name: string }[] }) =>
      (c.volumeMounts ?? []).map((m) => m.name);
    assert.ok(pod.containers.every((c) => !mounts(c).includes("envoy-certs")));
    assert.deepEqual(result.opts.dependsOn, [marker]);
    const plain = JSON.parse(JSON.stringify({ ...ledger(), spec })) as KubeObject;
    assert.deepEqual(validateKubernetesObject(plain), []);
    assert.deepEqual(restrictedViolations(podSpecOf(plain) as PodSpec), []);
  });

  it("adds no pod security settings to a chart deployed as published (an image naming its user would not start under runAsNonRoot), and keeps its own scrape annotations", () => {
    const published = chartObjects()[1] as WorkloadObject;
    const template = published.spec?.template as PodTemplate;
    const podSpec = template.spec as NonNullable<PodTemplate["spec"]>;
    delete podSpec.securityContext;
    delete podSpec.containers[0].securityContext;
    // podinfo's template writes these whatever its values say.
    template.metadata = {
      ...template.metadata,
      annotations: { "prometheus.io/scrape": "true", "prometheus.io/port": "9898" },
    };
    // dev: discovery by annotations.
    const dev = loadMeshConfig(
      stackConfigWithServices("dev", (services) =>
        services.push({
          name: "reviews",
          port: 9898,
          workload: { kind: "Deployment", name: "reviews-podinfo" },
        }),
      ),
    );
    (published.metadata as { namespace: string }).namespace = dev.namespace;
    const injected = injectWorkload(published, adoptedWorkloads(dev));
    const pod = injected?.spec?.template as PodTemplate;
    assert.equal(pod.spec?.securityContext, undefined);
    assert.equal(
      (pod.spec?.volumes ?? []).find((v) => v.name === "envoy-certs")?.secret?.defaultMode,
      0o444,
    );
    assert.deepEqual(pod.metadata?.annotations, template.metadata.annotations);
    assert.equal(pod.metadata?.labels?.["app.kubernetes.io/part-of"], "bookapi-mesh");
  });

  it("keeps a chart's own part-of label (bitnami's kafka sets it in its immutable selector) and selects its pods by the mesh's label", () => {
    const chart = chartObjects()[1] as WorkloadObject;
    const template = chart.spec?.template as PodTemplate;
    template.metadata = {
      labels: { ...template.metadata?.labels, "app.kubernetes.io/part-of": "reviews" },
    };
    const pod = injectWorkload(chart, adopted())?.spec?.template as PodTemplate;
    assert.equal(pod.metadata?.labels?.["app.kubernetes.io/part-of"], "reviews");
    assert.equal(pod.metadata?.labels?.["bookapi-mesh/service"], "reviews");
  });

  it("passes Outputs it does not read (a secret env value) through, refuses one where it reads, and leaves the provider's delete-first replacement alone", async () => {
    const transform = meshInjector(adopted());
    const secretEnv = chartObjects()[1] as WorkloadObject;
    const token = pulumi.secret("s3cret");
    const container = (secretEnv.spec?.template?.spec?.containers ?? [])[0];
    container.env = [{ name: "TOKEN", value: token as unknown as string }];
    const result = await engineCall(transform, secretEnv as KubeObject);
    assert.ok(result);
    const pod = (result.props as WorkloadObject).spec?.template?.spec;
    assert.equal(pod?.containers[0].env?.at(-1)?.value, token);
    // The SDK hands a transform deleteBeforeReplace false where it was never set.
    assert.equal((result.opts as pulumi.CustomResourceOptions).deleteBeforeReplace, undefined);
    const unknownPorts = chartObjects()[1] as WorkloadObject;
    const ports = (unknownPorts.spec?.template?.spec?.containers ?? [])[0];
    ports.ports = pulumi.output([{ containerPort: 9898 }]) as unknown as typeof ports.ports;
    await assert.rejects(
      async () => engineCall(transform, unknownPorts as KubeObject),
      (err: unknown) =>
        err instanceof InjectionError &&
        /Deployment "reviews-podinfo"/.test(err.message) &&
        /spec\.containers\[0\]\.ports hold values not known yet or secret/.test(err.message),
    );
  });

  it("leaves alone other kinds, workloads no service adopts, and those labelled bookapi-mesh/inject: disabled", async () => {
    const transform = meshInjector(adopted());
    const other = chartObjects()[1];
    (other.metadata as { name: string }).name = "someone-else";
    assert.equal(await engineCall(transform, other), undefined);
    const disabled = chartObjects()[1];
    (disabled.metadata as { labels: Record<string, string> }).labels["bookapi-mesh/inject"] =
      "disabled";
    assert.equal(await engineCall(transform, disabled), undefined);
    assert.equal(await engineCall(transform, chartObjects()[0]), undefined);
  });

  it("refuses, naming the workload, a pod labelled for no adopted service, another namespace, and a colliding pod", () => {
    const labelled = chartObjects()[1] as WorkloadObject;
    (labelled.metadata as { name: string }).name = "stray";
    podLabels(labelled as KubeObject)["bookapi-mesh/service"] = "nobody";
    const elsewhere = chartObjects()[1] as WorkloadObject;
    (elsewhere.metadata as { namespace: string }).namespace = "shop";
    const colliding = chartObjects()[1] as WorkloadObject;
    const pod = (colliding.spec?.template?.spec ?? { containers: [] }) as NonNullable<
      PodTemplate["spec"]
    >;
    pod.containers[0].ports?.push({ name: "admin", containerPort: model().envoy.ports.admin });
    pod.terminationGracePeriodSeconds = 60;
    for (const [object, problems] of [
      [
        labelled,
        [
          /Deployment "stray"/,
          /labelled bookapi-mesh\/service=nobody, which no adopted service is \(adopted: ledger, reviews\)/,
        ],
      ],
      [
        elsewhere,
        [
          /Deployment "reviews-podinfo"/,
          /in namespace shop; the mesh's ConfigMap and Secret for it are in bookapi/,
        ],
      ],
      [
        colliding,
        [
          /the pods of Deployment "reviews-podinfo" \(service reviews\)/,
          /container "podinfo" opens port 9901, Envoy's admin port/,
          /terminationGracePeriodSeconds 60: the sidecar's stop timeline is built for 30/,
        ],
      ],
    ] as const)
      assert.throws(
        () => injectWorkload(object, adopted()),
        (err: unknown) => {
          assert.ok(err instanceof InjectionError);
          for (const p of problems) assert.match(err.message, p);
          return true;
        },
      );
  });
});

describe("the policy pack on adopted services", () => {
  const ctx = () => meshContext("prod", { get: () => "bookapi", getObject: () => undefined });
  /** The stack as the engine would hold it: the mesh's objects and the chart's, injected. */
  const stack = async (chart: KubeObject[]): Promise<PolicyResource[]> => [
    ...(await run()).resources.map((r) => ({ type: r.type, props: structuredClone(r.inputs) })),
    ...chart.map((o) => ({
      type: `kubernetes:${o.apiVersion === "v1" ? "core/v1" : "apps/v1"}:${o.kind}`,
      props: o as Record<string, unknown>,
    })),
  ];
  const injectedLedger = () => injectWorkload(ledger(), adoptedWorkloads(model())) as KubeObject;
  const injected = once(async () => {
    const transform = meshInjector(adoptedWorkloads(model()));
    const [service, deployment] = chartObjects();
    const result = await engineCall(transform, deployment);
    return [service, { ...deployment, ...result?.props } as KubeObject];
  });

  it("passes the stack once each adopted service's workload carries its sidecar, every workload passing the sidecar rule", async () => {
    const resources = await stack([...(await injected()), injectedLedger()]);
    assert.deepEqual(checkAdoptedWorkloads(resources, ctx()), []);
    for (const r of resources)
      assert.deepEqual(checkEnvoySidecar(r, ctx()), [], `${r.type} ${String(r.props.metadata)}`);
  });

  it("fails the preview for an adopted service no workload carries (a typo in its name), or two, naming the service", async () => {
    const [service, deployment] = await injected();
    const typo = await stack([service, chartObjects()[1], injectedLedger()]);
    assert.deepEqual(checkAdoptedWorkloads(typo, ctx()), [
      `service "reviews" adopts Deployment/reviews-podinfo, but no workload in this stack carries its sidecar: check services[].workload's kind and name, and that the injector is registered before the workload (or list the service in adoptedElsewhere if another tool deploys it)`,
    ]);
    assert.deepEqual(checkAdoptedWorkloads(typo, ctx(), ["reviews"]), []);
    const second = structuredClone(deployment);
    (second.metadata as { name: string }).name = "reviews-canary";
    const twice = await stack([service, deployment, second, injectedLedger()]);
    assert.deepEqual(checkAdoptedWorkloads(twice, ctx()), [
      `service "reviews" adopts Deployment/reviews-podinfo, but 2 workloads carry its sidecar: Deployment "reviews-podinfo", Deployment "reviews-canary"; one workload per service`,
    ]);
    // The sidecar rule reads an adopted pod's service from its label: the chart's own, left
    // without the mesh, is reported.
    assert.equal(checkEnvoySidecar(typo.at(-2) as PolicyResource, ctx()).length, 1);
  });
});
