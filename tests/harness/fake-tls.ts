/**
 * A fake of the Pulumi `tls` provider (@pulumi/tls 5.x, bridged from hashicorp/terraform-provider-tls)
 * for Pulumi mocks, covering what components/pki.ts uses: ECDSA P256/P384 and RSA keys, CSRs,
 * self-signed and locally signed certificates. Given a resource's inputs it returns the state the
 * provider would, with real keys (node:crypto) and certificates made with @peculiar/x509 the way
 * the provider drives Go's crypto/x509 (internal/provider/common_cert.go): same extensions, order,
 * criticality and signature algorithms. It throws where the provider refuses an input, and on
 * inputs it does not model (ED25519, P224/P521, write-only keys, maxPathLength, ...).
 *
 * Provider behaviour reproduced on purpose:
 * - A CSR's signature is NOT verified (the provider only parses it).
 * - A locally signed certificate takes the CSR's subject and DNS/IP/URI SANs; its authority key id
 *   is the CA's subject key id whenever the CA certificate has one (Go's CreateCertificate).
 * - A CA without `cert_signing` still signs, but its KeyUsage then forbids it, so chains fail.
 * - `validityPeriodHours` may be 0: the certificate is then immediately ready for renewal.
 */
import "reflect-metadata";
import * as crypto from "node:crypto";
import * as net from "node:net";
import * as x509 from "@peculiar/x509";
import {
  ALLOWED_USES,
  certificateExtensions,
  csrSans,
  nameDer,
  rfc3339,
  sanNames,
  subjectName,
  TLS_TYPES as TYPES,
  unknownSubjectFields,
} from "../../tools/render/tls-layout";

x509.cryptoProvider.set(crypto.webcrypto);

type State = Record<string, unknown>;
/** True for the tls resource types this fake answers. */
export function isFakeTlsType(type: string): boolean {
  return (Object.values(TYPES) as string[]).includes(type);
}

/** Thrown where the real provider would fail (or the fake cannot follow); names the resource type. */
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

const CERT = "allowedUses validityPeriodHours earlyRenewalHours isCaCertificate setSubjectKeyId";
const SANS = "dnsNames ipAddresses uris";
/** Per type: how it is created, and the inputs modelled (any other set input is refused). */
const RESOURCES: Record<string, [(inp: Inputs) => Promise<State>, string]> = {
  [TYPES.privateKey]: [createPrivateKey, "algorithm ecdsaCurve rsaBits"],
  [TYPES.selfSignedCert]: [createSelfSignedCert, `privateKeyPem subject ${CERT} ${SANS}`],
  [TYPES.certRequest]: [createCertRequest, `privateKeyPem subject ${SANS}`],
  [TYPES.locallySignedCert]: [createSignedCert, `certRequestPem caCertPem caPrivateKeyPem ${CERT}`],
};

/** Answer a tls resource registration with the state the real provider would return. */
export async function fakeTlsResource(type: string, inputs: State): Promise<State> {
  if (!isFakeTlsType(type)) throw new Error(`fake-tls: unsupported resource type ${type}`);
  const [create, modelled] = RESOURCES[type];
  const inp = new Inputs(type, inputs);
  for (const [name, v] of Object.entries(inputs)) {
    if (v != null && !modelled.split(" ").includes(name))
      inp.fail("Not modelled by the fake", `input ${name} is not supported`);
  }
  return { ...inputs, ...(await create(inp)) };
}

/** Inputs as Pulumi mocks deliver them (camelCase, plain JS values; null and undefined unset). */
class Inputs {
  constructor(
    readonly type: string,
    readonly raw: State,
  ) {}

  fail(summary: string, detail: string): never {
    throw new FakeTlsError(this.type, summary, detail);
  }

  /** The value of `name`, or `fallback` (Pulumi's input types already check the kinds). */
  get<T>(name: string, fallback?: T): T {
    const v = (this.raw[name] ?? fallback) as T | undefined;
    if (v === undefined)
      this.fail("Missing required argument", `Missing required property '${name}'`);
    return v;
  }

  oneOf(name: string, allowed: readonly string[], value: string): void {
    if (allowed.includes(value)) return;
    const list = allowed.map((a) => `"${a}"`).join(" ");
    this.fail(
      "Invalid Attribute Value Match",
      `Attribute ${name} value must be one of: [${list}], got: "${value}"`,
    );
  }

  hours(name: string, fallback?: number): number {
    const v = this.get<number>(name, fallback);
    if (!Number.isSafeInteger(v) || v < 0)
      this.fail("Invalid Attribute Value", `Attribute ${name} value must be at least 0, got: ${v}`);
    return v;
  }

