/**
 * Runs the whole Pulumi program under mocks and records every resource it registers.
 *
 * `tls:*` resources are answered by the faithful fake (real keys and certificates); every other
 * resource echoes its inputs as its state, as a provider that changes nothing would. Beside what
 * the Mocks interface shows, the harness reads the registration request itself, so tests can
 * assert resource options (deleteBeforeReplace, parent) and which inputs were sent as secrets;
 * that coupling to Pulumi internals lives in pulumi-internals.ts.
 */
import { createHash } from "node:crypto";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { BuiltServiceModel, MeshModel, PROJECT } from "../../components/config";
import {
  captureWarnings,
  settleRegistrations,
  shortStackTraces,
  stackConfigFromFile,
} from "../../tools/render/engine";
import { fakeTlsResource, isFakeTlsType } from "./fake-tls";
import { recordRegistrationOptions, RegistrationOptions, unwrapSecrets } from "./pulumi-internals";

export const PROJECT_ROOT = path.resolve(__dirname, "../..");
const PROGRAM = path.join(PROJECT_ROOT, "index.ts");

/** The stacks the project ships. */
export const STACKS = ["dev", "staging", "prod", "local"] as const;
export type StackName = (typeof STACKS)[number];

/** One registered resource. */
export interface Registered extends RegistrationOptions {
  urn: string;
  custom: boolean;
  inputs: Record<string, unknown>;
  state: Record<string, unknown>;
}

/** The result of one program run. */
export interface ProgramRun {
  resources: Registered[];
  /** Stack exports, resolved. */
  outputs: Record<string, unknown>;
  /** Names of stack exports whose value is a secret. */
  secretOutputs: string[];
  /** What the program logged with `pulumi.log.warn` (shown by preview; not printed here). */
  warnings: string[];
  /** The transforms it registered for the whole stack (the mocks never run them). */
  transforms: pulumi.ResourceTransform[];
}

const STACK_REFERENCE = "pulumi:pulumi:StackReference";

/**
 * What a resource the program does not register (a stack reference it reads, an object another
 * controller writes) comes with: nothing beyond its name.
 */
export function readOptions(type: string, name: string): RegistrationOptions {
  return {
    type,
    name,
    parent: "",
    deleteBeforeReplace: false,
    retainOnDelete: false,
    aliasNames: [],
    provider: "",
    secretInputs: [],
    dependencies: [],
    propertyDependencies: {},
    customTimeouts: { create: "", update: "", delete: "" },
  };
}

