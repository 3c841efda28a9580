/**
 * bookapi-mesh's own program: the mesh from this stack's config, built through the library entry
 * point (components/index.ts, docs/library.md), and its endpoints as stack outputs.
 */
import * as pulumi from "@pulumi/pulumi";
import { loadMeshConfig, meshProviders, ServiceMesh } from "./components";

// Validation throws before any resource is registered, so bad config fails at preview.
const model = loadMeshConfig();

// The last deployment's CA generations, read back from this stack's own `trust` output (a stack
// may reference itself, pulumi/pulumi#3722), so a config that skips a step of a CA re-key is
// refused before the cluster is touched.
const lastDeployment = new pulumi.StackReference(
  `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}`,
);
// The providers are made here rather than by the mesh (which would name them `mesh-kubernetes`)
// to keep the names deployed stacks know them by: every object refers to its provider by name.
const { provider, envoyConfigProvider } = meshProviders("kubernetes", model, {
  // A stack never deployed (or a mock) has no outputs.
  lastTrust: lastDeployment.outputs.apply(
    (outputs) => (outputs as Record<string, unknown> | undefined)?.trust,
  ),
});

const mesh = new ServiceMesh("mesh", { model, envoyConfigProvider }, { providers: [provider] });

/** Per service: the mTLS endpoint, the direct endpoint where exposed, and its app's outbound URL. */
export const endpoints = mesh.endpoints;
/** What workloads trust: the certificate of each trusted CA generation (PEM bundle, public). */
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
/**
 * Per leaf certificate: not-before, not-after, when renewal is due and its key epoch. Renewal and
 * key rotation happen only when `pulumi up` runs (docs/operations.md, "Certificates").
 */
export const certificates = mesh.certificates;
/** The mesh CA's expiry, renewal time and fingerprint. */
export const trust = mesh.trust;
/**
 * Who may call whom: every allowed edge as one line, sorted, so `pulumi preview --diff` shows who
 * gains or loses access (docs/security.md, "Allowed traffic").
 */
export const access = mesh.access;
