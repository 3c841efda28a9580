/**
 * Emulates an Envoy sidecar's mTLS edges with node:tls, configured only from what the program
 * generated: the bootstrap and SDS files and the key material, read the way Envoy reads them
 * (through the Envoy container's volume mounts).
 *
 * - `inboundListener` / `upstreamCluster` extract a DownstreamTlsContext / UpstreamTlsContext and
 *   the network RBAC filter into typed values. Anything the emulation does not model (an unknown
 *   field, a second filter chain, a missing validation context) throws, so a changed or broken
 *   config fails loudly instead of passing against a weaker emulation.
 * - `EmulatedInbound` is a node:tls server standing in for the inbound listener: Envoy's handshake
 *   (trust, client-certificate requirement, TLS versions, SAN matchers), then its network RBAC.
 *   A refusal destroys the socket before any application data; acceptance answers one line.
 * - `call` is the outbound side: the caller's certificate, SNI and Envoy's SAN check of the
 *   server certificate (instead of node's hostname check).
 *
 * Envoy semantics reproduced (source/common/tls/cert_validator, source/extensions/filters/common/rbac):
 * - SAN matchers: the peer passes when any matcher matches any SAN of its type; an empty list
 *   means no SAN check. A DNS matcher with `exact` uses DNS matching (case-insensitive, a
 *   certificate wildcard `*.x` covers one label); other matchers are plain StringMatchers.
 * - combined_validation_context: the SDS validation context merged into the default one
 *   (repeated fields append, singular ones from SDS win).
 * - RBAC `authenticated.principal_name` matches the peer's URI SANs, then DNS SANs, then its
 *   subject (RFC 2253); ALLOW with no matching policy (or no policies) denies.
 */
import { X509Certificate } from "node:crypto";
import * as net from "node:net";
import * as tls from "node:tls";
import { AsnConvert } from "@peculiar/asn1-schema";
import { Certificate, id_ce_subjectAltName, SubjectAlternativeName } from "@peculiar/asn1-x509";
import { CA_CERTIFICATE_USES, serviceCertificateUses } from "../../components/pki";
import { fakeTlsResource } from "./fake-tls";
import { findObject, ProgramRun } from "./program";

type Json = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------
// Strict navigation of generated JSON: every step names where it looked.

function fail(where: string, what: string): never {
  throw new Error(`mtls emulation: ${where}: ${what}`);
}

function show(v: unknown): string {
  return v === undefined ? "nothing" : JSON.stringify(v).slice(0, 200);
}

function obj(v: unknown, where: string): Json {
  if (v === null || typeof v !== "object" || Array.isArray(v))
    fail(where, `expected an object, found ${show(v)}`);
  return v as Json;
}

function arr(v: unknown, where: string): unknown[] {
  if (!Array.isArray(v)) fail(where, `expected an array, found ${show(v)}`);
  return v;
}

function str(v: unknown, where: string): string {
  if (typeof v !== "string") fail(where, `expected a string, found ${show(v)}`);
  return v;
}

function objs(v: unknown, where: string): Json[] {
  return arr(v, where).map((x, i) => obj(x, `${where}[${i}]`));
}

/** Throws on fields the emulation does not model: they could change what Envoy accepts. */
function onlyKeys(o: Json, known: readonly string[], where: string): void {
  const unknown = Object.keys(o).filter((k) => !known.includes(k));
  if (unknown.length > 0)
    fail(
      where,
      `the emulation does not model ${unknown.join(", ")} (extend tests/harness/mtls.ts)`,
    );
}

function exactlyOne<T>(items: T[], where: string, what: string): T {
  if (items.length !== 1) fail(where, `expected exactly one ${what}, found ${items.length}`);
  return items[0];
}

// ---------------------------------------------------------------------------------------------
// A sidecar's view of the pod: the files Envoy reads, resolved through its volume mounts.

export interface Sidecar {
  service: string;
  /** The bootstrap Envoy loads (`--config-path`). */
  bootstrap: Json;
  /** A file's contents as the Envoy container sees it. */
  readFile(file: string): string;
}

