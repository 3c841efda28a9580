/**
 * The ingress gateway's part of the config: its fixed ports, how routes resolve to services and
 * token checks (the gateway model), and the problems only the gateway can have.
 */
import {
  CERT_MANAGER_NAMES,
  PROJECT,
  gatewayObjectNames,
  objectNames,
  RESOURCE_METADATA_PATH,
} from "../names";

import { RawMesh, RawGateway } from "./schema";
import { PeerIdentity, UpstreamModel, JwtModel, GatewayRouteModel, GatewayModel } from "./model";

/**
 * How long a new gateway pod must be ready before the rollout counts it and stops an old one,
 * per Service type: long enough for whatever sends traffic to it to have marked it healthy
 * (docs/gateway.md, "Rollouts and the load balancer", cites each provider's health checks).
 * A cloud load balancer checks the node's health check port every 3-10 s and needs 1-3
 * successes (the slowest default found, an AWS Load Balancer Controller NLB in IP mode: 10 s x 3):
 * 30 s. A NodePort's traffic comes through a load
 * balancer of yours, unknown here, or straight to nodes: 10 s. A ClusterIP gateway's clients
 * are pods, which see it as soon as its endpoint is ready: 5 s.
 */
export const GATEWAY_MIN_READY_SECONDS = { LoadBalancer: 30, NodePort: 10, ClusterIP: 5 } as const;

/** Port of the gateway's TLS listener in its pod; its Service maps the public port to it. */
export const GATEWAY_LISTEN_PORT = 8443;

/** The gateway Service's port unless `gateway.service.port` says otherwise. */
export const GATEWAY_DEFAULT_PORT = 443;

/**
 * Paths the gateway may request from `service`: the prefixes its routes forward there, after
 * rewriting, each exactly and everything below it. A route forwarding `/` leaves no limit.
 */
export function gatewayPaths(routes: RawGateway["routes"], service: string): string[] {
  const prefixes = routes
    .filter((r) => r.service === service)
    .map((r) => r.rewritePrefix ?? r.pathPrefix);
  if (prefixes.includes("/")) return [];
  return [...new Set(prefixes.flatMap((p) => [p, `${p}/*`]))].sort();
}

/** An https URL's host (an IPv6 literal comes bracketed in a URL, never in an address) and port. */
function urlServer(uri: string): { host: string; port: number } {
  const url = new URL(uri);
  return {
    host: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: url.port ? Number(url.port) : 443,
  };
}

/** The JWT provider guarding route `i`: its own, none when public, else the gateway's. */
function routeJwt(gw: RawGateway, i: number): JwtModel | undefined {
  const route = gw.routes[i];
  if (route.public) return undefined;
  const [provider, jwt] = route.auth
    ? [`route-${i}`, route.auth.jwt]
    : gw.auth
      ? ["gateway", gw.auth.jwt]
      : [undefined, undefined];
  if (!provider || !jwt) return undefined;
  return {
    provider,
    issuer: jwt.issuer,
    audiences: [...jwt.audiences],
    ...(jwt.jwksUri ? { jwksUri: jwt.jwksUri, jwksServer: urlServer(jwt.jwksUri) } : {}),
    ...(jwt.jwks ? { jwks: jwt.jwks } : {}),
    ...(jwt.jwksCidrs ? { jwksCidrs: [...jwt.jwksCidrs] } : {}),
    jwksCacheDuration: jwt.jwksCacheDuration,
    requiredScopes: [...jwt.requiredScopes],
  };
}

/**
 * The port clients dial: `publicPort`, else the published port (the node port for NodePort,
 * unknown until Kubernetes assigns one), else 443.
 */
function gatewayPublicPort(gw: RawGateway): number | undefined {
  if (gw.publicPort !== undefined) return gw.publicPort;
  if (gw.service.type === "NodePort") return gw.service.port;
  return gw.service.type === "LoadBalancer"
    ? (gw.service.port ?? GATEWAY_DEFAULT_PORT)
    : GATEWAY_DEFAULT_PORT;
}

