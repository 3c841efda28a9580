import assert from "node:assert/strict";
import { rewrittenPath, selectRoute } from "./harness/route-model";
import { entries } from "./harness/json";
import { validateBootstrapDetailed } from "./harness/envoy-schema";
import { DEFAULT_TRAFFIC_POLICY } from "../components/config";
import { trafficSpec } from "../components/envoy-units";
import {
  NO_CALLER_SAN,
  Bootstrap,
  buildBootstrap,
  buildEnvoyFiles,
  buildSdsFiles,
  CERT_FILES,
  CLUSTER_NAMES,
  Cluster,
  CommonTlsContext,
  ENVOY_FILES,
  EXTENSION_NAMES,
  HttpConnectionManager,
  HttpRbac,
  LISTENER_NAMES,
  Listener,
  NetworkRbac,
  Peer,
  peerHostnames,
  referencedFiles,
  RouteConfiguration,
  SDS_SECRETS,
  SdsSecretConfig,
  SIDECAR_PATHS,
  SidecarSpec,
  Upstream,
  TYPE_URLS,
  UpstreamTlsContext,
  upstreamClusterName,
} from "../components/envoy";

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

const PORTS = { inbound: 15001, outbound: 15006, admin: 9901, health: 15021, metrics: 15090 };
const NS = "default";

const peer = (name: string): Peer & { fqdn: string } => ({
  name,
  fqdn: `${name}.${NS}.svc.cluster.local`,
});
const upstream = (name: string): Upstream => ({
  ...peer(name),
  podsFqdn: `${name}-pods.${NS}.svc.cluster.local`,
  traffic: trafficSpec(DEFAULT_TRAFFIC_POLICY),
});

function sidecar(
  service: string,
  appPort: number,
  callers: string[],
  upstreams: string[],
): SidecarSpec {
  return {
    service,
    fqdn: peer(service).fqdn,
    appPort,
    ports: { ...PORTS },
    // Sorted, as the mesh model hands them over (tests/config.spec.ts checks that it does).
    callers: [...callers].sort().map(peer),
    upstreams: [...upstreams].sort().map(upstream),
    traffic: trafficSpec(DEFAULT_TRAFFIC_POLICY),
    egress: [],
    accessLog: true,
    bindAddress: "::",
    overload: { maxHeapBytes: 200 * 2 ** 20, maxConnections: 10000 },
    paths: { ...SIDECAR_PATHS },
  };
}

interface Case {
  what: string;
  spec: SidecarSpec;
}

const CASES: Case[] = [
  {
    what: "a service with callers and no upstreams",
    spec: sidecar("bookapi", 5288, ["reports", "bookapi-mcp-server"], []),
  },
  {
    what: "a service with one upstream",
    spec: sidecar("bookapi-mcp-server", 5289, [], ["bookapi"]),
  },
  {
    what: "a service with two upstreams and a caller",
    spec: sidecar("gateway", 8080, ["edge"], ["catalog", "bookapi"]),
  },
  {
    what: "a service with neither callers nor upstreams",
    spec: sidecar("batch", 9000, [], []),
  },
];

// ---------------------------------------------------------------------------------------------
// Helpers: typed views into a bootstrap, and a small emulation of Envoy's routing
// ---------------------------------------------------------------------------------------------

const sorted = (xs: string[]): string[] => [...xs].sort();
const fqdns = (peers: Peer[]): string[] => sorted(peers.flatMap((p) => (p.fqdn ? [p.fqdn] : [])));

function findListener(b: Bootstrap, name: string): Listener | undefined {
  return b.static_resources.listeners.find((l) => l.name === name);
}

function listener(b: Bootstrap, name: string): Listener {
  const found = findListener(b, name);
  assert.ok(found, `listener "${name}" is missing`);
  return found;
}

function cluster(b: Bootstrap, name: string): Cluster {
  const found = b.static_resources.clusters.find((c) => c.name === name);
  assert.ok(found, `cluster "${name}" is missing`);
  return found;
}

function onlyChain(l: Listener) {
  assert.equal(l.filter_chains.length, 1, `listener ${l.name} should have one filter chain`);
  return l.filter_chains[0];
}

function hcmOf(l: Listener): HttpConnectionManager {
  const filters = onlyChain(l).filters;
  const last = filters[filters.length - 1];
  assert.equal(last.name, EXTENSION_NAMES.httpConnectionManager, `${l.name}: HCM must be last`);
  if (last.name !== EXTENSION_NAMES.httpConnectionManager) throw new Error("unreachable");
  return last.typed_config;
}

