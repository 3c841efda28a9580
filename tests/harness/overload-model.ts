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
 * as Envoy's own admin listener does.
 */
import { Bootstrap } from "../../components/envoy/types";

const STOP_ACCEPTING_REQUESTS = "envoy.overload_actions.stop_accepting_requests";

/** Per listener name: whether a new request is served (true) or refused with 503 (false). */
export function servedUnderPressure(
  bootstrap: Bootstrap,
  pressure: number,
): Record<string, boolean> {
  const stop = bootstrap.overload_manager?.actions.find((a) => a.name === STOP_ACCEPTING_REQUESTS);
  const active = stop?.triggers.some((t) => pressure >= t.threshold.value) ?? false;
  return Object.fromEntries(
    bootstrap.static_resources.listeners.map((l) => [
      l.name,
      !active || l.bypass_overload_manager === true,
    ]),
  );
}
