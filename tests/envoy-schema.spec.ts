import assert from "node:assert/strict";
import { at } from "./harness/json";
import {
  checkBootstrapReferences,
  envoyProtoStats,
  referencedFiles,
  validateBootstrap,
  validateBootstrapDetailed,
  validateEnvoyMessage,
  validateEnvoyMessageDetailed,
  validateSdsFile,
} from "./harness/envoy-schema";

type Json = Record<string, unknown>;

const TLS = "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3";
const HCM =
  "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
const ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";

const socket = (address: string, port: unknown) => ({
  socket_address: { address, port_value: port },
});

/** A fresh small valid bootstrap: admin, one mTLS listener (HCM + router), one cluster. */
function bootstrap(): Json {
  return {
    node: { id: "bookapi-0", cluster: "bookapi" },
    admin: { address: socket("127.0.0.1", 9901) },
    static_resources: {
      listeners: [
        {
          name: "inbound",
          address: socket("0.0.0.0", 15006),
          filter_chains: [
            {
              transport_socket: {
                name: "envoy.transport_sockets.tls",
                typed_config: {
                  "@type": `${TLS}.DownstreamTlsContext`,
                  require_client_certificate: true,
                  common_tls_context: {
                    tls_params: { tls_minimum_protocol_version: "TLSv1_2" },
                    tls_certificate_sds_secret_configs: [
                      {
                        name: "mesh-cert",
                        sds_config: {
                          path_config_source: {
                            path: "/etc/envoy/sds/cert.json",
                            watched_directory: { path: "/etc/envoy/sds" },
                          },
                        },
                      },
                    ],
                    validation_context: { trusted_ca: { filename: "/etc/mesh/ca.pem" } },
                  },
                },
              },
              filters: [
                {
                  name: "envoy.filters.network.http_connection_manager",
                  typed_config: {
                    "@type": HCM,
                    stat_prefix: "inbound",
                    route_config: {
                      name: "local",
                      virtual_hosts: [
                        {
                          name: "app",
                          domains: ["*"],
                          routes: [{ match: { prefix: "/" }, route: { cluster: "app" } }],
                        },
                      ],
                    },
                    http_filters: [
                      { name: "envoy.filters.http.router", typed_config: { "@type": ROUTER } },
                    ],
                  },
                },
              ],
            },
          ],
        },
      ],
      clusters: [
        {
          name: "app",
          connect_timeout: "1s",
          type: "STATIC",
          load_assignment: {
            cluster_name: "app",
            endpoints: [{ lb_endpoints: [{ endpoint: { address: socket("127.0.0.1", 5288) } }] }],
          },
        },
      ],
    },
  };
}

// Typed views into the fixture, so mutations read like the config paths they touch.
type Path = (string | number)[];
const LISTENER: Path = ["static_resources", "listeners", 0];
const CHAIN: Path = [...LISTENER, "filter_chains", 0];
const TLS_CTX: Path = [...CHAIN, "transport_socket", "typed_config"];
const HCM_CFG: Path = [...CHAIN, "filters", 0, "typed_config"];
const ROUTE: Path = [...HCM_CFG, "route_config", "virtual_hosts", 0, "routes", 0, "route"];
const CLUSTER: Path = ["static_resources", "clusters", 0];

const P_TLS = "static_resources.listeners[0].filter_chains[0].transport_socket.typed_config";
const P_HCM = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config";
const P_ROUTE = `${P_HCM}.route_config.virtual_hosts[0].routes[0].route`;

/** Deep copy with every key turned lowerCamel (the other spelling Envoy accepts). */
function camelize(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(camelize);
  if (typeof v !== "object" || v === null) return v;
  return Object.fromEntries(
    Object.entries(v).map(([k, x]) => [
      k.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase()),
      camelize(x),
    ]),
  );
}

function assertHasError(errors: string[], path: string, fragment: string): void {
  const hit = errors.find((e) => e.startsWith(`${path}: `) && e.includes(fragment));
  assert.ok(
    hit,
    `expected an error at "${path}" containing ${JSON.stringify(fragment)}, got:\n  ` +
      (errors.join("\n  ") || "(no errors)"),
  );
}

