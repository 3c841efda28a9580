/**
 * cert-manager mode (`certificates.issuer: cert-manager`): the program signs an intermediate CA
 * from the mesh's signing generation and hands it to a cert-manager CA `Issuer`; cert-manager
 * issues, renews and re-keys one `Certificate` per workload into the Secret the pod mounts.
 *
 * The trust bundle (every trusted generation) reaches pods from a ConfigMap, not from the
 * Secret's `ca.crt`: cert-manager writes there only the root of the issuer's own chain
 * (pkg/controller/certificaterequests/ca/ca.go returns `bundle.CAPEM`, which
 * pkg/util/pki/parse_certificate_chain.go picks as the self-signed root), which during a CA
 * rotation is not everything the pods must trust.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { CertificateSettings, PROJECT } from "./config";
import {
  CERT_MANAGER_API_VERSION,
  certificateSpec,
  IdentitySource,
  tlsSecret,
  WAIT_FOR_READY,
  WorkloadIdentity,
} from "./identity";
import { CERT_FILES, CERT_MANAGER_NAMES, objectNames } from "./names";
import { IntermediateCertificate, leafTerms, serviceCertificateUses, Signer } from "./pki";

export interface CertManagerIssuerArgs {
  signer: Signer;
  certificates: CertificateSettings;
  /** Namespace of every object; the Namespace resource's name, so it is created first. */
  namespace: pulumi.Input<string>;
  /** The namespace's name, for the intermediate's subject. */
  namespaceName: string;
  labels: Record<string, string>;
  after: pulumi.Resource[];
}

/**
 * The Issuer of the signing generation, the Secret with its intermediate CA, and the ConfigMap
 * with the trust bundle. A new signing generation is a new Issuer: the Certificates' `issuerRef`
 * changes, and cert-manager re-issues every one of them (the IncorrectIssuer trigger,
 * internal/controller/certificates/policies/checks.go SecretIssuerAnnotationsMismatch).
 */
export class CertManagerIssuer extends pulumi.ComponentResource {
  /** The Issuer's name, for the Certificates' issuerRef. */
  public readonly issuerName: string;
  public readonly intermediate: IntermediateCertificate;
  public readonly secret: k8s.core.v1.Secret;
  public readonly issuer: k8s.apiextensions.CustomResource;
  /** `ca.crt`: every trusted generation's CA certificate (public, so a ConfigMap). */
  public readonly trustBundle: k8s.core.v1.ConfigMap;
  private readonly certificates: CertificateSettings;
  private readonly namespaceName: string;

  constructor(name: string, args: CertManagerIssuerArgs, opts?: pulumi.ComponentResourceOptions) {
    super("bookapi-mesh:pki:CertManagerIssuer", name, {}, opts);
    const c = args.certificates;
    this.certificates = c;
    this.namespaceName = args.namespaceName;
    const generation = c.ca.signing;
    const terms = leafTerms(c);
    const meta = (objectName: string) => ({
      name: objectName,
      namespace: args.namespace,
      labels: args.labels,
    });
    const childOpts = { parent: this, deleteBeforeReplace: true, dependsOn: args.after };
    this.issuerName = CERT_MANAGER_NAMES.issuer(generation);
    // It signs certificates until it is re-signed validityHours + earlyRenewalHours before it
    // expires: cert-manager's CA issuer does not cap a certificate at its issuer's expiry
    // (pkg/util/pki/csr.go SignCertificate), so each one it signs must expire first.
    // Named by generation: signing with a new one creates its intermediate, Secret and Issuer
    // before the Certificates move to it, and deletes the old ones at the end of the update.
    const own = `${name}-${generation}`;
    this.intermediate = new IntermediateCertificate(
      `${own}-intermediate`,
      {
        ...args.signer,
        ...terms,
        key: c.ca.keys[generation],
        commonName: `${PROJECT} issuer ${generation} (${args.namespaceName})`,
        validityHours: c.intermediateValidityHours,
        earlyRenewalHours: c.validityHours + c.earlyRenewalHours,
      },
      { parent: this },
    );
    // tls.crt and tls.key sign; ca.crt is the one root the issuer's chain ends in (cert-manager
    // reads a single certificate there: pkg/util/kube/pki.go SecretTLSKeyPairAndCA).
    this.secret = tlsSecret(
      `${own}-secret`,
      meta(CERT_MANAGER_NAMES.issuerSecret(generation)),
      {
        certPem: this.intermediate.certPem,
        privateKeyPem: this.intermediate.privateKeyPem,
        caCertPem: args.signer.ca.certPem,
      },
      childOpts,
    );
    this.issuer = new k8s.apiextensions.CustomResource(
      `${own}-issuer`,
      {
        apiVersion: CERT_MANAGER_API_VERSION,
        kind: "Issuer",
        metadata: { ...meta(this.issuerName), annotations: { ...WAIT_FOR_READY } },
        spec: { ca: { secretName: CERT_MANAGER_NAMES.issuerSecret(generation) } },
      },
      { ...childOpts, dependsOn: [...args.after, this.secret] },
    );
    this.trustBundle = new k8s.core.v1.ConfigMap(
      `${name}-trust`,
      {
        metadata: meta(CERT_MANAGER_NAMES.trustConfigMap),
        data: { [CERT_FILES.ca]: args.signer.trustBundle },
      },
      childOpts,
    );
    this.registerOutputs({
      issuerName: this.issuerName,
      intermediate: this.intermediate.validity,
    });
  }

  /**
   * A workload's Certificate from this Issuer: the names, uses, key type and lifetime the
   * program's own certificate would have (pki.ts ServiceCertificate), into `<workload>-cert`.
   */
  identity(
    workload: string,
    names: WorkloadIdentity,
    labels: Record<string, string>,
  ): IdentitySource {
    const c = this.certificates;
    return {
      issuer: "cert-manager",
      spec: certificateSpec(
        names,
        serviceCertificateUses(c.key),
        c,
        this.issuerName,
        objectNames(workload).certManagerSecret,
        // cert-manager writes and keeps that Secret; Pulumi never sees it.
        { ...labels, "app.kubernetes.io/managed-by": "cert-manager" },
      ),
      trustBundle: this.trustBundle,
      issuerObject: this.issuer,
      namespaceName: this.namespaceName,
    };
  }
}
