/**
 * The mesh's PKI: one CA that lives only in Pulumi state, and one certificate per service.
 */
import * as crypto from "node:crypto";
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { clock } from "./clock";
import { CertificateSettings, DEFAULT_CA_GENERATION, KeySpec, PROJECT } from "./config";

/**
 * When a leaf key is replaced: at the first run of every `periodHours` period (counted from the
 * Unix epoch), and whenever `epoch` changes.
 */
export interface KeyRotation {
  periodHours: number;
  epoch: string;
}

/** An RFC 3339 time `hours` before another. */
function hoursBefore(time: string, hours: number): string {
  return new Date(Date.parse(time) - hours * 3_600_000).toISOString();
}

/** The rotation period a time falls in: its index since the Unix epoch. */
export function rotationPeriod(periodHours: number, now = clock.now()): number {
  return Math.floor(now / (periodHours * 3_600_000));
}

/** Allowed uses of a service certificate: it serves (inbound) and is presented as a client (outbound). */
export function serviceCertificateUses(key: KeySpec): string[] {
  const uses = ["digital_signature", "server_auth", "client_auth"];
  // RSA key exchange encrypts with the certificate's key; ECDSA keys only sign.
  if (key.algorithm === "RSA") uses.push("key_encipherment");
  return uses;
}

/** Uses of the CA certificate: signing certificates and revocation lists only. */
export const CA_CERTIFICATE_USES = ["cert_signing", "crl_signing"];

/** The key spec is already in the provider's shape; copied so inputs never alias the model. */
function privateKeyArgs(key: KeySpec): tls.PrivateKeyArgs {
  return { ...key };
}

export interface CertificateAuthorityArgs {
  /** Key algorithm and size of the CA key. */
  key: KeySpec;
  /** Its generation (`certificates.ca`), for the error that refuses a key change. */
  generation: string;
  /** Subject common name. Defaults to "bookapi-mesh CA". */
  commonName?: string;
  /** Lifetime of the CA certificate in hours. */
  validityHours: number;
  /** Re-issue the CA this many hours before it expires (at any preview or up then). Defaults to 0. */
  earlyRenewalHours?: number;
}

/**
 * The mesh CA. Its key is a Pulumi secret and never leaves state: pods get only the CA
 * certificate.
 */
export class CertificateAuthority extends pulumi.ComponentResource {
  /** CA certificate (public) PEM. */
  public readonly certPem: pulumi.Output<string>;
  /** CA private key PEM, a Pulumi secret. */
  public readonly privateKeyPem: pulumi.Output<string>;
  /** When the CA certificate expires, and from when a preview or up re-issues it. */
  public readonly validity: pulumi.Output<CaValidity>;

  constructor(
    name: string,
    args: CertificateAuthorityArgs,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("bookapi-mesh:pki:CertificateAuthority", name, {}, opts);
    // A CA key never changes in place: with its size ignored, the key keeps what it was created
    // with, and a config that asks for another is refused below, before anything is signed.
    const key = new tls.PrivateKey(`${name}-key`, privateKeyArgs(args.key), {
      parent: this,
      ignoreChanges: ["algorithm", "ecdsaCurve", "rsaBits"],
    });
    const checkedKeyPem = pulumi
      .all([key.algorithm, key.ecdsaCurve, key.rsaBits, key.privateKeyPem])
      .apply(([algorithm, ecdsaCurve, rsaBits, pem]) => {
        const problem = caKeyChange(args.generation, { algorithm, ecdsaCurve, rsaBits }, args.key);
        // Attached to the CA, without a stack trace: preview shows the message as the error.
        if (problem) throw new pulumi.ResourceError(problem, this, true);
        return pem;
      });
    const cert = new tls.SelfSignedCert(
      `${name}-cert`,
      {
        privateKeyPem: checkedKeyPem,
        subject: { commonName: args.commonName ?? "bookapi-mesh CA", organization: "bookapi-mesh" },
        isCaCertificate: true,
        setSubjectKeyId: true,
        allowedUses: CA_CERTIFICATE_USES,
        validityPeriodHours: args.validityHours,
        earlyRenewalHours: args.earlyRenewalHours ?? 0,
      },
      { parent: this },
    );
    this.certPem = cert.certPem;
    this.privateKeyPem = pulumi.secret(key.privateKeyPem);
    this.validity = pulumi.all([cert.validityEndTime, cert.certPem]).apply(([notAfter, pem]) => ({
      notAfter,
      renewalDue: hoursBefore(notAfter, args.earlyRenewalHours ?? 0),
      caCertificateSha256: new crypto.X509Certificate(pem).fingerprint256,
    }));
    this.registerOutputs({
      certPem: this.certPem,
      privateKeyPem: this.privateKeyPem,
      validity: this.validity,
    });
  }
}

