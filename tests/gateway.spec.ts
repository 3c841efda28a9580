/**
 * The ingress gateway: its stack config and what it says at preview, the Envoy files it gets
 * (against Envoy's protos and start-up checks), and how those files route: which upstream a
 * request reaches, with which path, timeouts and session affinity, which filters run in which
 * order, and what the gateway answers itself. Tokens are in gateway-jwt.spec.ts; TLS and the
 * network in gateway-edge.spec.ts.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as path from "node:path";
import { loadMeshConfig, MeshConfigError, MeshModel, parseMeshConfig } from "../components/config";
import {
  buildGatewayBootstrap,
  buildGatewayFiles,
  Bootstrap,
  EXTENSION_NAMES,
  HttpConnectionManager,
  Route,
  RouteConfiguration,
} from "../components/envoy";
import {
  gatewayDeploymentSpec,
  gatewayEndpoint,
  gatewayFiles,
  gatewayRouteUrl,
  gatewaySpec,
  gatewayWarnings,
} from "../components/gateway";
import { networkPolicySpecs } from "../components/network-policy";
import {
  checkBootstrapReferences,
  referencedFiles,
  validateBootstrapDetailed,
  validateSdsFile,
} from "./harness/envoy-schema";
import { PROJECT_ROOT, runProgram, runStack, STACKS, stackConfig } from "./harness/program";
import { rewrittenPath, selectRoute } from "./harness/route-model";

type Json = Record<string, unknown>;

const SERVICES = [
  { name: "bookapi", image: "registry.example.com/bookapi:1.0.0", port: 5288 },
  {
    name: "bookapi-mcp-server",
    image: "registry.example.com/bookapi-mcp-server:1.0.0",
    port: 5289,
    calls: ["bookapi"],
    traffic: { streaming: true, sessionAffinity: { header: "mcp-session-id" } },
  },
];

// Not under example.com: preview warns about an issuer there (a placeholder left in place).
const JWT = {
  issuer: "https://id.bookapi.test",
  audiences: ["https://mcp.example.com/mcp"],
  jwksUri: "https://id.bookapi.test/.well-known/jwks.json",
  requiredScopes: ["mcp:tools"],
};

/** A gateway using every feature: hosts, rewrites, its own and a route's auth, CORS. */
const RICH_GATEWAY = {
  hostname: "mcp.example.com",
  replicas: 2,
  service: { type: "LoadBalancer", sourceRanges: ["203.0.113.0/24"] },
  tls: { secretName: "mcp-tls" },
  routes: [
    { host: "mcp.example.com", pathPrefix: "/mcp", service: "bookapi-mcp-server" },
    {
      host: "mcp.example.com",
      pathPrefix: "/api",
      service: "bookapi",
      rewritePrefix: "/",
      auth: { jwt: { ...JWT, audiences: ["https://mcp.example.com/api"] } },
    },
    { pathPrefix: "/v2", service: "bookapi", rewritePrefix: "/books", public: true },
    {
      host: "admin.example.com",
      pathPrefix: "/",
      service: "bookapi",
      auth: { jwt: { ...JWT, audiences: ["https://admin.example.com/"], requiredScopes: [] } },
    },
  ],
  auth: { jwt: JWT },
  cors: { allowOrigins: ["https://app.example.com"] },
};

function meshWith(gateway: unknown): MeshModel {
  return parseMeshConfig({ namespace: "bookapi", services: SERVICES, gateway });
}

function problemsOf(gateway: unknown, extra: Json = {}): string[] {
  try {
    parseMeshConfig({ namespace: "bookapi", services: SERVICES, gateway, ...extra });
  } catch (err) {
    if (err instanceof MeshConfigError) return err.problems;
    throw err;
  }
  return [];
}

function bootstrapOf(model: MeshModel): Bootstrap {
  assert.ok(model.gateway);
  return buildGatewayBootstrap(gatewaySpec(model, model.gateway));
}

function hcmOf(b: Bootstrap): HttpConnectionManager {
  const listener = b.static_resources.listeners.find((l) => l.name === "gateway");
  assert.ok(listener);
  const filter = listener.filter_chains[0].filters[0];
  assert.equal(filter.name, EXTENSION_NAMES.httpConnectionManager);
  return filter.typed_config as HttpConnectionManager;
}

type Outcome =
  | { cluster: string; path: string; route: Route }
  | { status: number; route?: Route; body?: string };

/** Envoy's route choice (tests/harness/route-model.ts), with the route taken. */
function resolve(
  rc: RouteConfiguration,
  authority: string,
  rawPath: string,
  method = "GET",
): Outcome {
  const { route, matched } = selectRoute(rc, authority, rawPath, { ":method": method });
  if (!route || matched === undefined) return { status: 404 };
  if ("direct_response" in route)
    return {
      status: route.direct_response.status,
      route,
      body: route.direct_response.body?.inline_string,
    };
  return {
    cluster: route.route.cluster,
    path: rewrittenPath(route.route.prefix_rewrite, matched, rawPath),
    route,
  };
}

