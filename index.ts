/**
 * bookapi-mesh: reads and validates the stack config, builds the mesh, exports its endpoints.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { loadMeshConfig } from "./components/config";
import { MINIMUM_PULUMI_CLI, ServiceMesh } from "./components/mesh";
import { caStepProblem } from "./components/pki";
import {
  clusterSelectionFromConfig,
  envoyConfigProviderArgs,
  meshProviderArgs,
} from "./components/provider";

// Key rotation rests on the replacementTrigger option: an engine before 3.208 ignores it without a
// word, and 3.226 fixed triggers firing on dependency changes and being recorded as unknown
// (pulumi/pulumi CHANGELOG 3.208.0, 3.226.0: #22119, #22120). Pulumi.yaml states the same range,
// which CLIs from 3.219 check before running the program. Under mocks there is no
// engine to ask, and the check passes.
// The providers wait for the check, so no cluster object is touched by a CLI that fails it.
const cliChecked = pulumi.output(
  pulumi.runtime.requirePulumiVersion(MINIMUM_PULUMI_CLI).then(
    (): pulumi.Resource[] => [],
    (error: unknown) => {
      throw new Error(
        `bookapi-mesh needs the Pulumi CLI ${MINIMUM_PULUMI_CLI} (key rotation uses the replacementTrigger option, which older CLIs ignore or misrecord): ${String(error)}`,
      );
    },
  ),
);

// Validation throws before any resource is registered, so bad config fails at preview.
const model = loadMeshConfig();

// Explicit providers for every stack (cluster or render): their settings decide whether a
// renewal updates Secrets in place, who wins a field kubectl changed, and whether a rolled-back
// Envoy config can be created again (components/provider.ts).
// The last deployment's CA generations, read back from this stack's own `trust` output (a stack
// may reference itself, pulumi/pulumi#3722): a config that skips a step of a CA re-key is
// refused before the cluster is touched (components/pki.ts caStepProblem).
const lastDeployment = new pulumi.StackReference(
  `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}`,
);
const stepChecked = lastDeployment.outputs.apply((outputs): pulumi.Resource[] => {
  // A stack never deployed (or a mock) has no outputs.
  const last = (outputs as Record<string, unknown> | undefined)?.trust;
  const problem = caStepProblem(last, model.certificates.ca);
  if (problem) throw new pulumi.RunError(problem);
  return [];
});
const checked = pulumi.all([cliChecked, stepChecked]).apply((): pulumi.Resource[] => []);

const cluster = clusterSelectionFromConfig();
const provider = new k8s.Provider("kubernetes", meshProviderArgs(model, cluster), {
  dependsOn: checked,
});
const envoyConfigProvider = new k8s.Provider(
  "kubernetes-envoy-config",
  envoyConfigProviderArgs(model, cluster),
  { dependsOn: checked },
);

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
