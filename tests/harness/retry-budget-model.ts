/**
 * A model of what happens to the requests in flight on a pod that dies, read from a generated
 * cluster's circuit breaker thresholds, written from Envoy's source:
 *
 * - retry_state_impl.cc shouldRetry: a request that may retry (its route's retry_on matches, it
 *   has attempts left) asks the cluster's retries() resource canCreate(); no: 503 (the
 *   upstream_rq_retry_overflow stat), yes: inc() and a backoff timer. The count goes down only
 *   when the retried attempt's outcome is decided or the request ends (resetRetry at the next
 *   shouldRetry, or the retry state's end), so it counts retries waiting or in flight.
 * - resource_manager_impl.h RetryBudgetImpl: with a retry_budget the limit is
 *   max(min_retry_concurrency, budget_percent / 100 * (active + pending requests)) and
 *   max_retries is ignored; without one the limit is max_retries (Envoy's default 3).
 *
 * The pod's connections reset together, so every retry is asked for before any of them ends
 * (the worst case); each reset request has left the cluster's active count first.
 */

type Json = Record<string, unknown>;

export interface PodDeath {
  /** Requests in flight on the pod that dies (idempotent: retry_on `reset` applies). */
  inFlight: number;
  /** Requests in flight on the cluster's other pods at that moment. */
  otherActive: number;
}

export function podDeath(
  thresholds: Json,
  death: PodDeath,
): { retried: number; refused: number; limitAtEnd: number } {
  const budget = thresholds.retry_budget as
    { budget_percent?: { value: number }; min_retry_concurrency?: number } | undefined;
  const limit = (active: number): number =>
    budget
      ? Math.max(
          budget.min_retry_concurrency ?? 3,
          Math.floor(((budget.budget_percent?.value ?? 20) / 100) * active),
        )
      : Number(thresholds.max_retries ?? 3);
  let active = death.otherActive + death.inFlight;
  let waiting = 0;
  let refused = 0;
  for (let i = 0; i < death.inFlight; i++) {
    active--; // the reset request leaves the pool before the router decides
    if (waiting < limit(active)) waiting++;
    else refused++;
  }
  return { retried: waiting, refused, limitAtEnd: limit(active) };
}
