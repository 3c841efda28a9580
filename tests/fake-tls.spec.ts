/**
 * The fake tls provider must behave like the real one: real, interoperable keys and certificates
 * shaped by the resource inputs, and the same rejections. Certificates are inspected with an
 * independent ASN.1 parser (@peculiar/asn1-*, the layer under @peculiar/x509, which itself needs
 * a reflect polyfill the project does not install) and with node:crypto / node:tls (OpenSSL).
 */
import assert from "node:assert/strict";
import * as crypto from "node:crypto";
import type { AddressInfo } from "node:net";
import * as tls from "node:tls";
import { AsnConvert } from "@peculiar/asn1-schema";
import * as asn from "@peculiar/asn1-x509";
import { CertificationRequest } from "@peculiar/asn1-csr";
import {
  FAKE_TLS_ALLOWED_USES,
  fakeTlsResource,
  isFakeTlsType,
  setFakeTlsClock,
} from "./harness/fake-tls";

const T = {
  key: "tls:index/privateKey:PrivateKey",
  selfSigned: "tls:index/selfSignedCert:SelfSignedCert",
  csr: "tls:index/certRequest:CertRequest",
  signed: "tls:index/locallySignedCert:LocallySignedCert",
} as const;

type State = Record<string, unknown>;

function str(state: State, name: string): string {
  const v = state[name];
  assert.equal(typeof v, "string", `${name} should be a string`);
  return v as string;
}

function derOf(pem: string): Buffer {
  return Buffer.from(pem.replace(/-----[^-]+-----|\s/g, ""), "base64");
}

/** The certificate, parsed independently of the fake. */
function parseCert(pem: string): asn.Certificate {
  return AsnConvert.parse(derOf(pem), asn.Certificate);
}

function extensionOf(cert: asn.Certificate, id: string): asn.Extension | undefined {
  return cert.tbsCertificate.extensions?.find((e) => e.extnID === id);
}

function keyUsageNames(cert: asn.Certificate): string[] {
  const ext = extensionOf(cert, asn.id_ce_keyUsage);
  return ext ? AsnConvert.parse(ext.extnValue, asn.KeyUsage).toJSON().sort() : [];
}

function extKeyUsages(cert: asn.Certificate): string[] {
  const ext = extensionOf(cert, asn.id_ce_extKeyUsage);
  return ext ? [...AsnConvert.parse(ext.extnValue, asn.ExtendedKeyUsage)] : [];
}

function basicConstraints(cert: asn.Certificate): {
  critical: boolean;
  ca: boolean;
  pathLen?: number;
} {
  const ext = extensionOf(cert, asn.id_ce_basicConstraints);
  assert.ok(ext, "basicConstraints extension present");
  const bc = AsnConvert.parse(ext.extnValue, asn.BasicConstraints);
  return { critical: ext.critical, ca: bc.cA, pathLen: bc.pathLenConstraint };
}

function dnsSans(cert: asn.Certificate): string[] {
  const ext = extensionOf(cert, asn.id_ce_subjectAltName);
  return ext
    ? Array.from(AsnConvert.parse(ext.extnValue, asn.SubjectAlternativeName)).flatMap((g) =>
        g.dNSName ? [g.dNSName] : [],
      )
    : [];
}

async function privateKey(inputs: State): Promise<State> {
  return fakeTlsResource(T.key, inputs);
}

interface Issued {
  keyPem: string;
  certPem: string;
  state: State;
}

async function selfSignedCa(keyPem: string, extra: State = {}): Promise<Issued> {
  const state = await fakeTlsResource(T.selfSigned, {
    privateKeyPem: keyPem,
    subject: { commonName: "Test Mesh CA", organization: "bookapi-mesh" },
    isCaCertificate: true,
    allowedUses: ["cert_signing", "crl_signing"],
    validityPeriodHours: 24,
    ...extra,
  });
  return { keyPem, certPem: str(state, "certPem"), state };
}

async function signedBy(
  ca: Issued,
  keyPem: string,
  csrInputs: State,
  certInputs: State = {},
): Promise<Issued> {
  const csr = await fakeTlsResource(T.csr, { privateKeyPem: keyPem, ...csrInputs });
  const state = await fakeTlsResource(T.signed, {
    certRequestPem: str(csr, "certRequestPem"),
    caCertPem: ca.certPem,
    caPrivateKeyPem: ca.keyPem,
    allowedUses: ["digital_signature", "server_auth", "client_auth"],
    validityPeriodHours: 12,
    ...certInputs,
  });
  return { keyPem, certPem: str(state, "certPem"), state };
}

