/**
 * bookapi-mesh as a library, the package's one entry point (docs/library.md): the mesh component
 * and its providers, the config reader, and the sidecar injector for workloads someone else
 * declares. Everything else under components/ is internal and may change without notice.
 */
export { ServiceMesh } from "./mesh";
export type {
  ClientEndpoint,
  GatewayEndpoint,
  MeshSource,
  ServiceEndpoints,
  ServiceMeshArgs,
} from "./mesh";
export { meshProviders, MINIMUM_PULUMI_CLI } from "./provider";
export type { ClusterSelection, MeshProviderOptions, MeshProviders } from "./provider";
export { injectWorkload, meshInjector } from "./injector";
export type { AdoptedWorkload, WorkloadObject } from "./injector";
export { InjectionError } from "./injector";
export { loadMeshConfig, MeshConfigError, parseMeshConfig } from "./config";
export type { MeshConfig, MeshModel, ServiceModel } from "./config";
export type { TrustState } from "./pki";
export type { LeafCertificateState } from "./identity";
