/**
 * THROWAWAY stand-in for the Pulumi `tls` provider, for the offline render (and `npm run bench`).
 *
 * It answers the four tls resources components/pki.ts registers (PrivateKey, SelfSignedCert,
 * CertRequest, LocallySignedCert) with real keys and certificates that verify: the service
 * certificates chain to the render's CA and carry the SANs the program asks for. Nothing is
 * random: every key, serial and signature is DERIVED from the stack and the resource name, so two
 * renders of the same commit and stack are byte-identical and review diffs show only real changes.
 * That makes the material PUBLIC by construction (anyone can derive it again): it is for reading
 * and for throwaway test clusters, never an identity to deploy. Every certificate says so in its
 * subject (OU "THROWAWAY offline render").
 *
 * - ECDSA P256/P384: the private scalar comes from HMAC-SHA-512 of the stack and resource name;
 *   signatures use RFC 6979 deterministic nonces (@noble/curves).
 * - RSA 2048/3072/4096: primes are searched from a derived byte stream (candidates with the top
 *   two bits set, checked by OpenSSL's primality test through node:crypto), so a key takes well
 *   under a second where a seeded pure-JS generator (node-forge) takes ~45 s for 4096 bits.
 *   PKCS#1 v1.5 signatures are deterministic by definition.
 * - Validity starts at a fixed instant (THROWAWAY_NOT_BEFORE) and lasts the requested hours, so the
 *   rendered certificates are usually already expired: they are for review, not for running.
 * Certificates are built with @peculiar/x509 in the layout of the real provider (Go's
 * crypto/x509): KeyUsage (critical), ExtendedKeyUsage, BasicConstraints (critical), subject key id
 * on CAs, authority key id from the CA's, DNS/URI SANs.
 */
import "reflect-metadata";
import * as crypto from "node:crypto";
import type { webcrypto } from "node:crypto";
import { p256, p384 } from "@noble/curves/nist";
import * as x509 from "@peculiar/x509";
import type { StandIn } from "./engine";
import {
  ALLOWED_USES,
  certificateExtensions,
  csrSans,
  rfc3339,
  sanNames,
  subjectName,
  TLS_TYPES,
  unknownSubjectFields,
} from "./tls-layout";

/** Every rendered certificate is valid from this instant on (a fixed value keeps renders equal). */
export const THROWAWAY_NOT_BEFORE = new Date("2025-01-01T00:00:00Z");

/** Added to every subject so a rendered certificate can never pass for a real one. */
export const THROWAWAY_OU = "THROWAWAY offline render";

/** Thrown for inputs the stand-in does not support; the message names the resource. */
export class ThrowawayTlsError extends Error {
  constructor(type: string, name: string, message: string) {
    super(`throwaway-tls: ${type} ${name}: ${message}`);
    this.name = "ThrowawayTlsError";
  }
}

// ---------------------------------------------------------------------------------------------
// Derived bytes

const DOMAIN = "bookapi-mesh offline render: throwaway key material, v1";

/** An endless byte stream derived from a label: HMAC-SHA-512(label, counter) blocks. */
class DerivedBytes {
  private counter = 0;
  private buffered = Buffer.alloc(0);
  private readonly key: Buffer;

  constructor(...label: string[]) {
    this.key = crypto.createHmac("sha512", DOMAIN).update(label.join("\0")).digest();
  }

  next(length: number): Buffer {
    while (this.buffered.length < length) {
      const block = crypto.createHmac("sha512", this.key).update(String(this.counter++)).digest();
      this.buffered = Buffer.concat([this.buffered, block]);
    }
    const out = this.buffered.subarray(0, length);
    this.buffered = this.buffered.subarray(length);
    return out;
  }
}

const toBigInt = (bytes: Uint8Array): bigint => BigInt(`0x${Buffer.from(bytes).toString("hex")}`);

function toBytes(n: bigint, length?: number): Buffer {
  let hex = n.toString(16);
  if (hex.length % 2) hex = `0${hex}`;
  const raw = Buffer.from(hex, "hex");
  return length === undefined ? raw : Buffer.concat([Buffer.alloc(length - raw.length), raw]);
}

