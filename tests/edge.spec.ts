/**
 * The mesh's edge, first part: clients outside the mesh with certificates from the mesh CA, and
 * services published outside the cluster (`expose`). Real handshakes with the certificates the
 * program issued, against node:tls configured from the generated Envoy config.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { loadMeshConfig, MeshConfigError } from "../components/config";
import { buildBootstrap } from "../components/envoy";
import { sidecarSpec, trafficWarnings } from "../components/mesh";
import {
  call,
  CallerOptions,
  EmulatedInbound,
  evaluateHttpRbac,
  identityOf,
  inboundListener,
  sidecar,
  upstreamCaller,
  upstreamCluster,
} from "./harness/mtls";
import {
  Cluster,
  connectionAllowed,
  Pod,
  registeredPolicies,
} from "./harness/network-policy-model";
import {
  KubeObject,
  loadKubernetesSchemas,
  validateKubernetesObject,
} from "./harness/kubernetes-schema";
import {
  findObject,
  kubernetesObjects,
  ProgramRun,
  runProgram,
  stackConfig,
} from "./harness/program";

type Json = Record<string, unknown>;

/** The dev stack with a client `cli` that may GET bookapi, and bookapi published outside. */
function edgeConfig(extra: Json = {}): Record<string, string> {
  const config = stackConfig("dev");
  const services = JSON.parse(config["bookapi-mesh:services"]) as Json[];
  services[0] = {
    ...services[0],
    expose: { type: "LoadBalancer", sourceRanges: ["203.0.113.0/24"] },
  };
  return {
    ...config,
    "bookapi-mesh:services": JSON.stringify(services),
    "bookapi-mesh:clients": JSON.stringify([
      {
        name: "cli",
        calls: [{ service: "bookapi", methods: ["GET"] }],
        secret: { namespace: "tools" },
      },
    ]),
    ...extra,
  };
}

