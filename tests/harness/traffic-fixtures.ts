/**
 * The two-service mesh the traffic specs vary (bookapi, called by the MCP server) and the lookups
 * they use on its generated bootstraps.
 */
import assert from "node:assert/strict";
import { loadMeshConfig, MeshModel } from "../../components/config";
import {
  Bootstrap,
  buildBootstrap,
  Cluster,
  HttpConnectionManager,
  Listener,
} from "../../components/envoy";
import { ENVOY_FILES } from "../../components/envoy/model";
import { gatewayFiles } from "../../components/gateway";
import { sidecarSpec } from "../../components/mesh";

type Json = Record<string, unknown>;

export const BOOKAPI = { name: "bookapi", image: "registry.example.com/bookapi:1.0.0", port: 5288 };
export const MCP = {
  name: "bookapi-mcp-server",
  image: "registry.example.com/bookapi-mcp-server:1.0.0",
  port: 5289,
  calls: ["bookapi"],
};

/** A mesh of bookapi (with `traffic`) called by the MCP server (with `callerExtra`). */
export function meshWith(traffic: Json, callerExtra: Json = {}, envoy: Json = {}): MeshModel {
  return loadMeshConfig({
    "bookapi-mesh:services": JSON.stringify([
      { ...BOOKAPI, traffic },
      { ...MCP, ...callerExtra },
    ]),
    "bookapi-mesh:envoy": JSON.stringify(envoy),
  });
}

export function bootstrapOf(model: MeshModel, service: string): Bootstrap {
  const svc = model.services.find((s) => s.name === service);
  assert.ok(svc);
  return buildBootstrap(sidecarSpec(model, svc));
}

/** The gateway's bootstrap as the program generates it. */
export function gatewayBootstrapOf(model: MeshModel): Bootstrap {
  assert.ok(model.gateway, "the stack has a gateway");
  return JSON.parse(gatewayFiles(model, model.gateway)[ENVOY_FILES.bootstrap]) as Bootstrap;
}

export function hcm(listener: Listener): HttpConnectionManager {
  const filter = listener.filter_chains[0].filters.find(
    (f) => f.name === "envoy.filters.network.http_connection_manager",
  );
  assert.ok(filter, `${listener.name} has no HTTP connection manager`);
  return filter.typed_config as HttpConnectionManager;
}

export const listenerOf = (b: Bootstrap, name: string): Listener => {
  const l = b.static_resources.listeners.find((x) => x.name === name);
  assert.ok(l, `no listener ${name}`);
  return l;
};

export const clusterOf = (b: Bootstrap, name: string): Cluster => {
  const c = b.static_resources.clusters.find((x) => x.name === name);
  assert.ok(c, `no cluster ${name}`);
  return c;
};
