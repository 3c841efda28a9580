/**
 * How a mesh pod stops without dropping requests. Pure functions: the timing plan, and the
 * preStop hooks that carry it out.
 *
 * What the kubelet does (kubernetes pkg/kubelet/kuberuntime killContainersWithSyncResult and
 * kuberuntime_termination_order.go; KEP-753): every container's preStop hook, a native sidecar's
 * included, starts when the pod starts terminating; a container gets SIGTERM when its own hook
 * has returned, and a native sidecar only once every main container has also exited. Hooks and
 * waits share the pod's terminationGracePeriodSeconds; after it, whatever runs gets SIGTERM with
 * a 2 s window before SIGKILL. Meanwhile the endpoint controllers mark the pod's endpoints
 * terminating and kube-proxy stops sending new connections, which takes a few seconds; kube-proxy
 * leaves established connections alone, so callers' pooled keep-alive connections keep arriving
 * until the server asks them to close.
 *
 * What Envoy does (source/server/server.cc, admin listeners_handler.cc; "Draining" in Envoy's
 * docs): on SIGTERM it shuts down at once, without draining (--drain-time-s only paces drains).
 * `POST /drain_listeners?graceful` starts the drain sequence: for --drain-time-s the HTTP
 * connection managers answer a rising share (--drain-strategy gradual) of requests with
 * `Connection: close` or an HTTP/2 GOAWAY, while listeners keep accepting; `skip_exit` keeps
 * them accepting after that, until SIGTERM; `inboundonly` leaves the outbound listener, which the
 * app still needs while it stops, alone. Mutating admin endpoints answer a GET with 405, so the
 * hook must POST; the official image has bash but no curl, hence bash's /dev/tcp.
 *
 * The plan, from the moment the pod starts terminating:
 * - Envoy's hook starts the graceful inbound drain at once, then holds Envoy: for drainSeconds
 *   as a native sidecar (the kubelet then also waits for the app to exit), and as a plain
 *   container until 2 s before the grace period ends, because nothing in Envoy's container can
 *   see when the app has exited (its outbound calls during shutdown need Envoy until then);
 * - the app's hook sleeps preStopSeconds (>= drainSeconds, and longer than endpoint
 *   propagation), so it serves while callers move away; then the app gets SIGTERM.
 */
import * as k8s from "@pulumi/kubernetes";
import * as pulumi from "@pulumi/pulumi";
import {
  EnvoySettings,
  KUBERNETES_FEATURES,
  MIN_STOP_WINDOW_SECONDS,
  ServiceModel,
} from "./config";

/** The admin call that starts Envoy's graceful drain of inbound listeners only. */
export const DRAIN_PATH = "/drain_listeners?graceful&skip_exit&inboundonly";

/** What the pod does when it is told to stop. */
export interface ShutdownPlan {
  /** Seconds the app's preStop hook sleeps before its SIGTERM; 0 where the mesh has no app. */
  appPreStopSeconds: number;
  /** Envoy's preStop hook. */
  envoy: EnvoyStopPlan;
  terminationGracePeriodSeconds: number;
}

/** Envoy's preStop hook: start the drain, then hold Envoy this long. */
export interface EnvoyStopPlan {
  adminPort: number;
  /** Envoy's --drain-time-s: how long the drain takes to reach every connection. */
  drainSeconds: number;
  /** Seconds the hook holds Envoy after starting the drain (at least drainSeconds). */
  holdSeconds: number;
}

export { MIN_STOP_WINDOW_SECONDS };

export function shutdownPlan(service: ServiceModel, envoy: EnvoySettings): ShutdownPlan {
  const grace = service.terminationGracePeriodSeconds;
  return {
    // An adopted workload's app stops as its owner says.
    appPreStopSeconds: service.adopted ? 0 : service.preStopSeconds,
    envoy: {
      adminPort: envoy.ports.admin,
      drainSeconds: envoy.drainSeconds,
      holdSeconds:
        envoy.sidecarMode === "native"
          ? envoy.drainSeconds
          : Math.max(envoy.drainSeconds, grace - MIN_STOP_WINDOW_SECONDS),
    },
    terminationGracePeriodSeconds: grace,
  };
}

/**
 * The app's preStop: the kubelet's own sleep action where the cluster has it (no binary needed
 * in the image), else `sleep` run in the app's image, which must then provide it.
 */
export function appPreStop(
  plan: ShutdownPlan,
  kubernetesMinor: number,
): pulumi.Unwrap<k8s.types.input.core.v1.LifecycleHandler> {
  return kubernetesMinor >= KUBERNETES_FEATURES.preStopSleep
    ? { sleep: { seconds: plan.appPreStopSeconds } }
    : { exec: { command: ["sleep", String(plan.appPreStopSeconds)] } };
}

/** The bash program Envoy's preStop hook runs (tested by running it against a local server). */
export function envoyStopScript(plan: EnvoyStopPlan): string {
  return [
    "# POST (mutating admin endpoints refuse GET) over bash's /dev/tcp: the image has no curl.",
    `if exec 3<>/dev/tcp/127.0.0.1/${plan.adminPort}; then`,
    `  printf 'POST ${DRAIN_PATH} HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nContent-Length: 0\\r\\nConnection: close\\r\\n\\r\\n' >&3`,
    "  # Wait for the answer, but never hang the hook on a stuck admin API.",
    "  read -r -t 5 _ <&3",
    "  exec 3<&-",
    "fi",
    `sleep ${plan.holdSeconds}`,
    "",
  ].join("\n");
}

export function envoyPreStop(
  plan: ShutdownPlan,
): pulumi.Unwrap<k8s.types.input.core.v1.LifecycleHandler> {
  return { exec: { command: ["/bin/bash", "-c", envoyStopScript(plan.envoy)] } };
}
