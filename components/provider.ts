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
import { caStepProblem } from "./pki";

/**
 * The Pulumi CLI the mesh needs. Key rotation rests on the replacementTrigger option: an engine
 * before 3.208 ignores it without a word, and 3.226 fixed triggers firing on dependency changes and
 * being recorded as unknown (pulumi/pulumi CHANGELOG 3.208.0, 3.226.0: #22119, #22120).
 * Pulumi.yaml states the same range, which CLIs from 3.219 check before running the program.
 */
export const MINIMUM_PULUMI_CLI = ">=3.226.0";

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

/** How `meshProviders` makes the mesh's providers. */
export interface MeshProviderOptions {
  /**
   * The cluster they deploy to. Defaults to the stack's `kubernetes:context` and
   * `kubernetes:kubeconfig`, which an explicit provider would otherwise ignore.
   */
  cluster?: ClusterSelection;
  /**
   * The mesh's `trust` as the last deployment exported it, read back (e.g. with a StackReference
   * to this stack; undefined for a stack never deployed). With it, a config that skips a step of a
   * CA re-key is refused before the cluster is touched (pki.ts caStepProblem). Defaults to no
   * such check.
   */
  lastTrust?: pulumi.Output<unknown>;
}

/** The mesh's two Kubernetes providers. */
export interface MeshProviders {
  /** For every object of the mesh. */
  provider: k8s.Provider;
  /** For the Envoy ConfigMap versions only: the same settings, plus upserts. */
  envoyConfigProvider: k8s.Provider;
}

/**
 * The mesh's providers, `name` and `<name>-envoy-config`, with the settings above. Both wait for
 * the checks (the Pulumi CLI version, and the CA step where `lastTrust` is given), so a failing
 * check touches no cluster object. Under mocks there is no engine to ask, and the CLI check passes.
 */
export function meshProviders(
  name: string,
  model: MeshModel,
  options: MeshProviderOptions = {},
  opts?: pulumi.CustomResourceOptions,
): MeshProviders {
  const cli = pulumi.output(
    pulumi.runtime.requirePulumiVersion(MINIMUM_PULUMI_CLI).then(
      (): pulumi.Resource[] => [],
      (error: unknown) => {
        throw new Error(
          `bookapi-mesh needs the Pulumi CLI ${MINIMUM_PULUMI_CLI} (key rotation uses the replacementTrigger option, which older CLIs ignore or misrecord): ${String(error)}`,
        );
      },
    ),
  );
  const checks: pulumi.Output<unknown>[] = [cli];
  if (options.lastTrust)
    checks.push(
      options.lastTrust.apply((last) => {
        const problem = caStepProblem(last, model.certificates.ca);
        if (problem) throw new pulumi.RunError(problem);
      }),
    );
  const checked = pulumi.all(checks).apply((): pulumi.Resource[] => []);
  const cluster = options.cluster ?? clusterSelectionFromConfig();
  const withChecks = pulumi.mergeOptions(opts, { dependsOn: checked });
  return {
    provider: new k8s.Provider(name, meshProviderArgs(model, cluster), withChecks),
    envoyConfigProvider: new k8s.Provider(
      `${name}-envoy-config`,
      envoyConfigProviderArgs(model, cluster),
      withChecks,
    ),
  };
}
