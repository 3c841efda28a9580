/**
 * A model of a cluster across several `pulumi up`s of the program and the hands of operators in
 * between, for what a single plan (update-model.ts) cannot show: objects that outlive Pulumi's
 * state, who owns which field, and what a second stack finds.
 *
 * What it follows, beside update-model.ts's replacement rules:
 * - Kubernetes, "Server-Side Apply": an apply that would change a field another manager owns is
 *   a conflict unless forced; forcing, or any write that changes a field's value (an Update such
 *   as `kubectl scale`, `edit`, `rollout undo`, or the HPA writing `replicas`), moves the field to
 *   that manager; appliers setting the same value share it; a field an applier drops that nobody
 *   else owns is removed (reset to its default). Immutable ConfigMaps refuse a change of `data`.
 * - pulumi-kubernetes v4 (server-side apply): a create is a plain create, which fails on an
 *   existing object unless the provider has `upsertExistingObjects` (then it applies); an update
 *   is an apply of the whole object, forced with `enablePatchForce` (ProviderArgs docs). Without
 *   `--refresh` the diff compares the program's inputs with the previous inputs only, so drift
 *   goes unnoticed; with it, the live object pruned to the shape of the previous inputs is
 *   compared (pulumi-kubernetes #2445), so drift in a declared field plans an update.
 * - The Pulumi engine: steps run in registration order (the program registers what a resource
 *   depends on first); a create-first replacement deletes the old object at the end of the
 *   update, and if the update fails first, at the start of the next one; `retainOnDelete`
 *   drops an object from the state instead of deleting it.
 * - Node ports are allocated cluster-wide: a Service asking for one in use is refused
 *   ("provided port is already allocated").
 */
import { kindOf, kubernetesObjects, metadataName, ProgramRun, Registered } from "./program";
import { plannedAction, providerSettingsOf } from "./update-model";

type Json = unknown;
const same = (a: Json, b: Json) => JSON.stringify(a) === JSON.stringify(b);

/** An object's fields as leaf paths (lists are single leaves, as atomic lists are). */
export function fieldsOf(value: Json, at = ""): Map<string, Json> {
  const fields = new Map<string, Json>();
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value))
      for (const [path, leaf] of fieldsOf(v, at ? `${at}.${k}` : k)) fields.set(path, leaf);
  } else if (at !== "") {
    fields.set(at, value);
  }
  return fields;
}

/** Defaults the API server fills in when nobody owns a field any more. */
const DEFAULTS: Record<string, Record<string, Json>> = { Deployment: { "spec.replicas": 1 } };

export class ClusterError extends Error {}

interface LiveObject {
  kind: string;
  fields: Map<string, Json>;
  owners: Map<string, Set<string>>;
}

/** Objects by `Kind/namespace/name`, with their field managers. */
export class Cluster {
  readonly objects = new Map<string, LiveObject>();
  private readonly nodePorts = new Map<number, string>();
  private nextNodePort = 30000;

  static key(r: Registered): string {
    const meta = r.inputs.metadata as { namespace?: string };
    return `${kindOf(r.type)}/${meta.namespace ?? ""}/${metadataName(r)}`;
  }

  has(key: string): boolean {
    return this.objects.has(key);
  }

  value(key: string, path: string): Json {
    return this.objects.get(key)?.fields.get(path);
  }

  owners(key: string, path: string): string[] {
    return [...(this.objects.get(key)?.owners.get(path) ?? [])].sort();
  }

  /** A plain create (POST). */
  create(key: string, kind: string, body: Json, manager: string): void {
    if (this.objects.has(key)) throw new ClusterError(`${key}: AlreadyExists`);
    const fields = fieldsOf(body);
    this.allocateNodePorts(key, fields);
    this.objects.set(key, {
      kind,
      fields,
      owners: new Map([...fields.keys()].map((p) => [p, new Set([manager])])),
    });
  }

  /** A server-side apply of `body` by `manager`. */
  apply(key: string, kind: string, body: Json, manager: string, force: boolean): void {
    const live = this.objects.get(key);
    if (!live) return this.create(key, kind, body, manager);
    const fields = fieldsOf(body);
    const conflicts = [...fields].filter(
      ([path, value]) =>
        live.fields.has(path) &&
        !same(live.fields.get(path), value) &&
        [...(live.owners.get(path) ?? [])].some((m) => m !== manager),
    );
    if (conflicts.length > 0 && !force)
      throw new ClusterError(
        `${key}: Apply failed with ${conflicts.length} conflict(s): ${conflicts
          .map(
            ([path]) =>
              `conflict with "${[...(live.owners.get(path) ?? [])].join(", ")}": .${path}`,
          )
          .join("; ")}`,
      );
    if (live.fields.get("immutable") === true)
      for (const [path, value] of fields)
        if (/^(data|binaryData)\./.test(path) && !same(live.fields.get(path), value))
          throw new ClusterError(`${key}: field is immutable when \`immutable\` is set`);
    for (const [path, value] of fields) {
      const owners = live.owners.get(path) ?? new Set<string>();
      // A changed value (a forced conflict included) moves the field; the same value is shared.
      if (!same(live.fields.get(path), value)) owners.clear();
      owners.add(manager);
      live.owners.set(path, owners);
      live.fields.set(path, value);
    }
    for (const [path, owners] of live.owners) {
      if (fields.has(path) || !owners.delete(manager) || owners.size > 0) continue;
      live.owners.delete(path);
      const fallback = DEFAULTS[kind]?.[path];
      if (fallback === undefined) live.fields.delete(path);
      else live.fields.set(path, fallback);
    }
  }

