/**
 * The fake tls provider must behave like the real one for what the program uses: real,
 * interoperable keys and certificates shaped by the resource inputs, and the same rejections.
 * Certificates are read with @peculiar/x509's parsers and with node:crypto / node:tls (OpenSSL).
 */
import "reflect-metadata";
import assert from "node:assert/strict";
import * as crypto from "node:crypto";
import type { AddressInfo } from "node:net";
import * as tls from "node:tls";
import * as x509 from "@peculiar/x509";
import { fakeTlsResource, isFakeTlsType, setFakeTlsClock } from "./harness/fake-tls";
import { ALLOWED_USES } from "../tools/render/tls-layout";

const T = {
  key: "tls:index/privateKey:PrivateKey",
  selfSigned: "tls:index/selfSignedCert:SelfSignedCert",
  csr: "tls:index/certRequest:CertRequest",
  signed: "tls:index/locallySignedCert:LocallySignedCert",
} as const;

type State = Record<string, unknown>;
const HOUR = 3_600_000;

function str(state: State, name: string): string {
  assert.equal(typeof state[name], "string", `${name} should be a string`);
  return state[name] as string;
}

const newKey = async (inputs: State = { algorithm: "ECDSA", ecdsaCurve: "P256" }) =>
  str(await fakeTlsResource(T.key, inputs), "privateKeyPem");
const parse = (pem: string) => new x509.X509Certificate(pem);
const ext = <E extends x509.Extension>(pem: string, type: new (raw: ArrayBuffer) => E) =>
  parse(pem).getExtension(type);

function keyUsageNames(pem: string): string[] {
  const bits = ext(pem, x509.KeyUsagesExtension)?.usages ?? 0;
  return Object.entries(x509.KeyUsageFlags)
    .filter(([, v]) => typeof v === "number" && bits & v)
    .map(([k]) => k)
    .sort();
}

const extKeyUsages = (pem: string) => [...(ext(pem, x509.ExtendedKeyUsageExtension)?.usages ?? [])];

function basicConstraints(pem: string) {
  const bc = ext(pem, x509.BasicConstraintsExtension);
  assert.ok(bc, "basicConstraints extension present");
  return { critical: bc.critical, ca: bc.ca, pathLen: bc.pathLength };
}

interface Issued {
  key: string;
  cert: string;
  state: State;
}

async function selfSigned(key: string, inputs: State): Promise<Issued> {
  const base = { privateKeyPem: key, allowedUses: [], validityPeriodHours: 1 };
  const state = await fakeTlsResource(T.selfSigned, { ...base, ...inputs });
  return { key, cert: str(state, "certPem"), state };
}

const selfSignedCa = (key: string, inputs: State = {}) =>
  selfSigned(key, {
    subject: { commonName: "Test Mesh CA", organization: "bookapi-mesh" },
    isCaCertificate: true,
    allowedUses: ["cert_signing", "crl_signing"],
    validityPeriodHours: 24,
    ...inputs,
  });

async function signedBy(ca: Issued, key: string, csrInputs: State, certInputs: State = {}) {
  const csr = await fakeTlsResource(T.csr, { privateKeyPem: key, ...csrInputs });
  const state = await fakeTlsResource(T.signed, {
    certRequestPem: str(csr, "certRequestPem"),
    caCertPem: ca.cert,
    caPrivateKeyPem: ca.key,
    allowedUses: ["digital_signature", "server_auth", "client_auth"],
    validityPeriodHours: 12,
    ...certInputs,
  });
  return { key, cert: str(state, "certPem"), state };
}

/**
 * A real mTLS handshake on 127.0.0.1: "ok" once application data flows, else the first refusal,
 * by the client of the server's chain or by the server of the client's (checked through
 * `authorized`, as rejectUnauthorized would, since that drops the socket without saying why).
 */
async function handshake(
  server: Issued,
  client: Issued,
  trust: { server: string; client: string },
) {
  const { key, cert } = server;
  const options = { key, cert, ca: trust.server, requestCert: true, rejectUnauthorized: false };
  const srv = tls.createServer(options, (s) =>
    s.end(s.authorized ? "ok" : `server refused client: ${String(s.authorizationError)}`),
  );
  srv.on("tlsClientError", () => undefined);
  await new Promise<void>((resolve) => srv.listen(0, "127.0.0.1", resolve));
  try {
    return await new Promise<string>((resolve) => {
      const { port } = srv.address() as AddressInfo;
      const { key, cert } = client;
      const sock = tls.connect({
        key,
        cert,
        ca: trust.client,
        port,
        host: "127.0.0.1",
        servername: "server.mesh",
      });
      let data = "";
      sock.on("data", (d: Buffer) => (data += d.toString()));
      sock.on("end", () => resolve(data));
      sock.on("error", (err) => resolve(`client refused server: ${err.message}`));
    });
  } finally {
    srv.close();
  }
}

