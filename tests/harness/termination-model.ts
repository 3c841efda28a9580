/**
 * A model of how the kubelet stops a pod, run on the pod spec the program generates, to show
 * that a rollout drops no request. It follows:
 * - kubernetes pkg/kubelet/kuberuntime/kuberuntime_container.go (killContainersWithSyncResult,
 *   killContainer): every container's preStop hook starts when the pod starts terminating, a
 *   native sidecar's too; a hook is cut off when the grace period runs out; SIGTERM follows the
 *   container's own hook; the stop window after SIGTERM is what is left of the grace period, but
 *   never under minimumGracePeriodInSeconds (2 s), then SIGKILL.
 * - kuberuntime_termination_order.go and KEP-753: a native sidecar (an init container with
 *   restartPolicy Always) waits for every main container to exit before its SIGTERM, unless the
 *   grace period has run out first.
 * - Envoy (source/server/server.cc): on SIGTERM it exits at once, closing its listeners.
 * - The pod's endpoints: kube-proxy stops routing new connections to it some seconds after it
 *   starts terminating (an assumption the caller passes: endpointRemovalSeconds).
 * Times are seconds since the pod started terminating.
 */
import { EnvoyStopPlan, envoyStopScript } from "../../components/shutdown";

/** The parts of a container the model reads. */
export interface ModelContainer {
  name: string;
  restartPolicy?: string;
  lifecycle?: {
    preStop?: { sleep?: { seconds: number }; exec?: { command: string[] } };
  };
}
export interface ModelPod {
  terminationGracePeriodSeconds?: number;
  initContainers?: ModelContainer[];
  containers: ModelContainer[];
}

/** What a preStop hook does, as far as timing goes. */
export type Hook =
  | { kind: "none" }
  /** `inImage`: an exec of the image's `sleep`, rather than the kubelet's sleep action. */
  | { kind: "sleep"; seconds: number; inImage: boolean }
  /** Envoy's stop script: starts the drain at once, then sleeps the plan's holdSeconds. */
  | { kind: "envoy-drain"; plan: EnvoyStopPlan };

/**
 * Reads a container's preStop hook. A bash hook is recognised only when it is exactly the
 * script `envoyStopScript` renders for one of the given plans (tests/shutdown.spec.ts runs that
 * script in bash to show it does what the model assumes); anything else is refused, so the
 * model never guesses. Envoy's own image has `sleep` (Ubuntu coreutils).
 */
export function hookOf(container: ModelContainer, plans: EnvoyStopPlan[]): Hook {
  const preStop = container.lifecycle?.preStop;
  if (!preStop) return { kind: "none" };
  if (preStop.sleep) return { kind: "sleep", seconds: preStop.sleep.seconds, inImage: false };
  const command = preStop.exec?.command ?? [];
  if (command.length === 2 && command[0] === "sleep" && /^[0-9]+$/.test(command[1]))
    return { kind: "sleep", seconds: Number(command[1]), inImage: true };
  if (command.length === 3 && command[0] === "/bin/bash" && command[1] === "-c") {
    const plan = plans.find((p) => envoyStopScript(p) === command[2]);
    if (plan) return { kind: "envoy-drain", plan };
  }
  throw new Error(
    `${container.name}: the model does not know the preStop hook ${JSON.stringify(preStop)}`,
  );
}

export interface Assumptions {
  /** Seconds until no node sends new connections to the pod. */
  endpointRemovalSeconds: number;
  /** Seconds the app needs from its SIGTERM to exit, finishing the requests it holds. */
  appStopSeconds: number;
  /**
   * Whether the app's image has a `sleep` binary (default yes). Without one an `exec sleep`
   * hook fails at once, the kubelet records FailedPreStopHook and sends SIGTERM.
   */
  appImageHasSleep?: boolean;
}

export interface Timeline {
  grace: number;
  /** When Envoy started telling callers to reconnect; undefined if it never did. */
  drainStart?: number;
  drainSeconds: number;
  /** The app stops accepting connections at its SIGTERM. */
  appSigterm: number;
  appExit: number;
  envoySigterm: number;
  /** Envoy accepts connections until it exits. */
  envoyExit: number;
  /** Containers that were SIGKILLed. */
  killed: string[];
}

