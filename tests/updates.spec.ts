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
  stackConfigWithServices,
  runStack,
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
    // The worker's run of prod, and a fresh one (new keys: a renewal).
    first = await runStack("prod");
    renewed = await runProgram(stackConfig("prod"), "prod");
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
    const changed = await runProgram(
      { ...config, "bookapi-mesh:services": JSON.stringify(services) },
      "prod",
    );
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

  describe("which pods roll for each change (docs/operations.md, the change table)", () => {
    const base = stackConfig("prod");
    const services = (edit: (s: Array<Record<string, unknown>>) => unknown) =>
      stackConfigWithServices("prod", edit);
    const top = (key: string, value: unknown) => ({
      ...base,
      [`bookapi-mesh:${key}`]: typeof value === "string" ? value : JSON.stringify(value),
    });
    const envoy = JSON.parse(base["bookapi-mesh:envoy"]) as Record<string, unknown>;
    const gateway = JSON.parse(base["bookapi-mesh:gateway"]) as Record<string, unknown>;
    const ratings = { name: "ratings", image: "registry.example.com/ratings:1.0.0", port: 7000 };
    const rows: Array<[string, Record<string, string>, string[], Record<string, string>?]> = [
      [
        "a new calls edge rolls the callee (allow-list) and the caller (routes)",
        services((s) => s.push(ratings) && (s[0].calls = ["ratings"])),
        ["bookapi", "ratings"],
        services((s) => s.push(ratings)),
      ],
      [
        "a caller's methods or paths roll the callee only",
        services((s) => (s[1].calls = [{ service: "bookapi", methods: ["GET"] }])),
        ["bookapi"],
      ],
      [
        "a service's traffic rolls it and its callers",
        services((s) => (s[0].traffic = { timeout: "20s" })),
        ["bookapi", "bookapi-mcp-server"],
      ],
      [
        "a routed service's traffic rolls it and the gateway",
        services((s) => (s[1].traffic = { ...(s[1].traffic as object), idleTimeout: "30m" })),
        ["bookapi-mcp-server", "mesh-gateway"],
      ],
      ["exposeDirectPort rolls nothing", services((s) => (s[0].exposeDirectPort = true)), []],
      [
        "network.dns rolls nothing",
        top("network", { dns: { peers: [{ ipBlock: { cidr: "169.254.20.10/32" } }] } }),
        [],
      ],
      [
        "envoy.scrapeFrom rolls nothing (the NetworkPolicies change)",
        top("envoy", {
          ...envoy,
          scrapeFrom: [{ namespaceSelector: { matchLabels: { team: "monitoring" } } }],
        }),
        [],
      ],
      [
        "observability.metrics.discovery rolls every workload (their scrape annotations)",
        top("observability", { metrics: { discovery: "annotations" } }),
        ["bookapi", "bookapi-mcp-server", "mesh-gateway"],
      ],
      ["replicas rolls nothing", services((s) => (s[0].replicas = 4)), []],
      [
        "kubernetesVersion rolls the services (the app's preStop form)",
        top("kubernetesVersion", "1.30"),
        ["bookapi", "bookapi-mcp-server"],
      ],
      [
        "an Envoy-wide setting rolls every workload",
        top("envoy", { ...envoy, logLevel: "info" }),
        ["bookapi", "bookapi-mcp-server", "mesh-gateway"],
      ],
      [
        "a gateway setting rolls the gateway only",
        top("gateway", { ...gateway, cors: { allowOrigins: ["https://app.example.com"] } }),
        ["mesh-gateway"],
      ],
    ];
    let shipped: ProgramRun | undefined;
    for (const [what, after, rolled, before] of rows) {
      it(what, async () => {
        shipped ??= await runStack("prod");
        const from = before ? await runProgram(before, "prod") : shipped;
        const to = await runProgram(after, "prod");
        assert.deepEqual(restartedDeployments(from, to), rolled);
      });
    }
  });
});