/** The Envoy sidecar of a service's Deployment: the container started with `--config-path`. */
export function sidecar(run: ProgramRun, service: string): Sidecar {
  const where = `Deployment ${service}`;
  const deployment = findObject(run, "Deployment", service);
  const template = obj(obj(deployment.inputs.spec, `${where} spec`).template, `${where} template`);
  const pod = obj(template.spec, `${where} pod spec`);
  const containers = [
    ...(pod.initContainers === undefined
      ? []
      : objs(pod.initContainers, `${where} initContainers`)),
    ...objs(pod.containers, `${where} containers`),
  ];
  const argsOf = (c: Json): string[] =>
    c.args === undefined ? [] : arr(c.args, `${where} args`).map((a) => str(a, `${where} args`));
  const envoy = exactlyOne(
    containers.filter((c) => argsOf(c).some((a) => a === "--config-path" || a === "-c")),
    where,
    "container started with --config-path (the Envoy sidecar)",
  );
  const args = argsOf(envoy);
  const configPath = str(
    args[args.findIndex((a) => a === "--config-path" || a === "-c") + 1],
    `${where} --config-path`,
  );
  const volumes = new Map(
    objs(pod.volumes ?? [], `${where} volumes`).map((v) => [str(v.name, `${where} volume`), v]),
  );
  const mounts = objs(envoy.volumeMounts ?? [], `${where} envoy volumeMounts`);

  function readFile(file: string): string {
    const at = `${where}: file ${file}`;
    const candidates = mounts
      .map((m) => ({ m, mountPath: str(m.mountPath, at).replace(/\/+$/, "") }))
      .filter(({ m, mountPath }) =>
        m.subPath === undefined ? file.startsWith(`${mountPath}/`) : file === mountPath,
      )
      .sort((a, b) => b.mountPath.length - a.mountPath.length);
    if (candidates.length === 0) fail(at, "no volume of the Envoy container is mounted there");
    const { m, mountPath } = candidates[0];
    const rel = m.subPath === undefined ? file.slice(mountPath.length + 1) : str(m.subPath, at);
    const volume = volumes.get(str(m.name, at)) ?? fail(at, `no volume named ${show(m.name)}`);
    const keyFor = (source: Json): string => {
      if (source.items === undefined) return rel;
      const item = objs(source.items, `${at} items`).find((i) => i.path === rel);
      return str(item?.key, `${at} (items has no path ${rel})`);
    };
    const fromConfigMap = (source: Json, key: string) => {
      const cm = findObject(run, "ConfigMap", str(source.name, at));
      const data = obj(cm.inputs.data, `${at} ConfigMap data`);
      return str(data[key], `${at} ConfigMap ${show(source.name)} key ${key}`);
    };
    const fromSecret = (name: string, key: string) => {
      const secret = findObject(run, "Secret", name);
      const stringData = secret.inputs.stringData as Json | undefined;
      if (stringData?.[key] !== undefined) return str(stringData[key], `${at} Secret key ${key}`);
      const data = obj(secret.inputs.data ?? {}, `${at} Secret data`);
      return Buffer.from(str(data[key], `${at} Secret key ${key}`), "base64").toString("utf8");
    };
    if (volume.configMap !== undefined) {
      const source = obj(volume.configMap, at);
      return fromConfigMap(source, keyFor(source));
    }
    if (volume.secret !== undefined) {
      const source = obj(volume.secret, at);
      return fromSecret(str(source.secretName, at), keyFor(source));
    }
    if (volume.projected !== undefined) {
      // Each source puts its items (or, without items, every key) at the volume's root.
      const sources = objs(obj(volume.projected, at).sources, `${at} projected sources`);
      const holding = sources.filter((s) => {
        const source = obj(s.secret ?? s.configMap, `${at} projected source (secret or configMap)`);
        return source.items === undefined || objs(source.items, at).some((i) => i.path === rel);
      });
      const source = exactlyOne(holding, at, `projected source with path ${rel}`);
      if (source.configMap !== undefined) {
        const cm = obj(source.configMap, at);
        return fromConfigMap(cm, keyFor(cm));
      }
      const secret = obj(source.secret, at);
      return fromSecret(str(secret.name, at), keyFor(secret));
    }
    return fail(at, `volume ${show(m.name)} is neither a ConfigMap, a Secret nor projected`);
  }

  const text = readFile(configPath);
  let bootstrap: Json;
  try {
    bootstrap = obj(JSON.parse(text), `${where} bootstrap`);
  } catch (err) {
    return fail(`${where} bootstrap ${configPath}`, (err as Error).message);
  }
  return { service, bootstrap, readFile };
}

// ---------------------------------------------------------------------------------------------
// Matchers

export type SanType = "DNS" | "URI" | "EMAIL" | "IP_ADDRESS";

export type StringMatch =
  | { kind: "exact" | "prefix" | "suffix" | "contains"; value: string; ignoreCase: boolean }
  | { kind: "safe_regex"; regex: RegExp };

export interface SanMatcher {
  sanType: SanType;
  match: StringMatch;
}

function stringMatcher(v: unknown, where: string): StringMatch {
  const o = obj(v, where);
  onlyKeys(o, ["exact", "prefix", "suffix", "contains", "safe_regex", "ignore_case"], where);
  const kinds = (["exact", "prefix", "suffix", "contains", "safe_regex"] as const).filter(
    (k) => o[k] !== undefined,
  );
  const kind = exactlyOne(kinds, where, "match pattern");
  if (kind === "safe_regex") {
    const re = obj(o.safe_regex, `${where}.safe_regex`);
    // RE2 full match; the mesh's patterns stay within the syntax JavaScript shares with RE2.
    return { kind, regex: new RegExp(`^(?:${str(re.regex, `${where}.safe_regex.regex`)})$`) };
  }
  return { kind, value: str(o[kind], `${where}.${kind}`), ignoreCase: o.ignore_case === true };
}

function matchString(m: StringMatch, s: string): boolean {
  if (m.kind === "safe_regex") return m.regex.test(s);
  const [v, t] = m.ignoreCase ? [m.value.toLowerCase(), s.toLowerCase()] : [m.value, s];
  switch (m.kind) {
    case "exact":
      return t === v;
    case "prefix":
      return t.startsWith(v);
    case "suffix":
      return t.endsWith(v);
    case "contains":
      return t.includes(v);
  }
}

/** Envoy's Utility::dnsNameMatch: case-insensitive; a certificate `*.x` covers one label. */
function dnsNameMatch(name: string, san: string): boolean {
  const [n, p] = [name.toLowerCase(), san.toLowerCase()];
  if (n === p) return true;
  if (!p.startsWith("*.")) return false;
  const dot = n.indexOf(".");
  return dot > 0 && n.slice(dot) === p.slice(1);
}

function sanMatcher(v: unknown, where: string): SanMatcher {
  const o = obj(v, where);
  onlyKeys(o, ["san_type", "matcher"], where);
  const sanType = str(o.san_type, `${where}.san_type`);
  if (!["DNS", "URI", "EMAIL", "IP_ADDRESS"].includes(sanType))
    fail(where, `san_type ${sanType} is not modelled`);
  return { sanType: sanType as SanType, match: stringMatcher(o.matcher, `${where}.matcher`) };
}

