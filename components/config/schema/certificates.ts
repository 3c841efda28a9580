/**
 * The `certificates` key: the leaves' key and lifetimes, key rotation, the CA generations, and
 * cert-manager mode's rules (docs/configuration.md).
 */
import { z } from "zod";
import { DNS_1123_SUBDOMAIN, hours } from "../fields";

/** The generation the mesh CA of a stack deployed before generations existed belongs to. */
export const DEFAULT_CA_GENERATION = "1";

/** A CA generation's name: part of its resources' names and of its certificate's subject. */
const caGeneration = z
  .string({ error: "must be a generation name" })
  .regex(/^[a-z0-9]([-a-z0-9]{0,18}[a-z0-9])?$/, "must be 1-20 lowercase letters, digits or '-'");

/** A key's algorithm and its size, as keys in `certificates` and its `ca.keys` take them. */
const keyFields = {
  algorithm: z.enum(["ECDSA", "RSA"], { error: "must be ECDSA or RSA" }),
  /** ECDSA only; P256 unless set. */
  ecdsaCurve: z.enum(["P256", "P384"], { error: "must be P256 or P384" }).optional(),
  /** RSA only; 2048 unless set. */
  rsaBits: z
    .union([z.literal(2048), z.literal(3072), z.literal(4096)], {
      error: "must be 2048, 3072 or 4096",
    })
    .optional(),
};

/** A size that does not fit the algorithm is refused where it is written. */
function keySizeIssues(
  k: { algorithm: "ECDSA" | "RSA"; ecdsaCurve?: unknown; rsaBits?: unknown },
  ctx: z.RefinementCtx,
): void {
  if (k.algorithm === "ECDSA" && k.rsaBits !== undefined)
    ctx.addIssue({ code: "custom", path: ["rsaBits"], message: "only applies to algorithm RSA" });
  if (k.algorithm === "RSA" && k.ecdsaCurve !== undefined)
    ctx.addIssue({
      code: "custom",
      path: ["ecdsaCurve"],
      message: "only applies to algorithm ECDSA",
    });
}

/** A CA generation's own key, when it differs from certificates.algorithm and its size. */
const caKey = z.strictObject(keyFields).superRefine(keySizeIssues);
/** A key as written in the config: its size may be left to the default. */
export type RawKey = z.infer<typeof caKey>;

/**
 * The mesh CAs: every sidecar trusts each `trusted` generation; leaves are signed by `signing`.
 * A CA is re-keyed by adding a generation, in three `pulumi up`s (docs/operations.md).
 */
const caGenerations = z
  .strictObject({
    signing: caGeneration.default(DEFAULT_CA_GENERATION),
    trusted: z
      .array(caGeneration, { error: "must be a list of generation names" })
      .min(1, "must list at least one generation")
      .default([DEFAULT_CA_GENERATION]),
    keys: z.record(caGeneration, caKey).default({}),
  })
  .superRefine((ca, ctx) => {
    if (!ca.trusted.includes(ca.signing))
      ctx.addIssue({
        code: "custom",
        path: ["signing"],
        message: `must be one of trusted (${ca.trusted.join(", ")}): sign only with a generation every sidecar already trusts (add it to trusted, pulumi up, wait for the pods, then sign with it)`,
      });
    const seen = new Set<string>();
    ca.trusted.forEach((g, i) => {
      if (seen.has(g))
        ctx.addIssue({ code: "custom", path: ["trusted", i], message: `lists "${g}" twice` });
      seen.add(g);
    });
    for (const g of Object.keys(ca.keys))
      if (!ca.trusted.includes(g))
        ctx.addIssue({
          code: "custom",
          path: ["keys", g],
          message: `is not a trusted generation (${ca.trusted.join(", ")})`,
        });
  });

