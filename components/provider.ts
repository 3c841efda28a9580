/**
 * The one Kubernetes provider every mesh object uses, for a cluster and for the offline render
 * alike, so a render shows what a deploy would do.
 *
 * pulumi-kubernetes plans a change to a Secret's data as a replacement unless the provider has
 * `enableSecretMutable` (provider/pkg/provider/diff.go; option since v4.18.0), and a replacement
 * of a fixed-name object is delete-first: each certificate renewal would delete `<name>-tls`
 * under running pods. With the option, a renewal is an in-place update that Envoy picks up
 * through SDS. ConfigMaps are not made mutable: the Envoy ConfigMaps are immutable versions with
 * content-hashed names (workload.ts), which the provider replaces create-before-delete.
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
    // The provider refuses a context or kubeconfig beside renderYamlToDirectory.
    ...(model.renderYamlToDirectory
      ? { renderYamlToDirectory: model.renderYamlToDirectory }
      : cluster),
  };
}