/** What a certificate says about its holder, as Envoy reads it. */
export interface PeerIdentity {
  dns: string[];
  uri: string[];
  email: string[];
  ip: string[];
  /** Subject in RFC 2253 form (most specific first), as Envoy's subjectPeerCertificate(). */
  subject: string;
}

export function identityOf(cert: X509Certificate | string): PeerIdentity {
  const x509 = typeof cert === "string" ? new X509Certificate(cert) : cert;
  const id: PeerIdentity = { dns: [], uri: [], email: [], ip: [], subject: "" };
  id.subject = x509.subject.split("\n").reverse().join(",");
  const parsed = AsnConvert.parse(x509.raw, Certificate);
  const ext = parsed.tbsCertificate.extensions?.find((e) => e.extnID === id_ce_subjectAltName);
  if (ext === undefined) return id;
  for (const name of AsnConvert.parse(ext.extnValue.buffer, SubjectAlternativeName)) {
    if (name.dNSName !== undefined) id.dns.push(name.dNSName);
    if (name.uniformResourceIdentifier !== undefined) id.uri.push(name.uniformResourceIdentifier);
    if (name.rfc822Name !== undefined) id.email.push(name.rfc822Name);
    if (name.iPAddress !== undefined) id.ip.push(name.iPAddress);
  }
  return id;
}

function sansOfType(id: PeerIdentity, t: SanType): string[] {
  return { DNS: id.dns, URI: id.uri, EMAIL: id.email, IP_ADDRESS: id.ip }[t];
}

/** Envoy's SAN check: no matchers accept any peer; otherwise one matcher must match one SAN. */
export function sanMatches(matchers: SanMatcher[], id: PeerIdentity): boolean {
  if (matchers.length === 0) return true;
  return matchers.some((m) =>
    sansOfType(id, m.sanType).some((san) =>
      m.sanType === "DNS" && m.match.kind === "exact"
        ? dnsNameMatch(m.match.value, san)
        : matchString(m.match, san),
    ),
  );
}

// ---------------------------------------------------------------------------------------------
// TLS contexts

type EnvoyTlsVersion = "TLSv1_0" | "TLSv1_1" | "TLSv1_2" | "TLSv1_3";
const NODE_VERSION: Record<EnvoyTlsVersion, tls.SecureVersion> = {
  TLSv1_0: "TLSv1",
  TLSv1_1: "TLSv1.1",
  TLSv1_2: "TLSv1.2",
  TLSv1_3: "TLSv1.3",
};

/** Envoy's TlsParameters version enum as node's min/maxVersion; TLS_AUTO/unset = Envoy default. */
export function nodeTlsVersion(
  v: unknown,
  fallback: EnvoyTlsVersion,
  where: string,
): tls.SecureVersion {
  const name = v === undefined || v === "TLS_AUTO" ? fallback : str(v, where);
  if (!(name in NODE_VERSION)) fail(where, `unknown TLS version ${name}`);
  return NODE_VERSION[name as EnvoyTlsVersion];
}

export interface CommonTls {
  minVersion: tls.SecureVersion;
  maxVersion: tls.SecureVersion;
  /** The certificate Envoy presents, with its key (PEM). */
  cert: string;
  key: string;
  /** Trusted CA bundle (PEM). */
  ca: string;
  sanMatchers: SanMatcher[];
  ciphers?: string;
  ecdhCurve?: string;
  alpn?: string[];
}

export interface DownstreamTls extends CommonTls {
  requireClientCertificate: boolean;
}

export interface UpstreamTls extends CommonTls {
  sni: string;
}

function dataSource(sc: Sidecar, v: unknown, where: string): string {
  const o = obj(v, where);
  onlyKeys(o, ["filename", "inline_string", "inline_bytes", "watched_directory"], where);
  if (o.filename !== undefined) return sc.readFile(str(o.filename, `${where}.filename`));
  if (o.inline_string !== undefined) return str(o.inline_string, `${where}.inline_string`);
  if (o.inline_bytes !== undefined)
    return Buffer.from(str(o.inline_bytes, where), "base64").toString("utf8");
  return fail(where, "data source has no filename, inline_string or inline_bytes");
}

/** A secret delivered by file-based SDS (`path_config_source` or the older `path`). */
function sdsSecret(sc: Sidecar, v: unknown, where: string): Json {
  const config = obj(v, where);
  onlyKeys(config, ["name", "sds_config"], where);
  const name = str(config.name, `${where}.name`);
  const source = obj(config.sds_config, `${where}.sds_config`);
  onlyKeys(source, ["path_config_source", "path", "resource_api_version"], `${where}.sds_config`);
  const file =
    source.path_config_source !== undefined
      ? str(obj(source.path_config_source, where).path, `${where} path_config_source.path`)
      : str(source.path, `${where}.sds_config.path`);
  const text = sc.readFile(file);
  let doc: Json;
  try {
    doc = obj(JSON.parse(text), file);
  } catch (err) {
    return fail(`${where} (${file})`, (err as Error).message);
  }
  const secret = exactlyOne(
    objs(doc.resources, `${file} resources`).filter((r) => r.name === name),
    file,
    `SDS resource named ${name}`,
  );
  if (!str(secret["@type"], `${file} ${name} @type`).endsWith("transport_sockets.tls.v3.Secret"))
    fail(file, `resource ${name} is not a tls.v3.Secret`);
  return secret;
}

interface Validation {
  ca?: string;
  sanMatchers: SanMatcher[];
}

