/**
 * The mesh injector (components/injector.ts injectMesh): the one function that adds the mesh to a
 * pod template, for the mesh's own workloads and for pods someone else declares. That the mesh's
 * own pods did not change when they moved onto it is shown by the render's goldens (byte for
 * byte); here, a third party's pod template takes the mesh, and templates that would collide with
 * the sidecar are refused, naming the workload.
 */
import assert from "node:assert/strict";
import { loadMeshConfig, MeshModel, ServiceModel } from "../components/config";
import { injectMesh, InjectionError } from "../components/injector";
import { PodTemplate } from "../components/pod";
import { envoyConfigMapName } from "../components/workload";
import {
  KubeObject,
  loadKubernetesSchemas,
  validateKubernetesObject,
} from "./harness/kubernetes-schema";
import { stackConfig } from "./harness/program";

const model: MeshModel = loadMeshConfig(stackConfig("prod"));
const bookapi = model.services.find((s) => s.name === "bookapi") as ServiceModel;
const inject = (template: PodTemplate, service = bookapi) =>
  injectMesh(template, {
    service,
    envoy: model.envoy,
    config: { configMapName: envoyConfigMapName(service.name, { "envoy.json": "{}" }) },
  });

/** A chart's pod template: an init container, its own volume, affinity, a named app container. */
const chartPod = (): PodTemplate => ({
  metadata: { labels: { "app.kubernetes.io/name": "bookapi", release: "books" } },
  spec: {
    affinity: { nodeAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [] } },
    initContainers: [{ name: "migrate", image: "registry.example.com/books-migrate:2.1.0" }],
    containers: [
      {
        name: "server",
        image: "registry.example.com/books:2.1.0",
        ports: [{ name: "http", containerPort: 5288 }],
        env: [{ name: "LOG_LEVEL", value: "info" }],
        volumeMounts: [{ name: "cache", mountPath: "/cache" }],
      },
    ],
    volumes: [{ name: "cache", emptyDir: {} }],
  },
});

describe("the mesh injector", () => {
  before(loadKubernetesSchemas);

  it("adds the sidecar, its volumes, the mesh's labels and identity to a chart's pod, keeping everything of the chart's", () => {
    const pod = inject(chartPod());
    const spec = pod.spec as NonNullable<PodTemplate["spec"]>;
    assert.deepEqual(
      (spec.initContainers ?? []).map((c) => c.name),
      ["migrate", "envoy"],
      "the chart's init container first, then Envoy as a native sidecar",
    );
    assert.equal(spec.initContainers?.[1].restartPolicy, "Always");
    assert.deepEqual(
      spec.containers.map((c) => c.name),
      ["server"],
    );
    assert.deepEqual(spec.containers[0].env, [{ name: "LOG_LEVEL", value: "info" }]);
    assert.deepEqual(
      (spec.volumes ?? []).map((v) => v.name),
      ["envoy-config", "envoy-certs", "cache"],
    );
    assert.equal(spec.serviceAccountName, "bookapi");
    assert.equal(spec.automountServiceAccountToken, false);
    assert.ok(spec.affinity, "the chart's affinity is kept");
    assert.equal(pod.metadata?.labels?.release, "books");
    assert.equal(pod.metadata?.labels?.["app.kubernetes.io/part-of"], "bookapi-mesh");
    // As a Deployment, it is a valid Kubernetes object.
    const deployment: KubeObject = {
      apiVersion: "apps/v1",
      kind: "Deployment",
      metadata: { name: "bookapi", namespace: model.namespace },
      spec: { selector: { matchLabels: { release: "books" } }, template: pod },
    };
    assert.deepEqual(
      validateKubernetesObject(JSON.parse(JSON.stringify(deployment)) as KubeObject),
      [],
    );
  });

  it("tells an app that calls others where its outbound listener is, before the app's own env", () => {
    const mcp = model.services.find((s) => s.name === "bookapi-mcp-server") as ServiceModel;
    const template = chartPod();
    template.metadata = { labels: { release: "books" } };
    const pod = inject(template, mcp);
    assert.deepEqual(pod.spec?.containers[0].env, [
      { name: "MESH_OUTBOUND_URL", value: `http://127.0.0.1:${model.envoy.ports.outbound}` },
      { name: "LOG_LEVEL", value: "info" },
    ]);
  });

  it("refuses a pod that would collide with the sidecar, naming the workload and each collision", () => {
    const broken = chartPod();
    const spec = broken.spec as NonNullable<PodTemplate["spec"]>;
    spec.containers.push({ name: "envoy", image: "envoyproxy/envoy:v1.36.2" });
    spec.containers[0].ports?.push({ name: "admin", containerPort: model.envoy.ports.admin });
    spec.volumes?.push({ name: "envoy-certs", emptyDir: {} });
    spec.serviceAccountName = "books";
    (broken.metadata as { labels: Record<string, string> }).labels["app.kubernetes.io/name"] =
      "books";
    assert.throws(
      () => inject(broken),
      (err: unknown) => {
        assert.ok(err instanceof InjectionError);
        const message = err.message;
        assert.match(message, /cannot add the mesh to the pods of bookapi:/);
        for (const problem of [
          /a container is already named "envoy"/,
          /container "server" opens port 9901, Envoy's admin port/,
          /volume "envoy-certs" is a name the mesh's volumes use/,
          /serviceAccountName "books": the mesh identity is the ServiceAccount "bookapi"/,
          /label app\.kubernetes\.io\/name="books" conflicts with the mesh's "bookapi"/,
        ])
          assert.match(message, problem);
        return true;
      },
    );
  });
});
