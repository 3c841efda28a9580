/**
 * A faithful fake of the Pulumi `tls` provider (@pulumi/tls 5.x, bridged from the Terraform
 * hashicorp/tls provider) for Pulumi mocks.
 *
 * Given a resource's inputs, it returns the state the real provider would: the inputs, the schema
 * defaults the provider fills in, and real keys and certificates built the way the provider builds
 * them with Go's crypto/x509 (same extensions, criticality, encodings and signature algorithms).
 * It throws where the provider fails: schema validation (required, one-of, at-least) and the
 * errors of Create.
 *
 * Deliberate notes on provider behaviour this fake reproduces (see the provider source,
 * internal/provider/*.go, and Go's crypto/x509):
 * - The provider does NOT verify a CSR's signature (it only parses it), so neither does this fake.
 * - A CA certificate whose allowed uses lack `cert_signing` still signs: the signature is valid,
 *   but its KeyUsage extension forbids certificate signing, so OpenSSL/node:tls chain validation
 *   rejects the chain. A CA with an empty `allowedUses` has no KeyUsage extension at all.
 * - `validityPeriodHours` may be 0 (validator is AtLeast(0)); the certificate is then immediately
 *   ready for renewal.
 * - `maxPathLength` 0 leaves the path length unconstrained (Go's MaxPathLen 0 without
 *   MaxPathLenZero); a positive one on a non-CA certificate fails in Go's CreateCertificate.
 * - A locally signed certificate takes subject and DNS/IP/URI SANs from the CSR, re-encoded through
 *   Go's pkix.Name (so an emailAddress attribute is dropped), and its AuthorityKeyIdentifier is the
 *   CA's SubjectKeyIdentifier whenever the CA certificate has one.
 */
import * as crypto from "node:crypto";
import * as net from "node:net";

const TYPES = {
  privateKey: "tls:index/privateKey:PrivateKey",
  selfSignedCert: "tls:index/selfSignedCert:SelfSignedCert",
  certRequest: "tls:index/certRequest:CertRequest",
  locallySignedCert: "tls:index/locallySignedCert:LocallySignedCert",
} as const;

/** True for the tls resource types this fake answers. */
export function isFakeTlsType(type: string): boolean {
  return (Object.values(TYPES) as string[]).includes(type);
}

/** Thrown where the real provider would fail; the message names the resource type. */
export class FakeTlsError extends Error {
  constructor(type: string, summary: string, detail: string) {
    super(`${type}: ${summary}: ${detail}`);
    this.name = "FakeTlsError";
  }
}

// The provider reads time through an overridable clock in its own tests; so does this fake, so a
// test can issue a certificate that is already expired or not yet valid.
let clock: () => Date = () => new Date();

/** Override the fake's clock (pass nothing to restore the real one). */
export function setFakeTlsClock(now?: () => Date): void {
  clock = now ?? (() => new Date());
}