describe("clients outside the mesh, with mesh certificates", () => {
  let run: ProgramRun;
  let certificate: string;
  let key: string;
  before(async () => {
    run = await runProgram(edgeConfig());
    certificate = (run.outputs.clients as Record<string, { certificate: string }>).cli.certificate;
    key = (run.outputs.clientKeys as Record<string, string>).cli;
  });

  it("issues each client a certificate for client authentication only, named by a SPIFFE ID no service can have", () => {
    const cert = new X509Certificate(certificate);
    assert.ok(cert.verify(new X509Certificate(String(run.outputs.caCertificate)).publicKey));
    const id = identityOf(cert);
    assert.deepEqual([id.dns, id.uri], [[], ["spiffe://cluster.local/ns/default/client/cli"]]);
    // 1.3.6.1.5.5.7.3.2 is clientAuth; no serverAuth.
    assert.deepEqual(cert.keyUsage, ["1.3.6.1.5.5.7.3.2"]);
    assert.deepEqual(run.secretOutputs, ["clientKeys"]);
    assert.match(key, /PRIVATE KEY/);
  });

  it("writes the client's certificate, key and the CA into a Secret in the namespace named, the key as a secret input", () => {
    const secret = findObject(run, "Secret", "cli-mesh-client");
    assert.equal((secret.inputs.metadata as Json).namespace, "tools");
    assert.equal(secret.inputs.type, "kubernetes.io/tls");
    assert.deepEqual(Object.keys(secret.inputs.stringData as Json).sort(), [
      "ca.crt",
      "tls.crt",
      "tls.key",
    ]);
    assert.ok(
      secret.secretInputs.includes("stringData.tls.key") ||
        secret.secretInputs.includes("stringData"),
      secret.secretInputs.join(", "),
    );
  });

  it("lets the client do on its callee only what its calls entry allows (Envoy's RBAC, emulated), and nothing on other services", () => {
    const model = loadMeshConfig(edgeConfig());
    const httpRbacOf = (service: string) => {
      const listener = buildBootstrap(
        sidecarSpec(
          model,
          model.services.find((s) => s.name === service)!,
        ),
      ).static_resources.listeners[0];
      const hcm = listener.filter_chains[0].filters.find(
        (f) => f.name === "envoy.filters.network.http_connection_manager",
      )?.typed_config as { http_filters: Array<{ name: string; typed_config: unknown }> };
      return (
        hcm.http_filters.find((f) => f.name === "envoy.filters.http.rbac")?.typed_config as {
          rules: unknown;
        }
      ).rules;
    };
    const cli = {
      dns: [],
      uri: ["spiffe://cluster.local/ns/default/client/cli"],
      email: [],
      ip: [],
      subject: "",
    };
    const decide = (service: string, method: string) =>
      evaluateHttpRbac(httpRbacOf(service), cli, { port: 15001, http: { method, path: "/books" } })
        .allowed;
    assert.equal(decide("bookapi", "GET"), true);
    assert.equal(decide("bookapi", "POST"), false, "only GET is in its calls entry");
    assert.equal(decide("bookapi-mcp-server", "GET"), false);
  });

  it("admits a client given a Secret from that Secret's namespace, on the mTLS port of the services it calls only", () => {
    const fromTools = (service: string) =>
      (
        findObject(run, "NetworkPolicy", `${service}-mesh`).inputs.spec as {
          ingress: Array<{ from: Json[]; ports: Json[] }>;
        }
      ).ingress.filter((r) =>
        r.from.some((p) => JSON.stringify(p).includes('"kubernetes.io/metadata.name":"tools"')),
      );
    assert.deepEqual(fromTools("bookapi"), [
      {
        from: [{ namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "tools" } } }],
        ports: [{ protocol: "TCP", port: 15001 }],
      },
    ]);
    assert.deepEqual(fromTools("bookapi-mcp-server"), []);
  });

  describe("real handshakes", () => {
    const servers: EmulatedInbound[] = [];
    afterEach(async () => {
      await Promise.all(servers.splice(0).map((s) => s.close()));
    });
    /** The client dialling a service: the mesh CA, the service's FQDN as SNI and SAN. */
    function asClient(service: "bookapi" | "bookapi-mcp-server"): CallerOptions {
      const toBookapi = upstreamCaller(
        upstreamCluster(sidecar(run, "bookapi-mcp-server"), "upstream_bookapi"),
      );
      const servername = toBookapi.servername.replace(/^bookapi\./, `${service}.`);
      return {
        ...toBookapi,
        servername,
        sanMatchers: [
          { sanType: "DNS", match: { kind: "exact", value: servername, ignoreCase: false } },
        ],
        cert: certificate,
        key,
      };
    }

    it("accepts the client on the service it calls", async () => {
      const server = await EmulatedInbound.start({
        listener: inboundListener(sidecar(run, "bookapi")),
      });
      servers.push(server);
      const outcome = await call(server.port, asClient("bookapi"));
      const verdict = await server.nextVerdict();
      assert.ok(verdict.accepted, JSON.stringify(verdict));
      assert.equal(outcome.error, undefined);
    });

    it("refuses the client on a service it does not call", async () => {
      const server = await EmulatedInbound.start({
        listener: inboundListener(sidecar(run, "bookapi-mcp-server")),
      });
      servers.push(server);
      await call(server.port, asClient("bookapi-mcp-server"));
      const verdict = await server.nextVerdict();
      assert.equal(verdict.accepted, false, JSON.stringify(verdict));
      // The chain is the mesh's: it is the SAN allow-list that turns the client away.
      assert.equal(verdict.layer, "san", JSON.stringify(verdict));
    });
  });
});

