/**
 * The mesh's edge, second part: the ingress gateway. Real handshakes with the certificates the
 * program issued (the dev stack's self-signed edge certificate and the gateway's mesh identity),
 * against node:tls configured from the generated gateway bootstrap and the services' inbound
 * listeners; the NetworkPolicies evaluated with the independent model of their semantics.
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import * as tls from "node:tls";
import { GATEWAY_LISTEN_PORT, loadMeshConfig } from "../components/config";
import { GATEWAY_LISTENER } from "../components/envoy/gateway";
import { networkPolicySpecs } from "../components/network-policy";
import {
  call,
  CallerOptions,
  dial,
  EmulatedInbound,
  VerdictServer,
  evaluateHttpRbac,
  identityOf,
  inboundListener,
  nodeTlsVersion,
  pathAfterNormalization,
  PeerIdentity,
  Sidecar,
  sidecar,
  upstreamCaller,
  upstreamCluster,
} from "./harness/mtls";
import {
  Cluster,
  connectionAllowed,
  egressAllowed,
  ingressAllowed,
  Pod,
  Policy,
  PolicySpec,
  registeredPolicies,
} from "./harness/network-policy-model";
import {
  envoyConfigMapOf,
  findObject,
  metadataName,
  ProgramRun,
  runProgram,
  stackConfig,
} from "./harness/program";

type Json = Record<string, unknown>;

const GATEWAY = "mesh-gateway";
const MCP = "bookapi-mcp-server";
const BOOKAPI = "bookapi";
/** The address a client outside the cluster connects from (TEST-NET-2). */
const INTERNET = "198.51.100.7";

/** The dev stack (self-signed edge certificate, NodePort, /mcp public), its gateway patched. */
function gatewayConfig(patch: (gateway: Json) => Json = (g) => g): Record<string, string> {
  const config = stackConfig("dev");
  const gateway = JSON.parse(config["bookapi-mesh:gateway"]) as Json;
  return { ...config, "bookapi-mesh:gateway": JSON.stringify(patch(gateway)) };
}

/** The dev gateway with /mcp behind a token whose keys are fetched from auth.example.com. */
const jwksConfig = () =>
  gatewayConfig((g) => ({
    ...g,
    // Resource URLs carry the node port: an authenticated NodePort gateway fixes it.
    service: { type: "NodePort", port: 30443 },
    routes: [{ pathPrefix: "/mcp", service: MCP }],
    auth: {
      jwt: {
        issuer: "https://auth.example.com",
        audiences: ["https://mcp.localhost/mcp"],
        jwksUri: "https://auth.example.com/jwks.json",
        jwksCidrs: ["192.0.2.0/24"],
      },
    },
  }));

/** The dev gateway behind a load balancer that admits 203.0.113.0/24 only. */
const sourceRangesConfig = () =>
  gatewayConfig((g) => ({
    ...g,
    service: { type: "LoadBalancer", sourceRanges: ["203.0.113.0/24"] },
  }));

// ---------------------------------------------------------------------------------------------
// The edge listener's DownstreamTlsContext, read strictly: a field this emulation does not model
// (a validation context, cipher suites, a second filter chain) fails the test instead of being
// ignored.

function expectObject(v: unknown, where: string): Json {
  if (v === null || typeof v !== "object" || Array.isArray(v))
    throw new Error(`${where}: expected an object, found ${JSON.stringify(v)}`);
  return v as Json;
}

function expectString(v: unknown, where: string): string {
  if (typeof v !== "string") throw new Error(`${where}: expected a string, found ${String(v)}`);
  return v;
}

function onlyKeys(o: Json, known: string[], where: string): void {
  const unknown = Object.keys(o).filter((k) => !known.includes(k));
  if (unknown.length > 0) throw new Error(`${where}: ${unknown.join(", ")} is not modelled here`);
}

function single<T>(items: T[], where: string): T {
  if (items.length !== 1) throw new Error(`${where}: expected exactly one, found ${items.length}`);
  return items[0];
}