const b64url = (bytes: Uint8Array): string => Buffer.from(bytes).toString("base64url");

// ---------------------------------------------------------------------------------------------
// Keys

const CURVES = {
  P256: { noble: p256, web: "P-256", hash: "SHA-256", size: 32 },
  P384: { noble: p384, web: "P-384", hash: "SHA-384", size: 48 },
} as const;
type CurveName = keyof typeof CURVES;
const RSA_BITS = [2048, 3072, 4096];

/** An ECDSA key whose scalar is derived (reduced from 16 extra bytes, so the bias is nil). */
function derivedEcdsaKey(curve: CurveName, bytes: DerivedBytes): crypto.KeyObject {
  const c = CURVES[curve];
  const d = (toBigInt(bytes.next(c.size + 16)) % (c.noble.CURVE.n - 1n)) + 1n;
  const secret = toBytes(d, c.size);
  const point = c.noble.getPublicKey(secret, false); // 0x04 || x || y
  const jwk = {
    kty: "EC",
    crv: c.web,
    d: b64url(secret),
    x: b64url(point.subarray(1, 1 + c.size)),
    y: b64url(point.subarray(1 + c.size)),
  };
  return crypto.createPrivateKey({ key: jwk, format: "jwk" });
}

function gcd(a: bigint, b: bigint): bigint {
  while (b !== 0n) [a, b] = [b, a % b];
  return a;
}

function modInverse(a: bigint, m: bigint): bigint {
  let [r0, r1, s0, s1] = [m, ((a % m) + m) % m, 0n, 1n];
  while (r1 !== 0n) {
    const q = r0 / r1;
    [r0, r1] = [r1, r0 - q * r1];
    [s0, s1] = [s1, s0 - q * s1];
  }
  return ((s0 % m) + m) % m;
}

/** A prime of exactly `bits` bits with gcd(p-1, e) = 1, from the derived stream. */
function derivedPrime(bits: number, e: bigint, bytes: DerivedBytes): bigint {
  for (;;) {
    const candidate = bytes.next(bits / 8);
    candidate[0] |= 0xc0; // top two bits: the product has exactly 2*bits bits
    candidate[candidate.length - 1] |= 1;
    const p = toBigInt(candidate);
    if (gcd(p - 1n, e) === 1n && crypto.checkPrimeSync(p)) return p;
  }
}

/** An RSA key (e = 65537) from the derived stream, assembled as a JWK for node:crypto. */
function derivedRsaKey(bits: number, bytes: DerivedBytes): crypto.KeyObject {
  const e = 65537n;
  let p = derivedPrime(bits / 2, e, bytes);
  let q = derivedPrime(bits / 2, e, bytes);
  // FIPS 186-4 B.3.1: p and q must not be close; with derived candidates this never repeats.
  while (p === q || (p > q ? p - q : q - p) < 1n << BigInt(bits / 2 - 100)) {
    q = derivedPrime(bits / 2, e, bytes);
  }
  if (p < q) [p, q] = [q, p];
  const lambda = ((p - 1n) * (q - 1n)) / gcd(p - 1n, q - 1n);
  const d = modInverse(e, lambda);
  const jwk = {
    kty: "RSA",
    n: b64url(toBytes(p * q)),
    e: b64url(toBytes(e)),
    d: b64url(toBytes(d)),
    p: b64url(toBytes(p)),
    q: b64url(toBytes(q)),
    dp: b64url(toBytes(d % (p - 1n))),
    dq: b64url(toBytes(d % (q - 1n))),
    qi: b64url(toBytes(modInverse(q, p))),
  };
  return crypto.createPrivateKey({ key: jwk, format: "jwk" });
}

// ---------------------------------------------------------------------------------------------
// Deterministic signing for @peculiar/x509
//
// The library signs through a WebCrypto object. This one forwards everything to node's WebCrypto
// except `sign`, where ECDSA uses RFC 6979 nonces; and it refuses randomness outright, so any
// value that is not derived fails loudly instead of making renders differ.

const webSubtle = crypto.webcrypto.subtle;

