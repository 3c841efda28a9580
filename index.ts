/**
 * bookapi-mesh: reads and validates the stack config, builds the mesh, exports its endpoints.
 */
import * as k8s from "@pulumi/kubernetes";
import { loadMeshConfig } from "./components/config";
import { ServiceMesh } from "./components/mesh";

// Validation throws before any resource is registered, so bad config fails at preview.
const model = loadMeshConfig();

// The `local` stack writes YAML instead of talking to a cluster. An explicit provider, rather
// than the ambient default one, keeps that choice visible in the program.
const provider = model.renderYamlToDirectory
  ? new k8s.Provider("render-yaml", { renderYamlToDirectory: model.renderYamlToDirectory })
  : undefined;

const mesh = new ServiceMesh("mesh", { model }, provider ? { providers: [provider] } : undefined);

/** Per service: the mTLS endpoint, the direct endpoint where exposed, and its app's outbound URL. */
export const endpoints = mesh.endpoints;
/** The mesh CA certificate (public). */
export const caCertificate = mesh.caCertificate;
export const namespace = mesh.namespace;