describe("the gateway's stack config", () => {
  it("fills its defaults: one replica, a LoadBalancer on 443, name mesh-gateway, no auth", () => {
    const model = meshWith({
      tls: { secretName: "mcp-tls" },
      routes: [{ pathPrefix: "/mcp", service: "bookapi-mcp-server" }],
    });
    const gw = model.gateway;
    assert.ok(gw);
    assert.equal(gw.name, "mesh-gateway");
    assert.equal(gw.replicas, 1);
    assert.deepEqual(gw.service, { type: "LoadBalancer", waitForAddress: true });
    assert.equal(gw.fqdn, "mesh-gateway.bookapi.svc.cluster.local");
    assert.equal(gw.spiffeId, "spiffe://cluster.local/ns/bookapi/sa/mesh-gateway");
    assert.equal(gw.routes[0].jwt, undefined);
  });

  const cases: Array<[string, unknown, Json, RegExp]> = [
    [
      "a route to an unknown service",
      { tls: { secretName: "t" }, routes: [{ pathPrefix: "/x", service: "nope" }] },
      {},
      /^bookapi-mesh:gateway\.routes\[0\]\.service: unknown service "nope"/,
    ],
    [
      "neither tls.secretName nor tls.selfSigned",
      { tls: {}, routes: [{ pathPrefix: "/mcp", service: "bookapi" }] },
      {},
      /^bookapi-mesh:gateway\.tls: needs exactly one of secretName, selfSigned/,
    ],
    [
      "a path prefix with a trailing slash",
      { tls: { secretName: "t" }, routes: [{ pathPrefix: "/mcp/", service: "bookapi" }] },
      {},
      /^bookapi-mesh:gateway\.routes\[0\]\.pathPrefix: must be \/ or a path such as \/mcp/,
    ],
    [
      "the same prefix routed twice",
      {
        tls: { secretName: "t" },
        routes: [
          { pathPrefix: "/mcp", service: "bookapi" },
          { pathPrefix: "/mcp", service: "bookapi-mcp-server" },
        ],
      },
      {},
      /^bookapi-mesh:gateway\.routes\[1\]\.pathPrefix: \/mcp is already routed/,
    ],
    [
      "an authenticated route without a host for its resource URL",
      {
        tls: { secretName: "t" },
        routes: [{ pathPrefix: "/mcp", service: "bookapi-mcp-server" }],
        auth: { jwt: JWT },
      },
      {},
      /^bookapi-mesh:gateway\.routes\[0\]\.host: an authenticated route needs a host/,
    ],
    [
      "a JWT without an audience",
      {
        hostname: "mcp.example.com",
        tls: { secretName: "t" },
        routes: [{ pathPrefix: "/mcp", service: "bookapi-mcp-server" }],
        auth: { jwt: { ...JWT, audiences: [] } },
      },
      {},
      /^bookapi-mesh:gateway\.auth\.jwt\.audiences: must list at least one audience/,
    ],
    [
      "a JWKS over plain http",
      {
        hostname: "mcp.example.com",
        tls: { secretName: "t" },
        routes: [{ pathPrefix: "/mcp", service: "bookapi-mcp-server" }],
        auth: { jwt: { ...JWT, jwksUri: "http://auth.example.com/jwks" } },
      },
      {},
      /^bookapi-mesh:gateway\.auth\.jwt\.jwksUri: must be an https:\/\/ URL/,
    ],
    [
      "an inline JWKS holding a private key",
      {
        hostname: "mcp.example.com",
        tls: { secretName: "t" },
        routes: [{ pathPrefix: "/mcp", service: "bookapi-mcp-server" }],
        auth: {
          jwt: {
            ...JWT,
            jwksUri: undefined,
            jwks: { keys: [{ kty: "EC", crv: "P-256", x: "a", y: "b", d: "secret" }] },
          },
        },
      },
      {},
      /^bookapi-mesh:gateway\.auth\.jwt\.jwks: must hold public keys only/,
    ],
    [
      "a public route that also sets auth",
      {
        hostname: "mcp.example.com",
        tls: { secretName: "t" },
        routes: [
          { pathPrefix: "/mcp", service: "bookapi-mcp-server", public: true, auth: { jwt: JWT } },
        ],
      },
      {},
      /^bookapi-mesh:gateway\.routes\[0\]\.public: a public route takes no auth/,
    ],
    [
      "a route under the metadata path the gateway serves itself",
      {
        hostname: "mcp.example.com",
        tls: { secretName: "t" },
        routes: [{ pathPrefix: "/.well-known/oauth-protected-resource", service: "bookapi" }],
        auth: { jwt: JWT },
      },
      {},
      /^bookapi-mesh:gateway\.routes\[0\]\.pathPrefix: \/\.well-known\/oauth-protected-resource is served by the gateway itself/,
    ],
    [
      "a gateway named like a service's headless Service",
      {
        name: "bookapi-pods",
        tls: { secretName: "t" },
        routes: [{ pathPrefix: "/mcp", service: "bookapi" }],
      },
      {},
      /^bookapi-mesh:gateway\.name: "bookapi-pods" is the name of a service's Service/,
    ],
    [
      "a certificate Secret the mesh writes itself",
      { tls: { secretName: "bookapi-tls" }, routes: [{ pathPrefix: "/mcp", service: "bookapi" }] },
      {},
      /^bookapi-mesh:gateway\.tls\.secretName: "bookapi-tls" is a mesh identity Secret/,
    ],
    [
      "an Envoy port that is the gateway's listener port",
      { tls: { secretName: "t" }, routes: [{ pathPrefix: "/mcp", service: "bookapi" }] },
      { envoy: { ports: { metrics: 8443 } } },
      /^bookapi-mesh:gateway: its TLS listener uses port 8443 in the pod, which envoy\.ports\.metrics also uses/,
    ],
    [
      "a CORS origin with a path",
      {
        tls: { secretName: "t" },
        routes: [{ pathPrefix: "/mcp", service: "bookapi" }],
        cors: { allowOrigins: ["https://app.example.com/x"] },
      },
      {},
      /^bookapi-mesh:gateway\.cors\.allowOrigins\[0\]: must be an origin/,
    ],
  ];
  cases.push(
    [
      "an authenticated route without a host beside routes that name theirs",
      {
        hostname: "mcp.example.com",
        tls: { secretName: "t" },
        routes: [
          { pathPrefix: "/mcp", service: "bookapi-mcp-server" },
          { host: "admin.example.com", pathPrefix: "/", service: "bookapi", public: true },
        ],
        auth: { jwt: JWT },
      },
      {},
      /^bookapi-mesh:gateway\.routes\[0\]\.host: other routes name their hosts/,
    ],
    [
      "an inline JWKS key without its public members",
      {
        hostname: "mcp.example.com",
        tls: { secretName: "t" },
        routes: [{ pathPrefix: "/mcp", service: "bookapi-mcp-server" }],
        auth: { jwt: { ...JWT, jwksUri: undefined, jwks: { keys: [{ kty: "RSA", e: "AQAB" }] } } },
      },
      {},
      /^bookapi-mesh:gateway\.auth\.jwt\.jwks: must give each RSA key its n, e \(missing n\)/,
    ],
    [
      "an issuer that is not an https URL",
      {
        hostname: "mcp.example.com",
        tls: { secretName: "t" },
        routes: [{ pathPrefix: "/mcp", service: "bookapi-mcp-server" }],
        auth: { jwt: { ...JWT, issuer: "my-issuer" } },
      },
      {},
      /^bookapi-mesh:gateway\.auth\.jwt\.issuer: must be an https:\/\/ URL/,
    ],
    [
      "source ranges on a ClusterIP gateway",
      {
        service: { type: "ClusterIP", sourceRanges: ["10.0.0.0/8"], from: [{ podSelector: {} }] },
        tls: { secretName: "t" },
        routes: [{ pathPrefix: "/mcp", service: "bookapi" }],
      },
      {},
      /^bookapi-mesh:gateway\.service\.sourceRanges: a ClusterIP gateway is reached from inside/,
    ],
    [
      "a NodePort gateway with authenticated routes without its node port",
      {
        hostname: "mcp.example.com",
        service: { type: "NodePort" },
        tls: { secretName: "t" },
        routes: [{ pathPrefix: "/mcp", service: "bookapi" }],
        auth: { jwt: JWT },
      },
      {},
      /^bookapi-mesh:gateway\.service\.port: a NodePort gateway with authenticated routes needs its node port fixed/,
    ],
    [
      "a certificate Secret that is the gateway's self-signed one",
      {
        tls: { secretName: "mesh-gateway-edge-tls" },
        routes: [{ pathPrefix: "/mcp", service: "bookapi" }],
      },
      {},
      /^bookapi-mesh:gateway\.tls\.secretName: "mesh-gateway-edge-tls" is a mesh identity Secret/,
    ],
    [
      "a service that would write the gateway's certificate Secret",
      {
        name: "book",
        tls: { secretName: "t" },
        routes: [{ pathPrefix: "/mcp", service: "bookapi" }],
      },
      { services: [...SERVICES, { name: "book-edge", image: "r.example/x:1.0.0", port: 7000 }] },
      /^bookapi-mesh:gateway\.name: the service "book-edge" writes the Secret book-edge-tls/,
    ],
    [
      "a client Secret that is the gateway's own",
      { tls: { secretName: "t" }, routes: [{ pathPrefix: "/mcp", service: "bookapi" }] },
      {
        clients: [
          {
            name: "cli",
            calls: ["bookapi"],
            secret: { namespace: "bookapi", name: "mesh-gateway-tls" },
          },
        ],
      },
      /^bookapi-mesh:clients\[0\]\.secret\.name: "mesh-gateway-tls" is a Secret the mesh writes/,
    ],
  );
  for (const [what, gateway, extra, expected] of cases) {
    it(`rejects ${what}, naming the key`, () => {
      const problems = problemsOf(gateway, extra);
      assert.ok(
        problems.some((p) => expected.test(p)),
        problems.join("\n") || "(accepted)",
      );
    });
  }

  it("makes the gateway a caller of exactly the services it routes to, limited to the forwarded paths", () => {
    const model = meshWith(RICH_GATEWAY);
    const caller = (svc: string) =>
      model.services.find((s) => s.name === svc)?.callers.find((c) => c.kind === "gateway");
    // /mcp is forwarded as is: /mcp and below.
    assert.deepEqual(caller("bookapi-mcp-server")?.paths, ["/mcp", "/mcp/*"]);
    // bookapi gets /api rewritten to / and the whole admin host: every path.
    assert.deepEqual(caller("bookapi")?.paths, []);
    const narrow = meshWith({
      tls: { secretName: "t" },
      routes: [{ pathPrefix: "/v2", service: "bookapi", rewritePrefix: "/books", public: true }],
    });
    assert.deepEqual(
      narrow.services.find((s) => s.name === "bookapi")?.callers.find((c) => c.kind === "gateway")
        ?.paths,
      ["/books", "/books/*"],
    );
    assert.equal(
      narrow.services.find((s) => s.name === "bookapi-mcp-server")?.callers.length,
      0,
      "not routed: the gateway is no caller",
    );
  });

  it("warns at preview about every route without a token check that is not marked public, and about a self-signed certificate", () => {
    const dev = loadMeshConfig(stackConfig("dev")).gateway;
    assert.ok(dev);
    assert.deepEqual(
      gatewayWarnings(dev).map((w) => w.split(";")[0]),
      ["gateway: tls.selfSigned issues the public certificate from the mesh CA"],
    );
    const open = meshWith({
      ...RICH_GATEWAY,
      routes: [{ pathPrefix: "/mcp", service: "bookapi-mcp-server" }],
      auth: undefined,
    }).gateway;
    assert.ok(open);
    assert.deepEqual(gatewayWarnings(open), [
      'gateway: route /mcp reaches "bookapi-mcp-server" without a token check (set gateway.auth, or routes[].public: true to say it is meant)',
    ]);
    const rich = meshWith(RICH_GATEWAY).gateway;
    assert.ok(rich);
    assert.deepEqual(gatewayWarnings(rich), [], "public and authenticated routes: nothing to say");
  });

  it("refuses, in a stack with podSecurity restricted, a route with neither a token check nor public: true", () => {
    const open = {
      ...RICH_GATEWAY,
      routes: [
        { pathPrefix: "/mcp", service: "bookapi-mcp-server" },
        { pathPrefix: "/v2", service: "bookapi", public: true },
      ],
      auth: undefined,
    };
    assert.deepEqual(problemsOf(open, { podSecurity: "restricted" }), [
      'bookapi-mesh:gateway.routes[0]: forwards /mcp to "bookapi-mcp-server" from outside the cluster with no token check, which a stack with podSecurity restricted refuses; set gateway.auth (or this route\'s auth), or public: true to publish it without one',
    ]);
    assert.deepEqual(problemsOf(open, { podSecurity: "baseline" }), []);
    assert.deepEqual(problemsOf(RICH_GATEWAY, { podSecurity: "restricted" }), []);
    // The shipped strict stacks as they would be with their auth block removed.
    for (const stack of ["staging", "prod"]) {
      const config = stackConfig(stack);
      const gateway = JSON.parse(config["bookapi-mesh:gateway"]) as Json;
      delete gateway.auth;
      assert.throws(
        () => loadMeshConfig({ ...config, "bookapi-mesh:gateway": JSON.stringify(gateway) }),
        (err: unknown) =>
          err instanceof MeshConfigError &&
          err.problems.length === 1 &&
          err.problems[0].startsWith("bookapi-mesh:gateway.routes[0]: forwards /mcp"),
        stack,
      );
    }
  });

  it("ships staging and prod with a token check whose example issuer preview says to edit first", () => {
    for (const stack of ["staging", "prod"]) {
      const gateway = loadMeshConfig(stackConfig(stack)).gateway;
      assert.ok(gateway && gateway.routes.every((r) => r.jwt), stack);
      assert.deepEqual(gatewayWarnings(gateway), [
        "gateway: the token issuer https://auth.example.com is an example (RFC 2606): set gateway.auth.jwt to your authorization server before deploying; until then every token is refused (docs/gateway.md, first deploy)",
      ]);
      assert.match(
        fs.readFileSync(path.join(PROJECT_ROOT, `Pulumi.${stack}.yaml`), "utf8"),
        /EDIT THIS FIRST/,
      );
    }
  });

  it("compares audiences as Envoy does (no scheme, no trailing slash), and warns when a host has no name in a self-signed certificate", () => {
    const gw = meshWith({
      hostname: "mcp.example.com",
      tls: { selfSigned: { dnsNames: ["localhost"] } },
      routes: [{ pathPrefix: "/mcp", service: "bookapi-mcp-server" }],
      auth: { jwt: { ...JWT, audiences: ["http://mcp.example.com/mcp/"] } },
    }).gateway;
    assert.ok(gw);
    assert.deepEqual(
      gatewayWarnings(gw).map((w) => w.split(";")[0]),
      [
        "gateway: mcp.example.com is not among tls.selfSigned.dnsNames (localhost)",
        "gateway: tls.selfSigned issues the public certificate from the mesh CA",
      ],
    );
  });

  it("refuses at preview a gateway whose Envoy config would not fit in a ConfigMap, naming the routes", () => {
    const routes = Array.from({ length: 80 }, (_, i) => ({
      host: `h${i % 4}.example.com`,
      pathPrefix: `/r${i}`,
      service: "bookapi-mcp-server",
    }));
    const model = meshWith({ ...RICH_GATEWAY, routes });
    assert.ok(model.gateway);
    assert.throws(
      () => gatewayFiles(model, model.gateway!),
      (err: unknown) =>
        err instanceof MeshConfigError &&
        /^bookapi-mesh:gateway\.routes: the gateway's Envoy config would be [0-9]+ KiB, over the 1000 KiB/.test(
          err.problems[0],
        ),
    );
    // The shipped stacks are far below it.
    const prod = loadMeshConfig(stackConfig("prod"));
    const size = Object.values(gatewayFiles(prod, prod.gateway!)).join("").length;
    assert.ok(size < 100 * 1024, `${size}`);
  });

  it("warns when one token check serves several resources, or a route's resource is not among its audiences", () => {
    const shared = meshWith({
      ...RICH_GATEWAY,
      routes: [
        { pathPrefix: "/mcp", service: "bookapi-mcp-server" },
        { pathPrefix: "/api", service: "bookapi" },
      ],
    }).gateway;
    assert.ok(shared);
    assert.deepEqual(gatewayWarnings(shared), [
      "gateway: route /api is the resource https://mcp.example.com/api, which is not among its audiences (https://mcp.example.com/mcp); MCP clients ask for tokens for it, which Envoy would refuse",
      "gateway: gateway.auth checks tokens for https://mcp.example.com/mcp, https://mcp.example.com/api with one list of audiences, so a token for one is accepted on all; give routes their own auth to keep them apart",
    ]);
  });
});

