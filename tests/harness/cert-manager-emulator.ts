/**
 * A small emulation of cert-manager's CA issuer, for the Certificates a program run registers: it
 * issues each one the way cert-manager v1.20 would and adds the Secret cert-manager would write to
 * the run, so the mTLS harness reads it through the pod's volumes like any other file.
 *
 * Followed from cert-manager's sources (github.com/cert-manager/cert-manager):
 * - Admission (internal/apis/certmanager/validation/certificate.go): a commonName of at most 64
 *   characters; duration at least 1 h; renewBefore at least 5 min and less than duration. A
 *   Certificate that breaks one is refused here as the webhook would refuse it.
 * - The issuer's key pair (pkg/util/kube/pki.go SecretTLSKeyPairAndCA): tls.crt (a chain) and
 *   tls.key of the Issuer's Secret, with its ca.crt appended to the chain.
 * - Signing (pkg/util/pki/csr.go SignCSRTemplate): the first certificate of that chain signs; the
 *   result is split by pkg/util/pki/parse_certificate_chain.go: tls.crt is the leaf and every
 *   chain certificate that is not self-signed, ca.crt the self-signed root.
 * - The template (pkg/util/pki/certificatetemplate.go): the Certificate's subject, SANs and
 *   usages, NotAfter = NotBefore + duration (not capped at the issuer's expiry), a new key of
 *   privateKey.algorithm and size.
 * The certificate's bytes come from the fake tls provider (tests/harness/fake-tls.ts): Go's
 * crypto/x509 under both, with the tls provider's extension layout.
 */
import { X509Certificate } from "node:crypto";
import { CertificateSpec } from "../../components/identity";
import { CERT_FILES } from "../../components/names";
import { fakeTlsResource } from "./fake-tls";
import { findObject, kindOf, kubernetesObjects, ProgramRun, readOptions } from "./program";

const TLS = {
  key: "tls:index/privateKey:PrivateKey",
  csr: "tls:index/certRequest:CertRequest",
  signed: "tls:index/locallySignedCert:LocallySignedCert",
};

/** cert-manager's KeyUsage names back to the tls provider's. */
const USES: Record<string, string> = {
  "digital signature": "digital_signature",
  "key encipherment": "key_encipherment",
  "server auth": "server_auth",
  "client auth": "client_auth",
};

/** A Go duration as the mesh writes them ("<n>h", "<n>m"), in hours. */
function hoursOf(duration: string): number {
  const m = /^(\d+)(h|m)$/.exec(duration);
  if (!m) throw new Error(`cert-manager emulation: duration "${duration}" is not modelled`);
  return Number(m[1]) / (m[2] === "h" ? 1 : 60);
}

/** Why cert-manager's webhook refuses this spec, or nothing. */
export function admissionProblems(spec: CertificateSpec): string[] {
  const problems: string[] = [];
  if (spec.commonName.length > 64) problems.push("spec.commonName: must be at most 64 characters");
  const duration = hoursOf(spec.duration);
  const renewBefore = hoursOf(spec.renewBefore);
  if (duration < 1)
    problems.push("spec.duration: certificate duration must be greater than 1h0m0s");
  if (renewBefore < 5 / 60)
    problems.push("spec.renewBefore: certificate renewBefore must be greater than 5m0s");
  if (renewBefore >= duration)
    problems.push("spec.renewBefore: certificate duration must be greater than renewBefore");
  return problems;
}

const pemBlocks = (text: string) =>
  text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
const selfSigned = (pem: string) => {
  const c = new X509Certificate(pem);
  return c.subject === c.issuer && c.verify(c.publicKey);
};

/** A Secret's value as the run registered it. */
function secretValue(secret: { inputs: Record<string, unknown> }, key: string): string {
  const data = secret.inputs.stringData as Record<string, unknown> | undefined;
  const v = data?.[key];
  if (typeof v !== "string") throw new Error(`cert-manager emulation: Secret has no ${key}`);
  return v;
}