describe("services published outside the cluster (expose)", () => {
  let run: ProgramRun;
  before(async () => {
    run = await runProgram(edgeConfig());
  });

  it("publishes the mTLS port on a Service of its own that keeps client addresses, leaving the in-mesh Service as it was", () => {
    const ext = findObject(run, "Service", "bookapi-ext").inputs.spec as Json;
    assert.equal(ext.type, "LoadBalancer");
    assert.equal(ext.externalTrafficPolicy, "Local");
    assert.deepEqual(ext.loadBalancerSourceRanges, ["203.0.113.0/24"]);
    assert.deepEqual(ext.ports, [
      { name: "mtls", port: 15001, targetPort: 15001, protocol: "TCP" },
    ]);
    assert.equal((findObject(run, "Service", "bookapi").inputs.spec as Json).type, "ClusterIP");
  });

  it("produces objects that pass the Kubernetes schema", async () => {
    await loadKubernetesSchemas();
    const objects = kubernetesObjects(run).map(
      (r) => JSON.parse(JSON.stringify(r.inputs)) as KubeObject,
    );
    assert.deepEqual(objects.flatMap(validateKubernetesObject), []);
  });

  it("lets the source ranges reach the mTLS port only, through the NetworkPolicy", () => {
    const policy = findObject(run, "NetworkPolicy", "bookapi-mesh").inputs.spec as {
      ingress: Array<{ from: Json[]; ports: Json[] }>;
    };
    const external = policy.ingress.filter((r) => r.from.some((p) => "ipBlock" in p));
    assert.deepEqual(external, [
      {
        from: [{ ipBlock: { cidr: "203.0.113.0/24" } }],
        ports: [{ protocol: "TCP", port: 15001 }],
      },
    ]);
  });

  it("warns at preview when a service is exposed to every address", async () => {
    const config = edgeConfig();
    const services = JSON.parse(config["bookapi-mesh:services"]) as Json[];
    services[0] = { ...services[0], expose: { type: "NodePort" } };
    const { warnings } = await runProgram({
      ...config,
      "bookapi-mesh:services": JSON.stringify(services),
    });
    assert.ok(
      warnings.some((w) =>
        w.includes('"bookapi": expose admits every address (0.0.0.0/0, ::/0: no sourceRanges)'),
      ),
      warnings.join("\n"),
    );
  });

  const invalid: Array<[string, Record<string, string>, string]> = [
    [
      "a client calling an unknown service",
      edgeConfig({
        "bookapi-mesh:clients": JSON.stringify([{ name: "cli", calls: ["bookap"] }]),
      }),
      'bookapi-mesh:clients[0].calls[0]: unknown service "bookap"',
    ],
    [
      "a client that calls nothing",
      edgeConfig({ "bookapi-mesh:clients": JSON.stringify([{ name: "cli", calls: [] }]) }),
      "bookapi-mesh:clients[0].calls: must list at least one service",
    ],
    [
      "two clients with one name",
      edgeConfig({
        "bookapi-mesh:clients": JSON.stringify([
          { name: "cli", calls: ["bookapi"] },
          { name: "cli", calls: ["bookapi"] },
        ]),
      }),
      'bookapi-mesh:clients[1].name: duplicate client name "cli"',
    ],
    [
      "an empty source range list, which would admit everyone",
      (() => {
        const c = edgeConfig();
        const services = JSON.parse(c["bookapi-mesh:services"]) as Json[];
        services[0] = { ...services[0], expose: { type: "LoadBalancer", sourceRanges: [] } };
        return { ...c, "bookapi-mesh:services": JSON.stringify(services) };
      })(),
      "bookapi-mesh:services[0].expose.sourceRanges: must list at least one CIDR",
    ],
    [
      "a client Secret named like a service's own TLS Secret",
      edgeConfig({
        "bookapi-mesh:clients": JSON.stringify([
          {
            name: "cli",
            calls: ["bookapi"],
            secret: { namespace: "default", name: "bookapi-tls" },
          },
        ]),
      }),
      'bookapi-mesh:clients[0].secret.name: "bookapi-tls" is a Secret the mesh writes in default',
    ],
  ];
  for (const [what, config, message] of invalid) {
    it(`refuses ${what}, naming the key`, () => {
      assert.throws(
        () => loadMeshConfig(config),
        (err: unknown) =>
          err instanceof MeshConfigError && err.problems.some((p) => p.startsWith(message)),
      );
    });
  }
});