const hashName = (hash: unknown): string =>
  typeof hash === "string" ? hash : String((hash as { name?: string } | undefined)?.name);

async function deterministicSign(
  algorithm: { name: string; hash?: unknown },
  key: webcrypto.CryptoKey,
  data: ArrayBuffer | ArrayBufferView,
): Promise<ArrayBuffer> {
  const bytes = ArrayBuffer.isView(data)
    ? Buffer.from(data.buffer, data.byteOffset, data.byteLength)
    : Buffer.from(data);
  if (key.algorithm.name === "RSASSA-PKCS1-v1_5") {
    return webSubtle.sign(algorithm, key, bytes); // PKCS#1 v1.5: no randomness involved
  }
  if (key.algorithm.name === "ECDSA") {
    const jwk = await webSubtle.exportKey("jwk", key);
    const curve = Object.values(CURVES).find((c) => c.web === jwk.crv);
    if (!curve || !jwk.d) throw new Error(`throwaway-tls: cannot sign with ECDSA ${jwk.crv}`);
    const digest = crypto
      .createHash(hashName(algorithm.hash).replace("-", "").toLowerCase())
      .update(bytes)
      .digest();
    const signature = curve.noble.sign(digest, Buffer.from(jwk.d, "base64url")); // RFC 6979
    return Uint8Array.from(signature.toCompactRawBytes()).buffer; // r || s, as WebCrypto returns
  }
  throw new Error(`throwaway-tls: cannot sign with ${key.algorithm.name}`);
}

const noRandomness = () => {
  throw new Error("throwaway-tls: randomness was requested; every value must be derived");
};

const deterministicCrypto = {
  subtle: new Proxy(webSubtle, {
    get(target, prop) {
      if (prop === "sign") return deterministicSign;
      const value: unknown = Reflect.get(target, prop);
      return typeof value === "function" ? (value as () => unknown).bind(target) : value;
    },
  }),
  getRandomValues: noRandomness,
  randomUUID: noRandomness,
} as unknown as webcrypto.Crypto;

// ---------------------------------------------------------------------------------------------
// Inputs

interface Key {
  algorithm: "RSA" | "ECDSA";
  privateKey: crypto.KeyObject;
  /** WebCrypto parameters to import and sign with this key. */
  web: webcrypto.RsaHashedImportParams | webcrypto.EcKeyImportParams;
  signing: { name: string; hash: string };
}

