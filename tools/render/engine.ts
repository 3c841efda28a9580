/**
 * ENGINE SHIM (product code for `npm run render` and `npm run bench`, not a test harness).
 *
 * Runs index.ts the way `pulumi up` would for one stack, but with no Pulumi CLI, no state and no
 * cluster: `pulumi.runtime.setMocks` stands in for the engine, and every resource the program
 * registers is recorded (type, name, inputs with secrets unwrapped). A resource's state is what a
 * caller-supplied stand-in answers for its type (the render answers `tls:*` with
 * throwaway-tls.ts), or else its inputs, as a provider that changes nothing would.
 *
 * Everything that couples this project to Pulumi internals lives in this file, on purpose:
 * - `pulumi.runtime.isRpcSecret`/`unwrapRpcSecret`: mocks receive secret inputs still wrapped in
 *   the RPC secret envelope, where a provider would see the plain value.
 * - `waitForRPCs` (runtime/settings.ts, marked @internal, so absent from the typings): the call
 *   the Pulumi language host itself makes to know that every registration has finished. A program
 *   registers resources long after `require` returns (whenever the outputs they depend on
 *   resolve), so without it the run would have to guess with timers.
 * If an upgrade of @pulumi/pulumi breaks either, fix it here; nothing else touches them.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import * as pulumi from "@pulumi/pulumi";
import { parse as parseYaml } from "yaml";
import { PROJECT } from "../../components/config";

/** The project folder (where index.ts and the Pulumi.<stack>.yaml files are). */
export const PROJECT_ROOT = path.resolve(__dirname, "../..");
const PROGRAM = path.join(PROJECT_ROOT, "index.ts");

/** One resource the program registered. */
export interface Registered {
  /** Type token, e.g. `kubernetes:apps/v1:Deployment`. */
  type: string;
  /** Pulumi resource name (not the Kubernetes `metadata.name`). */
  name: string;
  /** False for component resources. */
  custom: boolean;
  /** Inputs as the provider would receive them: resolved, secrets unwrapped. */
  inputs: Record<string, unknown>;
}

/** Answers a resource registration with the state a provider would return. */
export type StandIn = (resource: {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
}) => Promise<Record<string, unknown>>;

export interface RunOptions {
  /** Stack name (seen by the program as `pulumi.getStack()`). */
  stack: string;
  /** Flat `project:key` -> string config, as the engine passes it (see stackConfigFromFile). */
  config: Record<string, string>;
  /** Stand-ins by type token; types without one get their inputs back as state. */
  standIns?: Record<string, StandIn>;
}

export interface ProgramRun {
  stack: string;
  /** Every resource in registration order. */
  resources: Registered[];
  /** What the program logged as warnings, as `pulumi preview` would show them. */
  warnings: string[];
}

/** Thrown for config the shim cannot pass to the program. */
export class EngineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "EngineError";
  }
}

/**
 * Mocks receive secret inputs still wrapped in the RPC envelope; providers see the plain value.
 * (The test harness unwraps the same way.)
 */
export function unwrapSecrets(value: unknown): unknown {
  if (pulumi.runtime.isRpcSecret(value))
    return unwrapSecrets(pulumi.runtime.unwrapRpcSecret(value));
  if (Array.isArray(value)) return value.map(unwrapSecrets);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, unwrapSecrets(v)]));
  }
  return value;
}

/** The internal runtime call that waits until no resource RPC is outstanding (see above). */
function waitForRegistrations(): Promise<void> {
  const runtime = pulumi.runtime as unknown as { waitForRPCs?: () => Promise<void> };
  if (typeof runtime.waitForRPCs !== "function") {
    throw new EngineError(
      "this @pulumi/pulumi has no runtime.waitForRPCs: update tools/render/engine.ts for it",
    );
  }
  return runtime.waitForRPCs();
}

/**
 * Collects what the program passes to `pulumi.log.warn` instead of printing it, until `restore`:
 * under mocks the runtime writes warnings to the console, where a passing test run would show
 * them as if something had failed.
 */
