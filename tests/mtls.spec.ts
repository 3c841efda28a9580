/**
 * Real mTLS handshakes (DESIGN "How we know it works", item 4): node:tls endpoints configured from
 * the generated Envoy config of the dev stack (TLS contexts, SDS files, network RBAC) and the
 * certificates the program produced, plus refusal cases built with the fake tls provider.
 */
import assert from "node:assert/strict";
import { createPrivateKey, X509Certificate } from "node:crypto";
import { setFakeTlsClock } from "./harness/fake-tls";
import {
  call,
  CallerOptions,
  EmulatedInbound,
  identityOf,
  InboundListener,
  InboundOptions,
  issueServiceCertificate,
  namesOf,
  KeyPair,
  newCertificateAuthority,
  PeerIdentity,
  sanMatches,
  sidecar,
  upstreamCaller,
  UpstreamTls,
  UPSTREAM_SAN_MISMATCH,
  upstreamCluster,
  inboundListener,
  Verdict,
} from "./harness/mtls";
import { runStack } from "./harness/program";

const HOUR = 3_600_000;

/** OpenSSL's codes for a chain that does not lead to a trusted CA. */
const UNTRUSTED_CHAIN = [
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_GET_ISSUER_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "CERT_SIGNATURE_FAILURE",
];

function sameNames(a: PeerIdentity, b: PeerIdentity): void {
  assert.deepEqual([a.dns, a.uri], [b.dns, b.uri]);
}

function refusedAt(v: Verdict, layer: string): asserts v is Extract<Verdict, { accepted: false }> {
  assert.equal(v.accepted, false, `expected a refusal at ${layer}, got ${JSON.stringify(v)}`);
  assert.equal(v.layer, layer, `refused at ${v.layer} (${v.reason}), expected ${layer}`);
}

