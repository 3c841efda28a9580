/**
 * How the Pulumi `tls` provider (terraform-provider-tls, internal/provider/common_cert.go, through
 * Go's crypto/x509) lays out what it issues: its resource types, the subject encoding, the allowed
 * uses and the certificate extensions in Go's order. The render's throwaway provider and the test
 * harness's fake provider both build on this, so their certificates cannot drift apart.
 */
import type { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";

export const TLS_TYPES = {
  privateKey: "tls:index/privateKey:PrivateKey",
  selfSignedCert: "tls:index/selfSignedCert:SelfSignedCert",
  certRequest: "tls:index/certRequest:CertRequest",
  locallySignedCert: "tls:index/locallySignedCert:LocallySignedCert",
} as const;

/** Subject fields in pkix.Name.ToRDNSequence order, with their attribute OIDs. */
const SUBJECT_FIELDS: Array<[string, string]> = [
  ["country", "2.5.4.6"],
  ["province", "2.5.4.8"],
  ["locality", "2.5.4.7"],
  ["streetAddresses", "2.5.4.9"],
  ["postalCode", "2.5.4.17"],
  ["organization", "2.5.4.10"],
  ["organizationalUnit", "2.5.4.11"],
  ["commonName", "2.5.4.3"],
  ["serialNumber", "2.5.4.5"],
];

/** The keys of a `subject` input that are set but are not subject fields the layout knows. */
export function unknownSubjectFields(subject: Record<string, unknown>): string[] {
  return Object.keys(subject).filter(
    (key) => subject[key] != null && !SUBJECT_FIELDS.some(([f]) => f === key),
  );
}

/**
 * The provider's createSubjectDistinguishedNames, encoded as Go's pkix.Name marshals it;
 * `extraOrganizationalUnit` is appended to the organizational units (the render marks its
 * certificates with it).
 */
export function subjectName(
  subject: Record<string, unknown>,
  extraOrganizationalUnit?: string,
): x509.Name {
  const rdns = SUBJECT_FIELDS.flatMap(([field, oid]) => {
    const v = subject[field];
    const values = (Array.isArray(v) ? v : v == null || v === "" ? [] : [v]).map(String);
    if (field === "organizationalUnit" && extraOrganizationalUnit)
      values.push(extraOrganizationalUnit);
    // Go writes a PrintableString where it can, else a UTF8String.
    const typed = values.map((s) =>
      x509.Name.isPrintableString(s) ? { printableString: s } : { utf8String: s },
    );
    return typed.length > 0 ? [{ [oid]: typed }] : [];
  });
  return new x509.Name(rdns);
}

/** DNS, IP and URI SANs, in the order Go's marshalSANs writes them. */
export function sanNames(dns: string[], ips: string[], uris: string[]): x509.JsonGeneralName[] {
  const as = (type: "dns" | "ip" | "url") => (value: string) => ({ type, value });
  return [...dns.map(as("dns")), ...ips.map(as("ip")), ...uris.map(as("url"))];
}

/** The SANs a locally signed certificate copies from its CSR: only DNS, IP and URI, Go's order. */
export function csrSans(csr: x509.Pkcs10CertificateRequest): x509.JsonGeneralName[] {
  const san = csr.extensions.find((e) => e instanceof x509.SubjectAlternativeNameExtension);
  const names = (san as x509.SubjectAlternativeNameExtension | undefined)?.names.toJSON() ?? [];
  return ["dns", "ip", "url"].flatMap((type) => names.filter((n) => n.type === type));
}

/** Allowed uses that are KeyUsage bits, in Go's bit order (x509.KeyUsageDigitalSignature = 1). */
const KEY_USAGES = (
  "digital_signature content_commitment key_encipherment data_encipherment key_agreement " +
  "cert_signing crl_signing encipher_only decipher_only"
).split(" ");

/** Allowed uses that are extended key usages, as the provider maps them. */
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

/** The names of the allowed uses the provider accepts, sorted as in its error message. */
export const ALLOWED_USES: readonly string[] = [
  ...KEY_USAGES,
  ...Object.keys(EXT_KEY_USAGES),
].sort();

export interface CertificateLayout {
  /** Allowed uses, already checked against ALLOWED_USES. */
  uses: readonly string[];
  isCaCertificate: boolean;
  setSubjectKeyId: boolean;
  subject: x509.Name;
  /** The certified key, SubjectPublicKeyInfo DER. */
  subjectPublicKey: Buffer;
  /** The CA certificate, or nothing when self-signed. */
  parent?: x509.X509Certificate;
  sans: x509.JsonGeneralName[];
}

/** DER of a name; an empty name is the two bytes of an empty SEQUENCE. */
export const nameDer = (name: x509.Name): Buffer => Buffer.from(name.toArrayBuffer());

/**
 * The extensions in Go's order: KeyUsage (critical), ExtendedKeyUsage, BasicConstraints
 * (critical), subject key id, authority key id, SAN. `crypto` hashes the subject key id.
 */
export async function certificateExtensions(
  l: CertificateLayout,
  crypto?: webcrypto.Crypto,
): Promise<x509.Extension[]> {
  const keyUsage = KEY_USAGES.reduce(
    (bits, u, i) => (l.uses.includes(u) ? bits | (1 << i) : bits),
    0,
  );
  const extKeyUsages = l.uses.flatMap((u) => EXT_KEY_USAGES[u] ?? []);
  const exts: x509.Extension[] = [];
  if (keyUsage !== 0) exts.push(new x509.KeyUsagesExtension(keyUsage, true));
  if (extKeyUsages.length > 0) exts.push(new x509.ExtendedKeyUsageExtension(extKeyUsages));
  exts.push(new x509.BasicConstraintsExtension(l.isCaCertificate, undefined, true));
  // The provider's generateSubjectKeyID: SHA-1 of the PKCS#1 RSA key or of the EC point.
  if (l.isCaCertificate || l.setSubjectKeyId)
    exts.push(await x509.SubjectKeyIdentifierExtension.create(l.subjectPublicKey, false, crypto));
  // Go's CreateCertificate: the parent's key id, unless issuer and subject are the same name.
  const parentKeyId = l.parent?.getExtension(x509.SubjectKeyIdentifierExtension)?.keyId;
  if (parentKeyId && !nameDer(l.parent?.subjectName ?? l.subject).equals(nameDer(l.subject)))
    exts.push(new x509.AuthorityKeyIdentifierExtension(parentKeyId));
  // RFC 5280 4.2.1.6: SAN is critical when the subject is empty.
  const emptySubject = nameDer(l.subject).length === 2;
  if (l.sans.length > 0) exts.push(new x509.SubjectAlternativeNameExtension(l.sans, emptySubject));
  return exts;
}

/** RFC 3339 with fractional seconds trimmed, like Go's time.MarshalText in UTC. */
export const rfc3339 = (d: Date): string => d.toISOString().replace(/\.?0+Z$/, "Z");
