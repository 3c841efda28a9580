/**
 * The offline render (`npm run render`, tools/render/): folder safety, stacks of one's own,
 * determinism, the kustomize layout, the throwaway certificates, and the goldens under
 * tests/golden/<stack>/ (refresh with `npm run render:golden`).
 *
 * Each golden stack runs once (before), and two more runs check a re-render and a stack given
 * by path, so the whole file stays at a few seconds.
 */
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import * as crypto from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { parse, parseAllDocuments } from "yaml";
import { main } from "../tools/render/cli";
import { PROJECT_ROOT } from "../tools/render/engine";
import { GOLDEN_STACKS, goldenFolder } from "../tools/render/golden";
import { MARKER, writeOutput } from "../tools/render/output";
import {
  OutputFile,
  REDACTED,
  RenderRun,
  renderFiles,
  resolveStack,
  runStack,
} from "../tools/render/render";
import { THROWAWAY_OU } from "../tools/render/throwaway-tls";
import { accessLine } from "../components/access";
import { domAfterScripts, findChromium } from "./harness/chromium";

/** Every file under dir, relative, sorted. */
function listFiles(dir: string): string[] {
  return (fs.readdirSync(dir, { recursive: true }) as string[])
    .filter((f) => fs.statSync(path.join(dir, f)).isFile())
    .map((f) => f.split(path.sep).join("/"))
    .sort();
}

/** Asserts that two folders hold the same files with the same bytes, naming the first change. */
function assertSameFolder(actual: string, expected: string, hint: string, ignore: string[] = []) {
  const files = listFiles(actual).filter((f) => !ignore.includes(f));
  assert.deepEqual(files, listFiles(expected), `${hint}: the set of files differs`);
  for (const f of files) {
    const a = fs.readFileSync(path.join(actual, f), "utf8");
    const e = fs.readFileSync(path.join(expected, f), "utf8");
    if (a === e) continue;
    const [al, el] = [a.split("\n"), e.split("\n")];
    const line = al.findIndex((l, i) => l !== el[i]);
    assert.fail(
      `${hint}: ${f} differs at line ${line + 1}\n  expected: ${el[line]}\n  actual:   ${al[line]}`,
    );
  }
}

const GOLDEN_HINT = (stack: string) =>
  `a fresh render of ${stack} differs from tests/golden/${stack} (if the change is intended, run \`npm run render:golden\` and commit the diff)`;

const fileOf = (files: OutputFile[], p: string): string => {
  const f = files.find((x) => x.path === p);
  assert.ok(f, `no ${p} in the render`);
  return f.content;
};

