/**
 * The first commands a newcomer runs fail early and say what to do: `npm test` on a Node that is
 * too old, and `npm run up:local` without the Pulumi CLI; one spec file runs alone.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { PROJECT_ROOT, runStack } from "./harness/program";

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { nodeVersionProblem } = require("../tools/preflight/node-version.cjs") as {
  nodeVersionProblem(version: string): string | undefined;
};

/** A throwaway project folder holding a copy of up-local.sh, so runs touch nothing real. */
function scratchProject(): { root: string; script: string } {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "up-local-"));
  const script = path.join(root, "tools/preflight/up-local.sh");
  fs.mkdirSync(path.dirname(script), { recursive: true });
  fs.copyFileSync(path.join(PROJECT_ROOT, "tools/preflight/up-local.sh"), script);
  return { root, script };
}

describe("the newcomer's first commands", () => {
  it("stops npm test on Node 20 with the Node it found, the one it needs, and the npx command", () => {
    const problem = nodeVersionProblem("20.11.1");
    assert.ok(problem);
    assert.match(problem, /Node\.js 22\.10 or later; this is Node\.js 20\.11\.1/);
    assert.match(problem, /npx -y -p node@24 -- npm test/);
    assert.match(problem, /\.nvmrc/);
  });

  it("lets npm test run on Node 22.10 and later, where the harness's crypto calls exist, and the .nvmrc names one of those", () => {
    for (const version of ["22.10.0", "23.0.0", "24.3.1", "25.0.0"])
      assert.equal(nodeVersionProblem(version), undefined, version);
    assert.ok(nodeVersionProblem("22.9.0"), "22.9 lacks KeyObject.toCryptoKey");
    const pinned = fs.readFileSync(path.join(PROJECT_ROOT, ".nvmrc"), "utf8").trim();
    assert.equal(nodeVersionProblem(`${pinned}.0.0`), undefined);
    const pkg = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, "package.json"), "utf8")) as {
      scripts: Record<string, string>;
    };
    assert.equal(pkg.scripts.pretest, "node tools/preflight/node-version.cjs");
    assert.equal(pkg.scripts["up:local"], "bash tools/preflight/up-local.sh");
  });

  it("stops up:local without the Pulumi CLI, says how to get it, and creates nothing", () => {
    const { root, script } = scratchProject();
    try {
      const run = spawnSync("/bin/bash", [script], {
        env: { PATH: "/nonexistent" },
        encoding: "utf8",
      });
      assert.equal(run.status, 1);
      assert.match(run.stderr, /needs the Pulumi CLI/);
      assert.match(run.stderr, /pulumi\.com\/docs\/install/);
      assert.deepEqual(fs.readdirSync(root), ["tools"], "no state folder created");
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it("runs up:local on the local stack with project-local state and an empty kubeconfig", () => {
    const { root, script } = scratchProject();
    // A stand-in `pulumi` that records its arguments and the environment it got.
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), "fake-pulumi-"));
    const log = path.join(bin, "calls.log");
    fs.writeFileSync(
      path.join(bin, "pulumi"),
      `#!/bin/bash\necho "$* | $PULUMI_BACKEND_URL | $KUBECONFIG | $(wc -c < "$KUBECONFIG")" >> "${log}"\n`,
      { mode: 0o755 },
    );
    try {
      // Started from the script's own folder, as `bash up-local.sh` would be.
      const run = spawnSync("/bin/bash", ["up-local.sh"], {
        cwd: path.dirname(script),
        env: { PATH: `${bin}:/usr/bin:/bin`, KUBECONFIG: "/home/someone/.kube/config" },
        encoding: "utf8",
      });
      assert.equal(run.status, 0, run.stderr);
      const calls = fs.readFileSync(log, "utf8").trim().split("\n");
      assert.equal(calls.length, 2);
      const [select, up] = calls.map((c) => c.split(" | "));
      assert.equal(select[0], "stack select --create local");
      assert.equal(up[0], "up --stack local --yes");
      for (const call of [select, up]) {
        assert.equal(call[1], `file://${fs.realpathSync(root)}/.pulumi-state`);
        assert.notEqual(call[2], "/home/someone/.kube/config");
        assert.equal(call[3].trim(), "0", "the kubeconfig it sees is empty");
      }
      assert.ok(fs.statSync(path.join(root, ".pulumi-state")).isDirectory());
    } finally {
      fs.rmSync(bin, { recursive: true, force: true });
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it("runs just the named spec file with `npx mocha <file>`, and every spec file with npm test", () => {
    const mocha = require.resolve("mocha/bin/mocha.js");
    const listed = (args: string[]) => {
      const run = spawnSync(process.execPath, [mocha, "--dry-run", "--reporter", "json", ...args], {
        cwd: PROJECT_ROOT,
        encoding: "utf8",
      });
      assert.equal(run.status, 0, run.stderr);
      const report = JSON.parse(run.stdout) as { tests: { file: string }[] };
      return new Set(report.tests.map((t) => path.relative(PROJECT_ROOT, t.file)));
    };
    assert.deepEqual([...listed(["tests/newcomer.spec.ts"])], ["tests/newcomer.spec.ts"]);
    const pkg = JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, "package.json"), "utf8")) as {
      scripts: Record<string, string>;
    };
    const glob = /^mocha '([^']+)'$/.exec(pkg.scripts.test)?.[1];
    assert.ok(glob, pkg.scripts.test);
    const specFiles = fs
      .readdirSync(path.join(PROJECT_ROOT, "tests"))
      .filter((f) => f.endsWith(".spec.ts"))
      .map((f) => `tests/${f}`);
    // The glob as mocha's CLI expands it (lib/cli/lookup-files.js), without loading every spec.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const lookupFiles = require("mocha/lib/cli/lookup-files") as (
      pattern: string,
      extensions: string[],
      recursive: boolean,
    ) => string[];
    const expanded = lookupFiles(path.join(PROJECT_ROOT, glob), ["ts"], false).map((f) =>
      path.relative(PROJECT_ROOT, f),
    );
    assert.deepEqual(expanded.sort(), specFiles.sort());
  });

  it("keeps a passing run quiet: the program's preview warnings are collected, not printed", async () => {
    const printed: string[] = [];
    const write = process.stderr.write.bind(process.stderr);
    const warn = console.warn;
    const log = console.log;
    process.stderr.write = ((chunk: string | Uint8Array) => {
      printed.push(String(chunk));
      return true;
    }) as typeof process.stderr.write;
    console.warn = console.log = (...args: unknown[]) => void printed.push(args.join(" "));
    let run;
    try {
      run = await runStack("staging");
    } finally {
      process.stderr.write = write;
      console.warn = warn;
      console.log = log;
    }
    assert.deepEqual(printed, []);
    assert.ok(
      run.warnings.some((w) => w.startsWith('kubernetesVersion "1.29"')),
      run.warnings.join("\n"),
    );
  });
});