describe("the gateway's Envoy files", () => {
  const models: Array<[string, () => MeshModel]> = [
    ...STACKS.map((s): [string, () => MeshModel] => [
      `stack ${s}`,
      () => loadMeshConfig(stackConfig(s)),
    ]),
    ["a gateway with every feature", () => meshWith(RICH_GATEWAY)],
  ];
  for (const [what, model] of models) {
    it(`pass Envoy's protos and start-up checks, reading only files inside the pod's mounts, for ${what}`, () => {
      const m = model();
      assert.ok(m.gateway);
      const files = buildGatewayFiles(gatewaySpec(m, m.gateway));
      const bootstrap = JSON.parse(files["envoy.json"]) as Json;
      assert.deepEqual(validateBootstrapDetailed(bootstrap), { errors: [], warnings: [] });
      assert.deepEqual(checkBootstrapReferences(bootstrap), []);
      assert.deepEqual(validateSdsFile(JSON.parse(files["sds-certificate.json"]), "identity"), []);
      assert.deepEqual(validateSdsFile(JSON.parse(files["sds-validation.json"]), "trust"), []);
      assert.deepEqual(validateSdsFile(JSON.parse(files["sds-edge.json"]), "edge"), []);
      const read = Object.values(files).flatMap((text) => referencedFiles(JSON.parse(text)));
      // The image's CA bundle verifies the JWKS server.
      const mounts = [
        "/etc/envoy/config",
        "/etc/envoy/certs",
        "/etc/envoy/edge",
        "/etc/ssl/certs/ca-certificates.crt",
      ];
      for (const file of read)
        assert.ok(
          mounts.some((dir) => file === dir || file.startsWith(`${dir}/`)),
          `${file} is outside the mounts`,
        );
      assert.ok(
        read.includes("/etc/envoy/edge/tls.crt") && read.includes("/etc/envoy/edge/tls.key"),
      );
    });
  }
});

