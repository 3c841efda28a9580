/**
 * A model of what Envoy's overload manager does to a request arriving on each listener of a
 * bootstrap, at a given heap pressure (heap in use / the fixed_heap monitor's ceiling).
 *
 * From Envoy's source and docs: the overload manager refreshes resource pressure and sets each
 * action active while a threshold trigger's value is reached; with
 * `envoy.overload_actions.stop_accepting_requests` active, the HTTP connection manager answers
 * new requests with 503 (overload manager docs). A listener with `bypass_overload_manager` gets
 * the NullOverloadManager instead, whose actions are never active
 * (extensions/filters/network/http_connection_manager/config.cc, server/null_overload_manager.h),
 * as Envoy's own admin listener does. With `envoy.overload_actions.reject_incoming_connections`
 * active a listener closes each connection as it accepts it (overload manager docs); a listener
 * with bypass_overload_manager "bypasses configured overload manager actions" (listener.proto).
 */
import { Bootstrap } from "../../components/envoy/types";

const STOP_ACCEPTING_REQUESTS = "envoy.overload_actions.stop_accepting_requests";
const REJECT_INCOMING_CONNECTIONS = "envoy.overload_actions.reject_incoming_connections";

function actionActive(bootstrap: Bootstrap, name: string, pressure: number): boolean {
  const action = bootstrap.overload_manager?.actions.find((a) => a.name === name);
  return action?.triggers.some((t) => pressure >= t.threshold.value) ?? false;
}

/** Per listener name: whether a new request is served (true) or refused with 503 (false). */
export function servedUnderPressure(
  bootstrap: Bootstrap,
  pressure: number,
): Record<string, boolean> {
  return byListener(bootstrap, actionActive(bootstrap, STOP_ACCEPTING_REQUESTS, pressure));
}

/** Per listener name: whether a new connection is kept (true) or closed on accept (false). */
export function acceptsConnectionsUnderPressure(
  bootstrap: Bootstrap,
  pressure: number,
): Record<string, boolean> {
  return byListener(bootstrap, actionActive(bootstrap, REJECT_INCOMING_CONNECTIONS, pressure));
}

function byListener(bootstrap: Bootstrap, active: boolean): Record<string, boolean> {
  return Object.fromEntries(
    bootstrap.static_resources.listeners.map((l) => [
      l.name,
      !active || l.bypass_overload_manager === true,
    ]),
  );
}