export function captureWarnings(): { warnings: string[]; restore(): void } {
  const warnings: string[] = [];
  const warn = pulumi.log.warn;
  pulumi.log.warn = (message: string) => {
    warnings.push(message);
    return Promise.resolve();
  };
  return { warnings, restore: () => (pulumi.log.warn = warn) };
}

/**
 * Keeps one frame per stack trace until `restore`. Pulumi's runtime records a trace on every
 * promise it makes (runtime/debuggable.js, for its leak report), and tsx's source maps resolve
 * each frame: a fifth of a mocked run's CPU, for traces nobody reads (the render CLI and the tests
 * report a run's errors by message). The test harness runs programs the same way.
 */
export function shortStackTraces(): { restore(): void } {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 1;
  return { restore: () => (Error.stackTraceLimit = limit) };
}

/**
 * Resolves once the program has stopped registering: no resource RPC outstanding, and a round
 * adds nothing to `count` (registrations can start further ones as outputs resolve). The test
 * harness waits the same way.
 */
export async function settleRegistrations(count: () => number): Promise<void> {
  for (let seen = -1; seen !== count();) {
    seen = count();
    await waitForRegistrations();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/**
 * Reads a `Pulumi.<stack>.yaml` into the flat config map the engine would pass: keys without a
 * namespace belong to the project, structured values are JSON. Encrypted (`secure:`) values
 * cannot be decrypted without the Pulumi CLI, so they are refused by name.
 */
export function stackConfigFromFile(file: string): Record<string, string> {
  const doc = parseYaml(fs.readFileSync(file, "utf8")) as { config?: unknown } | null;
  const config = doc?.config ?? {};
  if (typeof config !== "object" || Array.isArray(config))
    throw new EngineError(`${file}: "config" must be a map of keys to values`);
  const flat: Record<string, string> = {};
  for (const [key, value] of Object.entries(config as Record<string, unknown>)) {
    const fullKey = key.includes(":") ? key : `${PROJECT}:${key}`;
    if (value !== null && typeof value === "object" && "secure" in value) {
      throw new EngineError(
        `${file}: ${fullKey} is an encrypted (secure) value, which only the Pulumi CLI can decrypt`,
      );
    }
    flat[fullKey] = typeof value === "string" ? value : JSON.stringify(value);
  }
  return flat;
}

/**
 * Runs index.ts for one stack and resolves once every resource has registered. Rejects with the
 * program's own error (e.g. a MeshConfigError) or a stand-in's.
 */
export async function runProgram(options: RunOptions): Promise<ProgramRun> {
  const resources: Registered[] = [];
  const errors: unknown[] = [];
  const standIns = options.standIns ?? {};

  pulumi.runtime.setAllConfig(options.config);
  await pulumi.runtime.setMocks(
    {
      async newResource(args) {
        try {
          const inputs = unwrapSecrets(args.inputs) as Record<string, unknown>;
          const standIn = standIns[args.type];
          const state = standIn
            ? await standIn({ type: args.type, name: args.name, inputs })
            : { ...inputs };
          resources.push({ type: args.type, name: args.name, custom: args.custom ?? true, inputs });
          return { id: args.custom === false ? undefined : `${args.name}-id`, state };
        } catch (err) {
          errors.push(err);
          throw err;
        }
      },
      call(args) {
        // The program invokes no provider function; an unexpected one must not pass silently.
        throw new EngineError(`engine shim: unexpected call to ${args.token}`);
      },
    },
    PROJECT,
    options.stack,
    false,
    // What a DIY backend calls every stack's organization; the program references its own stack.
    "organization",
  );

  // A failed registration also rejects promises nobody awaits (the runtime does so on purpose, for
  // the language host to report): collect those here instead of letting them end the process.
  const onRejection = (reason: unknown) => errors.push(reason);
  process.on("unhandledRejection", onRejection);
  const logged = captureWarnings();
  const traces = shortStackTraces();
  try {
    const program = require.resolve(PROGRAM);
    delete require.cache[program];
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    require(program);

    await settleRegistrations(() => resources.length + errors.length);
  } finally {
    traces.restore();
    process.off("unhandledRejection", onRejection);
    logged.restore();
  }
  if (errors.length > 0) throw errors[0];
  return { stack: options.stack, resources, warnings: logged.warnings };
}