interface EdgeTls {
  minVersion: tls.SecureVersion;
  maxVersion: tls.SecureVersion;
  requireClientCertificate: boolean;
  cert: string;
  key: string;
  ecdhCurve?: string;
  alpn?: string[];
}

/** The gateway listener's TLS, its certificate read through the pod's mounts as Envoy reads it. */
function edgeListenerTls(gw: Sidecar): EdgeTls {
  const where = `${gw.service} listener ${GATEWAY_LISTENER}`;
  const resources = expectObject(gw.bootstrap.static_resources, `${where} static_resources`);
  const listener = single(
    (resources.listeners as Json[]).filter((l) => l.name === GATEWAY_LISTENER),
    where,
  );
  const port = expectObject(expectObject(listener.address, where).socket_address, where).port_value;
  assert.equal(port, GATEWAY_LISTEN_PORT, `${where} port`);
  const chain = single(listener.filter_chains as Json[], `${where} filter chains`);
  onlyKeys(chain, ["transport_socket", "filters"], `${where} filter chain`);
  const socket = expectObject(chain.transport_socket, `${where} transport_socket`);
  assert.equal(socket.name, "envoy.transport_sockets.tls");
  const ctx = expectObject(socket.typed_config, `${where} typed_config`);
  assert.equal(
    ctx["@type"],
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
  );
  onlyKeys(ctx, ["@type", "common_tls_context", "require_client_certificate"], where);
  const common = expectObject(ctx.common_tls_context, `${where} common_tls_context`);
  // No validation context: Envoy asks for no client certificate (server authentication only).
  onlyKeys(common, ["tls_params", "tls_certificate_sds_secret_configs", "alpn_protocols"], where);
  const params = expectObject(common.tls_params ?? {}, `${where} tls_params`);
  onlyKeys(
    params,
    ["tls_minimum_protocol_version", "tls_maximum_protocol_version", "ecdh_curves"],
    `${where} tls_params`,
  );
  const sdsConfig = single(
    common.tls_certificate_sds_secret_configs as Json[],
    `${where} tls_certificate_sds_secret_configs`,
  );
  onlyKeys(sdsConfig, ["name", "sds_config"], `${where} sds config`);
  const sdsSource = expectObject(
    expectObject(sdsConfig.sds_config, where).path_config_source,
    where,
  );
  const sdsFile = expectString(sdsSource.path, `${where} path_config_source.path`);
  const doc = expectObject(JSON.parse(gw.readFile(sdsFile)), sdsFile);
  const secret = single(
    (doc.resources as Json[]).filter((r) => r.name === sdsConfig.name),
    `${sdsFile} resource ${String(sdsConfig.name)}`,
  );
  const certificate = expectObject(secret.tls_certificate, `${sdsFile} tls_certificate`);
  onlyKeys(certificate, ["certificate_chain", "private_key", "watched_directory"], sdsFile);
  const file = (v: unknown, what: string) => {
    const source = expectObject(v, `${sdsFile} ${what}`);
    onlyKeys(source, ["filename"], `${sdsFile} ${what}`);
    return gw.readFile(expectString(source.filename, `${sdsFile} ${what}.filename`));
  };
  const list = (v: unknown) => (v === undefined ? undefined : (v as string[]).map(String));
  return {
    minVersion: nodeTlsVersion(params.tls_minimum_protocol_version, "TLSv1_2", `${where} min`),
    maxVersion: nodeTlsVersion(params.tls_maximum_protocol_version, "TLSv1_3", `${where} max`),
    requireClientCertificate: ctx.require_client_certificate === true,
    cert: file(certificate.certificate_chain, "certificate_chain"),
    key: file(certificate.private_key, "private_key"),
    ecdhCurve: list(params.ecdh_curves)?.join(":"),
    alpn: list(common.alpn_protocols),
  };
}

type EdgeVerdict =
  | { accepted: true; protocol: string | null; servername: string | false | null }
  | { accepted: false; code: string };