/** A key as the config or the provider's state describes it: "ECDSA P256", "RSA 2048". */
const describeKey = (k: { algorithm: string; ecdsaCurve?: string; rsaBits?: number }) =>
  k.algorithm === "ECDSA" ? `ECDSA ${k.ecdsaCurve}` : `${k.algorithm} ${k.rsaBits}`;

/**
 * Why a CA's existing key (as its state has it) cannot become what the config asks for, or
 * undefined when they agree. The message carries the procedure: a new generation.
 */
function caKeyChange(
  generation: string,
  actual: { algorithm: string; ecdsaCurve?: string; rsaBits?: number },
  wanted: KeySpec,
): string | undefined {
  const same =
    actual.algorithm === wanted.algorithm &&
    (wanted.algorithm === "ECDSA"
      ? actual.ecdsaCurve === wanted.ecdsaCurve
      : actual.rsaBits === wanted.rsaBits);
  if (same) return undefined;
  const has = describeKey(actual);
  const next = /^\d+$/.test(generation) ? String(Number(generation) + 1) : `${generation}-next`;
  return `bookapi-mesh:certificates: the CA of generation "${generation}" has an ${has} key and the config asks for ${describeKey(wanted)}. A CA key cannot change in place: pods would refuse each other until every one had the new CA. Keep this generation's key (certificates.ca.keys.${generation}: its ${has} key) and re-key by adding a generation: certificates.ca { trusted: ["${generation}", "${next}"], signing: "${generation}", keys: { "${next}": <the new key> } }, then sign with "${next}", then drop "${generation}" (docs/operations.md, "CA renewal and CA key changes")`;
}

/** Who signs leaves, and what every workload trusts. */
export interface Signer {
  ca: CertificateAuthority;
  trustBundle: pulumi.Output<string>;
}

/**
 * One CertificateAuthority per trusted generation (children of `parent`, named so the first
 * keeps the resources a stack had before generations), the signer (the signing one and the trust
 * bundle), and the trust state the stack outputs.
 */
export function meshCertificateAuthorities(
  prefix: string,
  namespace: string,
  c: CertificateSettings,
  parent: pulumi.Resource,
): { signer: Signer; trust: pulumi.Output<TrustState> } {
  const generations = Object.fromEntries(
    c.ca.trusted.map((g) => [
      g,
      new CertificateAuthority(
        caResourceName(prefix, g),
        {
          key: c.ca.keys[g],
          generation: g,
          commonName: caCommonName(namespace, g),
          validityHours: c.caValidityHours,
          earlyRenewalHours: c.caEarlyRenewalHours,
        },
        { parent },
      ),
    ]),
  );
  const trustBundle = pulumi.all(c.ca.trusted.map((g) => generations[g].certPem)).apply(pemBundle);
  return {
    signer: { ca: generations[c.ca.signing], trustBundle },
    trust: pulumi
      .all([trustBundle, pulumi.all(c.ca.trusted.map((g) => generations[g].validity))])
      .apply(([bundle, validity]) => ({
        signing: c.ca.signing,
        trusted: [...c.ca.trusted],
        bundleSha256: crypto.createHash("sha256").update(bundle).digest("hex"),
        generations: Object.fromEntries(c.ca.trusted.map((g, i) => [g, validity[i]])),
      })),
  };
}

/** A CA certificate's expiry, renewal time and fingerprint. */
export interface CaValidity {
  notAfter: string;
  /** From this time the next preview or up re-issues it. */
  renewalDue: string;
  caCertificateSha256: string;
}

/** The mesh CAs as the stack's outputs show them. */
export interface TrustState {
  /** The generation that signs leaves. */
  signing: string;
  /** The generations every workload trusts, in order. */
  trusted: string[];
  /** SHA-256 of the PEM bundle in every `ca.crt`: equal across pods once all have it. */
  bundleSha256: string;
  /** Per trusted generation. */
  generations: Record<string, CaValidity>;
  /** cert-manager mode: the Issuer's intermediate CA, re-signed by the first up from renewalDue. */
  intermediate?: { generation: string; notAfter: string; renewalDue: string };
}