/** Answer a tls resource registration with the state the real provider would return. */
export async function fakeTlsResource(
  type: string,
  inputs: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  switch (type) {
    case TYPES.privateKey:
      return createPrivateKey(new Inputs(type, inputs));
    case TYPES.selfSignedCert:
      return createSelfSignedCert(new Inputs(type, inputs));
    case TYPES.certRequest:
      return createCertRequest(new Inputs(type, inputs));
    case TYPES.locallySignedCert:
      return createLocallySignedCert(new Inputs(type, inputs));
    default:
      throw new Error(`fake-tls: unsupported resource type ${type}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Inputs as Pulumi mocks deliver them (camelCase, plain JS values; null and undefined both unset)

class Inputs {
  constructor(
    readonly type: string,
    readonly raw: Record<string, unknown>,
  ) {}

  fail(summary: string, detail: string): never {
    throw new FakeTlsError(this.type, summary, detail);
  }

  private get(name: string): unknown {
    const v = this.raw[name];
    return v === null ? undefined : v;
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }

  private missing(name: string): never {
    return this.fail("Missing required argument", `Missing required property '${name}'`);
  }

  str(name: string, required: true): string;
  str(name: string, required?: false): string | undefined;
  str(name: string, required = false): string | undefined {
    const v = this.get(name);
    if (v === undefined) return required ? this.missing(name) : undefined;
    if (typeof v !== "string")
      this.fail("Incorrect attribute value type", `${name} must be a string, got ${typeof v}`);
    return v;
  }

  int(name: string, opts: { min: number; fallback?: number }): number {
    const v = this.get(name);
    if (v === undefined) {
      if (opts.fallback !== undefined) return opts.fallback;
      return this.missing(name);
    }
    if (typeof v !== "number" || !Number.isSafeInteger(v)) {
      this.fail(
        "Incorrect attribute value type",
        `${name} must be a whole number, got ${JSON.stringify(v)}`,
      );
    }
    if (v < opts.min) {
      this.fail(
        "Invalid Attribute Value",
        `Attribute ${name} value must be at least ${opts.min}, got: ${v}`,
      );
    }
    return v;
  }

  bool(name: string): boolean {
    const v = this.get(name);
    if (v === undefined) return false;
    if (typeof v !== "boolean")
      this.fail("Incorrect attribute value type", `${name} must be a boolean, got ${typeof v}`);
    return v;
  }

  strList(name: string, required = false): string[] | undefined {
    const v = this.get(name);
    if (v === undefined) return required ? this.missing(name) : undefined;
    if (!Array.isArray(v))
      this.fail("Incorrect attribute value type", `${name} must be a list of strings`);
    return v.map((item: unknown, i) => {
      if (typeof item !== "string") {
        return this.fail(
          "Incorrect attribute value type",
          `${name}[${i}] must be a string, got ${typeof item}`,
        );
      }
      return item;
    });
  }

  record(name: string): Record<string, unknown> | undefined {
    const v = this.get(name);
    if (v === undefined) return undefined;
    if (typeof v !== "object" || Array.isArray(v))
      this.fail("Incorrect attribute value type", `${name} must be an object`);
    return v as Record<string, unknown>;
  }

  /** A PEM given either in `name` or write-only in `${name}Wo` (exactly one; Wo needs a version). */
  pemOrWriteOnly(name: string): string {
    const plain = this.str(name);
    const wo = this.str(`${name}Wo`);
    if ((plain === undefined) === (wo === undefined)) {
      this.fail(
        "Invalid Attribute Combination",
        `Exactly one of these attributes must be configured: [${name},${name}Wo]`,
      );
    }
    if (wo !== undefined && !this.has(`${name}WoVersion`)) {
      this.fail(
        "Invalid Attribute Combination",
        `Attribute "${name}WoVersion" must be specified when "${name}Wo" is specified`,
      );
    }
    return (plain ?? wo) as string;
  }

  /** The state: inputs minus write-only attributes (never persisted), plus the given values. */
  state(extra: Record<string, unknown>): Record<string, unknown> {
    const out: Record<string, unknown> = { ...this.raw };
    for (const k of Object.keys(out)) if (/Wo$/.test(k)) delete out[k];
    return { ...out, ...extra };
  }
}

// ---------------------------------------------------------------------------------------------
// DER encoding and decoding (just what X.509 and PKCS#10 need)

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

const seq = (...items: Buffer[]): Buffer => tlv(0x30, ...items);
// DER orders SET OF members by their encodings (Go's encoding/asn1 sorts them too).
const setOf = (items: Buffer[]): Buffer => tlv(0x31, ...[...items].sort(Buffer.compare));
const DER_NULL = Buffer.from([0x05, 0x00]);
const DER_TRUE = Buffer.from([0x01, 0x01, 0xff]);
const octets = (b: Buffer): Buffer => tlv(0x04, b);
const bitString = (b: Buffer, unusedBits = 0): Buffer => tlv(0x03, Buffer.from([unusedBits]), b);

/** INTEGER from unsigned big-endian bytes. */
function unsignedInt(bytes: Buffer): Buffer {
  let i = 0;
  while (i < bytes.length - 1 && bytes[i] === 0) i++;
  let body = bytes.subarray(i);
  if (body.length === 0) body = Buffer.from([0]);
  if (body[0] & 0x80) body = Buffer.concat([Buffer.from([0]), body]);
  return tlv(0x02, body);
}

function smallInt(n: number): Buffer {
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return unsignedInt(Buffer.from(bytes));
}

function oid(dotted: string): Buffer {
  const parts = dotted.split(".").map(Number);
  const out = [40 * parts[0] + parts[1]];
  for (const p of parts.slice(2)) {
    const groups = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128))
      groups.unshift(0x80 | (v & 0x7f));
    out.push(...groups);
  }
  return tlv(0x06, Buffer.from(out));
}

/** UTCTime for 1950..2049, GeneralizedTime otherwise (RFC 5280, as Go does); whole seconds. */
function derTime(d: Date): Buffer {
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  const y = d.getUTCFullYear();
  const rest = `${p(d.getUTCMonth() + 1)}${p(d.getUTCDate())}${p(d.getUTCHours())}${p(d.getUTCMinutes())}${p(d.getUTCSeconds())}Z`;
  if (y >= 1950 && y < 2050) return tlv(0x17, Buffer.from(`${p(y % 100)}${rest}`, "ascii"));
  return tlv(0x18, Buffer.from(`${p(y, 4)}${rest}`, "ascii"));
}

interface Tlv {
  tag: number;
  content: Buffer;
  raw: Buffer;
}

function readTlv(buf: Buffer, pos: number): Tlv {
  if (pos + 2 > buf.length) throw new Error("asn1: truncated element");
  const tag = buf[pos];
  if ((tag & 0x1f) === 0x1f) throw new Error("asn1: high-tag-number form is not supported");
  let len = buf[pos + 1];
  let header = 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4) throw new Error("asn1: unsupported length encoding");
    if (pos + 2 + n > buf.length) throw new Error("asn1: truncated length");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[pos + 2 + i];
    header += n;
  }
  const end = pos + header + len;
  if (end > buf.length) throw new Error("asn1: data truncated");
  return { tag, content: buf.subarray(pos + header, end), raw: buf.subarray(pos, end) };
}

/** The single element in `buf` (trailing data is an error, as in Go). */
function parseDer(buf: Buffer): Tlv {
  const t = readTlv(buf, 0);
  if (t.raw.length !== buf.length) throw new Error("asn1: trailing data");
  return t;
}

function children(t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let pos = 0; pos < t.content.length;) {
    const c = readTlv(t.content, pos);
    out.push(c);
    pos += c.raw.length;
  }
  return out;
}

function expectTag(t: Tlv | undefined, tag: number, what: string): Tlv {
  if (!t || t.tag !== tag) throw new Error(`asn1: malformed ${what}`);
  return t;
}

function decodeOid(content: Buffer): string {
  const parts: number[] = [];
  let v = 0;
  for (const b of content) {
    v = v * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      parts.push(v);
      v = 0;
    }
  }
  const first = parts.shift() ?? 0;
  const head = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80];
  return [...head, ...parts].join(".");
}

// ---------------------------------------------------------------------------------------------
// PEM (RFC 1421 as Go's encoding/pem writes it: 64-column base64, trailing newline)

function pemEncode(label: string, der: Buffer): string {
  const b64 = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${b64.join("\n")}\n-----END ${label}-----\n`;
}

/** The first PEM block in `text`, like Go's pem.Decode. */
function pemDecode(text: string): { label: string; der: Buffer } | undefined {
  const m = /-----BEGIN ([^\r\n]*?)-----\r?\n([\s\S]*?)-----END \1-----/.exec(text);
  if (!m) return undefined;
  let body = m[2];
  // Skip RFC 1421 headers ("Proc-Type: ...") that precede a blank line.
  if (/^[^\r\n]*:/.test(body)) body = body.replace(/^[\s\S]*?\r?\n\r?\n/, "");
  if (!/^[A-Za-z0-9+/=\s]*$/.test(body)) return undefined;
  return { label: m[1], der: Buffer.from(body.replace(/\s+/g, ""), "base64") };
}

// ---------------------------------------------------------------------------------------------
// Keys

type KeyAlgorithm = "RSA" | "ECDSA" | "ED25519";
type Curve = "P224" | "P256" | "P384" | "P521";

const CURVES: Record<Curve, { node: string; ssh?: string; hash: string; sigOid: string }> = {
  // Go's x509 signs with SHA-256 for every curve but P-384 and P-521; OpenSSH has no P-224.
  P224: { node: "secp224r1", hash: "sha256", sigOid: "1.2.840.10045.4.3.2" },
  P256: { node: "prime256v1", ssh: "nistp256", hash: "sha256", sigOid: "1.2.840.10045.4.3.2" },
  P384: { node: "secp384r1", ssh: "nistp384", hash: "sha384", sigOid: "1.2.840.10045.4.3.3" },
  P521: { node: "secp521r1", ssh: "nistp521", hash: "sha512", sigOid: "1.2.840.10045.4.3.4" },
};
const ALGORITHMS: readonly KeyAlgorithm[] = ["RSA", "ECDSA", "ED25519"];

interface Key {
  algorithm: KeyAlgorithm;
  curve?: Curve;
  publicKey: crypto.KeyObject;
  privateKey?: crypto.KeyObject;
}

function curveOf(k: crypto.KeyObject): Curve | undefined {
  const name = k.asymmetricKeyDetails?.namedCurve;
  return (Object.keys(CURVES) as Curve[]).find((c) => CURVES[c].node === name);
}

/** Classify a key the way the provider's privateKeyToAlgorithm does; others are unsupported. */
function describeKey(publicKey: crypto.KeyObject, privateKey?: crypto.KeyObject): Key {
  switch (publicKey.asymmetricKeyType) {
    case "rsa":
      return { algorithm: "RSA", publicKey, privateKey };
    case "ed25519":
      return { algorithm: "ED25519", publicKey, privateKey };
    case "ec": {
      const curve = curveOf(publicKey);
      if (!curve)
        throw new Error(
          `x509: unsupported elliptic curve ${publicKey.asymmetricKeyDetails?.namedCurve}`,
        );
      return { algorithm: "ECDSA", curve, publicKey, privateKey };
    }
    default:
      throw new Error(`unsupported key type: ${publicKey.asymmetricKeyType}`);
  }
}

const PRIVATE_KEY_PEM_TYPES: Record<string, "pkcs1" | "sec1" | "pkcs8"> = {
  "RSA PRIVATE KEY": "pkcs1",
  "EC PRIVATE KEY": "sec1",
  "PRIVATE KEY": "pkcs8",
};

/** The provider's parsePrivateKeyPEM: the first PEM block, parsed according to its preamble. */
function parsePrivateKeyPem(text: string): Key {
  const block = pemDecode(text);
  if (!block)
    throw new Error(`failed to decode PEM block: decoded bytes 0, undecoded ${text.length}`);
  const type = PRIVATE_KEY_PEM_TYPES[block.label];
  if (!type) throw new Error(`unable to determine parser for PEM preamble: ${block.label}`);
  let privateKey: crypto.KeyObject;
  try {
    privateKey = crypto.createPrivateKey({ key: block.der, format: "der", type });
  } catch (err) {
    throw new Error(
      `failed to parse private key given PEM preamble '${block.label}': ${(err as Error).message}`,
    );
  }
  return describeKey(crypto.createPublicKey(privateKey), privateKey);
}

function spkiOf(k: Key): Buffer {
  return k.publicKey.export({ type: "spki", format: "der" });
}

/** The raw public key bits of a SubjectPublicKeyInfo (EC point, Ed25519 key, PKCS#1 RSA key). */
function publicKeyBits(k: Key): Buffer {
  const [, bits] = children(parseDer(spkiOf(k)));
  return bits.content.subarray(1);
}

/** The provider's generateSubjectKeyID: SHA-1 over Go's marshalling of the public key. */
function subjectKeyId(k: Key): Buffer {
  let bytes: Buffer;
  if (k.algorithm === "RSA") bytes = k.publicKey.export({ type: "pkcs1", format: "der" });
  // asn1.Marshal of an ed25519.PublicKey ([]byte) is an OCTET STRING, not the raw key.
  else if (k.algorithm === "ED25519") bytes = octets(publicKeyBits(k));
  else bytes = publicKeyBits(k);
  return crypto.createHash("sha1").update(bytes).digest();
}

/** The signature algorithm Go's x509 picks for a signing key. */
function signatureParams(k: Key): { algorithmId: Buffer; hash: string | null } {
  if (k.algorithm === "RSA")
    return { algorithmId: seq(oid("1.2.840.113549.1.1.11"), DER_NULL), hash: "sha256" };
  if (k.algorithm === "ED25519") return { algorithmId: seq(oid("1.3.101.112")), hash: null };
  const c = CURVES[k.curve as Curve];
  return { algorithmId: seq(oid(c.sigOid)), hash: c.hash };
}

function sign(k: Key, data: Buffer): Buffer {
  if (!k.privateKey) throw new Error("no private key to sign with");
  const { hash } = signatureParams(k);
  // X.509 carries ECDSA signatures as DER SEQUENCE { r, s }.
  return crypto.sign(hash, data, { key: k.privateKey, dsaEncoding: "der" });
}

function samePublicKey(a: Key, b: Key): boolean {
  return spkiOf(a).equals(spkiOf(b));
}

// ---------------------------------------------------------------------------------------------
// OpenSSH encodings (golang.org/x/crypto/ssh: MarshalAuthorizedKey, fingerprints, MarshalPrivateKey)

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}
const sshString = (b: Buffer | string): Buffer => {
  const bytes = typeof b === "string" ? Buffer.from(b) : b;
  return Buffer.concat([u32(bytes.length), bytes]);
};
function sshMpint(unsigned: Buffer): Buffer {
  let i = 0;
  while (i < unsigned.length && unsigned[i] === 0) i++;
  let body = unsigned.subarray(i);
  if (body.length > 0 && body[0] & 0x80) body = Buffer.concat([Buffer.from([0]), body]);
  return sshString(body);
}
const b64url = (s: string | undefined): Buffer => Buffer.from(s ?? "", "base64url");

interface SshKey {
  keyType: string;
  publicBlob: Buffer;
  /** The key-specific private fields of the openssh-key-v1 format. */
  privateFields: Buffer;
}

/** Undefined where x/crypto/ssh cannot represent the key (ECDSA P-224). */
function sshKey(k: Key): SshKey | undefined {
  if (!k.privateKey || (k.algorithm === "ECDSA" && !CURVES[k.curve as Curve].ssh)) return undefined;
  const jwk = k.privateKey.export({ format: "jwk" });
  if (k.algorithm === "RSA") {
    const [n, e] = [b64url(jwk.n), b64url(jwk.e)];
    return {
      keyType: "ssh-rsa",
      publicBlob: Buffer.concat([sshString("ssh-rsa"), sshMpint(e), sshMpint(n)]),
      // openssh-key-v1 RSA: n, e, d, iqmp, p, q.
      privateFields: Buffer.concat(
        [jwk.n, jwk.e, jwk.d, jwk.qi, jwk.p, jwk.q].map((v) => sshMpint(b64url(v))),
      ),
    };
  }
  if (k.algorithm === "ED25519") {
    const pub = b64url(jwk.x);
    return {
      keyType: "ssh-ed25519",
      publicBlob: Buffer.concat([sshString("ssh-ed25519"), sshString(pub)]),
      privateFields: Buffer.concat([
        sshString(pub),
        sshString(Buffer.concat([b64url(jwk.d), pub])),
      ]),
    };
  }
  const curve = CURVES[k.curve as Curve].ssh as string;
  const keyType = `ecdsa-sha2-${curve}`;
  const point = Buffer.concat([Buffer.from([4]), b64url(jwk.x), b64url(jwk.y)]);
  return {
    keyType,
    publicBlob: Buffer.concat([sshString(keyType), sshString(curve), sshString(point)]),
    privateFields: Buffer.concat([sshString(curve), sshString(point), sshMpint(b64url(jwk.d))]),
  };
}

/** An unencrypted openssh-key-v1 private key with an empty comment. */
function opensshPrivateKey(key: SshKey): string {
  const check = crypto.randomBytes(4);
  let inner = Buffer.concat([
    check,
    check,
    sshString(key.keyType),
    key.privateFields,
    sshString(""),
  ]);
  const pad: number[] = [];
  for (let i = 0; (inner.length + i) % 8 !== 0; i++) pad.push(i + 1);
  inner = Buffer.concat([inner, Buffer.from(pad)]);
  const body = Buffer.concat([
    Buffer.from("openssh-key-v1\0", "binary"),
    sshString("none"),
    sshString("none"),
    sshString(""),
    u32(1),
    sshString(key.publicBlob),
    sshString(inner),
  ]);
  return pemEncode("OPENSSH PRIVATE KEY", body);
}

// ---------------------------------------------------------------------------------------------
// tls_private_key

function createPrivateKey(inp: Inputs): Record<string, unknown> {
  const algorithm = inp.str("algorithm", true);
  // Schema validators and defaults apply to every attribute, whatever the algorithm.
  if (!(ALGORITHMS as readonly string[]).includes(algorithm)) {
    inp.fail(
      "Invalid Attribute Value Match",
      `Attribute algorithm value must be one of: ["RSA" "ECDSA" "ED25519"], got: "${algorithm}"`,
    );
  }
  const ecdsaCurve = inp.str("ecdsaCurve") ?? "P224";
  if (!(ecdsaCurve in CURVES)) {
    inp.fail(
      "Invalid Attribute Value Match",
      `Attribute ecdsaCurve value must be one of: ["P224" "P256" "P384" "P521"], got: "${ecdsaCurve}"`,
    );
  }
  const rsaBits = inp.int("rsaBits", { min: Number.MIN_SAFE_INTEGER, fallback: 2048 });

  let pair: { publicKey: crypto.KeyObject; privateKey: crypto.KeyObject };
  if (algorithm === "RSA") {
    // Go's rsa.GenerateKey (Go 1.24+) refuses keys under 1024 bits.
    if (rsaBits < 1024) {
      inp.fail(
        "Unable to generate Key from configuration",
        `crypto/rsa: ${rsaBits}-bit keys are insecure (see https://go.dev/pkg/crypto/rsa#hdr-Minimum_key_size)`,
      );
    }
    pair = crypto.generateKeyPairSync("rsa", { modulusLength: rsaBits, publicExponent: 65537 });
  } else if (algorithm === "ECDSA") {
    pair = crypto.generateKeyPairSync("ec", { namedCurve: CURVES[ecdsaCurve as Curve].node });
  } else {
    pair = crypto.generateKeyPairSync("ed25519");
  }
  const key = describeKey(pair.publicKey, pair.privateKey);

  // The provider's formats: PKCS#1 for RSA, SEC 1 for ECDSA, PKCS#8 for ED25519.
  const privateKeyPem =
    key.algorithm === "RSA"
      ? pair.privateKey.export({ type: "pkcs1", format: "pem" })
      : key.algorithm === "ECDSA"
        ? pair.privateKey.export({ type: "sec1", format: "pem" })
        : pair.privateKey.export({ type: "pkcs8", format: "pem" });
  const ssh = sshKey(key);
  return inp.state({
    algorithm,
    ecdsaCurve,
    rsaBits,
    privateKeyPem: String(privateKeyPem),
    privateKeyPemPkcs8: String(pair.privateKey.export({ type: "pkcs8", format: "pem" })),
    privateKeyOpenssh: ssh ? opensshPrivateKey(ssh) : "",
    publicKeyPem: String(pair.publicKey.export({ type: "spki", format: "pem" })),
    publicKeyOpenssh: ssh ? `${ssh.keyType} ${ssh.publicBlob.toString("base64")}\n` : "",
    publicKeyFingerprintMd5: ssh
      ? (crypto.createHash("md5").update(ssh.publicBlob).digest("hex").match(/../g) ?? []).join(":")
      : "",
    publicKeyFingerprintSha256: ssh
      ? `SHA256:${crypto.createHash("sha256").update(ssh.publicBlob).digest("base64").replace(/=+$/, "")}`
      : "",
  });
}

// ---------------------------------------------------------------------------------------------
// Distinguished names, as Go's pkix.Name marshals and parses them

const AT = {
  country: "2.5.4.6",
  province: "2.5.4.8",
  locality: "2.5.4.7",
  streetAddress: "2.5.4.9",
  postalCode: "2.5.4.17",
  organization: "2.5.4.10",
  organizationalUnit: "2.5.4.11",
  commonName: "2.5.4.3",
  serialNumber: "2.5.4.5",
} as const;
const OID_EMAIL = "1.2.840.113549.1.9.1";

interface Name {
  country: string[];
  province: string[];
  locality: string[];
  streetAddress: string[];
  postalCode: string[];
  organization: string[];
  organizationalUnit: string[];
  commonName: string;
  serialNumber: string;
  /** Extra attributes, each its own RDN: OID and encoded value. */
  extra: Array<{ oid: string; value: Buffer }>;
}

const emptyName = (): Name => ({
  country: [],
  province: [],
  locality: [],
  streetAddress: [],
  postalCode: [],
  organization: [],
  organizationalUnit: [],
  commonName: "",
  serialNumber: "",
  extra: [],
});

/** Go marshals a string as PrintableString when it can ('*' and '&' excluded), else UTF8String. */
function goString(s: string): Buffer {
  return /^[A-Za-z0-9 '()+,\-./:=?]*$/.test(s)
    ? tlv(0x13, Buffer.from(s, "ascii"))
    : tlv(0x0c, Buffer.from(s, "utf8"));
}

function encodeName(n: Name): Buffer {
  const rdns: Buffer[] = [];
  // pkix.Name.ToRDNSequence: fixed order, each list field one (multi-valued) RDN.
  const add = (values: string[], at: string) => {
    if (values.length > 0) rdns.push(setOf(values.map((v) => seq(oid(at), goString(v)))));
  };
  add(n.country, AT.country);
  add(n.province, AT.province);
  add(n.locality, AT.locality);
  add(n.streetAddress, AT.streetAddress);
  add(n.postalCode, AT.postalCode);
  add(n.organization, AT.organization);
  add(n.organizationalUnit, AT.organizationalUnit);
  if (n.commonName) add([n.commonName], AT.commonName);
  if (n.serialNumber) add([n.serialNumber], AT.serialNumber);
  for (const e of n.extra) rdns.push(setOf([seq(oid(e.oid), e.value)]));
  return seq(...rdns);
}

/** The provider's createSubjectDistinguishedNames from the `subject` input. */
function nameFromInputs(inp: Inputs): Name {
  const n = emptyName();
  const subject = inp.record("subject");
  if (!subject) return n;
  const field = (key: string): string | undefined => {
    const v = subject[key];
    if (v === undefined || v === null) return undefined;
    if (typeof v !== "string")
      return inp.fail("Incorrect attribute value type", `subject.${key} must be a string`);
    return v;
  };
  const one = (key: string): string[] => {
    const v = field(key);
    return v === undefined ? [] : [v];
  };
  n.commonName = field("commonName") ?? "";
  n.organization = one("organization");
  n.organizationalUnit = one("organizationalUnit");
  const street = subject.streetAddresses;
  if (Array.isArray(street)) {
    n.streetAddress = street.map((s: unknown) =>
      typeof s === "string"
        ? s
        : inp.fail("Incorrect attribute value type", "subject.streetAddresses must be strings"),
    );
  }
  n.locality = one("locality");
  n.province = one("province");
  n.country = one("country");
  n.postalCode = one("postalCode");
  n.serialNumber = field("serialNumber") ?? "";
  const email = field("emailAddress");
  if (email !== undefined)
    n.extra.push({ oid: OID_EMAIL, value: tlv(0x16, Buffer.from(email, "utf8")) });
  return n;
}

function decodeDirectoryString(t: Tlv): string | undefined {
  switch (t.tag) {
    case 0x0c: // UTF8String
      return t.content.toString("utf8");
    case 0x12: // NumericString
    case 0x13: // PrintableString
    case 0x16: // IA5String
      return t.content.toString("ascii");
    case 0x14: // T61String, read as Latin-1 by Go
      return t.content.toString("latin1");
    case 0x1e: // BMPString, UCS-2 big-endian
      return Buffer.from(t.content).swap16().toString("utf16le");
    default:
      return undefined;
  }
}

/** Go's pkix.Name.FillFromRDNSequence: known 2.5.4.x attributes only; others are not re-emitted. */
function nameFromDer(t: Tlv): Name {
  const n = emptyName();
  for (const rdn of children(t)) {
    for (const atv of children(rdn)) {
      const [type, value] = children(atv);
      const s = value ? decodeDirectoryString(value) : undefined;
      if (s === undefined) continue;
      switch (decodeOid(expectTag(type, 0x06, "attribute type").content)) {
        case AT.commonName:
          n.commonName = s;
          break;
        case AT.serialNumber:
          n.serialNumber = s;
          break;
        case AT.country:
          n.country.push(s);
          break;
        case AT.province:
          n.province.push(s);
          break;
        case AT.locality:
          n.locality.push(s);
          break;
        case AT.streetAddress:
          n.streetAddress.push(s);
          break;
        case AT.postalCode:
          n.postalCode.push(s);
          break;
        case AT.organization:
          n.organization.push(s);
          break;
        case AT.organizationalUnit:
          n.organizationalUnit.push(s);
          break;
      }
    }
  }
  return n;
}

const EMPTY_NAME_DER = seq();

// ---------------------------------------------------------------------------------------------
// Subject alternative names

interface Sans {
  dnsNames: string[];
  ipAddresses: Buffer[];
  uris: string[];
}

/** Go's net.ParseIP: dotted-quad IPv4 (no leading zeros) or IPv6 without a zone. */
function parseIp(s: string): Buffer | undefined {
  const v4 = (str: string): number[] | undefined => {
    const parts = str.split(".");
    if (parts.length !== 4) return undefined;
    const out: number[] = [];
    for (const p of parts) {
      if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255) return undefined;
      out.push(Number(p));
    }
    return out;
  };
  const four = v4(s);
  if (four) return Buffer.from(four);
  if (s.includes("%") || !net.isIPv6(s)) return undefined;
  // Rewrite an embedded dotted-quad tail as two hex groups, then expand "::".
  let text = s;
  const lastColon = s.lastIndexOf(":");
  if (s.slice(lastColon + 1).includes(".")) {
    const q = v4(s.slice(lastColon + 1));
    if (!q) return undefined;
    text = `${s.slice(0, lastColon + 1)}${((q[0] << 8) | q[1]).toString(16)}:${((q[2] << 8) | q[3]).toString(16)}`;
  }
  const groupsOf = (str: string) => (str === "" ? [] : str.split(":").map((g) => parseInt(g, 16)));
  let groups: number[];
  if (text.includes("::")) {
    const [l, r] = text.split("::");
    const left = groupsOf(l);
    const right = groupsOf(r);
    groups = [
      ...left,
      ...new Array<number>(Math.max(0, 8 - left.length - right.length)).fill(0),
      ...right,
    ];
  } else {
    groups = groupsOf(text);
  }
  if (groups.length !== 8 || groups.some((g) => !(g >= 0 && g <= 0xffff))) return undefined;
  const out = Buffer.alloc(16);
  groups.forEach((g, i) => out.writeUInt16BE(g, 2 * i));
  return out;
}

/** IPv4 (incl. IPv4-mapped IPv6) in 4 bytes, as Go's marshalSANs writes it. */
function ipForSan(ip: Buffer): Buffer {
  const mapped =
    ip.length === 16 &&
    ip.subarray(0, 10).every((b) => b === 0) &&
    ip[10] === 0xff &&
    ip[11] === 0xff;
  return mapped ? ip.subarray(12) : ip;
}

/** Go's url.Parse failures and url.String() escaping, approximately (URIs are kept verbatim otherwise). */
function normalizeUri(s: string): string {
  if (/[\x00-\x1f\x7f]/.test(s))
    throw new Error(`parse ${JSON.stringify(s)}: net/url: invalid control character in URL`);
  if (s.startsWith(":")) throw new Error(`parse ${JSON.stringify(s)}: missing protocol scheme`);
  const badEscape = /%(?![0-9A-Fa-f]{2})/.exec(s);
  if (badEscape)
    throw new Error(
      `parse ${JSON.stringify(s)}: invalid URL escape ${JSON.stringify(s.slice(badEscape.index, badEscape.index + 3))}`,
    );
  return s.replace(/[^\x21-\x7e]/gu, (c) => encodeURIComponent(c));
}

function isIa5(s: string): boolean {
  return /^[\x00-\x7f]*$/.test(s);
}

function encodeSans(s: Sans): Buffer {
  const names: Buffer[] = [];
  for (const d of s.dnsNames) {
    if (!isIa5(d)) throw new Error(`x509: ${JSON.stringify(d)} cannot be encoded as an IA5String`);
    names.push(tlv(0x82, Buffer.from(d, "ascii")));
  }
  for (const ip of s.ipAddresses) names.push(tlv(0x87, ipForSan(ip)));
  for (const u of s.uris) names.push(tlv(0x86, Buffer.from(u, "ascii")));
  return seq(...names);
}

const hasSans = (s: Sans): boolean => s.dnsNames.length + s.ipAddresses.length + s.uris.length > 0;

function sansFromInputs(inp: Inputs): Sans {
  const ips = inp.strList("ipAddresses") ?? [];
  const uris = inp.strList("uris") ?? [];
  // Schema validators: list elements of ip_addresses and uris must be non-empty.
  for (const [name, list] of [
    ["ipAddresses", ips],
    ["uris", uris],
  ] as const) {
    list.forEach((v, i) => {
      if (v.length < 1)
        inp.fail(
          "Invalid Attribute Value Length",
          `Attribute ${name}[${i}] string length must be at least 1, got: 0`,
        );
    });
  }
  return {
    dnsNames: inp.strList("dnsNames") ?? [],
    ipAddresses: ips.map(
      (ip) =>
        parseIp(ip) ?? inp.fail("Invalid IP address", `Failed to parse ${JSON.stringify(ip)}`),
    ),
    uris: uris.map((u) => {
      try {
        return normalizeUri(u);
      } catch (err) {
        return inp.fail(
          "Invalid URI",
          `Failed to parse ${JSON.stringify(u)}: ${(err as Error).message}`,
        );
      }
    }),
  };
}

function sansFromDer(value: Buffer): Sans {
  const out: Sans = { dnsNames: [], ipAddresses: [], uris: [] };
  for (const gn of children(parseDer(value))) {
    if (gn.tag === 0x82) out.dnsNames.push(gn.content.toString("latin1"));
    else if (gn.tag === 0x86) out.uris.push(gn.content.toString("latin1"));
    else if (gn.tag === 0x87) {
      if (gn.content.length !== 4 && gn.content.length !== 16) {
        throw new Error(`x509: cannot parse IP address of length ${gn.content.length}`);
      }
      out.ipAddresses.push(Buffer.from(gn.content));
    }
    // Email SANs are parsed by Go but the provider does not copy them into the certificate.
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Allowed uses

const KEY_USAGES: Record<string, number> = {
  digital_signature: 1 << 0,
  content_commitment: 1 << 1,
  key_encipherment: 1 << 2,
  data_encipherment: 1 << 3,
  key_agreement: 1 << 4,
  cert_signing: 1 << 5,
  crl_signing: 1 << 6,
  encipher_only: 1 << 7,
  decipher_only: 1 << 8,
};

const EXT_KEY_USAGES: Record<string, string> = {
  any_extended: "2.5.29.37.0",
  server_auth: "1.3.6.1.5.5.7.3.1",
  client_auth: "1.3.6.1.5.5.7.3.2",
  code_signing: "1.3.6.1.5.5.7.3.3",
  email_protection: "1.3.6.1.5.5.7.3.4",
  ipsec_end_system: "1.3.6.1.5.5.7.3.5",
  ipsec_tunnel: "1.3.6.1.5.5.7.3.6",
  ipsec_user: "1.3.6.1.5.5.7.3.7",
  timestamping: "1.3.6.1.5.5.7.3.8",
  ocsp_signing: "1.3.6.1.5.5.7.3.9",
  microsoft_server_gated_crypto: "1.3.6.1.4.1.311.10.3.3",
  netscape_server_gated_crypto: "2.16.840.1.113730.4.1",
  microsoft_commercial_code_signing: "1.3.6.1.4.1.311.2.1.22",
  microsoft_kernel_code_signing: "1.3.6.1.4.1.311.61.1.1",
};

const SUPPORTED_USES = [...Object.keys(KEY_USAGES), ...Object.keys(EXT_KEY_USAGES)].sort();

/** The names of the allowed uses the provider accepts (for tests and error messages). */
export const FAKE_TLS_ALLOWED_USES: readonly string[] = SUPPORTED_USES;

function allowedUses(inp: Inputs): { keyUsage: number; extKeyUsages: string[] } {
  const uses = inp.strList("allowedUses", true) as string[];
  let keyUsage = 0;
  const extKeyUsages: string[] = [];
  uses.forEach((use, i) => {
    if (!SUPPORTED_USES.includes(use)) {
      inp.fail(
        "Invalid Attribute Value Match",
        `Attribute allowedUses[${i}] value must be one of: [${SUPPORTED_USES.map((u) => `"${u}"`).join(" ")}], got: "${use}"`,
      );
    }
    if (use in KEY_USAGES) keyUsage |= KEY_USAGES[use];
    // Go appends every listed extended usage, duplicates included.
    if (use in EXT_KEY_USAGES) extKeyUsages.push(EXT_KEY_USAGES[use]);
  });
  return { keyUsage, extKeyUsages };
}

/** Go's marshalKeyUsage: bits reversed into a minimal BIT STRING. */
function keyUsageValue(ku: number): Buffer {
  const rev = (b: number) => {
    let r = 0;
    for (let i = 0; i < 8; i++) if (b & (1 << i)) r |= 1 << (7 - i);
    return r;
  };
  const bytes = [rev(ku & 0xff), rev((ku >> 8) & 0xff)];
  const used = bytes[1] !== 0 ? 2 : 1;
  const last = bytes[used - 1];
  let unused = 0;
  while (unused < 8 && !(last & (1 << unused))) unused++;
  return bitString(Buffer.from(bytes.slice(0, used)), unused === 8 ? 0 : unused);
}

// ---------------------------------------------------------------------------------------------
// Certificates (Go's x509.CreateCertificate, as the provider's createCertificate drives it)

const OID = {
  keyUsage: "2.5.29.15",
  extKeyUsage: "2.5.29.37",
  basicConstraints: "2.5.29.19",
  subjectKeyId: "2.5.29.14",
  authorityKeyId: "2.5.29.35",
  subjectAltName: "2.5.29.17",
  extensionRequest: "1.2.840.113549.1.9.14",
} as const;

function extension(id: string, critical: boolean, value: Buffer): Buffer {
  return seq(oid(id), ...(critical ? [DER_TRUE] : []), octets(value));
}

interface CertificateCommon {
  validityPeriodHours: number;
  earlyRenewalHours: number;
  isCaCertificate: boolean;
  maxPathLength: number;
  setSubjectKeyId: boolean;
  keyUsage: number;
  extKeyUsages: string[];
}

function certificateCommon(inp: Inputs): CertificateCommon {
  const validityPeriodHours = inp.int("validityPeriodHours", { min: 0 });
  const { keyUsage, extKeyUsages } = allowedUses(inp);
  return {
    validityPeriodHours,
    keyUsage,
    extKeyUsages,
    earlyRenewalHours: inp.int("earlyRenewalHours", { min: 0, fallback: 0 }),
    isCaCertificate: inp.bool("isCaCertificate"),
    maxPathLength: inp.int("maxPathLength", { min: -1, fallback: -1 }),
    setSubjectKeyId: inp.bool("setSubjectKeyId"),
  };
}

interface CertificateTemplate {
  subject: Name;
  sans: Sans;
  subjectKey: Key;
  /** Issuer: the encoded subject, SKID and key of the parent (the template itself if self-signed). */
  issuer: { name: Buffer; subjectKeyId?: Buffer; publicKey?: Key } | "self";
  signer: Key;
  setAuthorityKeyId: boolean;
}

/** RFC 3339 with fractional seconds trimmed, like Go's time.MarshalText in UTC. */
function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.?0+Z$/, "Z");
}

function issueCertificate(
  inp: Inputs,
  c: CertificateCommon,
  t: CertificateTemplate,
): Record<string, unknown> {
  const notBefore = clock();
  const notAfter = new Date(notBefore.getTime() + c.validityPeriodHours * 3_600_000);
  const serial = crypto.randomBytes(16); // uniform below 2^128, as the provider draws it

  const subject = encodeName(t.subject);
  let skid: Buffer | undefined;
  if (c.isCaCertificate) {
    // RFC 5280 4.1.2.6: a CA needs a non-empty subject; the provider checks before Go would.
    if (subject.equals(EMPTY_NAME_DER)) {
      inp.fail(
        "Invalid Certificate Subject",
        "Must contain at least one Distinguished Name when creating Certificate Authority (CA)",
      );
    }
    skid = subjectKeyId(t.subjectKey);
  }
  // Go's MaxPathLen: 0 without MaxPathLenZero means "unset"; the provider never sets MaxPathLenZero.
  const maxPathLen = c.maxPathLength > 0 ? c.maxPathLength : -1;
  if (c.setSubjectKeyId) skid = subjectKeyId(t.subjectKey);

  const issuerName = t.issuer === "self" ? subject : t.issuer.name;
  const issuerSkid = t.issuer === "self" ? skid : t.issuer.subjectKeyId;
  let akid: Buffer | undefined;
  if (t.setAuthorityKeyId) {
    if (!issuerSkid)
      inp.fail("Invalid Certificate Authority", "Could not determine Authority Key Identifier");
    akid = issuerSkid;
  }
  // Go fills the AKID from the parent's SKID whenever issuer and subject differ.
  if (!issuerName.equals(subject) && issuerSkid) akid = issuerSkid;

  const createFail = (detail: string): never => inp.fail("Failed to create certificate", detail);
  if (!c.isCaCertificate && maxPathLen !== -1)
    createFail("x509: only CAs are allowed to specify MaxPathLen");
  if (t.issuer !== "self" && t.issuer.publicKey && !samePublicKey(t.issuer.publicKey, t.signer)) {
    createFail("x509: provided PrivateKey doesn't match parent's PublicKey");
  }

  // Extensions in Go's order: KU, EKU, basic constraints, SKID, AKID, SAN.
  const exts: Buffer[] = [];
  if (c.keyUsage !== 0) exts.push(extension(OID.keyUsage, true, keyUsageValue(c.keyUsage)));
  if (c.extKeyUsages.length > 0)
    exts.push(extension(OID.extKeyUsage, false, seq(...c.extKeyUsages.map(oid))));
  exts.push(
    extension(
      OID.basicConstraints,
      true,
      seq(
        ...(c.isCaCertificate ? [DER_TRUE] : []),
        ...(maxPathLen >= 0 ? [smallInt(maxPathLen)] : []),
      ),
    ),
  );
  if (skid) exts.push(extension(OID.subjectKeyId, false, octets(skid)));
  if (akid) exts.push(extension(OID.authorityKeyId, false, seq(tlv(0x80, akid))));
  if (hasSans(t.sans)) {
    let sanValue: Buffer;
    try {
      sanValue = encodeSans(t.sans);
    } catch (err) {
      return createFail((err as Error).message);
    }
    // RFC 5280 4.2.1.6: SAN is critical when the subject is empty.
    exts.push(extension(OID.subjectAltName, subject.equals(EMPTY_NAME_DER), sanValue));
  }

  const { algorithmId } = signatureParams(t.signer);
  const tbs = seq(
    tlv(0xa0, smallInt(2)),
    unsignedInt(serial),
    algorithmId,
    issuerName,
    seq(derTime(notBefore), derTime(notAfter)),
    subject,
    spkiOf(t.subjectKey),
    tlv(0xa3, seq(...exts)),
  );
  const der = seq(tbs, algorithmId, bitString(sign(t.signer, tbs)));

  // ready_for_renewal: at creation the provider's plan modifier sets it when validity is 0 or the
  // early-renewal window covers the whole validity, i.e. now >= end - earlyRenewalHours.
  const renewAt = notAfter.getTime() - c.earlyRenewalHours * 3_600_000;
  return {
    certPem: pemEncode("CERTIFICATE", der),
    validityStartTime: rfc3339(notBefore),
    validityEndTime: rfc3339(notAfter),
    readyForRenewal: c.validityPeriodHours === 0 || notBefore.getTime() >= renewAt,
    earlyRenewalHours: c.earlyRenewalHours,
    isCaCertificate: c.isCaCertificate,
    maxPathLength: c.maxPathLength,
    setSubjectKeyId: c.setSubjectKeyId,
  };
}

function parseKeyInput(inp: Inputs, pem: string, summary: string): Key {
  try {
    return parsePrivateKeyPem(pem);
  } catch (err) {
    return inp.fail(summary, (err as Error).message);
  }
}

// ---------------------------------------------------------------------------------------------
// tls_self_signed_cert

function createSelfSignedCert(inp: Inputs): Record<string, unknown> {
  const pem = inp.pemOrWriteOnly("privateKeyPem");
  const common = certificateCommon(inp);
  const setAuthorityKeyId = inp.bool("setAuthorityKeyId");
  const sans = sansFromInputs(inp);
  const key = parseKeyInput(inp, pem, "Failed to parse private key PEM");
  const subject = nameFromInputs(inp);
  const cert = issueCertificate(inp, common, {
    subject,
    sans,
    subjectKey: key,
    issuer: "self",
    signer: key,
    setAuthorityKeyId,
  });
  return inp.state({ ...cert, keyAlgorithm: key.algorithm, setAuthorityKeyId });
}

// ---------------------------------------------------------------------------------------------
// tls_cert_request

function createCertRequest(inp: Inputs): Record<string, unknown> {
  const pem = inp.pemOrWriteOnly("privateKeyPem");
  const sans = sansFromInputs(inp);
  const key = parseKeyInput(inp, pem, "Failed to parse private key PEM");
  const subject = nameFromInputs(inp);

  // Go's CreateCertificateRequest: SANs (non-critical) in an extensionRequest attribute; the
  // attributes field is always present, possibly empty.
  const attributes: Buffer[] = [];
  if (hasSans(sans)) {
    let sanValue: Buffer;
    try {
      sanValue = encodeSans(sans);
    } catch (err) {
      return inp.fail("Error creating certificate request", (err as Error).message);
    }
    attributes.push(
      seq(
        oid(OID.extensionRequest),
        tlv(0x31, seq(extension(OID.subjectAltName, false, sanValue))),
      ),
    );
  }
  const info = seq(smallInt(0), encodeName(subject), spkiOf(key), tlv(0xa0, ...attributes));
  const der = seq(info, signatureParams(key).algorithmId, bitString(sign(key, info)));
  return inp.state({
    certRequestPem: pemEncode("CERTIFICATE REQUEST", der),
    keyAlgorithm: key.algorithm,
  });
}

// ---------------------------------------------------------------------------------------------
// tls_locally_signed_cert

/** The provider's decodePEM: the first block must carry the expected preamble. */
function decodeTypedPem(text: string, label: string): Buffer {
  const block = pemDecode(text);
  if (!block) throw new Error(`failed to decode PEM of expected type "${label}" from bytes`);
  if (block.label !== label)
    throw new Error(`invalid PEM type - expected "${label}", got "${block.label}"`);
  return block.der;
}

interface ParsedCsr {
  subject: Name;
  sans: Sans;
  publicKey: Key;
}

/** Go's x509.ParseCertificateRequest. Like the provider, the signature is NOT checked. */
function parseCsr(text: string): ParsedCsr {
  const der = decodeTypedPem(text, "CERTIFICATE REQUEST");
  const [info] = children(expectTag(parseDer(der), 0x30, "certificate request"));
  const [, subjectTlv, spkiTlv, attrs] = children(
    expectTag(info, 0x30, "certificate request info"),
  );
  let publicKey: Key;
  try {
    publicKey = describeKey(
      crypto.createPublicKey({
        key: expectTag(spkiTlv, 0x30, "public key").raw,
        format: "der",
        type: "spki",
      }),
    );
  } catch (err) {
    throw new Error(`failed to parse certificate request: ${(err as Error).message}`);
  }
  let sans: Sans = { dnsNames: [], ipAddresses: [], uris: [] };
  for (const attr of attrs && attrs.tag === 0xa0 ? children(attrs) : []) {
    const [type, values] = children(attr);
    if (decodeOid(expectTag(type, 0x06, "attribute").content) !== OID.extensionRequest) continue;
    for (const exts of children(values)) {
      for (const ext of children(exts)) {
        const parts = children(ext);
        if (decodeOid(parts[0].content) === OID.subjectAltName)
          sans = sansFromDer(parts[parts.length - 1].content);
      }
    }
  }
  return { subject: nameFromDer(expectTag(subjectTlv, 0x30, "subject")), sans, publicKey };
}

interface ParsedCert {
  rawSubject: Buffer;
  subjectKeyId?: Buffer;
  publicKey: Key;
}

/** The provider's parseCertificate: exactly one certificate in the first CERTIFICATE block. */
function parseCert(text: string): ParsedCert {
  const der = decodeTypedPem(text, "CERTIFICATE");
  let publicKey: Key;
  try {
    // node:crypto parses the whole certificate; a malformed one fails here as it would in Go.
    publicKey = describeKey(new crypto.X509Certificate(der).publicKey);
  } catch (err) {
    throw new Error(`failed to parse certificate: ${(err as Error).message}`);
  }
  const cert = readTlv(der, 0);
  if (cert.raw.length !== der.length) throw new Error("multiple certificates found in");
  const tbs = children(children(cert)[0]);
  const fields = tbs[0].tag === 0xa0 ? tbs.slice(1) : tbs;
  const rawSubject = fields[4].raw;
  let subjectKeyId: Buffer | undefined;
  const extsTlv = fields.find((f) => f.tag === 0xa3);
  for (const ext of extsTlv ? children(children(extsTlv)[0]) : []) {
    const parts = children(ext);
    if (decodeOid(parts[0].content) === OID.subjectKeyId) {
      subjectKeyId = Buffer.from(parseDer(parts[parts.length - 1].content).content);
    }
  }
  return { rawSubject: Buffer.from(rawSubject), subjectKeyId, publicKey };
}

function createLocallySignedCert(inp: Inputs): Record<string, unknown> {
  const csrPem = inp.str("certRequestPem", true);
  const caCertPem = inp.str("caCertPem", true);
  const caKeyPem = inp.pemOrWriteOnly("caPrivateKeyPem");
  const common = certificateCommon(inp);

  let csr: ParsedCsr;
  try {
    csr = parseCsr(csrPem);
  } catch (err) {
    return inp.fail("Failed to parse certificate request PEM", (err as Error).message);
  }
  const caKey = parseKeyInput(inp, caKeyPem, "Failed to parse CA private key PEM");
  let caCert: ParsedCert;
  try {
    caCert = parseCert(caCertPem);
  } catch (err) {
    return inp.fail("Failed to parse CA certificate PEM", (err as Error).message);
  }
  // (The provider only warns when the CA certificate is not a CA; so does nothing here.)
  const cert = issueCertificate(inp, common, {
    subject: csr.subject,
    sans: csr.sans,
    subjectKey: csr.publicKey,
    issuer: {
      name: caCert.rawSubject,
      subjectKeyId: caCert.subjectKeyId,
      publicKey: caCert.publicKey,
    },
    signer: caKey,
    setAuthorityKeyId: false,
  });
  return inp.state({ ...cert, caKeyAlgorithm: caKey.algorithm });
}
