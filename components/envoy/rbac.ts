/**
 * RBAC on the authenticated peer: defence in depth behind the TLS SAN check, enforced once per
 * connection (network filter) and again per request (HTTP filter).
 */
import { Peer } from "./model";
import {
  AuthenticatedPrincipal,
  EXTENSION_NAMES,
  HttpFilter,
  NetworkFilter,
  RbacPermission,
  RbacPolicy,
  RbacRules,
  TYPE_URLS,
} from "./types";

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
      [CALLERS_POLICY]: { permissions: [{ any: true }], principals: callers.flatMap(principalsOf) },
    },
  };
}

/** A caller's identities: its FQDN and, when set, its SPIFFE ID (Envoy tries URI SANs first). */
export function principalsOf(caller: Peer): AuthenticatedPrincipal[] {
  return [...(caller.fqdn ? [caller.fqdn] : []), ...(caller.spiffeId ? [caller.spiffeId] : [])].map(
    (name) => ({
      authenticated: { principal_name: { exact: name } },
    }),
  );
}

/** `/a` matches exactly; `/a/*` matches everything under `/a/`. */
function pathPermission(path: string): RbacPermission {
  return path.endsWith("*")
    ? { url_path: { path: { prefix: path.slice(0, -1) } } }
    : { url_path: { path: { exact: path } } };
}

/** What one caller may do: anything, or only the methods and paths its `calls` entry lists. */
export function callerPermissions(caller: Peer): RbacPermission[] {
  const limits: RbacPermission[] = [];
  if (caller.methods && caller.methods.length > 0) {
    limits.push({
      or_rules: {
        rules: caller.methods.map((m) => ({
          header: { name: ":method", string_match: { exact: m } },
        })),
      },
    });
  }
  if (caller.paths && caller.paths.length > 0) {
    limits.push({ or_rules: { rules: caller.paths.map(pathPermission) } });
  }
  return limits.length === 0 ? [{ any: true }] : [{ and_rules: { rules: limits } }];
}

/**
 * Per-request rules: one policy per caller, so each caller's L7 limits apply only to it.
 * Anything else gets Envoy's 403, counted in the `rbac.denied` stat.
 */
export function requestRules(callers: Peer[]): RbacRules {
  const policies: Record<string, RbacPolicy> = {};
  for (const c of callers) {
    // Clients, the gateway and services have separate name spaces.
    policies[`${c.kind ?? "caller"}-${c.name}`] = {
      permissions: callerPermissions(c),
      principals: principalsOf(c),
    };
  }
  return { action: "ALLOW", policies };
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
    typed_config: {
      "@type": TYPE_URLS.httpRbac,
      rules: requestRules(callers),
      // Who called, per caller: the mesh graph's edges, clients included (their own sidecars
      // count nothing). Envoy 1.30+ (envoyproxy/envoy#32313).
      track_per_rule_stats: true,
    },
  };
}
