/**
 * A model of how Envoy's router times a request, run on the route and connection-manager
 * settings the program generates. It follows Envoy's API reference:
 * - RouteAction.timeout (route_components.proto): "the time that spans between the point at
 *   which the entire downstream request (i.e. end-of-stream) has been processed and when the
 *   upstream response has been completely processed. A value of 0 will disable the route's
 *   timeout"; default 15 s. Before response headers it answers 504 (flag UT); once the response
 *   has started, the stream is reset mid-body.
 * - RouteAction.idle_timeout: the stream may be idle (no headers or data in either direction)
 *   this long; it overrides the connection manager's stream_idle_timeout, 0 disables both.
 * - HttpConnectionManager.stream_idle_timeout: the same, for routes that set none (default 5 m).
 * Times are seconds after the request has been fully sent.
 */
import { Duration } from "../../components/envoy";

/** What the upstream sends back: response headers, then body chunks, then the end. */
export interface ResponseTimeline {
  headersAt: number;
  /** Times of body chunks (ascending). */
  chunksAt: number[];
  endAt: number;
}

export type Outcome =
  | { kind: "completed" }
  | { kind: "504 UT"; at: number }
  | { kind: "reset mid-body (UT)"; at: number }
  | { kind: "idle timeout (SI)"; at: number };

const seconds = (d: Duration | undefined): number | undefined =>
  d === undefined ? undefined : Number(d.slice(0, -1));

export function routeOutcome(
  /** A route without `timeout` gets Envoy's default of 15 s. */
  route: { timeout?: Duration; idle_timeout?: Duration },
  hcm: { stream_idle_timeout: Duration },
  response: ResponseTimeline,
): Outcome {
  const timeout = seconds(route.timeout) ?? 15;
  const idle = seconds(route.idle_timeout) ?? seconds(hcm.stream_idle_timeout) ?? 300;

  // The idle timer restarts at every event on the stream.
  const events = [0, response.headersAt, ...response.chunksAt, response.endAt];
  let idleFiresAt: number | undefined;
  if (idle > 0) {
    for (let i = 1; i < events.length; i++) {
      if (events[i] - events[i - 1] > idle) {
        idleFiresAt = events[i - 1] + idle;
        break;
      }
    }
  }
  const routeFiresAt = timeout > 0 && response.endAt > timeout ? timeout : undefined;

  const first = Math.min(idleFiresAt ?? Infinity, routeFiresAt ?? Infinity);
  if (first === Infinity) return { kind: "completed" };
  if (first === routeFiresAt)
    return response.headersAt < first
      ? { kind: "reset mid-body (UT)", at: first }
      : { kind: "504 UT", at: first };
  return { kind: "idle timeout (SI)", at: first };
}
