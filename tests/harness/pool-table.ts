/**
 * Prints the pool table of docs/traffic.md from the generated dev gateway's breaker:
 * `npx tsx tests/harness/pool-table.ts`. tests/traffic-scale.spec.ts checks that the docs hold it.
 */
import { loadMeshConfig } from "../../components/config";
import {
  GeneratedBreaker,
  meshPoolSetups,
  poolTable,
  TABLE_HOSTS,
  TABLE_SESSIONS,
} from "./pool-model";
import { stackConfig } from "./program";
import { clusterOf, gatewayBootstrapOf } from "./traffic-fixtures";

/** The breaker of the dev gateway's cluster to the MCP server, as generated. */
export function devGatewayBreaker(): GeneratedBreaker {
  const gateway = gatewayBootstrapOf(loadMeshConfig(stackConfig("dev")));
  const t = clusterOf(gateway, "upstream_bookapi-mcp-server").circuit_breakers?.thresholds[0];
  if (!t) throw new Error("no breaker on upstream_bookapi-mcp-server");
  return {
    maxConnections: t.max_connections,
    maxPendingRequests: t.max_pending_requests,
    maxRequests: t.max_requests,
  };
}

export function devPoolTable(): string {
  return poolTable(meshPoolSetups(devGatewayBreaker()), TABLE_SESSIONS, TABLE_HOSTS);
}

if (require.main === module) console.log(devPoolTable());
