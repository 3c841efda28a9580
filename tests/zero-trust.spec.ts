/**
 * Authorization in Envoy (SPIFFE identities, per-call L7 rules) and pod hardening (Pod Security
 * "restricted", native sidecar ordering, shutdown drain), all derived from the same `calls`.
 */
import assert from "node:assert/strict";
import { restrictedViolations } from "./harness/pod-security";
import { PodSpec } from "./harness/kubernetes-schema";
import { X509Certificate } from "node:crypto";
import { loadMeshConfig, MeshConfigError, parseMeshConfig } from "../components/config";
import { buildBootstrap } from "../components/envoy";
import { sidecarSpec } from "../components/mesh";
import { evaluateHttpRbac, pathAfterNormalization } from "./harness/mtls";
import {
  findObject,
  kubernetesObjects,
  kindOf,
  ProgramRun,
  runProgram,
  runStack,
  STACKS,
  stackConfig,
} from "./harness/program";

type Json = Record<string, unknown>;

const SERVICES = [
  { name: "bookapi", image: "registry.example.com/bookapi:1.0.0", port: 5288 },
  {
    name: "bookapi-mcp-server",
    image: "registry.example.com/bookapi-mcp-server:1.0.0",
    port: 5289,
    calls: [{ service: "bookapi", methods: ["GET"], paths: ["/books", "/books/*"] }],
  },
  { name: "reviews", image: "registry.example.com/reviews:2.0.0", port: 7070, calls: ["bookapi"] },
];

/** The HTTP connection manager's config on a service's inbound listener. */
function inboundHcm(bootstrap: Json): Json {
  const listeners = (bootstrap.static_resources as { listeners: Json[] }).listeners;
  const inbound = listeners.find((l) => l.name === "inbound") as Json;
  const chain = (inbound.filter_chains as Json[])[0];
  const hcm = (chain.filters as Json[]).find(
    (f) => f.name === "envoy.filters.network.http_connection_manager",
  ) as Json;
  return hcm.typed_config as Json;
}

/** The HTTP RBAC rules of a service's inbound listener. */
function inboundHttpRbac(bootstrap: Json): {
  action: string;
  policies: Record<string, { permissions: Json[]; principals: Json[] }>;
} {
  const text = JSON.stringify(bootstrap);
  assert.ok(text.includes("envoy.filters.http.rbac"), "no HTTP RBAC filter");
  const filters = (inboundHcm(bootstrap) as { http_filters: Json[] }).http_filters;
  const rbac = filters.find((f) => f.name === "envoy.filters.http.rbac") as {
    typed_config: { rules: never };
  };
  return rbac.typed_config.rules;
}

/** Envoy's HTTP RBAC decision (the harness's emulation) for a peer presenting these SANs. */
function allowed(
  rules: ReturnType<typeof inboundHttpRbac>,
  req: { principalSans: string[]; method: string; path: string },
): boolean {
  assert.equal(rules.action, "ALLOW");
  const uri = req.principalSans.filter((name) => name.startsWith("spiffe://"));
  const dns = req.principalSans.filter((name) => !name.startsWith("spiffe://"));
  const peer = { dns, uri, email: [], ip: [], subject: "" };
  const http = { method: req.method, path: req.path };
  return evaluateHttpRbac(rules, peer, { port: 15001, http }).allowed;
}