/** The CA resource name of a generation: the first keeps the name a stack deployed before had. */
export function caResourceName(prefix: string, generation: string): string {
  return generation === DEFAULT_CA_GENERATION ? `${prefix}-ca` : `${prefix}-ca-${generation}`;
}

/** Distinct subjects, so a verifier never mistakes one generation's CA for another's. */
function caCommonName(namespace: string, generation: string): string {
  return generation === DEFAULT_CA_GENERATION
    ? `${PROJECT} CA (${namespace})`
    : `${PROJECT} CA ${generation} (${namespace})`;
}

/** One PEM bundle, in trust order; each certificate ends with a newline. */
export function pemBundle(pems: string[]): string {
  return pems.map((p) => (p.endsWith("\n") ? p : `${p}\n`)).join("");
}

/**
 * Why going from the last deployment's CA generations to the config's skips a step of a CA
 * re-key, or undefined. A generation may sign only once the last deployment trusted it (every
 * pod has it), and may leave `trusted` only once the last deployment no longer signed with it
 * (every certificate was re-signed). Without a last deployment of generations, nothing to check.
 */
export function caStepProblem(
  last: unknown,
  next: { signing: string; trusted: string[] },
): string | undefined {
  const previous = (typeof last === "object" && last !== null ? last : {}) as {
    signing?: unknown;
    trusted?: unknown;
  };
  if (
    typeof previous.signing !== "string" ||
    !Array.isArray(previous.trusted) ||
    !previous.trusted.every((g): g is string => typeof g === "string")
  )
    return undefined;
  const before = { signing: previous.signing, trusted: previous.trusted };
  if (next.signing !== before.signing && !before.trusted.includes(next.signing))
    return `bookapi-mesh:certificates.ca.signing: "${next.signing}" would sign certificates that pods which trust only ${before.trusted.join(", ")} (the last deployment) refuse. First add "${next.signing}" to trusted while "${before.signing}" still signs, pulumi up, wait for every pod, then sign with it (docs/operations.md, "CA renewal and CA key changes")`;
  const dropped = before.trusted.filter((g) => !next.trusted.includes(g));
  if (dropped.includes(before.signing))
    return `bookapi-mesh:certificates.ca.trusted: dropping "${before.signing}" while the last deployment's certificates are still signed by it would make pods refuse each other. First sign with "${next.signing}" while "${before.signing}" is still trusted, pulumi up, wait for every pod, then drop it (docs/operations.md, "CA renewal and CA key changes")`;
  return undefined;
}

/**
 * What preview says while a CA rotation is under way (more than one trusted generation): what
 * to wait for before the next step. Secrets reach pods at the kubelet's next sync, so a step is
 * safe only once every pod has the previous one.
 */
export function caRotationWarnings(ca: CertificateSettings["ca"]): string[] {
  if (ca.trusted.length < 2) return [];
  const others = ca.trusted.filter((g) => g !== ca.signing);
  return [
    `certificates.ca: every sidecar trusts ${ca.trusted.join(", ")} and leaves are signed by ${ca.signing}. Before the next step, wait until every pod has this update (each Secret reaches its pod at the kubelet's next sync, about a minute; the trust output names the bundle): then either sign with another trusted generation, or drop ${others.join(", ")} from trusted once nothing is signed by ${others.length > 1 ? "them" : "it"}`,
  ];
}

/**
 * Renewal happens only when `pulumi up` runs: with a stated schedule, each renewal window must
 * see at least two runs (one may fail).
 */
export function renewalWarnings(c: CertificateSettings): string[] {
  const every = c.upEveryHours;
  if (every === undefined) return [];
  return (
    [
      ["earlyRenewalHours", c.earlyRenewalHours, "a service certificate"],
      ["caEarlyRenewalHours", c.caEarlyRenewalHours, "the CA"],
      // Re-signed validityHours + earlyRenewalHours before it expires (cert-manager.ts).
      ...(c.issuer === "cert-manager"
        ? [
            [
              "validityHours + earlyRenewalHours",
              c.validityHours + c.earlyRenewalHours,
              "the cert-manager Issuer's intermediate CA (and with it every workload's chain)",
            ] as const,
          ]
        : []),
    ] as const
  )
    .filter(([, hours]) => hours < 2 * every)
    .map(
      ([key, hours, what]) =>
        `certificates.${key} (${hours} h) is shorter than two runs of the stated schedule (upEveryHours ${every} h): ${what} may expire before a run renews it; run pulumi up more often or lengthen the window`,
    );
}

