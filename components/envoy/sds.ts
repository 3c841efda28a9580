/**
 * File-based SDS: the bootstrap names two secrets and points at a file for each; the files in
 * turn point at the Secret mount. Envoy watches both directories, so a rotated Kubernetes
 * Secret (or an updated ConfigMap) is picked up without a restart.
 */
import { CERT_FILES, ENVOY_FILES, SidecarPaths, SidecarSpec } from "./model";
import {
  SdsFile,
  SdsSecretConfig,
  TlsCertificateSecret,
  TYPE_URLS,
  ValidationContextSecret,
} from "./types";

/** SDS secret names: this sidecar's key pair, and the mesh CA it trusts. */
export const SDS_SECRETS = {
  certificate: "identity",
  validation: "trust",
} as const;

/** Absolute path of a file in the ConfigMap mount. */
export function configFile(paths: SidecarPaths, name: string): string {
  return `${paths.configDir}/${name}`;
}

/** Absolute path of a file in the Secret mount. */
export function certFile(paths: SidecarPaths, name: string): string {
  return `${paths.certDir}/${name}`;
}

/**
 * Reference to a secret served from `file`. The watch is on the ConfigMap directory, not the
 * file: Kubernetes updates a ConfigMap mount by swapping its `..data` symlink, which only a
 * directory watch sees.
 */
export function sdsSecretConfig(paths: SidecarPaths, name: string, file: string): SdsSecretConfig {
  return {
    name,
    sds_config: {
      path_config_source: {
        path: configFile(paths, file),
        watched_directory: { path: paths.configDir },
      },
      resource_api_version: "V3",
    },
  };
}

/** The sidecar's own certificate and key, as presented on both inbound and outbound mTLS. */
export function identitySecretConfig(paths: SidecarPaths): SdsSecretConfig {
  return sdsSecretConfig(paths, SDS_SECRETS.certificate, ENVOY_FILES.sdsCertificate);
}

/** The mesh CA, trusted for peers in both directions. */
export function trustSecretConfig(paths: SidecarPaths): SdsSecretConfig {
  return sdsSecretConfig(paths, SDS_SECRETS.validation, ENVOY_FILES.sdsValidation);
}

/**
 * The identity secret. watched_directory is the Secret mount: Kubernetes swaps its `..data`
 * symlink atomically on rotation, and Envoy then re-reads certificate and key together.
 */
export function identitySecret(paths: SidecarPaths): TlsCertificateSecret {
  return {
    "@type": TYPE_URLS.secret,
    name: SDS_SECRETS.certificate,
    tls_certificate: {
      certificate_chain: { filename: certFile(paths, CERT_FILES.certificate) },
      private_key: { filename: certFile(paths, CERT_FILES.privateKey) },
      watched_directory: { path: paths.certDir },
    },
  };
}

/** The trust secret: only the CA certificate; SAN checks stay in the static config. */
export function trustSecret(paths: SidecarPaths): ValidationContextSecret {
  return {
    "@type": TYPE_URLS.secret,
    name: SDS_SECRETS.validation,
    validation_context: {
      trusted_ca: { filename: certFile(paths, CERT_FILES.ca) },
      watched_directory: { path: paths.certDir },
    },
  };
}

/** Both SDS files, as DiscoveryResponses with exactly one secret each (what Envoy expects). */
export function buildSdsFiles(spec: Pick<SidecarSpec, "paths">): {
  certificate: SdsFile<TlsCertificateSecret>;
  validation: SdsFile<ValidationContextSecret>;
} {
  return {
    certificate: { resources: [identitySecret(spec.paths)] },
    validation: { resources: [trustSecret(spec.paths)] },
  };
}