/** A Kubernetes object as the API server returns it: its inputs plus a `metadata.uid`. */
function withUid(type: string, name: string, inputs: Record<string, unknown>) {
  const hex = createHash("sha256").update(`${type}::${name}`).digest("hex");
  const uid = `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
  const metadata = (inputs.metadata ?? {}) as Record<string, unknown>;
  return { ...inputs, metadata: { ...metadata, uid } };
}

/** The config of one shipped stack, read from `Pulumi.<stack>.yaml` as the render reads it. */
/** The services of a model whose every workload the mesh builds (the shipped stacks'). */
export function builtServices(model: MeshModel): BuiltServiceModel[] {
  return model.services.map((s) => {
    if (s.adopted) throw new Error(`service ${s.name} is adopted: the test expects none`);
    return s;
  });
}

/** The service the mesh builds under `name`; throws for an adopted or unknown one. */
export function builtService(model: MeshModel, name: string): BuiltServiceModel {
  const svc = model.services.find((s) => s.name === name);
  if (!svc || svc.adopted) throw new Error(`no service ${name} that the mesh builds`);
  return svc;
}

export function stackConfig(stack: string): Record<string, string> {
  return stackConfigFromFile(path.join(PROJECT_ROOT, `Pulumi.${stack}.yaml`));
}

/** A shipped stack's config with its `services` list changed in place by `edit`. */
export function stackConfigWithServices(
  stack: string,
  edit: (services: Array<Record<string, unknown>>) => unknown,
): Record<string, string> {
  return stackConfigEditing<Array<Record<string, unknown>>>(stack, "services", (services) => {
    edit(services);
    return services;
  });
}

/** A shipped stack's config with one key's JSON value replaced by `edit`'s. */
function stackConfigEditing<T>(
  stack: string,
  key: string,
  edit: (value: T) => T,
): Record<string, string> {
  const config = stackConfig(stack);
  const name = `${PROJECT}:${key}`;
  return { ...config, [name]: JSON.stringify(edit(JSON.parse(config[name] ?? "{}") as T)) };
}

/** A shipped stack with its services changed in place by `edit`. */
export function runWithServices(
  stack: StackName,
  edit: (services: Array<Record<string, unknown>>) => unknown,
): Promise<ProgramRun> {
  return runProgram(stackConfigWithServices(stack, edit), stack);
}

/** `fn` that runs once per distinct argument list (compared as JSON) and shares the result. */
export function once<A extends unknown[], R>(fn: (...args: A) => R): (...args: A) => R {
  const results = new Map<string, R>();
  return (...args: A) => {
    const key = JSON.stringify(args);
    if (!results.has(key)) results.set(key, fn(...args));
    return results.get(key) as R;
  };
}

/** A shipped stack's config with keys of its `certificates` object replaced. */
export function stackConfigWithCertificates(
  stack: string,
  patch: Record<string, unknown>,
): Record<string, string> {
  return stackConfigPatching(stack, "certificates", patch);
}

/** A shipped stack's config with keys of its `observability` object replaced. */
export function stackConfigWithObservability(
  stack: string,
  patch: Record<string, unknown>,
): Record<string, string> {
  return stackConfigPatching(stack, "observability", patch);
}

/** A shipped stack's config with keys of one object-valued key replaced. */
function stackConfigPatching(
  stack: string,
  key: string,
  patch: Record<string, unknown>,
): Record<string, string> {
  return stackConfigEditing<Record<string, unknown>>(stack, key, (c) => ({ ...c, ...patch }));
}

function outputValue<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => output.apply((v) => resolve(v)));
}

/**
 * Runs index.ts (or another program) with the given config and waits until every resource has
 * registered. Rejects with the program's own error (e.g. a MeshConfigError) if it throws.
 */
export async function runProgram(
  config: Record<string, string>,
  stack = "test",
  program = PROGRAM,
): Promise<ProgramRun> {
  const outcome = await runProgramOutcome(config, stack, {}, program);
  if (outcome.error !== undefined) throw outcome.error;
  return outcome.run;
}

/**
 * Like runProgram, but a failing program yields its error beside whatever it had registered.
 * `kept`: state fields resources (by name) keep from an earlier deployment, as the engine keeps
 * inputs under `ignoreChanges`: merged over what the mock provider returns.
 */
export async function runProgramOutcome(
  config: Record<string, string>,
  stack = "test",
  kept: Record<string, Record<string, unknown>> = {},
  program = PROGRAM,
): Promise<{ run: ProgramRun; error?: unknown }> {
  const resources: Registered[] = [];
  const transforms: pulumi.ResourceTransform[] = [];
  const options = new Map<string, RegistrationOptions>();
  const errors: unknown[] = [];
  // A failed registration leaves dependent outputs unresolved forever: fail fast instead.
  let fail: (err: unknown) => void = () => undefined;
  const failure = new Promise<never>((_, reject) => (fail = reject));
  failure.catch(() => undefined);

  pulumi.runtime.setAllConfig(config);
  await pulumi.runtime.setMocks(
    {
      async newResource(args) {
        try {
          const inputs = unwrapSecrets(args.inputs) as Record<string, unknown>;
          const created = isFakeTlsType(args.type)
            ? await fakeTlsResource(args.type, inputs)
            : args.type.startsWith("kubernetes:")
              ? withUid(args.type, args.name, inputs)
              : args.type === STACK_REFERENCE
                ? { ...inputs, outputs: {}, secretOutputNames: [] } // a stack never deployed
                : { ...inputs };
          const state = { ...created, ...kept[args.name] };
          // A stack reference is read, not registered: it has no registration options.
          const opts =
            options.get(`${args.type}::${args.name}`) ??
            (args.type === STACK_REFERENCE ? readOptions(args.type, args.name) : undefined);
          if (!opts) throw new Error(`harness: no request seen for ${args.type} ${args.name}`);
          resources.push({
            ...opts,
            urn: `urn:pulumi:${stack}::${PROJECT}::${args.type}::${args.name}`,
            custom: args.custom ?? true,
            inputs,
            state,
          });
          return { id: args.custom === false ? undefined : `${args.name}-id`, state };
        } catch (err) {
          errors.push(err);
          fail(err);
          throw err;
        }
      },
      call(args) {
        // Nothing in the program invokes a provider function; an unexpected call must not pass silently.
        throw new Error(`harness: unexpected call to ${args.token}`);
      },
      registerTransform(transform) {
        transforms.push(transform);
      },
    },
    PROJECT,
    stack,
    false,
    // What a DIY backend calls every stack's organization; the program references its own stack.
    "organization",
  );

  recordRegistrationOptions((o) => options.set(`${o.type}::${o.name}`, o));

  const logged = captureWarnings();
  const outputs: Record<string, unknown> = {};
  const secretOutputs: string[] = [];
  const run: ProgramRun = {
    resources,
    outputs,
    secretOutputs,
    warnings: logged.warnings,
    transforms,
  };
  // An error thrown inside an apply (e.g. a refused CA key change) rejects the outputs and
  // registrations that depend on it; the Pulumi runtime fails the program on it, and so do we.
  const onRejection = (reason: unknown) => {
    errors.push(reason);
    fail(reason);
  };
  process.on("unhandledRejection", onRejection);
  const traces = shortStackTraces();
  try {
    const file = require.resolve(program);
    delete require.cache[file];
    let exported: Record<string, unknown>;
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      exported = require(file) as Record<string, unknown>;
    } catch (error) {
      await settleRegistrations(() => resources.length + errors.length);
      return { run, error };
    }

    try {
      for (const [name, value] of Object.entries(exported)) {
        if (pulumi.Output.isInstance(value)) {
          outputs[name] = await Promise.race([outputValue(value), failure]);
          if (await pulumi.isSecret(value)) secretOutputs.push(name);
        } else {
          outputs[name] = value;
        }
      }
    } catch (error) {
      return { run, error };
    }
    await settleRegistrations(() => resources.length + errors.length);
    return errors.length > 0 ? { run, error: errors[0] } : { run };
  } finally {
    traces.restore();
    process.off("unhandledRejection", onRejection);
    logged.restore();
  }
}

const stackRuns = new Map<StackName, Promise<ProgramRun>>();

/**
 * Runs one shipped stack, once per process (worker): each call gets its own copy, so a test may
 * change what it gets. The keys are the same in every copy; a test that needs a fresh run (new
 * keys, a renewal) calls runProgram.
 */
export async function runStack(stack: StackName): Promise<ProgramRun> {
  let run = stackRuns.get(stack);
  if (!run) {
    run = runProgram(stackConfig(stack), stack);
    stackRuns.set(stack, run);
  }
  return structuredClone(await run);
}

/** Kubernetes objects of a run, with helpers to find them by kind and `metadata.name`. */
export function kubernetesObjects(run: ProgramRun): Registered[] {
  return run.resources.filter(
    (r) => r.type.startsWith("kubernetes:") && r.type !== "pulumi:providers:kubernetes",
  );
}

/** Kubernetes kind of a type token: `kubernetes:apps/v1:Deployment` -> Deployment. */
export function kindOf(type: string): string {
  return type.slice(type.lastIndexOf(":") + 1);
}

export function metadataName(r: Registered): string {
  const meta = r.inputs.metadata as { name?: unknown } | undefined;
  return typeof meta?.name === "string" ? meta.name : "";
}

/** The Kubernetes object of this kind and `metadata.name`; throws if absent or ambiguous. */
export function findObject(run: ProgramRun, kind: string, name: string): Registered {
  const found = kubernetesObjects(run).filter(
    (r) => kindOf(r.type) === kind && metadataName(r) === name,
  );
  if (found.length !== 1)
    throw new Error(`expected one ${kind} named ${name}, found ${found.length}`);
  return found[0];
}

/** The versioned Envoy ConfigMap (`<service>-envoy-<content hash>`) of one service. */
export function envoyConfigMapOf(run: ProgramRun, service: string): Registered {
  const found = kubernetesObjects(run).filter(
    (r) =>
      kindOf(r.type) === "ConfigMap" &&
      new RegExp(`^${service}-envoy-[0-9a-f]{10}$`).test(metadataName(r)),
  );
  if (found.length !== 1)
    throw new Error(`expected one Envoy ConfigMap of ${service}, found ${found.length}`);
  return found[0];
}

/** All resources of one type token. */
export function ofType(run: ProgramRun, type: string): Registered[] {
  return run.resources.filter((r) => r.type === type);
}