/** What every leaf certificate takes from the stack's `certificates` settings. */
export function leafTerms(
  c: CertificateSettings,
): Pick<ServiceCertificateArgs, "key" | "validityHours" | "earlyRenewalHours" | "keyRotation"> {
  return {
    key: c.key,
    validityHours: c.validityHours,
    earlyRenewalHours: c.earlyRenewalHours,
    keyRotation: { periodHours: c.keyRotationHours, epoch: c.keyEpoch },
  };
}

export interface ServiceCertificateArgs {
  /** The CA that signs this certificate. */
  ca: CertificateAuthority;
  /** What the workload trusts: every trusted generation's CA certificate (PEM bundle). */
  trustBundle: pulumi.Input<string>;
  /** Key algorithm and size. */
  key: KeySpec;
  /** Subject common name (the service FQDN). */
  commonName: string;
  /** DNS SANs; Envoy matches callers on these. */
  dnsNames: string[];
  /** URI SANs (the SPIFFE ID). Defaults to none. */
  uris?: string[];
  /** Lifetime in hours. */
  validityHours: number;
  /** Renew this many hours before expiry: the tls provider plans it at any preview or up then. */
  earlyRenewalHours: number;
  keyRotation: KeyRotation;
}

/**
 * The key's replacement trigger: its rotation period and `keyEpoch`. A known string, so a preview
 * shows exactly what the update does: a new period or epoch replaces the key, whose new PEM
 * replaces the CSR and the certificate (their PEM inputs force a new resource); the same value
 * replaces nothing; and a key with no trigger recorded (state from before key rotation) is not
 * replaced when one is first set (pulumi/pulumi step_generator.go `shouldTriggerReplace`: an
 * unknown trigger would replace, a missing one never does).
 */
function keyTrigger(rotation: KeyRotation): string {
  return `${rotationPeriod(rotation.periodHours)}:${rotation.epoch}`;
}

/**
 * Key, CSR and certificate signed by the mesh CA; `childOpts` parents them. `pulumi up --replace
 * <urn of the key>` re-keys one workload.
 */
function issue(
  name: string,
  args: ServiceCertificateArgs,
  allowedUses: string[],
  childOpts: (child: string) => pulumi.CustomResourceOptions,
  isCaCertificate = false,
) {
  const keyEpoch = keyTrigger(args.keyRotation);
  const key = new tls.PrivateKey(`${name}-key`, privateKeyArgs(args.key), {
    ...childOpts("key"),
    replacementTrigger: keyEpoch,
  });
  const csr = new tls.CertRequest(
    `${name}-csr`,
    {
      privateKeyPem: key.privateKeyPem,
      subject: { commonName: args.commonName, organization: "bookapi-mesh" },
      dnsNames: args.dnsNames,
      uris: args.uris ?? [],
    },
    childOpts("csr"),
  );
  const cert = new tls.LocallySignedCert(
    `${name}-cert`,
    {
      certRequestPem: csr.certRequestPem,
      caCertPem: args.ca.certPem,
      caPrivateKeyPem: args.ca.privateKeyPem,
      allowedUses,
      validityPeriodHours: args.validityHours,
      earlyRenewalHours: args.earlyRenewalHours,
      ...(isCaCertificate ? { isCaCertificate, setSubjectKeyId: true } : {}),
    },
    childOpts("cert"),
  );
  return {
    certPem: cert.certPem,
    privateKeyPem: pulumi.secret(key.privateKeyPem),
    caCertPem: pulumi.output(args.trustBundle),
    validity: pulumi
      .all([cert.validityStartTime, cert.validityEndTime, cert.certPem])
      .apply(([notBefore, notAfter, pem]) => ({
        notBefore,
        notAfter,
        // The tls provider plans the renewal at the first preview or up from then on.
        renewalDue: hoursBefore(notAfter, args.earlyRenewalHours),
        keyEpoch,
        publicKeySha256: publicKeySha256(pem),
      })),
  };
}