function networkRbacOf(l: Listener): NetworkRbac {
  for (const f of onlyChain(l).filters) {
    if (f.name === EXTENSION_NAMES.networkRbac) return f.typed_config;
  }
  assert.fail(`${l.name}: no network RBAC filter`);
}

function httpRbacOf(hcm: HttpConnectionManager): HttpRbac {
  for (const f of hcm.http_filters) if (f.name === EXTENSION_NAMES.httpRbac) return f.typed_config;
  assert.fail("no HTTP RBAC filter");
}

function principalsOf(rules: NetworkRbac["rules"]): string[] {
  return sorted(
    Object.values(rules.policies).flatMap((p) =>
      p.principals.map((pr) =>
        "authenticated" in pr ? pr.authenticated.principal_name.exact : assert.fail("not a peer"),
      ),
    ),
  );
}

function sanAllowList(ctx: CommonTlsContext): string[] {
  const matchers =
    ctx.combined_validation_context.default_validation_context.match_typed_subject_alt_names;
  for (const m of matchers) assert.equal(m.san_type, "DNS");
  return sorted(matchers.map((m) => m.matcher.exact));
}

type Outcome = { cluster: string; path: string } | { status: number };

/** Envoy's choice for a request (tests/harness/route-model.ts), 404 where no route takes it. */
function resolve(
  rc: RouteConfiguration,
  authority: string,
  rawPath: string,
  method = "GET",
): Outcome {
  const { route, matched } = selectRoute(rc, authority, rawPath, { ":method": method });
  if (!route || matched === undefined) return { status: 404 };
  if ("direct_response" in route) return { status: route.direct_response.status };
  return {
    cluster: route.route.cluster,
    path: rewrittenPath(route.route.prefix_rewrite, matched, rawPath),
  };
}

function sdsRefs(b: Bootstrap): SdsSecretConfig[] {
  const contexts: CommonTlsContext[] = [];
  for (const l of b.static_resources.listeners) {
    for (const fc of l.filter_chains) {
      // Sidecars only: every listener TLS context is a mesh one.
      if (fc.transport_socket)
        contexts.push(fc.transport_socket.typed_config.common_tls_context as CommonTlsContext);
    }
  }
  for (const c of b.static_resources.clusters) {
    // The fixtures have no egress, so every cluster TLS context is a mesh one.
    if (c.transport_socket)
      contexts.push(c.transport_socket.typed_config.common_tls_context as CommonTlsContext);
  }
  return contexts.flatMap((ctx) => [
    ...ctx.tls_certificate_sds_secret_configs,
    ctx.combined_validation_context.validation_context_sds_secret_config,
  ]);
}

// ---------------------------------------------------------------------------------------------
// Table-driven properties
// ---------------------------------------------------------------------------------------------