function describeKey(privateKey: crypto.KeyObject): Key {
  if (privateKey.asymmetricKeyType === "rsa") {
    const web = { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
    return { algorithm: "RSA", privateKey, web, signing: web };
  }
  const nodeCurve = privateKey.asymmetricKeyDetails?.namedCurve;
  const curve = (Object.keys(CURVES) as CurveName[]).find(
    (c) => ({ P256: "prime256v1", P384: "secp384r1" })[c] === nodeCurve,
  );
  if (!curve) throw new Error(`unsupported key type ${nodeCurve ?? privateKey.asymmetricKeyType}`);
  const c = CURVES[curve];
  return {
    algorithm: "ECDSA",
    privateKey,
    web: { name: "ECDSA", namedCurve: c.web },
    signing: { name: "ECDSA", hash: c.hash },
  };
}

const spki = (k: crypto.KeyObject): Buffer =>
  crypto.createPublicKey(k).export({ type: "spki", format: "der" });

function signingKey(k: Key): Promise<webcrypto.CryptoKey> {
  const der = k.privateKey.export({ type: "pkcs8", format: "der" });
  return webSubtle.importKey("pkcs8", der, k.web, true, ["sign"]);
}

class Inputs {
  constructor(
    readonly type: string,
    readonly name: string,
    readonly raw: Record<string, unknown>,
  ) {}

  fail(message: string): never {
    throw new ThrowawayTlsError(this.type, this.name, message);
  }

  optional<T>(
    key: string,
    kind: "string" | "number" | "boolean" | "object" | "string[]",
  ): T | undefined {
    const v = this.raw[key];
    if (v === undefined || v === null) return undefined;
    const ok =
      kind === "string[]"
        ? Array.isArray(v) && v.every((s) => typeof s === "string")
        : kind === "object"
          ? typeof v === "object" && !Array.isArray(v)
          : typeof v === kind;
    if (!ok) this.fail(`${key} must be a ${kind}`);
    return v as T;
  }

  required<T>(key: string, kind: "string" | "number" | "boolean" | "object" | "string[]"): T {
    const v = this.optional<T>(key, kind);
    return v === undefined ? this.fail(`${key} is required`) : v;
  }

  privateKey(key: string): Key {
    const pem = this.required<string>(key, "string");
    try {
      return describeKey(crypto.createPrivateKey(pem));
    } catch (err) {
      return this.fail(`${key}: ${(err as Error).message}`);
    }
  }
}

function subjectInput(inp: Inputs): x509.Name {
  const subject = inp.optional<Record<string, unknown>>("subject", "object") ?? {};
  for (const key of unknownSubjectFields(subject)) inp.fail(`subject.${key} is not supported`);
  return subjectName(subject, THROWAWAY_OU);
}

function sansInput(inp: Inputs): x509.JsonGeneralName[] {
  if ((inp.optional<string[]>("ipAddresses", "string[]") ?? []).length > 0)
    inp.fail("ipAddresses are not supported");
  const names = (key: string) => inp.optional<string[]>(key, "string[]") ?? [];
  return sanNames(names("dnsNames"), [], names("uris"));
}

// ---------------------------------------------------------------------------------------------
// Resources

function createPrivateKey(inp: Inputs, stack: string): Record<string, unknown> {
  const algorithm = inp.required<string>("algorithm", "string");
  let privateKey: crypto.KeyObject;
  if (algorithm === "ECDSA") {
    const curve = inp.optional<string>("ecdsaCurve", "string") ?? "P224";
    if (!(curve in CURVES))
      inp.fail(`ECDSA ${curve} keys are not supported (components/pki.ts sends P256 or P384)`);
    privateKey = derivedEcdsaKey(curve as CurveName, new DerivedBytes(stack, inp.name, curve));
  } else if (algorithm === "RSA") {
    const bits = inp.optional<number>("rsaBits", "number") ?? 2048;
    if (!RSA_BITS.includes(bits))
      inp.fail(`RSA keys of ${bits} bits are not supported (${RSA_BITS.join(", ")})`);
    privateKey = derivedRsaKey(bits, new DerivedBytes(stack, inp.name, `RSA${bits}`));
  } else {
    return inp.fail(`${algorithm} keys are not supported (components/pki.ts sends ECDSA or RSA)`);
  }
  const pem = (type: "pkcs1" | "sec1" | "pkcs8") =>
    String(privateKey.export({ type, format: "pem" } as crypto.KeyExportOptions<"pem">));
  return {
    ...inp.raw,
    // The provider's formats: PKCS#1 ("RSA PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY"), and PKCS#8.
    privateKeyPem: pem(algorithm === "RSA" ? "pkcs1" : "sec1"),
    privateKeyPemPkcs8: pem("pkcs8"),
    publicKeyPem: String(
      crypto.createPublicKey(privateKey).export({ type: "spki", format: "pem" }),
    ),
  };
}

interface Template {
  subject: x509.Name;
  sans: x509.JsonGeneralName[];
  subjectPublicKey: Buffer;
  signer: Key;
  /** The CA certificate; none when self-signed. */
  parent?: x509.X509Certificate;
}

async function issueCertificate(
  inp: Inputs,
  stack: string,
  t: Template,
): Promise<Record<string, unknown>> {
  const uses = inp.required<string[]>("allowedUses", "string[]");
  for (const use of uses)
    if (!ALLOWED_USES.includes(use)) inp.fail(`allowed use ${use} is not supported`);
  const hours = inp.required<number>("validityPeriodHours", "number");
  const extensions = await certificateExtensions(
    {
      uses,
      isCaCertificate: inp.optional<boolean>("isCaCertificate", "boolean") ?? false,
      setSubjectKeyId: inp.optional<boolean>("setSubjectKeyId", "boolean") ?? false,
      subject: t.subject,
      subjectPublicKey: t.subjectPublicKey,
      parent: t.parent,
      sans: t.sans,
    },
    deterministicCrypto,
  );

  const serial = new DerivedBytes(stack, inp.name, "serial").next(16);
  serial[0] = (serial[0] & 0x7f) | 0x40; // positive, 16 bytes, never zero
  const notAfter = new Date(THROWAWAY_NOT_BEFORE.getTime() + hours * 3_600_000);
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: serial.toString("hex"),
      subject: t.subject,
      issuer: t.parent?.subjectName ?? t.subject,
      notBefore: THROWAWAY_NOT_BEFORE,
      notAfter,
      publicKey: t.subjectPublicKey,
      signingKey: await signingKey(t.signer),
      signingAlgorithm: t.signer.signing,
      extensions,
    },
    deterministicCrypto,
  );
  return {
    ...inp.raw,
    certPem: `${cert.toString("pem")}\n`,
    validityStartTime: rfc3339(THROWAWAY_NOT_BEFORE),
    validityEndTime: rfc3339(notAfter),
    readyForRenewal: false,
  };
}

