/**
 * What a `pulumi up` does to live objects when certificates renew or the Envoy config changes,
 * from two runs of the program and a model of the provider's and engine's replacement rules
 * (harness/update-model.ts).
 */
import assert from "node:assert/strict";
import {
  envoyConfigMapOf,
  metadataName,
  ProgramRun,
  runProgram,
  stackConfig,
} from "./harness/program";
import { planUpdate, restartedDeployments, Step } from "./harness/update-model";

const actionsOf = (steps: Step[], kind: string) =>
  steps.filter((s) => s.object.startsWith(`${kind}/`)).map((s) => s.action);

/** The same run as the provider would see it without enableSecretMutable (the default). */
function withDefaultProvider(run: ProgramRun): ProgramRun {
  return {
    ...run,
    resources: run.resources.map((r) =>
      r.type === "pulumi:providers:kubernetes" ? { ...r, inputs: {} } : r,
    ),
  };
}

describe("updates on a live cluster (a model of the provider's replacement rules)", () => {
  // The fake tls provider issues fresh keys and certificates on every run, as a renewal does.
  let first: ProgramRun;
  let renewed: ProgramRun;
  before(async () => {
    first = await runProgram(stackConfig("prod"));
    renewed = await runProgram(stackConfig("prod"));
  });

  it("renews certificates by updating the Secrets in place, deleting nothing and restarting no pod", () => {
    const steps = planUpdate(first, renewed);
    // Both services' identities and the gateway's.
    assert.deepEqual(actionsOf(steps, "Secret"), ["update", "update", "update"]);
    assert.deepEqual(
      steps.filter((s) => !s.object.startsWith("Secret/")).map((s) => s.action),
      steps.filter((s) => !s.object.startsWith("Secret/")).map(() => "same"),
      JSON.stringify(steps),
    );
    assert.deepEqual(restartedDeployments(first, renewed), []);
  });

  it("would delete each Secret under its running pods with the provider's default settings", () => {
    const steps = planUpdate(withDefaultProvider(first), withDefaultProvider(renewed));
    assert.deepEqual(actionsOf(steps, "Secret"), [
      "replace, delete first",
      "replace, delete first",
      "replace, delete first",
    ]);
  });

  it("moves an Envoy config change to a new ConfigMap, created first, and keeps the old one for the old ReplicaSet", async () => {
    const config = stackConfig("prod");
    const services = JSON.parse(config["bookapi-mesh:services"]) as Array<Record<string, unknown>>;
    const mcp = services.find((s) => s.name === "bookapi-mcp-server");
    assert.ok(mcp);
    mcp.calls = [{ service: "bookapi", methods: ["GET"] }];
    const changed = await runProgram({
      ...config,
      "bookapi-mesh:services": JSON.stringify(services),
    });
    const steps = planUpdate(renewed, changed);
    const oldName = metadataName(envoyConfigMapOf(renewed, "bookapi"));
    const newName = metadataName(envoyConfigMapOf(changed, "bookapi"));
    assert.notEqual(oldName, newName);
    assert.deepEqual(
      steps.filter((s) => s.object.startsWith("ConfigMap/bookapi-envoy")),
      // The old version stays for the old ReplicaSet (and `kubectl rollout undo`).
      [{ object: `ConfigMap/${newName}`, action: "replace, create first, old kept" }],
    );
    // Only bookapi's Envoy files changed (its callers' rules): only its pods roll.
    assert.deepEqual(restartedDeployments(renewed, changed), ["bookapi"]);
    assert.ok(!steps.some((s) => s.action === "replace, delete first"), JSON.stringify(steps));
  });
});
