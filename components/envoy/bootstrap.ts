/**
 * The bootstrap and the ConfigMap files: composition of the per-concern builders.
 */
import { buildClusters, socketAddress } from "./clusters";
import { buildListeners } from "./listeners";
import { CERT_FILES, ENVOY_FILES, SidecarPaths, SidecarSpec } from "./model";
import { buildSdsFiles, certFile, configFile } from "./sds";
import {
  Admin,
  Bootstrap,
  EXTENSION_NAMES,
  OverloadAction,
  OverloadManager,
  TYPE_URLS,
} from "./types";

/**
 * The admin API can reconfigure and stop Envoy, so it listens on loopback only (reach it with
 * `kubectl port-forward`). No admin access log: readiness probes and scrapes pass through it
 * every few seconds.
 */
export function buildAdmin(spec: Pick<SidecarSpec, "ports">): Admin {
  return { address: socketAddress("127.0.0.1", spec.ports.admin) };
}

/**
 * The overload manager (Envoy has none by default, so it grows until the kubelet OOM-kills it):
 * past 90 % of a heap ceiling set below the container's memory limit Envoy returns freed memory
 * to the system, past 95 % it stops accepting requests (503), past 98 % it closes new connections
 * as it accepts them (each TLS handshake costs memory a 503 cannot save); and it accepts no more
 * than maxConnections downstream connections in all. Checked every 250 ms (Envoy's docs'
 * example). Not used: reset_high_memory_stream, which needs buffer accounting and resets the
 * streams that buffer most; the 64 KiB windows and buffers (connections.ts) already bound a
 * stream, so it would pick among equals.
 */
export function buildOverloadManager(spec: Pick<SidecarSpec, "overload">): OverloadManager {
  const trigger = (value: number) =>
    [{ name: EXTENSION_NAMES.fixedHeap, threshold: { value } }] as OverloadAction["triggers"];
  return {
    refresh_interval: "0.250s",
    resource_monitors: [
      {
        name: EXTENSION_NAMES.fixedHeap,
        typed_config: {
          "@type": TYPE_URLS.fixedHeap,
          max_heap_size_bytes: spec.overload.maxHeapBytes,
        },
      },
      {
        name: EXTENSION_NAMES.downstreamConnections,
        typed_config: {
          "@type": TYPE_URLS.downstreamConnections,
          max_active_downstream_connections: spec.overload.maxConnections,
        },
      },
    ],
    actions: [
      { name: EXTENSION_NAMES.shrinkHeap, triggers: trigger(0.9) },
      { name: EXTENSION_NAMES.stopAcceptingRequests, triggers: trigger(0.95) },
      { name: EXTENSION_NAMES.rejectIncomingConnections, triggers: trigger(0.98) },
    ],
  };
}

/** The Prometheus label every stat of an Envoy carries: the workload it runs in. */
export const MESH_SERVICE_TAG = "mesh_service";

/**
 * Every stat of this Envoy tagged with its workload (StatsConfig.stats_tags, a `fixed_value` tag):
 * a series names its source without relabelling, and an edge is this tag plus a cluster's name.
 */
export function buildStatsConfig(workload: string): Bootstrap["stats_config"] {
  return { stats_tags: [{ tag_name: MESH_SERVICE_TAG, fixed_value: workload }] };
}

/** The static bootstrap of one sidecar. */
export function buildBootstrap(spec: SidecarSpec): Bootstrap {
  return {
    node: { id: spec.service, cluster: spec.service },
    admin: buildAdmin(spec),
    stats_config: buildStatsConfig(spec.service),
    static_resources: {
      listeners: buildListeners(spec),
      clusters: buildClusters(spec),
    },
    overload_manager: buildOverloadManager(spec),
  };
}

/** Stable JSON: builders fix key order, 2-space indent, trailing newline. */
export function toJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** ConfigMap `<name>-envoy-<hash>` data: the bootstrap and both SDS files, keyed by ENVOY_FILES. */
export function buildEnvoyFiles(spec: SidecarSpec): Record<string, string> {
  const sds = buildSdsFiles(spec);
  return {
    [ENVOY_FILES.bootstrap]: toJson(buildBootstrap(spec)),
    [ENVOY_FILES.sdsCertificate]: toJson(sds.certificate),
    [ENVOY_FILES.sdsValidation]: toJson(sds.validation),
  };
}

/** Where Envoy's `--config-path` points. */
export function bootstrapPath(paths: SidecarPaths): string {
  return configFile(paths, ENVOY_FILES.bootstrap);
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
