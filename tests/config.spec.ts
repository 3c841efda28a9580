import assert from "node:assert/strict";
import { buildEnvoyFiles } from "../components/envoy";
import { sidecarSpec } from "../components/mesh";
import {
  isPinnedImage,
  loadMeshConfig,
  MeshConfigError,
  parseMeshConfig,
} from "../components/config";
import { builtService, runProgramOutcome } from "./harness/program";

type Flat = Record<string, string>;

const BASE_SERVICES = [
  {
    name: "bookapi",
    image: "registry.example.com/bookapi:1.0.0",
    port: 5288,
    exposeDirectPort: true,
  },
  {
    name: "bookapi-mcp-server",
    image: "registry.example.com/bookapi-mcp-server:1.0.0",
    port: 5289,
    calls: ["bookapi"],
  },
];

function flat(overrides: Record<string, unknown> = {}): Flat {
  const cfg: Record<string, unknown> = { services: BASE_SERVICES, ...overrides };
  const out: Flat = {};
  for (const [k, v] of Object.entries(cfg)) {
    if (v !== undefined) out[`bookapi-mesh:${k}`] = typeof v === "string" ? v : JSON.stringify(v);
  }
  return out;
}

function withService(index: number, patch: Record<string, unknown>): Flat {
  const services = BASE_SERVICES.map((s, i) => (i === index ? { ...s, ...patch } : s));
  return flat({ services });
}

function without<T extends Record<string, unknown>>(obj: T, key: keyof T): Record<string, unknown> {
  const copy: Record<string, unknown> = { ...obj };
  delete copy[key as string];
  return copy;
}

function configError(config: Flat): MeshConfigError {
  try {
    loadMeshConfig(config);
  } catch (err) {
    if (err instanceof MeshConfigError) return err;
    throw err;
  }
  assert.fail("expected the config to be rejected");
}