describe("Envoy v3 schema validator", () => {
  // How long the load takes is a benchmark figure (npm run bench), not an assertion.
  it("loads Envoy's API protos once and reuses them", () => {
    const stats = envoyProtoStats();
    assert.ok(stats.files > 250, `only ${stats.files} proto files loaded`);
    assert.equal(envoyProtoStats(), stats, "a second call must reuse the cached protos");
  });

  it("accepts a small valid bootstrap with an mTLS listener, HCM + router and one cluster", () => {
    const result = validateBootstrapDetailed(bootstrap());
    assert.deepEqual(result, { errors: [], warnings: [] });
    assert.deepEqual(checkBootstrapReferences(bootstrap()), []);
  });

  it("accepts lowerCamel field names, enum numbers and nulls as Envoy's JSON parser does", () => {
    const b = camelize(bootstrap()) as Json;
    at(b, ...["staticResources", "clusters", 0]).type = 0; // STATIC by number
    at(b, ...["staticResources", "clusters", 0]).perConnectionBufferLimitBytes = null;
    assert.deepEqual(validateBootstrap(b), []);
    assert.deepEqual(checkBootstrapReferences(b), []);
  });

  it("rejects a non-object bootstrap at the root", () => {
    assertHasError(validateBootstrap([]), "<root>", "expected object");
  });

  describe("rejects a broken bootstrap, naming the path", () => {
    const cases: { what: string; mutate: (b: Json) => void; path: string; fragment: string }[] = [
      {
        what: "a misspelled field in the TLS context (require_client_certifcate)",
        mutate: (b) => {
          const tls = at(b, ...TLS_CTX);
          delete tls.require_client_certificate;
          tls.require_client_certifcate = true;
        },
        path: `${P_TLS}.require_client_certifcate`,
        fragment:
          'unknown field "require_client_certifcate" in envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext; did you mean "require_client_certificate"?',
      },
      {
        what: "a port given as the string abc",
        mutate: (b) => (at(b, ...[...LISTENER, "address", "socket_address"]).port_value = "abc"),
        path: "static_resources.listeners[0].address.socket_address.port_value",
        fragment: 'expected uint32 (integer number or decimal string), got string "abc"',
      },
      {
        what: "port 70000 (PGV lte 65535)",
        mutate: (b) => (at(b, ...[...LISTENER, "address", "socket_address"]).port_value = 70000),
        path: "static_resources.listeners[0].address.socket_address.port_value",
        fragment: "value 70000 must be <= 65535",
      },
      {
        what: "a negative uint32 port",
        mutate: (b) => (at(b, ...["admin", "address", "socket_address"]).port_value = -1),
        path: "admin.address.socket_address.port_value",
        fragment: "out of range for uint32",
      },
      {
        what: "a bool given as a string",
        mutate: (b) => (at(b, ...TLS_CTX).require_client_certificate = "true"),
        path: `${P_TLS}.require_client_certificate`,
        fragment: 'expected bool (true/false), got string "true"',
      },
      {
        what: "a string given as a number",
        mutate: (b) => (at(b, ...CLUSTER).name = 42),
        path: "static_resources.clusters[0].name",
        fragment: "expected string, got number 42",
      },
      {
        what: "an unknown enum value for tls_minimum_protocol_version",
        mutate: (b) =>
          (at(b, ...[...TLS_CTX, "common_tls_context", "tls_params"]).tls_minimum_protocol_version =
            "TLSv1_9"),
        path: `${P_TLS}.common_tls_context.tls_params.tls_minimum_protocol_version`,
        fragment: 'unknown enum value "TLSv1_9"',
      },
      {
        what: "connect_timeout given as a bare number",
        mutate: (b) => (at(b, ...CLUSTER).connect_timeout = 5),
        path: "static_resources.clusters[0].connect_timeout",
        fragment: "malformed Duration number 5",
      },
      {
        what: 'connect_timeout given as "5 seconds"',
        mutate: (b) => (at(b, ...CLUSTER).connect_timeout = "5 seconds"),
        path: "static_resources.clusters[0].connect_timeout",
        fragment: "malformed Duration",
      },
      {
        what: "connect_timeout of 0s (PGV duration gt 0)",
        mutate: (b) => (at(b, ...CLUSTER).connect_timeout = "0s"),
        path: "static_resources.clusters[0].connect_timeout",
        fragment: "Duration 0s must be > 0s",
      },
      {
        what: "a UInt32Value wrapper given as an object instead of a plain number",
        mutate: (b) => (at(b, ...CLUSTER).per_connection_buffer_limit_bytes = { value: 1024 }),
        path: "static_resources.clusters[0].per_connection_buffer_limit_bytes",
        fragment: "expected uint32",
      },
      {
        what: "an @type that does not resolve",
        mutate: (b) =>
          (at(b, ...[...HCM_CFG, "http_filters", 0, "typed_config"])["@type"] =
            "type.googleapis.com/envoy.extensions.filters.http.routr.v3.Router"),
        path: `${P_HCM}.http_filters[0].typed_config.@type`,
        fragment: "does not resolve to a message",
      },
      {
        what: "an @type without the type.googleapis.com/ prefix",
        mutate: (b) =>
          (at(b, ...[...HCM_CFG, "http_filters", 0, "typed_config"])["@type"] =
            "envoy.extensions.filters.http.router.v3.Router"),
        path: `${P_HCM}.http_filters[0].typed_config.@type`,
        fragment: "must look like type.googleapis.com/<message name>",
      },
      {
        what: "a typed_config missing its @type",
        mutate: (b) => delete at(b, ...[...HCM_CFG, "http_filters", 0, "typed_config"])["@type"],
        path: `${P_HCM}.http_filters[0].typed_config`,
        fragment: 'Any is missing its "@type"',
      },
      {
        what: "an unknown field inside a typed_config body",
        mutate: (b) =>
          (at(b, ...[...HCM_CFG, "http_filters", 0, "typed_config"]).dynamic_stat = true),
        path: `${P_HCM}.http_filters[0].typed_config.dynamic_stat`,
        fragment: 'unknown field "dynamic_stat" in envoy.extensions.filters.http.router.v3.Router',
      },
      {
        what: "an UpstreamTlsContext on a listener (wrong TLS direction)",
        mutate: (b) => {
          const tls = at(b, ...TLS_CTX);
          tls["@type"] = `${TLS}.UpstreamTlsContext`;
          delete tls.require_client_certificate;
        },
        path: `${P_TLS}.@type`,
        fragment: "is not a downstream transport socket config",
      },
      {
        what: "an HTTP filter config in a network filter slot",
        mutate: (b) => {
          const filter = at(b, ...[...CHAIN, "filters", 0]);
          filter.typed_config = { "@type": ROUTER };
        },
        path: `${P_HCM}.@type`,
        fragment: "is not a network filter config",
      },
      {
        what: "a route with both cluster and weighted_clusters (one oneof)",
        mutate: (b) =>
          (at(b, ...ROUTE).weighted_clusters = { clusters: [{ name: "app", weight: 1 }] }),
        path: P_ROUTE,
        fragment:
          '"cluster" and "weighted_clusters" are both set, but they belong to oneof "cluster_specifier"',
      },
      {
        what: "an address with both socket_address and pipe",
        mutate: (b) => (at(b, ...[...LISTENER, "address"]).pipe = { path: "/tmp/envoy.sock" }),
        path: "static_resources.listeners[0].address",
        fragment: 'belong to oneof "address"',
      },
      {
        what: "a socket address without a port (required oneof)",
        mutate: (b) => delete at(b, ...[...LISTENER, "address", "socket_address"]).port_value,
        path: "static_resources.listeners[0].address.socket_address",
        fragment: 'one of "port_value", "named_port" is required',
      },
      {
        what: "an HCM without route_config or rds (required oneof)",
        mutate: (b) => delete at(b, ...HCM_CFG).route_config,
        path: P_HCM,
        fragment: 'one of "rds", "route_config", "scoped_routes" is required',
      },
      {
        what: "an HCM without stat_prefix (PGV min_len 1)",
        mutate: (b) => delete at(b, ...HCM_CFG).stat_prefix,
        path: `${P_HCM}.stat_prefix`,
        fragment: "empty string is too short: min_len 1",
      },
      {
        what: "a cluster with an empty name (PGV min_len 1)",
        mutate: (b) => (at(b, ...CLUSTER).name = ""),
        path: "static_resources.clusters[0].name",
        fragment: "min_len 1",
      },
      {
        what: "a virtual host without domains (PGV repeated min_items 1)",
        mutate: (b) => (at(b, ...[...HCM_CFG, "route_config", "virtual_hosts", 0]).domains = []),
        path: `${P_HCM}.route_config.virtual_hosts[0].domains`,
        fragment: "needs at least 1 item(s), got 0",
      },
      {
        what: "a repeated field given as an object",
        mutate: (b) => (at(b, ...LISTENER).filter_chains = { transport_socket: {} }),
        path: "static_resources.listeners[0].filter_chains",
        fragment: 'expected array for repeated field "filter_chains", got object',
      },
      {
        what: "a map given as an array",
        mutate: (b) => (at(b, ...CLUSTER).metadata = { filter_metadata: [] }),
        path: "static_resources.clusters[0].metadata.filter_metadata",
        fragment: "expected map (JSON object)",
      },
      {
        what: "a Struct given as a string",
        mutate: (b) => (at(b, ...CLUSTER).metadata = { filter_metadata: { "envoy.lb": "canary" } }),
        path: 'static_resources.clusters[0].metadata.filter_metadata["envoy.lb"]',
        fragment: "expected Struct (JSON object)",
      },
      {
        what: "a field given twice, once snake_case and once lowerCamel",
        mutate: (b) => (at(b, ...CLUSTER).connectTimeout = "2s"),
        path: "static_resources.clusters[0].connectTimeout",
        fragment: 'field "connect_timeout" given twice',
      },
    ];

    for (const c of cases) {
      it(`rejects ${c.what}`, () => {
        const b = bootstrap();
        c.mutate(b);
        assertHasError(validateBootstrap(b), c.path, c.fragment);
      });
    }
  });

  it("warns about, but does not reject, a deprecated field", () => {
    const b = bootstrap();
    at(b, ...CLUSTER).http2_protocol_options = {};
    const result = validateBootstrapDetailed(b);
    assert.deepEqual(result.errors, []);
    assertHasError(
      result.warnings,
      "static_resources.clusters[0].http2_protocol_options",
      "deprecated",
    );
    assert.deepEqual(validateBootstrap(b), []);
  });

  it("validates a well-known type inside an Any by its value member", () => {
    const struct = "type.googleapis.com/google.protobuf.Struct";
    const ok = { name: "x", typed_config: { "@type": struct, value: { any: ["json", 1] } } };
    assert.deepEqual(validateEnvoyMessage("envoy.config.core.v3.TypedExtensionConfig", ok), []);
    const bad = { name: "x", typed_config: { "@type": struct, fields: {} } };
    assertHasError(
      validateEnvoyMessage("envoy.config.core.v3.TypedExtensionConfig", bad),
      "typed_config.fields",
      'has only "value"',
    );
  });

  it("validates a TypedStruct's value as the message its type_url names", () => {
    const config = {
      name: "envoy.filters.http.router",
      typed_config: {
        "@type": "type.googleapis.com/xds.type.v3.TypedStruct",
        type_url: ROUTER,
        value: { suppress_envoy_headers: true, suppress_envoy_header: true },
      },
    };
    const errors = validateEnvoyMessage("envoy.config.core.v3.TypedExtensionConfig", config);
    assert.equal(errors.length, 1, errors.join("\n"));
    assertHasError(errors, "typed_config.value.suppress_envoy_header", "unknown field");
  });

  it("reports work-in-progress APIs as warnings", () => {
    const result = validateEnvoyMessageDetailed(
      "envoy.extensions.key_value.file_based.v3.FileBasedKeyValueStoreConfig",
      { filename: "/var/lib/envoy/kv" },
    );
    assert.deepEqual(result.errors, []);
    assertHasError(result.warnings, "<root>", "work-in-progress");
  });

  it("refuses to validate against a message type that does not exist", () => {
    assert.throws(
      () => validateEnvoyMessage("envoy.config.bootstrap.v3.Bootstrapp", {}),
      /no message type/,
    );
  });
});