const VALIDATION_KEYS = [
  "trusted_ca",
  "watched_directory",
  "match_typed_subject_alt_names",
  "match_subject_alt_names",
];

function validationContext(sc: Sidecar, v: unknown, where: string): Validation {
  const o = obj(v, where);
  onlyKeys(o, VALIDATION_KEYS, where);
  if (o.match_subject_alt_names !== undefined && arr(o.match_subject_alt_names, where).length > 0)
    fail(where, "deprecated match_subject_alt_names is not modelled");
  return {
    ca:
      o.trusted_ca === undefined ? undefined : dataSource(sc, o.trusted_ca, `${where}.trusted_ca`),
    sanMatchers: arr(o.match_typed_subject_alt_names ?? [], where).map((m, i) =>
      sanMatcher(m, `${where}.match_typed_subject_alt_names[${i}]`),
    ),
  };
}

function commonTls(sc: Sidecar, v: unknown, where: string, defaultMax: EnvoyTlsVersion): CommonTls {
  const ctx = obj(v, where);
  onlyKeys(
    ctx,
    [
      "tls_params",
      "tls_certificates",
      "tls_certificate_sds_secret_configs",
      "validation_context",
      "validation_context_sds_secret_config",
      "combined_validation_context",
      "alpn_protocols",
    ],
    where,
  );
  const params = obj(ctx.tls_params ?? {}, `${where}.tls_params`);
  onlyKeys(
    params,
    [
      "tls_minimum_protocol_version",
      "tls_maximum_protocol_version",
      "cipher_suites",
      "ecdh_curves",
    ],
    `${where}.tls_params`,
  );
  const list = (x: unknown, at: string) => arr(x, at).map((s) => str(s, at));

  // The certificate Envoy presents: exactly one, static or from SDS.
  const identities = [
    ...arr(ctx.tls_certificates ?? [], where).map((c) => obj(c, `${where}.tls_certificates`)),
    ...arr(ctx.tls_certificate_sds_secret_configs ?? [], where).map((c) =>
      obj(sdsSecret(sc, c, `${where}.tls_certificate_sds_secret_configs`).tls_certificate, where),
    ),
  ];
  const identity = exactlyOne(identities, where, "certificate (tls_certificates or SDS)");
  onlyKeys(
    identity,
    ["certificate_chain", "private_key", "watched_directory"],
    `${where} identity`,
  );

  // What Envoy verifies the peer against.
  let validation: Validation;
  if (ctx.combined_validation_context !== undefined) {
    const at = `${where}.combined_validation_context`;
    const combined = obj(ctx.combined_validation_context, at);
    onlyKeys(combined, ["default_validation_context", "validation_context_sds_secret_config"], at);
    const base = validationContext(sc, combined.default_validation_context ?? {}, `${at}.default`);
    const dynamic = validationContext(
      sc,
      sdsSecret(sc, combined.validation_context_sds_secret_config, `${at}.sds`).validation_context,
      `${at} SDS validation_context`,
    );
    validation = {
      ca: dynamic.ca ?? base.ca,
      sanMatchers: [...base.sanMatchers, ...dynamic.sanMatchers],
    };
  } else if (ctx.validation_context_sds_secret_config !== undefined) {
    const secret = sdsSecret(sc, ctx.validation_context_sds_secret_config, where);
    validation = validationContext(sc, secret.validation_context, `${where} SDS validation`);
  } else if (ctx.validation_context !== undefined) {
    validation = validationContext(sc, ctx.validation_context, `${where}.validation_context`);
  } else {
    return fail(where, "no validation context: Envoy would not verify the peer at all");
  }

  return {
    minVersion: nodeTlsVersion(params.tls_minimum_protocol_version, "TLSv1_2", `${where} min`),
    maxVersion: nodeTlsVersion(params.tls_maximum_protocol_version, defaultMax, `${where} max`),
    cert: dataSource(sc, identity.certificate_chain, `${where} certificate_chain`),
    key: dataSource(sc, identity.private_key, `${where} private_key`),
    ca: validation.ca ?? fail(where, "validation context has no trusted_ca"),
    sanMatchers: validation.sanMatchers,
    ciphers:
      params.cipher_suites === undefined ? undefined : list(params.cipher_suites, where).join(":"),
    ecdhCurve:
      params.ecdh_curves === undefined ? undefined : list(params.ecdh_curves, where).join(":"),
    alpn: ctx.alpn_protocols === undefined ? undefined : list(ctx.alpn_protocols, where),
  };
}

function tlsTransportSocket(v: unknown, where: string, type: string): Json {
  const socket = obj(v, `${where}.transport_socket`);
  if (socket.name !== "envoy.transport_sockets.tls")
    fail(where, `transport socket is ${show(socket.name)}, not envoy.transport_sockets.tls`);
  const typed = obj(socket.typed_config, `${where}.transport_socket.typed_config`);
  if (typed["@type"] !== `type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.${type}`)
    fail(where, `transport socket @type is ${show(typed["@type"])}, not ${type}`);
  return typed;
}

// ---------------------------------------------------------------------------------------------
// Network RBAC

export interface RbacPolicy {
  name: string;
  permissions: Json[];
  principals: Json[];
}

/** One network RBAC filter; `rules` undefined means Envoy enforces nothing. */
export interface NetworkRbac {
  rules?: { action: "ALLOW" | "DENY" | "LOG"; policies: RbacPolicy[] };
  /** The listener's port, for `destination_port` permissions. */
  listenerPort: number;
}

export interface RbacDecision {
  allowed: boolean;
  reason: string;
}