async function createSelfSignedCert(inp: Inputs, stack: string): Promise<Record<string, unknown>> {
  const key = inp.privateKey("privateKeyPem");
  const state = await issueCertificate(inp, stack, {
    subject: subjectInput(inp),
    sans: sansInput(inp),
    subjectPublicKey: spki(key.privateKey),
    signer: key,
  });
  return { ...state, keyAlgorithm: key.algorithm };
}

async function createCertRequest(inp: Inputs): Promise<Record<string, unknown>> {
  const key = inp.privateKey("privateKeyPem");
  const sans = sansInput(inp);
  const csr = await x509.Pkcs10CertificateRequestGenerator.create(
    {
      name: subjectInput(inp),
      keys: {
        privateKey: await signingKey(key),
        publicKey: await webSubtle.importKey("spki", spki(key.privateKey), key.web, true, [
          "verify",
        ]),
      },
      signingAlgorithm: key.signing,
      extensions: sans.length > 0 ? [new x509.SubjectAlternativeNameExtension(sans)] : [],
    },
    deterministicCrypto,
  );
  return { ...inp.raw, certRequestPem: `${csr.toString("pem")}\n`, keyAlgorithm: key.algorithm };
}

async function createLocallySignedCert(
  inp: Inputs,
  stack: string,
): Promise<Record<string, unknown>> {
  let csr: x509.Pkcs10CertificateRequest;
  let parent: x509.X509Certificate;
  try {
    csr = new x509.Pkcs10CertificateRequest(inp.required<string>("certRequestPem", "string"));
    parent = new x509.X509Certificate(inp.required<string>("caCertPem", "string"));
  } catch (err) {
    return inp.fail((err as Error).message);
  }
  const caKey = inp.privateKey("caPrivateKeyPem");
  const state = await issueCertificate(inp, stack, {
    subject: csr.subjectName,
    sans: csrSans(csr),
    subjectPublicKey: Buffer.from(csr.publicKey.rawData),
    signer: caKey,
    parent,
  });
  return { ...state, caKeyAlgorithm: caKey.algorithm };
}

/** Stand-ins for the tls resource types, keyed by type token, deriving everything from `stack`. */
export function throwawayTls(stack: string): Record<string, StandIn> {
  const wrap =
    (
      create: (inp: Inputs) => Record<string, unknown> | Promise<Record<string, unknown>>,
    ): StandIn =>
    async ({ type, name, inputs }) =>
      create(new Inputs(type, name, inputs));
  return {
    [TLS_TYPES.privateKey]: wrap((inp) => createPrivateKey(inp, stack)),
    [TLS_TYPES.selfSignedCert]: wrap((inp) => createSelfSignedCert(inp, stack)),
    [TLS_TYPES.certRequest]: wrap((inp) => createCertRequest(inp)),
    [TLS_TYPES.locallySignedCert]: wrap((inp) => createLocallySignedCert(inp, stack)),
  };
}