describe("fake tls provider", () => {
  // ECDSA keys are quick to make; share a few across tests.
  let p256a: string;
  let p256b: string;
  let ca: Issued;

  before(async () => {
    [p256a, p256b] = [await newKey(), await newKey()];
    ca = await selfSignedCa(await newKey(), { setSubjectKeyId: true });
  });

  afterEach(() => setFakeTlsClock());

  it("answers exactly the four tls resource types", () => {
    for (const t of Object.values(T)) assert.equal(isFakeTlsType(t), true, t);
    assert.equal(isFakeTlsType("pulumi:providers:tls"), false);
    assert.equal(isFakeTlsType("kubernetes:core/v1:Secret"), false);
  });

  describe("PrivateKey", () => {
    it("makes ECDSA P256 and P384 keys as SEC 1 PEMs, with PKCS#8 and public key PEMs of the same key", async () => {
      for (const [ecdsaCurve, name] of [
        ["P256", "prime256v1"],
        ["P384", "secp384r1"],
      ]) {
        const state = await fakeTlsResource(T.key, { algorithm: "ECDSA", ecdsaCurve });
        const pem = str(state, "privateKeyPem");
        assert.match(pem, /^-----BEGIN EC PRIVATE KEY-----\n/);
        const key = crypto.createPrivateKey(pem);
        assert.equal(key.asymmetricKeyDetails?.namedCurve, name);
        const pkcs8 = str(state, "privateKeyPemPkcs8");
        assert.match(pkcs8, /^-----BEGIN PRIVATE KEY-----\n/);
        assert.ok(crypto.createPrivateKey(pkcs8).equals(key));
        const publicPem = crypto.createPublicKey(key).export({ type: "spki", format: "pem" });
        assert.equal(str(state, "publicKeyPem"), publicPem);
      }
    });

    it("makes an RSA 3072 key as a PKCS#1 PEM with a 3072-bit modulus", async () => {
      const pem = await newKey({ algorithm: "RSA", rsaBits: 3072 });
      assert.match(pem, /^-----BEGIN RSA PRIVATE KEY-----\n/);
      assert.equal(crypto.createPrivateKey(pem).asymmetricKeyDetails?.modulusLength, 3072);
    });

    it("fills in the schema defaults: 2048-bit RSA keys, and curve P224 in the state", async () => {
      const rsa = await fakeTlsResource(T.key, { algorithm: "RSA" });
      assert.equal(rsa.rsaBits, 2048);
      assert.equal(rsa.ecdsaCurve, "P224");
      const key = crypto.createPrivateKey(str(rsa, "privateKeyPem"));
      assert.equal(key.asymmetricKeyDetails?.modulusLength, 2048);
    });
  });

  describe("SelfSignedCert", () => {
    it("marks a CA certificate CA:TRUE in a critical basicConstraints extension, with the provider's key id", () => {
      assert.deepEqual(basicConstraints(ca.cert), { critical: true, ca: true, pathLen: undefined });
      assert.equal(new crypto.X509Certificate(ca.cert).ca, true);
      assert.equal(ca.state.keyAlgorithm, "ECDSA");
      // generateSubjectKeyID: SHA-1 of the EC point, the last 65 bytes of a P-256 public key.
      const point = crypto.createPublicKey(ca.key).export({ type: "spki", format: "der" });
      const sha1 = crypto.createHash("sha1").update(point.subarray(-65)).digest("hex");
      assert.equal(ext(ca.cert, x509.SubjectKeyIdentifierExtension)?.keyId, sha1);
      assert.equal(ext(ca.cert, x509.AuthorityKeyIdentifierExtension), null, "self-signed");
    });

    it("marks a leaf certificate CA:FALSE, with exactly the KeyUsage bits and EKU OIDs of its uses", async () => {
      const leaf = await selfSigned(p256a, {
        subject: { commonName: "leaf" },
        allowedUses: ["key_encipherment", "digital_signature", "client_auth"],
      });
      const bc = { critical: true, ca: false, pathLen: undefined };
      assert.deepEqual(basicConstraints(leaf.cert), bc);
      assert.equal(leaf.state.isCaCertificate, false);
      assert.deepEqual(keyUsageNames(leaf.cert), ["digitalSignature", "keyEncipherment"]);
      assert.deepEqual(extKeyUsages(leaf.cert), ["1.3.6.1.5.5.7.3.2"]);
    });

    it("maps each key usage to its KeyUsage bit and each extended usage to its EKU OID", async () => {
      const all = await selfSigned(p256a, { allowedUses: ALLOWED_USES });
      assert.equal(ext(all.cert, x509.KeyUsagesExtension)?.critical, true);
      const bits =
        "cRLSign dataEncipherment decipherOnly digitalSignature encipherOnly keyAgreement";
      const more = "keyCertSign keyEncipherment nonRepudiation";
      assert.deepEqual(keyUsageNames(all.cert), `${bits} ${more}`.split(" "));
      assert.deepEqual(extKeyUsages(all.cert).sort(), [
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

    it("carries DNS, IP and URI SANs, critical only when the subject is empty", async () => {
      const sans = { dnsNames: ["a.mesh"], ipAddresses: ["10.0.0.1"], uris: ["spiffe://mesh/a"] };
      const named = await selfSigned(p256a, { subject: { commonName: "a" }, ...sans });
      const altNames = "DNS:a.mesh, IP Address:10.0.0.1, URI:spiffe://mesh/a";
      assert.equal(new crypto.X509Certificate(named.cert).subjectAltName, altNames);
      assert.equal(ext(named.cert, x509.SubjectAlternativeNameExtension)?.critical, false);
      const anonymous = await selfSigned(p256a, sans);
      assert.equal(ext(anonymous.cert, x509.SubjectAlternativeNameExtension)?.critical, true);
    });

    it("is valid for exactly validityPeriodHours from now, reported as RFC 3339 times", async () => {
      const before = Date.now();
      const { cert, state } = await selfSigned(p256a, { validityPeriodHours: 36 });
      const after = Date.now();
      const x = new crypto.X509Certificate(cert);
      const [from, to] = [Date.parse(x.validFrom), Date.parse(x.validTo)];
      assert.equal(to - from, 36 * HOUR);
      // Starts during the call (X.509 times have whole seconds), however long the call took.
      assert.ok(from > before - 1000 && from <= after, "starts now");
      const start = Date.parse(str(state, "validityStartTime"));
      assert.equal(Date.parse(str(state, "validityEndTime")) - start, 36 * HOUR);
      assert.equal(Math.floor(start / 1000) * 1000, from);
      assert.match(str(state, "validityEndTime"), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    });

    it("is ready for renewal only when the early-renewal window reaches the start", async () => {
      const ready = async (validityPeriodHours: number, earlyRenewalHours?: number) =>
        (await selfSigned(p256a, { validityPeriodHours, earlyRenewalHours })).state.readyForRenewal;
      assert.equal(await ready(24), false);
      assert.equal(await ready(24, 23), false);
      assert.equal(await ready(24, 24), true);
      assert.equal(await ready(24, 100), true);
      assert.equal(await ready(0), true);
    });

    it("signs with SHA-384 for a P384 key and SHA-256 for P256 and RSA keys, as Go's x509 does", async () => {
      const sigAlg = async (key: string) => {
        const { signatureAlgorithm } = parse((await selfSigned(key, {})).cert);
        const alg = signatureAlgorithm as unknown as { name: string; hash: { name: string } };
        return `${alg.name} ${alg.hash.name}`;
      };
      const p384 = await newKey({ algorithm: "ECDSA", ecdsaCurve: "P384" });
      assert.equal(await sigAlg(p384), "ECDSA SHA-384");
      assert.equal(await sigAlg(p256a), "ECDSA SHA-256");
      assert.equal(await sigAlg(await newKey({ algorithm: "RSA" })), "RSASSA-PKCS1-v1_5 SHA-256");
    });
  });

  describe("CertRequest", () => {
    it("makes a PKCS#10 request signed by the key, carrying the subject and DNS and URI names", async () => {
      const state = await fakeTlsResource(T.csr, {
        privateKeyPem: p256a,
        subject: { commonName: "bookapi.mesh.svc", organization: "bookapi-mesh" },
        dnsNames: ["bookapi.mesh.svc", "bookapi"],
        uris: ["spiffe://cluster.local/ns/mesh/sa/bookapi"],
      });
      assert.equal(state.keyAlgorithm, "ECDSA");
      const csr = new x509.Pkcs10CertificateRequest(str(state, "certRequestPem"));
      assert.equal(await csr.verify(), true);
      const spki = crypto.createPublicKey(p256a).export({ type: "spki", format: "der" });
      assert.ok(spki.equals(Buffer.from(csr.publicKey.rawData)));
      assert.equal(csr.subject, "O=bookapi-mesh, CN=bookapi.mesh.svc");
      const san = csr.getExtension("2.5.29.17") as x509.SubjectAlternativeNameExtension;
      assert.deepEqual(san.names.toJSON(), [
        { type: "dns", value: "bookapi.mesh.svc" },
        { type: "dns", value: "bookapi" },
        { type: "url", value: "spiffe://cluster.local/ns/mesh/sa/bookapi" },
      ]);
    });
  });

  describe("LocallySignedCert", () => {
    it("issues a certificate that verifies against its CA and carries the CSR's subject and SANs", async () => {
      const leaf = await signedBy(ca, p256b, {
        subject: { commonName: "bookapi.mesh.svc", organization: "bookapi-mesh" },
        dnsNames: ["bookapi.mesh.svc", "bookapi"],
        uris: ["spiffe://cluster.local/ns/mesh/sa/bookapi"],
      });
      const cert = new crypto.X509Certificate(leaf.cert);
      const caCert = new crypto.X509Certificate(ca.cert);
      assert.equal(cert.verify(caCert.publicKey), true);
      assert.equal(cert.checkIssued(caCert), true);
      assert.equal(cert.issuer, caCert.subject);
      assert.equal(cert.subject, "O=bookapi-mesh\nCN=bookapi.mesh.svc");
      const altNames =
        "DNS:bookapi.mesh.svc, DNS:bookapi, URI:spiffe://cluster.local/ns/mesh/sa/bookapi";
      assert.equal(cert.subjectAltName, altNames);
      assert.equal(leaf.state.caKeyAlgorithm, "ECDSA");
      // The CSR's key, not the CA's, is certified.
      assert.ok(cert.publicKey.equals(crypto.createPublicKey(p256b)));
      // Go sets the authority key id from the CA's subject key id.
      const skid = ext(ca.cert, x509.SubjectKeyIdentifierExtension)?.keyId;
      assert.ok(skid);
      assert.equal(ext(leaf.cert, x509.AuthorityKeyIdentifierExtension)?.keyId, skid);
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
      assert.deepEqual(keyUsageNames(leaf.cert), ["keyCertSign"]);
      assert.deepEqual(extKeyUsages(leaf.cert), ["1.3.6.1.5.5.7.3.9"]);
      assert.equal(basicConstraints(leaf.cert).ca, true);
      assert.ok(ext(leaf.cert, x509.SubjectKeyIdentifierExtension), "a CA always gets a key id");
      const x = new crypto.X509Certificate(leaf.cert);
      assert.equal(Date.parse(x.validTo) - Date.parse(x.validFrom), 5 * HOUR);
      assert.equal(leaf.state.readyForRenewal, true);
    });

    it("signs a CSR whose signature does not verify, as the real provider does (it never checks it)", async () => {
      const csr = await fakeTlsResource(T.csr, {
        privateKeyPem: p256b,
        subject: { commonName: "x" },
      });
      const der = Buffer.from(
        new x509.Pkcs10CertificateRequest(str(csr, "certRequestPem")).rawData,
      );
      der[der.length - 1] ^= 0x01; // last byte of the ECDSA signature's s
      const tampered = new x509.Pkcs10CertificateRequest(der);
      assert.equal(await tampered.verify(), false);
      const state = await fakeTlsResource(T.signed, {
        certRequestPem: tampered.toString("pem"),
        caCertPem: ca.cert,
        caPrivateKeyPem: ca.key,
        allowedUses: [],
        validityPeriodHours: 1,
      });
      assert.equal(new crypto.X509Certificate(str(state, "certPem")).subject, "CN=x");
    });

    it("lets a CA without cert_signing sign, but the chain it makes does not verify", async () => {
      const weakCa = await selfSignedCa(p256a, {
        allowedUses: ["crl_signing", "digital_signature"],
      });
      const server = await signedBy(weakCa, p256b, { dnsNames: ["server.mesh"] });
      const leaf = new crypto.X509Certificate(server.cert);
      const issuer = new crypto.X509Certificate(weakCa.cert);
      assert.equal(leaf.verify(issuer.publicKey), true, "the signature itself is valid");
      assert.equal(leaf.checkIssued(issuer), false, "OpenSSL refuses the issuer: no keyCertSign");
      const client = await signedBy(ca, p256a, { subject: { commonName: "client" } });
      assert.match(
        await handshake(server, client, { server: ca.cert, client: weakCa.cert }),
        /^client refused server: key usage does not include certificate signing/,
      );
    });
  });

  describe("refusals", () => {
    const signed = async (inputs: State) => {
      const csr = await fakeTlsResource(T.csr, { privateKeyPem: p256b });
      const [certRequestPem, caCertPem] = [str(csr, "certRequestPem"), ca.cert];
      const base = { certRequestPem, caCertPem, caPrivateKeyPem: ca.key, allowedUses: [] };
      return fakeTlsResource(T.signed, { ...base, validityPeriodHours: 1, ...inputs });
    };
    const cases: Array<[string, () => Promise<unknown>, RegExp]> = [
      ["an unknown algorithm", () => newKey({ algorithm: "DSA" }), /algorithm .* got: "DSA"/],
      [
        "an unknown ECDSA curve",
        () => newKey({ algorithm: "ECDSA", ecdsaCurve: "P255" }),
        /ecdsaCurve value must be one of.*got: "P255"/,
      ],
      ["ED25519 keys, which it does not model", () => newKey({ algorithm: "ED25519" }), /Not mod/],
      [
        "ECDSA on the default curve P224, which it does not model",
        () => newKey({ algorithm: "ECDSA" }),
        /Not mod/,
      ],
      [
        "an allowed use the provider does not know",
        () => selfSigned(p256a, { allowedUses: ["server_auth", "serverAuth"] }),
        /allowedUses\[1\] value must be one of.*got: "serverAuth"/,
      ],
      [
        "a missing validityPeriodHours",
        () => selfSigned(p256a, { validityPeriodHours: undefined }),
        /Missing required property 'validityPeriodHours'/,
      ],
      [
        "a negative validityPeriodHours",
        () => selfSigned(p256a, { validityPeriodHours: -1 }),
        /validityPeriodHours value must be at least 0, got: -1/,
      ],
      [
        "a CA whose subject is empty",
        () => selfSigned(p256a, { isCaCertificate: true }),
        /Must contain at least one Distinguished Name/,
      ],
      [
        "an IP address SAN that does not parse",
        () => selfSigned(p256a, { ipAddresses: ["10.0.0"] }),
        /Invalid IP address: Failed to parse "10.0.0"/,
      ],
      [
        "an input it does not model, such as maxPathLength",
        () => selfSignedCa(p256a, { maxPathLength: 1 }),
        /input maxPathLength is not supported/,
      ],
      [
        "a CA private key that does not match the CA certificate",
        () => signed({ caPrivateKeyPem: p256a }),
        /provided PrivateKey doesn't match parent's PublicKey/,
      ],
      [
        "a CA certificate PEM that is not a certificate",
        async () =>
          signed({
            caCertPem: str(
              await fakeTlsResource(T.csr, { privateKeyPem: p256a }),
              "certRequestPem",
            ),
          }),
        /Failed to parse CA certificate PEM: invalid PEM type - expected "CERTIFICATE", got "CERTIFICATE REQUEST"/,
      ],
    ];
    for (const [what, run, error] of cases)
      it(`rejects ${what}`, () => assert.rejects(run(), error));
  });

  describe("interoperability with node:tls", () => {
    let server: Issued;
    const trustCa = () => ({ server: ca.cert, client: ca.cert });
    before(async () => {
      server = await signedBy(ca, p256b, { dnsNames: ["server.mesh"] });
    });

    it("completes a real mTLS handshake between an ECDSA server and an RSA client certificate from the fake CA", async () => {
      const client = await signedBy(
        ca,
        await newKey({ algorithm: "RSA" }),
        { subject: { commonName: "client" } },
        { allowedUses: ["digital_signature", "key_encipherment", "client_auth"] },
      );
      assert.equal(await handshake(server, client, trustCa()), "ok");
    });

    it("fails the handshake for a client certificate from another CA", async () => {
      const otherCa = await selfSignedCa(p256a, { subject: { commonName: "Other CA" } });
      const client = await signedBy(otherCa, p256b, { subject: { commonName: "client" } });
      const refusal = "server refused client: UNABLE_TO_VERIFY_LEAF_SIGNATURE";
      assert.equal(await handshake(server, client, trustCa()), refusal);
    });

    it("fails the handshake for a client certificate issued with a clock set in the past that has expired", async () => {
      setFakeTlsClock(() => new Date(Date.now() - 3 * HOUR));
      const client = await signedBy(ca, p256a, {}, { validityPeriodHours: 1 });
      setFakeTlsClock();
      const refusal = "server refused client: CERT_HAS_EXPIRED";
      assert.equal(await handshake(server, client, trustCa()), refusal);
    });
  });
});