/** A node:tls server standing in for the gateway listener's TLS. */
async function startEdge(t: EdgeTls): Promise<VerdictServer<EdgeVerdict>> {
  const legacy = t.minVersion === "TLSv1" || t.minVersion === "TLSv1.1";
  const server = tls.createServer({
    cert: t.cert,
    key: t.key,
    // Without a validation context Envoy asks for no certificate; requiring one then refuses all.
    requestCert: t.requireClientCertificate,
    rejectUnauthorized: t.requireClientCertificate,
    minVersion: t.minVersion,
    maxVersion: t.maxVersion,
    // BoringSSL has no security levels: where Envoy would allow TLS < 1.2, so must OpenSSL 3.
    ...(legacy ? { ciphers: "DEFAULT@SECLEVEL=0" } : {}),
    ...(t.ecdhCurve === undefined ? {} : { ecdhCurve: t.ecdhCurve }),
    ...(t.alpn === undefined ? {} : { ALPNProtocols: t.alpn }),
  });
  const self = await VerdictServer.listen<EdgeVerdict>(server, "the emulated gateway");
  server.on("tlsClientError", (err: NodeJS.ErrnoException) =>
    self.record({ accepted: false, code: String(err.code ?? err.message) }),
  );
  server.on("secureConnection", (socket: tls.TLSSocket) => {
    socket.on("error", () => undefined);
    self.record({ accepted: true, protocol: socket.getProtocol(), servername: socket.servername });
    socket.end("hello\n");
  });
  return self;
}

/** `stringData` of a Secret the program registered. */
function secretData(run: ProgramRun, name: string): Record<string, string> {
  return findObject(run, "Secret", name).inputs.stringData as Record<string, string>;
}

/** The HTTP connection manager of a service's inbound listener. */
function inboundHcm(sc: Sidecar): Json {
  const listener = (
    expectObject(sc.bootstrap.static_resources, "static_resources").listeners as Json[]
  ).find((l) => l.name === "inbound");
  const where = `${sc.service} listener inbound`;
  const chain = single(expectObject(listener, where).filter_chains as Json[], `${where} chains`);
  const hcm = single(
    (chain.filters as Json[]).filter(
      (f) => f.name === "envoy.filters.network.http_connection_manager",
    ),
    `${sc.service} inbound HTTP connection manager`,
  );
  return expectObject(hcm.typed_config, `${sc.service} hcm typed_config`);
}

/** The `rules` of the HTTP RBAC filter of a service's inbound listener. */
function inboundHttpRbac(sc: Sidecar): unknown {
  const filters = inboundHcm(sc).http_filters as Array<{ name: string; typed_config: Json }>;
  return single(
    filters.filter((f) => f.name === "envoy.filters.http.rbac"),
    `${sc.service} inbound HTTP RBAC`,
  ).typed_config.rules;
}

