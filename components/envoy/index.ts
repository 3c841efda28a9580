/**
 * Pure Envoy v3 config builders: SidecarSpec in, bootstrap and file-based SDS objects out.
 */
export * from "./model";
export type * from "./types";
export { EXTENSION_NAMES, TYPE_URLS } from "./types";
export { CLUSTER_NAMES, EXPOSED_PATHS, LISTENER_NAMES, upstreamClusterName } from "./spec";
export { SDS_SECRETS, buildSdsFiles, identitySecret, trustSecret } from "./sds";
export {
  NO_CALLER_SAN,
  SYSTEM_CA_BUNDLE,
  TLS_PARAMS,
  externalTlsContext,
  inboundTlsContext,
  upstreamTlsContext,
} from "./tls";
export { CALLERS_POLICY, callerPermissions, callerRules, principalsOf, requestRules } from "./rbac";
export { adminCluster, buildClusters, localAppCluster, upstreamCluster } from "./clusters";
export {
  buildListeners,
  hasOutboundListener,
  healthListener,
  inboundListener,
  metricsListener,
  outboundListener,
  peerHostnames,
  upstreamDomains,
} from "./listeners";
export {
  EDGE_LIMITS,
  GATEWAY_LISTENER,
  JWT_METADATA,
  MCP_CORS,
  buildGatewayBootstrap,
  buildGatewayFiles,
  corsPolicy,
  edgeTlsContext,
  gatewayListener,
  jwksClusterName,
  jwtProvider,
  localReplyMappers,
  resourceMetadata,
} from "./gateway";
export {
  bootstrapPath,
  buildAdmin,
  buildBootstrap,
  buildEnvoyFiles,
  referencedFiles,
  toJson,
} from "./bootstrap";