describe("mTLS between sidecars: node:tls configured from the generated Envoy config (dev)", function () {
  let bookapiIn: InboundListener;
  let mcpIn: InboundListener;
  let toBookapi: UpstreamTls;
  let meshCa: KeyPair;
  let bookapiId: PeerIdentity;
  let mcpId: PeerIdentity;
  /** bookapi-mcp-server's names, from a foreign CA. */
  let foreign: KeyPair;
  /** bookapi's names, from a foreign CA. */
  let foreignBookapi: KeyPair;
  /** Signed by the mesh CA for a service nobody allowed. */
  let intruder: KeyPair;
  /** bookapi-mcp-server's names, signed by the mesh CA, expired a day ago. */
  let expired: KeyPair;

  const servers: EmulatedInbound[] = [];
  async function serve(opts: InboundOptions): Promise<EmulatedInbound> {
    const server = await EmulatedInbound.start(opts);
    servers.push(server);
    return server;
  }
  /** One call and the server's verdict on it. */
  async function exchange(server: EmulatedInbound, caller: CallerOptions) {
    const outcome = await call(server.port, caller);
    return { outcome, verdict: await server.nextVerdict() };
  }

  /** The dev stack's program run; its sidecars and the gateway are read from it. */
  let run: Awaited<ReturnType<typeof runStack>>;

  before(async function () {
    run = await runStack("dev");
    bookapiIn = inboundListener(sidecar(run, "bookapi"));
    const mcp = sidecar(run, "bookapi-mcp-server");
    mcpIn = inboundListener(mcp);
    toBookapi = upstreamCluster(mcp, "upstream_bookapi");

    const caKeys = run.resources.filter(
      (r) => r.type === "tls:index/privateKey:PrivateKey" && r.name === "mesh-ca-key",
    );
    assert.equal(caKeys.length, 1, "one mesh-ca-key");
    const caKey = caKeys[0].state.privateKeyPem;
    assert.equal(typeof caKey, "string");
    assert.equal(typeof run.outputs.caCertificate, "string");
    meshCa = { cert: run.outputs.caCertificate as string, key: caKey as string };

    bookapiId = identityOf(bookapiIn.tls.cert);
    mcpId = identityOf(toBookapi.cert);
    const mcpNames = namesOf(toBookapi.cert);
    // The intruder lives beside the mesh services: same namespace and cluster domain.
    const mcpFqdn = toBookapi.sni.replace(/^bookapi\./, "bookapi-mcp-server.");
    assert.ok(mcpId.dns.includes(mcpFqdn), `bookapi-mcp-server's certificate names ${mcpFqdn}`);
    const intruderFqdn = mcpFqdn.replace(/^bookapi-mcp-server\./, "intruder.");

    foreign = await issueServiceCertificate(await newCertificateAuthority("foreign CA"), mcpNames);
    foreignBookapi = await issueServiceCertificate(
      await newCertificateAuthority("foreign CA"),
      namesOf(bookapiIn.tls.cert),
    );
    intruder = await issueServiceCertificate(meshCa, {
      commonName: intruderFqdn,
      dnsNames: ["intruder", intruderFqdn],
      uris: mcpNames.uris.map((u) => u.replace(/bookapi-mcp-server$/, "intruder")),
    });
    setFakeTlsClock(() => new Date(Date.now() - 48 * HOUR));
    try {
      expired = await issueServiceCertificate(meshCa, mcpNames, 24);
    } finally {
      setFakeTlsClock();
    }
  });

  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  after(() => setFakeTlsClock());

  describe("the settings Envoy loads", () => {
    it("give each sidecar its own key and certificate, and the mesh CA as its only trust", () => {
      const ca = new X509Certificate(meshCa.cert);
      for (const t of [bookapiIn.tls, mcpIn.tls, toBookapi]) {
        const cert = new X509Certificate(t.cert);
        assert.ok(cert.checkPrivateKey(createPrivateKey(t.key)), "key matches certificate");
        assert.equal(t.ca, meshCa.cert, "trusted CA is the mesh CA");
        assert.ok(cert.verify(ca.publicKey), "certificate is signed by the mesh CA");
      }
      assert.ok(bookapiId.dns.includes(toBookapi.sni), "bookapi's inbound serves bookapi");
      assert.equal(mcpIn.tls.cert, toBookapi.cert, "bookapi-mcp-server has one identity");
    });

    it("make bookapi require a client certificate over TLS 1.2 to 1.3, allowing only bookapi-mcp-server", () => {
      const t = bookapiIn.tls;
      assert.equal(t.requireClientCertificate, true);
      assert.deepEqual([t.minVersion, t.maxVersion], ["TLSv1.2", "TLSv1.3"]);
      assert.ok(t.sanMatchers.length > 0, "a SAN allow-list");
      t.sanMatchers.forEach((m, i) =>
        assert.ok(sanMatches([m], mcpId), `SAN matcher ${i} names bookapi-mcp-server`),
      );
      assert.ok(!sanMatches(t.sanMatchers, bookapiId), "bookapi may not call itself");
    });

    it("make bookapi-mcp-server dial bookapi with bookapi's FQDN as SNI and expect only bookapi's SANs", () => {
      assert.match(toBookapi.sni, /^bookapi\.[^.]+\.svc\./, "SNI is bookapi's FQDN");
      assert.ok(bookapiId.dns.includes(toBookapi.sni), "SNI is one of bookapi's SANs");
      assert.ok(toBookapi.sanMatchers.length > 0, "the upstream SAN is verified");
      toBookapi.sanMatchers.forEach((m, i) =>
        assert.ok(sanMatches([m], bookapiId), `SAN matcher ${i} names bookapi`),
      );
      assert.ok(!sanMatches(toBookapi.sanMatchers, mcpId));
      assert.deepEqual([toBookapi.minVersion, toBookapi.maxVersion], ["TLSv1.2", "TLSv1.3"]);
    });
  });

  describe("bookapi's inbound listener", () => {
    it("accepts bookapi-mcp-server, which gets the answer over TLS 1.3 with bookapi's SNI", async () => {
      const server = await serve({ listener: bookapiIn });
      const { outcome, verdict } = await exchange(server, upstreamCaller(toBookapi));
      assert.ok(verdict.accepted, `refused: ${JSON.stringify(verdict)}`);
      assert.equal(outcome.response, `accepted ${mcpId.uri[0] ?? mcpId.dns[0]}`);
      assert.equal(outcome.error, undefined);
      assert.equal(verdict.servername, toBookapi.sni);
      assert.equal(verdict.protocol, "TLSv1.3");
      sameNames(verdict.peer, mcpId);
    });

    it("refuses a caller that presents no client certificate", async () => {
      const server = await serve({ listener: bookapiIn });
      const anonymous = { ...upstreamCaller(toBookapi), cert: undefined, key: undefined };
      const { outcome, verdict } = await exchange(server, anonymous);
      assert.equal(outcome.response, undefined);
      refusedAt(verdict, "tls");
      assert.equal(verdict.reason, "ERR_SSL_PEER_DID_NOT_RETURN_A_CERTIFICATE");
    });

    it("refuses a certificate with bookapi-mcp-server's names from a foreign CA", async () => {
      sameNames(identityOf(foreign.cert), mcpId);
      const server = await serve({ listener: bookapiIn });
      const { outcome, verdict } = await exchange(server, {
        ...upstreamCaller(toBookapi),
        ...foreign,
      });
      assert.equal(outcome.response, undefined);
      refusedAt(verdict, "tls");
      assert.ok(UNTRUSTED_CHAIN.includes(verdict.reason), verdict.reason);
    });

    it("refuses a mesh-CA certificate whose SANs are not on its allow-list", async () => {
      assert.ok(
        new X509Certificate(intruder.cert).verify(new X509Certificate(meshCa.cert).publicKey),
      );
      const server = await serve({ listener: bookapiIn });
      const { outcome, verdict } = await exchange(server, {
        ...upstreamCaller(toBookapi),
        ...intruder,
      });
      assert.equal(outcome.response, undefined);
      refusedAt(verdict, "san");
    });

    it("refuses an expired mesh certificate with bookapi-mcp-server's names", async () => {
      sameNames(identityOf(expired.cert), mcpId);
      assert.ok(new X509Certificate(expired.cert).validToDate.getTime() < Date.now());
      const server = await serve({ listener: bookapiIn });
      const { outcome, verdict } = await exchange(server, {
        ...upstreamCaller(toBookapi),
        ...expired,
      });
      assert.equal(outcome.response, undefined);
      refusedAt(verdict, "tls");
      assert.equal(verdict.reason, "CERT_HAS_EXPIRED");
    });

    it("refuses a caller that speaks only TLS 1.1", async function () {
      const server = await serve({ listener: bookapiIn });
      const tls11: CallerOptions = {
        ...upstreamCaller(toBookapi),
        minVersion: "TLSv1.1",
        maxVersion: "TLSv1.1",
        // OpenSSL 3 offers TLS 1.1 only at security level 0.
        ciphers: "DEFAULT@SECLEVEL=0",
      };
      const outcome = await call(server.port, tls11);
      if (outcome.error?.code === "ERR_SSL_NO_PROTOCOLS_AVAILABLE") this.skip();
      assert.equal(outcome.response, undefined);
      const verdict = await server.nextVerdict();
      refusedAt(verdict, "tls");
      assert.equal(verdict.reason, "ERR_SSL_UNSUPPORTED_PROTOCOL");
    });

    it("refuses the mesh-CA intruder at its network RBAC too, while admitting bookapi-mcp-server there", async () => {
      const server = await serve({ listener: bookapiIn, checks: { san: false } });
      const denied = await exchange(server, { ...upstreamCaller(toBookapi), ...intruder });
      assert.equal(denied.outcome.response, undefined);
      refusedAt(denied.verdict, "rbac");
      const allowed = await exchange(server, upstreamCaller(toBookapi));
      assert.ok(allowed.verdict.accepted, JSON.stringify(allowed.verdict));
      assert.match(allowed.outcome.response ?? "", /^accepted /);
    });
  });

  describe("bookapi-mcp-server calling bookapi", () => {
    for (const [what, callee] of [
      [
        "bookapi-mcp-server's own certificate",
        () => ({ cert: toBookapi.cert, key: toBookapi.key }),
      ],
      ["a mesh-CA certificate for another service", () => intruder],
    ] as const) {
      it(`refuses a callee that presents ${what} instead of bookapi's`, async () => {
        const server = await serve({ listener: bookapiIn, serve: callee() });
        const outcome = await call(server.port, upstreamCaller(toBookapi));
        assert.equal(outcome.response, undefined);
        assert.equal(outcome.error?.code, UPSTREAM_SAN_MISMATCH, outcome.error?.message);
      });
    }

    it("refuses a callee with bookapi's names from a foreign CA", async () => {
      sameNames(identityOf(foreignBookapi.cert), bookapiId);
      const server = await serve({ listener: bookapiIn, serve: foreignBookapi });
      const outcome = await call(server.port, upstreamCaller(toBookapi));
      assert.equal(outcome.response, undefined);
      assert.ok(UNTRUSTED_CHAIN.includes(outcome.error?.code ?? ""), outcome.error?.message);
    });
  });

  describe("bookapi-mcp-server's inbound listener, which nobody calls", () => {
    /** bookapi dialling it (bookapi calls nobody, so this client side is the test's own). */
    function bookapiCaller(): CallerOptions {
      return {
        cert: bookapiIn.tls.cert,
        key: bookapiIn.tls.key,
        ca: bookapiIn.tls.ca,
        servername: toBookapi.sni.replace(/^bookapi/, "bookapi-mcp-server"),
        sanMatchers: [],
        minVersion: "TLSv1.2",
        maxVersion: "TLSv1.3",
      };
    }

    it("refuses bookapi's certificate", async () => {
      const server = await serve({ listener: mcpIn });
      const { outcome, verdict } = await exchange(server, bookapiCaller());
      assert.equal(outcome.response, undefined);
      assert.equal(verdict.accepted, false, JSON.stringify(verdict));
    });

    it("closes bookapi's connection at its network RBAC even when TLS lets it through", async () => {
      const server = await serve({ listener: mcpIn, checks: { san: false } });
      const { outcome, verdict } = await exchange(server, bookapiCaller());
      assert.ok(outcome.handshake, "the TLS handshake completed");
      assert.equal(outcome.response, undefined);
      refusedAt(verdict, "rbac");
    });
  });
  describe("HTTP/2 between sidecars, chosen by ALPN in the mTLS handshake", () => {
    /** Every Envoy of the stack with its mesh upstream clusters: each caller-callee pair. */
    function allowedPairs(): { caller: string; callee: string; tls: UpstreamTls }[] {
      return ["bookapi", "bookapi-mcp-server", "mesh-gateway"].flatMap((name) => {
        const sc = sidecar(run, name);
        const clusters = (sc.bootstrap.static_resources as { clusters: { name: string }[] })
          .clusters;
        return clusters
          .filter((c) => c.name.startsWith("upstream_"))
          .map((c) => ({
            caller: name,
            callee: c.name.slice("upstream_".length),
            tls: upstreamCluster(sc, c.name),
          }));
      });
    }

    it("negotiates h2 for every allowed pair of the stack, the gateway's routes included", async () => {
      const pairs = allowedPairs();
      assert.deepEqual(
        pairs.map((p) => `${p.caller} -> ${p.callee}`),
        ["bookapi-mcp-server -> bookapi", "mesh-gateway -> bookapi-mcp-server"],
      );
      for (const pair of pairs) {
        const server = await serve({ listener: inboundListener(sidecar(run, pair.callee)) });
        const { outcome, verdict } = await exchange(server, upstreamCaller(pair.tls));
        assert.ok(verdict.accepted, `${pair.caller} -> ${pair.callee}: ${JSON.stringify(verdict)}`);
        assert.equal(verdict.alpn, "h2", `${pair.caller} -> ${pair.callee}`);
        assert.equal(outcome.alpn, "h2");
      }
    });

    it("still lets a caller through that offers only http/1.1, or no ALPN at all (a sidecar from before HTTP/2)", async () => {
      const server = await serve({ listener: bookapiIn });
      const http1 = await exchange(server, { ...upstreamCaller(toBookapi), alpn: ["http/1.1"] });
      assert.ok(http1.verdict.accepted && http1.verdict.alpn === "http/1.1");
      const none = await exchange(server, { ...upstreamCaller(toBookapi), alpn: undefined });
      assert.ok(none.verdict.accepted, JSON.stringify(none.verdict));
      // No protocol selected: the connection manager's AUTO codec reads the bytes (HTTP/1.1).
      assert.equal(none.verdict.alpn, false);
    });

    it("gives an updated caller no protocol from a callee from before HTTP/2, so AutoHttpConfig speaks HTTP/1.1", async () => {
      const old = { ...bookapiIn, tls: { ...bookapiIn.tls, alpn: undefined } };
      const server = await serve({ listener: old });
      const { outcome, verdict } = await exchange(server, upstreamCaller(toBookapi));
      assert.ok(verdict.accepted, JSON.stringify(verdict));
      assert.equal(outcome.alpn, false);
    });
  });
});
