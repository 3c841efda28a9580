/**
 * How a workload's identity reaches its pod: a `kubernetes.io/tls` Secret the program writes
 * (`certificates.issuer: pulumi`), or a cert-manager `Certificate` whose Secret cert-manager writes,
 * mounted beside the mesh's trust bundle (`cert-manager`). The Envoy files read the same three
 * files either way (names.ts CERT_FILES).
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { CertificateSettings, KeySpec, PROJECT } from "./config";
import { CERT_FILES, CERT_MANAGER_NAMES, MESH_VOLUMES, objectNames } from "./names";
import type { CertificateValidity } from "./pki";

/** Key material for one service's Secret. */
export interface ServiceTlsMaterial {
  certPem: pulumi.Input<string>;
  /** Must be a Pulumi secret. */
  privateKeyPem: pulumi.Input<string>;
  caCertPem: pulumi.Input<string>;
}

/** A kubernetes.io/tls Secret's data, under the file names the sidecar reads. */
function tlsSecretData(tls: ServiceTlsMaterial): Record<string, pulumi.Input<string>> {
  return {
    [CERT_FILES.certificate]: tls.certPem,
    [CERT_FILES.privateKey]: pulumi.secret(tls.privateKeyPem),
    [CERT_FILES.ca]: tls.caCertPem,
  };
}

/**
 * A kubernetes.io/tls Secret of key material from the mesh CA. Updated in place on renewal (the
 * provider's enableSecretMutable): never deleted under the pods that mount it.
 */
export function tlsSecret(
  resourceName: string,
  metadata: k8s.types.input.meta.v1.ObjectMeta,
  tls: ServiceTlsMaterial,
  opts: pulumi.CustomResourceOptions,
): k8s.core.v1.Secret {
  return new k8s.core.v1.Secret(
    resourceName,
    { metadata, type: "kubernetes.io/tls", stringData: tlsSecretData(tls) },
    opts,
  );
}

/** Who signs workload identities (`certificates.issuer`). */
export type CertificateIssuer = CertificateSettings["issuer"];

/**
 * The pod volume with the sidecar's certificate, key and trust bundle (mode 0440, group-owned by
 * fsGroup). In cert-manager mode a projected volume joins the Certificate's Secret (its `ca.crt`
 * left out) with the trust ConfigMap's `ca.crt`; the kubelet updates projected volumes with the
 * same atomic symlink swap as Secret volumes (pkg/volume/projected uses the AtomicWriter), which
 * the SDS files' watched_directory relies on.
 */
export function identityVolume(
  workload: string,
  issuer: CertificateIssuer,
  defaultMode = 0o440,
): pulumi.Unwrap<k8s.types.input.core.v1.Volume> {
  const names = objectNames(workload);
  if (issuer === "pulumi")
    return { name: MESH_VOLUMES.certs, secret: { secretName: names.secret, defaultMode } };
  return {
    name: MESH_VOLUMES.certs,
    projected: {
      defaultMode,
      sources: [
        {
          secret: {
            name: names.certManagerSecret,
            items: [
              { key: CERT_FILES.certificate, path: CERT_FILES.certificate },
              { key: CERT_FILES.privateKey, path: CERT_FILES.privateKey },
            ],
          },
        },
        {
          configMap: {
            name: CERT_MANAGER_NAMES.trustConfigMap,
            items: [{ key: CERT_FILES.ca, path: CERT_FILES.ca }],
          },
        },
      ],
    },
  };
}

export const CERT_MANAGER_API_VERSION = "cert-manager.io/v1";

/**
 * pulumi-kubernetes waits for this condition on create and update (provider/pkg/await, since
 * 4.18) and skips a condition whose observedGeneration is older than the object's
 * (condition/kubectl.go checkCondition): after a spec change, Ready means the new spec is issued.
 */
export const WAIT_FOR_READY = { "pulumi.com/waitFor": "condition=Ready" } as const;

/** The fields of a cert-manager `Certificate` the mesh sets (cert-manager.io/v1 CertificateSpec). */
export interface CertificateSpec {
  secretName: string;
  /** Labels of the Secret cert-manager writes. */
  secretTemplate: { labels: Record<string, string> };
  issuerRef: { group: "cert-manager.io"; kind: "Issuer"; name: string };
  commonName: string;
  subject: { organizations: string[] };
  dnsNames: string[];
  uris: string[];
  /** cert-manager's KeyUsage names. */
  usages: string[];
  privateKey: { algorithm: "ECDSA" | "RSA"; size: number; rotationPolicy: "Always" };
  /** Go durations: whole hours. */
  duration: string;
  renewBefore: string;
  revisionHistoryLimit: number;
}

/**
 * A workload's certificate as the stack outputs show it in cert-manager mode: which Certificate,
 * and its lifetime terms. Not its dates: cert-manager renews between runs, so any date the
 * program read at its last `pulumi up` would go stale (`kubectl get certificate` shows them live,
 * and the MeshCertificateExpiring alert watches what Envoy holds).
 */
export interface ManagedCertificateState {
  issuer: "cert-manager";
  /** `<namespace>/<name>` of the Certificate. */
  certificate: string;
  duration: string;
  renewBefore: string;
}

/** A leaf certificate in the stack's `certificates` output: the program's, or cert-manager's. */
export type LeafCertificateState = CertificateValidity | ManagedCertificateState;

