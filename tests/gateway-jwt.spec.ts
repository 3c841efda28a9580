/**
 * The ingress gateway's generated Envoy config accepts exactly the valid bearer tokens: tokens
 * signed in the test (jose) are run through a model of Envoy's routing, CORS, jwt_authn, RBAC and
 * local-reply mappers (tests/harness/jwt-authn-model.ts) that reads every setting from the
 * generated bootstrap. MCP authorization (2025-06-18) and RFC 9728 say what the replies must be;
 * the Fetch standard's CORS protocol what a browser client needs to read them.
 */
import assert from "node:assert/strict";
import * as jose from "jose";
import { parseMeshConfig } from "../components/config";
import {
  Bootstrap,
  buildGatewayBootstrap,
  Cluster,
  CorsPolicy,
  EXTENSION_NAMES,
  GATEWAY_LISTENER,
  HttpConnectionManager,
  JWT_METADATA,
  JwtAuthentication,
  JwtProvider,
} from "../components/envoy";
import { gatewaySpec } from "../components/gateway";
import { evaluate, Jwks, LocalReply, Outcome, Request } from "./harness/jwt-authn-model";

const HOST = "mcp.example.com";
const ISSUER = "https://auth.example.com";
const AUDIENCE = "https://mcp.example.com/mcp";
const SCOPE = "mcp:tools";
const JWKS_URI = "https://auth.example.com/jwks.json";
const METADATA_URL = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp";
const CHALLENGE = `Bearer resource_metadata="${METADATA_URL}"`;
const MCP_CLUSTER = "upstream_bookapi-mcp-server";
const PUBLIC_CLUSTER = "upstream_bookapi";
/** Envoy's clock in the model; tokens are minted around it. */
const NOW = Math.floor(Date.now() / 1000);
/** A second authenticated route with its own provider, for another audience. */
const OTHER_AUDIENCE = "https://mcp.example.com/other";
const OTHER_CHALLENGE = `Bearer resource_metadata="https://${HOST}/.well-known/oauth-protected-resource/other"`;
/** A browser client's origin the CORS config lists, and one it does not. */
const APP_ORIGIN = "https://app.example.com";
const EVIL_ORIGIN = "https://evil.example";

function rawConfig(keys: { jwks: Jwks } | { jwksUri: string }): Record<string, unknown> {
  return {
    namespace: "bookapi",
    services: [
      { name: "bookapi", image: "r.example/bookapi:1.0.0", port: 5288 },
      {
        name: "bookapi-mcp-server",
        image: "r.example/mcp:1.0.0",
        port: 5289,
        calls: ["bookapi"],
        traffic: { streaming: true, sessionAffinity: { header: "mcp-session-id" } },
      },
    ],
    gateway: {
      hostname: HOST,
      tls: { secretName: "mcp-tls" },
      routes: [
        { pathPrefix: "/mcp", service: "bookapi-mcp-server" },
        { pathPrefix: "/public", service: "bookapi", public: true },
      ],
      auth: {
        jwt: { issuer: ISSUER, audiences: [AUDIENCE], ...keys, requiredScopes: [SCOPE] },
      },
    },
  };
}

type RawGateway = Record<string, unknown> & {
  routes: Record<string, unknown>[];
  auth: { jwt: Record<string, unknown> };
};

/** The same mesh with the gateway's settings changed. */
function withGateway(
  raw: Record<string, unknown>,
  change: (gateway: RawGateway) => Record<string, unknown>,
): Record<string, unknown> {
  return { ...raw, gateway: change(raw.gateway as RawGateway) };
}

/** Browsers on APP_ORIGIN may call the gateway. */
const withCors = (raw: Record<string, unknown>) =>
  withGateway(raw, (gw) => ({ ...gw, cors: { allowOrigins: [APP_ORIGIN] } }));

/** No required scope: no RBAC filter, a verified token is enough. */
const withoutScopes = (raw: Record<string, unknown>) =>
  withGateway(raw, (gw) => ({ ...gw, auth: { jwt: { ...gw.auth.jwt, requiredScopes: [] } } }));

/**
 * Two JWT providers: /mcp with the gateway's auth, /other (bookapi) with its own for
 * OTHER_AUDIENCE; both name the host, so their mappers match :authority too.
 */
const withTwoProviders = (raw: Record<string, unknown>) =>
  withGateway(raw, (gw) => ({
    ...gw,
    routes: [
      { pathPrefix: "/mcp", service: "bookapi-mcp-server", host: HOST },
      {
        pathPrefix: "/other",
        service: "bookapi",
        host: HOST,
        auth: { jwt: { ...gw.auth.jwt, audiences: [OTHER_AUDIENCE], requiredScopes: [] } },
      },
      { pathPrefix: "/public", service: "bookapi", public: true },
    ],
  }));

function gatewayBootstrap(raw: Record<string, unknown>): Bootstrap {
  const model = parseMeshConfig(raw);
  assert.ok(model.gateway, "the config has a gateway");
  return buildGatewayBootstrap(gatewaySpec(model, model.gateway));
}