function principalMatches(p: Json, peer: PeerIdentity | undefined, where: string): boolean {
  const keys = Object.keys(p);
  const kind = exactlyOne(keys, where, "principal rule");
  switch (kind) {
    case "any":
      return p.any === true;
    case "authenticated": {
      const auth = obj(p.authenticated, `${where}.authenticated`);
      onlyKeys(auth, ["principal_name"], `${where}.authenticated`);
      // Every connection here is TLS; a peer without a certificate has no names to match.
      if (auth.principal_name === undefined) return true;
      const m = stringMatcher(auth.principal_name, `${where}.authenticated.principal_name`);
      if (peer === undefined) return false;
      return [...peer.uri, ...peer.dns, peer.subject].some((name) => matchString(m, name));
    }
    case "or_ids":
      return objs(obj(p.or_ids, where).ids, `${where}.or_ids.ids`).some((x, i) =>
        principalMatches(x, peer, `${where}.or_ids[${i}]`),
      );
    case "and_ids":
      return objs(obj(p.and_ids, where).ids, `${where}.and_ids.ids`).every((x, i) =>
        principalMatches(x, peer, `${where}.and_ids[${i}]`),
      );
    case "not_id":
      return !principalMatches(obj(p.not_id, where), peer, `${where}.not_id`);
    default:
      return fail(where, `principal ${kind} is not modelled`);
  }
}

/** What RBAC permissions are matched against: the port, and for HTTP RBAC the request. */
export interface RbacRequest {
  port: number;
  http?: { method: string; path: string };
}

function permissionMatches(p: Json, req: RbacRequest, where: string): boolean {
  const kind = exactlyOne(Object.keys(p), where, "permission rule");
  switch (kind) {
    case "any":
      return p.any === true;
    case "destination_port":
      return p.destination_port === req.port;
    case "or_rules":
      return objs(obj(p.or_rules, where).rules, `${where}.or_rules`).some((x, i) =>
        permissionMatches(x, req, `${where}.or_rules[${i}]`),
      );
    case "and_rules":
      return objs(obj(p.and_rules, where).rules, `${where}.and_rules`).every((x, i) =>
        permissionMatches(x, req, `${where}.and_rules[${i}]`),
      );
    case "not_rule":
      return !permissionMatches(obj(p.not_rule, where), req, `${where}.not_rule`);
    case "header": {
      const h = obj(p.header, `${where}.header`);
      if (req.http === undefined) return fail(where, "a header permission on a connection");
      if (h.name !== ":method") return fail(where, `header ${show(h.name)} is not modelled`);
      const m = stringMatcher(h.string_match, `${where}.header.string_match`);
      return matchString(m, req.http.method);
    }
    case "url_path": {
      if (req.http === undefined) return fail(where, "a url_path permission on a connection");
      const m = stringMatcher(obj(p.url_path, `${where}.url_path`).path, `${where}.url_path.path`);
      // url_path matches the path without its query string (rbac.proto, PathMatcher).
      return matchString(m, req.http.path.split("?")[0]);
    }
    default:
      return fail(where, `permission ${kind} is not modelled`);
  }
}

/** Envoy's network RBAC decision for a connection from this peer. */
export function evaluateNetworkRbac(
  rbac: NetworkRbac,
  peer: PeerIdentity | undefined,
): RbacDecision {
  return evaluateRbac(rbac.rules, peer, { port: rbac.listenerPort });
}

/**
 * The path Envoy's HTTP connection manager hands its filters, or `undefined` where it answers 400
 * (conn_manager_utility.cc maybeNormalizePath, in its order): escaped slashes first
 * (`path_with_escaped_slashes_action`, KEEP_UNCHANGED when unset), then `normalize_path` (modelled
 * as dot-segment removal by the WHATWG URL parser, which Chromium's canonicaliser that Envoy uses
 * follows), then `merge_slashes`.
 */
export function pathAfterNormalization(hcm: Json, rawPath: string): string | undefined {
  let path = rawPath;
  const action = hcm.path_with_escaped_slashes_action ?? "KEEP_UNCHANGED";
  if (action === "REJECT_REQUEST") {
    if (/%2f|%5c/i.test(path)) return undefined;
  } else if (action !== "KEEP_UNCHANGED") {
    throw new Error(`path_with_escaped_slashes_action ${String(action)} is not modelled`);
  }
  if (hcm.normalize_path === true) path = new URL(`http://h${path}`).pathname;
  if (hcm.merge_slashes === true) path = path.replace(/\/{2,}/g, "/");
  return path;
}

/** Envoy's HTTP RBAC decision for one request, given the filter's `rules` as configured. */
export function evaluateHttpRbac(
  rules: unknown,
  peer: PeerIdentity | undefined,
  req: Required<RbacRequest>,
): RbacDecision {
  return evaluateRbac(rules === undefined ? undefined : rbacRules(rules, "http rbac"), peer, req);
}

function evaluateRbac(
  rules: NetworkRbac["rules"],
  peer: PeerIdentity | undefined,
  req: RbacRequest,
): RbacDecision {
  if (rules === undefined) return { allowed: true, reason: "no rules: not enforced" };
  const matched = rules.policies
    .filter(
      (pol) =>
        pol.permissions.some((p, i) =>
          permissionMatches(p, req, `policy ${pol.name} permissions[${i}]`),
        ) &&
        pol.principals.some((p, i) =>
          principalMatches(p, peer, `policy ${pol.name} principals[${i}]`),
        ),
    )
    .map((pol) => pol.name);
  const { action } = rules;
  if (action === "LOG") return { allowed: true, reason: "LOG action" };
  if (action === "ALLOW")
    return matched.length > 0
      ? { allowed: true, reason: `allowed by ${matched.join(", ")}` }
      : { allowed: false, reason: `no ALLOW policy matched (of ${rules.policies.length})` };
  return matched.length > 0
    ? { allowed: false, reason: `denied by ${matched.join(", ")}` }
    : { allowed: true, reason: "no DENY policy matched" };
}

