/**
 * The bootstrap and the ConfigMap files: composition of the per-concern builders.
 */
import { buildClusters, socketAddress } from "./clusters";
import { buildListeners } from "./listeners";
import { CERT_FILES, ENVOY_FILES, SidecarSpec } from "./model";
import { buildSdsFiles, certFile, configFile } from "./sds";
import { canonicalSpec } from "./spec";
import { Admin, Bootstrap } from "./types";

/**
 * The admin API can reconfigure and stop Envoy, so it listens on loopback only (reach it with
 * `kubectl port-forward`). No admin access log: readiness probes and scrapes pass through it
 * every few seconds.
 */
export function buildAdmin(spec: SidecarSpec): Admin {
  return { address: socketAddress("127.0.0.1", spec.ports.admin) };
}

/** The static bootstrap of one sidecar. Throws if the spec could not make a working Envoy. */
export function buildBootstrap(input: SidecarSpec): Bootstrap {
  const spec = canonicalSpec(input);
  return {
    node: { id: spec.service, cluster: spec.service },
    admin: buildAdmin(spec),
    static_resources: {
      listeners: buildListeners(spec),
      clusters: buildClusters(spec),
    },
  };
}

/** Stable JSON: builders fix key order, 2-space indent, trailing newline. */
export function toJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** ConfigMap `<name>-envoy-<hash>` data: the bootstrap and both SDS files, keyed by ENVOY_FILES. */
export function buildEnvoyFiles(input: SidecarSpec): Record<string, string> {
  const spec = canonicalSpec(input);
  const sds = buildSdsFiles(spec);
  return {
    [ENVOY_FILES.bootstrap]: toJson(buildBootstrap(spec)),
    [ENVOY_FILES.sdsCertificate]: toJson(sds.certificate),
    [ENVOY_FILES.sdsValidation]: toJson(sds.validation),
  };
}

/** Where Envoy's `--config-path` points. */
export function bootstrapPath(spec: SidecarSpec): string {
  return configFile(spec.paths, ENVOY_FILES.bootstrap);
}

/**
 * Every path the generated files make Envoy read or watch (the SDS files, the certificate
 * files, and the two watched directories), sorted. The pod's mounts must provide all of them;
 * the bootstrap itself is `bootstrapPath`.
 */
export function referencedFiles(spec: SidecarSpec): string[] {
  const { paths } = spec;
  return [
    paths.configDir,
    configFile(paths, ENVOY_FILES.sdsCertificate),
    configFile(paths, ENVOY_FILES.sdsValidation),
    paths.certDir,
    certFile(paths, CERT_FILES.certificate),
    certFile(paths, CERT_FILES.privateKey),
    certFile(paths, CERT_FILES.ca),
  ].sort();
}