/** cert-manager's KeyUsage names (pkg/apis/certmanager/v1/types.go) of the tls provider's uses. */
const KEY_USAGES: Record<string, string> = {
  digital_signature: "digital signature",
  key_encipherment: "key encipherment",
  server_auth: "server auth",
  client_auth: "client auth",
};

/** A tls provider use list in cert-manager's names; a use it has no name for throws. */
function certManagerUsages(uses: string[]): string[] {
  return uses.map((u) => {
    const name = KEY_USAGES[u];
    if (!name) throw new Error(`no cert-manager key usage for "${u}"`);
    return name;
  });
}

function keySize(key: KeySpec): number {
  return key.algorithm === "ECDSA" ? (key.ecdsaCurve === "P256" ? 256 : 384) : key.rsaBits;
}

/** A workload's identity: the names its certificate carries. */
export interface WorkloadIdentity {
  commonName: string;
  dnsNames: string[];
  uris: string[];
}

/**
 * The Certificate of one workload: the names, uses, key type and lifetime the program's own
 * certificate would have, a new key at every renewal, and the Secret under `secretName`.
 */
export function certificateSpec(
  identity: WorkloadIdentity,
  uses: string[],
  c: CertificateSettings,
  issuerName: string,
  secretName: string,
  labels: Record<string, string>,
): CertificateSpec {
  return {
    secretName,
    secretTemplate: { labels: { ...labels } },
    issuerRef: { group: "cert-manager.io", kind: "Issuer", name: issuerName },
    commonName: identity.commonName,
    subject: { organizations: [PROJECT] },
    dnsNames: [...identity.dnsNames],
    uris: [...identity.uris],
    usages: certManagerUsages(uses),
    privateKey: { algorithm: c.key.algorithm, size: keySize(c.key), rotationPolicy: "Always" },
    duration: `${c.validityHours}h`,
    renewBefore: `${c.earlyRenewalHours}h`,
    // The CertificateRequests kept per Certificate: the last two, for `kubectl describe`.
    revisionHistoryLimit: 2,
  };
}

/** A cert-manager `Certificate`, waited for until Ready. */
export class CertManagerCertificate extends k8s.apiextensions.CustomResource {
  /** What the stack outputs for it. */
  public readonly state: ManagedCertificateState;

  constructor(
    name: string,
    args: {
      metadata: {
        name: string;
        namespace: pulumi.Input<string>;
      } & k8s.types.input.meta.v1.ObjectMeta;
      spec: CertificateSpec;
    },
    namespaceName: string,
    opts?: pulumi.CustomResourceOptions,
  ) {
    super(
      name,
      {
        apiVersion: CERT_MANAGER_API_VERSION,
        kind: "Certificate",
        metadata: { ...args.metadata, annotations: { ...WAIT_FOR_READY } },
        spec: args.spec,
      },
      opts,
    );
    this.state = {
      issuer: "cert-manager",
      certificate: `${namespaceName}/${args.metadata.name}`,
      duration: args.spec.duration,
      renewBefore: args.spec.renewBefore,
    };
  }
}

/** A workload's identity as its pod gets it. */
export type IdentitySource =
  | {
      issuer: "pulumi";
      /** The program's certificate, with its dates for the stack output. */
      tls: ServiceTlsMaterial & { validity: pulumi.Output<CertificateValidity> };
    }
  | {
      issuer: "cert-manager";
      spec: CertificateSpec;
      /** The trust ConfigMap and the Issuer: the pod needs the first, the Certificate the second. */
      trustBundle: pulumi.Resource;
      issuerObject: pulumi.Resource;
      /** The mesh namespace's name, for the stack output. */
      namespaceName: string;
    };

/** What a workload's identity created, and what its Deployment must wait for. */
export type WorkloadIdentityObjects = (
  | { issuer: "pulumi"; secret: k8s.core.v1.Secret }
  | { issuer: "cert-manager"; certificate: CertManagerCertificate }
) & {
  /** The Deployment's pods start only once these exist (and a Certificate is Ready). */
  podsNeed: pulumi.Resource[];
  /** What the stack's `certificates` output shows for it. */
  state: pulumi.Output<LeafCertificateState>;
};

/**
 * The Secret (`<workload>-tls`) or the Certificate (`<workload>`, writing `<workload>-cert`) of a
 * workload. Switching issuer changes the pod's volume, so the Deployment rolls onto the new
 * Secret; the old one is deleted at the end of the update, after the rollout. Both chain to the
 * same CA, so old and new pods accept each other meanwhile.
 */
export function workloadIdentity(
  resourceName: string,
  workload: string,
  metadata: (objectName: string) => { name: string; namespace: pulumi.Input<string> },
  source: IdentitySource,
  opts: pulumi.CustomResourceOptions & { dependsOn: pulumi.Resource[] },
): WorkloadIdentityObjects {
  const names = objectNames(workload);
  if (source.issuer === "pulumi") {
    const secret = tlsSecret(`${resourceName}-tls`, metadata(names.secret), source.tls, opts);
    return { issuer: "pulumi", secret, podsNeed: [secret], state: source.tls.validity };
  }
  const certificate = new CertManagerCertificate(
    `${resourceName}-certificate`,
    { metadata: metadata(names.certificate), spec: source.spec },
    source.namespaceName,
    { ...opts, dependsOn: [...opts.dependsOn, source.issuerObject] },
  );
  return {
    issuer: "cert-manager",
    certificate,
    podsNeed: [certificate, source.trustBundle],
    state: pulumi.output(certificate.state),
  };
}
