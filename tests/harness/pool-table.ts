/**
 * Prints the pool table of docs/traffic.md from the generated dev gateway's breaker:
 * `npx tsx tests/harness/pool-table.ts`. tests/traffic-scale.spec.ts checks that the docs hold it.
 */
import { loadMeshConfig } from "../../components/config";
import { MESH_CONNECTION_BUFFER_BYTES, MESH_HTTP2 } from "../../components/envoy/connections";
import { ENVOY_FILES } from "../../components/envoy/model";
import { Bootstrap } from "../../components/envoy/types";
import { gatewayFiles } from "../../components/gateway";
import {
  GeneratedBreaker,
  meshPoolSetups,
  poolTable,
  TABLE_HOSTS,
  TABLE_SESSIONS,
} from "./pool-model";
import { stackConfig } from "./program";

/** The breaker of the dev gateway's cluster to the MCP server, as generated. */
export function devGatewayBreaker(): GeneratedBreaker {
  const model = loadMeshConfig(stackConfig("dev"));
  if (!model.gateway) throw new Error("dev has no gateway");
  const b = JSON.parse(gatewayFiles(model, model.gateway)[ENVOY_FILES.bootstrap]) as Bootstrap;
  const c = b.static_resources.clusters.find((x) => x.name === "upstream_bookapi-mcp-server");
  const t = c?.circuit_breakers?.thresholds[0];
  if (!t) throw new Error("no breaker on upstream_bookapi-mcp-server");
  return {
    maxConnections: t.max_connections,
    maxPendingRequests: t.max_pending_requests,
    maxRequests: t.max_requests,
  };
}

export function devPoolTable(): string {
  return poolTable(
    meshPoolSetups(devGatewayBreaker(), MESH_HTTP2, MESH_CONNECTION_BUFFER_BYTES),
    TABLE_SESSIONS,
    TABLE_HOSTS,
  );
}

if (require.main === module) console.log(devPoolTable());