describe("Envoy start-up cross-reference checks", () => {
  const P_LISTENERS = "static_resources.listeners";

  function withSecondListener(address: Json, name = "other"): Json {
    const b = bootstrap();
    const listeners = at(b, ...["static_resources", "listeners"]) as unknown as Json[];
    const copy = structuredClone(listeners[0]);
    copy.name = name;
    copy.address = address;
    listeners.push(copy);
    return b;
  }

  it("rejects a route that names a cluster which is not defined", () => {
    const b = bootstrap();
    at(b, ...ROUTE).cluster = "bookapi";
    assert.deepEqual(validateBootstrap(b), [], "the schema alone cannot see this");
    assertHasError(
      checkBootstrapReferences(b),
      `${P_ROUTE}.cluster`,
      'cluster "bookapi" is not defined',
    );
  });

  it("follows cluster references written in lowerCamel too", () => {
    const b = camelize(bootstrap()) as Json;
    const route = at(
      b,
      ...[
        "staticResources",
        "listeners",
        0,
        "filterChains",
        0,
        "filters",
        0,
        "typedConfig",
        "routeConfig",
        "virtualHosts",
        0,
        "routes",
        0,
        "route",
      ],
    );
    route.cluster = "nope";
    const errors = checkBootstrapReferences(b);
    assert.equal(errors.length, 1, errors.join("\n"));
    assert.match(errors[0], /cluster "nope" is not defined/);
  });

  it("rejects two listeners on the same address and port", () => {
    const errors = checkBootstrapReferences(withSecondListener(socket("0.0.0.0", 15006)));
    assertHasError(
      errors,
      `${P_LISTENERS}[1].address.socket_address`,
      "0.0.0.0:15006/TCP collides with",
    );
  });

  it("rejects a listener on a specific IP when another takes the same port on 0.0.0.0", () => {
    const errors = checkBootstrapReferences(withSecondListener(socket("127.0.0.1", 15006)));
    assertHasError(errors, `${P_LISTENERS}[1].address.socket_address`, "collides with");
  });

  it("rejects a listener on the admin port", () => {
    const errors = checkBootstrapReferences(withSecondListener(socket("0.0.0.0", 9901)));
    assertHasError(
      errors,
      `${P_LISTENERS}[1].address.socket_address`,
      "collides with admin.address",
    );
  });

  it("accepts listeners on different ports, or on the same port over UDP", () => {
    assert.deepEqual(checkBootstrapReferences(withSecondListener(socket("0.0.0.0", 15001))), []);
    const udp = { socket_address: { address: "0.0.0.0", port_value: 15006, protocol: "UDP" } };
    assert.deepEqual(checkBootstrapReferences(withSecondListener(udp)), []);
  });

  it("rejects duplicate listener names and duplicate cluster names", () => {
    const b = withSecondListener(socket("0.0.0.0", 15001), "inbound");
    const clusters = at(b, ...["static_resources", "clusters"]) as unknown as Json[];
    clusters.push(structuredClone(clusters[0]));
    const errors = checkBootstrapReferences(b);
    assertHasError(errors, `${P_LISTENERS}[1].name`, 'duplicate listener name "inbound"');
    assertHasError(errors, "static_resources.clusters[1].name", 'duplicate cluster name "app"');
  });

  it("rejects a listener without an address and one bound to a host name", () => {
    const b = withSecondListener(socket("localhost", 15001));
    delete at(b, ...LISTENER).address;
    const errors = checkBootstrapReferences(b);
    assertHasError(errors, `${P_LISTENERS}[0]`, "listener has no address");
    assertHasError(
      errors,
      `${P_LISTENERS}[1].address.socket_address.address`,
      "is not an IP address",
    );
  });

  it("rejects a host name as an endpoint of a STATIC cluster", () => {
    const b = bootstrap();
    at(
      b,
      ...[...CLUSTER, "load_assignment", "endpoints", 0, "lb_endpoints", 0, "endpoint"],
    ).address = socket("bookapi.default.svc", 5288);
    assertHasError(
      checkBootstrapReferences(b),
      "static_resources.clusters[0].load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address",
      "STATIC clusters need IPs",
    );
  });

  it("rejects a router that is not the last HTTP filter", () => {
    const b = bootstrap();
    const filters = at(b, ...HCM_CFG).http_filters as Json[];
    filters.push({
      name: "envoy.filters.http.cors",
      typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors" },
    });
    const errors = checkBootstrapReferences(b);
    assertHasError(errors, `${P_HCM}.http_filters[0]`, "must be the last in the chain");
    assertHasError(errors, `${P_HCM}.http_filters[1]`, "the last HTTP filter must be terminal");
  });

  it("rejects two filter chains with the same match and duplicate virtual host domains", () => {
    const b = bootstrap();
    const chains = at(b, ...LISTENER).filter_chains as Json[];
    chains.push(structuredClone(chains[0]));
    const vhosts = at(b, ...[...HCM_CFG, "route_config"]).virtual_hosts as Json[];
    vhosts.push({ name: "again", domains: ["*"], routes: [] });
    const errors = checkBootstrapReferences(b);
    assertHasError(
      errors,
      `${P_LISTENERS}[0].filter_chains[1].filter_chain_match`,
      "same matching rules",
    );
    assertHasError(
      errors,
      `${P_HCM}.route_config.virtual_hosts[1].domains[0]`,
      'duplicate domain "*"',
    );
  });

  it("rejects a secret referenced by name that is neither static nor fetched via SDS", () => {
    const b = bootstrap();
    const sds = at(
      b,
      ...[...TLS_CTX, "common_tls_context", "tls_certificate_sds_secret_configs", 0],
    );
    delete sds.sds_config;
    assertHasError(
      checkBootstrapReferences(b),
      `${P_TLS}.common_tls_context.tls_certificate_sds_secret_configs[0].name`,
      'unknown static secret "mesh-cert"',
    );
  });

  it("lists every file the bootstrap makes Envoy read", () => {
    assert.deepEqual(referencedFiles(bootstrap()), [
      "/etc/envoy/sds",
      "/etc/envoy/sds/cert.json",
      "/etc/mesh/ca.pem",
    ]);
    assert.deepEqual(referencedFiles(camelize(bootstrap())), referencedFiles(bootstrap()));
  });
});

