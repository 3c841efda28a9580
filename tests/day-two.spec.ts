/**
 * Day two: what operators do after the first install, played against a model of the cluster,
 * the Kubernetes provider and the Pulumi engine (harness/cluster-model.ts): rolling an Envoy
 * config back, changes made with kubectl, an HPA turned off, and a second stack in the same
 * cluster. Each case also runs with the provider settings the program had before (no upserts,
 * no forced applies) to show what failed then.
 */
import assert from "node:assert/strict";
import {
  envoyConfigMapOf,
  findObject,
  metadataName,
  ProgramRun,
  runProgram,
  stackConfig,
  runWithServices,
} from "./harness/program";
import {
  Cluster,
  emptyStack,
  PULUMI_MANAGER,
  StackState,
  up,
  UpResult,
} from "./harness/cluster-model";

type Json = Record<string, unknown>;

/** prod with its services changed in place by `edit`. */
const prodWith = (edit: (services: Json[]) => unknown): Promise<ProgramRun> =>
  runWithServices("prod", edit);

const service = (services: Json[], name: string) => {
  const found = services.find((s) => s.name === name);
  assert.ok(found, name);
  return found;
};

/** The same run as the provider settings before this change registered it. */
function withoutUpsertOrForce(run: ProgramRun): ProgramRun {
  return {
    ...run,
    resources: run.resources.map((r) => {
      if (r.type !== "pulumi:providers:kubernetes") return r;
      const inputs = { ...r.inputs };
      delete inputs.upsertExistingObjects;
      delete inputs.enablePatchForce;
      return { ...r, inputs };
    }),
  };
}

const ok = (result: UpResult) => {
  assert.equal(result.error, undefined, result.error);
  return result;
};

const DEPLOYMENT = "Deployment/bookapi/bookapi";

/** A new cluster and prod stack after `pulumi up` of each run in turn. */
function deployedRuns(...runs: ProgramRun[]): { cluster: Cluster; stack: StackState } {
  const cluster = new Cluster();
  const stack = emptyStack("prod");
  for (const run of runs) ok(up(cluster, stack, run));
  return { cluster, stack };
}

/** The program's provider settings now, and as they were before this change. */
const SETTINGS = [
  ["now", (run: ProgramRun) => run],
  ["before", withoutUpsertOrForce],
] as const;