describe("stack config", () => {
  it("fills every default of the design's contract when only services are given", () => {
    const model = loadMeshConfig(flat());
    assert.equal(model.namespace, "default");
    assert.equal(model.clusterDomain, "cluster.local");
    assert.equal(model.createNamespace, false);
    assert.equal(model.envoy.image, "envoyproxy/envoy:v1.36.2");
    assert.equal(model.envoy.logLevel, "info");
    assert.deepEqual(model.envoy.ports, {
      inbound: 15001,
      outbound: 15006,
      admin: 9901,
      health: 15021,
      metrics: 15090,
    });
    assert.deepEqual(model.envoy.resources, {
      requests: { cpu: "50m", memory: "64Mi" },
      limits: { cpu: "500m", memory: "256Mi" },
    });
    assert.deepEqual(model.certificates.key, { algorithm: "ECDSA", ecdsaCurve: "P256" });
    assert.deepEqual(
      loadMeshConfig(flat({ certificates: { algorithm: "RSA" } })).certificates.key,
      { algorithm: "RSA", rsaBits: 2048 },
    );
    assert.equal(model.certificates.caValidityHours, 87600);
    assert.equal(model.certificates.validityHours, 2160);
    assert.equal(model.certificates.earlyRenewalHours, 360);
    const api = builtService(model, "bookapi");
    assert.equal(api.replicas, 1);
    assert.equal(api?.exposeDirectPort, true);
    assert.equal(
      model.services.find((s) => s.name === "bookapi-mcp-server")?.exposeDirectPort,
      false,
    );
  });

  it("derives each service's callers from the other services' calls", () => {
    const model = loadMeshConfig(flat());
    const byName = Object.fromEntries(model.services.map((s) => [s.name, s]));
    const names = (peers: Array<{ name: string }>) => peers.map((p) => p.name);
    assert.deepEqual(names(byName["bookapi"].callers), ["bookapi-mcp-server"]);
    assert.deepEqual(names(byName["bookapi"].upstreams), []);
    assert.deepEqual(names(byName["bookapi-mcp-server"].callers), []);
    assert.deepEqual(names(byName["bookapi-mcp-server"].upstreams), ["bookapi"]);
    // Each peer carries what the sidecars need: its identity, and for a callee its pods and policy.
    assert.deepEqual(byName["bookapi"].callers[0], {
      kind: "service",
      name: "bookapi-mcp-server",
      fqdn: "bookapi-mcp-server.default.svc.cluster.local",
      spiffeId: "spiffe://cluster.local/ns/default/sa/bookapi-mcp-server",
      methods: [],
      paths: [],
    });
    assert.equal(
      byName["bookapi-mcp-server"].upstreams[0].podsFqdn,
      "bookapi-pods.default.svc.cluster.local",
    );
    assert.equal(byName["bookapi-mcp-server"].upstreams[0].traffic, byName["bookapi"].traffic);
  });

  it("gives each service the four DNS names of its namespace and cluster domain", () => {
    const model = loadMeshConfig(flat({ namespace: "books", clusterDomain: "corp.internal" }));
    const api = model.services.find((s) => s.name === "bookapi");
    assert.deepEqual(api?.dnsNames, [
      "bookapi",
      "bookapi.books",
      "bookapi.books.svc",
      "bookapi.books.svc.corp.internal",
    ]);
    assert.equal(api?.fqdn, "bookapi.books.svc.corp.internal");
  });

  it("does not depend on the order services and calls are listed in, down to the Envoy files", () => {
    const services = [
      ...BASE_SERVICES,
      {
        name: "reviews",
        image: "r.example.com/reviews:2.0",
        port: 7000,
        calls: ["bookapi-mcp-server", "bookapi"],
      },
    ];
    const forward = loadMeshConfig(flat({ services }));
    const reversed = loadMeshConfig(
      flat({
        services: [...services]
          .reverse()
          .map((s) => (s.calls ? { ...s, calls: [...s.calls].reverse() } : s)),
      }),
    );
    assert.deepEqual(reversed, forward);
    for (const svc of forward.services)
      assert.deepEqual(
        buildEnvoyFiles(
          sidecarSpec(
            reversed,
            reversed.services.find((s) => s.name === svc.name)!,
          ),
        ),
        buildEnvoyFiles(sidecarSpec(forward, svc)),
      );
  });

  it("creates the namespace unless it is default or createNamespace is false", () => {
    assert.equal(loadMeshConfig(flat({ namespace: "books" })).createNamespace, true);
    assert.equal(
      loadMeshConfig(flat({ namespace: "books", createNamespace: "false" })).createNamespace,
      false,
    );
    assert.equal(
      loadMeshConfig(flat({ namespace: "default", createNamespace: "true" })).createNamespace,
      false,
    );
  });

  it("ignores config keys of other namespaces such as the Kubernetes provider's", () => {
    const model = loadMeshConfig({ ...flat(), "kubernetes:context": "kind-mesh" });
    assert.equal(model.services.length, 2);
  });

  it("reports every problem at once, not only the first", () => {
    const err = configError(withService(0, { port: 0, replicas: 0 }));
    assert.equal(err.problems.length, 2);
  });

  it("names each repeat after its first occurrence, in config order", () => {
    const img = (name: string) => `registry.example.com/${name}:1.0.0`;
    const egress = (host: string) => ({ name: "e", host, port: 443, protocol: "https" });
    const err = configError(
      flat({
        services: [
          { name: "a", image: img("a"), port: 8080, calls: ["b", "b", "a"] },
          {
            name: "b",
            image: img("b"),
            port: 8080,
            calls: ["zz"],
            egress: [egress("x.example.com"), egress("y.example.com")],
          },
          { name: "a", image: img("a"), port: 8080 },
        ],
        clients: [
          { name: "cli", calls: ["a", "a"], secret: { namespace: "default", name: "b-tls" } },
          { name: "cli", calls: ["b"] },
        ],
      }),
    );
    assert.deepEqual(err.problems, [
      'bookapi-mesh:clients[0].secret.name: "b-tls" is a Secret the mesh writes in default; pick another name (client "cli")',
      'bookapi-mesh:clients[0].calls[1]: "a" is listed twice (client "cli")',
      'bookapi-mesh:clients[1].name: duplicate client name "cli"',
      'bookapi-mesh:services[0].calls[1]: "b" is listed twice (service "a")',
      'bookapi-mesh:services[0].calls[2]: service "a" cannot call itself',
      'bookapi-mesh:services[1].egress[1].name: "e" is listed twice (service "b")',
      'bookapi-mesh:services[1].calls[0]: unknown service "zz" (known: a, b) (service "b")',
      'bookapi-mesh:services[2].name: duplicate service name "a"',
    ]);
  });

  it("lists a service's callers: services, then clients, each by name, then the gateway", () => {
    const img = (name: string) => `registry.example.com/${name}:1.0.0`;
    const model = loadMeshConfig(
      flat({
        services: [
          { name: "z", image: img("z"), port: 8080, calls: [{ service: "t", methods: ["GET"] }] },
          { name: "t", image: img("t"), port: 8080 },
          { name: "a", image: img("a"), port: 8080, calls: ["t"] },
        ],
        clients: [
          { name: "k", calls: ["t"] },
          { name: "b", calls: [{ service: "t", paths: ["/x"] }] },
        ],
        gateway: {
          name: "gw",
          tls: { selfSigned: { dnsNames: ["api.example.com"] } },
          routes: [
            { pathPrefix: "/api", service: "t", public: true },
            { pathPrefix: "/", service: "a", public: true },
          ],
        },
      }),
    );
    const callers = Object.fromEntries(
      model.services.map((s) => [
        s.name,
        s.callers.map(({ kind, name, methods, paths }) => [kind, name, methods, paths]),
      ]),
    );
    assert.deepEqual(callers, {
      a: [["gateway", "gw", [], []]],
      t: [
        ["service", "a", [], []],
        ["service", "z", ["GET"], []],
        ["client", "b", [], ["/x"]],
        ["client", "k", [], []],
        ["gateway", "gw", [], ["/api", "/api/*"]],
      ],
      z: [],
    });
  });

  it("accepts images pinned by tag or digest and rejects floating ones", () => {
    assert.equal(isPinnedImage("envoyproxy/envoy:v1.36.2"), true);
    assert.equal(isPinnedImage("registry:5000/team/app:1.0"), true);
    assert.equal(isPinnedImage(`app@sha256:${"a".repeat(64)}`), true);
    assert.equal(isPinnedImage("registry:5000/team/app"), false);
    assert.equal(isPinnedImage("app:latest"), false);
    assert.equal(isPinnedImage("app"), false);
  });

  it("parses a structured model that a third service joins by config alone", () => {
    const services = [
      ...BASE_SERVICES,
      {
        name: "reviews",
        image: "r.example.com/reviews:2.0",
        port: 7000,
        calls: ["bookapi", "bookapi-mcp-server"],
      },
    ];
    const model = parseMeshConfig({ services });
    const byName = Object.fromEntries(model.services.map((s) => [s.name, s]));
    const names = (peers: Array<{ name: string }>) => peers.map((p) => p.name);
    assert.deepEqual(names(byName["bookapi"].callers), ["bookapi-mcp-server", "reviews"]);
    assert.deepEqual(names(byName["bookapi-mcp-server"].callers), ["reviews"]);
  });
});