const MIN_STOP_WINDOW = 2;

/** Runs the kubelet's termination of a pod with one app container and one Envoy sidecar. */
export function terminate(pod: ModelPod, plans: EnvoyStopPlan[], assume: Assumptions): Timeline {
  const grace = pod.terminationGracePeriodSeconds ?? 30;
  const app = pod.containers.find((c) => c.name === "app");
  const all = [...(pod.initContainers ?? []), ...pod.containers];
  const envoy = all.find((c) => c.name === "envoy");
  if (!envoy) throw new Error("the model needs an envoy container");
  const native = (pod.initContainers ?? []).includes(envoy) && envoy.restartPolicy === "Always";
  const killed: string[] = [];

  /** SIGTERM at `at`: the container exits after `needs` seconds or is killed at the deadline. */
  const stop = (name: string, at: number, needs: number): number => {
    const deadline = at + Math.max(grace - at, MIN_STOP_WINDOW);
    if (at + needs > deadline) {
      killed.push(name);
      return deadline;
    }
    return at + needs;
  };

  const appHook: Hook = app ? hookOf(app, plans) : { kind: "none" };
  if (appHook.kind === "envoy-drain") throw new Error("the app runs Envoy's stop script");
  const appSleeps =
    appHook.kind === "sleep" && (!appHook.inImage || assume.appImageHasSleep !== false);
  // A pod of Envoy alone (the gateway): Envoy is what serves, so it stands in for the app.
  const appSigterm = Math.min(appSleeps ? appHook.seconds : 0, grace);
  const appExit = app ? stop("app", appSigterm, assume.appStopSeconds) : 0;

  const envoyHook = hookOf(envoy, plans);
  let envoyHookEnd: number;
  let drainStart: number | undefined;
  let drainSeconds = 0;
  if (envoyHook.kind === "envoy-drain") {
    // The script starts the drain at once, then sleeps holdSeconds.
    drainStart = 0;
    drainSeconds = envoyHook.plan.drainSeconds;
    envoyHookEnd = envoyHook.plan.holdSeconds;
  } else {
    envoyHookEnd = envoyHook.kind === "sleep" ? envoyHook.seconds : 0;
  }
  envoyHookEnd = Math.min(envoyHookEnd, grace);
  const envoySigterm = native ? Math.min(Math.max(envoyHookEnd, appExit), grace) : envoyHookEnd;
  const envoyExit = stop("envoy", envoySigterm, 0);

  return {
    grace,
    drainSeconds,
    ...(drainStart !== undefined ? { drainStart } : {}),
    appSigterm: app ? appSigterm : envoySigterm,
    appExit: app ? appExit : envoyExit,
    envoySigterm,
    envoyExit,
    killed,
  };
}

/** What would drop or break requests in this timeline; empty when nothing would. */
export function terminationProblems(t: Timeline, assume: Assumptions): string[] {
  const problems: string[] = [];
  const e = assume.endpointRemovalSeconds;
  if (t.appSigterm < e)
    problems.push(
      `still an endpoint until ${e}s, but the app stops accepting at ${t.appSigterm}s: new connections fail`,
    );
  if (t.envoyExit < e)
    problems.push(`still an endpoint until ${e}s, but Envoy exits at ${t.envoyExit}s`);
  if (t.envoyExit < t.appExit)
    problems.push(
      `Envoy exits at ${t.envoyExit}s while the app works until ${t.appExit}s: its responses are cut`,
    );
  if (t.drainStart === undefined)
    problems.push("Envoy never tells callers to reconnect: pooled connections meet a closed app");
  else if (t.drainStart + t.drainSeconds > t.appSigterm)
    problems.push(
      `callers are still being told to reconnect (until ${t.drainStart + t.drainSeconds}s) when the app stops accepting at ${t.appSigterm}s`,
    );
  if (t.killed.length > 0)
    problems.push(`${t.killed.join(", ")} SIGKILLed at the end of the ${t.grace}s grace period`);
  return problems;
}