describe("the gateway's routes", () => {
  const model = meshWith(RICH_GATEWAY);
  const b = bootstrapOf(model);
  const hcm = hcmOf(b);
  const rc = hcm.route_config;

  it("sends each path to its service, rewriting as configured, and never /mcp-anything to /mcp", () => {
    const to = (authority: string, path: string) => {
      const o = resolve(rc, authority, path);
      return "cluster" in o ? `${o.cluster} ${o.path}` : o.status;
    };
    assert.equal(to("mcp.example.com", "/mcp"), "upstream_bookapi-mcp-server /mcp");
    assert.equal(to("mcp.example.com:443", "/mcp/x?y=1"), "upstream_bookapi-mcp-server /mcp/x?y=1");
    assert.equal(to("mcp.example.com", "/mcpx"), 404);
    assert.equal(to("other.example.com", "/mcp"), 404, "/mcp names its host");
    assert.equal(to("other.example.com", "/v2/7"), "upstream_bookapi /books/7");
    // /api -> / needs two routes: never //books.
    assert.equal(to("mcp.example.com", "/api/books"), "upstream_bookapi /books");
    assert.equal(to("mcp.example.com", "/api"), "upstream_bookapi /");
    assert.equal(to("mcp.example.com", "/v2/7"), "upstream_bookapi /books/7");
    assert.equal(to("admin.example.com", "/anything"), "upstream_bookapi /anything");
    // The admin host also takes the any-host routes.
    assert.equal(to("admin.example.com", "/v2/7"), "upstream_bookapi /books/7");
    assert.equal(to("other.example.com", "/anything"), 404);
  });

  it("gives routes to a streaming service no route timeout and the streaming idle timeout, on every method's route", () => {
    for (const method of ["GET", "POST", "DELETE"]) {
      const o = resolve(rc, "mcp.example.com", "/mcp", method);
      assert.ok("cluster" in o && "route" in o.route);
      assert.equal(o.route.route.timeout, "0s", method);
      assert.equal(o.route.route.idle_timeout, "3600s", method);
    }
    const plain = resolve(rc, "mcp.example.com", "/api/books");
    assert.ok("cluster" in plain && "route" in plain.route);
    assert.equal(plain.route.route.timeout, "15s");
  });

  it("keeps an MCP session on one replica: routes to the MCP server carry the session header's envelope state, and the filter runs", () => {
    const o = resolve(rc, "mcp.example.com", "/mcp", "POST");
    assert.ok("cluster" in o);
    assert.deepEqual(o.route.typed_per_filter_config?.[EXTENSION_NAMES.statefulSession], {
      "@type":
        "type.googleapis.com/envoy.extensions.filters.http.stateful_session.v3.StatefulSessionPerRoute",
      stateful_session: {
        session_state: {
          name: "envoy.http.stateful_session.envelope",
          typed_config: {
            "@type":
              "type.googleapis.com/envoy.extensions.http.stateful_session.envelope.v3.EnvelopeSessionState",
            header: { name: "mcp-session-id" },
          },
        },
      },
    });
    const plain = resolve(rc, "mcp.example.com", "/api/books", "POST");
    assert.ok("cluster" in plain);
    assert.equal(plain.route.typed_per_filter_config?.[EXTENSION_NAMES.statefulSession], undefined);
    assert.ok(hcm.http_filters.some((f) => f.name === EXTENSION_NAMES.statefulSession));
  });

  it("runs CORS first (its headers reach every reply), then token checks, scope checks, sessions, and the router last", () => {
    assert.deepEqual(
      hcm.http_filters.map((f) => f.name),
      [
        EXTENSION_NAMES.cors,
        EXTENSION_NAMES.jwtAuthn,
        EXTENSION_NAMES.httpRbac,
        EXTENSION_NAMES.statefulSession,
        EXTENSION_NAMES.router,
      ],
    );
    for (const vh of rc.virtual_hosts) {
      const cors = vh.typed_per_filter_config?.[EXTENSION_NAMES.cors];
      assert.ok(cors, vh.name);
      assert.deepEqual(cors.allow_origin_string_match, [{ exact: "https://app.example.com" }]);
      assert.match(cors.allow_headers, /authorization/);
      assert.match(cors.allow_headers, /mcp-session-id/);
      assert.match(cors.expose_headers, /www-authenticate/);
      assert.equal(cors.allow_credentials, false);
    }
  });

  it("answers the RFC 9728 metadata itself, per authenticated route and host, with no token asked", () => {
    const doc = (authority: string, path: string) => {
      const o = resolve(rc, authority, path);
      assert.ok("status" in o && o.status === 200 && o.body && o.route, `${authority}${path}`);
      assert.deepEqual(o.route.typed_per_filter_config?.[EXTENSION_NAMES.jwtAuthn], {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.PerRouteConfig",
        disabled: true,
      });
      return JSON.parse(o.body) as Json;
    };
    const mcp = doc("mcp.example.com", "/.well-known/oauth-protected-resource/mcp");
    assert.deepEqual(mcp, {
      resource: "https://mcp.example.com/mcp",
      authorization_servers: ["https://id.bookapi.test"],
      bearer_methods_supported: ["header"],
      scopes_supported: ["mcp:tools"],
    });
    assert.deepEqual(doc("mcp.example.com", "/.well-known/oauth-protected-resource"), mcp);
    assert.equal(
      doc("admin.example.com", "/.well-known/oauth-protected-resource").resource,
      "https://admin.example.com/",
    );
  });

  it("rewrites every failed token check on an authenticated route to 401 with the route's resource_metadata, and leaves other replies alone", () => {
    // The token mappers come first; the 5xx body mappers after them never set a status.
    const mappers = (hcm.local_reply_config?.mappers ?? []).filter((m) => m.status_code);
    const headerOf = (m: (typeof mappers)[number]) => m.headers_to_add?.[0].header.value;
    assert.ok(mappers.every((m) => m.status_code === 401));
    assert.deepEqual(mappers.map(headerOf), [
      // Per host, in its routes' order; /v2 (every host) is public.
      'Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"',
      'Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/api"',
      'Bearer resource_metadata="https://admin.example.com/.well-known/oauth-protected-resource"',
    ]);
    // Plain string matchers: Envoy refuses an RE2 program over 100, which a long host's
    // case-insensitive regex exceeds.
    assert.doesNotMatch(JSON.stringify(hcm.local_reply_config), /safe_regex/);
  });

  it("dials each routed service's pods over mTLS with the gateway's identity, and fetches the JWKS over TLS through its own cluster", () => {
    const clusters = new Map(b.static_resources.clusters.map((c) => [c.name, c]));
    const mcp = clusters.get("upstream_bookapi-mcp-server");
    assert.ok(mcp?.transport_socket);
    assert.equal(
      mcp.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address,
      "bookapi-mcp-server-pods.bookapi.svc.cluster.local.",
    );
    assert.equal(
      (mcp.transport_socket.typed_config as { sni: string }).sni,
      "bookapi-mcp-server.bookapi.svc.cluster.local",
    );
    // One cluster for the JWKS server all three providers use.
    const jwks = clusters.get("egress_jwks_id_bookapi_test_443");
    assert.ok(jwks?.transport_socket);
    assert.deepEqual(
      jwks.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address,
      {
        address: "id.bookapi.test",
        port_value: 443,
      },
    );
    assert.equal(clusters.size, 4, [...clusters.keys()].join(", "));
  });

  it("is an edge proxy: client addresses from the connection, underscores in header names refused, 32 KiB buffers, TLS 1.2+ without client certificates", () => {
    assert.equal(hcm.use_remote_address, true);
    assert.deepEqual(hcm.internal_address_config, {
      cidr_ranges: [{ address_prefix: "127.0.0.1", prefix_len: 32 }],
    });
    assert.equal(
      hcm.common_http_protocol_options?.headers_with_underscores_action,
      "REJECT_REQUEST",
    );
    assert.equal(hcm.path_with_escaped_slashes_action, "REJECT_REQUEST");
    const listener = b.static_resources.listeners.find((l) => l.name === "gateway");
    assert.equal(listener?.per_connection_buffer_limit_bytes, 32768);
    const tls = listener?.filter_chains[0].transport_socket?.typed_config;
    assert.ok(tls);
    assert.equal(tls.require_client_certificate, false);
    assert.equal(tls.common_tls_context.tls_params.tls_minimum_protocol_version, "TLSv1_2");
  });
});