/** The gateway model: routes resolved and ordered, each with its token check and resource. */
export function gatewayModel(
  gw: RawGateway,
  self: PeerIdentity,
  upstreamOf: (service: string) => UpstreamModel,
  hostnames: (name: string) => string[],
): GatewayModel {
  const publicPort = gatewayPublicPort(gw);
  const routes = gw.routes.map((route, i): GatewayRouteModel => {
    const jwt = routeJwt(gw, i);
    // topologyProblems has made sure an authenticated route has a host and a known port.
    const host = `${route.host ?? gw.hostname ?? ""}${publicPort === undefined || publicPort === GATEWAY_DEFAULT_PORT ? "" : `:${publicPort}`}`;
    const suffix = route.pathPrefix === "/" ? "" : route.pathPrefix;
    return {
      ...(route.host ? { host: route.host } : {}),
      pathPrefix: route.pathPrefix,
      ...(route.rewritePrefix ? { rewritePrefix: route.rewritePrefix } : {}),
      upstream: upstreamOf(route.service),
      public: route.public,
      ...(jwt
        ? {
            jwt,
            resource: {
              url: `https://${host}${suffix || "/"}`,
              metadataPath: `${RESOURCE_METADATA_PATH}${suffix}`,
              metadataUrl: `https://${host}${RESOURCE_METADATA_PATH}${suffix}`,
            },
          }
        : {}),
    };
  });
  // Envoy takes the first matching route: longer prefixes first, config order among equals.
  const ordered = routes
    .map((route, i) => ({ route, i }))
    .sort((a, b) => b.route.pathPrefix.length - a.route.pathPrefix.length || a.i - b.i)
    .map(({ route }) => route);
  return {
    ...self,
    replicas: gw.replicas,
    ...(gw.hostname ? { hostname: gw.hostname } : {}),
    ...(publicPort !== undefined ? { publicPort } : {}),
    preStopSeconds: gw.preStopSeconds,
    minReadySeconds: gw.minReadySeconds ?? GATEWAY_MIN_READY_SECONDS[gw.service.type],
    service: gw.service,
    tls: gw.tls,
    dnsNames: hostnames(gw.name),
    routes: ordered,
    ...(gw.cors ? { cors: gw.cors } : {}),
  };
}

/** Secrets the program writes in the mesh namespace: each service's and the gateway's. */
export function meshSecretNames(cfg: RawMesh): string[] {
  const gateway = cfg.gateway ? gatewayObjectNames(cfg.gateway.name) : undefined;
  return [
    ...cfg.services.flatMap((s) => [
      objectNames(s.name).secret,
      objectNames(s.name).certManagerSecret,
    ]),
    ...(gateway ? [gateway.secret, gateway.certManagerSecret, gateway.edgeSecret] : []),
    ...(cfg.certificates.issuer === "cert-manager"
      ? [CERT_MANAGER_NAMES.issuerSecret(cfg.certificates.ca.signing)]
      : []),
  ];
}