describe("file-based SDS validation", () => {
  const SECRET = `${TLS}.Secret`;
  function sdsFile(): Json {
    return {
      resources: [
        {
          "@type": SECRET,
          name: "mesh-cert",
          tls_certificate: {
            certificate_chain: { filename: "/etc/envoy/certs/cert.pem" },
            private_key: { filename: "/etc/envoy/certs/key.pem" },
          },
        },
      ],
    };
  }

  it("accepts a DiscoveryResponse carrying one TLS certificate secret", () => {
    assert.deepEqual(validateSdsFile(sdsFile(), "mesh-cert"), []);
    assert.deepEqual(referencedFiles(sdsFile()), [
      "/etc/envoy/certs/cert.pem",
      "/etc/envoy/certs/key.pem",
    ]);
  });

  it("rejects a secret resource with an unknown field", () => {
    const file = sdsFile();
    at(file, ...["resources", 0, "tls_certificate"]).private_key_file = "/etc/envoy/certs/key.pem";
    assertHasError(
      validateSdsFile(file),
      "resources[0].tls_certificate.private_key_file",
      'unknown field "private_key_file" in envoy.extensions.transport_sockets.tls.v3.TlsCertificate',
    );
  });

  it("rejects a file whose secret is not the one the sds_config asks for", () => {
    assertHasError(
      validateSdsFile(sdsFile(), "other-cert"),
      "resources[0].name",
      'expects secret "other-cert"',
    );
  });

  it("rejects a file with two secrets, a non-Secret resource, or no resources", () => {
    const two = sdsFile();
    const resources = two.resources as Json[];
    resources.push({ ...structuredClone(resources[0]), "@type": `${TLS}.DownstreamTlsContext` });
    delete resources[1].name;
    delete resources[1].tls_certificate;
    const errors = validateSdsFile(two);
    assertHasError(errors, "resources", "exactly 1 SDS secret, got 2");
    assertHasError(errors, "resources[1].@type", `expected "${SECRET}"`);
    assertHasError(validateSdsFile({}), "resources", "missing");
  });
});