describe("authorization in Envoy", () => {
  const model = parseMeshConfig({ services: SERVICES });
  const bookapi = model.services.find((s) => s.name === "bookapi");
  assert.ok(bookapi);
  const bootstrap = buildBootstrap(sidecarSpec(model, bookapi)) as unknown as Json;
  const rules = inboundHttpRbac(bootstrap);
  const mcp = ["bookapi-mcp-server.default.svc.cluster.local"];
  const reviews = ["spiffe://cluster.local/ns/default/sa/reviews"];

  it("lets a caller with L7 rules use only the methods and paths it declared", () => {
    assert.equal(allowed(rules, { principalSans: mcp, method: "GET", path: "/books" }), true);
    assert.equal(allowed(rules, { principalSans: mcp, method: "GET", path: "/books/42" }), true);
    assert.equal(allowed(rules, { principalSans: mcp, method: "POST", path: "/books" }), false);
    assert.equal(allowed(rules, { principalSans: mcp, method: "GET", path: "/authors" }), false);
    assert.equal(allowed(rules, { principalSans: mcp, method: "GET", path: "/booksx" }), false);
  });

  it("refuses an escaped slash with 400 before a path rule can be read past it", () => {
    const hcm = inboundHcm(bootstrap);
    const sneaky = "/books/..%2Fadmin";
    // Envoy's default keeps %2F: the "/books/*" rule would admit what the app may read as /admin.
    const defaults = { ...hcm };
    delete defaults.path_with_escaped_slashes_action;
    assert.equal(pathAfterNormalization(defaults, sneaky), sneaky);
    assert.equal(allowed(rules, { principalSans: mcp, method: "GET", path: sneaky }), true);
    for (const raw of [sneaky, "/books/..%2fadmin", "/books/..%5Cadmin"])
      assert.equal(pathAfterNormalization(hcm, raw), undefined, raw);
    // Plain dot segments are resolved before the rules see them; ordinary paths pass unchanged.
    assert.equal(pathAfterNormalization(hcm, "/books/../admin"), "/admin");
    assert.equal(pathAfterNormalization(hcm, "/books/42"), "/books/42");
  });

  it("lets a caller of the plain form do anything, matched by its SPIFFE ID alone", () => {
    assert.equal(
      allowed(rules, { principalSans: reviews, method: "DELETE", path: "/anything" }),
      true,
    );
  });

  it("refuses every other identity", () => {
    const stranger = [
      "intruder.default.svc.cluster.local",
      "spiffe://cluster.local/ns/default/sa/intruder",
    ];
    assert.equal(allowed(rules, { principalSans: stranger, method: "GET", path: "/books" }), false);
  });

  it("puts each caller's FQDN and SPIFFE ID on the inbound SAN allow-list", () => {
    const text = JSON.stringify(buildBootstrap(sidecarSpec(model, bookapi)));
    for (const caller of ["bookapi-mcp-server", "reviews"]) {
      assert.ok(
        text.includes(
          `{"san_type":"DNS","matcher":{"exact":"${caller}.default.svc.cluster.local"}}`,
        ),
        caller,
      );
      assert.ok(
        text.includes(
          `{"san_type":"URI","matcher":{"exact":"spiffe://cluster.local/ns/default/sa/${caller}"}}`,
        ),
        caller,
      );
    }
  });

  it("issues certificates whose URI SAN is the SPIFFE ID of the configured trust domain", async () => {
    const config = {
      ...stackConfig("dev"),
      "bookapi-mesh:certificates": JSON.stringify({ trustDomain: "books.example.org" }),
    };
    const run = await runProgram(config);
    const cert = new X509Certificate(
      String(run.resources.find((r) => r.name === "mesh-bookapi-cert")?.state.certPem),
    );
    assert.match(
      cert.subjectAltName ?? "",
      /URI:spiffe:\/\/books\.example\.org\/ns\/default\/sa\/bookapi/,
    );
  });
});

// Kubernetes' own types, in the plain (output) form the objects have once resolved.

const podsOf = (run: ProgramRun): Array<[string, PodSpec]> =>
  kubernetesObjects(run)
    .filter((r) => kindOf(r.type) === "Deployment")
    .map((r) => [r.name, (r.inputs.spec as { template: { spec: PodSpec } }).template.spec]);

