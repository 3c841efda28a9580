/**
 * Everything that couples the test harness to Pulumi internals, in one file on purpose.
 *
 * Pulumi's mocks show a program's resources as `(type, name, inputs)` only. The tests also
 * assert what the engine would be told beside the inputs (deleteBeforeReplace, retainOnDelete,
 * aliases, parent, provider, which inputs are secret), so the harness reads the registration
 * request itself: it wraps the mock monitor's `registerResource` and reads the protobuf message.
 * Secrets travel in the RPC envelope marked with the runtime's own signature constants
 * (runtime/rpc.ts); the runtime exports them, so nothing here hard-codes them.
 * If an upgrade of @pulumi/pulumi breaks this, fix it here; nothing else touches it.
 */
import * as pulumi from "@pulumi/pulumi";
// Secret inputs are unwrapped as the render's engine does it (the one place that knows how).
export { unwrapSecrets } from "../../tools/render/engine";

/** What the engine is told about one registration, beside the inputs. */
export interface RegistrationOptions {
  type: string;
  name: string;
  /** URN of the parent resource ("" for the stack itself). */
  parent: string;
  deleteBeforeReplace: boolean;
  /** Pulumi drops the resource from state without deleting it. */
  retainOnDelete: boolean;
  /** Former names this resource answers to in existing state (alias specs with a name). */
  aliasNames: string[];
  /** Provider reference (`urn::id`), "" for the default provider. */
  provider: string;
  /** Dotted paths of inputs that were sent as Pulumi secrets. */
  secretInputs: string[];
  /** URNs of the resources it waits for (dependsOn and those its inputs come from). */
  dependencies: string[];
  /** URNs each input property's value came from (not dependsOn). */
  propertyDependencies: Record<string, string[]>;
  /** The customTimeouts option ("" where unset). */
  customTimeouts: { create: string; update: string; delete: string };
  /** The replacementTrigger option as the engine records it (undefined where unset). */
  replacementTrigger?: unknown;
}

/** The fields of a RegisterResourceRequest the harness reads. */
interface RegisterRequest {
  getType(): string;
  getName(): string;
  getParent(): string;
  getDeletebeforereplace(): boolean;
  getRetainondelete(): boolean | undefined;
  getAliasesList(): Array<{ getSpec(): { getName(): string } | undefined }>;
  getProvider(): string;
  getDependenciesList(): string[];
  getObject(): { toJavaScript(): Record<string, unknown> } | undefined;
  getPropertydependenciesMap(): {
    toArray(): Array<[string, unknown]>;
    get(key: string): { getUrnsList(): string[] } | undefined;
  };
  getCustomtimeouts():
    { getCreate(): string; getUpdate(): string; getDelete(): string } | undefined;
  getReplacementTrigger(): { toJavaScript(): unknown } | undefined;
}
type Callback = (err: unknown, resp: unknown) => void;
interface PatchableMonitor {
  registerResource(req: RegisterRequest, callback: Callback): Promise<void>;
}

/** Paths of secret values in a serialized property struct. */
function secretPaths(value: unknown, at: string, found: string[]): string[] {
  if (Array.isArray(value)) {
    value.forEach((v, i) => secretPaths(v, `${at}[${i}]`, found));
  } else if (value !== null && typeof value === "object") {
    const obj = value as Record<string, unknown>;
    const sig = obj[pulumi.runtime.specialSigKey];
    if (
      sig === pulumi.runtime.specialSecretSig ||
      (sig === pulumi.runtime.specialOutputValueSig && obj.secret === true)
    ) {
      found.push(at);
    } else {
      for (const [k, v] of Object.entries(obj)) secretPaths(v, at ? `${at}.${k}` : k, found);
    }
  }
  return found;
}

/** Calls `record` with each registration's options; call after `setMocks`. */
export function recordRegistrationOptions(record: (options: RegistrationOptions) => void): void {
  const monitor = pulumi.runtime.getMonitor() as unknown as PatchableMonitor;
  const register = monitor.registerResource.bind(monitor);
  monitor.registerResource = (req, callback) => {
    record({
      type: req.getType(),
      name: req.getName(),
      parent: req.getParent(),
      deleteBeforeReplace: req.getDeletebeforereplace(),
      retainOnDelete: req.getRetainondelete() === true,
      aliasNames: req
        .getAliasesList()
        .map((a) => a.getSpec()?.getName() ?? "")
        .filter((n) => n !== ""),
      provider: req.getProvider(),
      secretInputs: secretPaths(req.getObject()?.toJavaScript() ?? {}, "", []),
      dependencies: req.getDependenciesList(),
      propertyDependencies: Object.fromEntries(
        req
          .getPropertydependenciesMap()
          .toArray()
          .map(([key]) => [key, req.getPropertydependenciesMap().get(key)?.getUrnsList() ?? []]),
      ),
      customTimeouts: {
        create: req.getCustomtimeouts()?.getCreate() ?? "",
        update: req.getCustomtimeouts()?.getUpdate() ?? "",
        delete: req.getCustomtimeouts()?.getDelete() ?? "",
      },
      ...(req.getReplacementTrigger()
        ? { replacementTrigger: req.getReplacementTrigger()?.toJavaScript() }
        : {}),
    });
    return register(req, callback);
  };
}