export const certificatesSchema = z
  .strictObject({
    ...keyFields,
    algorithm: keyFields.algorithm.default("ECDSA"),
    caValidityHours: hours.default(87600),
    /** The CA is re-issued this long before it expires (which re-signs every service). */
    caEarlyRenewalHours: z.number().int().nonnegative().default(720),
    validityHours: hours.default(2160),
    /** Trust domain of the SPIFFE IDs in the certificates' URI SANs. */
    trustDomain: z
      .string()
      .max(253)
      .regex(DNS_1123_SUBDOMAIN, "must be a DNS-style trust domain such as cluster.local")
      .default("cluster.local"),
    earlyRenewalHours: z
      .number({ error: "must be a number of hours" })
      .int("must be whole hours")
      .nonnegative("must not be negative")
      .default(360),
    /**
     * Leaf keys (services, clients, the gateway) are replaced at the first `pulumi up` of every
     * period this long (counted from the Unix epoch); validityHours when unset.
     */
    keyRotationHours: hours.optional(),
    /**
     * How often a scheduled `pulumi up` runs (the operator's statement: nothing renews between
     * runs); preview warns when a renewal window gives it fewer than two chances.
     */
    upEveryHours: hours.optional(),
    ca: caGenerations.prefault({}),
    /**
     * Who signs the mesh identities of the workloads (services and the gateway): the program
     * (`pulumi`, renewed when `pulumi up` runs) or cert-manager (one Certificate per workload, from
     * an intermediate CA the program signs; docs/operations.md, "cert-manager mode").
     */
    issuer: z
      .enum(["pulumi", "cert-manager"], { error: "must be pulumi or cert-manager" })
      .default("pulumi"),
    /**
     * cert-manager mode: lifetime of the intermediate CA its Issuer signs with. It is re-signed
     * validityHours + earlyRenewalHours before it expires, because cert-manager's CA issuer does
     * not cap a certificate at its issuer's expiry.
     */
    intermediateValidityHours: hours.default(8760),
    /** Any text; changing it replaces every leaf key at the next `pulumi up`. */
    keyEpoch: z
      .string({ error: "must be a string" })
      .max(63, "must be at most 63 characters")
      .default(""),
  })
  .superRefine((c, ctx) => {
    keySizeIssues(c, ctx);
    if (c.earlyRenewalHours >= c.validityHours) {
      ctx.addIssue({
        code: "custom",
        path: ["earlyRenewalHours"],
        message: `must be less than validityHours (${c.validityHours})`,
      });
    }
    if (c.validityHours > c.caValidityHours) {
      ctx.addIssue({
        code: "custom",
        path: ["validityHours"],
        message: `must not exceed caValidityHours (${c.caValidityHours}): a certificate cannot outlive its CA`,
      });
    }
    if (c.keyRotationHours !== undefined && c.keyRotationHours > c.validityHours) {
      ctx.addIssue({
        code: "custom",
        path: ["keyRotationHours"],
        message: `must not exceed validityHours (${c.validityHours}): a key would outlive the certificates it signs for`,
      });
    }
    if (c.caEarlyRenewalHours >= c.caValidityHours) {
      ctx.addIssue({
        code: "custom",
        path: ["caEarlyRenewalHours"],
        message: `must be less than caValidityHours (${c.caValidityHours})`,
      });
    }
    if (c.issuer === "cert-manager") certManagerIssues(c, ctx);
  });

/**
 * cert-manager's admission rules for a Certificate's duration and renewBefore
 * (internal/apis/certmanager/validation/certificate.go ValidateDuration: duration at least 1 h,
 * renewBefore at least 5 min and less than duration), as config errors; and an intermediate that
 * outlives every certificate it signs.
 */
function certManagerIssues(
  c: {
    validityHours: number;
    earlyRenewalHours: number;
    intermediateValidityHours: number;
    caValidityHours: number;
  },
  ctx: z.RefinementCtx,
): void {
  // validityHours is whole positive hours, so duration is at least cert-manager's 1 h minimum.
  if (c.earlyRenewalHours < 1)
    ctx.addIssue({
      code: "custom",
      path: ["earlyRenewalHours"],
      message:
        "must be at least 1 with issuer cert-manager: it is the Certificates' renewBefore, which cert-manager refuses under 5 minutes",
    });
  const lead = c.validityHours + c.earlyRenewalHours;
  if (c.intermediateValidityHours <= lead)
    ctx.addIssue({
      code: "custom",
      path: ["intermediateValidityHours"],
      message: `must be more than validityHours + earlyRenewalHours (${lead}): the intermediate is re-signed that long before it expires, so every certificate it signs expires first`,
    });
  if (c.intermediateValidityHours > c.caValidityHours)
    ctx.addIssue({
      code: "custom",
      path: ["intermediateValidityHours"],
      message: `must not exceed caValidityHours (${c.caValidityHours}): the intermediate cannot outlive the CA that signs it`,
    });
}