/** Gateway settings that clash with the services, the ports, or each other. */
export function gatewayProblems(
  cfg: RawMesh,
  gw: RawGateway,
  known: Set<string>,
  knownList: () => string,
): string[] {
  const key = `${PROJECT}:gateway`;
  const problems: string[] = [];
  // The gateway's objects share the namespace with the services' (and their -pods, -ext).
  const taken = cfg.services.flatMap((s) => {
    const names = objectNames(s.name);
    return [names.service, names.podsService, names.externalService];
  });
  if (taken.includes(gw.name))
    problems.push(`${key}.name: "${gw.name}" is the name of a service's Service; pick another`);
  // Service `<gw>-edge` would write the Secret `<gw>-edge-tls` the gateway's certificate uses.
  if (known.has(`${gw.name}-edge`))
    problems.push(
      `${key}.name: the service "${gw.name}-edge" writes the Secret ${gatewayObjectNames(gw.name).edgeSecret}, which the gateway uses; pick another name`,
    );
  for (const [role, p] of Object.entries(cfg.envoy.ports))
    if (p === GATEWAY_LISTEN_PORT)
      problems.push(
        `${key}: its TLS listener uses port ${GATEWAY_LISTEN_PORT} in the pod, which envoy.ports.${role} also uses; pick another envoy.ports.${role}`,
      );
  if (gw.tls.secretName) {
    if (meshSecretNames(cfg).includes(gw.tls.secretName))
      problems.push(
        `${key}.tls.secretName: "${gw.tls.secretName}" is a mesh identity Secret the program writes; name the Secret that holds the gateway's public certificate`,
      );
  }
  const authenticated = (r: RawGateway["routes"][number]) =>
    !r.public && (r.auth ?? gw.auth) !== undefined;
  // Once, not per route: the routes may be as many as the services.
  const anyAuthenticated = gw.routes.some(authenticated);
  if (gw.service.type === "ClusterIP" && !gw.service.from)
    problems.push(
      `${key}.service.from: a ClusterIP gateway needs the pods that may connect (an ingress controller); ipBlocks do not reliably match pod addresses`,
    );
  if (gw.service.type === "ClusterIP" && gw.service.sourceRanges)
    problems.push(
      `${key}.service.sourceRanges: a ClusterIP gateway is reached from inside the cluster only; name its clients in service.from`,
    );
  // An assigned node port is known only after the Service exists; resource URLs are built
  // before. Without authenticated routes, Kubernetes may pick it, so two stacks never collide.
  if (
    gw.service.type === "NodePort" &&
    gw.service.port === undefined &&
    gw.publicPort === undefined &&
    anyAuthenticated
  )
    problems.push(
      `${key}.service.port: a NodePort gateway with authenticated routes needs its node port fixed (30000-32767 by default): resource URLs carry it (or set publicPort)`,
    );
  const namesHosts = gw.routes.some((r) => r.host !== undefined);
  const seen = new Set<string>();
  gw.routes.forEach((route, i) => {
    const rkey = `${key}.routes[${i}]`;
    if (!known.has(route.service))
      problems.push(`${rkey}.service: unknown service "${route.service}" (known: ${knownList()})`);
    const where = `${route.host ?? "*"} ${route.pathPrefix}`;
    if (seen.has(where))
      problems.push(
        `${rkey}.pathPrefix: ${route.pathPrefix} is already routed${route.host ? ` for ${route.host}` : ""}`,
      );
    seen.add(where);
    if (route.public && route.auth)
      problems.push(`${rkey}.public: a public route takes no auth; drop one of them`);
    // Stacks held to the restricted Pod Security Standard are the production-like ones: there
    // an edge without a token check must be asked for, not be what an omission gives.
    if (cfg.podSecurity === "restricted" && !route.public && !(route.auth ?? gw.auth))
      problems.push(
        `${rkey}: forwards ${route.pathPrefix} to "${route.service}" from outside the cluster with no token check, which a stack with podSecurity restricted refuses; set gateway.auth (or this route's auth), or public: true to publish it without one`,
      );
    if (authenticated(route) && !route.host && !gw.hostname)
      problems.push(
        `${rkey}.host: an authenticated route needs a host (here or gateway.hostname) for its resource URL (RFC 9728, MCP authorization)`,
      );
    // A route without a host answers on every named host too, where its resource URL (one host)
    // would not be the URL the client used (RFC 9728 3.3).
    if (authenticated(route) && !route.host && namesHosts)
      problems.push(
        `${rkey}.host: other routes name their hosts, and this authenticated route would answer on them with the resource URL of ${gw.hostname ?? "gateway.hostname"}; name its host`,
      );
    const reserved = RESOURCE_METADATA_PATH;
    if (
      anyAuthenticated &&
      (route.pathPrefix === reserved || route.pathPrefix.startsWith(`${reserved}/`))
    )
      problems.push(`${rkey}.pathPrefix: ${reserved} is served by the gateway itself`);
  });
  return problems;
}