function networkRbac(filter: Json, listenerPort: number, where: string): NetworkRbac {
  const cfg = obj(filter.typed_config, `${where}.typed_config`);
  onlyKeys(
    cfg,
    [
      "@type",
      "stat_prefix",
      "rules",
      "shadow_rules",
      "shadow_rules_stat_prefix",
      "enforcement_type",
    ],
    where,
  );
  if (cfg.rules === undefined) return { listenerPort };
  return { rules: rbacRules(cfg.rules, where), listenerPort };
}

/** The `rules` of an RBAC filter (network or HTTP), shape-checked. */
function rbacRules(value: unknown, where: string): NonNullable<NetworkRbac["rules"]> {
  const rules = obj(value, `${where}.rules`);
  onlyKeys(rules, ["action", "policies"], `${where}.rules`);
  const action = str(rules.action ?? "ALLOW", `${where}.rules.action`);
  if (action !== "ALLOW" && action !== "DENY" && action !== "LOG")
    fail(where, `unknown RBAC action ${action}`);
  const policies = Object.entries(obj(rules.policies ?? {}, `${where}.rules.policies`)).map(
    ([name, v]) => {
      const pol = obj(v, `${where} policy ${name}`);
      onlyKeys(pol, ["permissions", "principals"], `${where} policy ${name}`);
      return {
        name,
        permissions: objs(pol.permissions, `${where} policy ${name} permissions`),
        principals: objs(pol.principals, `${where} policy ${name} principals`),
      };
    },
  );
  return { action, policies };
}

// ---------------------------------------------------------------------------------------------
// Listener and cluster extraction

function staticResources(sc: Sidecar, key: "listeners" | "clusters"): Json[] {
  const where = `${sc.service} bootstrap`;
  return objs(
    obj(sc.bootstrap.static_resources, `${where} static_resources`)[key],
    `${where} ${key}`,
  );
}

export interface InboundListener {
  tls: DownstreamTls;
  /** The network RBAC filters in chain order (at least one). */
  rbac: NetworkRbac[];
}

/** The listener named `name` (default "inbound"): its one TLS filter chain and network RBAC. */
export function inboundListener(sc: Sidecar, name = "inbound"): InboundListener {
  const where = `${sc.service} listener ${name}`;
  const listener = exactlyOne(
    staticResources(sc, "listeners").filter((l) => l.name === name),
    where,
    "listener",
  );
  const socketAddress = obj(obj(listener.address, `${where}.address`).socket_address, where);
  const port = socketAddress.port_value;
  if (typeof port !== "number") fail(where, `port_value is ${show(port)}`);
  // A second chain (say, plaintext) would bypass everything checked here: refuse to model it.
  const chain = exactlyOne(
    objs(listener.filter_chains, `${where}.filter_chains`),
    where,
    "filter chain",
  );
  const ctx = tlsTransportSocket(chain.transport_socket, where, "DownstreamTlsContext");
  onlyKeys(ctx, ["@type", "common_tls_context", "require_client_certificate"], where);
  const rbacFilters = objs(chain.filters, `${where}.filters`).filter(
    (f) => f.name === "envoy.filters.network.rbac",
  );
  if (rbacFilters.length === 0) fail(where, "no envoy.filters.network.rbac filter");
  return {
    tls: {
      ...commonTls(sc, ctx.common_tls_context, `${where} DownstreamTlsContext`, "TLSv1_3"),
      requireClientCertificate: ctx.require_client_certificate === true,
    },
    rbac: rbacFilters.map((f, i) => networkRbac(f, port, `${where} network rbac[${i}]`)),
  };
}

/** The UpstreamTlsContext of a cluster (e.g. `upstream_bookapi`). */
export function upstreamCluster(sc: Sidecar, name: string): UpstreamTls {
  const where = `${sc.service} cluster ${name}`;
  const cluster = exactlyOne(
    staticResources(sc, "clusters").filter((c) => c.name === name),
    where,
    "cluster",
  );
  const ctx = tlsTransportSocket(cluster.transport_socket, where, "UpstreamTlsContext");
  onlyKeys(ctx, ["@type", "common_tls_context", "sni"], where);
  return {
    // Envoy's client default maximum is TLS 1.2.
    ...commonTls(sc, ctx.common_tls_context, `${where} UpstreamTlsContext`, "TLSv1_2"),
    sni: str(ctx.sni, `${where}.sni`),
  };
}

// ---------------------------------------------------------------------------------------------
// The emulated inbound listener

export type Layer = "tls" | "san" | "rbac";

const LEGACY: tls.SecureVersion[] = ["TLSv1", "TLSv1.1"];

export type Verdict =
  | {
      accepted: true;
      peer: PeerIdentity;
      servername: string | false | null;
      protocol: string | null;
      /** The ALPN protocol the handshake selected; false when none was. */
      alpn: string | false | null;
    }
  | { accepted: false; layer: Layer; reason: string };

export interface InboundOptions {
  listener: InboundListener;
  /** Checks after the handshake (default all): to show each layer refuses on its own. */
  checks?: { san?: boolean; rbac?: boolean };
  /** Serve another certificate than the one Envoy is configured with. */
  serve?: { cert: string; key: string };
}

/**
 * A node:tls server on a loopback port that records one verdict per connection, for the test to
 * take in order; the emulations below decide the verdicts.
 */