describe("the gateway at the edge of the cluster", () => {
  it("rewrites / to a prefix in two routes, so /x becomes /v1/x, and lets the service's RBAC allow exactly that", () => {
    const model = meshWith({
      tls: { secretName: "t" },
      routes: [{ pathPrefix: "/", service: "bookapi", rewritePrefix: "/v1", public: true }],
    });
    const rc = hcmOf(bootstrapOf(model)).route_config;
    const to = (path: string) => {
      const o = resolve(rc, "any.example.com", path);
      return "cluster" in o ? o.path : o.status;
    };
    assert.equal(to("/"), "/v1");
    assert.equal(to("/books/7"), "/v1/books/7");
    assert.deepEqual(
      model.services.find((s) => s.name === "bookapi")?.callers.find((c) => c.kind === "gateway")
        ?.paths,
      ["/v1", "/v1/*"],
    );
  });

  it("puts a public port other than 443 into every resource URL and route URL, and needs a known node port for them", () => {
    const gateway = {
      hostname: "mcp.example.com",
      service: { type: "NodePort", port: 30443 },
      tls: { secretName: "t" },
      routes: [{ pathPrefix: "/mcp", service: "bookapi-mcp-server" }],
      auth: { jwt: { ...JWT, audiences: ["https://mcp.example.com:30443/mcp"] } },
    };
    const gw = meshWith(gateway).gateway;
    assert.ok(gw);
    assert.deepEqual(gw.routes[0].resource, {
      url: "https://mcp.example.com:30443/mcp",
      metadataPath: "/.well-known/oauth-protected-resource/mcp",
      metadataUrl: "https://mcp.example.com:30443/.well-known/oauth-protected-resource/mcp",
    });
    assert.equal(gatewayRouteUrl(gw, gw.routes[0], "ignored"), "https://mcp.example.com:30443/mcp");
    assert.deepEqual(gatewayWarnings(gw), []);
    assert.ok(
      problemsOf({ ...gateway, service: { type: "NodePort" } }).some((p) =>
        p.startsWith(
          "bookapi-mesh:gateway.service.port: a NodePort gateway with authenticated routes needs its node port",
        ),
      ),
    );
    // Without authenticated routes Kubernetes assigns the node port; route URLs use what it
    // assigned (known once the Service exists).
    const assigned = meshWith({
      ...gateway,
      service: { type: "NodePort" },
      routes: [{ pathPrefix: "/mcp", service: "bookapi-mcp-server", public: true }],
      auth: undefined,
    }).gateway;
    assert.ok(assigned);
    assert.equal(assigned.publicPort, undefined);
    assert.equal(
      gatewayRouteUrl(assigned, assigned.routes[0], "ignored", 31234),
      "https://mcp.example.com:31234/mcp",
    );
    const behindIngress = meshWith({
      ...gateway,
      service: { type: "ClusterIP", from: [{ namespaceSelector: { matchLabels: { a: "b" } } }] },
      publicPort: 443,
      auth: { jwt: JWT },
    }).gateway;
    assert.equal(behindIngress?.routes[0].resource?.url, "https://mcp.example.com/mcp");
  });

  it("admits a ClusterIP gateway's clients by selector only, and refuses one that names none", () => {
    const from = [
      { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "ingress" } } },
    ];
    const model = meshWith({
      service: { type: "ClusterIP", from },
      tls: { secretName: "t" },
      routes: [{ pathPrefix: "/mcp", service: "bookapi-mcp-server", public: true }],
    });
    const policy = networkPolicySpecs(model).find((p) => p.name === "mesh-gateway-mesh");
    assert.deepEqual(policy?.spec.ingress, [{ from, ports: [{ protocol: "TCP", port: 8443 }] }]);
    assert.ok(
      problemsOf({
        service: { type: "ClusterIP" },
        tls: { secretName: "t" },
        routes: [{ pathPrefix: "/mcp", service: "bookapi" }],
      }).some((p) => p.startsWith("bookapi-mesh:gateway.service.from: a ClusterIP gateway needs")),
    );
  });

  it("lets browsers read the metadata documents (CORS on the direct responses, which Envoy's CORS filter skips) and refuses preflights from unlisted origins", () => {
    const rc = hcmOf(bootstrapOf(meshWith(RICH_GATEWAY))).route_config;
    const preflight = resolve(
      rc,
      "mcp.example.com",
      "/.well-known/oauth-protected-resource/mcp",
      "OPTIONS",
    );
    assert.ok("status" in preflight && preflight.route && "direct_response" in preflight.route);
    assert.equal(preflight.status, 204);
    const headers = (r: Route) =>
      Object.fromEntries(
        ("response_headers_to_add" in r ? (r.response_headers_to_add ?? []) : []).map((h) => [
          h.header.key,
          h.header.value,
        ]),
      );
    assert.deepEqual(headers(preflight.route), {
      "access-control-allow-origin": "*",
      "access-control-allow-methods": "GET",
      "access-control-allow-headers": "mcp-protocol-version",
      "access-control-max-age": "600",
    });
    const doc = resolve(rc, "mcp.example.com", "/.well-known/oauth-protected-resource/mcp", "GET");
    assert.ok("status" in doc && doc.route);
    assert.equal(headers(doc.route)["access-control-allow-origin"], "*");
    assert.equal(headers(doc.route)["content-type"], "application/json");
    for (const vh of rc.virtual_hosts)
      assert.equal(
        vh.typed_per_filter_config?.[EXTENSION_NAMES.cors]?.forward_not_matching_preflights,
        false,
      );
  });

  it("keeps a stopping gateway serving for preStopSeconds while the load balancer takes it out, and counts a new pod only after minReadySeconds", () => {
    const model = meshWith({
      tls: { secretName: "t" },
      routes: [{ pathPrefix: "/mcp", service: "bookapi" }],
    });
    assert.ok(model.gateway);
    const spec = gatewayDeploymentSpec(model.gateway, model.envoy, { configMapName: "cm" }, []);
    // A cloud load balancer needs up to 3 checks 10 s apart to mark a new node healthy.
    assert.equal(spec.minReadySeconds, 30);
    const minReady = (service: Json) =>
      meshWith({
        service,
        tls: { secretName: "t" },
        routes: [{ pathPrefix: "/mcp", service: "bookapi", public: true }],
      }).gateway?.minReadySeconds;
    assert.equal(minReady({ type: "NodePort" }), 10);
    assert.equal(
      minReady({ type: "ClusterIP", from: [{ podSelector: { matchLabels: { a: "b" } } }] }),
      5,
    );
    const pod = spec.template as {
      spec: {
        terminationGracePeriodSeconds: number;
        containers: Array<{ lifecycle: { preStop: { exec: { command: string[] } } } }>;
      };
    };
    assert.equal(pod.spec.terminationGracePeriodSeconds, 35);
    assert.match(pod.spec.containers[0].lifecycle.preStop.exec.command[2], /sleep 30\n$/);
  });
});

