/**
 * Traffic: each `services[].traffic`, `egress` and Envoy-wide setting round-trips from stack
 * config to the exact Envoy fields (table-driven), the result passes Envoy's schema, and a model
 * of Envoy's route timeouts shows streams surviving where plain requests time out.
 */
import assert from "node:assert/strict";
import { loadMeshConfig, MeshModel } from "../components/config";
import {
  Bootstrap,
  Cluster,
  HttpConnectionManager,
  Listener,
  RouteAction,
  SYSTEM_CA_BUNDLE,
} from "../components/envoy";
import { ENVOY_FILES } from "../components/envoy/model";
import { gatewayFiles } from "../components/gateway";
import { trafficWarnings } from "../components/mesh";
import { envoyConcurrency } from "../components/pod";
import {
  checkBootstrapReferences,
  referencedFiles,
  validateBootstrapDetailed,
} from "./harness/envoy-schema";
import { findObject, runProgram, STACKS, stackConfig } from "./harness/program";
import {
  bootstrapOf,
  clusterOf,
  gatewayBootstrapOf,
  hcm,
  listenerOf,
  meshWith,
} from "./harness/traffic-fixtures";
import { acceptsConnectionsUnderPressure, servedUnderPressure } from "./harness/overload-model";
import { ResponseTimeline, routeOutcome } from "./harness/route-timeout-model";

type Json = Record<string, unknown>;

/** The caller's route actions to bookapi: [idempotent methods, other methods] (or just one). */
function outboundActions(model: MeshModel): RouteAction[] {
  const vh = hcm(
    listenerOf(bootstrapOf(model, "bookapi-mcp-server"), "outbound"),
  ).route_config.virtual_hosts.find((v) => v.name === "bookapi");
  assert.ok(vh);
  return vh.routes.map((r) => {
    assert.ok("route" in r);
    return r.route;
  });
}

/** bookapi's own route to its app. */
function inboundAction(model: MeshModel): RouteAction {
  const [route] = hcm(listenerOf(bootstrapOf(model, "bookapi"), "inbound")).route_config
    .virtual_hosts[0].routes;
  assert.ok("route" in route);
  return route.route;
}

