/**
 * How sidecars hold connections to each other: HTTP/2 limits and windows, keepalives that find a
 * vanished peer, and circuit breakers sized from the calling Envoy's heap. docs/traffic.md lists
 * each value beside Envoy's default.
 */
import { TrafficSpec } from "./model";
import { Http2Keepalive, Http2ProtocolOptions, SocketOption, TcpKeepalive } from "./types";

/**
 * HTTP/2 between sidecars, and from the gateway's clients: Envoy's defaults (1024 streams, 16 MiB
 * stream and 24 MiB connection windows; before 1.36 2^31-1 and 256 MiB, protocol.proto) let one
 * peer make Envoy buffer far past its heap ceiling. 100 streams, a 64 KiB stream window (HTTP/2's
 * own 65535 is Envoy's minimum) and a 1 MiB connection window are Envoy's edge-proxy guidance
 * (docs: configuration/best_practices/edge); a connection buffers at most its connection window.
 */
export const MESH_HTTP2 = {
  maxConcurrentStreams: 100,
  streamWindowBytes: 65536,
  connectionWindowBytes: 1048576,
} as const;

/**
 * HTTP/2 PING every 30 s (Envoy adds 15 % jitter); a peer that has not answered in 10 s loses
 * the connection and its streams. Envoy sends none by default, so a vanished peer's streams stay
 * open until an idle timeout, and a stream the app keeps writing to never idles.
 */
export const HTTP2_KEEPALIVE: Http2Keepalive = { interval: "30s", timeout: "10s" };

/**
 * TCP keepalive: first probe after 60 s of silence (under AWS NLB's 350 s and Azure's 240 s idle
 * timeouts, so the load balancer keeps the flow), then every 10 s, and 3 unanswered probes close
 * the connection: a silent dead peer is found within 90 s. Linux's defaults are 2 h, 75 s, 9.
 */
const TCP_KEEPALIVE = { idleSeconds: 60, intervalSeconds: 10, probes: 3 } as const;

/** Longest a dead peer holds a connection that has unacknowledged data (TCP_USER_TIMEOUT). */
const TCP_USER_TIMEOUT_MS =
  (TCP_KEEPALIVE.idleSeconds + TCP_KEEPALIVE.intervalSeconds * TCP_KEEPALIVE.probes) * 1000;

/** The same keepalive on a cluster's upstream connections (Cluster.upstream_connection_options). */
export const UPSTREAM_TCP_KEEPALIVE: TcpKeepalive = {
  keepalive_probes: TCP_KEEPALIVE.probes,
  keepalive_time: TCP_KEEPALIVE.idleSeconds,
  keepalive_interval: TCP_KEEPALIVE.intervalSeconds,
};

// Linux values (asm-generic/socket.h, linux/tcp.h): Envoy passes them to setsockopt as given.
const SOL_SOCKET = 1;
const SO_KEEPALIVE = 9;
const IPPROTO_TCP = 6;
const TCP_KEEPIDLE = 4;
const TCP_KEEPINTVL = 5;
const TCP_KEEPCNT = 6;
const TCP_USER_TIMEOUT = 18;

/**
 * Keepalive on a listener's accepted connections. Set on the listening socket before bind: Linux
 * copies the listener's socket options to every connection it accepts (tcp(7), inet_csk_clone),
 * which is how Envoy's docs turn on downstream keepalive. TCP_USER_TIMEOUT bounds a connection
 * whose peer vanished while data was in flight, which keepalive alone does not probe.
 */
export function keepaliveSocketOptions(): SocketOption[] {
  const option = (description: string, level: number, name: number, int_value: number) => ({
    description,
    level,
    name,
    int_value,
    state: "STATE_PREBIND" as const,
  });
  return [
    option("SO_KEEPALIVE", SOL_SOCKET, SO_KEEPALIVE, 1),
    option("TCP_KEEPIDLE", IPPROTO_TCP, TCP_KEEPIDLE, TCP_KEEPALIVE.idleSeconds),
    option("TCP_KEEPINTVL", IPPROTO_TCP, TCP_KEEPINTVL, TCP_KEEPALIVE.intervalSeconds),
    option("TCP_KEEPCNT", IPPROTO_TCP, TCP_KEEPCNT, TCP_KEEPALIVE.probes),
    option("TCP_USER_TIMEOUT", IPPROTO_TCP, TCP_USER_TIMEOUT, TCP_USER_TIMEOUT_MS),
  ];
}

/** The HTTP/2 settings of a mesh connection, server or client side. */
export function meshHttp2Options(): Http2ProtocolOptions {
  return {
    max_concurrent_streams: MESH_HTTP2.maxConcurrentStreams,
    initial_stream_window_size: MESH_HTTP2.streamWindowBytes,
    initial_connection_window_size: MESH_HTTP2.connectionWindowBytes,
    connection_keepalive: { ...HTTP2_KEEPALIVE },
  };
}

/** ALPN a caller offers and a callee accepts, by the callee's protocol. */
export function meshAlpn(protocol: TrafficSpec["protocol"]): string[] {
  return protocol === "http2" ? ["h2", "http/1.1"] : ["http/1.1"];
}

/**
 * Read and write buffer of one upstream connection (Envoy's default is 1 MiB): with HTTP/1.1 a
 * request holds a connection, so this is what one request can buffer.
 */
export const MESH_CONNECTION_BUFFER_BYTES = 65536;

/**
 * What one request's response may make the calling Envoy hold before flow control stops the
 * callee: one stream window (HTTP/2) or one connection buffer (HTTP/1.1), both 64 KiB. The
 * request's own body is held against the downstream side's window, not this breaker.
 */
export const REQUEST_BUFFER_BYTES = MESH_HTTP2.streamWindowBytes;

/** Share of the heap ceiling one dependency's requests may fill at the breaker's limit. */
export const BREAKER_HEAP_SHARE = 0.5;

/** Below this many the breaker would refuse ordinary concurrency however small the sidecar. */
const MIN_BREAKER_REQUESTS = 16;

/**
 * A dependency's circuit breaker in one caller: limits the traffic policy leaves unset come from
 * the caller's heap ceiling, so that one dependency at its limit, with every window full, fills
 * at most half of it (the overload manager sheds load at 95 %). maxConnections follows
 * maxRequests: an HTTP/1.1 request needs a connection of its own.
 */
export function breakerLimits(
  maxHeapBytes: number,
  cb: TrafficSpec["circuitBreaker"],
): { maxConnections: number; maxPendingRequests: number; maxRequests: number } {
  const maxRequests =
    cb.maxRequests ??
    Math.max(
      MIN_BREAKER_REQUESTS,
      Math.floor((maxHeapBytes * BREAKER_HEAP_SHARE) / REQUEST_BUFFER_BYTES),
    );
  return {
    maxConnections: cb.maxConnections ?? maxRequests,
    maxPendingRequests: cb.maxPendingRequests,
    maxRequests,
  };
}
