/**
 * Wiring of the pure rules (rules.ts) into @pulumi/policy policies. Side-effect free: index.ts
 * constructs the PolicyPack (which starts the analyzer's gRPC server), so this module can be
 * imported by tests and type-checked with the rest of the project.
 */
import type {
  PolicyConfigSchema,
  ResourceValidationPolicy,
  StackValidationPolicy,
} from "@pulumi/policy";
import { checkAdoptedWorkloads, MESH, MeshContext, RULES, Rule } from "./rules";

/** The part of `pulumi.Config` the pack reads (so tests can pass a plain object). */
export interface ConfigSource {
  get(key: string): string | undefined;
  getObject<T>(key: string): T | undefined;
}

/**
 * The stack-dependent context. `stack` comes from `pulumi.getStack()` and `config` is
 * `new pulumi.Config("bookapi-mesh")`: the engine gives a policy pack the stack name and the
 * stack's config, so the pack checks against the same namespace and ports as the program.
 */
export function meshContext(stack: string, config: ConfigSource): MeshContext {
  const envoy = config.getObject<{ ports?: { inbound?: unknown } }>("envoy");
  const inbound = envoy?.ports?.inbound;
  return {
    stack,
    namespace: config.get("namespace") ?? MESH.defaultNamespace,
    inboundPort: typeof inbound === "number" ? inbound : MESH.defaultInboundPort,
    strictStacks: MESH.defaultStrictStacks,
    ...(config.get("podSecurity") ? { podSecurity: config.get("podSecurity") } : {}),
  };
}

/** Policy config of the strict-stack rules: which stacks are strict (default ["prod"]). */
export interface StrictStacksConfig {
  strictStacks?: string[];
}

const STRICT_STACKS_SCHEMA: PolicyConfigSchema = {
  properties: {
    strictStacks: {
      type: "array",
      items: { type: "string" },
      default: [...MESH.defaultStrictStacks],
      description:
        "Strict stacks: their mesh Services publish only the mTLS port, and their gateway forwards nothing without a token check unless the route is public.",
    },
  },
};

function policyOf(rule: Rule, base: MeshContext): ResourceValidationPolicy {
  const configurable = rule.usesStrictStacks === true;
  return {
    name: rule.name,
    description: rule.description,
    enforcementLevel: "mandatory",
    severity: "high",
    ...(configurable ? { configSchema: STRICT_STACKS_SCHEMA } : {}),
    validateResource: (args, reportViolation) => {
      if (!rule.types.includes(args.type)) return;
      const strictStacks = configurable
        ? args.getConfig<StrictStacksConfig>().strictStacks
        : undefined;
      const ctx = { ...base, strictStacks: strictStacks ?? base.strictStacks };
      const props = args.props as Record<string, unknown>;
      for (const message of rule.check({ type: args.type, props }, ctx)) reportViolation(message);
    },
  };
}

/** Policy config of the adopted-workload rule: services whose workloads another tool deploys. */
export interface AdoptedElsewhereConfig {
  adoptedElsewhere?: string[];
}

/** The stack policy over all resources: every adopted service has exactly one workload. */
export function adoptedWorkloadPolicy(base: MeshContext): StackValidationPolicy {
  return {
    name: "adopted-service-has-one-workload",
    description:
      "Every adopted service (services[].workload) has exactly one Deployment or StatefulSet in the stack carrying its sidecar, so a typo in its name fails the preview instead of leaving pods without the mesh.",
    enforcementLevel: "mandatory",
    severity: "high",
    configSchema: {
      properties: {
        adoptedElsewhere: {
          type: "array",
          items: { type: "string" },
          default: [],
          description:
            "Adopted services whose workloads another tool deploys (e.g. Helm with `npm run inject` as its post-renderer).",
        },
      },
    },
    validateStack: (args, reportViolation) => {
      const elsewhere = args.getConfig<AdoptedElsewhereConfig>().adoptedElsewhere ?? [];
      const resources = args.resources.map((r) => ({
        type: r.type,
        props: r.props as Record<string, unknown>,
      }));
      for (const message of checkAdoptedWorkloads(resources, base, elsewhere))
        reportViolation(message);
    },
  };
}

/** One mandatory policy per rule, and the stack policy. */
export function meshPolicies(
  base: MeshContext,
): Array<ResourceValidationPolicy | StackValidationPolicy> {
  return [...RULES.map((rule) => policyOf(rule, base)), adoptedWorkloadPolicy(base)];
}
