import assert from "node:assert/strict";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse } from "yaml";
import { manifestFileName, writeRendered } from "../scripts/render";
import { ProgramRun, runStack } from "./harness/program";

describe("the offline render", () => {
  let run: ProgramRun;
  let dir: string;
  before(async () => {
    run = await runStack("staging");
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "bookapi-mesh-render-"));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it("names files the way renderYamlToDirectory does", () => {
    assert.equal(
      manifestFileName("apps/v1", "Deployment", "books", "bookapi"),
      "apps_v1-deployment-books-bookapi.yaml",
    );
    assert.equal(
      manifestFileName("v1", "Namespace", undefined, "books"),
      "v1-namespace-default-books.yaml",
    );
  });

  it("writes every Kubernetes object once, and each sidecar's Envoy files where the sidecar reads them", () => {
    const files = writeRendered(run, dir, false);
    const manifests = files.filter((f) => f.startsWith("1-manifest/"));
    assert.equal(
      manifests.length,
      run.resources.filter((r) => r.type.startsWith("kubernetes:")).length,
    );
    assert.ok(manifests.includes("1-manifest/apps_v1-deployment-bookapi-staging-bookapi.yaml"));
    const deployment = parse(
      fs.readFileSync(
        path.join(dir, "1-manifest/apps_v1-deployment-bookapi-staging-bookapi.yaml"),
        "utf8",
      ),
    ) as {
      kind: string;
      metadata: { name: string };
    };
    assert.equal(deployment.kind, "Deployment");
    assert.equal(deployment.metadata.name, "bookapi");
    const bootstrap = JSON.parse(
      fs.readFileSync(path.join(dir, "envoy/bookapi/etc/envoy/config/envoy.json"), "utf8"),
    ) as { node: { id: string } };
    assert.equal(bootstrap.node.id, "bookapi");
    assert.match(
      fs.readFileSync(path.join(dir, "envoy/bookapi/etc/envoy/certs/tls.crt"), "utf8"),
      /BEGIN CERTIFICATE/,
    );
  });

  it("redacts private keys unless asked to include them", () => {
    writeRendered(run, dir, false);
    const secret = fs.readFileSync(
      path.join(dir, "1-manifest/v1-secret-bookapi-staging-bookapi-tls.yaml"),
      "utf8",
    );
    assert.doesNotMatch(secret, /PRIVATE KEY/);
    assert.doesNotMatch(
      fs.readFileSync(path.join(dir, "envoy/bookapi/etc/envoy/certs/tls.key"), "utf8"),
      /PRIVATE KEY/,
    );
    writeRendered(run, dir, true);
    assert.match(
      fs.readFileSync(path.join(dir, "envoy/bookapi/etc/envoy/certs/tls.key"), "utf8"),
      /PRIVATE KEY/,
    );
  });
});
