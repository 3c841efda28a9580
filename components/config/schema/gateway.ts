/**
 * The `gateway` key: routes, bearer tokens (JWT and JWKS), the gateway's Service, TLS and CORS
 * (docs/gateway.md).
 */
import { z } from "zod";
import {
  DNS_1035_LABEL,
  DNS_1123_SUBDOMAIN,
  port,
  peerSelector,
  duration,
  positiveCount,
  objectName,
  exactlyOne,
  seconds,
  cidr,
  publishedServiceFields,
} from "../fields";

/** An https URL (the JWKS endpoint): Envoy fetches it over TLS, verifying the server. */
const httpsUrl = z.string({ error: "must be an https:// URL" }).refine((value) => {
  try {
    const url = new URL(value);
    return url.protocol === "https:" && url.hostname !== "" && url.username === "";
  } catch {
    return false;
  }
}, "must be an https:// URL");

/** The public members of each key type Envoy verifies with (RFC 7518 6.2, 6.3; RFC 8037 2). */
const JWK_MEMBERS: Record<string, string[]> = {
  RSA: ["n", "e"],
  EC: ["crv", "x", "y"],
  OKP: ["crv", "x"],
};

/** A JSON Web Key Set, as an object or its JSON text; public keys only, so a ConfigMap may hold it. */
const jwksDocument = z
  .union([z.string(), z.record(z.string(), z.unknown())], {
    error: "must be a JWKS: an object with keys, or its JSON text",
  })
  .transform((value, ctx) => {
    let doc: unknown = value;
    if (typeof value === "string") {
      try {
        doc = JSON.parse(value);
      } catch {
        ctx.addIssue({ code: "custom", message: "must be valid JSON (a JWKS)" });
        return z.NEVER;
      }
    }
    const keys = (doc as { keys?: unknown }).keys;
    if (!Array.isArray(keys) || keys.length === 0) {
      ctx.addIssue({ code: "custom", message: "must be a JWKS with a non-empty keys list" });
      return z.NEVER;
    }
    for (const key of keys as Record<string, unknown>[]) {
      // A private JWK carries "d" (EC, RSA, OKP) or "k" (symmetric): it has no place in a config.
      if (typeof key !== "object" || key === null || "d" in key || "k" in key) {
        ctx.addIssue({ code: "custom", message: "must hold public keys only (no d or k members)" });
        return z.NEVER;
      }
      // Envoy drops an inline JWKS it cannot read with a log line only (jwks_cache.cc), and then
      // refuses every token: each key needs its type's public members (RFC 7518 6).
      const members = JWK_MEMBERS[String(key.kty)];
      const missing = members?.filter((m) => typeof key[m] !== "string");
      if (!members || (missing && missing.length > 0)) {
        ctx.addIssue({
          code: "custom",
          message: members
            ? `must give each ${String(key.kty)} key its ${members.join(", ")} (missing ${missing?.join(", ")})`
            : `must hold RSA, EC or OKP keys (got kty ${JSON.stringify(key.kty)})`,
        });
        return z.NEVER;
      }
    }
    return JSON.stringify(doc);
  });

/** OAuth scope tokens (RFC 6749 3.3): printable ASCII without space, quote or backslash. */
export const scope = z
  .string()
  .regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, "must be an OAuth scope token");

/** Bearer-token validation at the gateway (Envoy JWT authn). */
const jwtSchema = z
  .strictObject({
    /**
     * The `iss` every token must carry; also the authorization server the metadata names, whose
     * identifier is an https URL (RFC 8414 2).
     */
    issuer: httpsUrl,
    /** Accepted `aud` values; MCP requires tokens to be checked for audience. */
    audiences: z
      .array(z.string().min(1), { error: "must be a list of audiences" })
      .min(1, "must list at least one audience (tokens must be meant for this server)"),
    jwksUri: httpsUrl.optional(),
    /** Inline public keys, instead of jwksUri. */
    jwks: jwksDocument.optional(),
    /** Where the NetworkPolicy lets the JWKS fetch go (port 443); any address when omitted. */
    jwksCidrs: z
      .array(cidr, { error: "must be a list of CIDRs" })
      .min(1, "must list at least one CIDR (omit it for any address)")
      .optional(),
    /**
     * How long fetched keys are kept (Envoy's default is 10 minutes). Envoy fetches again only
     * when this runs out, not on an unknown `kid`: a token signed with a key published since then
     * gets 401 until the next fetch.
     */
    jwksCacheDuration: duration.default("1m"),
    /** Scopes every token must hold (the `scope` claim, space-separated). */
    requiredScopes: z.array(scope, { error: "must be a list of scopes" }).default([]),
  })
  .superRefine(exactlyOne(["jwksUri", "jwks"]))
  .superRefine((jwt, ctx) => {
    if (jwt.jwksCidrs && !jwt.jwksUri)
      ctx.addIssue({ code: "custom", path: ["jwksCidrs"], message: "only applies with jwksUri" });
  });
