/**
 * Traffic at scale: HTTP/2 between Envoys with bounded pools, keepalives, outlier detection that
 * tells app errors from dead pods, retry budgets, the gateway's public face, IPv6 binding and the
 * vendored Envoy API. Each behaviour is shown on the generated config: with real sockets (TLS with
 * ALPN, HTTP/2, dual-stack binding) or with a model of Envoy written from its source
 * (tests/harness/pool-model.ts, outlier-model.ts, retry-budget-model.ts, jwt-authn-model.ts).
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as http2 from "node:http2";
import * as net from "node:net";
import * as path from "node:path";
import { loadMeshConfig } from "../components/config";
import { Bootstrap } from "../components/envoy";
import {
  breakerLimits,
  BREAKER_HEAP_SHARE,
  MESH_CONNECTION_BUFFER_BYTES,
  MESH_HTTP2,
  REQUEST_BUFFER_BYTES,
} from "../components/envoy/connections";
import { ERROR_BODIES } from "../components/envoy/listeners";
import { validateBootstrapDetailed, validateBootstrapWith } from "./harness/envoy-schema";
import { evaluate, mappedLocalReply } from "./harness/jwt-authn-model";
import { inboundListener, sidecar, upstreamCluster } from "./harness/mtls";
import { OutlierModel } from "./harness/outlier-model";
import { firstRefusal, meshPoolSetups, openStreams, TABLE_HOSTS } from "./harness/pool-model";
import { devGatewayBreaker, devPoolTable } from "./harness/pool-table";
import { once, runStack, STACKS, stackConfig } from "./harness/program";
import {
  bootstrapOf,
  clusterOf,
  gatewayBootstrapOf,
  hcm,
  listenerOf,
  meshWith,
} from "./harness/traffic-fixtures";
import { podDeath } from "./harness/retry-budget-model";

type Json = Record<string, unknown>;

/** Every Envoy of a shipped stack: each service's sidecar and the gateway (built once). */
const envoysOf = once(buildEnvoys);

function buildEnvoys(stack: string): { name: string; bootstrap: Bootstrap; heap: number }[] {
  const model = loadMeshConfig(stackConfig(stack));
  const heapOf = (b: Bootstrap) =>
    (b.overload_manager.resource_monitors[0].typed_config as { max_heap_size_bytes: number })
      .max_heap_size_bytes;
  const all = [
    ...model.services.map((s) => ({ name: s.name, bootstrap: bootstrapOf(model, s.name) })),
    ...(model.gateway ? [{ name: model.gateway.name, bootstrap: gatewayBootstrapOf(model) }] : []),
  ];
  return all.map((e) => ({ ...e, heap: heapOf(e.bootstrap) }));
}

const meshClusters = (b: Bootstrap) =>
  b.static_resources.clusters.filter((c) => c.name.startsWith("upstream_"));
/** Listeners other pods or the kubelet reach (not bound to loopback). */
const podListeners = (b: Bootstrap) =>
  b.static_resources.listeners.filter((l) => l.address.socket_address.address !== "127.0.0.1");

