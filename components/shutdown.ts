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
 * - Envoy's hook starts the graceful inbound drain at once, then waits at least drainSeconds and
 *   until the app has stopped (its port closed, no request in flight through Envoy);
 * - the app's hook sleeps preStopSeconds (>= drainSeconds, and longer than endpoint
 *   propagation), so it serves while callers move away; then the app gets SIGTERM;
 * - Envoy gets SIGTERM after its hook, which in both sidecar modes is after the app has stopped.
 */
import * as k8s from "@pulumi/kubernetes";
import { EnvoySettings, KUBERNETES_FEATURES, ServiceModel } from "./config";
import { LISTENER_NAMES } from "./envoy/spec";

/** The admin call that starts Envoy's graceful drain of inbound listeners only. */
export const DRAIN_PATH = "/drain_listeners?graceful&skip_exit&inboundonly";

/** What the pod does when it is told to stop. */
export interface ShutdownPlan {
  /** Seconds the app's preStop hook sleeps before its SIGTERM. */
  appPreStopSeconds: number;
  /** Envoy's preStop hook. */
  envoy: EnvoyStopPlan;
  terminationGracePeriodSeconds: number;
}

/** Envoy's preStop hook: drain, then wait for the app. */
export interface EnvoyStopPlan {
  adminPort: number;
  /** The app's port; the hook waits until nothing listens on it. */
  appPort: number;
  /** Envoy's --drain-time-s: the hook waits at least this long after starting the drain. */
  drainSeconds: number;
  /** Envoy stats counting requests in flight through the sidecar; the hook waits for all 0. */
  activeRequestStats: string[];
}

export function shutdownPlan(service: ServiceModel, envoy: EnvoySettings): ShutdownPlan {
  const listeners = [
    LISTENER_NAMES.inbound,
    ...(service.calls.length > 0 ? [LISTENER_NAMES.outbound] : []),
  ];
  return {
    appPreStopSeconds: service.preStopSeconds,
    envoy: {
      adminPort: envoy.ports.admin,
      appPort: service.port,
      drainSeconds: envoy.drainSeconds,
      activeRequestStats: listeners.map((l) => `http.${l}.downstream_rq_active`),
    },
    terminationGracePeriodSeconds: service.terminationGracePeriodSeconds,
  };
}

/**
 * The app's preStop: the kubelet's own sleep action where the cluster has it (no binary needed
 * in the image), else `sleep` run in the app's image, which must then provide it.
 */
export function appPreStop(
  plan: ShutdownPlan,
  kubernetesMinor: number,
): k8s.types.input.core.v1.LifecycleHandler {
  return kubernetesMinor >= KUBERNETES_FEATURES.preStopSleep
    ? { sleep: { seconds: plan.appPreStopSeconds } }
    : { exec: { command: ["sleep", String(plan.appPreStopSeconds)] } };
}

/** The bash program Envoy's preStop hook runs (tested by running it against local servers). */
export function envoyStopScript(plan: EnvoyStopPlan): string {
  const busy = plan.activeRequestStats
    .map((stat) => `    *"${stat}: "[1-9]*) return 1 ;;`)
    .join("\n");
  return [
    "set -u",
    "# One admin request over bash's /dev/tcp (the image has no curl); prints the response.",
    "admin() {",
    `  exec 3<>/dev/tcp/127.0.0.1/${plan.adminPort} || return 1`,
    '  printf \'%s %s HTTP/1.1\\r\\nHost: 127.0.0.1\\r\\nContent-Length: 0\\r\\nConnection: close\\r\\n\\r\\n\' "$1" "$2" >&3',
    "  while IFS= read -r line <&3; do printf '%s\\n' \"$line\"; done",
    "  exec 3<&-",
    "}",
    "# No request in flight through the sidecar. Pattern matching only: the root filesystem is read-only.",
    "idle() {",
    "  local stats",
    "  stats=$(admin GET '/stats?filter=downstream_rq_active')",
    '  case "$stats" in',
    busy,
    "  esac",
    "}",
    `app_listening() { (exec 4<>/dev/tcp/127.0.0.1/${plan.appPort}) 2>/dev/null; }`,
    `admin POST '${DRAIN_PATH}' >/dev/null`,
    "start=$SECONDS",
    `until (( SECONDS - start >= ${plan.drainSeconds} )) && ! app_listening && idle; do sleep 1; done`,
    "",
  ].join("\n");
}

export function envoyPreStop(plan: ShutdownPlan): k8s.types.input.core.v1.LifecycleHandler {
  return { exec: { command: ["/bin/bash", "-c", envoyStopScript(plan.envoy)] } };
}