/** The gateway listener's HTTP connection manager (the same object, for mutation). */
function gatewayHcm(bootstrap: Bootstrap): HttpConnectionManager {
  for (const l of bootstrap.static_resources.listeners)
    if (l.name === GATEWAY_LISTENER)
      for (const chain of l.filter_chains)
        for (const f of chain.filters)
          if (f.name === EXTENSION_NAMES.httpConnectionManager) return f.typed_config;
  assert.fail("no gateway HTTP connection manager in the bootstrap");
}

/** The jwt_authn filter's config in a bootstrap (the same object, for mutation). */
function jwtAuthn(bootstrap: Bootstrap): JwtAuthentication {
  for (const h of gatewayHcm(bootstrap).http_filters)
    if (h.name === EXTENSION_NAMES.jwtAuthn) return h.typed_config;
  assert.fail("no jwt_authn filter in the bootstrap");
}

/** The CORS policies of the gateway's virtual hosts (the same objects, for mutation). */
function corsPolicies(bootstrap: Bootstrap): CorsPolicy[] {
  const policies = gatewayHcm(bootstrap).route_config.virtual_hosts.flatMap((vh) => {
    const policy = vh.typed_per_filter_config?.[EXTENSION_NAMES.cors];
    return policy ? [policy] : [];
  });
  assert.ok(policies.length > 0, "a CORS policy in the bootstrap");
  return policies;
}

/**
 * A copy of a bootstrap without the status_code_filter branches of its local-reply mappers'
 * or_filters (walked as plain JSON: the mappers share one filter object), and how many mappers
 * lost one.
 */
function withoutStatusCodeBranches(original: Bootstrap): { bootstrap: Bootstrap; mappers: number } {
  const bootstrap = JSON.parse(JSON.stringify(original)) as Bootstrap;
  let dropped = 0;
  const walk = (filter: unknown): void => {
    if (filter === null || typeof filter !== "object") return;
    const f = filter as { and_filter?: { filters: unknown[] }; or_filter?: { filters: unknown[] } };
    if (f.or_filter) {
      const kept = f.or_filter.filters.filter(
        (g) => !(typeof g === "object" && g !== null && "status_code_filter" in g),
      );
      dropped += f.or_filter.filters.length - kept.length;
      f.or_filter.filters = kept;
    }
    for (const g of [...(f.and_filter?.filters ?? []), ...(f.or_filter?.filters ?? [])]) walk(g);
  };
  let mappers = 0;
  for (const mapper of gatewayHcm(bootstrap).local_reply_config?.mappers ?? []) {
    const before = dropped;
    walk(mapper.filter);
    if (dropped > before) mappers++;
  }
  return { bootstrap, mappers };
}

/** A comma-separated header value as lower-case items. */
const items = (value: string | undefined): string[] =>
  (value ?? "")
    .split(",")
    .map((v) => v.trim().toLowerCase())
    .filter((v) => v !== "");

/** The access-control-* headers of a response. */
const corsHeaders = (headers: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(headers).filter(([k]) => k.startsWith("access-control-")));

function onlyProvider(bootstrap: Bootstrap): JwtProvider {
  const providers = Object.values(jwtAuthn(bootstrap).providers);
  assert.equal(providers.length, 1, "one JWT provider");
  return providers[0];
}

interface Signer {
  alg: "ES256" | "RS256";
  kid: string;
  privateKey: jose.CryptoKey;
  publicKey: jose.CryptoKey;
}

async function signer(alg: Signer["alg"], kid: string): Promise<Signer> {
  const { privateKey, publicKey } = await jose.generateKeyPair(alg);
  return { alg, kid, privateKey, publicKey };
}

async function publicJwk(s: Signer): Promise<jose.JWK> {
  return { ...(await jose.exportJWK(s.publicKey)), kid: s.kid, alg: s.alg, use: "sig" };
}

/** Claims of a valid access token; `undefined` drops a claim. */
function claims(overrides: Record<string, unknown> = {}): jose.JWTPayload {
  return {
    iss: ISSUER,
    sub: "user-1",
    aud: AUDIENCE,
    iat: NOW - 10,
    exp: NOW + 600,
    scope: `openid ${SCOPE}`,
    ...overrides,
  };
}

const b64 = (value: object): string => jose.base64url.encode(JSON.stringify(value));

function mcp(token?: string, init: Partial<Request> = {}): Request {
  return {
    authority: HOST,
    path: "/mcp",
    method: "POST",
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
    ...init,
  };
}

function refused(outcome: Outcome, what: string): LocalReply {
  if (outcome.status === "forwarded")
    assert.fail(`${what}: forwarded to ${outcome.cluster}, expected a refusal`);
  return outcome;
}

/** 401 with MCP's challenge pointing at the resource metadata (RFC 9728, section 5.1). */
function assertChallenged(outcome: Outcome, what: string): LocalReply {
  const reply = refused(outcome, what);
  assert.equal(reply.status, 401, `${what}: status (jwt_authn said ${reply.origin.status})`);
  assert.equal(reply.headers["www-authenticate"], CHALLENGE, `${what}: WWW-Authenticate`);
  return reply;
}

