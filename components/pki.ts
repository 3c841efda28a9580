/**
 * The mesh's PKI: one CA that lives only in Pulumi state, and one certificate per service.
 */
import * as pulumi from "@pulumi/pulumi";
import * as tls from "@pulumi/tls";
import { KeySpec } from "./config";

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

  constructor(
    name: string,
    args: CertificateAuthorityArgs,
    opts?: pulumi.ComponentResourceOptions,
  ) {
    super("bookapi-mesh:pki:CertificateAuthority", name, {}, opts);
    const key = new tls.PrivateKey(`${name}-key`, privateKeyArgs(args.key), { parent: this });
    const cert = new tls.SelfSignedCert(
      `${name}-cert`,
      {
        privateKeyPem: key.privateKeyPem,
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
    this.registerOutputs({ certPem: this.certPem, privateKeyPem: this.privateKeyPem });
  }
}

export interface ServiceCertificateArgs {
  /** The CA that signs this certificate. */
  ca: CertificateAuthority;
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
}

/** Key, CSR and certificate signed by the mesh CA; `childOpts` parents them. */
function issue(
  name: string,
  args: ServiceCertificateArgs,
  allowedUses: string[],
  childOpts: (child: string) => pulumi.CustomResourceOptions,
) {
  const key = new tls.PrivateKey(`${name}-key`, privateKeyArgs(args.key), childOpts("key"));
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
    },
    childOpts("cert"),
  );
  return {
    certPem: cert.certPem,
    privateKeyPem: pulumi.secret(key.privateKeyPem),
    caCertPem: args.ca.certPem,
  };
}

/** A component holding one certificate from the mesh CA and its key. */
abstract class IssuedCertificate extends pulumi.ComponentResource {
  /** Certificate PEM. */
  public readonly certPem!: pulumi.Output<string>;
  /** Private key PEM, a Pulumi secret. */
  public readonly privateKeyPem!: pulumi.Output<string>;
  /** The signing CA's certificate PEM. */
  public readonly caCertPem!: pulumi.Output<string>;

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
