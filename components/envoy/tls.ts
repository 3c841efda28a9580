/**
 * TLS contexts for both directions. Both present the sidecar's identity and trust only the mesh
 * CA (both by SDS); the peer's SAN is pinned statically, so who may talk to whom is part of the
 * reviewed config, not of the rotating secrets.
 */
import { isIP } from "node:net";
import { meshAlpn } from "./connections";
import { Peer, SidecarPaths, SidecarSpec, Upstream } from "./model";
import { identitySecretConfig, trustSecretConfig } from "./sds";
import {
  CommonTlsContext,
  DownstreamTlsContext,
  EdgeTlsContext,
  EXTENSION_NAMES,
  ExternalUpstreamTlsContext,
  SubjectAltNameMatcher,
  TlsParameters,
  TransportSocket,
  TYPE_URLS,
  UpstreamTlsContext,
} from "./types";

/** TLS 1.2 is Envoy's default floor too; stated so a default change cannot lower it. */
export const TLS_PARAMS: TlsParameters = {
  tls_minimum_protocol_version: "TLSv1_2",
  // Envoy's client default stops at 1.2; allow 1.3 both ways.
  tls_maximum_protocol_version: "TLSv1_3",
  // Envoy's default is X25519 and P-256 only. Below TLS 1.3 BoringSSL refuses a peer whose ECDSA
  // leaf uses a curve not listed here (ssl_check_leaf_certificate), so P-384 certificates need it.
  ecdh_curves: ["X25519", "P-256", "P-384"],
};

/** The CA bundle of the official Envoy image (Ubuntu's ca-certificates), for servers outside. */
export const SYSTEM_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt";

/**
 * Per peer an exact DNS SAN matcher, plus its SPIFFE URI when it has one, for interop with meshes
 * that identify workloads by SPIFFE ID (typed matchers: match_subject_alt_names is deprecated).
 */
export function sanMatchers(peers: Peer[]): SubjectAltNameMatcher[] {
  return peers.flatMap((p): SubjectAltNameMatcher[] => [
    ...(p.fqdn ? [{ san_type: "DNS" as const, matcher: { exact: p.fqdn } }] : []),
    ...(p.spiffeId ? [{ san_type: "URI" as const, matcher: { exact: p.spiffeId } }] : []),
  ]);
}

/**
 * Envoy reads an empty SAN list as "any SAN", so a service nobody calls pins one that no mesh
 * certificate can carry (an underscore is not allowed in service or namespace names).
 */
export const NO_CALLER_SAN = "_no_callers_.invalid";

/** Identity + CA by SDS, merged with the static SAN allow-list; `alpn` in preference order. */
export function commonTlsContext(
  paths: SidecarPaths,
  allowed: Peer[],
  alpn: string[],
): CommonTlsContext {
  const matchers: SubjectAltNameMatcher[] =
    allowed.length > 0
      ? sanMatchers(allowed)
      : [{ san_type: "DNS", matcher: { exact: NO_CALLER_SAN } }];
  return {
    tls_params: { ...TLS_PARAMS, ecdh_curves: [...TLS_PARAMS.ecdh_curves] },
    tls_certificate_sds_secret_configs: [identitySecretConfig(paths)],
    combined_validation_context: {
      default_validation_context: { match_typed_subject_alt_names: matchers },
      validation_context_sds_secret_config: trustSecretConfig(paths),
    },
    alpn_protocols: [...alpn],
  };
}

/**
 * Inbound: a client certificate is mandatory and must carry an allowed caller's FQDN or SPIFFE
 * ID. With no callers nothing passes TLS, and the RBAC filters deny every connection as well.
 * ALPN: `h2` for a caller that offers it, `http/1.1` for one that offers only that, and a caller
 * that offers nothing (a sidecar from before HTTP/2) gets no ALPN and is read as HTTP/1.1 by the
 * connection manager's AUTO codec.
 */
export function inboundTlsContext(spec: SidecarSpec): DownstreamTlsContext {
  return {
    "@type": TYPE_URLS.downstreamTlsContext,
    common_tls_context: commonTlsContext(spec.paths, spec.callers, meshAlpn(spec.traffic.protocol)),
    require_client_certificate: true,
  };
}

/**
 * TLS to a server outside the mesh: SNI is its name, and its certificate must chain to a public
 * CA and carry that name (without a SAN matcher Envoy checks the chain only).
 */
export function externalTlsContext(host: string): ExternalUpstreamTlsContext {
  return {
    "@type": TYPE_URLS.upstreamTlsContext,
    common_tls_context: {
      tls_params: { ...TLS_PARAMS, ecdh_curves: [...TLS_PARAMS.ecdh_curves] },
      validation_context: {
        trusted_ca: { filename: SYSTEM_CA_BUNDLE },
        match_typed_subject_alt_names: [
          { san_type: isIP(host) ? "IP_ADDRESS" : "DNS", matcher: { exact: host } },
        ],
      },
    },
    // RFC 6066: SNI carries host names only, never an address.
    ...(isIP(host) ? {} : { sni: host }),
  };
}

/**
 * Outbound to one dependency: SNI and the expected server SAN are both its service FQDN, whichever
 * pod answers (the cluster dials the pods' addresses). ALPN offers what the dependency speaks,
 * HTTP/2 first (AutoHttpConfig's own default list, stated).
 */
export function upstreamTlsContext(
  spec: Pick<SidecarSpec, "paths">,
  upstream: Upstream,
): UpstreamTlsContext {
  return {
    "@type": TYPE_URLS.upstreamTlsContext,
    common_tls_context: commonTlsContext(
      spec.paths,
      [upstream],
      meshAlpn(upstream.traffic.protocol),
    ),
    sni: upstream.fqdn,
  };
}

export function tlsTransportSocket<
  T extends DownstreamTlsContext | EdgeTlsContext | UpstreamTlsContext | ExternalUpstreamTlsContext,
>(context: T): TransportSocket<T> {
  return { name: EXTENSION_NAMES.tls, typed_config: context };
}