function assertForwarded(outcome: Outcome, cluster: string, what: string) {
  if (outcome.status !== "forwarded")
    assert.fail(`${what}: refused ${outcome.status} ${outcome.body} (by ${outcome.origin.by})`);
  assert.equal(outcome.cluster, cluster, `${what}: cluster`);
  return outcome;
}

describe("gateway JWT validation (generated Envoy config run through a jwt_authn model)", () => {
  let ec: Signer;
  let rsa: Signer;
  /** Not in the gateway's JWKS; claims the EC key's kid. */
  let stranger: Signer;
  let jwks: Jwks;
  let bootstrap: Bootstrap;

  const send = (req: Request, config: unknown = bootstrap, remoteJwks?: Record<string, Jwks>) =>
    evaluate(config, req, { now: NOW, ...(remoteJwks ? { remoteJwks } : {}) });

  const sign = (payload: jose.JWTPayload, s: Signer = ec): Promise<string> =>
    new jose.SignJWT(payload)
      .setProtectedHeader({ alg: s.alg, kid: s.kid, typ: "at+jwt" })
      .sign(s.privateKey);

  before(async () => {
    [ec, rsa, stranger] = await Promise.all([
      signer("ES256", "ec-1"),
      signer("RS256", "rsa-1"),
      signer("ES256", "ec-1"),
    ]);
    jwks = { keys: [await publicJwk(ec), await publicJwk(rsa)] };
    bootstrap = gatewayBootstrap(rawConfig({ jwks }));
  });

  it("forwards a valid token (right iss, aud, future exp, required scope, JWKS key) to the MCP server's cluster on /mcp", async () => {
    assert.ok(
      bootstrap.static_resources.clusters.some((c) => c.name === MCP_CLUSTER),
      `${MCP_CLUSTER} is a cluster of the bootstrap`,
    );
    for (const s of [ec, rsa])
      for (const method of ["POST", "GET"]) {
        const what = `${s.alg} ${method}`;
        const out = assertForwarded(
          await send(mcp(await sign(claims(), s), { method })),
          MCP_CLUSTER,
          what,
        );
        assert.equal(out.path, "/mcp", `${what}: path`);
        assert.deepEqual(
          out.metadata[EXTENSION_NAMES.jwtAuthn]?.jwt_payload,
          { ...claims(), scope: ["openid", SCOPE] },
          `${what}: verified payload with scope as a list`,
        );
      }
    const withPort = mcp(await sign(claims()), { authority: `${HOST}:443`, path: "/mcp/x?y=1" });
    assertForwarded(await send(withPort), MCP_CLUSTER, "authority with a port, sub-path, query");
  });

  describe("refuses with 401 and WWW-Authenticate: Bearer resource_metadata=...", () => {
    it("a request without a token", async () => {
      const reply = assertChallenged(await send(mcp()), "no token");
      assert.equal(reply.origin.by, "jwt_authn");
    });

    it("a request without a token below /mcp, with a query string, or by GET", async () => {
      for (const [path, method] of [
        ["/mcp/sse", "GET"],
        ["/mcp?session=1", "POST"],
        ["/mcp/", "DELETE"],
      ])
        assertChallenged(await send(mcp(undefined, { path, method })), `${method} ${path}`);
    });

    it("a token from another issuer", async () => {
      const token = await sign(claims({ iss: "https://evil.example.com" }));
      assertChallenged(await send(mcp(token)), "wrong issuer");
      assertChallenged(await send(mcp(await sign(claims({ iss: undefined })))), "no issuer");
    });

    it("a token that expired more than the 60 s clock skew ago", async () => {
      assertChallenged(await send(mcp(await sign(claims({ exp: NOW - 61 })))), "exp now-61");
      assertChallenged(await send(mcp(await sign(claims({ exp: NOW - 3600 })))), "exp now-1h");
      // Within the skew Envoy still accepts it: the boundary is the config's, not a guess.
      const late = await sign(claims({ exp: NOW - 60 }));
      assertForwarded(await send(mcp(late)), MCP_CLUSTER, "exp now-60 (within the skew)");
    });

    it("a token without exp", async () => {
      assertChallenged(await send(mcp(await sign(claims({ exp: undefined })))), "no exp");
    });

    it("a token signed by another key, whether it claims the JWKS key's kid or its own", async () => {
      assertChallenged(await send(mcp(await sign(claims(), stranger))), "stranger with kid ec-1");
      const own = await sign(claims(), { ...stranger, kid: "stranger" });
      assertChallenged(await send(mcp(own)), "stranger with its own kid");
      // An RS256 token signed by the stranger's key under the RSA key's kid.
      const forged = await sign(claims(), {
        ...rsa,
        privateKey: (await signer("RS256", "x")).privateKey,
      });
      assertChallenged(await send(mcp(forged)), "RS256 signed by another RSA key");
    });

    it("an unsigned alg: none token", async () => {
      const body = `${b64({ alg: "none", typ: "JWT" })}.${b64(claims())}`;
      assertChallenged(await send(mcp(`${body}.`)), "alg none, empty signature");
      // Even with the signature of a valid token attached.
      const valid = (await sign(claims())).split(".")[2];
      assertChallenged(await send(mcp(`${body}.${valid}`)), "alg none, borrowed signature");
    });

    it("an HS256 token signed with a secret, or with the RSA public key as the HMAC secret", async () => {
      const secret = new TextEncoder().encode("some-shared-secret-of-thirty-two-bytes");
      const hs = (key: Uint8Array, kid?: string) =>
        new jose.SignJWT(claims())
          .setProtectedHeader({ alg: "HS256", ...(kid ? { kid } : {}) })
          .sign(key);
      assertChallenged(await send(mcp(await hs(secret))), "HS256 with a secret");
      const pem = new TextEncoder().encode(await jose.exportSPKI(rsa.publicKey));
      assertChallenged(await send(mcp(await hs(pem, "rsa-1"))), "HS256 keyed with the RSA PEM");
    });

    it("a token passed only as the access_token query parameter", async () => {
      const token = await sign(claims());
      const req = mcp(undefined, { path: `/mcp?access_token=${token}` });
      assertChallenged(await send(req), "query parameter only");
    });

    it("a token not yet valid (nbf beyond the skew)", async () => {
      assertChallenged(await send(mcp(await sign(claims({ nbf: NOW + 120 })))), "nbf now+120");
      const soon = await sign(claims({ nbf: NOW + 30 }));
      assertForwarded(await send(mcp(soon)), MCP_CLUSTER, "nbf now+30 (within the skew)");
    });

    it("a token for another audience (jwt_authn's 403 becomes 401 through the mapper)", async () => {
      for (const aud of ["https://other.example.com/mcp", ["https://other.example.com"], []]) {
        const reply = assertChallenged(await send(mcp(await sign(claims({ aud })))), `aud ${aud}`);
        assert.equal(reply.origin.status, 403, "jwt_authn's own status for a wrong audience");
      }
      assertChallenged(await send(mcp(await sign(claims({ aud: undefined })))), "no aud");
    });
  });

  it("answers a valid token without the required scope with 403 (RBAC) and does not forward it", async () => {
    for (const scope of [undefined, "mcp:read", "mcp:toolsX", "openid", `${SCOPE}s`]) {
      const reply = refused(await send(mcp(await sign(claims({ scope })))), `scope ${scope}`);
      assert.equal(reply.status, 403, `scope ${scope}`);
      assert.equal(reply.origin.by, "rbac", `scope ${scope}: refused by RBAC`);
      assert.equal(reply.body, "RBAC: access denied");
      assert.equal(reply.headers["www-authenticate"], undefined, `scope ${scope}: no challenge`);
    }
    // The scope only in another claim is not the scope.
    const scp = await sign(claims({ scope: undefined, scp: SCOPE }));
    assert.equal(refused(await send(mcp(scp)), "scp").status, 403);
    // Space-delimited, in any position.
    const last = await sign(claims({ scope: `a b ${SCOPE}` }));
    assertForwarded(await send(mcp(last)), MCP_CLUSTER, "scope listed last");
  });

  it("forwards exactly the tokens whose issuer, audience, expiry, key and scope are all right", async () => {
    let forwarded = 0;
    let cases = 0;
    for (const issOk of [true, false])
      for (const audOk of [true, false])
        for (const exp of ["ok", "expired", "missing"] as const)
          for (const keyOk of [true, false])
            for (const scopeOk of [true, false]) {
              const what = `iss ${issOk} aud ${audOk} exp ${exp} key ${keyOk} scope ${scopeOk}`;
              const payload = claims({
                iss: issOk ? ISSUER : "https://evil.example.com",
                aud: audOk ? AUDIENCE : "https://other.example.com/mcp",
                exp: exp === "ok" ? NOW + 300 : exp === "expired" ? NOW - 300 : undefined,
                scope: scopeOk ? SCOPE : "mcp:read",
              });
              const key = keyOk ? (cases % 2 === 0 ? ec : rsa) : stranger;
              const out = await send(mcp(await sign(payload, key)));
              cases++;
              const valid = issOk && audOk && exp === "ok" && keyOk;
              if (valid && scopeOk) {
                assertForwarded(out, MCP_CLUSTER, what);
                forwarded++;
              } else if (valid) {
                assert.equal(refused(out, what).status, 403, `${what}: scope refusal`);
              } else {
                assertChallenged(out, what);
              }
            }
    assert.equal(cases, 48);
    assert.equal(forwarded, 1, "only the all-right token is forwarded");
  });

  it("serves the protected resource metadata at both well-known paths with 200 and no token", async () => {
    // The first is where the 401's challenge points.
    for (const path of [new URL(METADATA_URL).pathname, "/.well-known/oauth-protected-resource"]) {
      const reply = refused(
        await send({ authority: HOST, path, method: "GET", headers: {} }),
        path,
      );
      assert.equal(reply.status, 200, path);
      assert.equal(reply.origin.by, "direct_response", path);
      assert.equal(reply.headers["content-type"], "application/json", `${path}: content-type`);
      assert.equal(reply.headers["www-authenticate"], undefined, `${path}: no challenge`);
      const doc = JSON.parse(reply.body) as Record<string, unknown>;
      assert.equal(doc.resource, AUDIENCE, `${path}: resource`);
      assert.deepEqual(doc.authorization_servers, [ISSUER], `${path}: authorization_servers`);
      assert.deepEqual(doc.scopes_supported, [SCOPE], `${path}: scopes_supported`);
      // An invalid token does not stand in the way of the metadata either.
      const withBad = await send({
        authority: HOST,
        path,
        method: "GET",
        headers: { authorization: "Bearer not.a.token" },
      });
      assert.equal(withBad.status, 200, `${path} with a bad token`);
    }
  });

  it("forwards the public route without a token, and with a bad one", async () => {
    const expired = await sign(claims({ exp: NOW - 3600 }));
    for (const [path, method, headers] of [
      ["/public", "GET", {}],
      ["/public/books?page=2", "POST", {}],
      ["/public", "GET", { authorization: "Bearer garbage" }],
      ["/public/books", "GET", { authorization: `Bearer ${expired}` }],
    ] as const) {
      const out = assertForwarded(
        await send({ authority: HOST, path, method, headers: { ...headers } }),
        PUBLIC_CLUSTER,
        `${method} ${path}`,
      );
      assert.equal(out.path, path);
    }
  });

  it("fetches a jwksUri provider's keys through a bootstrap cluster over TLS to auth.example.com:443", async () => {
    const remote = gatewayBootstrap(rawConfig({ jwksUri: JWKS_URI }));
    const provider = onlyProvider(remote);
    assert.equal(provider.local_jwks, undefined, "no inline keys");
    assert.ok(provider.remote_jwks, "remote_jwks");
    assert.equal(provider.remote_jwks.http_uri.uri, JWKS_URI);
    const name = provider.remote_jwks.http_uri.cluster;
    const cluster: Cluster | undefined = remote.static_resources.clusters.find(
      (c) => c.name === name,
    );
    assert.ok(cluster, `remote_jwks names cluster ${name}, which the bootstrap has`);
    assert.ok(cluster.transport_socket, `${name}: TLS transport socket`);
    assert.equal(cluster.transport_socket.name, EXTENSION_NAMES.tls);
    assert.equal(cluster.transport_socket.typed_config.sni, "auth.example.com", `${name}: SNI`);
    const endpoints = cluster.load_assignment.endpoints.flatMap((e) =>
      e.lb_endpoints.map((l) => l.endpoint.address.socket_address),
    );
    assert.deepEqual(endpoints, [{ address: "auth.example.com", port_value: 443 }]);

    // And the keys the URI serves are the ones tokens are checked against.
    const token = await sign(claims());
    assertForwarded(await send(mcp(token), remote, { [JWKS_URI]: jwks }), MCP_CLUSTER, "remote");
    const strangers = { keys: [await publicJwk(stranger)] };
    assertChallenged(await send(mcp(token), remote, { [JWKS_URI]: strangers }), "other JWKS");
    assertChallenged(await send(mcp(token), remote, {}), "JWKS not reachable");
  });

  it("reads the token only from Authorization: Bearer and does not forward it upstream", async () => {
    const provider = onlyProvider(bootstrap);
    assert.equal(provider.forward, false, "forward: false");
    assert.deepEqual(provider.from_headers, [{ name: "Authorization", value_prefix: "Bearer " }]);
    for (const key of ["from_params", "from_cookies"])
      assert.ok(!(key in provider), `${key} is not set (else the defaults would not apply)`);

    const token = await sign(claims());
    const out = assertForwarded(
      await send(
        mcp(token, { headers: { Authorization: `Bearer ${token}`, "mcp-session-id": "s1" } }),
      ),
      MCP_CLUSTER,
      "valid token",
    );
    assert.equal(out.headers.authorization, undefined, "the token stops at the gateway");
    assert.equal(out.headers["mcp-session-id"], "s1", "other headers pass");

    const elsewhere: Record<string, string>[] = [
      { "x-access-token": token },
      { "x-jwt-assertion": token },
      { cookie: `access_token=${token}` },
      { authorization: token },
      { authorization: `Basic ${token}` },
    ];
    for (const headers of elsewhere)
      assertChallenged(
        await send(mcp(undefined, { headers })),
        JSON.stringify(Object.keys(headers)),
      );
    // A query parameter is not read even beside a good header.
    const both = mcp(token, { path: "/mcp?access_token=garbage" });
    assertForwarded(await send(both), MCP_CLUSTER, "header token with a garbage query token");
  });

  describe("the model reads the generated config", () => {
    it("refuses an untouched valid token once the config's issuer is changed", async () => {
      const token = await sign(claims());
      assertForwarded(await send(mcp(token)), MCP_CLUSTER, "as generated");
      const mutated = structuredClone(bootstrap);
      onlyProvider(mutated).issuer = "https://someone-else.example.com";
      assertChallenged(await send(mcp(token), mutated), "issuer changed in the config");
    });

    it("answers with Envoy's own realm challenge without the mappers, and reads the query without from_headers", async () => {
      const noMappers = structuredClone(bootstrap);
      delete gatewayHcm(noMappers).local_reply_config;
      const missing = refused(await send(mcp(), noMappers), "no mappers");
      assert.equal(missing.status, 401);
      assert.equal(missing.headers["www-authenticate"], `Bearer realm="https://${HOST}/mcp"`);
      const wrongAud = await sign(claims({ aud: "https://other.example.com" }));
      assert.equal(refused(await send(mcp(wrongAud), noMappers), "aud").status, 403);

      const defaults = structuredClone(bootstrap);
      const provider: Partial<JwtProvider> = onlyProvider(defaults);
      delete provider.from_headers;
      const token = await sign(claims());
      const query = mcp(undefined, { path: `/mcp?access_token=${token}` });
      assertForwarded(await send(query, defaults), MCP_CLUSTER, "default locations read the query");
    });
  });

  describe("several JWT providers (a route with its own auth)", () => {
    let several: Bootstrap;

    before(() => {
      several = gatewayBootstrap(withTwoProviders(rawConfig({ jwks })));
    });

    it("answers a request without a token on each authenticated route with 401 and that route's resource_metadata challenge, the host in any case or with a port", async () => {
      assert.equal(Object.keys(jwtAuthn(several).providers).length, 2, "two JWT providers");
      for (const [path, challenge] of [
        ["/mcp", CHALLENGE],
        ["/mcp/sse", CHALLENGE],
        ["/other", OTHER_CHALLENGE],
        ["/other/books?page=2", OTHER_CHALLENGE],
      ])
        for (const authority of [HOST, "MCP.Example.COM", `${HOST}:443`]) {
          const what = `no token, ${authority}${path}`;
          const reply = refused(await send(mcp(undefined, { authority, path }), several), what);
          assert.equal(reply.status, 401, `${what}: status`);
          assert.equal(reply.origin.by, "jwt_authn", `${what}: refused by jwt_authn`);
          assert.equal(reply.headers["www-authenticate"], challenge, `${what}: WWW-Authenticate`);
          // With several providers jwt_authn records nothing for a missing token: the mapper
          // matched on the 401 itself.
          assert.equal(
            reply.metadata[EXTENSION_NAMES.jwtAuthn]?.[JWT_METADATA.failure],
            undefined,
            `${what}: no failure in the metadata`,
          );
        }

      // Each route takes its own provider's tokens.
      const mcpToken = await sign(claims());
      const otherToken = await sign(claims({ aud: OTHER_AUDIENCE }));
      assertForwarded(await send(mcp(mcpToken), several), MCP_CLUSTER, "/mcp token on /mcp");
      const other = mcp(otherToken, { path: "/other" });
      assertForwarded(await send(other, several), PUBLIC_CLUSTER, "/other token on /other");
      // A token for the other route's audience: jwt_authn's 403, recorded (the provider is
      // known once there is a token), becomes that route's 401.
      for (const [token, path, challenge] of [
        [mcpToken, "/other", OTHER_CHALLENGE],
        [otherToken, "/mcp", CHALLENGE],
      ]) {
        const reply = refused(await send(mcp(token, { path }), several), `wrong audience ${path}`);
        assert.equal(reply.status, 401, `wrong audience ${path}: status`);
        assert.equal(reply.origin.status, 403, `wrong audience ${path}: jwt_authn's status`);
        assert.equal(reply.headers["www-authenticate"], challenge, `wrong audience ${path}`);
        assert.ok(
          reply.metadata[EXTENSION_NAMES.jwtAuthn]?.[JWT_METADATA.failure],
          `wrong audience ${path}: failure recorded`,
        );
      }
    });

    it("needs the mappers' status_code branch: without it a missing token keeps jwt_authn's own Bearer realm challenge (one provider would hide this)", async () => {
      const { bootstrap: mutated, mappers } = withoutStatusCodeBranches(several);
      assert.equal(mappers, 2, "a status_code branch in each route's mapper");
      for (const path of ["/mcp", "/other"]) {
        const reply = refused(await send(mcp(undefined, { path }), mutated), `no token ${path}`);
        assert.equal(reply.status, 401, `no token ${path}: status`);
        assert.equal(
          reply.headers["www-authenticate"],
          `Bearer realm="https://${HOST}${path}"`,
          `no token ${path}: jwt_authn's own challenge, no mapper matched`,
        );
      }
      // A failure with a token is recorded, so the metadata branch still maps it.
      const expired = await sign(claims({ exp: NOW - 3600 }));
      assertChallenged(await send(mcp(expired), mutated), "expired token, no status_code branch");

      // With a single provider jwt_authn records the missing token too: the same mutation changes
      // nothing there, which is why the single-provider tests cannot show the branch matters.
      const single = withoutStatusCodeBranches(bootstrap);
      assert.equal(single.mappers, 1, "a status_code branch in the mapper");
      const reply = assertChallenged(
        await send(mcp(), single.bootstrap),
        "one provider, no status_code branch",
      );
      assert.deepEqual(reply.metadata[EXTENSION_NAMES.jwtAuthn]?.[JWT_METADATA.failure], {
        message: "Jwt is missing",
      });
    });
  });

  describe("CORS for browser clients (cors.allowOrigins)", () => {
    /** Required scope (RBAC filter), as rawConfig. */
    let scoped: Bootstrap;
    /** No required scope: no RBAC filter between jwt_authn and the router. */
    let unscoped: Bootstrap;

    before(() => {
      scoped = gatewayBootstrap(withCors(rawConfig({ jwks })));
      unscoped = gatewayBootstrap(withoutScopes(withCors(rawConfig({ jwks }))));
    });

    const preflight = (origin: string, path = "/mcp", requestMethod = "POST"): Request => ({
      authority: HOST,
      path,
      method: "OPTIONS",
      headers: {
        Origin: origin,
        "Access-Control-Request-Method": requestMethod,
        "Access-Control-Request-Headers": "authorization, content-type, mcp-protocol-version",
      },
    });

    it("answers a preflight from an allowed origin to /mcp at the gateway with the allow headers, never forwarding it", async () => {
      for (const config of [scoped, unscoped])
        for (const path of ["/mcp", "/mcp/sse"])
          for (const method of ["POST", "GET", "DELETE"]) {
            const what = `preflight ${method} ${path}`;
            const reply = refused(await send(preflight(APP_ORIGIN, path, method), config), what);
            assert.equal(reply.status, 200, `${what}: status`);
            assert.equal(reply.origin.by, "cors", `${what}: answered by the CORS filter`);
            const h = reply.headers;
            assert.equal(h["access-control-allow-origin"], APP_ORIGIN, `${what}: allow-origin`);
            assert.ok(
              items(h["access-control-allow-methods"]).includes(method.toLowerCase()),
              `${what}: ${method} allowed (${h["access-control-allow-methods"]})`,
            );
            for (const header of [
              "authorization",
              "content-type",
              "mcp-protocol-version",
              "mcp-session-id",
              "last-event-id",
            ])
              assert.ok(
                items(h["access-control-allow-headers"]).includes(header),
                `${what}: ${header} allowed (${h["access-control-allow-headers"]})`,
              );
            assert.equal(h["access-control-max-age"], "600", `${what}: max-age (10m)`);
            assert.equal(h["access-control-allow-credentials"], undefined, `${what}: no cookies`);
            assert.equal(h["www-authenticate"], undefined, `${what}: no challenge`);
          }
    });

    it("does not forward a preflight from an origin not listed; with forward_not_matching_preflights true it would reach the service without a token", async () => {
      for (const [name, config] of [
        ["scoped", scoped],
        ["unscoped", unscoped],
      ] as const) {
        const reply = refused(await send(preflight(EVIL_ORIGIN), config), `${name}: evil`);
        assert.equal(reply.status, 200, `${name}: answered at the gateway`);
        assert.equal(reply.origin.by, "cors", `${name}: by the CORS filter`);
        // cors_filter.cc answers it without access-control-allow-origin: the browser fails it.
        assert.equal(
          reply.headers["access-control-allow-origin"],
          undefined,
          `${name}: no access-control-allow-origin`,
        );
      }

      // The setting flipped in a copy: the CORS filter lets the preflight on, jwt_authn's
      // bypass_cors_preflight lets it past without a token, and the service gets it.
      const forwarding = structuredClone(unscoped);
      for (const policy of corsPolicies(forwarding)) policy.forward_not_matching_preflights = true;
      const out = assertForwarded(
        await send(preflight(EVIL_ORIGIN), forwarding),
        MCP_CLUSTER,
        "unlisted origin's preflight, forward_not_matching_preflights true",
      );
      assert.equal(out.headers.authorization, undefined, "no token");
      assert.deepEqual(out.responseHeaders, {}, "no CORS headers for an unlisted origin");
      // A required scope stops it at RBAC instead, but only after jwt_authn let it by.
      const scopedForwarding = structuredClone(scoped);
      for (const p of corsPolicies(scopedForwarding)) p.forward_not_matching_preflights = true;
      const denied = refused(await send(preflight(EVIL_ORIGIN), scopedForwarding), "scoped");
      assert.equal(denied.origin.by, "rbac", "past jwt_authn without a token, refused by RBAC");
      assert.equal(denied.status, 403);
    });

    it("lets a browser on an allowed origin read the 401 for a missing token: access-control-allow-origin, and WWW-Authenticate in access-control-expose-headers", async () => {
      const what = "cross-origin POST /mcp without a token";
      const reply = assertChallenged(
        await send(mcp(undefined, { headers: { Origin: APP_ORIGIN } }), scoped),
        what,
      );
      assert.equal(reply.origin.by, "jwt_authn", `${what}: refused by jwt_authn`);
      assert.equal(reply.headers["access-control-allow-origin"], APP_ORIGIN, `${what}`);
      const exposed = items(reply.headers["access-control-expose-headers"]);
      assert.ok(exposed.includes("www-authenticate"), `${what}: exposes ${exposed.join(", ")}`);
      // A wrong audience (jwt_authn's 403, mapped to 401) too.
      const wrongAud = await sign(claims({ aud: "https://other.example.com/mcp" }));
      const aud = assertChallenged(
        await send(mcp(wrongAud, { headers: { Origin: APP_ORIGIN } }), scoped),
        "cross-origin, wrong audience",
      );
      assert.equal(aud.headers["access-control-allow-origin"], APP_ORIGIN, "wrong audience");
      // A valid token: the service's response gets them (and the session id is readable).
      const token = await sign(claims());
      const ok = assertForwarded(
        await send(
          mcp(token, { headers: { Origin: APP_ORIGIN, authorization: `Bearer ${token}` } }),
          scoped,
        ),
        MCP_CLUSTER,
        "cross-origin, valid token",
      );
      assert.equal(ok.responseHeaders["access-control-allow-origin"], APP_ORIGIN);
      assert.ok(
        items(ok.responseHeaders["access-control-expose-headers"]).includes("mcp-session-id"),
      );
      // An unlisted origin gets the 401 without them: the browser hides it.
      const evil = assertChallenged(
        await send(mcp(undefined, { headers: { Origin: EVIL_ORIGIN } }), scoped),
        "unlisted origin, no token",
      );
      assert.deepEqual(corsHeaders(evil.headers), {}, "unlisted origin: no CORS headers");

      // The CORS filter moved after jwt_authn in a copy: jwt_authn refuses before the request
      // became a CORS request, and the 401 has no CORS headers.
      const late = structuredClone(scoped);
      const filters = gatewayHcm(late).http_filters;
      const at = filters.findIndex((f) => f.name === EXTENSION_NAMES.cors);
      assert.ok(at >= 0, "a CORS filter");
      const [cors] = filters.splice(at, 1);
      filters.splice(filters.findIndex((f) => f.name === EXTENSION_NAMES.jwtAuthn) + 1, 0, cors);
      const hidden = assertChallenged(
        await send(mcp(undefined, { headers: { Origin: APP_ORIGIN } }), late),
        "CORS after jwt_authn",
      );
      assert.deepEqual(corsHeaders(hidden.headers), {}, "CORS after jwt_authn: no CORS headers");
    });

    it("serves the metadata document (a direct response, which the CORS filter skips) with its own access-control-allow-origin: *, and answers its preflight with 204", async () => {
      for (const path of [new URL(METADATA_URL).pathname, "/.well-known/oauth-protected-resource"])
        for (const origin of [APP_ORIGIN, EVIL_ORIGIN]) {
          const what = `${path} from ${origin}`;
          const get = refused(
            await send(
              { authority: HOST, path, method: "GET", headers: { Origin: origin } },
              scoped,
            ),
            what,
          );
          assert.equal(get.status, 200, `${what}: status`);
          assert.equal(get.origin.by, "direct_response", `${what}: the gateway's document`);
          assert.equal(JSON.parse(get.body).resource, AUDIENCE, `${what}: the document`);
          // "*", not the origin: the CORS filter did not touch it.
          assert.equal(get.headers["access-control-allow-origin"], "*", `${what}: allow-origin`);
          assert.equal(get.headers["access-control-expose-headers"], undefined, `${what}`);

          const pre = refused(
            await send(
              {
                authority: HOST,
                path,
                method: "OPTIONS",
                headers: {
                  Origin: origin,
                  "Access-Control-Request-Method": "GET",
                  "Access-Control-Request-Headers": "mcp-protocol-version",
                },
              },
              scoped,
            ),
            `${what}: preflight`,
          );
          assert.equal(pre.status, 204, `${what}: preflight status`);
          assert.equal(pre.origin.by, "direct_response", `${what}: preflight by its route`);
          assert.equal(pre.body, "", `${what}: preflight body`);
          const h = pre.headers;
          assert.equal(h["access-control-allow-origin"], "*", `${what}: preflight allow-origin`);
          assert.ok(items(h["access-control-allow-methods"]).includes("get"), `${what}: GET`);
          assert.ok(
            items(h["access-control-allow-headers"]).includes("mcp-protocol-version"),
            `${what}: MCP-Protocol-Version allowed`,
          );
        }

      // Without the routes' own headers (a copy) nothing else adds them, not even for a listed
      // origin: the CORS filter does not run for a direct response.
      const bare = structuredClone(scoped);
      for (const vh of gatewayHcm(bare).route_config.virtual_hosts)
        for (const route of vh.routes)
          if ("direct_response" in route)
            route.response_headers_to_add = route.response_headers_to_add?.filter(
              (h) => !h.header.key.startsWith("access-control-"),
            );
      const get = refused(
        await send(
          {
            authority: HOST,
            path: "/.well-known/oauth-protected-resource",
            method: "GET",
            headers: { Origin: APP_ORIGIN },
          },
          bare,
        ),
        "document without its own CORS headers",
      );
      assert.equal(get.status, 200);
      assert.deepEqual(corsHeaders(get.headers), {}, "no CORS headers from the CORS filter");
    });
  });
});