export class VerdictServer<V> {
  private readonly verdicts: V[] = [];
  private readonly waiters: ((v: V) => void)[] = [];
  private readonly sockets = new Set<net.Socket>();

  private constructor(
    private readonly server: tls.Server,
    readonly port: number,
    private readonly what: string,
  ) {}

  /** Listens on 127.0.0.1 (any free port); `what` names the server in time-out messages. */
  static async listen<V>(server: tls.Server, what: string): Promise<VerdictServer<V>> {
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    const self = new VerdictServer<V>(server, (server.address() as net.AddressInfo).port, what);
    server.on("connection", (raw: net.Socket) => {
      self.sockets.add(raw);
      raw.on("close", () => self.sockets.delete(raw));
    });
    return self;
  }

  record(v: V): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(v);
    else this.verdicts.push(v);
  }

  /** The next connection's verdict (rejects after `timeoutMs`). */
  nextVerdict(timeoutMs = 1000): Promise<V> {
    const ready = this.verdicts.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(done), 1);
        reject(new Error(`no verdict from ${this.what} within ${timeoutMs} ms`));
      }, timeoutMs);
      const done = (v: V) => {
        clearTimeout(timer);
        resolve(v);
      };
      this.waiters.push(done);
    });
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

/** A node:tls server that accepts and refuses the way the Envoy inbound listener would. */
export type EmulatedInbound = VerdictServer<Verdict>;

export const EmulatedInbound = {
  async start(opts: InboundOptions): Promise<EmulatedInbound> {
    const t = opts.listener.tls;
    const checkSan = opts.checks?.san ?? true;
    const checkRbac = opts.checks?.rbac ?? true;
    const server = tls.createServer({
      key: opts.serve?.key ?? t.key,
      cert: opts.serve?.cert ?? t.cert,
      ca: t.ca,
      // Envoy asks for a client certificate whenever it has a validation context, and fails the
      // handshake without one only with require_client_certificate.
      requestCert: true,
      rejectUnauthorized: t.requireClientCertificate,
      minVersion: t.minVersion,
      maxVersion: t.maxVersion,
      ...(t.ciphers === undefined ? {} : { ciphers: t.ciphers }),
      // BoringSSL has no security levels: where Envoy would allow TLS < 1.2, so must OpenSSL 3.
      ...(t.ciphers === undefined && LEGACY.includes(t.minVersion)
        ? { ciphers: "DEFAULT@SECLEVEL=0" }
        : {}),
      ...(t.ecdhCurve === undefined ? {} : { ecdhCurve: t.ecdhCurve }),
      ...(t.alpn === undefined ? {} : { ALPNProtocols: t.alpn }),
    });
    const self = await VerdictServer.listen<Verdict>(server, "the emulated inbound");
    // Handshake failures, including node's post-handshake chain check (authorizationError).
    server.on("tlsClientError", (err: NodeJS.ErrnoException, socket: tls.TLSSocket) => {
      const reason = socket.authorizationError ?? err.code ?? err.message;
      self.record({ accepted: false, layer: "tls", reason: String(reason) });
    });
    server.on("secureConnection", (socket: tls.TLSSocket) => {
      socket.on("error", () => undefined);
      const refuse = (layer: Layer, reason: string) => {
        self.record({ accepted: false, layer, reason });
        socket.destroy();
      };
      const x509 = socket.getPeerX509Certificate();
      // A presented certificate that does not verify fails Envoy's handshake even when optional.
      if (!socket.authorized && (x509 !== undefined || t.requireClientCertificate))
        return refuse("tls", String(socket.authorizationError ?? "no client certificate"));
      const peer = x509 === undefined ? undefined : identityOf(x509);
      if (checkSan && peer !== undefined && !sanMatches(t.sanMatchers, peer))
        return refuse("san", `no SAN matcher matches ${[...peer.dns, ...peer.uri].join(", ")}`);
      if (checkRbac) {
        for (const rbac of opts.listener.rbac) {
          const decision = evaluateNetworkRbac(rbac, peer);
          if (!decision.allowed) return refuse("rbac", decision.reason);
        }
      }
      const empty: PeerIdentity = { dns: [], uri: [], email: [], ip: [], subject: "" };
      self.record({
        accepted: true,
        peer: peer ?? empty,
        servername: socket.servername,
        protocol: socket.getProtocol(),
        alpn: socket.alpnProtocol,
      });
      socket.end(`accepted ${peer?.uri[0] ?? peer?.dns[0] ?? "anonymous"}\n`);
    });
    return self;
  },
};

// ---------------------------------------------------------------------------------------------
// The caller

export interface CallerOptions {
  cert?: string;
  key?: string;
  ca: string;
  servername: string;
  /** Envoy's SAN check of the server certificate; empty accepts any certificate that chains. */
  sanMatchers: SanMatcher[];
  minVersion: tls.SecureVersion;
  maxVersion: tls.SecureVersion;
  ciphers?: string;
  ecdhCurve?: string;
  /** Protocols offered by ALPN, in preference order; none offered when absent. */
  alpn?: string[];
}

/** The outbound side of a sidecar for one upstream cluster. */
export function upstreamCaller(u: UpstreamTls): CallerOptions {
  return {
    cert: u.cert,
    key: u.key,
    ca: u.ca,
    servername: u.sni,
    sanMatchers: u.sanMatchers,
    minVersion: u.minVersion,
    maxVersion: u.maxVersion,
    ciphers: u.ciphers,
    ecdhCurve: u.ecdhCurve,
    ...(u.alpn === undefined ? {} : { alpn: u.alpn }),
  };
}