export type JwtSettings = z.infer<typeof jwtSchema>;

const authSchema = z.strictObject({ jwt: jwtSchema });

/** A path prefix: `/`, or segments without a trailing slash (it matches `/p` and `/p/...`). */
export const pathPrefix = z
  .string({ error: "must be a path such as /mcp" })
  .regex(
    /^\/([A-Za-z0-9._~!$&'()*+,;=:@%-]+(\/[A-Za-z0-9._~!$&'()*+,;=:@%-]+)*)?$/,
    "must be / or a path such as /mcp (no trailing slash, query or wildcard)",
  );

const gatewayRouteSchema = z.strictObject({
  /** Host this route answers for; any host when omitted. */
  host: z
    .string()
    .max(253)
    .regex(DNS_1123_SUBDOMAIN, "must be a DNS name such as mcp.example.com")
    .optional(),
  pathPrefix,
  service: z.string({ error: "must name a service" }),
  /** Replaces pathPrefix before the request reaches the service. */
  rewritePrefix: pathPrefix.optional(),
  /** This route's own token validation, instead of the gateway's. */
  auth: authSchema.optional(),
  /** No token needed on this route even when the gateway sets auth. */
  public: z.boolean({ error: "must be true or false" }).default(false),
});

/** The gateway's Service: how clients outside the cluster reach it. */
const gatewayServiceSchema = z.strictObject({
  type: z
    .enum(["LoadBalancer", "NodePort", "ClusterIP"], {
      error: "must be LoadBalancer, NodePort or ClusterIP",
    })
    .default("LoadBalancer"),
  /** The published port (the node port for NodePort); 443 by default. */
  port: port.optional(),
  ...publishedServiceFields,
  /**
   * Pods that may connect (an ingress controller in front): ipBlocks do not reliably match pod
   * addresses (NetworkPolicy docs), so a ClusterIP gateway names its clients this way.
   */
  from: z.array(peerSelector, { error: "must be a list of selectors" }).optional(),
});

const gatewayTlsSchema = z
  .strictObject({
    /** A kubernetes.io/tls Secret in the mesh namespace (cert-manager, or your own). */
    secretName: objectName.optional(),
    /** A certificate from the mesh CA: for development, clients must trust the mesh CA. */
    selfSigned: z
      .strictObject({
        dnsNames: z
          .array(z.string().max(253).regex(DNS_1123_SUBDOMAIN, "must be DNS names"), {
            error: "must be a list of DNS names",
          })
          .min(1, "must list at least one DNS name"),
      })
      .optional(),
  })
  .superRefine(exactlyOne(["secretName", "selfSigned"]));

/** Browsers may call the gateway from these origins (CORS). */
const corsSchema = z.strictObject({
  allowOrigins: z
    .array(
      z
        .string()
        .regex(/^https?:\/\/[^/\s*]+$/, "must be an origin such as https://app.example.com"),
      { error: "must be a list of origins" },
    )
    .min(1, "must list at least one origin"),
  maxAge: duration.default("10m"),
});

/** The ingress gateway: a standalone Envoy at the edge with its own mesh identity. */
export const gatewaySchema = z.strictObject({
  name: z
    .string()
    .max(40, "must be at most 40 characters")
    .regex(DNS_1035_LABEL, "must be a DNS label starting with a letter")
    .default("mesh-gateway"),
  replicas: positiveCount.default(1),
  /** The public host name clients use: resource metadata URLs and the default route host. */
  hostname: z
    .string()
    .max(253)
    .regex(DNS_1123_SUBDOMAIN, "must be a DNS name such as mcp.example.com")
    .optional(),
  service: gatewayServiceSchema.prefault({}),
  /**
   * The port clients put in URLs, when it is not what the Service publishes (a ClusterIP gateway
   * behind an ingress); part of every resource URL the gateway announces.
   */
  publicPort: port.optional(),
  /**
   * Seconds a stopping gateway pod keeps serving while the load balancer takes it out: with
   * externalTrafficPolicy Local the load balancer learns of it only through failed health checks.
   */
  preStopSeconds: seconds(1).max(300, "must be at most 300").default(30),
  /**
   * Seconds a new pod must be ready before the rollout counts it (the load balancer's turn);
   * by default per service.type (GATEWAY_MIN_READY_SECONDS).
   */
  minReadySeconds: seconds(0).max(300, "must be at most 300").optional(),
  tls: gatewayTlsSchema,
  routes: z
    .array(gatewayRouteSchema, { error: "must be a list of { pathPrefix, service }" })
    .min(1, "must list at least one route"),
  auth: authSchema.optional(),
  cors: corsSchema.optional(),
});
