/**
 * The mesh as a library (docs/library.md). examples/third-party-chart is a program of its own: it
 * imports "bookapi-mesh", builds a mesh from a config object with one adopted service, registers
 * `meshInjector` for it and deploys podinfo's chart with `helm.v4.Chart`. It runs here under the
 * Pulumi mocks, with "bookapi-mesh" mapped to the library's source (tsconfig.json `paths`). The
 * mocks cannot render the chart (a packaged component: its children come from the provider) and
 * do not run transforms, so the test sees the Chart registered, and calls the transform the
 * program registered as the engine would on the chart's objects (a stored render,
 * tests/fixtures/inject/podinfo.yaml). That the built package resolves through its exports map
 * is checked by CI on `npm run build`'s output (.ci/check-library.sh).
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import * as library from "../components";
import { MeshConfigError, ServiceMesh } from "../components";
import { PodTemplate } from "../components/pod";
import { chartObjects, engineCall } from "./harness/chart";
import {
  envoyConfigMapOf,
  kindOf,
  kubernetesObjects,
  metadataName,
  once,
  ofType,
  PROJECT_ROOT,
  ProgramRun,
  Registered,
  runProgram,
} from "./harness/program";

const EXAMPLE = path.join(PROJECT_ROOT, "examples", "third-party-chart", "index.ts");
const NAMESPACE = "shop";
const run = once((): Promise<ProgramRun> => runProgram({}, "dev", EXAMPLE));

function urnOf(resource: pulumi.Resource): Promise<string> {
  return new Promise((resolve) => resource.urn.apply(resolve));
}

describe("the mesh as a library (examples/third-party-chart)", () => {
  it("gives the adopted service of a config object its ServiceAccount, Secret, Envoy config, Services and NetworkPolicy, and no workload of its own", async () => {
    const objects = kubernetesObjects(await run());
    const named = (kind: string, name: string) =>
      objects.filter((o) => kindOf(o.type) === kind && metadataName(o) === name);
    for (const [kind, name] of [
      ["Namespace", NAMESPACE],
      ["ServiceAccount", "reviews"],
      ["Secret", "reviews-tls"],
      ["Service", "reviews"],
      ["Service", "reviews-pods"],
      ["NetworkPolicy", "reviews-mesh"],
    ])
      assert.equal(named(kind, name).length, 1, `${kind}/${name}`);
    assert.equal(
      (envoyConfigMapOf(await run(), "reviews").inputs.metadata as { namespace: string }).namespace,
      NAMESPACE,
    );
    for (const kind of ["Deployment", "StatefulSet", "PodDisruptionBudget"])
      assert.deepEqual(
        objects.filter((o) => kindOf(o.type) === kind),
        [],
        kind,
      );
  });

  it("creates the mesh's own providers inside the mesh, with its settings, and deploys its objects and the chart with them", async () => {
    const result = await run();
    const providers = ofType(result, "pulumi:providers:kubernetes");
    assert.deepEqual(
      providers.map((p) => p.name),
      ["mesh-kubernetes", "mesh-kubernetes-envoy-config"],
    );
    const [own, envoyConfig] = providers;
    for (const provider of providers) {
      assert.match(provider.parent, /::bookapi-mesh:mesh:ServiceMesh::mesh$/);
      assert.equal(String(provider.inputs.enableSecretMutable), "true");
      assert.equal(String(provider.inputs.enablePatchForce), "true");
    }
    assert.equal(String(envoyConfig.inputs.upsertExistingObjects), "true");
    // A provider reference is `<provider URN>::<id>`; the URN ends with its parent types and name.
    const usesProvider = (r: Registered, provider: Registered) =>
      r.provider.includes(`ServiceMesh$pulumi:providers:kubernetes::${provider.name}::`);
    for (const r of kubernetesObjects(result).filter((o) => o.custom)) {
      const versioned = /-envoy-[0-9a-f]{10}$/.test(metadataName(r));
      assert.ok(usesProvider(r, versioned ? envoyConfig : own), `${r.name} uses ${r.provider}`);
    }
    const chart = ofType(result, "kubernetes:helm.sh/v4:Chart");
    assert.equal(chart.length, 1);
    assert.equal(chart[0].parent, "", "the chart is the program's, not the mesh's");
    assert.ok(usesProvider(chart[0], own), chart[0].provider);
    const { chart: name, version, namespace } = chart[0].inputs;
    assert.deepEqual(
      { name, version, namespace },
      { name: "oci://ghcr.io/stefanprodan/charts/podinfo", version: "6.9.1", namespace: NAMESPACE },
    );
  });

  it("registers one transform for the whole stack, which adds the sidecar to the chart's Deployment, makes it wait for its service's objects and leaves the chart's Service alone", async () => {
    const { transforms } = await run();
    assert.equal(transforms.length, 1);
    const [transform] = transforms;
    // podinfo's chart as `helm template reviews ... --namespace shop` renders it.
    const [service, deployment] = chartObjects(NAMESPACE);
    assert.equal(deployment.kind, "Deployment");
    assert.equal(await engineCall(transform, service), undefined);
    const result = await engineCall(transform, deployment);
    assert.ok(result, "the Deployment is injected");
    const template = (result.props.spec as { template: PodTemplate }).template;
    const containers = [
      ...(template.spec?.initContainers ?? []),
      ...(template.spec?.containers ?? []),
    ].map((c) => c.name);
    assert.deepEqual(containers, ["envoy", "podinfo"]);
    assert.equal(template.metadata?.labels?.["bookapi-mesh/service"], "reviews");
    const waitsFor = await Promise.all(
      (result.opts.dependsOn as pulumi.Resource[]).map((r) => urnOf(r)),
    );
    for (const name of ["mesh-reviews-sa", "mesh-reviews-tls", "mesh-netpol-reviews-mesh"])
      assert.ok(
        waitsFor.some((urn) => urn.endsWith(`::${name}`)),
        `waits for ${name}: ${waitsFor.join(", ")}`,
      );
  });

  it("refuses a config object the schema refuses before registering anything, naming the key", () => {
    assert.throws(
      () =>
        new ServiceMesh("bad", {
          config: { services: [{ name: "Reviews", port: 9898, workload: { kind: "Job" } }] },
        } as unknown as library.ServiceMeshArgs),
      (error: unknown) =>
        error instanceof MeshConfigError &&
        error.problems.some((p) => p.startsWith("bookapi-mesh:services[0].name:")) &&
        error.problems.some((p) => p.startsWith("bookapi-mesh:services[0].workload.")),
    );
  });

  it("refuses cluster or lastTrust beside a Kubernetes provider it is given, which it would ignore", async () => {
    await pulumi.runtime.setMocks(
      {
        newResource: (args) => ({ id: `${args.name}-id`, state: args.inputs }),
        call: () => ({}),
      },
      "library",
      "test",
    );
    const provider = new k8s.Provider("given", {});
    assert.throws(
      () =>
        new ServiceMesh(
          "mesh",
          {
            config: { services: [{ name: "reviews", port: 9898, image: "example/reviews:1.0.0" }] },
            cluster: { context: "elsewhere" },
          },
          { providers: [provider] },
        ),
      /cluster and lastTrust are for the providers the mesh creates/,
    );
  });

  it("exports a small public API from one entry point, which the package's exports map serves from the build", () => {
    assert.deepEqual(Object.keys(library).sort(), [
      "InjectionError",
      "MINIMUM_PULUMI_CLI",
      "MeshConfigError",
      "ServiceMesh",
      "injectWorkload",
      "loadMeshConfig",
      "meshInjector",
      "meshProviders",
      "parseMeshConfig",
    ]);
    const pkg = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, "package.json"), "utf8")) as {
      exports: Record<string, { types: string; default: string }>;
      types: string;
      files: string[];
      peerDependencies: Record<string, string>;
    };
    // tsconfig.build.json compiles components/ (rootDir) to dist/ (outDir).
    assert.deepEqual(pkg.exports["."], {
      types: "./dist/index.d.ts",
      default: "./dist/index.js",
    });
    assert.equal(pkg.types, "dist/index.d.ts");
    assert.deepEqual(pkg.files, ["dist"]);
    assert.deepEqual(Object.keys(pkg.peerDependencies).sort(), [
      "@pulumi/kubernetes",
      "@pulumi/pulumi",
      "@pulumi/tls",
    ]);
  });
});
