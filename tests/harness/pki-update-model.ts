/**
 * What `pulumi up` does to the certificates between two runs of the program: the tls resources,
 * and the Secrets and Deployments that take their output. It follows:
 * - the engine (pulumi/pulumi pkg/resource/deploy/step_generator.go `shouldTriggerReplace`): a
 *   replacementTrigger replaces when either side is unknown, else when it differs from the
 *   recorded one; with none recorded or none set, it replaces nothing (the program's triggers
 *   are known strings, so the unknown case does not arise here);
 * - the tls provider (terraform-provider-tls schemas): the PEM inputs replace the resource when
 *   they change (`requireReplaceIfStateContainsPEMString`), as do the key's algorithm and size and
 *   the request's subject and names and the certificate's uses and validity; `earlyRenewalHours`
 *   is updated in place (it replaces only once the new window covers now, which the model does
 *   not play);
 * - a replaced resource has new outputs, so whatever takes an input from it (its
 *   propertyDependencies) sees that input change: a tls resource or key epoch is replaced, a
 *   Kubernetes object is planned by update-model.ts's rules (a Secret updates in place with
 *   enableSecretMutable).
 * The mocks draw a new key at every run, which is why inputs taken from another resource are
 * followed along the dependencies rather than compared.
 */
import { kindOf, metadataName, ProgramRun, Registered } from "./program";
import { Action, plannedAction, providerSettingsOf, same, shortUrn } from "./update-model";

/** Inputs a tls resource takes in place. */
const IN_PLACE = new Set(["earlyRenewalHours"]);

const CERTIFICATE_TYPES = new Set([
  "tls:index/privateKey:PrivateKey",
  "tls:index/certRequest:CertRequest",
  "tls:index/locallySignedCert:LocallySignedCert",
  "tls:index/selfSignedCert:SelfSignedCert",
]);

/** The trigger's value, without the output wrapper the SDK serializes it in. */
function triggerValue(trigger: unknown): unknown {
  if (trigger !== null && typeof trigger === "object" && "value" in trigger)
    return (trigger as { value: unknown }).value;
  return trigger;
}

/** step_generator.go shouldTriggerReplace, for known values. */
export function shouldTriggerReplace(after: unknown, before: unknown): boolean {
  const a = triggerValue(after);
  const b = triggerValue(before);
  if (a === undefined || a === null || b === undefined || b === null) return false;
  return !same(a, b);
}

export interface PkiPlan {
  /** `type::name` of every certificate resource replaced. */
  replaced: string[];
  /** `type::name` of every certificate resource created (absent before). */
  created: string[];
  /** `Kind/name` and action of each Kubernetes object that takes a replaced resource's output. */
  objects: { object: string; action: Action }[];
  /** `type::name` of resources present before and gone after. */
  deleted: string[];
}

/**
 * Inputs that replace the resource when they change, not taken from another resource's outputs
 * (those are followed as dependencies).
 */
function ownInputs(r: Registered): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(r.inputs).filter(
      ([k]) => !IN_PLACE.has(k) && (r.propertyDependencies[k] ?? []).length === 0,
    ),
  );
}

export function planPkiUpdate(before: ProgramRun, after: ProgramRun): PkiPlan {
  const old = new Map(before.resources.map((r) => [r.urn, r]));
  /** `type::name` of the resources replaced so far. */
  const replacedIds = new Set<string>();
  const plan: PkiPlan = { replaced: [], created: [], objects: [], deleted: [] };
  // Dependencies are full URNs; the harness's are short.
  const isReplaced = (urn: string) => replacedIds.has(shortUrn(urn));
  const fedByReplaced = (r: Registered) =>
    Object.values(r.propertyDependencies).some((urns) => urns.some(isReplaced));
  // Registration order: a resource registers after the ones its inputs come from.
  for (const r of after.resources) {
    const previous = old.get(r.urn);
    const id = `${r.type}::${r.name}`;
    if (CERTIFICATE_TYPES.has(r.type)) {
      if (!previous) {
        plan.created.push(id);
        continue;
      }
      if (
        shouldTriggerReplace(r.replacementTrigger, previous.replacementTrigger) ||
        !same(ownInputs(r), ownInputs(previous)) ||
        fedByReplaced(r)
      ) {
        replacedIds.add(id);
        plan.replaced.push(id);
      }
    } else if (previous && r.type.startsWith("kubernetes:") && fedByReplaced(r)) {
      // Its inputs now hold the new outputs: planned as a change of the fields fed by them.
      const fed = Object.keys(r.propertyDependencies).filter((k) =>
        r.propertyDependencies[k].some(isReplaced),
      );
      const changed: Registered = {
        ...r,
        inputs: { ...r.inputs, ...Object.fromEntries(fed.map((k) => [k, { changed: k }])) },
      };
      plan.objects.push({
        object: `${kindOf(r.type)}/${metadataName(r)}`,
        action: plannedAction(previous, changed, providerSettingsOf(after, r)),
      });
    }
  }
  const now = new Set(after.resources.map((r) => r.urn));
  plan.deleted = before.resources.filter((r) => !now.has(r.urn)).map((r) => `${r.type}::${r.name}`);
  return plan;
}