describe("traffic at scale", function () {
  describe("HTTP/2 between Envoys, with bounded pools", () => {
    it("speaks HTTP/2 to an http2 dependency (negotiated by ALPN, HTTP/1.1 as fallback) and HTTP/1.1 only to an http1 one", () => {
      for (const [protocol, alpn] of [
        ["http2", ["h2", "http/1.1"]],
        ["http1", ["http/1.1"]],
      ] as const) {
        const model = meshWith({ protocol });
        const c = clusterOf(bootstrapOf(model, "bookapi-mcp-server"), "upstream_bookapi");
        const options = c.typed_extension_protocol_options?.[
          "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
        ] as Json;
        if (protocol === "http2")
          assert.deepEqual(options.auto_config, {
            http_protocol_options: {},
            http2_protocol_options: {
              max_concurrent_streams: 100,
              initial_stream_window_size: 65536,
              initial_connection_window_size: 1048576,
              connection_keepalive: { interval: "30s", timeout: "10s" },
            },
          });
        else assert.deepEqual(options.explicit_http_config, { http_protocol_options: {} });
        const offered = c.transport_socket?.typed_config.common_tls_context;
        assert.ok(offered && "alpn_protocols" in offered);
        assert.deepEqual(offered.alpn_protocols, alpn);
        const inbound = listenerOf(bootstrapOf(model, "bookapi"), "inbound");
        const tls = inbound.filter_chains[0].transport_socket?.typed_config;
        assert.deepEqual(tls?.common_tls_context.alpn_protocols, alpn, "the callee accepts it");
        // The hop to the app stays HTTP/1.1 either way.
        const app = clusterOf(bootstrapOf(model, "bookapi"), "local_app")
          .typed_extension_protocol_options?.[
          "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
        ] as Json;
        assert.deepEqual(app.explicit_http_config, { http_protocol_options: {} });
      }
    });

    it("carries an open SSE stream and parallel requests on one HTTP/2 connection, between a real server and client set up from the generated TLS contexts and HTTP/2 settings", async () => {
      const run = await runStack("dev");
      const callee = inboundListener(sidecar(run, "bookapi")).tls;
      const caller = upstreamCluster(sidecar(run, "bookapi-mcp-server"), "upstream_bookapi");
      const inbound = listenerOf(
        sidecar(run, "bookapi").bootstrap as unknown as Bootstrap,
        "inbound",
      );
      const h2 = hcm(inbound).http2_protocol_options;
      assert.ok(h2 && callee.alpn && caller.alpn);
      const sessions: http2.ServerHttp2Session[] = [];
      let open = 0;
      let peak = 0;
      const sse: http2.ServerHttp2Stream[] = [];
      const server = http2.createSecureServer({
        key: callee.key,
        cert: callee.cert,
        ca: callee.ca,
        requestCert: true,
        rejectUnauthorized: true,
        ALPNProtocols: callee.alpn,
        settings: {
          maxConcurrentStreams: h2.max_concurrent_streams,
          initialWindowSize: h2.initial_stream_window_size,
        },
      });
      server.on("session", (s) => sessions.push(s));
      server.on("stream", (stream, headers) => {
        peak = Math.max(peak, ++open);
        stream.on("close", () => open--);
        if (headers[":path"] === "/mcp") {
          stream.respond({ ":status": 200, "content-type": "text/event-stream" });
          stream.write("data: open\n\n");
          sse.push(stream);
        } else {
          stream.respond({ ":status": 200 });
          stream.end("ok");
        }
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      const port = (server.address() as net.AddressInfo).port;
      const client = http2.connect(`https://127.0.0.1:${port}`, {
        key: caller.key,
        cert: caller.cert,
        ca: caller.ca,
        servername: caller.sni,
        ALPNProtocols: caller.alpn,
        // Envoy checks the SAN itself (tests/mtls.spec.ts); node's hostname check is not it.
        checkServerIdentity: () => undefined,
      });
      try {
        const stream = client.request({ ":path": "/mcp", ":method": "GET" });
        await new Promise<void>((resolve) => stream.once("data", () => resolve()));
        const get = () =>
          new Promise<number>((resolve, reject) => {
            const r = client.request({ ":path": "/books", ":method": "GET" });
            r.on("response", (h) => resolve(Number(h[":status"])));
            r.on("error", reject);
            r.resume();
          });
        const statuses = await Promise.all(Array.from({ length: 20 }, get));
        assert.deepEqual(new Set(statuses), new Set([200]));
        assert.equal(sessions.length, 1, "one connection for the stream and every request");
        assert.ok(peak >= 2 && peak <= h2.max_concurrent_streams, `peak ${peak}`);
        assert.equal(client.remoteSettings.maxConcurrentStreams, MESH_HTTP2.maxConcurrentStreams);
        assert.equal(client.remoteSettings.initialWindowSize, MESH_HTTP2.streamWindowBytes);
        assert.equal(sse.length, 1);
        assert.ok(!sse[0].closed, "the SSE stream is still open");
        stream.close();
      } finally {
        client.close();
        for (const s of sessions) s.destroy();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    });

    it("sizes every dependency's breaker from the calling Envoy's heap, so full windows at the limit fill at most half of it, with a small pending queue", () => {
      for (const stack of STACKS)
        for (const envoy of envoysOf(stack))
          for (const c of meshClusters(envoy.bootstrap)) {
            const t = c.circuit_breakers?.thresholds[0];
            assert.ok(t, `${stack} ${envoy.name} ${c.name}`);
            assert.ok(t.max_requests * REQUEST_BUFFER_BYTES <= BREAKER_HEAP_SHARE * envoy.heap);
            assert.ok(
              (t.max_requests + 1) * REQUEST_BUFFER_BYTES > BREAKER_HEAP_SHARE * envoy.heap,
            );
            assert.equal(t.max_connections, t.max_requests);
            assert.equal(t.max_pending_requests, 256);
            assert.ok(
              (c.per_connection_buffer_limit_bytes ?? 0) <= MESH_CONNECTION_BUFFER_BYTES,
              "an HTTP/1.1 connection buffers no more than a stream window",
            );
          }
      // An explicit limit wins over the sizing.
      const set = breakerLimits(200 * 2 ** 20, { maxPendingRequests: 8, maxRequests: 50 });
      assert.deepEqual(set, { maxConnections: 50, maxPendingRequests: 8, maxRequests: 50 });
    });

    it("refuses the streams past the breaker at once over HTTP/2, where HTTP/1.1 with the old limits left a thousand waiting with no timeout", () => {
      const breaker = devGatewayBreaker();
      const [before, http1, h2] = meshPoolSetups(breaker);
      const past = breaker.maxRequests + 500;
      const old = openStreams("http1", 2000, before.limits, TABLE_HOSTS);
      assert.deepEqual([old.active, old.waiting, old.refused], [1024, 976, 0]);
      const now = openStreams("http2", past, h2.limits, TABLE_HOSTS);
      assert.deepEqual([now.active, now.waiting, now.refused], [breaker.maxRequests, 0, 500]);
      assert.equal(
        now.connections,
        TABLE_HOSTS * Math.ceil(breaker.maxRequests / TABLE_HOSTS / 100),
      );
      const one = openStreams("http1", past, http1.limits, TABLE_HOSTS);
      assert.equal(one.waiting, breaker.maxPendingRequests, "http1 still queues, but only 256");
      assert.equal(firstRefusal("http2", h2.limits, TABLE_HOSTS), breaker.maxRequests + 1);
      assert.ok(now.memoryBytes * 4 < one.memoryBytes, "HTTP/2 holds far fewer TLS connections");
    });

    it("documents in docs/traffic.md the pool table the model computes from the generated gateway config", () => {
      const table = devPoolTable();
      const docs = fs.readFileSync(path.join(__dirname, "..", "docs", "traffic.md"), "utf8");
      const block = /<!-- pool-table -->\n([\s\S]*?)\n<!-- \/pool-table -->/.exec(docs);
      assert.ok(block, "docs/traffic.md has a <!-- pool-table --> block");
      // Prettier pads table cells; compare cell by cell.
      const cells = (text: string) =>
        text
          .split("\n")
          .map((line) => line.trim())
          .filter((line) => line !== "")
          .map((line) =>
            line.startsWith("|")
              ? line
                  .split("|")
                  .map((c) => c.trim())
                  .map((c) => (/^-+$/.test(c) ? "---" : c))
                  .join("|")
              : line,
          );
      assert.deepEqual(cells(block[1]), cells(table));
    });
  });

  describe("keepalives", () => {
    // How long a vanished peer can hold resources follows from these settings (docs/traffic.md,
    // "Keepalives"); no timing is measured here.
    it("turns on TCP keepalive on every listener other pods reach and every mesh and egress cluster, and HTTP/2 PING on mesh connections and at the edge", () => {
      for (const stack of STACKS)
        for (const envoy of envoysOf(stack)) {
          const data = podListeners(envoy.bootstrap).filter(
            (l) => l.name !== "health" && l.name !== "metrics",
          );
          assert.ok(data.length > 0);
          for (const l of data) {
            const options = Object.fromEntries(
              (l.socket_options ?? []).map((o) => [o.description, o.int_value]),
            );
            assert.deepEqual(
              options,
              {
                SO_KEEPALIVE: 1,
                TCP_KEEPIDLE: 60,
                TCP_KEEPINTVL: 10,
                TCP_KEEPCNT: 3,
                TCP_USER_TIMEOUT: 90000,
              },
              `${stack} ${envoy.name} ${l.name}`,
            );
            assert.deepEqual(hcm(l).http2_protocol_options?.connection_keepalive, {
              interval: "30s",
              timeout: "10s",
            });
          }
          for (const c of envoy.bootstrap.static_resources.clusters.filter(
            (x) => x.name.startsWith("upstream_") || x.name.startsWith("egress_"),
          ))
            assert.deepEqual(c.upstream_connection_options?.tcp_keepalive, {
              keepalive_probes: 3,
              keepalive_time: 60,
              keepalive_interval: 10,
            });
        }
    });
  });

  describe("outlier detection", () => {
    const generated = (traffic: Json = {}) =>
      clusterOf(bootstrapOf(meshWith(traffic), "bookapi-mcp-server"), "upstream_bookapi")
        .outlier_detection as unknown as Json;

    it("keeps a pod whose app answers 500 in the pool, and the session pinned to it", () => {
      const od = new OutlierModel(generated(), ["pod-a", "pod-b"]);
      for (let i = 0; i < 20; i++) od.record("pod-a", { status: 500 });
      assert.equal(od.isEjected("pod-a", 1), false);
      assert.equal(od.pinnedHost("pod-a", 1), "pod-a");
    });

    it("ejects a pod after 5 gateway errors in a row (its sidecar cannot reach its app) or 5 local-origin failures, and its sessions move", () => {
      for (const failure of [{ status: 503 }, { localOrigin: "connect-failure" }] as const) {
        const od = new OutlierModel(generated(), ["pod-a", "pod-b"]);
        for (let i = 0; i < 4; i++) od.record("pod-a", failure);
        assert.equal(od.isEjected("pod-a", 1), false, "four are not enough");
        od.record("pod-a", failure);
        assert.equal(od.isEjected("pod-a", 1), true, JSON.stringify(failure));
        assert.equal(od.pinnedHost("pod-a", 1), undefined);
        assert.equal(od.isEjected("pod-a", 31), false, "back after the 30 s ejection");
      }
    });

    it("counts connect failures apart from replies: an app's 500 between them does not restart the count", () => {
      const od = new OutlierModel(generated(), ["pod-a", "pod-b"]);
      for (let i = 0; i < 5; i++) {
        od.record("pod-a", { localOrigin: "connect-failure" });
        od.record("pod-a", { status: 500 });
      }
      assert.equal(od.isEjected("pod-a", 1), true);
    });

    it("does not eject for resets or timeouts after a connect (each restarts the count), but for the 503 and 504 a callee's sidecar answers when its app resets or hangs", () => {
      const od = new OutlierModel(generated(), ["pod-a", "pod-b"]);
      for (let i = 0; i < 20; i++) od.record("pod-a", { localOrigin: i % 2 ? "reset" : "timeout" });
      assert.equal(od.isEjected("pod-a", 1), false);
      for (let i = 0; i < 5; i++) od.record("pod-a", { status: i % 2 ? 504 : 503 });
      assert.equal(od.isEjected("pod-a", 1), true);
    });

    it("ejects for app errors only with ejectOnAppErrors, as the settings before this change did for every 500", () => {
      const on = new OutlierModel(generated({ outlierDetection: { ejectOnAppErrors: true } }), [
        "pod-a",
        "pod-b",
      ]);
      for (let i = 0; i < 5; i++) on.record("pod-a", { status: 500 });
      assert.equal(on.isEjected("pod-a", 1), true);
      const before = new OutlierModel(
        {
          consecutive_5xx: 5,
          interval: "10s",
          base_ejection_time: "30s",
          max_ejection_percent: 50,
        },
        ["pod-a", "pod-b"],
      );
      for (let i = 0; i < 5; i++) before.record("pod-a", { status: 500 });
      assert.equal(before.isEjected("pod-a", 1), true, "a healthy pod ejected for its answers");
    });
  });

  describe("retries", () => {
    it("retries every request in flight on a pod that dies on the other pods, where the old cap of 3 refused the rest", () => {
      const t = clusterOf(bootstrapOf(meshWith({}), "bookapi-mcp-server"), "upstream_bookapi")
        .circuit_breakers?.thresholds[0] as unknown as Json;
      for (const pods of [2, 3, 10]) {
        const perPod = 40;
        const death = { inFlight: perPod, otherActive: perPod * (pods - 1) };
        assert.deepEqual(podDeath(t, death).refused, 0, `${pods} pods`);
        const old = podDeath({ max_retries: 3 }, death);
        assert.deepEqual([old.retried, old.refused], [3, perPod - 3]);
      }
      // A quiet cluster still gets min_retry_concurrency retries.
      assert.equal(podDeath(t, { inFlight: 8, otherActive: 0 }).refused, 0);
    });

    it("sets the mesh clusters' connect timeout from the callee's traffic.connectTimeout, 1s unless set", () => {
      const c = (traffic: Json) =>
        clusterOf(bootstrapOf(meshWith(traffic), "bookapi-mcp-server"), "upstream_bookapi");
      assert.equal(c({}).connect_timeout, "1s");
      assert.equal(c({ connectTimeout: "250ms" }).connect_timeout, "0.250s");
    });
  });

  describe("the gateway's public face", () => {
    const dev = () => gatewayBootstrapOf(loadMeshConfig(stackConfig("dev")));
    const request = {
      method: "GET",
      path: "/mcp",
      authority: "mcp.localhost",
      headers: {},
    };
    const envoyBody =
      "upstream connect error or disconnect/reset before headers. reset reason: connection failure, transport failure reason: TLS_error:|268435581:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED";

    it("answers a failed upstream with a plain body, not Envoy's reset and TLS failure reasons", async () => {
      for (const [status, text] of ERROR_BODIES) {
        const out = await evaluate(dev(), request, {
          now: 0,
          upstream: { fails: { status, body: envoyBody } },
        });
        assert.ok(!("cluster" in out));
        assert.equal(out.status, status);
        assert.equal(out.body, `${text}\n`);
      }
    });

    it("rewrites the 5xx local replies of every inbound sidecar too, whose bodies reach the gateway as a service's reply", () => {
      for (const stack of STACKS)
        for (const envoy of envoysOf(stack)) {
          const inbound = envoy.bootstrap.static_resources.listeners.find(
            (l) => l.name === "inbound",
          );
          if (!inbound) continue;
          const reply = mappedLocalReply(hcm(inbound), 503, envoyBody);
          assert.equal(reply.body, "service unavailable\n", `${stack} ${envoy.name}`);
          assert.equal(
            mappedLocalReply(hcm(inbound), 403, "RBAC: access denied").body,
            "RBAC: access denied",
          );
        }
    });

    it("strips a service's server and x-envoy-* headers at the gateway, and no router adds any", async () => {
      const out = await evaluate(dev(), request, {
        now: 0,
        upstream: {
          headers: {
            server: "envoy",
            "x-envoy-upstream-service-time": "3",
            "x-envoy-overloaded": "true",
            "content-type": "text/event-stream",
          },
        },
      });
      assert.ok("cluster" in out);
      assert.deepEqual(out.responseHeaders, { "content-type": "text/event-stream" });
      for (const stack of STACKS)
        for (const envoy of envoysOf(stack))
          for (const l of envoy.bootstrap.static_resources.listeners) {
            const f = l.filter_chains[0].filters.find(
              (x) => x.name === "envoy.filters.network.http_connection_manager",
            );
            if (!f) continue;
            const router = hcm(l).http_filters.at(-1);
            assert.equal(router?.name, "envoy.filters.http.router");
            assert.deepEqual(router?.typed_config, {
              "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
              suppress_envoy_headers: true,
            });
          }
      const edge = hcm(listenerOf(dev(), "gateway"));
      assert.equal(edge.server_header_transformation, "PASS_THROUGH", "no server: envoy");
    });

    it("keeps fetched JWT keys for one minute by default: Envoy refetches only on expiry, not on an unknown kid", () => {
      const staging = gatewayBootstrapOf(loadMeshConfig(stackConfig("staging")));
      const jwt = hcm(listenerOf(staging, "gateway")).http_filters.find(
        (f) => f.name === "envoy.filters.http.jwt_authn",
      );
      assert.ok(jwt);
      const providers = Object.values(
        (jwt.typed_config as unknown as { providers: Record<string, Json> }).providers,
      );
      assert.ok(providers.length > 0);
      for (const p of providers)
        assert.equal((p.remote_jwks as { cache_duration: string }).cache_duration, "60s");
    });
  });

  describe("IPv4, IPv6 and dual-stack pods", () => {
    it("binds every listener other pods and the kubelet reach to [::] with IPv4 accepted, and the app's and admin's listeners to loopback, in every shipped stack", () => {
      for (const stack of STACKS)
        for (const envoy of envoysOf(stack)) {
          const pod = podListeners(envoy.bootstrap);
          assert.ok(pod.some((l) => l.name === "health"));
          for (const l of pod)
            assert.deepEqual(
              [l.address.socket_address.address, l.address.socket_address.ipv4_compat],
              ["::", true],
              `${stack} ${envoy.name} ${l.name}`,
            );
          assert.equal(envoy.bootstrap.admin.address.socket_address.address, "127.0.0.1");
        }
      const v4 = bootstrapOf(meshWith({}, {}, { bindAddress: "0.0.0.0" }), "bookapi");
      assert.deepEqual(listenerOf(v4, "inbound").address.socket_address, {
        address: "0.0.0.0",
        port_value: 15001,
      });
    });

    it("serves IPv4 and IPv6 peers on one socket bound as Envoy binds [::] with ipv4_compat (IPV6_V6ONLY off), where 0.0.0.0 refuses IPv6", async () => {
      const peerOf = async (bind: { host: string; ipv6Only?: boolean }, from: string) => {
        const server = net.createServer((c) => c.end(`${c.remoteAddress}\n`));
        await new Promise<void>((resolve) => server.listen({ port: 0, ...bind }, resolve));
        const port = (server.address() as net.AddressInfo).port;
        try {
          return await new Promise<string>((resolve) => {
            const c = net.connect(port, from);
            c.on("data", (d) => resolve(String(d).trim()));
            c.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
          });
        } finally {
          server.close();
        }
      };
      const dual = { host: "::", ipv6Only: false };
      assert.equal(await peerOf(dual, "127.0.0.1"), "::ffff:127.0.0.1");
      assert.equal(await peerOf(dual, "::1"), "::1");
      assert.equal(await peerOf({ host: "0.0.0.0" }, "::1"), "ECONNREFUSED");
    });
  });

  describe("the newest Envoy API", () => {
    it("validates against the vendored protos of the commit SOURCE.md names, with nothing hand-written beside them", () => {
      const dir = path.join(__dirname, "harness", "vendor", "envoy-api");
      assert.match(
        fs.readFileSync(path.join(dir, "SOURCE.md"), "utf8"),
        /data-plane-api at commit [0-9a-f]{40}/,
      );
      assert.deepEqual(fs.readdirSync(dir).sort(), ["SOURCE.md", "envoy"]);
      assert.equal(fs.existsSync(path.join(__dirname, "harness", "envoy-api-additions")), false);
    });

    it("uses nothing newer than the shipped Envoy 1.36: every field the older bundled API lacks is listed with the release that added it", () => {
      // The vendored protos are newer than the image, so passing them does not prove 1.36 loads
      // a field; the API @grpc/grpc-js-xds ships predates 1.36, so what it has, 1.36 has.
      const newer = [
        { pattern: /envoy\.extensions\.clusters\.dns\.v3\.DnsCluster/, since: [1, 33] }, // envoy#36353
        { pattern: /EnvelopeSessionState/, since: [1, 34] }, // envelope session state
        // The older API knows no sourced_metadata, so the principal holds none of its identifiers.
        {
          pattern: /sourced_metadata|oneof "identifier" in envoy\.config\.rbac\.v3\.Principal/,
          since: [1, 33],
        }, // envoy#36957
      ];
      const shipped = /envoy:v(\d+)\.(\d+)\./.exec(loadMeshConfig(stackConfig("dev")).envoy.image);
      assert.ok(shipped);
      const [major, minor] = [Number(shipped[1]), Number(shipped[2])];
      for (const n of newer)
        assert.ok(
          n.since[0] < major || (n.since[0] === major && n.since[1] <= minor),
          String(n.pattern),
        );
      // Every shipped stack, plus a gateway that checks scopes (no shipped stack does).
      const scoped = stackConfig("staging");
      const gw = JSON.parse(scoped["bookapi-mesh:gateway"]) as { auth: { jwt: Json } };
      gw.auth.jwt.requiredScopes = ["mcp:tools"];
      const models = [
        ...STACKS.map((stack) => loadMeshConfig(stackConfig(stack))),
        loadMeshConfig({ ...scoped, "bookapi-mesh:gateway": JSON.stringify(gw) }),
      ];
      const unexplained: string[] = [];
      const used = new Set<RegExp>();
      for (const model of models)
        for (const b of [
          ...model.services.map((svc) => bootstrapOf(model, svc.name)),
          ...(model.gateway ? [gatewayBootstrapOf(model)] : []),
        ])
          for (const error of validateBootstrapWith("bundled", JSON.parse(JSON.stringify(b)))
            .errors) {
            const known = newer.find((n) => n.pattern.test(error));
            if (known) used.add(known.pattern);
            else unexplained.push(error);
          }
      assert.deepEqual(unexplained, []);
      assert.equal(used.size, newer.length, "every listed field is still used");
    });

    it("reports a deprecated field, such as the Cluster's own dns_refresh_rate, which the generated clusters no longer use", () => {
      const b = bootstrapOf(meshWith({}), "bookapi-mcp-server");
      assert.deepEqual(validateBootstrapDetailed(b), { errors: [], warnings: [] });
      const c = clusterOf(b, "upstream_bookapi") as unknown as Json;
      delete c.cluster_type;
      Object.assign(c, { type: "STRICT_DNS", dns_refresh_rate: "5s" });
      const warnings = validateBootstrapDetailed(b).warnings;
      assert.ok(
        warnings.some((w) => w.includes('"dns_refresh_rate"') && w.includes("deprecated")),
        warnings.join("\n"),
      );
    });
  });
});