/**
 * Runs a real mTLS handshake on 127.0.0.1. Resolves ok once application data flows, else with the
 * first failure: the client refusing the server's chain, or the server refusing the client's.
 * (Node's server-side rejectUnauthorized drops the socket without saying why, so the server checks
 * `authorized` itself, which is what rejectUnauthorized does.)
 */
function mtls(
  server: { key: string; cert: string; ca: string },
  client: { key: string; cert: string; ca: string },
  servername: string,
): Promise<{ ok: boolean; error?: string }> {
  return new Promise((resolve) => {
    const sockets: tls.TLSSocket[] = [];
    let settled = false;
    const srv = tls.createServer({ ...server, requestCert: true, rejectUnauthorized: false });
    const done = (result: { ok: boolean; error?: string }) => {
      if (settled) return;
      settled = true;
      for (const s of sockets) s.destroy();
      srv.close();
      resolve(result);
    };
    srv.on("secureConnection", (s) => {
      sockets.push(s);
      if (s.authorized) s.end("hello");
      else done({ ok: false, error: `server refused client: ${String(s.authorizationError)}` });
    });
    srv.on("tlsClientError", (err) => done({ ok: false, error: `server: ${err.message}` }));
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as AddressInfo;
      const sock = tls.connect({ host: "127.0.0.1", port, servername, ...client });
      sockets.push(sock);
      sock.on("data", (d: Buffer) =>
        done(d.toString() === "hello" ? { ok: true } : { ok: false, error: "bad data" }),
      );
      sock.on("error", (err) =>
        done({ ok: false, error: `client refused server: ${err.message}` }),
      );
      sock.on("close", () =>
        setTimeout(() => done({ ok: false, error: "closed without data" }), 50),
      );
    });
  });
}

