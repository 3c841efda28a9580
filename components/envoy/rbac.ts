/**
 * RBAC on the authenticated peer: defence in depth behind the TLS SAN check, enforced once per
 * connection (network filter) and again per request (HTTP filter).
 */
import { Peer } from "./model";
import { EXTENSION_NAMES, HttpFilter, NetworkFilter, RbacRules, TYPE_URLS } from "./types";

/** Name of the single policy that lists the allowed callers. */
export const CALLERS_POLICY = "allowed-callers";

/**
 * ALLOW rules whose principals are the callers' FQDNs (Envoy matches them against the peer
 * certificate's URI, then DNS SANs). With no callers the rules are present but empty, which
 * Envoy defines as deny-all: a service nobody calls accepts nobody. Omitting `rules` instead
 * would mean "no enforcement".
 */
export function callerRules(callers: Peer[]): RbacRules {
  if (callers.length === 0) return { action: "ALLOW", policies: {} };
  return {
    action: "ALLOW",
    policies: {
      [CALLERS_POLICY]: {
        permissions: [{ any: true }],
        principals: callers.map((c) => ({
          authenticated: { principal_name: { exact: c.fqdn } },
        })),
      },
    },
  };
}

export function networkRbacFilter(statPrefix: string, callers: Peer[]): NetworkFilter {
  return {
    name: EXTENSION_NAMES.networkRbac,
    typed_config: {
      "@type": TYPE_URLS.networkRbac,
      stat_prefix: statPrefix,
      rules: callerRules(callers),
    },
  };
}

export function httpRbacFilter(callers: Peer[]): HttpFilter {
  return {
    name: EXTENSION_NAMES.httpRbac,
    typed_config: { "@type": TYPE_URLS.httpRbac, rules: callerRules(callers) },
  };
}