  /** A write that is not an apply (PUT, PATCH, the scale subresource): `kubectl`, controllers. */
  update(key: string, changes: Record<string, Json>, manager: string): void {
    const live = this.objects.get(key);
    if (!live) throw new ClusterError(`${key}: NotFound`);
    for (const [path, value] of Object.entries(changes)) {
      if (same(live.fields.get(path), value)) continue;
      live.fields.set(path, value);
      live.owners.set(path, new Set([manager]));
    }
  }

  delete(key: string): void {
    this.objects.delete(key);
    for (const [port, owner] of this.nodePorts) if (owner === key) this.nodePorts.delete(port);
  }

  private allocateNodePorts(key: string, fields: Map<string, Json>): void {
    const ports = fields.get("spec.ports");
    if (!Array.isArray(ports) || fields.get("spec.type") === "ClusterIP") return;
    for (const port of ports as Array<{ nodePort?: number }>) {
      if (fields.get("spec.type") !== "NodePort" && fields.get("spec.type") !== "LoadBalancer")
        continue;
      const wanted = port.nodePort;
      if (wanted !== undefined && this.nodePorts.has(wanted))
        throw new ClusterError(
          `${key}: spec.ports.nodePort: Invalid value: ${wanted}: provided port is already allocated`,
        );
      let allocated = wanted;
      while (allocated === undefined || this.nodePorts.has(allocated))
        allocated = this.nextNodePort++;
      this.nodePorts.set(allocated, key);
    }
  }
}

/** What Pulumi's state holds for one stack. */
export interface StackState {
  name: string;
  /** By URN: what was last sent for the object, and where it is. */
  resources: Map<string, { registered: Registered; key: string }>;
  /** Objects a failed update left to delete: old versions of create-first replacements. */
  pendingDeletes: { registered: Registered; key: string }[];
}

export function emptyStack(name: string): StackState {
  return { name, resources: new Map(), pendingDeletes: [] };
}

export interface UpOptions {
  /** `pulumi up --refresh`. */
  refresh?: boolean;
  /** Deployments whose rollout does not complete (by `metadata.name`): the update fails there. */
  failingRollouts?: string[];
}

export interface UpResult {
  /** `verb Kind/namespace/name` per step taken, in order. */
  steps: string[];
  /** The first error, when the update failed; later steps were not taken. */
  error?: string;
}

/** The manager name pulumi-kubernetes applies as (one per program, as far as the model needs). */
export const PULUMI_MANAGER = "pulumi-kubernetes";

/** Runs `pulumi up` of `run` for `stack` against `cluster`, updating both. */
export function up(
  cluster: Cluster,
  stack: StackState,
  run: ProgramRun,
  options: UpOptions = {},
): UpResult {
  const steps: string[] = [];
  const retire = (entry: { registered: Registered; key: string }, verb: string) => {
    if (entry.registered.retainOnDelete) steps.push(`retain ${entry.key}`);
    else {
      cluster.delete(entry.key);
      steps.push(`${verb} ${entry.key}`);
    }
  };
  const endDeletes: { registered: Registered; key: string }[] = [];
  try {
    // Deletes a failed update left behind come first.
    for (const entry of stack.pendingDeletes.splice(0)) retire(entry, "delete");
    const declared = new Set<string>();
    for (const r of kubernetesObjects(run)) {
      declared.add(r.urn);
      const key = Cluster.key(r);
      const kind = kindOf(r.type);
      const provider = providerSettingsOf(run, r);
      const previous = stack.resources.get(r.urn);
      const create = () => {
        if (cluster.has(key) && provider.upsertExistingObjects) {
          cluster.apply(key, kind, r.inputs, PULUMI_MANAGER, provider.enablePatchForce);
          steps.push(`create (upsert) ${key}`);
        } else {
          cluster.create(key, kind, r.inputs, PULUMI_MANAGER);
          steps.push(`create ${key}`);
        }
      };
      if (!previous) {
        create();
      } else {
        const action = plannedAction(previous.registered, r, provider);
        const drifted =
          options.refresh &&
          [...fieldsOf(previous.registered.inputs)].some(
            ([path]) => !same(cluster.value(previous.key, path), fieldsOf(r.inputs).get(path)),
          );
        if (action === "update" || (action === "same" && drifted)) {
          cluster.apply(key, kind, r.inputs, PULUMI_MANAGER, provider.enablePatchForce);
          steps.push(`update ${key}`);
        } else if (action === "replace, delete first") {
          retire(previous, "delete");
          create();
        } else if (action !== "same") {
          create();
          endDeletes.push(previous);
        }
      }
      stack.resources.set(r.urn, { registered: r, key });
      if (kind === "Deployment" && options.failingRollouts?.includes(metadataName(r)))
        throw new ClusterError(`${key}: rollout did not complete`);
    }
    for (const entry of endDeletes) retire(entry, "delete");
    for (const [urn, entry] of stack.resources) {
      if (declared.has(urn)) continue;
      retire(entry, "delete");
      stack.resources.delete(urn);
    }
    return { steps };
  } catch (err) {
    if (!(err instanceof ClusterError)) throw err;
    // The old versions of what was replaced so far are deleted at the start of the next update.
    stack.pendingDeletes.push(...endDeletes);
    return { steps, error: err.message };
  }
}