describe("the gateway's endpoint output", () => {
  const gw = meshWith({
    tls: { secretName: "t" },
    routes: [{ pathPrefix: "/mcp", service: "bookapi" }],
  }).gateway;
  assert.ok(gw);

  it("is the load balancer's address and the published port, once there is one", () => {
    assert.equal(
      gatewayEndpoint(gw, undefined, undefined),
      "pending (no load balancer address yet)",
    );
    assert.equal(
      gatewayEndpoint(gw, { loadBalancer: { ingress: [{ ip: "192.0.2.7" }] } } as never, undefined),
      "192.0.2.7:443",
    );
    assert.equal(
      gatewayEndpoint(
        gw,
        { loadBalancer: { ingress: [{ ip: "2001:db8::7" }] } } as never,
        undefined,
      ),
      "[2001:db8::7]:443",
    );
  });

  it("rolls out after the services it routes to, so a new route meets allow-lists that admit it", async () => {
    const run = await runStack("prod");
    const gateway = run.resources.find((r) => r.name === "mesh-gateway-deployment");
    assert.ok(gateway);
    // Dependencies are full URNs, parents included: match the Deployment's own part.
    const waitsFor = (name: string) =>
      gateway.dependencies.some((urn) => urn.endsWith(`kubernetes:apps/v1:Deployment::${name}`));
    assert.equal(waitsFor("mesh-bookapi-mcp-server-deployment"), true);
    assert.equal(waitsFor("mesh-bookapi-deployment"), false, "not routed");
  });

  it("is exported by the program with each route's URL and resource metadata", async () => {
    const run = await runStack("prod");
    assert.deepEqual(run.outputs.gateway, {
      endpoint: "pending (no load balancer address yet)",
      routes: [
        {
          url: "https://mcp.example.com/mcp",
          service: "bookapi-mcp-server",
          resourceMetadata: "https://mcp.example.com/.well-known/oauth-protected-resource/mcp",
        },
      ],
    });
  });
});