describe("day two on a live cluster (a model of the cluster, the provider and the engine)", () => {
  let a: ProgramRun;
  let b: ProgramRun;
  let c: ProgramRun;
  before(async () => {
    a = await runProgram(stackConfig("prod"), "prod");
    // B: the MCP server may only GET from bookapi (bookapi's allow-list changes).
    b = await prodWith(
      (s) => (service(s, "bookapi-mcp-server").calls = [{ service: "bookapi", methods: ["GET"] }]),
    );
    // C: bookapi's inbound timeout changes too.
    c = await prodWith((s) => {
      service(s, "bookapi-mcp-server").calls = [{ service: "bookapi", methods: ["GET"] }];
      service(s, "bookapi").traffic = { timeout: "20s" };
    });
  });

  const configMapKey = (run: ProgramRun) =>
    `ConfigMap/bookapi/${metadataName(envoyConfigMapOf(run, "bookapi"))}`;
  const mountedConfig = (cluster: Cluster) =>
    (
      cluster.value(DEPLOYMENT, "spec.template.spec.volumes") as Array<{
        name: string;
        configMap?: { name: string };
      }>
    ).find((v) => v.name === "envoy-config")?.configMap?.name;

  describe("rolling an Envoy config back", () => {
    it("goes A -> B -> A: version A is created again over the copy the cluster kept, and nothing is deleted", () => {
      const { cluster, stack } = deployedRuns(a, b);
      const back = ok(up(cluster, stack, a));
      assert.ok(back.steps.includes(`create (upsert) ${configMapKey(a)}`), back.steps.join("\n"));
      assert.ok(!back.steps.some((s) => s.startsWith("delete ")), back.steps.join("\n"));
      assert.equal(mountedConfig(cluster), metadataName(envoyConfigMapOf(a, "bookapi")));
      assert.ok(cluster.has(configMapKey(b)), "B stays for its ReplicaSet and rollout undo");
    });

    it("fails at that create with AlreadyExists under the provider settings before this change", () => {
      const { cluster, stack } = deployedRuns(withoutUpsertOrForce(a), withoutUpsertOrForce(b));
      const back = up(cluster, stack, withoutUpsertOrForce(a));
      assert.equal(back.error, `${configMapKey(a)}: AlreadyExists`);
    });

    it("goes A -> B -> C -> A, every version kept", () => {
      const { cluster } = deployedRuns(a, b, c, a);
      assert.equal(mountedConfig(cluster), metadataName(envoyConfigMapOf(a, "bookapi")));
      for (const run of [a, b, c]) assert.ok(cluster.has(configMapKey(run)));
    });

    it("reverts a rollout that failed half-way: the next up deletes nothing and returns the Deployment to A", () => {
      const { cluster, stack } = deployedRuns(a);
      const failed = up(cluster, stack, b, { failingRollouts: ["bookapi"] });
      assert.equal(failed.error, `${DEPLOYMENT}: rollout did not complete`);
      assert.equal(mountedConfig(cluster), metadataName(envoyConfigMapOf(b, "bookapi")));
      const reverted = ok(up(cluster, stack, a));
      // The old version the failed update left to delete is retained, then created again.
      assert.equal(reverted.steps[0], `retain ${configMapKey(a)}`);
      assert.ok(reverted.steps.includes(`create (upsert) ${configMapKey(a)}`));
      assert.ok(!reverted.steps.some((s) => s.startsWith("delete ")));
      assert.equal(mountedConfig(cluster), metadataName(envoyConfigMapOf(a, "bookapi")));
      assert.ok(cluster.has(configMapKey(b)));
    });
  });

  describe("changes made with kubectl", () => {
    /** A cluster running prod (A), then `kubectl scale deployment/bookapi --replicas=5`. */
    function scaledByHand(run: ProgramRun = a): { cluster: Cluster; stack: StackState } {
      const deployed = deployedRuns(run);
      deployed.cluster.update(DEPLOYMENT, { "spec.replicas": 5 }, "kubectl");
      return deployed;
    }

    it("takes back a field kubectl scaled at the next up that changes the Deployment: Pulumi's declared replicas win", () => {
      const { cluster, stack } = scaledByHand();
      ok(up(cluster, stack, b));
      assert.equal(cluster.value(DEPLOYMENT, "spec.replicas"), 3);
      assert.deepEqual(cluster.owners(DEPLOYMENT, "spec.replicas"), [PULUMI_MANAGER]);
    });

    it("failed that up with a server-side apply conflict under the provider settings before this change", () => {
      const { cluster, stack } = scaledByHand(withoutUpsertOrForce(a));
      const result = up(cluster, stack, withoutUpsertOrForce(b));
      assert.match(
        result.error ?? "",
        /Apply failed with 1 conflict\(s\): conflict with "kubectl": \.spec\.replicas/,
      );
    });

    it("leaves the drift in place on an up that changes nothing, and corrects it with up --refresh", () => {
      const { cluster, stack } = scaledByHand();
      const plain = ok(up(cluster, stack, a));
      assert.deepEqual(plain.steps, []);
      assert.equal(cluster.value(DEPLOYMENT, "spec.replicas"), 5);
      const refreshed = ok(up(cluster, stack, a, { refresh: true }));
      assert.deepEqual(refreshed.steps, [`update ${DEPLOYMENT}`]);
      assert.equal(cluster.value(DEPLOYMENT, "spec.replicas"), 3);
    });

    it("rolls forward after `kubectl rollout undo` with up --refresh, which kubectl's template would otherwise block", () => {
      for (const [settings, prepare] of SETTINGS) {
        const { cluster, stack } = deployedRuns(prepare(a), prepare(b));
        // `kubectl rollout undo` writes the previous ReplicaSet's template back (here its volumes).
        const previous = findObject(a, "Deployment", "bookapi").inputs.spec as {
          template: { spec: Json };
        };
        cluster.update(
          DEPLOYMENT,
          { "spec.template.spec.volumes": previous.template.spec.volumes },
          "kubectl-rollout",
        );
        assert.equal(mountedConfig(cluster), metadataName(envoyConfigMapOf(a, "bookapi")));
        const result = up(cluster, stack, prepare(b), { refresh: true });
        if (settings === "now") {
          assert.equal(result.error, undefined, result.error);
          assert.equal(mountedConfig(cluster), metadataName(envoyConfigMapOf(b, "bookapi")));
        } else {
          assert.match(result.error ?? "", /conflict with "kubectl-rollout"/);
        }
      }
    });

    it("takes replicas back from the HPA when autoscaling is turned off, which conflicted before", async () => {
      const autoscaled = await prodWith((s) => {
        delete service(s, "bookapi").replicas;
        service(s, "bookapi").autoscaling = { minReplicas: 2, maxReplicas: 6 };
      });
      for (const [settings, prepare] of SETTINGS) {
        const { cluster, stack } = deployedRuns(prepare(a), prepare(autoscaled));
        // Turning it on: replicas loses its last owner and is reset to 1 until the HPA syncs,
        // as Kubernetes' docs on migrating to autoscaling say (docs/operations.md).
        assert.equal(cluster.value(DEPLOYMENT, "spec.replicas"), 1);
        cluster.update(DEPLOYMENT, { "spec.replicas": 4 }, "kube-controller-manager");
        const off = up(cluster, stack, prepare(a));
        if (settings === "now") {
          assert.equal(off.error, undefined, off.error);
          assert.equal(cluster.value(DEPLOYMENT, "spec.replicas"), 3);
          assert.deepEqual(cluster.owners(DEPLOYMENT, "spec.replicas"), [PULUMI_MANAGER]);
        } else {
          assert.match(
            off.error ?? "",
            /conflict with "kube-controller-manager": \.spec\.replicas/,
          );
        }
      }
    });
  });

  describe("two stacks in one cluster", () => {
    it("stops a second stack in the same namespace at its first create, before it touches anything", async () => {
      const cluster = new Cluster();
      ok(up(cluster, emptyStack("dev"), await runProgram(stackConfig("dev"), "dev")));
      const objects = cluster.objects.size;
      const second = up(cluster, emptyStack("dev2"), await runProgram(stackConfig("dev"), "dev2"));
      assert.deepEqual(second.steps, []);
      assert.equal(second.error, "ConfigMap/default/bookapi-mesh-stack: AlreadyExists");
      assert.equal(cluster.objects.size, objects);
    });

    it("runs two dev-like stacks side by side in two namespaces: Kubernetes picks each gateway's node port", async () => {
      const cluster = new Cluster();
      const dev = stackConfig("dev");
      ok(up(cluster, emptyStack("dev"), await runProgram(dev, "dev")));
      ok(
        up(
          cluster,
          emptyStack("dev2"),
          await runProgram({ ...dev, "bookapi-mesh:namespace": "dev2" }, "dev2"),
        ),
      );
      // A node port fixed in both collides whatever the namespaces.
      const pinned = (ns: string) => {
        const gateway = JSON.parse(dev["bookapi-mesh:gateway"]) as Json;
        return {
          ...dev,
          "bookapi-mesh:namespace": ns,
          "bookapi-mesh:gateway": JSON.stringify({
            ...gateway,
            service: { type: "NodePort", port: 30443 },
          }),
        };
      };
      const other = new Cluster();
      ok(up(other, emptyStack("a"), await runProgram(pinned("a"), "a")));
      const clash = up(other, emptyStack("b"), await runProgram(pinned("b"), "b"));
      assert.match(clash.error ?? "", /provided port is already allocated/);
    });
  });
});