describe("the ingress gateway's edge, with the certificates the program issued (dev stack)", () => {
  let run: ProgramRun;
  let gateway: Sidecar;
  let caCertificate: string;
  const servers: Array<{ close(): Promise<void> }> = [];
  before(async () => {
    run = await runProgram(gatewayConfig());
    gateway = sidecar(run, GATEWAY);
    caCertificate = String(run.outputs.caCertificate);
  });
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.close()));
  });

  it("completes TLS with a client that has no certificate, serving the self-signed edge certificate for the dnsNames of tls.selfSigned", async () => {
    const edge = edgeListenerTls(gateway);
    assert.equal(edge.requireClientCertificate, false);
    assert.equal(edge.minVersion, "TLSv1.2");
    // Read through the pod's mounts, the certificate is the edge Secret's.
    assert.equal(edge.cert, secretData(run, `${GATEWAY}-edge-tls`)["tls.crt"]);
    const server = await startEdge(edge);
    servers.push(server);

    const outcome = await dial(server.port, {
      servername: "mcp.localhost",
      ca: caCertificate,
      ALPNProtocols: ["h2", "http/1.1"],
    });
    assert.equal(outcome.error, undefined, JSON.stringify(outcome.error));
    assert.equal(outcome.response, "hello");
    const verdict = await server.nextVerdict();
    assert.ok(verdict.accepted, JSON.stringify(verdict));
    assert.equal(verdict.servername, "mcp.localhost");
    assert.equal(outcome.alpn, "h2");

    const cert = outcome.certificate;
    assert.ok(cert);
    const selfSigned = (
      JSON.parse(stackConfig("dev")["bookapi-mesh:gateway"]) as {
        tls: { selfSigned: { dnsNames: string[] } };
      }
    ).tls.selfSigned.dnsNames;
    assert.deepEqual(selfSigned, ["mcp.localhost", "localhost"]);
    assert.deepEqual(identityOf(cert).dns, selfSigned);
    assert.deepEqual(identityOf(cert).uri, [], "the edge certificate names no mesh identity");
    assert.ok(cert.verify(new X509Certificate(caCertificate).publicKey), "issued by the mesh CA");
    // serverAuth (1.3.6.1.5.5.7.3.1): browsers refuse a server certificate without it.
    assert.ok(cert.keyUsage?.includes("1.3.6.1.5.5.7.3.1"), String(cert.keyUsage));

    // The hostname check is real: a name the certificate does not carry is refused.
    const wrongName = await dial(server.port, {
      servername: "mcp.example.com",
      ca: caCertificate,
    });
    assert.equal(wrongName.error?.code, "ERR_TLS_CERT_ALTNAME_INVALID", wrongName.error?.message);
  });

  it("refuses a client that offers TLS 1.1 only, and accepts one that stops at TLS 1.2", async () => {
    const server = await startEdge(edgeListenerTls(gateway));
    servers.push(server);
    const older = await dial(server.port, {
      servername: "mcp.localhost",
      ca: caCertificate,
      maxVersion: "TLSv1.2",
    });
    assert.equal(older.error, undefined, JSON.stringify(older.error));
    assert.equal(older.protocol, "TLSv1.2");
    assert.ok((await server.nextVerdict()).accepted);

    const outcome = await dial(server.port, {
      servername: "mcp.localhost",
      ca: caCertificate,
      minVersion: "TLSv1.1",
      maxVersion: "TLSv1.1",
      // Let the client really offer TLS 1.1 (OpenSSL 3 disables it at its default level).
      ciphers: "DEFAULT@SECLEVEL=0",
    });
    assert.equal(outcome.response, undefined);
    assert.ok(outcome.error, "the handshake must fail");
    const verdict = await server.nextVerdict();
    assert.equal(verdict.accepted, false, JSON.stringify(verdict));
    // The server turned the client away for its protocol version (it did receive the hello).
    assert.match((verdict as { code: string }).code, /UNSUPPORTED_PROTOCOL|VERSION/i);
  });

  describe("the gateway calling services with its mesh identity", () => {
    const model = loadMeshConfig(gatewayConfig());
    const toMcp = (): CallerOptions => upstreamCaller(upstreamCluster(gateway, `upstream_${MCP}`));
    const gatewayIdentity = (): PeerIdentity => identityOf(toMcp().cert ?? "");

    it("presents the mesh-gateway-tls Secret's certificate, a mesh identity of its own", () => {
      const caller = toMcp();
      const secret = secretData(run, `${GATEWAY}-tls`);
      assert.equal(caller.cert, secret["tls.crt"]);
      assert.equal(caller.key, secret["tls.key"]);
      assert.deepEqual(gatewayIdentity().uri, [model.gateway?.spiffeId]);
      assert.equal(model.gateway?.spiffeId, "spiffe://cluster.local/ns/default/sa/mesh-gateway");
    });

    it("has its mTLS to bookapi-mcp-server accepted: handshake, SAN allow-list and network RBAC", async () => {
      const caller = toMcp();
      const mcp = model.services.find((s) => s.name === MCP);
      assert.equal(caller.servername, mcp?.fqdn);
      const server = await EmulatedInbound.start({ listener: inboundListener(sidecar(run, MCP)) });
      servers.push(server);
      const outcome = await call(server.port, caller);
      assert.equal(outcome.error, undefined, JSON.stringify(outcome.error));
      assert.equal(outcome.response, `accepted ${model.gateway?.spiffeId}`);
      const verdict = await server.nextVerdict();
      assert.ok(verdict.accepted, JSON.stringify(verdict));
      assert.deepEqual(verdict.peer.uri, [model.gateway?.spiffeId]);
    });

    it("is refused by bookapi, which it is not routed to, by the SAN allow-list and by RBAC each", async () => {
      const clusters = (
        expectObject(gateway.bootstrap.static_resources, "static_resources").clusters as Json[]
      ).map((c) => c.name);
      assert.ok(!clusters.includes(`upstream_${BOOKAPI}`), clusters.join(", "));
      const bookapi = model.services.find((s) => s.name === BOOKAPI);
      assert.ok(bookapi);
      // The gateway's identity, dialling bookapi as it would dial any mesh service.
      const caller: CallerOptions = {
        ...toMcp(),
        servername: bookapi.fqdn,
        sanMatchers: [
          { sanType: "DNS", match: { kind: "exact", value: bookapi.fqdn, ignoreCase: false } },
          { sanType: "URI", match: { kind: "exact", value: bookapi.spiffeId, ignoreCase: false } },
        ],
      };
      const listener = inboundListener(sidecar(run, BOOKAPI));
      for (const [checks, layer] of [
        [{}, "san"],
        [{ san: false }, "rbac"],
      ] as const) {
        const server = await EmulatedInbound.start({ listener, checks });
        servers.push(server);
        const outcome = await call(server.port, caller);
        assert.equal(outcome.response, undefined);
        const verdict = await server.nextVerdict();
        assert.equal(verdict.accepted, false, JSON.stringify(verdict));
        assert.equal(verdict.accepted === false && verdict.layer, layer, JSON.stringify(verdict));
      }
    });

    it("may request only the routed paths from bookapi-mcp-server (its inbound HTTP RBAC, emulated)", () => {
      const mcp = sidecar(run, MCP);
      const rules = inboundHttpRbac(mcp);
      const hcm = inboundHcm(mcp);
      const decide = (method: string, rawPath: string, peer = gatewayIdentity()) => {
        // Envoy normalizes the path before filters see it, or answers 400.
        const path = pathAfterNormalization(hcm, rawPath);
        if (path === undefined) return "400";
        return evaluateHttpRbac(rules, peer, { port: 15001, http: { method, path } }).allowed;
      };
      for (const method of ["GET", "POST", "DELETE"])
        for (const path of ["/mcp", "/mcp/", "/mcp/sessions/1", "/mcp?session=1"])
          assert.equal(decide(method, path), true, `${method} ${path}`);
      for (const path of ["/admin", "/", "/mcpx", "/mcp-admin", "/books", "/mcp/../admin"])
        assert.equal(decide("GET", path), false, path);
      assert.equal(decide("GET", "/mcp/..%2Fadmin"), "400");
      // It is the gateway the rules name: another mesh identity gets nothing, /mcp included.
      const bookapiPeer = identityOf(secretData(run, `${BOOKAPI}-tls`)["tls.crt"]);
      assert.equal(decide("GET", "/mcp", bookapiPeer), false);
    });
  });

  it("hardens the gateway pod as the sidecars are and mounts exactly the Secrets and ConfigMap its bootstrap references", () => {
    type Container = {
      name: string;
      args?: string[];
      securityContext?: Json;
      ports?: Json[];
      volumeMounts?: Array<{
        name: string;
        mountPath: string;
        readOnly?: boolean;
        subPath?: string;
      }>;
    };
    type Volume = {
      name: string;
      configMap?: { name: string; items?: unknown };
      secret?: { secretName: string; items?: Array<{ key: string; path: string }> };
    };
    type PodSpec = {
      automountServiceAccountToken?: boolean;
      serviceAccountName?: string;
      hostNetwork?: boolean;
      hostPID?: boolean;
      hostIPC?: boolean;
      securityContext?: Json;
      initContainers?: Container[];
      containers: Container[];
      volumes: Volume[];
    };
    const podOf = (name: string) =>
      (findObject(run, "Deployment", name).inputs.spec as { template: { spec: PodSpec } }).template
        .spec;
    const pod = podOf(GATEWAY);

    // Hardening: the same container securityContext as the sidecars' Envoy, no token, no host.
    assert.equal(pod.automountServiceAccountToken, false);
    assert.equal(pod.serviceAccountName, GATEWAY);
    assert.equal(
      findObject(run, "ServiceAccount", GATEWAY).inputs.automountServiceAccountToken,
      false,
    );
    assert.equal(pod.hostNetwork ?? false, false);
    assert.equal(pod.hostPID ?? false, false);
    assert.equal(pod.hostIPC ?? false, false);
    assert.equal(pod.securityContext?.runAsNonRoot, true);
    assert.deepEqual(pod.securityContext?.seccompProfile, { type: "RuntimeDefault" });
    const containers = [...(pod.initContainers ?? []), ...pod.containers];
    assert.deepEqual(
      containers.map((c) => c.name),
      ["envoy"],
    );
    const envoy = containers[0];
    const sidecarPod = podOf(BOOKAPI);
    const sidecarEnvoy = [...(sidecarPod.initContainers ?? []), ...sidecarPod.containers].find(
      (c) => c.name === "envoy",
    );
    assert.deepEqual(envoy.securityContext, sidecarEnvoy?.securityContext);
    const sc = envoy.securityContext ?? {};
    assert.equal(sc.runAsNonRoot, true);
    assert.equal(sc.readOnlyRootFilesystem, true);
    assert.equal(sc.allowPrivilegeEscalation, false);
    assert.notEqual(sc.privileged, true);
    assert.deepEqual(sc.capabilities, { drop: ["ALL"] });
    assert.notEqual(sc.runAsUser, 0);
    assert.ok(!(envoy.ports ?? []).some((p) => p.hostPort !== undefined), "no hostPort");

    // Every file Envoy reads: the bootstrap, the SDS files it names, the files those name.
    const args = envoy.args ?? [];
    const configPath = args[args.indexOf("--config-path") + 1];
    const files = new Set<string>([configPath]);
    const directories = new Set<string>();
    const walk = (v: unknown): void => {
      if (Array.isArray(v)) return v.forEach(walk);
      if (v === null || typeof v !== "object") return;
      const o = v as Json;
      if (typeof o.filename === "string") files.add(o.filename);
      const watched = o.watched_directory as { path?: unknown } | undefined;
      if (typeof watched?.path === "string") directories.add(watched.path);
      const pathSource = o.path_config_source as { path?: unknown } | undefined;
      if (typeof pathSource?.path === "string" && !files.has(pathSource.path)) {
        files.add(pathSource.path);
        walk(JSON.parse(gateway.readFile(pathSource.path)));
      }
      Object.values(o).forEach(walk);
    };
    walk(gateway.bootstrap);

    // Each file resolved through the container's mounts to a volume and a key of its source.
    const mounts = envoy.volumeMounts ?? [];
    assert.ok(
      mounts.every((m) => m.readOnly === true && m.subPath === undefined),
      JSON.stringify(mounts),
    );
    const volumes = new Map(pod.volumes.map((v) => [v.name, v]));
    const mountOf = (path: string) => {
      const m = mounts
        .filter((x) => path === x.mountPath || path.startsWith(`${x.mountPath}/`))
        .sort((a, b) => b.mountPath.length - a.mountPath.length)[0];
      assert.ok(m, `${path} is on no volume of the Envoy container`);
      return m;
    };
    const read: Record<string, string[]> = {};
    const sourceOf = (volume: Volume) =>
      volume.configMap
        ? `ConfigMap ${volume.configMap.name}`
        : volume.secret
          ? `Secret ${volume.secret.secretName}`
          : `volume ${volume.name} of another kind`;
    const usedVolumes = new Set<string>();
    for (const dir of directories) usedVolumes.add(mountOf(dir).name);
    for (const file of files) {
      const m = mountOf(file);
      usedVolumes.add(m.name);
      const volume = volumes.get(m.name);
      assert.ok(volume, `no volume ${m.name}`);
      const rel = file.slice(m.mountPath.length + 1);
      const items = volume.secret?.items;
      const key = items ? items.find((i) => i.path === rel)?.key : rel;
      assert.ok(key, `${file}: no item of ${m.name} has path ${rel}`);
      (read[sourceOf(volume)] ??= []).push(key);
    }
    for (const keys of Object.values(read)) keys.sort();

    const configMap = metadataName(envoyConfigMapOf(run, GATEWAY));
    assert.deepEqual(read, {
      [`ConfigMap ${configMap}`]: [
        "envoy.json",
        "sds-certificate.json",
        "sds-edge.json",
        "sds-validation.json",
      ],
      [`Secret ${GATEWAY}-tls`]: ["ca.crt", "tls.crt", "tls.key"],
      [`Secret ${GATEWAY}-edge-tls`]: ["tls.crt", "tls.key"],
    });
    // Nothing mounted that the bootstrap does not read, and every key read exists.
    assert.deepEqual(
      [...volumes.keys()].sort(),
      [...usedVolumes].sort(),
      "the pod's volumes are exactly the ones read",
    );
    assert.deepEqual(
      mounts.map((m) => m.name).sort(),
      [...usedVolumes].sort(),
      "the Envoy container's mounts are exactly the ones read",
    );
    assert.deepEqual(
      Object.keys(envoyConfigMapOf(run, GATEWAY).inputs.data as Json).sort(),
      read[`ConfigMap ${configMap}`],
    );
    for (const name of [`${GATEWAY}-tls`, `${GATEWAY}-edge-tls`]) {
      const data = secretData(run, name);
      for (const key of read[`Secret ${name}`]) assert.match(data[key], /-----BEGIN /, name + key);
    }
    // The edge Secret by its key pair only: a cert-manager Secret's ca.crt is not the mesh's.
    const edgeVolume = [...volumes.values()].find(
      (v) => v.secret?.secretName === `${GATEWAY}-edge-tls`,
    );
    assert.deepEqual(edgeVolume?.secret?.items, [
      { key: "tls.crt", path: "tls.crt" },
      { key: "tls.key", path: "tls.key" },
    ]);
  });
});

