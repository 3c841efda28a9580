/**
 * The order in which `pulumi up` changes the cluster, on a first install and on a change, from
 * the dependencies the program registers (harness/update-model.ts `runsAfter`: the engine starts
 * a step only after the steps it depends on) and pulumi-kubernetes' await (a Deployment's create
 * or update completes only when its rollout has: every pod updated and ready).
 */
import assert from "node:assert/strict";
import { rolloutOrder } from "../components/rollout-order";
import {
  findObject,
  kindOf,
  kubernetesObjects,
  metadataName,
  ProgramRun,
  runStack,
  STACKS,
  runWithServices,
} from "./harness/program";
import { restartedDeployments, runsAfter } from "./harness/update-model";

type Json = Record<string, unknown>;

/** prod with its services changed in place by `edit`. */
const prodWith = (edit: (services: Json[]) => unknown): Promise<ProgramRun> =>
  runWithServices("prod", edit);

/** bookapi calls `ratings`. */
const bookapiCallsRatings = (services: Json[]) => {
  const bookapi = services.find((svc) => svc.name === "bookapi");
  if (bookapi) bookapi.calls = ["ratings"];
};

const RATINGS = { name: "ratings", image: "registry.example.com/ratings:1.0.0", port: 7000 };

describe("ordering on first install and on change", () => {
  for (const stack of STACKS) {
    it(`starts no pod of the ${stack} stack before the NetworkPolicies that isolate it exist`, async () => {
      const run = await runStack(stack);
      const deployments = kubernetesObjects(run).filter((r) => kindOf(r.type) === "Deployment");
      assert.equal(deployments.length, 3, "both services and the gateway");
      for (const deployment of deployments) {
        const name = metadataName(deployment);
        for (const policy of ["bookapi-mesh-default-deny", `${name}-mesh`])
          assert.ok(
            runsAfter(run, deployment, findObject(run, "NetworkPolicy", policy)),
            `${name} waits for ${policy}`,
          );
      }
    });
  }

  it("creates every object in the namespace after the stack's claim, without taking any input from it", async () => {
    // An input taken from the claim's output would make the engine plan the replacement of every
    // object whenever the claim is replaced (dependent replacements: its outputs become unknown,
    // and a namespace change replaces an object); a dependsOn edge does not.
    const run = await runStack("prod");
    const claim = findObject(run, "ConfigMap", "bookapi-mesh-stack");
    const claimId = `${claim.type}::${claim.name}`;
    for (const r of kubernetesObjects(run)) {
      if (r === claim || kindOf(r.type) === "Namespace") continue;
      assert.ok(runsAfter(run, r, claim), `${r.name} waits for the claim`);
      const inputsFrom = Object.values(r.propertyDependencies).flat();
      assert.ok(
        !inputsFrom.some((urn) => urn.endsWith(claimId)),
        `${r.name} takes an input from the claim`,
      );
    }
  });

  it("creates a caller only once the services it calls are rolled out, and the gateway last", async () => {
    const run = await runStack("prod");
    const deployment = (name: string) => findObject(run, "Deployment", name);
    assert.ok(runsAfter(run, deployment("bookapi-mcp-server"), deployment("bookapi")));
    assert.ok(!runsAfter(run, deployment("bookapi"), deployment("bookapi-mcp-server")));
    assert.ok(runsAfter(run, deployment("mesh-gateway"), deployment("bookapi-mcp-server")));
  });

  it("rolls the callee of a new calls edge to completion before the caller's pods start", async () => {
    const before = await prodWith((s) => s.push(RATINGS));
    const after = await prodWith((s) => {
      bookapiCallsRatings(s);
      s.push(RATINGS);
    });
    // Both ends change: ratings' allow-list and bookapi's outbound routes.
    assert.deepEqual(restartedDeployments(before, after), ["bookapi", "ratings"]);
    assert.ok(
      runsAfter(
        after,
        findObject(after, "Deployment", "bookapi"),
        findObject(after, "Deployment", "ratings"),
      ),
    );
  });

  it("leaves services that call each other unordered, and says so at preview", async () => {
    const run = await prodWith((s) => {
      bookapiCallsRatings(s);
      s.push({ ...RATINGS, calls: ["bookapi"] });
    });
    const bookapi = findObject(run, "Deployment", "bookapi");
    const ratings = findObject(run, "Deployment", "ratings");
    assert.ok(!runsAfter(run, bookapi, ratings) && !runsAfter(run, ratings, bookapi));
    // The MCP server, outside the cycle, still waits for bookapi.
    assert.ok(runsAfter(run, findObject(run, "Deployment", "bookapi-mcp-server"), bookapi));
    assert.deepEqual(
      run.warnings.filter((w) => w.includes("cycle")),
      [
        'services "bookapi", "ratings" call each other in a cycle, so their rollouts are not ordered: add a calls entry between them in two steps (docs/operations.md, "Ordering")',
      ],
    );
  });

  it("orders any call graph callees first, groups each cycle, and handles a deep chain", () => {
    const order = rolloutOrder(
      new Map([
        ["a", ["b"]],
        ["b", ["c"]],
        ["c", ["b", "d"]],
        ["d", []],
        ["e", ["a", "d"]],
      ]),
    );
    const at = (n: string) => order.order.indexOf(n);
    assert.ok(at("d") < at("c") && at("c") < at("a") && at("b") < at("a") && at("a") < at("e"));
    assert.deepEqual(order.cycles, [["b", "c"]]);
    assert.deepEqual(order.waitsFor.get("c"), ["d"]);
    assert.deepEqual(order.waitsFor.get("b"), []);
    assert.deepEqual(order.waitsFor.get("a"), ["b"]);
    const n = 20_000;
    const chain = rolloutOrder(
      new Map(Array.from({ length: n }, (_, i) => [`s${i}`, i + 1 < n ? [`s${i + 1}`] : []])),
    );
    assert.equal(chain.order[0], `s${n - 1}`);
    assert.equal(chain.cycles.length, 0);
  });
});