describe("pod hardening", () => {
  for (const stack of STACKS) {
    it(`meets the Pod Security "restricted" profile on every pod of stack ${stack}`, async () => {
      const pods = podsOf(await runStack(stack));
      // Both services and the gateway.
      assert.equal(pods.length, 3);
      for (const [name, pod] of pods) assert.deepEqual(restrictedViolations(pod), [], name);
    });
  }

  it("catches a pod that breaks the restricted profile, so the check above can fail", () => {
    // Output types demand fields a broken fixture does not need (hostPath.type, drop).
    const pod = {
      hostNetwork: true,
      volumes: [{ name: "h", hostPath: { path: "/" } }],
      containers: [
        {
          name: "c",
          image: "x:1",
          securityContext: { privileged: true, capabilities: { add: ["NET_ADMIN"] } },
        },
      ],
    } as unknown as PodSpec;
    assert.equal(restrictedViolations(pod).length, 9);
  });

  it("runs Envoy as a native sidecar by default and as a plain container in container mode", async () => {
    const config = stackConfig("dev");
    const envoyConfig = JSON.parse(config["bookapi-mesh:envoy"]) as Json;
    const run = await runProgram({
      ...config,
      "bookapi-mesh:envoy": JSON.stringify({ ...envoyConfig, sidecarMode: "container" }),
    });
    for (const [name, pod] of podsOf(run)) {
      // The gateway's pod is Envoy alone, in either mode.
      assert.deepEqual(
        pod.containers.map((c) => c.name),
        name.startsWith("mesh-gateway") ? ["envoy"] : ["app", "envoy"],
        name,
      );
      assert.equal(pod.initContainers, undefined);
      assert.equal(pod.containers.find((c) => c.name === "envoy")?.restartPolicy, undefined);
    }
    for (const [name, pod] of podsOf(await runStack("dev"))) {
      if (name.startsWith("mesh-gateway")) {
        assert.equal(pod.initContainers, undefined, name);
        continue;
      }
      assert.equal(pod.initContainers?.[0].name, "envoy", name);
      assert.equal(pod.initContainers?.[0].restartPolicy, "Always", name);
    }
  });

  it("labels a namespace the program creates with the configured Pod Security level", async () => {
    const run = await runProgram({
      ...stackConfig("prod"),
      "bookapi-mesh:podSecurity": "restricted",
    });
    const labels = (
      findObject(run, "Namespace", "bookapi").inputs.metadata as { labels: Record<string, string> }
    ).labels;
    assert.equal(labels["pod-security.kubernetes.io/enforce"], "restricted");
    assert.equal(labels["pod-security.kubernetes.io/warn"], "restricted");
  });

  it("refuses podSecurity for a namespace it does not manage, naming the key", () => {
    assert.throws(
      () => loadMeshConfig({ ...stackConfig("dev"), "bookapi-mesh:podSecurity": "restricted" }),
      (err: unknown) =>
        err instanceof MeshConfigError &&
        err.problems.some((p) => p.startsWith("bookapi-mesh:podSecurity:")),
    );
  });
});

describe("direct ports and scraping in the shipped stacks", () => {
  it("lets only labelled debugging pods reach the app port that dev publishes", async () => {
    const run = await runStack("dev");
    const spec = findObject(run, "NetworkPolicy", "bookapi-mesh").inputs.spec as {
      ingress: Array<{ from: Json[]; ports: Array<{ port: number }> }>;
    };
    const direct = spec.ingress.filter((rule) => rule.ports.some((p) => p.port === 5288));
    assert.deepEqual(
      direct.map((rule) => rule.from),
      [[{ podSelector: { matchLabels: { "bookapi-mesh/direct-access": "true" } } }]],
    );
  });

  it("advertises Prometheus scraping on every mesh pod, the gateway's too, only where discovery is by annotations (dev), not where a PodMonitor finds them (prod)", async () => {
    const annotationsOf = (run: ProgramRun, workload: string) =>
      (
        findObject(run, "Deployment", workload).inputs.spec as {
          template: { metadata: { annotations?: Record<string, string> } };
        }
      ).template.metadata.annotations ?? {};
    for (const workload of ["bookapi", "bookapi-mcp-server", "mesh-gateway"]) {
      assert.equal(
        annotationsOf(await runStack("prod"), workload)["prometheus.io/scrape"],
        undefined,
      );
      const dev = annotationsOf(await runStack("dev"), workload);
      assert.equal(dev["prometheus.io/scrape"], "true", workload);
      assert.equal(dev["prometheus.io/port"], "15090");
      assert.equal(dev["prometheus.io/path"], "/stats/prometheus");
    }
  });
});
