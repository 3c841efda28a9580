/**
 * A model of what `pulumi up` does to the cluster when the program's output changes between two
 * runs. It follows:
 * - pulumi-kubernetes provider/pkg/provider/diff.go (forceNewProperties): a change of
 *   `metadata.name` or `metadata.namespace` replaces any object; a Secret's `type` always, and its
 *   `data`/`stringData` unless the provider has enableSecretMutable and the Secret is not
 *   immutable; a ConfigMap's `data`/`binaryData` unless enableConfigMapMutable and not immutable.
 * - provider.go (Diff): a replacement is delete-first when the object keeps its explicit name and
 *   namespace (two objects cannot share them); the `deleteBeforeReplace` option forces it.
 * - The Pulumi engine: a create-first replacement creates the new object, updates its dependents,
 *   and deletes the old object at the end of the update; objects the program no longer declares
 *   are deleted at the end too. With `retainOnDelete` the engine drops the old object from its
 *   state instead and leaves it in the cluster.
 */
import { kindOf, kubernetesObjects, metadataName, ProgramRun, Registered } from "./program";

export type Action =
  | "same"
  | "update"
  | "create"
  | "replace, create first"
  | "replace, create first, old kept"
  | "replace, delete first"
  | "delete at end"
  | "left in the cluster";

export interface Step {
  /** `Kind/name` after the change (before it, for a delete). */
  object: string;
  action: Action;
}

export interface ProviderSettings {
  enableSecretMutable: boolean;
  enableConfigMapMutable: boolean;
  /** A create of an existing object applies to it instead of failing (v4.29+ default: fail). */
  upsertExistingObjects: boolean;
  /** Every server-side apply is forced: conflicting fields are taken over. */
  enablePatchForce: boolean;
}

/** The settings of the Kubernetes provider an object is registered with (none: the defaults). */
export function providerSettingsOf(run: ProgramRun, object?: Registered): ProviderSettings {
  const providers = run.resources.filter((r) => r.type === "pulumi:providers:kubernetes");
  // A resource names its provider as `<urn>::<id>`.
  const provider = object
    ? providers.find((p) => object.provider.startsWith(`${p.urn}::`))
    : providers[0];
  const on = (key: string) => String(provider?.inputs[key]) === "true";
  return {
    enableSecretMutable: on("enableSecretMutable"),
    enableConfigMapMutable: on("enableConfigMapMutable"),
    upsertExistingObjects: on("upsertExistingObjects"),
    enablePatchForce: on("enablePatchForce"),
  };
}

export const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/** `type::name` of a full URN (`...::<parent type>$<type>::<name>`), as the harness names resources. */
export function shortUrn(urn: string): string {
  const parts = urn.split("::");
  const qualified = parts[parts.length - 2];
  return `${qualified.slice(qualified.lastIndexOf("$") + 1)}::${parts[parts.length - 1]}`;
}

const meta = (r: Registered) => r.inputs.metadata as { name?: string; namespace?: string };

function replaces(before: Registered, after: Registered, provider: ProviderSettings): boolean {
  if (meta(before).name !== meta(after).name || meta(before).namespace !== meta(after).namespace)
    return true;
  const changed = (...keys: string[]) => keys.some((k) => !same(before.inputs[k], after.inputs[k]));
  const immutable = after.inputs.immutable === true;
  switch (kindOf(after.type)) {
    case "Secret":
      return (
        changed("type") ||
        ((!provider.enableSecretMutable || immutable) && changed("data", "stringData"))
      );
    case "ConfigMap":
      return (!provider.enableConfigMapMutable || immutable) && changed("data", "binaryData");
    default:
      return false;
  }
}

/** What one object goes through. */
export function plannedAction(
  before: Registered,
  after: Registered,
  provider: ProviderSettings,
): Action {
  if (!replaces(before, after, provider))
    return same(before.inputs, after.inputs) ? "same" : "update";
  const keepsPlace =
    meta(before).name === meta(after).name && meta(before).namespace === meta(after).namespace;
  if (after.deleteBeforeReplace || keepsPlace) return "replace, delete first";
  return after.retainOnDelete ? "replace, create first, old kept" : "replace, create first";
}

/** The steps `pulumi up` takes from one run's objects to another's, matched by URN. */
export function planUpdate(before: ProgramRun, after: ProgramRun): Step[] {
  const old = new Map(kubernetesObjects(before).map((r) => [r.urn, r]));
  const steps: Step[] = kubernetesObjects(after).map((r) => {
    const previous = old.get(r.urn);
    old.delete(r.urn);
    return {
      object: `${kindOf(r.type)}/${metadataName(r)}`,
      action: previous ? plannedAction(previous, r, providerSettingsOf(after, r)) : "create",
    };
  });
  for (const r of old.values())
    steps.push({
      object: `${kindOf(r.type)}/${metadataName(r)}`,
      action: r.retainOnDelete ? "left in the cluster" : "delete at end",
    });
  return steps.sort((a, b) => (a.object < b.object ? -1 : a.object > b.object ? 1 : 0));
}

/** Deployments whose pod template changed: the ones whose pods are replaced. */
export function restartedDeployments(before: ProgramRun, after: ProgramRun): string[] {
  const template = (r: Registered) => (r.inputs.spec as { template: unknown }).template;
  const old = new Map(
    kubernetesObjects(before)
      .filter((r) => kindOf(r.type) === "Deployment")
      .map((r) => [r.urn, r]),
  );
  return kubernetesObjects(after)
    .filter((r) => kindOf(r.type) === "Deployment")
    .filter((r) => {
      const previous = old.get(r.urn);
      return !previous || !same(template(previous), template(r));
    })
    .map(metadataName)
    .sort();
}

/**
 * Whether the engine runs `later`'s step only after `earlier`'s: Pulumi starts a resource's
 * step once the steps of the resources it depends on (dependsOn and the resources its inputs
 * come from) are done, so the order holds exactly when `earlier` is among `later`'s
 * dependencies, directly or through others. Steps without such a path may run in any order.
 */
export function runsAfter(run: ProgramRun, later: Registered, earlier: Registered): boolean {
  // Dependencies are full URNs: match on type and name.
  const id = (r: { type: string; name: string }) => `${r.type}::${r.name}`;
  const byId = new Map(run.resources.map((r) => [id(r), r]));
  const resourceOf = (urn: string) => byId.get(shortUrn(urn));
  const seen = new Set<string>();
  const pending = [...later.dependencies];
  while (pending.length > 0) {
    const r = resourceOf(pending.pop() as string);
    if (!r || seen.has(id(r))) continue;
    if (id(r) === id(earlier)) return true;
    seen.add(id(r));
    pending.push(...r.dependencies);
  }
  return false;
}