// ---------------------------------------------------------------------------------------------
// NetworkPolicy

/** The mesh's pods with the labels of their Deployments' templates, and a few outside addresses. */
function podsOf(run: ProgramRun): Record<string, Pod> {
  const pods: Record<string, Pod> = {};
  for (const [i, name] of [BOOKAPI, MCP, GATEWAY].entries()) {
    const template = (
      findObject(run, "Deployment", name).inputs.spec as {
        template: { metadata: { labels: Record<string, string> } };
      }
    ).template;
    pods[name] = {
      name,
      namespace: "default",
      labels: template.metadata.labels,
      ip: `10.0.0.${i + 10}`,
    };
  }
  const outside = (name: string, ip: string): Pod => ({
    name,
    namespace: "",
    labels: {},
    ip,
    external: true,
  });
  pods.internet = outside("internet", INTERNET);
  pods.internet6 = outside("internet6", "2001:db8::7");
  pods.jwks = outside("jwks", "192.0.2.10");
  pods.allowed = outside("allowed", "203.0.113.9");
  return pods;
}

function clusterOf(policies: Policy[]): Cluster {
  const ns = (name: string) => ({ "kubernetes.io/metadata.name": name });
  return { namespaces: { default: ns("default"), "kube-system": ns("kube-system") }, policies };
}