describe("exposed services in preview warnings and outputs", () => {
  /** The edge config with bookapi exposed as given, and a traffic policy. */
  function exposed(expose: Json, traffic: Json = {}, replicas = 1) {
    const c = edgeConfig();
    const services = JSON.parse(c["bookapi-mesh:services"]) as Json[];
    services[0] = { ...services[0], expose, traffic, replicas };
    return { ...c, "bookapi-mesh:services": JSON.stringify(services) };
  }

  it("warns about a node port outside Kubernetes' default range instead of refusing it", () => {
    const warnings = trafficWarnings(loadMeshConfig(exposed({ type: "NodePort", port: 8443 })));
    assert.ok(
      warnings.some((w) => w.includes("expose.port 8443 is outside")),
      warnings.join("\n"),
    );
  });

  it("warns that a client's session is not pinned through an exposed, replicated service", () => {
    const config = exposed(
      { type: "LoadBalancer", sourceRanges: ["203.0.113.0/24"] },
      { sessionAffinity: { header: "mcp-session-id" } },
      3,
    );
    const warnings = trafficWarnings(loadMeshConfig(config));
    assert.ok(
      warnings.some((w) => w.includes("balanced per connection by the load balancer")),
      warnings.join("\n"),
    );
    // A client caller is no sidecar that applies affinity: without the gateway the MCP server
    // still has none.
    const { "bookapi-mesh:gateway": gateway, ...withoutGateway } = edgeConfig({
      "bookapi-mesh:clients": JSON.stringify([{ name: "cli", calls: ["bookapi-mcp-server"] }]),
    });
    assert.ok(gateway);
    const mcpCalled = trafficWarnings(loadMeshConfig(withoutGateway));
    assert.ok(
      mcpCalled.some((w) => w.includes('"bookapi-mcp-server": traffic.sessionAffinity acts in')),
      mcpCalled.join("\n"),
    );
  });

  it("reports a NodePort's node port, and validates as a Kubernetes object", async () => {
    const run = await runProgram(exposed({ type: "NodePort", port: 31000 }));
    assert.deepEqual(run.outputs.exposed, { bookapi: "<any node running a pod>:31000" });
    const ext = findObject(run, "Service", "bookapi-ext");
    assert.deepEqual((ext.inputs.spec as { ports: Json[] }).ports, [
      { name: "mtls", port: 15001, nodePort: 31000, targetPort: 15001, protocol: "TCP" },
    ]);
    await loadKubernetesSchemas();
    assert.deepEqual(
      validateKubernetesObject(JSON.parse(JSON.stringify(ext.inputs)) as KubeObject),
      [],
    );
  });
});

describe("who reaches an exposed service (a model of NetworkPolicy semantics over the policies the program registers)", () => {
  let cluster: Cluster;
  const pods: Record<string, Pod> = {};
  before(async () => {
    const run = await runProgram(edgeConfig());
    const policies = registeredPolicies(run);
    const ns = (name: string) => ({ "kubernetes.io/metadata.name": name });
    cluster = { namespaces: { default: ns("default"), tools: ns("tools") }, policies };
    for (const [i, service] of ["bookapi", "bookapi-mcp-server"].entries()) {
      const template = (
        findObject(run, "Deployment", service).inputs.spec as {
          template: { metadata: { labels: Record<string, string> } };
        }
      ).template;
      pods[service] = {
        name: service,
        namespace: "default",
        labels: template.metadata.labels,
        ip: `10.0.0.${i + 10}`,
      };
    }
    pods.tool = { name: "tool", namespace: "tools", labels: { app: "cli" }, ip: "10.0.1.5" };
    pods.allowed = {
      name: "allowed",
      namespace: "",
      labels: {},
      ip: "203.0.113.7",
      external: true,
    };
    pods.other = { name: "other", namespace: "", labels: {}, ip: "198.51.100.7", external: true };
  });

  it("lets addresses in sourceRanges reach the exposed service's mTLS port and nothing else", () => {
    const { allowed, other, bookapi } = pods;
    assert.equal(connectionAllowed(cluster, allowed, bookapi, 15001), true);
    assert.equal(connectionAllowed(cluster, other, bookapi, 15001), false);
    for (const port of [5288, 9901, 15006, 15021, 15090])
      assert.equal(connectionAllowed(cluster, allowed, bookapi, port), false, `port ${port}`);
    assert.equal(connectionAllowed(cluster, allowed, pods["bookapi-mcp-server"], 15001), false);
  });

  it("lets the in-cluster client's namespace reach only the services the client calls", () => {
    assert.equal(connectionAllowed(cluster, pods.tool, pods.bookapi, 15001), true);
    assert.equal(connectionAllowed(cluster, pods.tool, pods.bookapi, 5288), false);
    assert.equal(connectionAllowed(cluster, pods.tool, pods["bookapi-mcp-server"], 15001), false);
  });
});
