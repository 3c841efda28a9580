/**
 * A model of one Envoy's connection pool towards one upstream cluster, for N long-lived streams
 * (an MCP session holds its SSE stream open): how many connections it opens, how many streams
 * wait and how many get 503, and an estimate of the memory they hold. Written from Envoy's docs
 * and source:
 *
 * - Connection pooling (intro/arch_overview/upstream/connection_pooling): HTTP/1.1 carries one
 *   request per connection at a time and opens connections up to the circuit breaker; HTTP/2
 *   multiplexes streams on a connection per host and opens another when one reaches the peer's
 *   max_concurrent_streams.
 * - Circuit breaking (intro/arch_overview/upstream/circuit_breaking) and conn_pool_base.cc: a
 *   stream that cannot be attached waits in the pending queue while max_pending_requests allows,
 *   else fails at once (503, flag UO); attaching checks max_requests, and a stream over it fails
 *   at once; no connection is opened past max_connections. A pending stream leaves the queue
 *   only when a connection frees up or the route's timeout fires: a streaming route has none, so
 *   behind open SSE streams it waits until its client gives up.
 * - Least-request balancing spreads streams evenly over the hosts (pods).
 *
 * Memory: the per-connection and per-stream figures are stated assumptions (BoringSSL's record
 * buffers and connection state; header maps and filter state), not measurements; the worst case
 * adds every buffer that flow control lets fill. The table is for comparing, not for sizing.
 */

import {
  breakerLimits,
  MESH_CONNECTION_BUFFER_BYTES,
  MESH_HTTP2,
} from "../../components/envoy/connections";

export const ESTIMATE = {
  /** One TLS connection: two 16 KiB record buffers and connection state. */
  tlsConnectionBytes: 40 * 1024,
  /** One request's state: headers, filter chain, stream info. */
  streamBytes: 8 * 1024,
} as const;

export interface PoolLimits {
  maxConnections: number;
  maxPendingRequests: number;
  maxRequests: number;
  /** HTTP/2 only: streams per connection (the peer's SETTINGS_MAX_CONCURRENT_STREAMS). */
  maxConcurrentStreams: number;
  /** What flow control lets one stream (HTTP/2) or connection (HTTP/1.1) buffer. */
  bufferBytesPerRequest: number;
  /** HTTP/2: the connection window caps what all streams of a connection buffer together. */
  connectionWindowBytes: number;
}

export interface PoolState {
  protocol: "http1" | "http2";
  sessions: number;
  connections: number;
  /** Streams being served. */
  active: number;
  /** Streams in the pending queue with no timeout: they hang. */
  waiting: number;
  /** Streams refused with 503 (UO). */
  refused: number;
  /** Estimated bytes: connection and stream state. */
  memoryBytes: number;
  /** Estimated bytes with every buffer flow control allows full. */
  worstCaseBytes: number;
}

/** N streams opened one after another, none ending, balanced over `hosts` pods. */
export function openStreams(
  protocol: "http1" | "http2",
  sessions: number,
  limits: PoolLimits,
  hosts: number,
): PoolState {
  const perHost = Array.from({ length: hosts }, () => ({ streams: 0, connections: 0 }));
  let connections = 0;
  let active = 0;
  let waiting = 0;
  let refused = 0;
  const capacity = protocol === "http1" ? 1 : limits.maxConcurrentStreams;
  for (let i = 0; i < sessions; i++) {
    // Least request: the host with the fewest active streams.
    const host = perHost.reduce((a, b) => (b.streams < a.streams ? b : a));
    const free = host.connections * capacity > host.streams;
    if (free || connections < limits.maxConnections) {
      if (active >= limits.maxRequests) {
        refused++;
        continue;
      }
      if (!free) {
        host.connections++;
        connections++;
      }
      host.streams++;
      active++;
    } else if (waiting < limits.maxPendingRequests) waiting++;
    else refused++;
  }
  const memoryBytes =
    connections * ESTIMATE.tlsConnectionBytes + (active + waiting) * ESTIMATE.streamBytes;
  const buffered =
    protocol === "http1"
      ? connections * limits.bufferBytesPerRequest
      : perHost.reduce(
          (sum, h) =>
            sum +
            Math.min(
              h.streams * limits.bufferBytesPerRequest,
              h.connections * limits.connectionWindowBytes,
            ),
          0,
        );
  return {
    protocol,
    sessions,
    connections,
    active,
    waiting,
    refused,
    memoryBytes,
    worstCaseBytes: memoryBytes + buffered,
  };
}