describe("fake tls provider", () => {
  // ECDSA keys are quick to make; share a few across tests.
  let p256a: string;
  let p256b: string;
  let ca: Issued;

  before(async () => {
    p256a = str(await privateKey({ algorithm: "ECDSA", ecdsaCurve: "P256" }), "privateKeyPem");
    p256b = str(await privateKey({ algorithm: "ECDSA", ecdsaCurve: "P256" }), "privateKeyPem");
    ca = await selfSignedCa(
      str(await privateKey({ algorithm: "ECDSA", ecdsaCurve: "P256" }), "privateKeyPem"),
      {
        setSubjectKeyId: true,
      },
    );
  });

  afterEach(() => setFakeTlsClock());

  it("answers exactly the four tls resource types", () => {
    for (const t of Object.values(T)) assert.equal(isFakeTlsType(t), true, t);
    assert.equal(isFakeTlsType("pulumi:providers:tls"), false);
    assert.equal(isFakeTlsType("kubernetes:core/v1:Secret"), false);
  });

  describe("PrivateKey", () => {
    it("makes an ECDSA P384 key as a SEC 1 PEM that node:crypto reads as a P-384 key", async () => {
      const state = await privateKey({ algorithm: "ECDSA", ecdsaCurve: "P384" });
      const pem = str(state, "privateKeyPem");
      assert.match(pem, /^-----BEGIN EC PRIVATE KEY-----\n/);
      const key = crypto.createPrivateKey(pem);
      assert.equal(key.asymmetricKeyDetails?.namedCurve, "secp384r1");
      assert.equal(
        str(state, "publicKeyPem"),
        crypto.createPublicKey(key).export({ type: "spki", format: "pem" }),
      );
      assert.match(str(state, "privateKeyPemPkcs8"), /^-----BEGIN PRIVATE KEY-----\n/);
    });

    it("makes an RSA 3072 key as a PKCS#1 PEM with a 3072-bit modulus", async () => {
      const state = await privateKey({ algorithm: "RSA", rsaBits: 3072 });
      const pem = str(state, "privateKeyPem");
      assert.match(pem, /^-----BEGIN RSA PRIVATE KEY-----\n/);
      assert.equal(crypto.createPrivateKey(pem).asymmetricKeyDetails?.modulusLength, 3072);
    });

    it("fills in the schema defaults: RSA 2048 bits and curve P224", async () => {
      const rsa = await privateKey({ algorithm: "RSA" });
      assert.equal(rsa.rsaBits, 2048);
      assert.equal(rsa.ecdsaCurve, "P224");
      assert.equal(
        crypto.createPrivateKey(str(rsa, "privateKeyPem")).asymmetricKeyDetails?.modulusLength,
        2048,
      );
      const ec = await privateKey({ algorithm: "ECDSA" });
      assert.equal(
        crypto.createPrivateKey(str(ec, "privateKeyPem")).asymmetricKeyDetails?.namedCurve,
        "secp224r1",
      );
    });

    it("makes an ED25519 key as a PKCS#8 PEM, as the provider does", async () => {
      const state = await privateKey({ algorithm: "ED25519" });
      assert.match(str(state, "privateKeyPem"), /^-----BEGIN PRIVATE KEY-----\n/);
      assert.equal(
        crypto.createPrivateKey(str(state, "privateKeyPem")).asymmetricKeyType,
        "ed25519",
      );
    });

    it("gives an OpenSSH public key and fingerprints of the same key", async () => {
      const state = await privateKey({ algorithm: "ECDSA", ecdsaCurve: "P256" });
      const [type, b64] = str(state, "publicKeyOpenssh").trimEnd().split(" ");
      assert.equal(type, "ecdsa-sha2-nistp256");
      const blob = Buffer.from(b64, "base64");
      // The blob ends with the uncompressed point, which also ends the SubjectPublicKeyInfo.
      const spki = crypto
        .createPublicKey(str(state, "publicKeyPem"))
        .export({ type: "spki", format: "der" });
      assert.deepEqual(blob.subarray(-65), spki.subarray(-65));
      const sha = crypto.createHash("sha256").update(blob).digest("base64").replace(/=+$/, "");
      assert.equal(state.publicKeyFingerprintSha256, `SHA256:${sha}`);
      assert.match(str(state, "privateKeyOpenssh"), /^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    });

    it("leaves the OpenSSH outputs empty for a P224 key, which OpenSSH cannot represent", async () => {
      const state = await privateKey({ algorithm: "ECDSA", ecdsaCurve: "P224" });
      assert.equal(state.publicKeyOpenssh, "");
      assert.equal(state.privateKeyOpenssh, "");
      assert.equal(state.publicKeyFingerprintMd5, "");
    });

    it("rejects an unknown algorithm", async () => {
      await assert.rejects(
        privateKey({ algorithm: "DSA" }),
        /algorithm value must be one of.*got: "DSA"/,
      );
    });

    it("rejects an unknown ECDSA curve", async () => {
      await assert.rejects(
        privateKey({ algorithm: "ECDSA", ecdsaCurve: "P255" }),
        /ecdsaCurve value must be one of.*got: "P255"/,
      );
    });
  });

  describe("SelfSignedCert", () => {
    it("marks a CA certificate CA:TRUE in a critical basicConstraints extension, with a key id", () => {
      const cert = parseCert(ca.certPem);
      assert.deepEqual(basicConstraints(cert), { critical: true, ca: true, pathLen: undefined });
      assert.ok(extensionOf(cert, asn.id_ce_subjectKeyIdentifier));
      assert.equal(new crypto.X509Certificate(ca.certPem).ca, true);
      assert.equal(ca.state.keyAlgorithm, "ECDSA");
    });

    it("marks a certificate that is not a CA CA:FALSE", async () => {
      const state = await fakeTlsResource(T.selfSigned, {
        privateKeyPem: p256a,
        subject: { commonName: "leaf" },
        allowedUses: ["server_auth"],
        validityPeriodHours: 1,
      });
      assert.deepEqual(basicConstraints(parseCert(str(state, "certPem"))), {
        critical: true,
        ca: false,
        pathLen: undefined,
      });
      assert.equal(state.isCaCertificate, false);
    });

    it("maps each key usage to its KeyUsage bit and each extended usage to its EKU OID", async () => {
      const state = await fakeTlsResource(T.selfSigned, {
        privateKeyPem: p256a,
        subject: { commonName: "all uses" },
        allowedUses: FAKE_TLS_ALLOWED_USES,
        validityPeriodHours: 1,
      });
      const cert = parseCert(str(state, "certPem"));
      assert.equal(extensionOf(cert, asn.id_ce_keyUsage)?.critical, true);
      assert.deepEqual(keyUsageNames(cert), [
        "crlSign",
        "dataEncipherment",
        "decipherOnly",
        "digitalSignature",
        "encipherOnly",
        "keyAgreement",
        "keyCertSign",
        "keyEncipherment",
        "nonRepudiation",
      ]);
      assert.deepEqual(extKeyUsages(cert).sort(), [
        "1.3.6.1.4.1.311.10.3.3", // microsoft_server_gated_crypto
        "1.3.6.1.4.1.311.2.1.22", // microsoft_commercial_code_signing
        "1.3.6.1.4.1.311.61.1.1", // microsoft_kernel_code_signing
        "1.3.6.1.5.5.7.3.1", // server_auth
        "1.3.6.1.5.5.7.3.2", // client_auth
        "1.3.6.1.5.5.7.3.3", // code_signing
        "1.3.6.1.5.5.7.3.4", // email_protection
        "1.3.6.1.5.5.7.3.5", // ipsec_end_system
        "1.3.6.1.5.5.7.3.6", // ipsec_tunnel
        "1.3.6.1.5.5.7.3.7", // ipsec_user
        "1.3.6.1.5.5.7.3.8", // timestamping
        "1.3.6.1.5.5.7.3.9", // ocsp_signing
        "2.16.840.1.113730.4.1", // netscape_server_gated_crypto
        "2.5.29.37.0", // any_extended
      ]);
    });

    it("maps a few uses to exactly those KeyUsage bits and EKU OIDs", async () => {
      const state = await fakeTlsResource(T.selfSigned, {
        privateKeyPem: p256a,
        subject: { commonName: "some uses" },
        allowedUses: ["key_encipherment", "digital_signature", "client_auth"],
        validityPeriodHours: 1,
      });
      const cert = parseCert(str(state, "certPem"));
      assert.deepEqual(keyUsageNames(cert), ["digitalSignature", "keyEncipherment"]);
      assert.deepEqual(extKeyUsages(cert), ["1.3.6.1.5.5.7.3.2"]);
    });

    it("is valid for exactly validityPeriodHours from now, reported as RFC 3339 times", async () => {
      const before = Date.now();
      const state = await fakeTlsResource(T.selfSigned, {
        privateKeyPem: p256a,
        subject: { commonName: "window" },
        allowedUses: [],
        validityPeriodHours: 36,
      });
      const cert = new crypto.X509Certificate(str(state, "certPem"));
      const from = Date.parse(cert.validFrom);
      const to = Date.parse(cert.validTo);
      assert.equal(to - from, 36 * 3_600_000);
      assert.ok(Math.abs(from - before) < 2000, "starts now");
      const start = Date.parse(str(state, "validityStartTime"));
      const end = Date.parse(str(state, "validityEndTime"));
      assert.equal(end - start, 36 * 3_600_000);
      assert.equal(Math.floor(start / 1000) * 1000, from);
      assert.match(str(state, "validityEndTime"), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    });

    it("is ready for renewal only when the early-renewal window reaches the start", async () => {
      const ready = async (validityPeriodHours: number, earlyRenewalHours?: number) =>
        (
          await fakeTlsResource(T.selfSigned, {
            privateKeyPem: p256a,
            subject: { commonName: "renewal" },
            allowedUses: [],
            validityPeriodHours,
            earlyRenewalHours,
          })
        ).readyForRenewal;
      assert.equal(await ready(24), false);
      assert.equal(await ready(24, 23), false);
      assert.equal(await ready(24, 24), true);
      assert.equal(await ready(24, 100), true);
      assert.equal(await ready(0), true);
    });

    it("rejects an allowed use the provider does not know", async () => {
      await assert.rejects(
        fakeTlsResource(T.selfSigned, {
          privateKeyPem: p256a,
          subject: { commonName: "x" },
          allowedUses: ["server_auth", "serverAuth"],
          validityPeriodHours: 1,
        }),
        /allowedUses\[1\] value must be one of.*got: "serverAuth"/,
      );
    });

    it("rejects a missing or negative validityPeriodHours", async () => {
      const inputs = { privateKeyPem: p256a, subject: { commonName: "x" }, allowedUses: [] };
      await assert.rejects(
        fakeTlsResource(T.selfSigned, inputs),
        /Missing required property 'validityPeriodHours'/,
      );
      await assert.rejects(
        fakeTlsResource(T.selfSigned, { ...inputs, validityPeriodHours: -1 }),
        /validityPeriodHours value must be at least 0, got: -1/,
      );
    });

    it("sets a path length only for a CA with maxPathLength above 0, as Go's x509 does", async () => {
      const pathLen = async (maxPathLength: number) =>
        basicConstraints(parseCert((await selfSignedCa(p256a, { maxPathLength })).certPem)).pathLen;
      assert.equal(await pathLen(2), 2);
      assert.equal(await pathLen(0), undefined); // Go reads MaxPathLen 0 as "unset"
      assert.equal(await pathLen(-1), undefined);
      await assert.rejects(
        fakeTlsResource(T.selfSigned, {
          privateKeyPem: p256a,
          subject: { commonName: "leaf" },
          allowedUses: [],
          validityPeriodHours: 1,
          maxPathLength: 1,
        }),
        /only CAs are allowed to specify MaxPathLen/,
      );
    });

    it("refuses to make a CA whose subject is empty", async () => {
      await assert.rejects(
        fakeTlsResource(T.selfSigned, {
          privateKeyPem: p256a,
          isCaCertificate: true,
          allowedUses: [],
          validityPeriodHours: 1,
        }),
        /Must contain at least one Distinguished Name/,
      );
    });

    it("signs with SHA-384 for a P384 key and SHA-256 for an RSA key, as Go's x509 does", async () => {
      const p384 = str(
        await privateKey({ algorithm: "ECDSA", ecdsaCurve: "P384" }),
        "privateKeyPem",
      );
      const rsa = str(await privateKey({ algorithm: "RSA" }), "privateKeyPem");
      const sigAlg = async (privateKeyPem: string) =>
        parseCert(
          str(
            await fakeTlsResource(T.selfSigned, {
              privateKeyPem,
              subject: { commonName: "alg" },
              allowedUses: [],
              validityPeriodHours: 1,
            }),
            "certPem",
          ),
        ).signatureAlgorithm.algorithm;
      assert.equal(await sigAlg(p384), "1.2.840.10045.4.3.3"); // ecdsa-with-SHA384
      assert.equal(await sigAlg(p256a), "1.2.840.10045.4.3.2"); // ecdsa-with-SHA256
      assert.equal(await sigAlg(rsa), "1.2.840.113549.1.1.11"); // sha256WithRSAEncryption
    });
  });

  describe("CertRequest", () => {
    it("makes a PKCS#10 request signed by the key, carrying the subject and DNS names", async () => {
      const state = await fakeTlsResource(T.csr, {
        privateKeyPem: p256a,
        subject: { commonName: "bookapi.mesh.svc", organization: "bookapi-mesh" },
        dnsNames: ["bookapi.mesh.svc", "bookapi"],
      });
      assert.equal(state.keyAlgorithm, "ECDSA");
      const csr = AsnConvert.parse(derOf(str(state, "certRequestPem")), CertificationRequest);
      const info = Buffer.from(AsnConvert.serialize(csr.certificationRequestInfo));
      const signature = Buffer.from(csr.signature);
      const publicKey = crypto.createPublicKey(p256a);
      assert.equal(
        crypto.verify("sha256", info, { key: publicKey, dsaEncoding: "der" }, signature),
        true,
      );
      const names = Array.from(csr.certificationRequestInfo.subject).flatMap((rdn) =>
        Array.from(rdn, (atv) => atv.value.toString()),
      );
      assert.deepEqual(names, ["bookapi-mesh", "bookapi.mesh.svc"]);
      const [extReq] = csr.certificationRequestInfo.attributes;
      assert.equal(extReq.type, "1.2.840.113549.1.9.14");
      const exts = AsnConvert.parse(extReq.values[0], asn.Extensions);
      const san = AsnConvert.parse(exts[0].extnValue, asn.SubjectAlternativeName);
      assert.deepEqual(
        Array.from(san, (g) => g.dNSName),
        ["bookapi.mesh.svc", "bookapi"],
      );
    });
  });

  describe("LocallySignedCert", () => {
    it("issues a certificate that verifies against its CA and carries the CSR's subject and DNS SANs", async () => {
      const leaf = await signedBy(ca, p256b, {
        subject: { commonName: "bookapi.mesh.svc", organization: "bookapi-mesh" },
        dnsNames: ["bookapi.mesh.svc", "bookapi"],
      });
      const cert = new crypto.X509Certificate(leaf.certPem);
      const caCert = new crypto.X509Certificate(ca.certPem);
      assert.equal(cert.verify(caCert.publicKey), true);
      assert.equal(cert.checkIssued(caCert), true);
      assert.equal(cert.issuer, caCert.subject);
      assert.equal(cert.subject, "O=bookapi-mesh\nCN=bookapi.mesh.svc");
      assert.deepEqual(dnsSans(parseCert(leaf.certPem)), ["bookapi.mesh.svc", "bookapi"]);
      assert.equal(leaf.state.caKeyAlgorithm, "ECDSA");
      // The CSR's key, not the CA's, is certified.
      assert.ok(cert.publicKey.equals(crypto.createPublicKey(p256b)));
      // Go sets the authority key id from the CA's subject key id.
      const akid = extensionOf(parseCert(leaf.certPem), asn.id_ce_authorityKeyIdentifier);
      const skid = extensionOf(parseCert(ca.certPem), asn.id_ce_subjectKeyIdentifier);
      assert.ok(akid && skid);
      const keyId = AsnConvert.parse(akid.extnValue, asn.AuthorityKeyIdentifier).keyIdentifier;
      assert.ok(keyId);
      assert.deepEqual(
        Buffer.from(keyId.buffer),
        Buffer.from(AsnConvert.parse(skid.extnValue, asn.SubjectKeyIdentifier).buffer),
      );
    });

    it("takes its allowed uses, CA flag and validity from its own inputs", async () => {
      const leaf = await signedBy(
        ca,
        p256b,
        { subject: { commonName: "intermediate" } },
        {
          allowedUses: ["cert_signing", "ocsp_signing"],
          isCaCertificate: true,
          validityPeriodHours: 5,
          earlyRenewalHours: 5,
        },
      );
      const cert = parseCert(leaf.certPem);
      assert.deepEqual(keyUsageNames(cert), ["keyCertSign"]);
      assert.deepEqual(extKeyUsages(cert), ["1.3.6.1.5.5.7.3.9"]);
      assert.equal(basicConstraints(cert).ca, true);
      const x = new crypto.X509Certificate(leaf.certPem);
      assert.equal(Date.parse(x.validTo) - Date.parse(x.validFrom), 5 * 3_600_000);
      assert.equal(leaf.state.readyForRenewal, true);
    });

    it("rejects a CA private key that does not match the CA certificate", async () => {
      const csr = await fakeTlsResource(T.csr, {
        privateKeyPem: p256b,
        subject: { commonName: "x" },
      });
      await assert.rejects(
        fakeTlsResource(T.signed, {
          certRequestPem: csr.certRequestPem,
          caCertPem: ca.certPem,
          caPrivateKeyPem: p256a,
          allowedUses: [],
          validityPeriodHours: 1,
        }),
        /provided PrivateKey doesn't match parent's PublicKey/,
      );
    });

    it("rejects a CA certificate PEM that is not a certificate", async () => {
      const csr = await fakeTlsResource(T.csr, {
        privateKeyPem: p256b,
        subject: { commonName: "x" },
      });
      await assert.rejects(
        fakeTlsResource(T.signed, {
          certRequestPem: csr.certRequestPem,
          caCertPem: csr.certRequestPem,
          caPrivateKeyPem: ca.keyPem,
          allowedUses: [],
          validityPeriodHours: 1,
        }),
        /Failed to parse CA certificate PEM: invalid PEM type - expected "CERTIFICATE", got "CERTIFICATE REQUEST"/,
      );
    });

    it("signs a CSR whose signature does not verify, as the real provider does (it never checks it)", async () => {
      const csr = await fakeTlsResource(T.csr, {
        privateKeyPem: p256b,
        subject: { commonName: "tampered" },
      });
      const der = derOf(str(csr, "certRequestPem"));
      der[der.length - 1] ^= 0x01; // last byte of the ECDSA signature's s
      const tampered = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString("base64")}\n-----END CERTIFICATE REQUEST-----\n`;
      const parsed = AsnConvert.parse(der, CertificationRequest);
      const info = Buffer.from(AsnConvert.serialize(parsed.certificationRequestInfo));
      assert.equal(
        crypto.verify(
          "sha256",
          info,
          { key: crypto.createPublicKey(p256b), dsaEncoding: "der" },
          Buffer.from(parsed.signature),
        ),
        false,
      );
      const state = await fakeTlsResource(T.signed, {
        certRequestPem: tampered,
        caCertPem: ca.certPem,
        caPrivateKeyPem: ca.keyPem,
        allowedUses: [],
        validityPeriodHours: 1,
      });
      assert.equal(new crypto.X509Certificate(str(state, "certPem")).subject, "CN=tampered");
    });

    it("lets a CA without cert_signing sign, but the chain it makes does not verify", async () => {
      const weakCa = await selfSignedCa(p256a, {
        allowedUses: ["crl_signing", "digital_signature"],
      });
      const server = await signedBy(weakCa, p256b, {
        subject: { commonName: "server" },
        dnsNames: ["server.mesh"],
      });
      const leaf = new crypto.X509Certificate(server.certPem);
      const issuer = new crypto.X509Certificate(weakCa.certPem);
      assert.equal(leaf.verify(issuer.publicKey), true, "the signature itself is valid");
      assert.equal(leaf.checkIssued(issuer), false, "OpenSSL refuses the issuer: no keyCertSign");
      const client = await signedBy(ca, p256a, { subject: { commonName: "client" } });
      const result = await mtls(
        { key: server.keyPem, cert: server.certPem, ca: ca.certPem },
        { key: client.keyPem, cert: client.certPem, ca: weakCa.certPem },
        "server.mesh",
      );
      assert.equal(result.ok, false);
      assert.match(result.error ?? "", /key usage does not include certificate signing/);
    });
  });

  describe("interoperability with node:tls", () => {
    it("completes a real mTLS handshake between a server and a client certificate from the fake CA", async () => {
      const rsaKey = str(await privateKey({ algorithm: "RSA" }), "privateKeyPem");
      const server = await signedBy(ca, p256b, {
        subject: { commonName: "server" },
        dnsNames: ["server.mesh"],
      });
      const client = await signedBy(
        ca,
        rsaKey,
        { subject: { commonName: "client" }, dnsNames: ["client.mesh"] },
        {
          allowedUses: ["digital_signature", "key_encipherment", "client_auth"],
        },
      );
      const result = await mtls(
        { key: server.keyPem, cert: server.certPem, ca: ca.certPem },
        { key: client.keyPem, cert: client.certPem, ca: ca.certPem },
        "server.mesh",
      );
      assert.deepEqual(result, { ok: true });
    });

    it("fails the handshake for a client certificate from another CA", async () => {
      const otherCa = await selfSignedCa(p256a, { subject: { commonName: "Other CA" } });
      const server = await signedBy(ca, p256b, {
        subject: { commonName: "server" },
        dnsNames: ["server.mesh"],
      });
      const client = await signedBy(otherCa, p256b, { subject: { commonName: "client" } });
      const result = await mtls(
        { key: server.keyPem, cert: server.certPem, ca: ca.certPem },
        { key: client.keyPem, cert: client.certPem, ca: ca.certPem },
        "server.mesh",
      );
      assert.equal(result.ok, false);
      assert.match(result.error ?? "", /^server refused client: UNABLE_TO_VERIFY_LEAF_SIGNATURE$/);
    });

    it("fails the handshake for a client certificate issued with a clock set in the past that has expired", async () => {
      const server = await signedBy(ca, p256b, {
        subject: { commonName: "server" },
        dnsNames: ["server.mesh"],
      });
      setFakeTlsClock(() => new Date(Date.now() - 3 * 3_600_000));
      const client = await signedBy(
        ca,
        p256a,
        { subject: { commonName: "client" } },
        { validityPeriodHours: 1 },
      );
      setFakeTlsClock();
      const result = await mtls(
        { key: server.keyPem, cert: server.certPem, ca: ca.certPem },
        { key: client.keyPem, cert: client.certPem, ca: ca.certPem },
        "server.mesh",
      );
      assert.equal(result.ok, false);
      assert.equal(result.error, "server refused client: CERT_HAS_EXPIRED");
    });
  });
});
