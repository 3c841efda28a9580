/**
 * Offline injection, `npm run inject` (tools/inject/): podinfo's rendered chart in, the golden
 * tests/golden/inject/podinfo.yaml out (refresh with `npm run render:golden`); every document the
 * stack does not adopt comes back byte for byte, and the injected workload is exactly what the
 * Pulumi transform would deploy.
 */
import assert from "node:assert/strict";
import * as fs from "node:fs";
import { parse, parseAllDocuments, stringify } from "yaml";
import { loadMeshConfig } from "../components/config";
import { meshInjector, WorkloadObject } from "../components/injector";
import { adoptedWorkloads } from "../components/mesh";
import { InjectionError } from "../components/injector";
import { main } from "../tools/inject/cli";
import { ManifestError } from "../tools/inject/inject";
import { stackConfigFromFile } from "../tools/render/engine";
import { INJECT_GOLDEN } from "../tools/render/golden";
import { RenderError } from "../tools/render/render";
import { chartObjects, engineCall } from "./harness/chart";

const input = () => fs.readFileSync(INJECT_GOLDEN.input, "utf8");
const noStdin = () => {
  throw new Error("stdin read although a file was given");
};
const documents = (text: string) => parseAllDocuments(text).map((d) => d.toJS() as WorkloadObject);

describe("offline injection (npm run inject)", () => {
  it("writes the chart back with the sidecar in its Deployment, as the golden file, reporting the workload", () => {
    const { manifests, report } = main([INJECT_GOLDEN.stack, INJECT_GOLDEN.input], noStdin);
    assert.equal(
      manifests,
      fs.readFileSync(INJECT_GOLDEN.output, "utf8"),
      "differs from tests/golden/inject/podinfo.yaml (if intended, run `npm run render:golden`)",
    );
    assert.equal(
      report,
      "injected the mesh of stack adopted into Deployment/reviews-podinfo (service reviews)",
    );
  });

  it("keeps every other document and the text around them byte for byte", () => {
    const text = input();
    const { manifests } = main([INJECT_GOLDEN.stack], () => text);
    const start = text.indexOf("---\n# Source: podinfo/templates/deployment.yaml");
    assert.ok(start > 0);
    assert.equal(manifests.slice(0, start), text.slice(0, start), "the header and the Service");
    assert.ok(
      manifests.slice(start).startsWith("---\n# Source: podinfo/templates/deployment.yaml"),
    );
  });

  it("injects exactly what the Pulumi transform injects, its YAML reading back the same", async () => {
    const [, written] = documents(
      main([INJECT_GOLDEN.stack, INJECT_GOLDEN.input], noStdin).manifests,
    );
    const model = loadMeshConfig(stackConfigFromFile(INJECT_GOLDEN.stack));
    const [, chart] = chartObjects();
    const result = await engineCall(meshInjector(adoptedWorkloads(model)), chart);
    assert.ok(result);
    assert.deepEqual(written, JSON.parse(JSON.stringify(result.props)));
  });

  it("keeps strings Kubernetes' YAML 1.1 parser would read as booleans quoted, in the items of a List too", () => {
    // The chart's Deployment with env values "no" and "on", inside a List as kubectl writes one.
    const [, deployment] = documents(input());
    const app = (deployment.spec?.template?.spec?.containers ?? [])[0];
    app.env = [
      { name: "ALLOW_EMPTY_PASSWORD", value: "no" },
      { name: "TLS", value: "on" },
    ];
    const list = stringify(
      { apiVersion: "v1", kind: "List", items: [deployment] },
      { version: "1.1" },
    );
    const { manifests, report } = main([INJECT_GOLDEN.stack], () => list);
    assert.match(report, /Deployment\/reviews-podinfo \(service reviews\)/);
    const read = parse(manifests, { version: "1.1" }) as { items: WorkloadObject[] };
    const env = read.items[0].spec?.template?.spec?.containers[0].env ?? [];
    assert.deepEqual(
      env.filter((e) => e.name !== "MESH_OUTBOUND_URL"),
      [
        { name: "ALLOW_EMPTY_PASSWORD", value: "no" },
        { name: "TLS", value: "on" },
      ],
    );
  });

  it("warns of a NetworkPolicy in the input that opens the injected pods past Envoy (bitnami charts ship one, open to all), and not of one selecting other pods", () => {
    const policy = (name: string, app: string) =>
      stringify({
        apiVersion: "networking.k8s.io/v1",
        kind: "NetworkPolicy",
        metadata: { name },
        spec: {
          podSelector: { matchLabels: { "app.kubernetes.io/name": app } },
          policyTypes: ["Ingress"],
          ingress: [{ ports: [{ port: 9898 }] }],
        },
      });
    const text = `${input()}---\n${policy("reviews-podinfo", "reviews-podinfo")}---\n${policy("other", "other")}`;
    const { report } = main([INJECT_GOLDEN.stack], () => text);
    const warnings = report.split("\n").filter((l) => l.startsWith("warning: "));
    assert.equal(warnings.length, 1, report);
    assert.match(
      warnings[0],
      /NetworkPolicy reviews-podinfo of the input selects the pods of Deployment\/reviews-podinfo \(service reviews\)/,
    );
  });

  it("refuses JSON input and an alias it cannot resolve, naming the document", () => {
    assert.throws(() => main([INJECT_GOLDEN.stack], () => "{}"), ManifestError);
    assert.throws(
      () => main([INJECT_GOLDEN.stack], () => "---\nkind: ConfigMap\n---\ndata: *nowhere\n"),
      (err: unknown) => err instanceof ManifestError && /^document 2: /.test(err.message),
    );
  });

  it("refuses a second injection, naming the workload, and a stack that adopts nothing", () => {
    const once = main([INJECT_GOLDEN.stack, INJECT_GOLDEN.input], noStdin).manifests;
    assert.throws(
      () => main([INJECT_GOLDEN.stack], () => once),
      (err: unknown) =>
        err instanceof InjectionError &&
        /the pods of Deployment "reviews-podinfo" \(service reviews\)/.test(err.message) &&
        /a container is already named "envoy"/.test(err.message),
    );
    assert.throws(
      () => main(["prod"], () => input()),
      (err: unknown) =>
        err instanceof RenderError &&
        err.message ===
          "stack prod adopts no workload: give a service a workload (services[].workload)",
    );
    assert.throws(() => main([], noStdin), RenderError);
  });
});