/** The smallest N at which a stream is refused (binary search: refusals grow with N). */
export function firstRefusal(
  protocol: "http1" | "http2",
  limits: PoolLimits,
  hosts: number,
): number {
  let lo = 1;
  let hi = 1;
  while (openStreams(protocol, hi, limits, hosts).refused === 0) hi *= 2;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (openStreams(protocol, mid, limits, hosts).refused > 0) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

const MIB = 1024 * 1024;
const mib = (bytes: number) => `${(bytes / MIB).toFixed(1)} MiB`;

/** The docs' table: one column group per (protocol, limits) setup, one row per N. */
export function poolTable(
  setups: { title: string; protocol: "http1" | "http2"; limits: PoolLimits }[],
  sessions: number[],
  hosts: number,
): string {
  const header = [
    "| sessions | setup | connections | served | waiting (no timeout) | 503 | memory (est.) | worst case (est.) |",
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  const rows = sessions.flatMap((n) =>
    setups.map((s) => {
      const r = openStreams(s.protocol, n, s.limits, hosts);
      return `| ${n} | ${s.title} | ${r.connections} | ${r.active} | ${r.waiting} | ${r.refused} | ${mib(r.memoryBytes)} | ${mib(r.worstCaseBytes)} |`;
    }),
  );
  const first = setups.map(
    (s) => `- ${s.title}: first 503 at ${firstRefusal(s.protocol, s.limits, hosts)} sessions`,
  );
  return [...header, ...rows, "", ...first].join("\n");
}

/** The breaker of one upstream cluster as the generated config states it. */
export type GeneratedBreaker = ReturnType<typeof breakerLimits>;

/**
 * The three setups the docs compare, from a generated breaker: HTTP/1.1 with the limits before
 * issue 15 (1024 connections, pending and requests), HTTP/1.1 with today's limits
 * (`traffic.protocol: http1`), and HTTP/2.
 */
export function meshPoolSetups(
  breaker: GeneratedBreaker,
): { title: string; protocol: "http1" | "http2"; limits: PoolLimits }[] {
  const shared = {
    maxConcurrentStreams: MESH_HTTP2.maxConcurrentStreams,
    connectionWindowBytes: MESH_HTTP2.connectionWindowBytes,
  };
  return [
    {
      title: "HTTP/1.1, limits before",
      protocol: "http1",
      // Envoy's default per_connection_buffer_limit_bytes (1 MiB) applied then.
      limits: {
        ...shared,
        maxConnections: 1024,
        maxPendingRequests: 1024,
        maxRequests: 1024,
        bufferBytesPerRequest: 1024 * 1024,
      },
    },
    {
      title: "HTTP/1.1 (http1)",
      protocol: "http1",
      limits: { ...shared, ...breaker, bufferBytesPerRequest: MESH_CONNECTION_BUFFER_BYTES },
    },
    {
      title: "HTTP/2",
      protocol: "http2",
      limits: { ...shared, ...breaker, bufferBytesPerRequest: MESH_HTTP2.streamWindowBytes },
    },
  ];
}

/** Sessions per row of the docs' table, and the pods they are balanced over. */
export const TABLE_SESSIONS = [500, 1000, 2000, 5000];
export const TABLE_HOSTS = 2;