/** Each named certificate's state (dates, key epoch or issuer), as one output. */
export function validityOf<T>(
  states: Record<string, pulumi.Output<T>>,
): pulumi.Output<Record<string, T>> {
  const names = Object.keys(states).sort();
  return pulumi
    .all(names.map((n) => states[n]))
    .apply((vs) => Object.fromEntries(names.map((n, i) => [n, vs[i] as T])));
}

/** A leaf certificate's dates and key generation, for the stack's outputs (nothing secret). */
export interface CertificateValidity {
  notBefore: string;
  notAfter: string;
  /** From this time the next preview or up renews the certificate. */
  renewalDue: string;
  /** `<rotation period>:<keyEpoch>`: the key's replacement trigger. */
  keyEpoch: string;
  /** SHA-256 of the certificate's public key (DER): it changes whenever the key is replaced. */
  publicKeySha256: string;
}

function publicKeySha256(certPem: string): string {
  const spki = new crypto.X509Certificate(certPem).publicKey.export({
    type: "spki",
    format: "der",
  });
  return crypto.createHash("sha256").update(spki).digest("hex");
}

/** A component holding one certificate from the mesh CA and its key. */
abstract class IssuedCertificate extends pulumi.ComponentResource {
  /** Certificate PEM. */
  public readonly certPem!: pulumi.Output<string>;
  /** Private key PEM, a Pulumi secret. */
  public readonly privateKeyPem!: pulumi.Output<string>;
  /** The trusted CA certificates (PEM bundle), for the workload's `ca.crt`. */
  public readonly caCertPem!: pulumi.Output<string>;
  /** Not-before, not-after, renewal time, key epoch and public key hash. */
  public readonly validity!: pulumi.Output<CertificateValidity>;

  /** Sets the outputs from what `issue` made, and registers them. */
  protected publish(issued: ReturnType<typeof issue>): void {
    Object.assign(this, issued);
    this.registerOutputs({ ...issued });
  }
}

/**
 * A service identity: key, CSR and a certificate signed by the mesh CA. Its resources are
 * `<name>-key`, `<name>-csr`, `<name>-cert`. Before, the component was `<name>-cert` and its
 * resources `<name>-cert-key` and so on; aliases keep a stack deployed then from replacing its
 * keys and certificates.
 */
export class ServiceCertificate extends IssuedCertificate {
  constructor(name: string, args: ServiceCertificateArgs, opts?: pulumi.ComponentResourceOptions) {
    super(
      "bookapi-mesh:pki:ServiceCertificate",
      name,
      {},
      {
        ...opts,
        aliases: [...(opts?.aliases ?? []), { name: `${name}-cert` }],
      },
    );
    this.publish(
      issue(name, args, serviceCertificateUses(args.key), (child) => ({
        parent: this,
        aliases: [{ name: `${name}-cert-${child}` }],
      })),
    );
  }
}

/** Allowed uses of a client's certificate: it only ever presents itself as a client. */
export function clientCertificateUses(key: KeySpec): string[] {
  return [
    "digital_signature",
    "client_auth",
    ...(key.algorithm === "RSA" ? ["key_encipherment"] : []),
  ];
}

/**
 * The identity of a client outside the mesh: key, CSR and a certificate from the mesh CA with
 * its SPIFFE ID as the only SAN, usable for client authentication only.
 */
export class ClientCertificate extends IssuedCertificate {
  constructor(
    name: string,
    args: Omit<ServiceCertificateArgs, "dnsNames">,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("bookapi-mesh:pki:ClientCertificate", name, {}, opts);
    this.publish(
      issue(name, { ...args, dnsNames: [] }, clientCertificateUses(args.key), () => ({
        parent: this,
      })),
    );
  }
}

/**
 * cert-manager mode: the intermediate CA its Issuer signs with, from the signing generation.
 * Its key is in Pulumi state and in the Issuer's Secret (docs/security.md says who can read it).
 */
export class IntermediateCertificate extends IssuedCertificate {
  constructor(
    name: string,
    args: Omit<ServiceCertificateArgs, "dnsNames">,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("bookapi-mesh:pki:IntermediateCertificate", name, {}, opts);
    this.publish(
      issue(name, { ...args, dnsNames: [] }, CA_CERTIFICATE_USES, () => ({ parent: this }), true),
    );
  }
}
