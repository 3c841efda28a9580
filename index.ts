/**
 * bookapi-mesh: reads and validates the stack config, builds the mesh, exports its endpoints.
 */
import * as k8s from "@pulumi/kubernetes";
import { loadMeshConfig } from "./components/config";
import { ServiceMesh } from "./components/mesh";
import {
  clusterSelectionFromConfig,
  envoyConfigProviderArgs,
  meshProviderArgs,
} from "./components/provider";

// Validation throws before any resource is registered, so bad config fails at preview.
const model = loadMeshConfig();

// Explicit providers for every stack (cluster or render): their settings decide whether a
// renewal updates Secrets in place, who wins a field kubectl changed, and whether a rolled-back
// Envoy config can be created again (components/provider.ts).
const cluster = clusterSelectionFromConfig();
const provider = new k8s.Provider("kubernetes", meshProviderArgs(model, cluster));
const envoyConfigProvider = new k8s.Provider(
  "kubernetes-envoy-config",
  envoyConfigProviderArgs(model, cluster),
);

const mesh = new ServiceMesh("mesh", { model, envoyConfigProvider }, { providers: [provider] });

/** Per service: the mTLS endpoint, the direct endpoint where exposed, and its app's outbound URL. */
export const endpoints = mesh.endpoints;
/** The mesh CA certificate (public). */
export const caCertificate = mesh.caCertificate;
export const namespace = mesh.namespace;
/** Per client outside the mesh: its certificate, SPIFFE ID and the services it may call. */
export const clients = mesh.clients;
/** Per client: its private key (a secret: `pulumi stack output clientKeys --show-secrets`). */
export const clientKeys = mesh.clientKeys;
/** Per exposed service: the address and port clients dial. */
export const exposed = mesh.exposed;
/** The ingress gateway: its address and, per route, the URL clients use (absent without one). */
export const gateway = mesh.gatewayEndpoint;