/** Error code the caller reports when the server certificate fails the upstream SAN check. */
export const UPSTREAM_SAN_MISMATCH = "UPSTREAM_SAN_MISMATCH";

export interface CallOutcome {
  /** The server's one-line answer, if the connection was accepted. */
  response?: string;
  error?: { code?: string; message: string };
  /** Whether the client finished its side of the handshake. */
  handshake: boolean;
  /** After the handshake: the server's certificate, the TLS version and the ALPN protocol. */
  certificate?: X509Certificate;
  protocol?: string | null;
  alpn?: string | false | null;
}

/**
 * Connects to 127.0.0.1:`port` with `options` (the server's chain always verified), waits for one
 * line or the end of the connection (bounded by `timeoutMs`).
 */
export function dial(
  port: number,
  options: tls.ConnectionOptions,
  timeoutMs = 1500,
): Promise<CallOutcome> {
  return new Promise((resolve) => {
    const outcome: CallOutcome = { handshake: false };
    let data = "";
    const socket = tls.connect({ host: "127.0.0.1", port, ...options, rejectUnauthorized: true });
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(outcome);
    };
    const timer = setTimeout(() => {
      outcome.error ??= { code: "TIMEOUT", message: `no answer within ${timeoutMs} ms` };
      finish();
    }, timeoutMs);
    socket.on("secureConnect", () => {
      outcome.handshake = true;
      outcome.certificate = socket.getPeerX509Certificate();
      outcome.protocol = socket.getProtocol();
      outcome.alpn = socket.alpnProtocol;
    });
    socket.on("data", (chunk: Buffer) => {
      data += chunk.toString("utf8");
      const nl = data.indexOf("\n");
      if (nl >= 0) {
        outcome.response = data.slice(0, nl);
        finish();
      }
    });
    socket.on("error", (err: NodeJS.ErrnoException) => {
      outcome.error ??= { code: err.code, message: err.message };
    });
    socket.on("close", finish);
  });
}

/** A sidecar's call: its certificate, and Envoy's SAN check of the server's in place of node's. */
export function call(port: number, caller: CallerOptions, timeoutMs = 1500): Promise<CallOutcome> {
  return dial(
    port,
    {
      servername: caller.servername,
      ca: caller.ca,
      ...(caller.cert === undefined ? {} : { cert: caller.cert, key: caller.key }),
      minVersion: caller.minVersion,
      maxVersion: caller.maxVersion,
      ...(caller.ciphers === undefined ? {} : { ciphers: caller.ciphers }),
      ...(caller.ecdhCurve === undefined ? {} : { ecdhCurve: caller.ecdhCurve }),
      ...(caller.alpn === undefined ? {} : { ALPNProtocols: caller.alpn }),
      checkServerIdentity: (_host, cert) => {
        const id = identityOf(new X509Certificate(cert.raw));
        if (sanMatches(caller.sanMatchers, id)) return undefined;
        return Object.assign(
          new Error(`server certificate SANs ${[...id.dns, ...id.uri].join(", ")} match none`),
          { code: UPSTREAM_SAN_MISMATCH },
        );
      },
    },
    timeoutMs,
  );
}

// ---------------------------------------------------------------------------------------------
// Certificates for the refusal cases, from the fake tls provider

export interface KeyPair {
  cert: string;
  key: string;
}

const KEY = { algorithm: "ECDSA", ecdsaCurve: "P256" } as const;
const T = {
  key: "tls:index/privateKey:PrivateKey",
  selfSigned: "tls:index/selfSignedCert:SelfSignedCert",
  csr: "tls:index/certRequest:CertRequest",
  signed: "tls:index/locallySignedCert:LocallySignedCert",
};

async function newKey(): Promise<string> {
  return str((await fakeTlsResource(T.key, { ...KEY })).privateKeyPem, "fake privateKeyPem");
}

/** A CA outside the mesh, built like the mesh CA. */
export async function newCertificateAuthority(commonName: string): Promise<KeyPair> {
  const key = await newKey();
  const state = await fakeTlsResource(T.selfSigned, {
    privateKeyPem: key,
    subject: { commonName, organization: "elsewhere" },
    isCaCertificate: true,
    setSubjectKeyId: true,
    allowedUses: CA_CERTIFICATE_USES,
    validityPeriodHours: 24,
  });
  return { cert: str(state.certPem, "fake CA certPem"), key };
}

/** A certificate's subject CN and SANs, to issue another for the same workload. */
export function namesOf(certPem: string): {
  commonName: string;
  dnsNames: string[];
  uris: string[];
} {
  const cert = new X509Certificate(certPem);
  const cn = cert.subject.split("\n").find((l) => l.startsWith("CN="));
  const id = identityOf(cert);
  return { commonName: cn?.slice(3) ?? "", dnsNames: id.dns, uris: id.uri };
}

/** A service certificate signed by `ca`, built like the mesh's (same uses and key type). */
export async function issueServiceCertificate(
  ca: KeyPair,
  names: { commonName: string; dnsNames: string[]; uris: string[] },
  validityHours = 24,
): Promise<KeyPair> {
  const key = await newKey();
  const csr = await fakeTlsResource(T.csr, {
    privateKeyPem: key,
    subject: { commonName: names.commonName, organization: "bookapi-mesh" },
    dnsNames: names.dnsNames,
    uris: names.uris,
  });
  const state = await fakeTlsResource(T.signed, {
    certRequestPem: csr.certRequestPem,
    caCertPem: ca.cert,
    caPrivateKeyPem: ca.key,
    allowedUses: serviceCertificateUses(KEY),
    validityPeriodHours: validityHours,
  });
  return { cert: str(state.certPem, "fake certPem"), key };
}
