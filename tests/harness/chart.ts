/**
 * The third-party chart the injection tests adopt (tests/fixtures/inject/podinfo.yaml: podinfo's
 * Service and Deployment as rendered), and a transform called as the engine calls it: the mocks
 * do not run transforms.
 */
import * as fs from "node:fs";
import * as pulumi from "@pulumi/pulumi";
import { parseAllDocuments } from "yaml";
import { INJECT_GOLDEN } from "../../tools/render/golden";
import { WorkloadObject } from "../../components/injector";
import { KubeObject } from "./kubernetes-schema";

/** The chart's objects, fresh on every call; in `namespace` where given. */
export function chartObjects(namespace?: string): KubeObject[] {
  return parseAllDocuments(fs.readFileSync(INJECT_GOLDEN.input, "utf8")).map((d) => {
    const object = d.toJS() as KubeObject;
    return namespace ? { ...object, metadata: { ...object.metadata, namespace } } : object;
  });
}

/**
 * A transform's call for one object of the chart, with the options the SDK's transform callback
 * fills in (deleteBeforeReplace false where it was never set).
 */
export function engineCall(
  transform: pulumi.ResourceTransform,
  object: KubeObject | WorkloadObject,
  dependsOn: pulumi.Resource[] = [],
) {
  const apiVersion = object.apiVersion === "v1" ? "core/v1" : object.apiVersion;
  return transform({
    custom: true,
    type: `kubernetes:${apiVersion}:${object.kind}`,
    name: `chart:${String(object.metadata?.name)}`,
    props: object as Record<string, unknown>,
    opts: { dependsOn, deleteBeforeReplace: false } as pulumi.CustomResourceOptions,
  });
}
