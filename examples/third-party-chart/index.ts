/**
 * Another Pulumi program with the mesh as a library: podinfo's Helm chart deployed as it is
 * published, its Deployment adopted into the mesh by the `meshInjector` transform.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { meshInjector, ServiceMesh } from "bookapi-mesh";

// The last deployment's `trust` output, so the mesh refuses a config that skips a CA re-key step.
const self = new pulumi.StackReference(
  `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}`,
);

const mesh = new ServiceMesh("mesh", {
  config: {
    namespace: "shop",
    services: [
      // podinfo's chart names its Deployment `<release>-podinfo`.
      { name: "reviews", port: 9898, workload: { kind: "Deployment", name: "reviews-podinfo" } },
    ],
  },
  // A stack never deployed has no outputs.
  lastTrust: self.outputs.apply(
    (outputs) => (outputs as Record<string, unknown> | undefined)?.trust,
  ),
});

// Registered before the chart: a transform sees only the resources registered after it.
pulumi.runtime.registerResourceTransform(meshInjector(mesh.adopted));

// Release "reviews", as published; with the mesh's provider, so it reaches the mesh's cluster.
new k8s.helm.v4.Chart(
  "reviews",
  {
    chart: "oci://ghcr.io/stefanprodan/charts/podinfo",
    version: "6.9.1",
    namespace: mesh.namespace,
  },
  { provider: mesh.provider },
);

export const endpoints = mesh.endpoints;
export const trust = mesh.trust;
