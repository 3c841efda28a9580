/**
 * The bookapi-mesh policy pack: `pulumi preview --policy-pack policy`.
 *
 * The engine runs this file with the stack's name and config (PULUMI_NODEJS_STACK and
 * PULUMI_CONFIG), so `pulumi.getStack()` and `pulumi.Config` see the stack being previewed.
 * Constructing the PolicyPack starts the analyzer's gRPC server, so tests import pack.ts and
 * rules.ts instead of this file.
 */
import * as pulumi from "@pulumi/pulumi";
import { PolicyPack } from "@pulumi/policy";
import { meshContext, meshPolicies } from "./pack";
import { MESH } from "./rules";

new PolicyPack("bookapi-mesh", {
  description:
    "bookapi-mesh guardrails: Envoy sidecars, mTLS inbound, loopback admin, no keys in ConfigMaps, pinned images, only mTLS published in prod, one workload per adopted service.",
  enforcementLevel: "mandatory",
  policies: meshPolicies(meshContext(pulumi.getStack(), new pulumi.Config(MESH.project))),
});