describe("who reaches the gateway, and whom it reaches (a model of NetworkPolicy semantics)", () => {
  let run: ProgramRun;
  let cluster: Cluster;
  let pods: Record<string, Pod>;
  before(async () => {
    run = await runProgram(gatewayConfig());
    cluster = clusterOf(registeredPolicies(run));
    pods = podsOf(run);
  });

  it("gives the gateway pods the labels the policies select it by", () => {
    const labels = pods[GATEWAY].labels;
    assert.equal(labels["app.kubernetes.io/name"], GATEWAY);
    assert.equal(labels["app.kubernetes.io/part-of"], "bookapi-mesh");
    assert.equal(labels["app.kubernetes.io/component"], "gateway");
  });

  it("lets the internet reach the gateway's TLS port, and neither another gateway port nor any sidecar", () => {
    const { internet, internet6 } = pods;
    assert.equal(connectionAllowed(cluster, internet, pods[GATEWAY], GATEWAY_LISTEN_PORT), true);
    assert.equal(connectionAllowed(cluster, internet6, pods[GATEWAY], GATEWAY_LISTEN_PORT), true);
    for (const service of [BOOKAPI, MCP])
      for (const port of [15001, 5288, 5289])
        assert.equal(
          connectionAllowed(cluster, internet, pods[service], port),
          false,
          `${service}:${port}`,
        );
    for (const port of [443, 9901, 15001, 15021, 15090])
      assert.equal(
        connectionAllowed(cluster, internet, pods[GATEWAY], port),
        false,
        `gateway:${port}`,
      );
  });

  it("lets the gateway reach bookapi-mcp-server's mTLS port only: not bookapi, not the internet without a jwksUri", () => {
    const gw = pods[GATEWAY];
    assert.equal(connectionAllowed(cluster, gw, pods[MCP], 15001), true);
    assert.equal(
      connectionAllowed(cluster, gw, pods[MCP], 5289),
      false,
      "the MCP server's app port",
    );
    assert.equal(connectionAllowed(cluster, gw, pods[BOOKAPI], 15001), false);
    // Both halves refuse: the gateway's own egress, and bookapi's ingress.
    assert.equal(
      egressAllowed(cluster, gw, pods[BOOKAPI], 15001, "TCP"),
      false,
      "the gateway's egress",
    );
    assert.equal(
      ingressAllowed(cluster, gw, pods[BOOKAPI], 15001, "TCP"),
      false,
      "bookapi's ingress",
    );
    assert.equal(connectionAllowed(cluster, gw, pods.internet, 443), false);
    assert.equal(connectionAllowed(cluster, gw, pods.jwks, 443), false);
  });

  it("lets the gateway fetch a jwksUri's keys on 443 from jwksCidrs only", () => {
    const model = loadMeshConfig(jwksConfig());
    assert.equal(model.gateway?.routes[0].jwt?.jwksUri, "https://auth.example.com/jwks.json");
    const policies = networkPolicySpecs(model).map((p): Policy => ({
      name: p.name,
      namespace: model.namespace,
      spec: JSON.parse(JSON.stringify(p.spec)) as PolicySpec,
    }));
    const withJwks = clusterOf(policies);
    const gw = pods[GATEWAY];
    assert.equal(connectionAllowed(withJwks, gw, pods.jwks, 443), true);
    assert.equal(connectionAllowed(withJwks, gw, pods.internet, 443), false);
    assert.equal(connectionAllowed(withJwks, gw, pods.jwks, 80), false);
    assert.equal(connectionAllowed(withJwks, gw, pods[MCP], 15001), true);
    assert.equal(connectionAllowed(withJwks, gw, pods[BOOKAPI], 15001), false);
  });

  describe("with gateway.service.sourceRanges", () => {
    let limited: ProgramRun;
    before(async () => {
      limited = await runProgram(sourceRangesConfig());
    });

    it("admits only the source ranges to the gateway, on a LoadBalancer that keeps client addresses and filters them too", () => {
      const only = clusterOf(registeredPolicies(limited));
      const gw = pods[GATEWAY];
      assert.equal(connectionAllowed(only, pods.allowed, gw, GATEWAY_LISTEN_PORT), true);
      assert.equal(connectionAllowed(only, pods.internet, gw, GATEWAY_LISTEN_PORT), false);
      assert.equal(connectionAllowed(only, pods.internet6, gw, GATEWAY_LISTEN_PORT), false);
      assert.equal(connectionAllowed(only, pods.allowed, gw, 15021), false);

      const service = findObject(limited, "Service", GATEWAY).inputs.spec as Json;
      assert.equal(service.type, "LoadBalancer");
      assert.deepEqual(service.loadBalancerSourceRanges, ["203.0.113.0/24"]);
      assert.equal(service.externalTrafficPolicy, "Local");
      assert.deepEqual(service.ports, [
        { name: "https", port: 443, targetPort: GATEWAY_LISTEN_PORT, protocol: "TCP" },
      ]);
    });
  });
});