  /** Run `f`, turning its error into the provider's diagnostic `summary`. */
  async try<T>(summary: string, f: () => T | Promise<T>): Promise<T> {
    try {
      return await f();
    } catch (err) {
      return this.fail(summary, (err as Error).message);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Keys (a KeyObject, private for signers, public for what a certificate certifies)

/** Go's x509 signs with SHA-256 on P-256 and RSA keys, with SHA-384 on P-384 ones. */
const CURVES: Record<string, { node: string; web: string; hash: string }> = {
  P256: { node: "prime256v1", web: "P-256", hash: "SHA-256" },
  P384: { node: "secp384r1", web: "P-384", hash: "SHA-384" },
};

function signatureAlgorithm(k: crypto.KeyObject) {
  if (k.asymmetricKeyType === "rsa") return { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" };
  const curve = k.asymmetricKeyDetails?.namedCurve;
  const c = Object.values(CURVES).find((v) => v.node === curve);
  if (!c) throw new Error(`${curve ?? k.asymmetricKeyType} keys are not modelled by the fake`);
  return { name: "ECDSA", namedCurve: c.web, hash: c.hash };
}

const algorithmOf = (k: crypto.KeyObject) =>
  signatureAlgorithm(k).name === "ECDSA" ? "ECDSA" : "RSA";
const publicOf = (k: crypto.KeyObject) => (k.type === "public" ? k : crypto.createPublicKey(k));
const spki = (k: crypto.KeyObject) => publicOf(k).export({ type: "spki", format: "der" });
const pemLabel = (text: string) => /-----BEGIN ([^-\r\n]+)-----/.exec(text)?.[1];

/** The provider's parsePrivateKeyPEM: PKCS#1, SEC 1 or PKCS#8 by PEM preamble. */
function privateKeyInput(inp: Inputs, name: string, summary: string): Promise<crypto.KeyObject> {
  const pem = inp.get<string>(name);
  return inp.try(summary, () => {
    const label = pemLabel(pem);
    if (!["RSA PRIVATE KEY", "EC PRIVATE KEY", "PRIVATE KEY"].includes(label ?? ""))
      throw new Error(`unable to determine parser for PEM preamble: ${label}`);
    const key = crypto.createPrivateKey(pem);
    algorithmOf(key);
    return key;
  });
}

async function createPrivateKey(inp: Inputs): Promise<State> {
  const algorithm = inp.get<string>("algorithm");
  inp.oneOf("algorithm", ["RSA", "ECDSA", "ED25519"], algorithm);
  // Schema defaults apply whatever the algorithm: ecdsa_curve P224, rsa_bits 2048.
  const ecdsaCurve = inp.get<string>("ecdsaCurve", "P224");
  inp.oneOf("ecdsaCurve", ["P224", "P256", "P384", "P521"], ecdsaCurve);
  const rsaBits = inp.get<number>("rsaBits", 2048);
  if (algorithm === "ED25519" || (algorithm === "ECDSA" && !(ecdsaCurve in CURVES)))
    inp.fail("Not modelled by the fake", `${algorithm} ${ecdsaCurve} keys are not supported`);
  const { privateKey, publicKey } =
    algorithm === "RSA"
      ? crypto.generateKeyPairSync("rsa", { modulusLength: rsaBits })
      : crypto.generateKeyPairSync("ec", { namedCurve: CURVES[ecdsaCurve].node });
  const pem = (type: "pkcs1" | "sec1" | "pkcs8") => privateKey.export({ type, format: "pem" });
  return {
    algorithm,
    ecdsaCurve,
    rsaBits,
    // The provider's formats: PKCS#1 ("RSA PRIVATE KEY") or SEC 1 ("EC PRIVATE KEY"), and PKCS#8.
    privateKeyPem: pem(algorithm === "RSA" ? "pkcs1" : "sec1"),
    privateKeyPemPkcs8: pem("pkcs8"),
    publicKeyPem: publicKey.export({ type: "spki", format: "pem" }),
  };
}

// ---------------------------------------------------------------------------------------------
// Names, SANs and allowed uses

/** The provider's createSubjectDistinguishedNames, for the subject fields the layout knows. */
function subjectInput(inp: Inputs): x509.Name {
  const subject = inp.get<State>("subject", {});
  for (const key of unknownSubjectFields(subject))
    inp.fail("Not modelled by the fake", `subject.${key} is not supported`);
  return subjectName(subject);
}

function sansInput(inp: Inputs): x509.JsonGeneralName[] {
  const [dns, ips, uris] = SANS.split(" ").map((name) => inp.get<string[]>(name, []));
  for (const ip of ips)
    if (!net.isIP(ip)) inp.fail("Invalid IP address", `Failed to parse ${JSON.stringify(ip)}`);
  return sanNames(dns, ips, uris);
}

// ---------------------------------------------------------------------------------------------
// Certificates: the provider's createCertificate, then Go's x509.CreateCertificate

interface Template {
  subject: x509.Name;
  sans: x509.JsonGeneralName[];
  subjectKey: crypto.KeyObject;
  signer: crypto.KeyObject;
  /** The CA certificate, or nothing when self-signed. */
  parent?: x509.X509Certificate;
}

async function issueCertificate(inp: Inputs, t: Template): Promise<State> {
  const uses = inp.get<string[]>("allowedUses");
  uses.forEach((use, i) => inp.oneOf(`allowedUses[${i}]`, ALLOWED_USES, use));
  const validityPeriodHours = inp.hours("validityPeriodHours");
  const earlyRenewalHours = inp.hours("earlyRenewalHours", 0);
  const isCaCertificate = inp.get<boolean>("isCaCertificate", false);
  const setSubjectKeyId = inp.get<boolean>("setSubjectKeyId", false);
  if (isCaCertificate && nameDer(t.subject).length === 2) {
    inp.fail(
      "Invalid Certificate Subject",
      "Must contain at least one Distinguished Name when creating Certificate Authority (CA)",
    );
  }
  if (t.parent && !Buffer.from(t.parent.publicKey.rawData).equals(spki(t.signer)))
    inp.fail(
      "Failed to create certificate",
      "x509: provided PrivateKey doesn't match parent's PublicKey",
    );

  const extensions = await certificateExtensions({
    uses,
    isCaCertificate,
    setSubjectKeyId,
    subject: t.subject,
    subjectPublicKey: spki(t.subjectKey),
    parent: t.parent,
    sans: t.sans,
  });

  const notBefore = clock();
  const notAfter = new Date(notBefore.getTime() + validityPeriodHours * 3_600_000);
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: crypto.randomBytes(16).toString("hex"), // below 2^128, as the provider draws it
    subject: t.subject,
    issuer: t.parent?.subjectName ?? t.subject,
    notBefore,
    notAfter,
    publicKey: spki(t.subjectKey),
    signingKey: signingKey(t.signer),
    signingAlgorithm: signatureAlgorithm(t.signer),
    extensions,
  });
  // ready_for_renewal: once now >= end - earlyRenewalHours (at creation, by the plan modifier).
  const renewAt = notAfter.getTime() - earlyRenewalHours * 3_600_000;
  return {
    certPem: `${cert.toString("pem")}\n`,
    validityStartTime: rfc3339(notBefore),
    validityEndTime: rfc3339(notAfter),
    readyForRenewal: validityPeriodHours === 0 || notBefore.getTime() >= renewAt,
    earlyRenewalHours,
    isCaCertificate,
    setSubjectKeyId,
  };
}

const signingKey = (k: crypto.KeyObject) => k.toCryptoKey(signatureAlgorithm(k), false, ["sign"]);

/** The provider's decodePEM: the first block must carry the expected preamble. */
function typedPem(text: string, label: string): string {
  const got = pemLabel(text);
  if (got !== label) throw new Error(`invalid PEM type - expected "${label}", got "${got}"`);
  return text;
}

async function createSelfSignedCert(inp: Inputs): Promise<State> {
  const key = await privateKeyInput(inp, "privateKeyPem", "Failed to parse private key PEM");
  const t = { subject: subjectInput(inp), sans: sansInput(inp), subjectKey: key, signer: key };
  return { ...(await issueCertificate(inp, t)), keyAlgorithm: algorithmOf(key) };
}

async function createCertRequest(inp: Inputs): Promise<State> {
  const key = await privateKeyInput(inp, "privateKeyPem", "Failed to parse private key PEM");
  const sans = sansInput(inp);
  // Go's CreateCertificateRequest: SANs (non-critical) in an extensionRequest attribute.
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: subjectInput(inp),
    keys: {
      privateKey: signingKey(key),
      publicKey: publicOf(key).toCryptoKey(signatureAlgorithm(key), true, ["verify"]),
    },
    signingAlgorithm: signatureAlgorithm(key),
    extensions: sans.length > 0 ? [new x509.SubjectAlternativeNameExtension(sans)] : [],
  });
  return { certRequestPem: `${csr.toString("pem")}\n`, keyAlgorithm: algorithmOf(key) };
}

async function createSignedCert(inp: Inputs): Promise<State> {
  const csrPem = inp.get<string>("certRequestPem");
  const caCertPem = inp.get<string>("caCertPem");
  // Like the provider, parse the CSR but never check its signature.
  const { csr, key } = await inp.try("Failed to parse certificate request PEM", () => {
    const csr = new x509.Pkcs10CertificateRequest(typedPem(csrPem, "CERTIFICATE REQUEST"));
    const key = crypto.createPublicKey({
      key: Buffer.from(csr.publicKey.rawData),
      format: "der",
      type: "spki",
    });
    algorithmOf(key);
    return { csr, key };
  });
  const caKey = await privateKeyInput(inp, "caPrivateKeyPem", "Failed to parse CA private key PEM");
  const parent = await inp.try(
    "Failed to parse CA certificate PEM",
    () => new x509.X509Certificate(typedPem(caCertPem, "CERTIFICATE")),
  );
  const t = {
    subject: csr.subjectName,
    sans: csrSans(csr),
    subjectKey: key,
    signer: caKey,
    parent,
  };
  return { ...(await issueCertificate(inp, t)), caKeyAlgorithm: algorithmOf(caKey) };
}
