/**
 * The stack file as a newcomer writes it: a misspelt namespace or provider key is refused with
 * the key that was meant, keys nothing reads are warned about, and errors about a service say
 * which one.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { loadMeshConfig, MeshConfigError } from "../components/config";
import { KUBERNETES_PROVIDER_KEYS } from "../components/config-keys";
import { runProgram, stackConfig } from "./harness/program";

function problemsOf(config: Record<string, string>): string[] {
  try {
    loadMeshConfig(config);
  } catch (err) {
    if (err instanceof MeshConfigError) return err.problems;
    throw err;
  }
  return assert.fail("expected the config to be refused");
}

/** dev's config with one key renamed, as a typo in the stack file would. */
function renamed(from: string, to: string): Record<string, string> {
  const config = stackConfig("dev");
  config[to] = config[from];
  delete config[from];
  return config;
}

describe("the stack file's keys", () => {
  it("refuses a namespace that is a near miss of the project's, naming the key that was meant", () => {
    for (const ns of ["bookapimesh", "bookapi_mesh", "Bookapi-Mesh", "bokapi-mesh"])
      assert.deepEqual(problemsOf(renamed("bookapi-mesh:namespace", `${ns}:namespace`)), [
        `${ns}:namespace: "${ns}" is not this project's config namespace (did you mean "bookapi-mesh:namespace"?)`,
      ]);
  });

  it("refuses a kubernetes: key the provider does not have, naming the nearest one", () => {
    assert.deepEqual(problemsOf({ ...stackConfig("dev"), "kubernetes:contxt": "kind-kind" }), [
      'kubernetes:contxt: not a setting of the Kubernetes provider (did you mean "kubernetes:context"?)',
    ]);
    assert.deepEqual(problemsOf({ ...stackConfig("dev"), "kubernetes:frobnicate": "x" }), [
      "kubernetes:frobnicate: not a setting of the Kubernetes provider",
    ]);
  });

  it("warns at preview about keys nothing reads: other namespaces, and provider keys the program's own provider ignores", async () => {
    const { warnings } = await runProgram({
      ...stackConfig("dev"),
      "kubernetes:namespace": "elsewhere",
      "bookapi:replicas": "2",
      "kubernetes:context": "kind-kind",
    });
    assert.ok(
      warnings.includes(
        "kubernetes:namespace is not used: the program's own Kubernetes provider takes only kubernetes:context and kubernetes:kubeconfig from the stack config (docs/configuration.md)",
      ),
      warnings.join("\n"),
    );
    assert.ok(
      warnings.some((w) => w.startsWith("bookapi:replicas is not read by this program")),
      warnings.join("\n"),
    );
    assert.ok(!warnings.some((w) => w.startsWith("kubernetes:context")));
  });

  it("knows every setting of the installed Kubernetes provider, and no other", () => {
    // The provider's inputs as the installed SDK sends them (one resourceInputs entry each).
    const source = fs.readFileSync(
      path.join(path.dirname(require.resolve("@pulumi/kubernetes/package.json")), "provider.js"),
      "utf8",
    );
    const inputs = [...source.matchAll(/resourceInputs\["(\w+)"\]/g)].map((m) => m[1]);
    assert.deepEqual([...KUBERNETES_PROVIDER_KEYS].sort(), [...new Set(inputs)].sort());
  });

  it("suggests the nearest key for a typo at any depth, and says which service a problem is in", () => {
    const config = stackConfig("dev");
    const services = JSON.parse(config["bookapi-mesh:services"]) as Record<string, unknown>[];
    services[1] = { ...services[1], prot: 5289, replicas: 0 };
    const gateway = JSON.parse(config["bookapi-mesh:gateway"]) as Record<string, unknown>;
    gateway.routes = [{ pathPrefix: "/mcp", service: "bookapi-mcp-server", pubilc: true }];
    const problems = problemsOf({
      ...renamed("bookapi-mesh:namespace", "bookapi-mesh:namspace"),
      "bookapi-mesh:services": JSON.stringify(services),
      "bookapi-mesh:gateway": JSON.stringify(gateway),
    });
    for (const expected of [
      'bookapi-mesh: unknown key "namspace" (did you mean "namespace"?)',
      'bookapi-mesh:services[1]: unknown key "prot" (did you mean "port"?) (service "bookapi-mcp-server")',
      'bookapi-mesh:services[1].replicas: must be at least 1 (service "bookapi-mcp-server")',
      'bookapi-mesh:gateway.routes[0]: unknown key "pubilc" (did you mean "public"?)',
    ])
      assert.ok(problems.includes(expected), `${expected}\nnot in:\n${problems.join("\n")}`);
  });

  it("keeps saying only that a key is unknown when nothing known is near it", () => {
    const config = stackConfig("dev");
    const services = JSON.parse(config["bookapi-mesh:services"]) as Record<string, unknown>[];
    services[0] = { ...services[0], colour: "blue" };
    assert.deepEqual(problemsOf({ ...config, "bookapi-mesh:services": JSON.stringify(services) }), [
      'bookapi-mesh:services[0]: unknown key "colour" (a typo?) (service "bookapi")',
    ]);
  });
});
