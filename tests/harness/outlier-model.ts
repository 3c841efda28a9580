/**
 * A model of Envoy's outlier detector for the consecutive-error checks, read from a generated
 * cluster's `outlier_detection`, written from source/common/upstream/outlier_detection_impl.cc:
 *
 * - putHttpResponseCode: a 5xx adds to the host's consecutive-5xx count, a 502/503/504 also to its
 *   consecutive-gateway-failure count (another 5xx resets that one); anything else resets both.
 * - With split_external_local_origin_errors, connect failures, timeouts and resets count apart
 *   (consecutive_local_origin_failure), and a successful connect resets that count; without it
 *   they are turned into 503 (connect failure, reset) and 504 (timeout) and counted as replies.
 *   Every request that gets a connection reports the connect first (router/upstream_request.cc
 *   `onPoolReady`), so a reset or timeout after it starts that count again from one: only
 *   connect failures run up to the threshold.
 * - A count reaching its threshold (`==`) ejects when its enforcing_* percentage is met (our
 *   configs use 0 or 100, anything else throws) and the ejected share stays within
 *   max_ejection_percent; the count then starts again. An ejection lasts base_ejection_time times
 *   the host's number of ejections (Envoy lifts it at the next interval tick; the model at once).
 * - Success-rate ejection needs success_rate_minimum_hosts (5) hosts; the model throws where it
 *   could act (enforcing_success_rate not 0 and 5 or more hosts).
 *
 * An ejected host is not a valid override host for stateful sessions (Envoy's default override
 * statuses are HEALTHY and DEGRADED), so `pinnedHost` shows where a session lands.
 */

type Json = Record<string, unknown>;

export type Outcome =
  | { status: number }
  | { localOrigin: "connect-failure" | "timeout" | "reset" }
  | { localOrigin: "connect-success" };

interface HostState {
  consecutive5xx: number;
  gatewayFailures: number;
  localOriginFailures: number;
  ejections: number;
  ejectedUntil?: number;
}

function seconds(d: unknown, fallback: number): number {
  if (d === undefined) return fallback;
  if (typeof d !== "string" || !d.endsWith("s")) throw new Error(`model: duration ${String(d)}`);
  return Number(d.slice(0, -1));
}

function enforced(config: Json, key: string, fallback: 0 | 100): boolean {
  const v = config[key] ?? fallback;
  if (v !== 0 && v !== 100) throw new Error(`model: ${key} ${String(v)} is not 0 or 100`);
  return v === 100;
}

export class OutlierModel {
  private readonly hosts = new Map<string, HostState>();
  private readonly split: boolean;
  private readonly thresholds: { fivexx: number; gateway: number; localOrigin: number };
  private readonly enforce: { fivexx: boolean; gateway: boolean; localOrigin: boolean };
  private readonly baseEjection: number;
  private readonly maxEjectionPercent: number;

  constructor(config: Json, hostNames: string[]) {
    const known = new Set([
      "split_external_local_origin_errors",
      "consecutive_5xx",
      "enforcing_consecutive_5xx",
      "consecutive_gateway_failure",
      "enforcing_consecutive_gateway_failure",
      "consecutive_local_origin_failure",
      "enforcing_consecutive_local_origin_failure",
      "enforcing_success_rate",
      "interval",
      "base_ejection_time",
      "max_ejection_percent",
    ]);
    for (const key of Object.keys(config))
      if (!known.has(key)) throw new Error(`model: outlier_detection.${key} is not modelled`);
    if (enforced(config, "enforcing_success_rate", 100) && hostNames.length >= 5)
      throw new Error("model: success-rate ejection (5 or more hosts) is not modelled");
    this.split = config.split_external_local_origin_errors === true;
    // Envoy's defaults: 5 of each; gateway-failure enforcing 0, the others 100.
    this.thresholds = {
      fivexx: Number(config.consecutive_5xx ?? 5),
      gateway: Number(config.consecutive_gateway_failure ?? 5),
      localOrigin: Number(config.consecutive_local_origin_failure ?? 5),
    };
    this.enforce = {
      fivexx: enforced(config, "enforcing_consecutive_5xx", 100),
      gateway: enforced(config, "enforcing_consecutive_gateway_failure", 0),
      localOrigin: enforced(config, "enforcing_consecutive_local_origin_failure", 100),
    };
    this.baseEjection = seconds(config.base_ejection_time, 30);
    this.maxEjectionPercent = Number(config.max_ejection_percent ?? 10);
    for (const h of hostNames)
      this.hosts.set(h, {
        consecutive5xx: 0,
        gatewayFailures: 0,
        localOriginFailures: 0,
        ejections: 0,
      });
  }

  private host(name: string): HostState {
    const h = this.hosts.get(name);
    if (!h) throw new Error(`model: no host ${name}`);
    return h;
  }

  isEjected(name: string, now: number): boolean {
    const until = this.host(name).ejectedUntil;
    return until !== undefined && now < until;
  }

  private eject(name: string, enforce: boolean, now: number): void {
    if (!enforce || this.isEjected(name, now)) return;
    const ejected = [...this.hosts.keys()].filter((h) => this.isEjected(h, now)).length;
    if ((100 * (ejected + 1)) / this.hosts.size > this.maxEjectionPercent) return;
    const h = this.host(name);
    h.ejections++;
    h.ejectedUntil = now + this.baseEjection * h.ejections;
  }

  private reply(name: string, status: number, now: number): void {
    const h = this.host(name);
    if (status >= 500 && status < 600) {
      if (status >= 502 && status <= 504) {
        if (++h.gatewayFailures === this.thresholds.gateway) {
          this.eject(name, this.enforce.gateway, now);
          h.gatewayFailures = 0;
        }
      } else h.gatewayFailures = 0;
      if (++h.consecutive5xx === this.thresholds.fivexx) {
        this.eject(name, this.enforce.fivexx, now);
        h.consecutive5xx = 0;
      }
    } else {
      h.consecutive5xx = 0;
      h.gatewayFailures = 0;
    }
  }

  /** One request's result on `name` at time `now` (seconds). */
  record(name: string, outcome: Outcome, now = 0): void {
    if ("status" in outcome) return this.reply(name, outcome.status, now);
    const h = this.host(name);
    if (outcome.localOrigin === "connect-success") {
      if (this.split) h.localOriginFailures = 0;
      return;
    }
    if (!this.split) return this.reply(name, outcome.localOrigin === "timeout" ? 504 : 503, now);
    if (outcome.localOrigin !== "connect-failure") h.localOriginFailures = 0; // connected first
    if (++h.localOriginFailures === this.thresholds.localOrigin) {
      this.eject(name, this.enforce.localOrigin, now);
      h.localOriginFailures = 0;
    }
  }

  /** Where a session pinned to `pinned` goes: its pod while that is not ejected. */
  pinnedHost(pinned: string, now = 0): string | undefined {
    return this.isEjected(pinned, now) ? undefined : pinned;
  }
}