describe("waiting for a published Service's address", () => {
  const gatewayWith = (waitForAddress: unknown) => ({
    ...RICH_GATEWAY,
    service: { type: "LoadBalancer", waitForAddress },
  });

  it("waits as the provider does by default, says nothing, and sets no annotation or timeout", async () => {
    const run = await runStack("prod");
    const service = run.resources.find((r) => r.name === "mesh-gateway-service");
    assert.ok(service);
    assert.deepEqual(service.customTimeouts, { create: "", update: "", delete: "" });
    assert.equal((service.inputs.metadata as Json).annotations, undefined);
    assert.ok(!run.warnings.some((w) => w.includes("waitForAddress")));
  });

  it("skips the wait with waitForAddress false, and bounds it with a duration, saying so at preview", async () => {
    const config = stackConfig("prod");
    const gateway = JSON.parse(config["bookapi-mesh:gateway"]) as Json;
    const runWith = (waitForAddress: unknown) =>
      runProgram({
        ...config,
        "bookapi-mesh:gateway": JSON.stringify({
          ...gateway,
          service: { ...(gateway.service as Json), waitForAddress },
        }),
      });
    const skipped = await runWith(false);
    const service = (run: typeof skipped) => {
      const found = run.resources.find((r) => r.name === "mesh-gateway-service");
      assert.ok(found);
      return found;
    };
    assert.deepEqual((service(skipped).inputs.metadata as Json).annotations, {
      "pulumi.com/skipAwait": "true",
    });
    assert.ok(
      skipped.warnings.includes(
        "gateway: service.waitForAddress is false: pulumi up does not wait for its load balancer's address; outputs show it as pending until a pulumi up --refresh after it is there",
      ),
      skipped.warnings.join("\n"),
    );
    const bounded = await runWith("3m");
    assert.deepEqual(service(bounded).customTimeouts, { create: "3m", update: "3m", delete: "" });
    assert.ok(bounded.warnings.some((w) => w.startsWith("gateway: service.waitForAddress is 3m")));
  });

  it("refuses anything but true, false or a duration, naming the key", () => {
    assert.ok(
      problemsOf(gatewayWith("soon")).some((p) =>
        p.startsWith("bookapi-mesh:gateway.service.waitForAddress: must be a duration"),
      ),
    );
    assert.ok(
      problemsOf(gatewayWith(3)).some((p) =>
        p.startsWith("bookapi-mesh:gateway.service.waitForAddress: must be"),
      ),
    );
    assert.deepEqual(problemsOf(gatewayWith("90s")), []);
  });
});