describe("traffic policies round-trip to Envoy's fields", () => {
  const cases: Array<[string, Json, (m: MeshModel) => void]> = [
    [
      "no traffic settings: Envoy's 15 s route timeout, stated on both sides, and two retries",
      {},
      (m) => {
        const [idempotent, other] = outboundActions(m);
        assert.equal(idempotent.timeout, "15s");
        assert.equal(other.timeout, "15s");
        assert.equal(inboundAction(m).timeout, "15s");
        assert.equal(idempotent.idle_timeout, undefined);
        assert.equal(idempotent.retry_policy?.num_retries, 2);
        assert.equal(idempotent.retry_policy?.retry_on, "connect-failure,refused-stream,reset");
        // A POST is retried only when it never reached the app.
        assert.equal(
          other.retry_policy?.retry_on,
          "connect-failure,refused-stream,reset-before-request",
        );
      },
    ],
    [
      "timeout and idleTimeout in Envoy's units",
      { timeout: "2500ms", idleTimeout: "1m" },
      (m) => {
        for (const a of [...outboundActions(m), inboundAction(m)]) {
          assert.equal(a.timeout, "2.500s");
          assert.equal(a.idle_timeout, "60s");
        }
      },
    ],
    [
      "streaming: no route timeout anywhere, and an hour's idle timeout",
      { streaming: true },
      (m) => {
        for (const a of [...outboundActions(m), inboundAction(m)]) {
          assert.equal(a.timeout, "0s");
          assert.equal(a.idle_timeout, "3600s");
          assert.equal(a.retry_policy?.per_try_timeout, undefined);
        }
      },
    ],
    [
      "retries: attempts, conditions, per-try timeout, backoff, never the same pod twice",
      {
        timeout: "10s",
        retries: {
          attempts: 3,
          retryOn: "5xx,connect-failure",
          perTryTimeout: "2s",
          backoff: { base: "50ms", max: "1s" },
        },
      },
      (m) => {
        const [idempotent] = outboundActions(m);
        assert.deepEqual(idempotent.retry_policy, {
          retry_on: "5xx,connect-failure",
          num_retries: 3,
          per_try_timeout: "2s",
          retry_back_off: { base_interval: "0.050s", max_interval: "1s" },
          retry_host_predicate: [
            {
              name: "envoy.retry_host_predicates.previous_hosts",
              typed_config: {
                "@type":
                  "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate",
              },
            },
          ],
          host_selection_retry_max_attempts: 3,
        });
      },
    ],
    [
      "a per-try timeout only on idempotent requests, which alone may be retried once sent",
      { timeout: "10s", retries: { perTryTimeout: "3s" } },
      (m) => {
        const [idempotent, other] = outboundActions(m);
        assert.equal(idempotent.retry_policy?.per_try_timeout, "3s");
        assert.equal(other.retry_policy?.per_try_timeout, undefined);
      },
    ],
    [
      "no retries: one route, no retry policy",
      { retries: { attempts: 0 } },
      (m) => {
        const actions = outboundActions(m);
        assert.equal(actions.length, 1);
        assert.equal(actions[0].retry_policy, undefined);
      },
    ],
    [
      "circuit breaker, retry budget and outlier detection on the caller's cluster",
      {
        circuitBreaker: { maxConnections: 100, maxPendingRequests: 50, maxRequests: 200 },
        retries: { budget: { percent: 50, minConcurrency: 4 } },
        outlierDetection: {
          consecutiveGatewayErrors: 4,
          consecutiveLocalOriginFailures: 2,
          consecutive5xx: 3,
          ejectOnAppErrors: true,
          interval: "5s",
          baseEjectionTime: "1m",
          maxEjectionPercent: 34,
        },
      },
      (m) => {
        const c = clusterOf(bootstrapOf(m, "bookapi-mcp-server"), "upstream_bookapi");
        assert.deepEqual(c.circuit_breakers, {
          thresholds: [
            {
              priority: "DEFAULT",
              max_connections: 100,
              max_pending_requests: 50,
              max_requests: 200,
              retry_budget: { budget_percent: { value: 50 }, min_retry_concurrency: 4 },
            },
          ],
        });
        assert.deepEqual(c.outlier_detection, {
          split_external_local_origin_errors: true,
          consecutive_5xx: 3,
          enforcing_consecutive_5xx: 100,
          consecutive_gateway_failure: 4,
          enforcing_consecutive_gateway_failure: 100,
          consecutive_local_origin_failure: 2,
          enforcing_consecutive_local_origin_failure: 100,
          enforcing_success_rate: 100,
          interval: "5s",
          base_ejection_time: "60s",
          max_ejection_percent: 34,
        });
      },
    ],
    [
      "rate limit: a per-replica token bucket on the callee's inbound side, 429 with headers",
      { rateLimit: { requestsPerSecond: 50, burst: 100 } },
      (m) => {
        const filters = hcm(listenerOf(bootstrapOf(m, "bookapi"), "inbound")).http_filters;
        assert.deepEqual(
          filters.map((f) => f.name),
          [
            "envoy.filters.http.rbac",
            "envoy.filters.http.local_ratelimit",
            "envoy.filters.http.router",
          ],
        );
        const rl = filters[1].typed_config as unknown as Json;
        assert.deepEqual(rl.token_bucket, {
          max_tokens: 100,
          tokens_per_fill: 50,
          fill_interval: "1s",
        });
        assert.deepEqual(rl.status, { code: "TooManyRequests" });
        assert.equal(rl.enable_x_ratelimit_headers, "DRAFT_VERSION_03");
        assert.deepEqual((rl.filter_enforced as Json).default_value, {
          numerator: 100,
          denominator: "HUNDRED",
        });
        // The caller's side is untouched.
        const outbound = hcm(listenerOf(bootstrapOf(m, "bookapi-mcp-server"), "outbound"));
        assert.ok(
          !outbound.http_filters.some((f) => f.name === "envoy.filters.http.local_ratelimit"),
        );
      },
    ],
    [
      "session affinity: the envelope session state on the caller's routes, which keeps the app's header value",
      { sessionAffinity: { header: "Mcp-Session-Id" } },
      (m) => {
        const outbound = hcm(listenerOf(bootstrapOf(m, "bookapi-mcp-server"), "outbound"));
        assert.deepEqual(
          outbound.http_filters.map((f) => f.name),
          ["envoy.filters.http.stateful_session", "envoy.filters.http.router"],
        );
        const vh = outbound.route_config.virtual_hosts.find((v) => v.name === "bookapi");
        for (const r of vh?.routes ?? []) {
          assert.ok("route" in r);
          assert.deepEqual(r.typed_per_filter_config?.["envoy.filters.http.stateful_session"], {
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
        }
      },
    ],
  ];
  for (const [what, traffic, check] of cases) {
    it(`maps ${what}`, () => check(meshWith(traffic)));
  }

  it("balances each callee's pods per request (least request) through its headless Service, re-resolved every 5 s", () => {
    const c = clusterOf(bootstrapOf(meshWith({}), "bookapi-mcp-server"), "upstream_bookapi");
    assert.equal(c.cluster_type?.name, "envoy.cluster.dns");
    assert.equal(c.cluster_type.typed_config.all_addresses_in_single_endpoint, false);
    assert.equal(c.lb_policy, "LEAST_REQUEST");
    assert.equal(c.cluster_type.typed_config.dns_refresh_rate, "5s");
    assert.equal(
      c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.address,
      "bookapi-pods.default.svc.cluster.local.",
    );
  });

  it("retires idle pooled connections before common app keep-alives and rotates sidecar connections every 5 minutes", () => {
    const b = bootstrapOf(meshWith({}), "bookapi-mcp-server");
    const options = (c: Cluster) =>
      c.typed_extension_protocol_options?.["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
        .common_http_protocol_options;
    assert.deepEqual(options(clusterOf(b, "local_app")), { idle_timeout: "4s" });
    assert.deepEqual(options(clusterOf(b, "upstream_bookapi")), {
      idle_timeout: "30s",
      max_connection_duration: "300s",
    });
  });

  it("states stream_idle_timeout on every HTTP connection manager and matches hosts with or without a port", () => {
    const b = bootstrapOf(meshWith({}), "bookapi-mcp-server");
    for (const l of b.static_resources.listeners) assert.equal(hcm(l).stream_idle_timeout, "300s");
    const outbound = hcm(listenerOf(b, "outbound")).route_config;
    assert.equal(outbound.ignore_port_in_host_matching, true);
    assert.ok(!outbound.virtual_hosts.some((v) => v.domains.some((d) => d.includes(":"))));
  });

  it("writes JSON access logs with the peer's identity, and none when envoy.accessLog is false", () => {
    const on = bootstrapOf(meshWith({}), "bookapi-mcp-server");
    const format = (l: Listener) =>
      hcm(l).access_log?.[0].typed_config.log_format.json_format ?? {};
    assert.equal(format(listenerOf(on, "inbound")).peer, "%DOWNSTREAM_PEER_URI_SAN%");
    assert.equal(format(listenerOf(on, "outbound")).peer, "%UPSTREAM_PEER_URI_SAN%");
    for (const key of [
      "start_time",
      "method",
      "path",
      "status",
      "response_flags",
      "duration_ms",
      "upstream_host",
    ])
      assert.ok(key in format(listenerOf(on, "inbound")), key);
    const off = bootstrapOf(meshWith({}, {}, { accessLog: false }), "bookapi-mcp-server");
    assert.ok(off.static_resources.listeners.every((l) => hcm(l).access_log === undefined));
  });

  it("logs what on-call needs per request (time to first byte, attempts, the upstream's transport failure, termination, trace id) and one line per mTLS connection with the handshake's failure reason", () => {
    const on = bootstrapOf(meshWith({}), "bookapi-mcp-server");
    const format = (l: Listener) =>
      hcm(l).access_log?.[0].typed_config.log_format.json_format ?? {};
    for (const l of ["inbound", "outbound"])
      assert.deepEqual(
        {
          ttfb: format(listenerOf(on, l)).ttfb_ms,
          attempts: format(listenerOf(on, l)).attempts,
          upstream: format(listenerOf(on, l)).upstream_failure,
          termination: format(listenerOf(on, l)).termination,
          trace: format(listenerOf(on, l)).trace_id,
        },
        {
          ttfb: "%RESPONSE_DURATION%",
          attempts: "%UPSTREAM_REQUEST_ATTEMPT_COUNT%",
          upstream: "%UPSTREAM_TRANSPORT_FAILURE_REASON%",
          termination: "%CONNECTION_TERMINATION_DETAILS%",
          trace: "%TRACE_ID%",
        },
        l,
      );
    const connections = (l: Listener) => l.access_log?.[0].typed_config.log_format.json_format;
    assert.equal(
      connections(listenerOf(on, "inbound"))?.tls_failure,
      "%DOWNSTREAM_TRANSPORT_FAILURE_REASON%",
    );
    assert.equal(
      connections(listenerOf(on, "outbound")),
      undefined,
      "plain loopback: no handshake",
    );
    const gateway = gatewayBootstrapOf(loadMeshConfig(stackConfig("dev")));
    assert.equal(
      connections(listenerOf(gateway, "gateway"))?.tls_failure,
      "%DOWNSTREAM_TRANSPORT_FAILURE_REASON%",
    );
    const off = bootstrapOf(meshWith({}, {}, { accessLog: false }), "bookapi-mcp-server");
    assert.ok(off.static_resources.listeners.every((l) => l.access_log === undefined));
  });

  it("sizes the overload manager and worker threads from the sidecar's limits", () => {
    const model = meshWith({}, {}, { resources: { limits: { cpu: "1500m", memory: "200Mi" } } });
    const om = bootstrapOf(model, "bookapi").overload_manager;
    const heap = om.resource_monitors[0].typed_config as { max_heap_size_bytes: number };
    assert.equal(heap.max_heap_size_bytes, Math.floor(200 * 2 ** 20 * 0.8));
    assert.deepEqual(
      om.actions.map((a) => [a.name, a.triggers[0].threshold.value]),
      [
        ["envoy.overload_actions.shrink_heap", 0.9],
        ["envoy.overload_actions.stop_accepting_requests", 0.95],
        ["envoy.overload_actions.reject_incoming_connections", 0.98],
      ],
    );
    const conns = om.resource_monitors[1].typed_config as {
      max_active_downstream_connections: number;
    };
    assert.equal(conns.max_active_downstream_connections, 10000);
    assert.equal(envoyConcurrency(model.envoy), 2);
    assert.equal(envoyConcurrency(meshWith({}).envoy), 1, "500m, the default limit");
  });

  it("keeps the health and metrics listeners answering when the heap is past the overload thresholds, while traffic gets 503 and then has its new connections closed", () => {
    const prod = loadMeshConfig(stackConfig("prod"));
    const gateway = JSON.parse(
      gatewayFiles(prod, prod.gateway as NonNullable<MeshModel["gateway"]>)[ENVOY_FILES.bootstrap],
    ) as Bootstrap;
    for (const bootstrap of [bootstrapOf(prod, "bookapi-mcp-server"), gateway]) {
      const calm = servedUnderPressure(bootstrap, 0.5);
      assert.ok(Object.values(calm).every(Boolean), JSON.stringify(calm));
      const overloaded = servedUnderPressure(bootstrap, 0.96);
      const served = Object.keys(overloaded).filter((name) => overloaded[name]);
      assert.deepEqual(served.sort(), ["health", "metrics"], JSON.stringify(overloaded));
      // New connections are still taken at 96 % (a 503 is cheaper than a refused handshake to
      // diagnose), closed on accept from 98 % on the data listeners only.
      const accepting = acceptsConnectionsUnderPressure(bootstrap, 0.96);
      assert.ok(Object.values(accepting).every(Boolean), JSON.stringify(accepting));
      const full = acceptsConnectionsUnderPressure(bootstrap, 0.98);
      const kept = Object.keys(full).filter((name) => full[name]);
      assert.deepEqual(kept.sort(), ["health", "metrics"], JSON.stringify(full));
    }
  });

  it("produces bootstraps that pass Envoy's schema and start-up checks with every setting on", () => {
    const model = meshWith(
      {
        timeout: "5s",
        idleTimeout: "30s",
        retries: { perTryTimeout: "1s" },
        rateLimit: { requestsPerSecond: 10 },
        sessionAffinity: { header: "mcp-session-id" },
      },
      {
        egress: [
          { name: "payments", host: "api.payments.example.com", port: 443, protocol: "https" },
          { name: "legacy", host: "legacy.example.com", port: 80, protocol: "http" },
          { name: "db", host: "10.20.0.5", port: 5432, protocol: "tcp", cidrs: ["10.20.0.5/32"] },
        ],
      },
    );
    for (const service of ["bookapi", "bookapi-mcp-server"]) {
      const b = JSON.parse(JSON.stringify(bootstrapOf(model, service))) as Json;
      const result = validateBootstrapDetailed(b);
      assert.deepEqual(result.errors, [], service);
      assert.deepEqual(result.warnings, [], service);
      assert.deepEqual(checkBootstrapReferences(b), [], service);
    }
    // Files outside the pod's mounts: only the image's CA bundle, for the https egress.
    const files = referencedFiles(
      JSON.parse(JSON.stringify(bootstrapOf(model, "bookapi-mcp-server"))),
    );
    assert.deepEqual(
      files.filter((f) => !f.startsWith("/etc/envoy/")),
      [SYSTEM_CA_BUNDLE],
    );
  });
});

describe("egress beyond the mesh", () => {
  const egress = [
    { name: "payments", host: "api.payments.example.com", port: 443, protocol: "https" },
    {
      name: "orders-db",
      host: "orders.db.example.com",
      port: 5432,
      protocol: "tcp",
      cidrs: ["10.20.0.0/24"],
    },
  ];
  const model = () => meshWith({}, { egress });

  it("reaches an https host through the outbound listener, originating TLS with SNI and the system CAs", () => {
    const b = bootstrapOf(model(), "bookapi-mcp-server");
    const vh = hcm(listenerOf(b, "outbound")).route_config.virtual_hosts.find(
      (v) => v.name === "egress_payments",
    );
    assert.deepEqual(vh?.domains, ["api.payments.example.com"]);
    const c = clusterOf(b, "egress_payments");
    // Logical DNS: one host at the address the name last resolved to.
    assert.equal(c.cluster_type?.typed_config.all_addresses_in_single_endpoint, true);
    assert.deepEqual(
      c.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address,
      {
        address: "api.payments.example.com",
        port_value: 443,
      },
    );
    const tls = c.transport_socket?.typed_config as unknown as Json;
    assert.equal(tls.sni, "api.payments.example.com");
    assert.deepEqual((tls.common_tls_context as Json).validation_context, {
      trusted_ca: { filename: SYSTEM_CA_BUNDLE },
      match_typed_subject_alt_names: [
        { san_type: "DNS", matcher: { exact: "api.payments.example.com" } },
      ],
    });
  });

  it("sends no SNI to an https target named by address (RFC 6066), and checks its IP SAN instead", () => {
    const m = meshWith(
      {},
      { egress: [{ name: "ip", host: "192.0.2.10", port: 443, protocol: "https" }] },
    );
    const tls = clusterOf(bootstrapOf(m, "bookapi-mcp-server"), "egress_ip").transport_socket
      ?.typed_config as unknown as Json;
    assert.equal(tls.sni, undefined);
    assert.deepEqual(
      ((tls.common_tls_context as Json).validation_context as Json).match_typed_subject_alt_names,
      [{ san_type: "IP_ADDRESS", matcher: { exact: "192.0.2.10" } }],
    );
  });

  it("gives a tcp target its own loopback listener, proxied to the host, and tells the app where", async () => {
    const b = bootstrapOf(model(), "bookapi-mcp-server");
    const l = listenerOf(b, "egress_orders-db");
    assert.deepEqual(l.address.socket_address, { address: "127.0.0.1", port_value: 15100 });
    assert.equal(l.filter_chains[0].filters[0].name, "envoy.filters.network.tcp_proxy");
    const config = stackConfig("prod");
    const services = JSON.parse(config["bookapi-mesh:services"]) as Json[];
    services[1] = { ...services[1], egress };
    const run = await runProgram({ ...config, "bookapi-mesh:services": JSON.stringify(services) });
    const pod = (
      findObject(run, "Deployment", "bookapi-mcp-server").inputs.spec as {
        template: { spec: { containers: Array<{ name: string; env?: Json[] }> } };
      }
    ).template.spec;
    const env = pod.containers.find((c) => c.name === "app")?.env ?? [];
    assert.deepEqual(
      env.filter((e) => String(e.name).startsWith("EGRESS_")),
      [{ name: "EGRESS_ORDERS_DB_ADDR", value: "127.0.0.1:15100" }],
    );
    // The NetworkPolicy opens each entry's port: to its CIDRs, or to any address.
    const policy = findObject(run, "NetworkPolicy", "bookapi-mcp-server-mesh").inputs.spec as {
      egress: Json[];
    };
    assert.deepEqual(
      policy.egress.filter(
        (r) => JSON.stringify(r).includes("5432") || JSON.stringify(r).includes("443"),
      ),
      [
        { ports: [{ protocol: "TCP", port: 5432 }], to: [{ ipBlock: { cidr: "10.20.0.0/24" } }] },
        { ports: [{ protocol: "TCP", port: 443 }] },
      ].sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? 1 : -1)),
    );
  });
});

describe("streams and timeouts (a model of Envoy's route timeouts over the prod stack's routes)", () => {
  const prod = loadMeshConfig(stackConfig("prod"));
  const mcpInbound = hcm(listenerOf(bootstrapOf(prod, "bookapi-mcp-server"), "inbound"));
  const bookapiInbound = hcm(listenerOf(bootstrapOf(prod, "bookapi"), "inbound"));
  const callerOutbound = hcm(listenerOf(bootstrapOf(prod, "bookapi-mcp-server"), "outbound"));
  const routeOf = (h: HttpConnectionManager, vhost?: string) => {
    const vh = h.route_config.virtual_hosts.find((v) => vhost === undefined || v.name === vhost);
    const r = vh?.routes.at(-1);
    assert.ok(r && "route" in r);
    return r.route;
  };

  /** A Server-Sent-Events stream: headers at once, an event every 30 s, for 20 minutes. */
  const sse: ResponseTimeline = {
    headersAt: 0.05,
    chunksAt: Array.from({ length: 40 }, (_, i) => 30 * (i + 1)),
    endAt: 1200,
  };

  it("keeps a 20-minute event stream of the streaming MCP server open, longer than any timeout set", () => {
    assert.deepEqual(routeOutcome(routeOf(mcpInbound), mcpInbound, sse), { kind: "completed" });
  });

  it("cuts the same stream at 15 s on a plain service, and did so on the MCP server before (no timeout set)", () => {
    assert.deepEqual(routeOutcome(routeOf(bookapiInbound), bookapiInbound, sse), {
      kind: "reset mid-body (UT)",
      at: 15,
    });
    assert.deepEqual(routeOutcome({}, { stream_idle_timeout: "300s" }, sse), {
      kind: "reset mid-body (UT)",
      at: 15,
    });
  });

  it("answers a plain request that takes too long with 504 at its timeout, on both sidecars", () => {
    const slow: ResponseTimeline = { headersAt: 20, chunksAt: [], endAt: 20.1 };
    for (const [h, vhost] of [
      [bookapiInbound, undefined],
      [callerOutbound, "bookapi"],
    ] as const)
      assert.deepEqual(routeOutcome(routeOf(h, vhost), h, slow), { kind: "504 UT", at: 15 });
    const quick: ResponseTimeline = { headersAt: 0.2, chunksAt: [0.3], endAt: 0.4 };
    assert.deepEqual(routeOutcome(routeOf(bookapiInbound), bookapiInbound, quick), {
      kind: "completed",
    });
  });

  it("still ends a stream that stays silent for longer than its idle timeout", () => {
    const silent: ResponseTimeline = { headersAt: 0.05, chunksAt: [60], endAt: 60 + 3700 };
    assert.deepEqual(routeOutcome(routeOf(mcpInbound), mcpInbound, silent), {
      kind: "idle timeout (SI)",
      at: 3660,
    });
  });
});

describe("the shipped stacks", () => {
  for (const stack of STACKS) {
    it(`mark bookapi-mcp-server streaming, with MCP session affinity, and bookapi plain, in ${stack}`, () => {
      const model = loadMeshConfig(stackConfig(stack));
      const of = (name: string) => model.services.find((s) => s.name === name)?.traffic;
      assert.equal(of("bookapi-mcp-server")?.streaming, true);
      assert.deepEqual(of("bookapi-mcp-server")?.sessionAffinity, { header: "mcp-session-id" });
      assert.equal(of("bookapi")?.streaming, false);
    });
  }
});

describe("traffic warnings at preview", () => {
  it("says that session affinity on a service nothing in the mesh calls pins nothing, and is quiet once the gateway routes to it, as in the shipped stacks", () => {
    const { "bookapi-mesh:gateway": gateway, ...withoutGateway } = stackConfig("prod");
    assert.ok(gateway);
    const warnings = trafficWarnings(loadMeshConfig(withoutGateway));
    assert.ok(
      warnings.some((w) => w.startsWith('services "bookapi-mcp-server": traffic.sessionAffinity')),
      warnings.join("\n"),
    );
    assert.deepEqual(trafficWarnings(loadMeshConfig(stackConfig("prod"))), []);
    const called = meshWith({ sessionAffinity: { header: "mcp-session-id" } });
    assert.deepEqual(trafficWarnings(called), []);
  });

  it("says when the ejection ceiling is below one pod's share, so outlier detection could never eject", () => {
    const config = stackConfig("prod");
    const services = JSON.parse(config["bookapi-mesh:services"]) as Json[];
    services[0] = { ...services[0], traffic: { outlierDetection: { maxEjectionPercent: 30 } } };
    const warnings = trafficWarnings(
      loadMeshConfig({ ...config, "bookapi-mesh:services": JSON.stringify(services) }),
    );
    assert.ok(
      warnings.some((w) => w.includes("maxEjectionPercent 30 is less than one pod of 3 (34 %)")),
      warnings.join("\n"),
    );
  });
});