describe("the offline render", () => {
  const runs = new Map<string, RenderRun>();
  let tmp: string;

  before(async () => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "bookapi-mesh-render-"));
    for (const stack of GOLDEN_STACKS) runs.set(stack, await runStack(resolveStack(stack)));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  const render = (stack: string, includeSecrets = false) =>
    renderFiles(runs.get(stack)!, { includeSecrets });

  it("matches the golden files byte for byte (manifests, Envoy files, marker)", () => {
    for (const stack of GOLDEN_STACKS) {
      const dir = path.join(tmp, "golden", stack);
      writeOutput(dir, stack, render(stack));
      assertSameFolder(dir, goldenFolder(stack), GOLDEN_HINT(stack));
    }
  });

  it("refuses a non-empty folder without its marker (and `.`), touching nothing", async () => {
    const foreign = path.join(tmp, "foreign");
    fs.mkdirSync(foreign);
    fs.writeFileSync(path.join(foreign, "notes.txt"), "mine");
    await assert.rejects(
      main(["dev", foreign]),
      /not empty and has no \.bookapi-mesh-render marker/,
    );
    await assert.rejects(main(["dev", "."], foreign), /not empty and has no \.bookapi-mesh-render/);
    assert.deepEqual(listFiles(foreign), ["notes.txt"]);
    // The project, or any folder above it, even with a marker.
    await assert.rejects(main(["dev", "."], PROJECT_ROOT), /project folder or contains it/);
    await assert.rejects(main(["dev", ".."], PROJECT_ROOT), /project folder or contains it/);
    // A marker naming a file outside its folder deletes nothing.
    const tampered = path.join(tmp, "tampered");
    fs.mkdirSync(tampered);
    fs.writeFileSync(path.join(tampered, MARKER), "../foreign/notes.txt\n");
    await assert.rejects(main(["dev", tampered]), /not a file inside the folder/);
    // Its own folder, but a file of yours where it wants to write: refused, not overwritten.
    fs.writeFileSync(path.join(tampered, MARKER), "# nothing written yet\n");
    fs.mkdirSync(path.join(tampered, "manifests"));
    fs.writeFileSync(path.join(tampered, "manifests", "kustomization.yaml"), "mine");
    assert.throws(() => writeOutput(tampered, "dev", render("dev")), /refusing to overwrite/);
    assert.equal(
      fs.readFileSync(path.join(tampered, "manifests/kustomization.yaml"), "utf8"),
      "mine",
    );
    assert.deepEqual(listFiles(foreign), ["notes.txt"]);
  });

  it("follows no symbolic link and deletes nothing when its marker lists a folder or a link", () => {
    const victim = path.join(tmp, "victim");
    fs.mkdirSync(victim);
    fs.writeFileSync(path.join(victim, "keep.txt"), "keep");
    const files = render("dev");
    // The marker itself is a link to a file elsewhere.
    const linkedMarker = path.join(tmp, "linked-marker");
    fs.mkdirSync(linkedMarker);
    fs.symlinkSync(path.join(victim, "keep.txt"), path.join(linkedMarker, MARKER));
    assert.throws(() => writeOutput(linkedMarker, "dev", files), /symbolic link/);
    // A listed file reached through a linked folder.
    const linkedFolder = path.join(tmp, "linked-folder");
    fs.mkdirSync(linkedFolder);
    fs.symlinkSync(victim, path.join(linkedFolder, "manifests"));
    fs.writeFileSync(path.join(linkedFolder, MARKER), "manifests/keep.txt\n");
    assert.throws(() => writeOutput(linkedFolder, "dev", files), /symbolic link/);
    // A listed folder, after a listed file: refused before the file is deleted.
    const listsFolder = path.join(tmp, "lists-folder");
    fs.mkdirSync(path.join(listsFolder, "sub"), { recursive: true });
    fs.writeFileSync(path.join(listsFolder, "a.txt"), "a");
    fs.writeFileSync(path.join(listsFolder, MARKER), "a.txt\nsub\n");
    assert.throws(() => writeOutput(listsFolder, "dev", files), /not a regular file/);
    assert.equal(fs.readFileSync(path.join(listsFolder, "a.txt"), "utf8"), "a");
    assert.deepEqual(listFiles(victim), ["keep.txt"]);
    assert.equal(fs.readFileSync(path.join(victim, "keep.txt"), "utf8"), "keep");
  });

  it("re-renders into its own folder byte-identically, deleting only the files it wrote", async () => {
    const dir = path.join(tmp, "again");
    writeOutput(dir, "dev", render("dev"));
    // Yours: kept. A file an earlier render wrote but this one does not: removed.
    fs.writeFileSync(path.join(dir, "notes.txt"), "mine");
    fs.writeFileSync(path.join(dir, "manifests", "local-patch.yaml"), "mine");
    fs.mkdirSync(path.join(dir, "envoy", "gone", "etc"), { recursive: true });
    fs.writeFileSync(path.join(dir, "envoy", "gone", "etc", "envoy.json"), "{}");
    fs.appendFileSync(path.join(dir, MARKER), "envoy/gone/etc/envoy.json\n");

    await main(["dev", dir]); // a second run of the program: keys and signatures come out equal
    assert.equal(fs.readFileSync(path.join(dir, "notes.txt"), "utf8"), "mine");
    assert.equal(fs.readFileSync(path.join(dir, "manifests", "local-patch.yaml"), "utf8"), "mine");
    assert.ok(!fs.existsSync(path.join(dir, "envoy", "gone")), "emptied folders are removed");
    assertSameFolder(dir, goldenFolder("dev"), "a second render of dev", [
      "notes.txt",
      "manifests/local-patch.yaml",
    ]);
  });

  it("renders a stack of one's own given by path (RSA keys too); a missing one names the file", async () => {
    const own = path.join(tmp, "own");
    fs.mkdirSync(own);
    const file = path.join(own, "Pulumi.mine.yaml");
    const devConfig = fs.readFileSync(path.join(PROJECT_ROOT, "Pulumi.dev.yaml"), "utf8");
    fs.writeFileSync(
      file,
      devConfig
        .replace("algorithm: ECDSA", "algorithm: RSA")
        .replace("ecdsaCurve: P256", "rsaBits: 2048"),
    );
    const out = path.join(own, "out");
    const message = await main([file, out, "--include-secrets"]);
    assert.match(message, /rendered stack mine/);
    // It suggests what throwaway output is good for, never applying it, and shows the warnings
    // preview would (dev's gateway certificate comes from the mesh CA).
    assert.match(message, /kubectl kustomize .*manifests/);
    assert.match(message, /diff -ru/);
    assert.doesNotMatch(message, /kubectl apply/);
    assert.match(message, /^warning: gateway: tls\.selfSigned/m);
    const certs = path.join(out, "envoy", "bookapi", "etc", "envoy", "certs");
    const cert = new crypto.X509Certificate(fs.readFileSync(path.join(certs, "tls.crt")));
    const ca = new crypto.X509Certificate(fs.readFileSync(path.join(certs, "ca.crt")));
    const key = crypto.createPrivateKey(fs.readFileSync(path.join(certs, "tls.key")));
    assert.equal(key.asymmetricKeyType, "rsa");
    assert.ok(cert.verify(ca.publicKey) && cert.checkPrivateKey(key));
    assert.equal((fs.statSync(path.join(certs, "tls.key")).mode & 0o777).toString(8), "600");
    // Keys derive from the stack name: the same config as dev under another name, other keys.
    assert.notEqual(
      fs.readFileSync(path.join(certs, "ca.crt"), "utf8"),
      fs.readFileSync(
        path.join(goldenFolder("dev"), "envoy/bookapi/etc/envoy/certs/ca.crt"),
        "utf8",
      ),
    );

    const gone = path.join(own, "Pulumi.gone.yaml");
    await assert.rejects(main([gone]), (err: Error) => err.message.includes(gone));
    await assert.rejects(main(["gone"]), (err: Error) =>
      err.message.includes(path.join(PROJECT_ROOT, "Pulumi.gone.yaml")),
    );
  });

  it("writes manifests that `kubectl kustomize` builds, Namespace first, kinds in the files' order", () => {
    const dir = path.join(tmp, "kustomize");
    const files = render("prod");
    writeOutput(dir, "prod", files);
    let built: string;
    try {
      built = execFileSync("kubectl", ["kustomize", path.join(dir, "manifests")], {
        encoding: "utf8",
      });
    } catch (err) {
      throw new Error(
        `kubectl kustomize failed (${(err as Error).message}); without kubectl, install it (Debian: apt-get install kubernetes-client)`,
      );
    }
    type Doc = { kind: string; metadata: { name: string } };
    const builtDocs = parseAllDocuments(built).map((d) => d.toJS() as Doc);
    const listed = (
      parse(fileOf(files, "manifests/kustomization.yaml")) as { resources: string[] }
    ).resources.map((f) => parse(fileOf(files, `manifests/${f}`)) as Doc);
    assert.equal(`${builtDocs[0].kind}/${builtDocs[0].metadata.name}`, "Namespace/bookapi");
    const id = (d: Doc) => `${d.kind}/${d.metadata.name}`;
    assert.deepEqual(builtDocs.map(id).sort(), listed.map(id).sort(), "every object, once");
    // Kustomize sorts by kind (its "legacy" order); within a kind its versions differ.
    const kinds = (docs: Doc[]) => docs.map((d) => d.kind).filter((k, i, all) => all[i - 1] !== k);
    assert.deepEqual(
      kinds(builtDocs),
      kinds(listed),
      "kustomize applies kinds in the files' order",
    );
  });

  it("issues certificates that chain to the throwaway CA with each service's names", () => {
    const files = render("prod", true);
    for (const service of ["bookapi", "bookapi-mcp-server"]) {
      const at = (f: string) => fileOf(files, `envoy/${service}/etc/envoy/certs/${f}`);
      const cert = new crypto.X509Certificate(at("tls.crt"));
      const ca = new crypto.X509Certificate(at("ca.crt"));
      assert.ok(ca.ca && ca.verify(ca.publicKey), "the CA is self-signed");
      assert.ok(cert.checkIssued(ca) && cert.verify(ca.publicKey), `${service} chains to the CA`);
      assert.ok(cert.checkPrivateKey(crypto.createPrivateKey(at("tls.key"))));
      assert.ok(cert.checkHost(`${service}.bookapi.svc.cluster.local`));
      assert.match(
        cert.subjectAltName ?? "",
        new RegExp(`URI:spiffe://cluster\\.local/ns/bookapi/sa/${service}`),
      );
      for (const c of [cert, ca]) assert.match(c.subject, new RegExp(`OU=${THROWAWAY_OU}`));
    }
    // Redacted by default: no private key anywhere.
    for (const f of render("prod")) assert.doesNotMatch(f.content, /PRIVATE KEY-----/, f.path);
    assert.equal(fileOf(render("prod"), "envoy/bookapi/etc/envoy/certs/tls.key"), REDACTED);
  });

  it("is product code: nothing under tools/, scripts/, components/, policy/ or index.ts imports tests/", () => {
    const files = [
      "index.ts",
      ...["tools", "scripts", "components", "policy"].flatMap((folder) =>
        listFiles(path.join(PROJECT_ROOT, folder))
          .filter((x) => /\.(ts|cjs|mjs|js)$/.test(x))
          .map((x) => `${folder}/${x}`),
      ),
    ];
    for (const f of files) {
      const text = fs.readFileSync(path.join(PROJECT_ROOT, f), "utf8");
      // Static imports, require() and dynamic import().
      assert.doesNotMatch(text, /(from\s+|require\(\s*|import\(\s*)["'][./]*tests\//, f);
    }
  });
  it("draws the access graph in a real browser (headless Chromium): every endpoint as a box holding its name and every allowed edge as a line between two drawn boxes, for each golden stack", async function () {
    const binary = findChromium();
    if (!binary) {
      if (process.env.CI) throw new Error("chromium is missing: .ci/run installs it");
      this.skip();
    }
    this.timeout(60_000);
    for (const stack of GOLDEN_STACKS) {
      const run = runs.get(stack) as RenderRun;
      const svg = renderFiles(run, { includeSecrets: false }).find((f) => f.path === "access.svg");
      assert.ok(svg, stack);
      // Measured in the page: each node's box and text, each edge's path and its ends.
      const page = `<!doctype html><html><body>${svg.content}<pre id="out"></pre><script>
        const root = document.querySelector("svg");
        const view = root.viewBox.baseVal;
        const within = (b) => b.x >= view.x - 1 && b.y >= view.y - 1 &&
          b.x + b.width <= view.x + view.width + 1 && b.y + b.height <= view.y + view.height + 1;
        const inside = (b) => b.width > 0 && b.height > 0 && within(b);
        const boxes = {};
        const nodes = [...document.querySelectorAll("g.node")].map((g) => {
          const rect = g.querySelector("rect").getBBox();
          const label = g.querySelector("text");
          const text = label.getBBox();
          boxes[g.dataset.node] = rect;
          // The box shows its own name, and the text lies inside the box on both axes.
          const holds = label.textContent === g.dataset.node && text.width > 0 &&
            text.x >= rect.x - 0.5 && text.x + text.width <= rect.x + rect.width + 0.5 &&
            text.y >= rect.y - 0.5 && text.y + text.height <= rect.y + rect.height + 0.5;
          return { name: g.dataset.node, drawn: inside(rect), textFits: holds };
        });
        const near = (p, b) => p.x >= b.x - 12 && p.x <= b.x + b.width + 12 && p.y >= b.y - 12 && p.y <= b.y + b.height + 12;
        const edges = [...document.querySelectorAll("g.edge")].map((g) => {
          const path = g.querySelector("path");
          const length = path.getTotalLength();
          const start = path.getPointAtLength(0), end = path.getPointAtLength(length);
          const from = boxes[g.dataset.from], to = boxes[g.dataset.to];
          // A straight horizontal line has a box of height 0: its length says it is drawn.
          return { from: g.dataset.from, to: g.dataset.to, drawn: length > 0 && within(path.getBBox()),
            joins: !!from && !!to && near(start, from) && near(end, to) };
        });
        document.getElementById("out").textContent = JSON.stringify({ nodes, edges });
      </script></body></html>`;
      const dom = domAfterScripts(binary as string, page);
      const out = /<pre id="out">([^<]*)<\/pre>/.exec(dom)?.[1];
      assert.ok(out, `${stack}: the page's script wrote nothing`);
      const result = JSON.parse(out.replace(/&quot;/g, '"').replace(/&amp;/g, "&")) as {
        nodes: { name: string; drawn: boolean; textFits: boolean }[];
        edges: { from: string; to: string; drawn: boolean; joins: boolean }[];
      };
      const expected = [...new Set(run.access.flatMap((e) => [e.from, e.to]))].sort();
      assert.deepEqual(result.nodes.map((n) => n.name).sort(), expected, stack);
      for (const n of result.nodes)
        assert.ok(n.drawn && n.textFits, `${stack}: ${JSON.stringify(n)}`);
      assert.equal(result.edges.length, new Set(run.access.map(accessLine)).size, stack);
      for (const e of result.edges) assert.ok(e.drawn && e.joins, `${stack}: ${JSON.stringify(e)}`);
    }
  });
});
