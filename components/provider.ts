/**
 * The Kubernetes providers of the mesh, for a cluster and for the offline render alike, so a
 * render shows what a deploy would do: one for every object, and one for the Envoy ConfigMap
 * versions only.
 *
 * pulumi-kubernetes plans a change to a Secret's data as a replacement unless the provider has
 * `enableSecretMutable` (provider/pkg/provider/diff.go; option since v4.18.0), and a replacement
 * of a fixed-name object is delete-first: each certificate renewal would delete `<name>-tls`
 * under running pods. With the option, a renewal is an in-place update that Envoy picks up
 * through SDS. ConfigMaps are not made mutable: the Envoy ConfigMaps are immutable versions with
 * content-hashed names (workload.ts), which the provider replaces create-before-delete.
 *
 * `enablePatchForce`: every server-side apply is forced (provider/pkg/await/await.go
 * `patchForce`; ProviderArgs docs, pulumi-kubernetes #2280). Pulumi owns the fields it declares: a field that `kubectl scale`, `edit` or
 * `rollout undo`, or an HPA that was turned off, last wrote is taken back at the next apply
 * instead of failing it with a conflict; fields the program does not declare stay theirs
 * (Kubernetes docs, "Server-Side Apply": conflicts, forcing, shared ownership).
 *
 * `upsertExistingObjects` only for the Envoy ConfigMaps: since v4.29 a create of an object that
 * already exists fails with AlreadyExists unless the provider upserts, which sends a server-side
 * apply instead (await.go `Creation`; ProviderArgs docs). A config change rolled
 * back (A -> B -> A) creates `<name>-envoy-<hash of A>` again, and that version is still in the
 * cluster (retainOnDelete), so without it the rollback fails. Its content is the same by
 * construction (the name is its hash), and Pulumi never deletes a version, so the upsert's
 * documented risk (a create and a delete aimed at one object) cannot arise. Every other object
 * keeps the plain create, which refuses to take over what another stack made.
 *
 * Neither flag is one the provider's DiffConfig replaces resources for (only kubeconfig,
 * context, cluster, clusterIdentifier and renderYamlToDirectory are; provider.go `DiffConfig`),
 * so adding them to a deployed stack, or moving the ConfigMaps to the second provider, replaces
 * nothing (the engine asks DiffConfig on a provider change, pulumi/pulumi#18509).
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import { MeshModel } from "./config";

/** The settings of the default provider that stay available with an explicit one. */
export interface ClusterSelection {
  /** `kubernetes:context`: which kubeconfig context to deploy to. */
  context?: string;
  /** `kubernetes:kubeconfig`: a kubeconfig path or its contents. */
  kubeconfig?: string;
}

/** Reads `kubernetes:context` and `kubernetes:kubeconfig`, which an explicit provider ignores. */
export function clusterSelectionFromConfig(): ClusterSelection {
  const config = new pulumi.Config("kubernetes");
  const context = config.get("context");
  const kubeconfig = config.get("kubeconfig");
  return { ...(context ? { context } : {}), ...(kubeconfig ? { kubeconfig } : {}) };
}

export function meshProviderArgs(model: MeshModel, cluster: ClusterSelection): k8s.ProviderArgs {
  return {
    enableSecretMutable: true,
    enablePatchForce: true,
    // The provider refuses a context or kubeconfig beside renderYamlToDirectory.
    ...(model.renderYamlToDirectory
      ? { renderYamlToDirectory: model.renderYamlToDirectory }
      : cluster),
  };
}

/** The provider of the Envoy ConfigMap versions: the mesh provider's settings, plus upserts. */
export function envoyConfigProviderArgs(
  model: MeshModel,
  cluster: ClusterSelection,
): k8s.ProviderArgs {
  return { ...meshProviderArgs(model, cluster), upsertExistingObjects: true };
}