/** Issue the Certificate named `name` and add its Secret to the run. */
export async function issueCertificate(run: ProgramRun, name: string): Promise<void> {
  const certificate = findObject(run, "Certificate", name);
  const spec = certificate.inputs.spec as CertificateSpec;
  const metadata = certificate.inputs.metadata as { namespace: string };
  const refused = admissionProblems(spec);
  if (refused.length > 0)
    throw new Error(`cert-manager admission refuses Certificate ${name}: ${refused.join("; ")}`);
  const issuer = findObject(run, "Issuer", spec.issuerRef.name);
  const issuerSecret = findObject(
    run,
    "Secret",
    (issuer.inputs.spec as { ca: { secretName: string } }).ca.secretName,
  );
  const chain = [
    ...pemBlocks(secretValue(issuerSecret, CERT_FILES.certificate)),
    ...pemBlocks(secretValue(issuerSecret, CERT_FILES.ca)),
  ];
  // cert-manager refuses a chain that does not link up ("certificate chain is malformed or
  // broken", parse_certificate_chain.go): each certificate must be signed by the next.
  chain.slice(0, -1).forEach((pem, i) => {
    const [cert, parent] = [new X509Certificate(pem), new X509Certificate(chain[i + 1])];
    if (!cert.checkIssued(parent) || !cert.verify(parent.publicKey))
      throw new Error(
        `cert-manager emulation: the issuer Secret's chain is broken at ${cert.subject}`,
      );
  });
  const { privateKey } = spec;
  const key = await fakeTlsResource(
    TLS.key,
    privateKey.algorithm === "ECDSA"
      ? { algorithm: "ECDSA", ecdsaCurve: `P${privateKey.size}` }
      : { algorithm: "RSA", rsaBits: privateKey.size },
  );
  const csr = await fakeTlsResource(TLS.csr, {
    privateKeyPem: key.privateKeyPem,
    subject: { commonName: spec.commonName, organization: spec.subject.organizations[0] },
    dnsNames: spec.dnsNames,
    uris: spec.uris,
  });
  const leaf = await fakeTlsResource(TLS.signed, {
    certRequestPem: csr.certRequestPem,
    caCertPem: chain[0],
    caPrivateKeyPem: secretValue(issuerSecret, CERT_FILES.privateKey),
    allowedUses: spec.usages.map((u) => {
      const use = USES[u];
      if (!use) throw new Error(`cert-manager emulation: usage "${u}" is not modelled`);
      return use;
    }),
    validityPeriodHours: hoursOf(spec.duration),
  });
  const root = chain.filter(selfSigned);
  run.resources.push({
    ...readOptions("kubernetes:core/v1:Secret", `cert-manager/${spec.secretName}`),
    urn: `cert-manager::Secret::${spec.secretName}`,
    custom: true,
    inputs: {
      apiVersion: "v1",
      kind: "Secret",
      type: "kubernetes.io/tls",
      metadata: {
        name: spec.secretName,
        namespace: metadata.namespace,
        labels: spec.secretTemplate.labels,
      },
      stringData: {
        [CERT_FILES.certificate]: [leaf.certPem as string, ...chain.filter((c) => !selfSigned(c))]
          .map((p) => (p.endsWith("\n") ? p : `${p}\n`))
          .join(""),
        [CERT_FILES.privateKey]: key.privateKeyPem as string,
        [CERT_FILES.ca]: root.length > 0 ? `${root[0]}\n` : "",
      },
    },
    state: {},
  });
}

/** Issue every Certificate of the run, as cert-manager does once the Issuer is ready. */
export async function issueAllCertificates(run: ProgramRun): Promise<string[]> {
  const names = kubernetesObjects(run)
    .filter((r) => kindOf(r.type) === "Certificate")
    .map((r) => (r.inputs.metadata as { name: string }).name);
  for (const name of names) await issueCertificate(run, name);
  return names;
}