/** Every kind of bad config a user can write: [what, config, the key named, a message fragment]. */
const BAD_CONFIGS: Array<[string, Flat, string, string]> = [
  [
    "no services at all",
    without(flat(), "bookapi-mesh:services") as Flat,
    "bookapi-mesh:services",
    "is required",
  ],
  ["an empty service list", flat({ services: [] }), "bookapi-mesh:services", "at least one"],
  [
    "services given as a string",
    { "bookapi-mesh:services": "bookapi" },
    "bookapi-mesh:services",
    "structured value",
  ],
  [
    "a call to an unknown service",
    withService(1, { calls: ["bookap"] }),
    "bookapi-mesh:services[1].calls[0]",
    'unknown service "bookap"',
  ],
  [
    "a service calling itself",
    withService(0, { calls: ["bookapi"] }),
    "bookapi-mesh:services[0].calls[0]",
    "cannot call itself",
  ],
  [
    "the same callee twice",
    withService(1, { calls: ["bookapi", "bookapi"] }),
    "bookapi-mesh:services[1].calls[1]",
    "listed twice",
  ],
  [
    "calls not a list",
    withService(1, { calls: "bookapi" }),
    "bookapi-mesh:services[1].calls",
    "list of service names",
  ],
  [
    "duplicate service names",
    withService(1, { name: "bookapi", calls: [] }),
    "bookapi-mesh:services[1].name",
    "duplicate",
  ],
  [
    "an uppercase service name",
    withService(0, { name: "BookApi" }),
    "bookapi-mesh:services[0].name",
    "DNS label",
  ],
  [
    "a service name starting with a digit",
    withService(0, { name: "1bookapi" }),
    "bookapi-mesh:services[0].name",
    "DNS label",
  ],
  [
    "a service name with a dot",
    withService(0, { name: "book.api" }),
    "bookapi-mesh:services[0].name",
    "DNS label",
  ],
  [
    "a service name longer than 63 characters",
    withService(0, { name: "a".repeat(64) }),
    "bookapi-mesh:services[0].name",
    "63",
  ],
  [
    "a missing service name",
    withService(0, { name: undefined }),
    "bookapi-mesh:services[0].name",
    "required",
  ],
  ["port 0", withService(0, { port: 0 }), "bookapi-mesh:services[0].port", "between 1 and 65535"],
  [
    "port 70000",
    withService(0, { port: 70000 }),
    "bookapi-mesh:services[0].port",
    "between 1 and 65535",
  ],
  [
    "a fractional port",
    withService(0, { port: 5288.5 }),
    "bookapi-mesh:services[0].port",
    "whole number",
  ],
  [
    "a port given as text",
    withService(0, { port: "5288" }),
    "bookapi-mesh:services[0].port",
    "must be a number",
  ],
  [
    "an app port equal to Envoy's inbound port",
    withService(0, { port: 15001 }),
    "bookapi-mesh:services[0].port",
    "inbound",
  ],
  [
    "an app port equal to Envoy's admin port",
    withService(1, { port: 9901 }),
    "bookapi-mesh:services[1].port",
    "admin",
  ],
  [
    "two Envoy ports on one number",
    flat({ envoy: { ports: { health: 15090 } } }),
    "bookapi-mesh:envoy.ports.metrics",
    "already used",
  ],
  [
    "an Envoy port out of range",
    flat({ envoy: { ports: { inbound: 0 } } }),
    "bookapi-mesh:envoy.ports.inbound",
    "between 1 and 65535",
  ],
  [
    "replicas 0",
    withService(0, { replicas: 0 }),
    "bookapi-mesh:services[0].replicas",
    "at least 1",
  ],
  [
    "a missing image",
    withService(0, { image: undefined }),
    "bookapi-mesh:services[0].image",
    "required",
  ],
  ["an empty image", withService(0, { image: "" }), "bookapi-mesh:services[0].image", "required"],
  [
    "an image on latest",
    withService(0, { image: "bookapi:latest" }),
    "bookapi-mesh:services[0].image",
    "pinned",
  ],
  [
    "an untagged image",
    withService(0, { image: "registry.example.com/bookapi" }),
    "bookapi-mesh:services[0].image",
    "pinned",
  ],
  [
    "an unpinned Envoy image",
    flat({ envoy: { image: "envoyproxy/envoy" } }),
    "bookapi-mesh:envoy.image",
    "pinned",
  ],
  [
    "exposeDirectPort as text",
    withService(0, { exposeDirectPort: "yes" }),
    "bookapi-mesh:services[0].exposeDirectPort",
    "true or false",
  ],
  [
    "a typo in a service key",
    withService(0, { replica: 2 }),
    "bookapi-mesh:services[0]",
    'unknown key "replica"',
  ],
  [
    "a typo in a top-level key",
    flat({ namepsace: "books" }),
    "bookapi-mesh",
    'unknown key "namepsace"',
  ],
  [
    "a typo in an envoy key",
    flat({ envoy: { loglevel: "debug" } }),
    "bookapi-mesh:envoy",
    'unknown key "loglevel"',
  ],
  [
    "an unknown Envoy port role",
    flat({ envoy: { ports: { grpc: 15010 } } }),
    "bookapi-mesh:envoy.ports",
    'unknown key "grpc"',
  ],
  [
    "a bind address other than :: or 0.0.0.0",
    flat({ envoy: { bindAddress: "10.0.0.1" } }),
    "bookapi-mesh:envoy.bindAddress",
    '"::" or "0.0.0.0"',
  ],
  [
    "a key rotation period longer than the certificates' validity",
    flat({ certificates: { validityHours: 100, earlyRenewalHours: 10, keyRotationHours: 200 } }),
    "bookapi-mesh:certificates.keyRotationHours",
    "must not exceed validityHours (100)",
  ],
  [
    "a CA key for a generation nobody trusts",
    flat({ certificates: { ca: { trusted: ["1"], keys: { "2": { algorithm: "RSA" } } } } }),
    "bookapi-mesh:certificates.ca.keys.2",
    "is not a trusted generation (1)",
  ],
  [
    "a generation trusted twice",
    flat({ certificates: { ca: { trusted: ["1", "1"] } } }),
    "bookapi-mesh:certificates.ca.trusted[1]",
    'lists "1" twice',
  ],
  [
    "a bad log level",
    flat({ envoy: { logLevel: "verbose" } }),
    "bookapi-mesh:envoy.logLevel",
    "trace",
  ],
  [
    "a bad resource quantity",
    flat({ envoy: { resources: { limits: { cpu: "lots", memory: "256Mi" } } } }),
    "bookapi-mesh:envoy.resources.limits.cpu",
    "quantity",
  ],
  [
    "a bad algorithm",
    flat({ certificates: { algorithm: "DSA" } }),
    "bookapi-mesh:certificates.algorithm",
    "ECDSA or RSA",
  ],
  [
    "a bad ECDSA curve",
    flat({ certificates: { ecdsaCurve: "P521" } }),
    "bookapi-mesh:certificates.ecdsaCurve",
    "P256 or P384",
  ],
  [
    "a bad RSA size",
    flat({ certificates: { algorithm: "RSA", rsaBits: 1024 } }),
    "bookapi-mesh:certificates.rsaBits",
    "2048, 3072 or 4096",
  ],
  [
    "early renewal not before expiry",
    flat({ certificates: { validityHours: 100, earlyRenewalHours: 100 } }),
    "bookapi-mesh:certificates.earlyRenewalHours",
    "less than validityHours",
  ],
  [
    "a certificate outliving its CA",
    flat({ certificates: { caValidityHours: 1000, validityHours: 2000 } }),
    "bookapi-mesh:certificates.validityHours",
    "cannot outlive its CA",
  ],
  [
    "a negative validity",
    flat({ certificates: { validityHours: -1 } }),
    "bookapi-mesh:certificates.validityHours",
    "positive",
  ],
  [
    "a namespace that is not a DNS label",
    flat({ namespace: "Books_NS" }),
    "bookapi-mesh:namespace",
    "DNS-1123",
  ],
  [
    "a bad cluster domain",
    flat({ clusterDomain: "cluster..local" }),
    "bookapi-mesh:clusterDomain",
    "DNS domain",
  ],
  [
    "createNamespace as text",
    flat({ namespace: "books", createNamespace: "maybe" }),
    "bookapi-mesh:createNamespace",
    "true or false",
  ],
  [
    "an unknown service in an L7 call",
    withService(1, { calls: [{ service: "bookap", methods: ["GET"] }] }),
    "bookapi-mesh:services[1].calls[0]",
    'unknown service "bookap"',
  ],
  [
    "an unknown HTTP method in a call",
    withService(1, { calls: [{ service: "bookapi", methods: ["FETCH"] }] }),
    "bookapi-mesh:services[1].calls[0].methods[0]",
    "must be one of",
  ],
  [
    "a call path not starting with a slash",
    withService(1, { calls: [{ service: "bookapi", paths: ["books"] }] }),
    "bookapi-mesh:services[1].calls[0].paths[0]",
    "must start with /",
  ],
  [
    "a typo in a call's keys",
    withService(1, { calls: [{ service: "bookapi", method: ["GET"] }] }),
    "bookapi-mesh:services[1].calls[0]",
    'unknown key "method"',
  ],
  [
    "a bad sidecar mode",
    flat({ envoy: { sidecarMode: "sidecar" } }),
    "bookapi-mesh:envoy.sidecarMode",
    "native or container",
  ],
  [
    "a drain time of zero",
    flat({ envoy: { drainSeconds: 0 } }),
    "bookapi-mesh:envoy.drainSeconds",
    "between 1 and 300",
  ],
  [
    "a scrape source without selectors",
    flat({ envoy: { scrapeFrom: [{}] } }),
    "bookapi-mesh:envoy.scrapeFrom[0]",
    "namespaceSelector and/or a podSelector",
  ],
  [
    "a direct-port source with a bad operator",
    withService(0, {
      directPortAllowedFrom: [
        { podSelector: { matchExpressions: [{ key: "a", operator: "Is" }] } },
      ],
    }),
    "bookapi-mesh:services[0].directPortAllowedFrom[0].podSelector.matchExpressions[0].operator",
    "In, NotIn",
  ],
  [
    "a trust domain with a slash",
    flat({ certificates: { trustDomain: "cluster.local/x" } }),
    "bookapi-mesh:certificates.trustDomain",
    "trust domain",
  ],
  [
    "a bad pod security level",
    flat({ namespace: "books", podSecurity: "strict" }),
    "bookapi-mesh:podSecurity",
    "restricted, baseline or privileged",
  ],
  [
    "pod security on the default namespace",
    flat({ podSecurity: "restricted" }),
    "bookapi-mesh:podSecurity",
    "only applies to a namespace the program creates",
  ],
  [
    "a root user id",
    withService(0, { runAsUser: 0 }),
    "bookapi-mesh:services[0].runAsUser",
    "root",
  ],
  // Kubernetes version and the choices it drives.
  [
    "an unquoted 1.30, which YAML reads as 1.3",
    flat({ kubernetesVersion: "1.3" }),
    "bookapi-mesh:kubernetesVersion",
    "YAML reads 1.30 as 1.3",
  ],
  [
    "a version that is not a minor version",
    flat({ kubernetesVersion: "v1.29.3" }),
    "bookapi-mesh:kubernetesVersion",
    'such as "1.29"',
  ],
  [
    "native sidecars on a cluster that lacks them",
    flat({ kubernetesVersion: "1.28", envoy: { sidecarMode: "native" } }),
    "bookapi-mesh:envoy.sidecarMode",
    "need Kubernetes 1.29",
  ],
  // Replicas and autoscaling.
  [
    "replicas beside autoscaling",
    withService(0, { replicas: 2, autoscaling: { maxReplicas: 4 } }),
    "bookapi-mesh:services[0].replicas",
    "autoscaling",
  ],
  [
    "an autoscaling maximum below its minimum",
    withService(0, { autoscaling: { minReplicas: 3, maxReplicas: 2 } }),
    "bookapi-mesh:services[0].autoscaling.maxReplicas",
    "at least minReplicas (3",
  ],
  [
    "a CPU target above 100%",
    withService(0, { autoscaling: { maxReplicas: 3, targetCPUUtilization: 150 } }),
    "bookapi-mesh:services[0].autoscaling.targetCPUUtilization",
    "between 1 and 100",
  ],
  // DNS peers.
  [
    "a DNS peer with both an ipBlock and a selector",
    flat({
      network: {
        dns: { peers: [{ ipBlock: { cidr: "169.254.20.10/32" }, podSelector: {} }] },
      },
    }),
    "bookapi-mesh:network.dns.peers[0]",
    "either an ipBlock",
  ],
  [
    "a malformed DNS CIDR",
    flat({ network: { dns: { peers: [{ ipBlock: { cidr: "169.254.20.10/33" } }] } } }),
    "bookapi-mesh:network.dns.peers[0].ipBlock.cidr",
    "CIDR",
  ],
  [
    "an empty DNS peer list",
    flat({ network: { dns: { peers: [] } } }),
    "bookapi-mesh:network.dns.peers",
    "at least one peer",
  ],
  // App settings, and names the mesh owns.
  [
    "an env var with both a value and a valueFrom",
    withService(0, {
      env: [{ name: "A", value: "1", valueFrom: { secretKeyRef: { name: "s", key: "k" } } }],
    }),
    "bookapi-mesh:services[0].env[0]",
    "exactly one of value, valueFrom",
  ],
  [
    "an env var number that is not quoted",
    withService(0, { env: [{ name: "PORT", value: 8080 }] }),
    "bookapi-mesh:services[0].env[0].value",
    "quote numbers",
  ],
  [
    "an env var the mesh sets",
    withService(1, { env: [{ name: "MESH_OUTBOUND_URL", value: "http://x" }] }),
    "bookapi-mesh:services[1].env[0].name",
    "set by the mesh",
  ],
  [
    "an envFrom with no source",
    withService(0, { envFrom: [{ prefix: "DB_" }] }),
    "bookapi-mesh:services[0].envFrom[0]",
    "exactly one of secretRef, configMapRef",
  ],
  [
    "an image pull secret that is not an object name",
    flat({ imagePullSecrets: ["Registry_Creds"] }),
    "bookapi-mesh:imagePullSecrets[0]",
    "DNS-1123",
  ],
  [
    "a probe with two handlers",
    withService(0, {
      probes: { liveness: { httpGet: { path: "/", port: 5288 }, tcpSocket: { port: 5288 } } },
    }),
    "bookapi-mesh:services[0].probes.liveness",
    "exactly one of httpGet, tcpSocket, exec",
  ],
  [
    "a probe on a port name the app does not declare",
    withService(0, { probes: { readiness: { httpGet: { path: "/ready", port: "web" } } } }),
    "bookapi-mesh:services[0].probes.readiness.httpGet.port",
    '"http"',
  ],
  [
    "a volume named like the sidecar's",
    withService(0, { volumes: [{ name: "envoy-certs", mountPath: "/data", emptyDir: {} }] }),
    "bookapi-mesh:services[0].volumes[0].name",
    "the mesh owns",
  ],
  [
    "a volume mounted on /tmp",
    withService(0, { volumes: [{ name: "scratch", mountPath: "/tmp", emptyDir: {} }] }),
    "bookapi-mesh:services[0].volumes[0].mountPath",
    "scratch volume",
  ],
  [
    "a volume with two sources",
    withService(0, {
      volumes: [{ name: "v", mountPath: "/v", emptyDir: {}, configMap: { name: "c" } }],
    }),
    "bookapi-mesh:services[0].volumes[0]",
    "exactly one of emptyDir, secret, configMap",
  ],
  [
    "two volumes mounted at one path",
    withService(0, {
      volumes: [
        { name: "a", mountPath: "/data", emptyDir: {} },
        { name: "b", mountPath: "/data", emptyDir: {} },
      ],
    }),
    "bookapi-mesh:services[0].volumes[1].mountPath",
    "mounted twice",
  ],
  [
    "a pod label the selectors use",
    withService(0, { podLabels: { "app.kubernetes.io/name": "other" } }),
    "bookapi-mesh:services[0].podLabels",
    "the mesh sets",
  ],
  [
    "a pod label value that is too long",
    withService(0, { podLabels: { team: "x".repeat(64) } }),
    "bookapi-mesh:services[0].podLabels.team",
    "63 characters",
  ],
  [
    "the default-container annotation",
    withService(0, { podAnnotations: { "kubectl.kubernetes.io/default-container": "envoy" } }),
    "bookapi-mesh:services[0].podAnnotations",
    "set by the mesh",
  ],
  [
    "a toleration with operator Exists and a value",
    withService(0, { tolerations: [{ key: "gpu", operator: "Exists", value: "yes" }] }),
    "bookapi-mesh:services[0].tolerations[0].value",
    "empty with operator Exists",
  ],
  [
    "a toleration without a key that is not Exists",
    withService(0, { tolerations: [{ operator: "Equal", value: "x" }] }),
    "bookapi-mesh:services[0].tolerations[0].operator",
    "must be Exists when the key is empty",
  ],
  [
    "tolerationSeconds on a NoSchedule toleration",
    withService(0, {
      tolerations: [
        { key: "gpu", operator: "Exists", effect: "NoSchedule", tolerationSeconds: 60 },
      ],
    }),
    "bookapi-mesh:services[0].tolerations[0].tolerationSeconds",
    "NoExecute",
  ],
  [
    "a liveness probe that needs two successes",
    withService(0, { probes: { liveness: { tcpSocket: { port: 5288 }, successThreshold: 2 } } }),
    "bookapi-mesh:services[0].probes.liveness.successThreshold",
    "must be 1",
  ],
  [
    "a nodeSelector key that is not a label key",
    withService(0, { nodeSelector: { "bad key!": "x" } }),
    "bookapi-mesh:services[0].nodeSelector.bad key!",
    "[prefix/]name",
  ],
  [
    "a volume mounted on /",
    withService(0, { volumes: [{ name: "root", mountPath: "/", emptyDir: {} }] }),
    "bookapi-mesh:services[0].volumes[0].mountPath",
    "must not be /",
  ],
  [
    "a volume item with an absolute path",
    withService(0, {
      volumes: [
        {
          name: "cfg",
          mountPath: "/etc/app",
          configMap: { name: "app", items: [{ key: "a", path: "/etc/passwd" }] },
        },
      ],
    }),
    "bookapi-mesh:services[0].volumes[0].configMap.items[0].path",
    "relative path",
  ],
  // Traffic policies.
  [
    "a malformed duration",
    withService(0, { traffic: { timeout: "5 seconds" } }),
    "bookapi-mesh:services[0].traffic.timeout",
    'such as "250ms"',
  ],
  [
    "a duration without a unit",
    withService(0, { traffic: { idleTimeout: "30" } }),
    "bookapi-mesh:services[0].traffic.idleTimeout",
    'such as "250ms"',
  ],
  [
    "a timeout on a streaming service",
    withService(0, { traffic: { streaming: true, timeout: "30s" } }),
    "bookapi-mesh:services[0].traffic.timeout",
    "streaming",
  ],
  [
    "a per-try timeout longer than the timeout",
    withService(0, { traffic: { timeout: "2s", retries: { perTryTimeout: "3s" } } }),
    "bookapi-mesh:services[0].traffic.retries.perTryTimeout",
    "not be longer than timeout (2s)",
  ],
  [
    "a per-try timeout longer than the default timeout",
    withService(0, { traffic: { retries: { perTryTimeout: "20s" } } }),
    "bookapi-mesh:services[0].traffic.retries.perTryTimeout",
    "15s, the default",
  ],
  [
    "a per-try timeout on a streaming service",
    withService(0, { traffic: { streaming: true, retries: { perTryTimeout: "3s" } } }),
    "bookapi-mesh:services[0].traffic.retries.perTryTimeout",
    "streaming",
  ],
  [
    "a backoff maximum below its base",
    withService(0, { traffic: { retries: { backoff: { base: "1s", max: "100ms" } } } }),
    "bookapi-mesh:services[0].traffic.retries.backoff.max",
    "backoff.base (1s)",
  ],
  [
    "a circuit breaker allowing no connection",
    withService(0, { traffic: { circuitBreaker: { maxConnections: 0 } } }),
    "bookapi-mesh:services[0].traffic.circuitBreaker.maxConnections",
    "at least 1",
  ],
  [
    "a fixed retry cap, which the retry budget replaced",
    withService(0, { traffic: { circuitBreaker: { maxRetries: 3 } } }),
    "bookapi-mesh:services[0].traffic.circuitBreaker.maxRetries",
    "replaced by retries.budget",
  ],
  [
    "a protocol other than http2 or http1",
    withService(0, { traffic: { protocol: "grpc" } }),
    "bookapi-mesh:services[0].traffic.protocol",
    "http2 or http1",
  ],
  [
    "a retry budget above 100 %",
    withService(0, { traffic: { retries: { budget: { percent: 150 } } } }),
    "bookapi-mesh:services[0].traffic.retries.budget.percent",
    "between 1 and 100",
  ],
  [
    "a rate limit of zero requests per second",
    withService(0, { traffic: { rateLimit: { requestsPerSecond: 0 } } }),
    "bookapi-mesh:services[0].traffic.rateLimit.requestsPerSecond",
    "at least 1",
  ],
  [
    "an outlier ejection percentage above 100",
    withService(0, { traffic: { outlierDetection: { maxEjectionPercent: 150 } } }),
    "bookapi-mesh:services[0].traffic.outlierDetection.maxEjectionPercent",
    "between 1 and 100",
  ],
  [
    "a session header that is not a header name",
    withService(0, { traffic: { sessionAffinity: { header: "mcp session" } } }),
    "bookapi-mesh:services[0].traffic.sessionAffinity.header",
    "header name",
  ],
  [
    "a retry condition Envoy does not know",
    withService(0, { traffic: { retries: { retryOn: "5xxx,connect-failure" } } }),
    "bookapi-mesh:services[0].traffic.retries.retryOn",
    "retry_on conditions",
  ],
  [
    "a rate-limit burst below the refill",
    withService(0, { traffic: { rateLimit: { requestsPerSecond: 10, burst: 5 } } }),
    "bookapi-mesh:services[0].traffic.rateLimit.burst",
    "at least requestsPerSecond",
  ],
  [
    "session affinity on an HTTP header",
    withService(0, { traffic: { sessionAffinity: { header: "Content-Type" } } }),
    "bookapi-mesh:services[0].traffic.sessionAffinity.header",
    "session header",
  ],
  [
    "a service named like another's headless Service",
    flat({
      services: [
        ...BASE_SERVICES,
        { name: "bookapi-pods", image: "registry.example.com/x:1.0.0", port: 7000 },
      ],
    }),
    "bookapi-mesh:services[2].name",
    'headless Service of "bookapi"',
  ],
  [
    "two http egress entries for one host",
    withService(0, {
      egress: [
        { name: "a", host: "api.example.com", port: 443, protocol: "https" },
        { name: "b", host: "api.example.com", port: 80, protocol: "http" },
      ],
    }),
    "bookapi-mesh:services[0].egress[1].host",
    "already an http/https egress entry",
  ],
  // Egress.
  [
    "an egress protocol Envoy is not set up for",
    withService(0, { egress: [{ name: "x", host: "x.example.com", port: 21, protocol: "ftp" }] }),
    "bookapi-mesh:services[0].egress[0].protocol",
    "http, https or tcp",
  ],
  [
    "an egress host that is a mesh service",
    withService(1, {
      egress: [
        { name: "api", host: "bookapi.default.svc.cluster.local", port: 15001, protocol: "tcp" },
      ],
    }),
    "bookapi-mesh:services[1].egress[0].host",
    "list it in calls instead",
  ],
  [
    "two egress entries with one name",
    withService(0, {
      egress: [
        { name: "db", host: "a.example.com", port: 5432, protocol: "tcp" },
        { name: "db", host: "b.example.com", port: 5432, protocol: "tcp" },
      ],
    }),
    "bookapi-mesh:services[0].egress[1].name",
    "listed twice",
  ],
  [
    "an egress listener port that is the app's",
    flat({
      envoy: { egressPortBase: 5288 },
      services: [
        {
          ...BASE_SERVICES[0],
          egress: [{ name: "db", host: "db.example.com", port: 5432, protocol: "tcp" }],
        },
        BASE_SERVICES[1],
      ],
    }),
    "bookapi-mesh:services[0].egress[0]",
    "is the app port",
  ],
  [
    "an egress CIDR that is not one",
    withService(0, {
      egress: [
        { name: "db", host: "db.example.com", port: 5432, protocol: "tcp", cidrs: ["10.0.0.1"] },
      ],
    }),
    "bookapi-mesh:services[0].egress[0].cidrs[0]",
    "CIDR",
  ],
  [
    "an egress host with upper-case letters",
    withService(0, {
      egress: [{ name: "api", host: "API.example.com", port: 443, protocol: "https" }],
    }),
    "bookapi-mesh:services[0].egress[0].host",
    "lowercase DNS name",
  ],
  [
    "an RSA key size with an ECDSA key",
    flat({ certificates: { algorithm: "ECDSA", rsaBits: 4096 } }),
    "bookapi-mesh:certificates.rsaBits",
    "only applies to algorithm RSA",
  ],
  [
    "an ECDSA curve with an RSA key",
    flat({ certificates: { algorithm: "RSA", ecdsaCurve: "P384" } }),
    "bookapi-mesh:certificates.ecdsaCurve",
    "only applies to algorithm ECDSA",
  ],
  [
    "a toleration with an unknown effect",
    withService(0, { tolerations: [{ key: "gpu", operator: "Exists", effect: "NoRun" }] }),
    "bookapi-mesh:services[0].tolerations[0].effect",
    "NoSchedule",
  ],
];

describe("bad stack config", () => {
  it("has a catalogue of at least 30 distinct bad configurations", () => {
    assert.ok(BAD_CONFIGS.length >= 30, `only ${BAD_CONFIGS.length}`);
    assert.equal(new Set(BAD_CONFIGS.map(([what]) => what)).size, BAD_CONFIGS.length);
  });

  for (const [what, config, key, fragment] of BAD_CONFIGS) {
    it(`rejects ${what}, naming ${key}, before any resource is registered`, async () => {
      const err = configError(config);
      const problem = err.problems.find((p) => p.startsWith(`${key}:`));
      assert.ok(problem, `no problem names ${key}: ${JSON.stringify(err.problems)}`);
      assert.ok(problem.includes(fragment), `"${problem}" does not mention "${fragment}"`);

      const { run, error } = await runProgramOutcome(config);
      assert.ok(
        error instanceof MeshConfigError,
        `program did not fail with MeshConfigError: ${String(error)}`,
      );
      assert.ok(error.message.includes(key));
      assert.equal(run.resources.length, 0);
    });
  }
});