describe("Envoy config builders", () => {
  for (const { what, spec } of CASES) {
    describe(`for ${what} (${spec.service})`, () => {
      // Built in a hook, so a builder that throws fails this case's tests, not the whole file.
      let b: Bootstrap;
      let files: Record<string, string>;
      before(() => {
        b = buildBootstrap(spec);
        files = buildEnvoyFiles(spec);
      });

      it("binds the inbound listener to [::]:<inbound> for IPv4 and IPv6 callers and requires a client certificate over TLS 1.2 or newer", () => {
        const inbound = listener(b, LISTENER_NAMES.inbound);
        assert.deepEqual(inbound.address.socket_address, {
          address: "::",
          port_value: PORTS.inbound,
          ipv4_compat: true,
        });
        const socket = onlyChain(inbound).transport_socket;
        assert.ok(socket, "inbound has no transport socket");
        assert.equal(socket.name, "envoy.transport_sockets.tls");
        assert.equal(socket.typed_config["@type"], TYPE_URLS.downstreamTlsContext);
        assert.equal(socket.typed_config.require_client_certificate, true);
        assert.deepEqual(socket.typed_config.common_tls_context.tls_params, {
          tls_minimum_protocol_version: "TLSv1_2",
          tls_maximum_protocol_version: "TLSv1_3",
          // P-384 certificates (prod) need P-384 listed: Envoy's default is X25519 and P-256.
          ecdh_curves: ["X25519", "P-256", "P-384"],
        });
      });

      it("accepts exactly the callers' FQDNs as client certificate SANs, and no SAN at all without callers", () => {
        const socket = onlyChain(listener(b, LISTENER_NAMES.inbound)).transport_socket;
        assert.ok(socket);
        assert.deepEqual(
          sanAllowList(socket.typed_config.common_tls_context as CommonTlsContext),
          spec.callers.length > 0 ? fqdns(spec.callers) : [NO_CALLER_SAN],
        );
      });

      it("lets both RBAC filters allow exactly the callers, and deny everyone when there are none", () => {
        const inbound = listener(b, LISTENER_NAMES.inbound);
        const network = networkRbacOf(inbound);
        const http = httpRbacOf(hcmOf(inbound));
        assert.equal(
          onlyChain(inbound).filters[0].name,
          EXTENSION_NAMES.networkRbac,
          "RBAC runs before HTTP",
        );
        for (const rbac of [network, http]) {
          // `rules` present is what makes RBAC enforce; absent would allow everything.
          assert.ok(rbac.rules, "RBAC rules must be present");
          assert.equal(rbac.rules.action, "ALLOW");
          assert.deepEqual(principalsOf(rbac.rules), fqdns(spec.callers));
          if (spec.callers.length === 0) assert.deepEqual(rbac.rules.policies, {});
          for (const policy of Object.values(rbac.rules.policies)) {
            assert.deepEqual(policy.permissions, [{ any: true }]);
          }
        }
        const names = hcmOf(inbound).http_filters.map((f) => f.name);
        assert.deepEqual(names, [EXTENSION_NAMES.httpRbac, EXTENSION_NAMES.router]);
      });

      it("replaces any client x-forwarded-client-cert with the caller's verified URI and DNS SANs", () => {
        const hcm = hcmOf(listener(b, LISTENER_NAMES.inbound));
        assert.equal(hcm.forward_client_cert_details, "SANITIZE_SET");
        assert.deepEqual(hcm.set_current_client_cert_details, { uri: true, dns: true });
        assert.equal(hcm.codec_type, "AUTO");
        assert.equal(hcm.stat_prefix, "inbound");
      });

      it("sends inbound requests for any host and path to the app on 127.0.0.1:<appPort>", () => {
        const rc = hcmOf(listener(b, LISTENER_NAMES.inbound)).route_config;
        for (const [authority, path] of [
          ["x", "/"],
          [spec.fqdn, "/books/1?x=1"],
          ["1.2.3.4:15001", "/a"],
        ]) {
          assert.deepEqual(resolve(rc, authority, path), { cluster: CLUSTER_NAMES.localApp, path });
        }
        const app = cluster(b, CLUSTER_NAMES.localApp);
        assert.equal(app.type, "STATIC");
        assert.deepEqual(
          app.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address,
          {
            address: "127.0.0.1",
            port_value: spec.appPort,
          },
        );
        assert.equal(app.transport_socket, undefined, "loopback to the app is plain HTTP");
      });

      it("has an outbound listener only when it calls something, bound to 127.0.0.1:<outbound>", () => {
        const outbound = findListener(b, LISTENER_NAMES.outbound);
        if (spec.upstreams.length === 0) {
          assert.equal(outbound, undefined);
          return;
        }
        assert.ok(outbound, "outbound listener is missing");
        assert.deepEqual(outbound.address.socket_address, {
          address: "127.0.0.1",
          port_value: PORTS.outbound,
        });
        assert.equal(onlyChain(outbound).transport_socket, undefined, "the app speaks plain HTTP");
        const domains = hcmOf(outbound).route_config.virtual_hosts.flatMap((v) => v.domains);
        assert.ok(
          !domains.some((d) => d.includes("*")),
          `no wildcard domain: ${domains.join(", ")}`,
        );
      });

      it("dials each upstream's pods through its absolute headless <name>-pods FQDN on <inbound> with its own certificate, SNI = fqdn and the fqdn as the only SAN", () => {
        const upstreamClusters = b.static_resources.clusters.filter((c) =>
          c.name.startsWith("upstream_"),
        );
        assert.deepEqual(
          sorted(upstreamClusters.map((c) => c.name)),
          sorted(spec.upstreams.map(upstreamClusterName)),
        );
        for (const u of spec.upstreams) {
          const c = cluster(b, upstreamClusterName(u));
          assert.deepEqual(
            c.cluster_type && {
              name: c.cluster_type.name,
              strict: !c.cluster_type.typed_config.all_addresses_in_single_endpoint,
            },
            { name: "envoy.cluster.dns", strict: true },
            `${c.name} must resolve the Service name by DNS, one host per address`,
          );
          const endpoints = c.load_assignment.endpoints.flatMap((e) => e.lb_endpoints);
          assert.deepEqual(
            endpoints.map((e) => e.endpoint.address.socket_address),
            // Absolute (trailing dot), so ndots:5 does not walk the search list first.
            [{ address: `${(u as Upstream).podsFqdn}.`, port_value: PORTS.inbound }],
          );
          assert.ok(c.transport_socket, `${c.name} must use TLS`);
          const tls = c.transport_socket.typed_config as UpstreamTlsContext;
          assert.equal(tls["@type"], TYPE_URLS.upstreamTlsContext);
          assert.equal(tls.sni, u.fqdn);
          assert.deepEqual(sanAllowList(tls.common_tls_context), [u.fqdn]);
          assert.equal(tls.common_tls_context.tls_params.tls_minimum_protocol_version, "TLSv1_2");
          assert.deepEqual(
            tls.common_tls_context.tls_certificate_sds_secret_configs.map((s) => s.name),
            [SDS_SECRETS.certificate],
          );
        }
      });

      it("routes each upstream's short, namespaced and full names, with and without the port, to its cluster", () => {
        const outbound = findListener(b, LISTENER_NAMES.outbound);
        // Without dependencies there is nothing the app could reach, not even by name.
        if (spec.upstreams.length === 0) return assert.equal(outbound, undefined);
        assert.ok(outbound, "outbound listener is missing");
        const rc = hcmOf(outbound).route_config;
        for (const u of spec.upstreams) {
          const names = [u.name, `${u.name}.${NS}`, `${u.name}.${NS}.svc`, u.fqdn];
          for (const host of names.flatMap((n) => [n, `${n}:${PORTS.outbound}`])) {
            assert.deepEqual(
              resolve(rc, host, "/books"),
              { cluster: upstreamClusterName(u), path: "/books" },
              host,
            );
          }
        }
        assert.deepEqual(resolve(rc, "unknown.example.com", "/"), { status: 404 });
      });

      it("routes the plain 127.0.0.1:<outbound> authority to the upstream only when there is exactly one", () => {
        const outbound = findListener(b, LISTENER_NAMES.outbound);
        if (spec.upstreams.length === 0) return assert.equal(outbound, undefined);
        assert.ok(outbound, "outbound listener is missing");
        const rc = hcmOf(outbound).route_config;
        for (const host of [
          `127.0.0.1:${PORTS.outbound}`,
          `localhost:${PORTS.outbound}`,
          "127.0.0.1",
        ]) {
          const expected =
            spec.upstreams.length === 1
              ? { cluster: upstreamClusterName(spec.upstreams[0]), path: "/" }
              : { status: 404 };
          assert.deepEqual(resolve(rc, host, "/"), expected, host);
        }
      });

      it("binds the admin interface to 127.0.0.1 only", () => {
        assert.deepEqual(b.admin.address.socket_address, {
          address: "127.0.0.1",
          port_value: PORTS.admin,
        });
        const admin = cluster(b, CLUSTER_NAMES.admin);
        assert.equal(admin.type, "STATIC");
        assert.deepEqual(
          admin.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address,
          {
            address: "127.0.0.1",
            port_value: PORTS.admin,
          },
        );
      });

      const exposure: [string, number, string, string][] = [
        [LISTENER_NAMES.health, PORTS.health, "/healthz/ready", "/ready"],
        [LISTENER_NAMES.metrics, PORTS.metrics, "/stats/prometheus", "/stats/prometheus"],
      ];
      for (const [name, port, path, adminPath] of exposure) {
        it(`lets the ${name} listener expose only ${path}, answering 404 to everything else`, () => {
          const l = listener(b, name);
          assert.deepEqual(l.address.socket_address, {
            address: "::",
            port_value: port,
            ipv4_compat: true,
          });
          const hcm = hcmOf(l);
          assert.equal(hcm.normalize_path, true);
          const rc = hcm.route_config;
          assert.deepEqual(resolve(rc, `10.0.0.1:${port}`, path), {
            cluster: CLUSTER_NAMES.admin,
            path: adminPath,
          });
          for (const other of [
            "/",
            `${path}/`,
            `${path}x`,
            `${path}/../../quitquitquit`,
            "/ready",
            "/stats",
            "/config_dump",
            "/quitquitquit",
            path.toUpperCase(),
          ]) {
            assert.deepEqual(resolve(rc, "any", other), { status: 404 }, other);
          }
          const exact = rc.virtual_hosts.flatMap((v) => v.routes).filter((r) => "route" in r);
          assert.deepEqual(
            exact.map((r) => r.match),
            [{ path }],
            "only one forwarding route, by exact path",
          );
        });
      }

      it("names only existing clusters in routes, and no cluster twice", () => {
        const names = b.static_resources.clusters.map((c) => c.name);
        assert.equal(new Set(names).size, names.length, `duplicate cluster: ${names.join(", ")}`);
        const routed = b.static_resources.listeners
          .flatMap((l) => hcmOf(l).route_config.virtual_hosts)
          .flatMap((v) => v.routes)
          .flatMap((r) => ("route" in r ? [r.route.cluster] : []));
        assert.ok(routed.length > 0);
        for (const c of routed) assert.ok(names.includes(c), `route to unknown cluster ${c}`);
        for (const c of b.static_resources.clusters)
          assert.equal(c.load_assignment.cluster_name, c.name);
      });

      it("gives every listener a unique name and a port no other listener or admin uses", () => {
        const listeners = b.static_resources.listeners;
        const names = listeners.map((l) => l.name);
        assert.equal(new Set(names).size, names.length);
        // Ports, not address:port: 0.0.0.0 overlaps 127.0.0.1 on the same port.
        const ports = [b.admin.address, ...listeners.map((l) => l.address)].map(
          (a) => a.socket_address.port_value,
        );
        assert.equal(new Set(ports).size, ports.length, `ports: ${ports.join(", ")}`);
        assert.ok(!ports.includes(spec.appPort), "the app's port is taken by Envoy");
        const expected: string[] = [
          LISTENER_NAMES.inbound,
          LISTENER_NAMES.health,
          LISTENER_NAMES.metrics,
        ];
        if (spec.upstreams.length > 0) expected.push(LISTENER_NAMES.outbound);
        assert.deepEqual(sorted(names), sorted(expected));
      });

      it("puts an @type on every typed_config and uses no deprecated field", () => {
        const all = Object.values(files).flatMap((text) => entries(JSON.parse(text) as unknown));
        const typed = all.filter((e) => e.key === "typed_config");
        assert.ok(typed.length > 0);
        const known = new Set<string>(Object.values(TYPE_URLS));
        for (const t of typed) {
          const url = (t.value as Record<string, unknown>)["@type"];
          assert.ok(typeof url === "string" && known.has(url), `${t.at}: @type ${String(url)}`);
        }
        // What Envoy's own protos mark deprecated (the validator reads the annotations).
        assert.deepEqual(
          validateBootstrapDetailed(b).warnings.filter((w) => w.includes("deprecated")),
          [],
        );
        // ConfigSource.path is deprecated in favour of path_config_source.
        for (const e of all.filter((x) => x.key === "sds_config")) {
          assert.deepEqual(
            Object.keys(e.value as object),
            ["path_config_source", "resource_api_version"],
            e.at,
          );
        }
      });

      it("takes identity and trust from the SDS files in the ConfigMap, watching its directory", () => {
        const refs = sdsRefs(b);
        // Inbound listener + one context per upstream, two references each.
        assert.equal(refs.length, 2 * (1 + spec.upstreams.length));
        const expectedPath: Record<string, string> = {
          [SDS_SECRETS.certificate]: `${spec.paths.configDir}/${ENVOY_FILES.sdsCertificate}`,
          [SDS_SECRETS.validation]: `${spec.paths.configDir}/${ENVOY_FILES.sdsValidation}`,
        };
        for (const ref of refs) {
          assert.ok(ref.name in expectedPath, `unknown secret ${ref.name}`);
          assert.deepEqual(ref.sds_config, {
            path_config_source: {
              path: expectedPath[ref.name],
              watched_directory: { path: spec.paths.configDir },
            },
            resource_api_version: "V3",
          });
        }
        const certificate = JSON.parse(files[ENVOY_FILES.sdsCertificate]) as {
          resources: { name: string }[];
        };
        const validation = JSON.parse(files[ENVOY_FILES.sdsValidation]) as {
          resources: { name: string }[];
        };
        assert.deepEqual(
          certificate.resources.map((r) => r.name),
          [SDS_SECRETS.certificate],
        );
        assert.deepEqual(
          validation.resources.map((r) => r.name),
          [SDS_SECRETS.validation],
        );
      });

      it("puts no PEM, key material or inline secret into any file", () => {
        for (const [name, text] of Object.entries(files)) {
          assert.doesNotMatch(text, /-----BEGIN|PRIVATE KEY/, name);
          // Inline text is allowed only as a reply body (the 5xx bodies of local replies).
          const inlined = entries(JSON.parse(text) as unknown).filter(
            (e) =>
              ["inline_bytes", "inline_string", "environment_variable"].includes(e.key) &&
              !e.at.endsWith(".body.inline_string"),
          );
          assert.deepEqual(
            inlined.map((e) => e.at),
            [],
            `${name} inlines data`,
          );
        }
      });

      it("produces identical strings for the same input", () => {
        assert.deepEqual(buildEnvoyFiles(structuredClone(spec)), files);
        assert.deepEqual(buildBootstrap(structuredClone(spec)), b);
      });

      it("returns the ENVOY_FILES keys, each the 2-space indented JSON of its builder's object", () => {
        const sds = buildSdsFiles(spec);
        const expected: Record<string, unknown> = {
          [ENVOY_FILES.bootstrap]: b,
          [ENVOY_FILES.sdsCertificate]: sds.certificate,
          [ENVOY_FILES.sdsValidation]: sds.validation,
        };
        assert.deepEqual(sorted(Object.keys(files)), sorted(Object.keys(expected)));
        for (const [key, value] of Object.entries(expected)) {
          assert.equal(files[key], `${JSON.stringify(value, null, 2)}\n`, key);
        }
      });

      it("lists in referencedFiles exactly the paths the files make Envoy read, all inside the two mounts", () => {
        const fromFiles = new Set<string>();
        for (const text of Object.values(files)) {
          for (const e of entries(JSON.parse(text) as unknown)) {
            if (e.key === "filename" && typeof e.value === "string") fromFiles.add(e.value);
            // `path` of a path_config_source or watched_directory (route matches are not files).
            if (e.key === "path_config_source" || e.key === "watched_directory") {
              fromFiles.add((e.value as { path: string }).path);
            }
          }
        }
        const refs = referencedFiles(spec);
        assert.deepEqual(refs, sorted([...fromFiles]));
        const { configDir, certDir } = spec.paths;
        for (const f of refs) {
          assert.ok(
            [configDir, certDir].some((d) => f === d || f.startsWith(`${d}/`)),
            f,
          );
        }
        for (const name of Object.values(CERT_FILES))
          assert.ok(refs.includes(`${certDir}/${name}`), name);
      });
    });
  }

  // -------------------------------------------------------------------------------------------
  // Single-purpose checks
  // -------------------------------------------------------------------------------------------

  it("writes the identity SDS file as one Secret pointing at tls.crt and tls.key, watching the Secret mount", () => {
    const { certificate } = buildSdsFiles(CASES[0].spec);
    assert.deepEqual(certificate, {
      resources: [
        {
          "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
          name: "identity",
          tls_certificate: {
            certificate_chain: { filename: "/etc/envoy/certs/tls.crt" },
            private_key: { filename: "/etc/envoy/certs/tls.key" },
            watched_directory: { path: "/etc/envoy/certs" },
          },
        },
      ],
    });
  });

  it("writes the trust SDS file as one Secret pointing at ca.crt, watching the Secret mount", () => {
    const { validation } = buildSdsFiles(CASES[0].spec);
    assert.deepEqual(validation, {
      resources: [
        {
          "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret",
          name: "trust",
          validation_context: {
            trusted_ca: { filename: "/etc/envoy/certs/ca.crt" },
            watched_directory: { path: "/etc/envoy/certs" },
          },
        },
      ],
    });
  });

  it("derives the names Kubernetes DNS resolves for a peer from its FQDN", () => {
    assert.deepEqual(peerHostnames(upstream("bookapi")), [
      "bookapi",
      "bookapi.default",
      "bookapi.default.svc",
      "bookapi.default.svc.cluster.local",
    ]);
    assert.deepEqual(peerHostnames({ ...upstream("x"), fqdn: "x.example.org" }), [
      "x",
      "x.example.org",
    ]);
  });
});
