/**
 * A CA re-key in three `pulumi up`s (trust old and new, sign with new, drop old), shown with real
 * TLS handshakes: at each step, a pod still on the previous step (its certificate and trust
 * bundle as they were) and a pod already on the next one reach each other in both directions;
 * a step skipped (signing with a generation some pods do not trust yet, or dropping one some
 * certificates are still signed by) refuses the handshake. Each step's pods come from one run of
 * the program (its generated TLS settings and certificates); the other side is issued from the
 * same run's CA keys with the same names, since each run of the mocks draws new keys.
 */
import assert from "node:assert/strict";
import {
  call,
  EmulatedInbound,
  inboundListener,
  InboundListener,
  issueServiceCertificate,
  namesOf,
  sidecar,
  upstreamCaller,
  upstreamCluster,
  UpstreamTls,
} from "./harness/mtls";
import {
  ProgramRun,
  runProgram,
  runProgramOutcome,
  stackConfig,
  stackConfigWithCertificates,
  once,
} from "./harness/program";
import { loadMeshConfig } from "../components/config";
import { caResourceName, pemBundle } from "../components/pki";

type Phase = { signing: string; trusted: string[] };

const PHASES: Record<string, Phase> = {
  before: { signing: "1", trusted: ["1"] },
  trustBoth: { signing: "1", trusted: ["1", "2"] },
  signNew: { signing: "2", trusted: ["1", "2"] },
  dropOld: { signing: "2", trusted: ["2"] },
};

/** The dev stack at one step; one run per step, shared by the tests that read it. */
const devWith = once((ca: Phase) => runProgram(stackConfigWithCertificates("dev", { ca })));

/** A workload as one step leaves it: the certificate it presents and the bundle it trusts. */
interface Pod {
  cert: string;
  key: string;
  trusts: string;
}

/** The run's CA of a generation: its certificate and key. */
function caOf(run: ProgramRun, generation: string): { cert: string; key: string } {
  const base = caResourceName("mesh", generation);
  const find = (type: string, name: string) =>
    run.resources.find((r) => r.type === type && r.name === name);
  const cert = find("tls:index/selfSignedCert:SelfSignedCert", `${base}-cert`)?.state.certPem;
  const key = find("tls:index/privateKey:PrivateKey", `${base}-key`)?.state.privateKeyPem;
  assert.ok(typeof cert === "string" && typeof key === "string", `CA ${generation}`);
  return { cert, key };
}

describe("a CA re-key in three steps", function () {
  /** bookapi-mcp-server calling bookapi, both as one step generated them. */
  async function generated(phase: Phase) {
    const run = await devWith(phase);
    const callee = inboundListener(sidecar(run, "bookapi"));
    const caller = upstreamCluster(sidecar(run, "bookapi-mcp-server"), "upstream_bookapi");
    return { run, callee, caller };
  }

  /** The same workload as another step leaves it: signed by `signer`, trusting `trusted`. */
  async function podOn(
    run: ProgramRun,
    like: string,
    signer: string,
    trusted: string[],
  ): Promise<Pod> {
    const leaf = await issueServiceCertificate(caOf(run, signer), namesOf(like));
    return { ...leaf, trusts: pemBundle(trusted.map((g) => caOf(run, g).cert)) };
  }

  /** Whether `from` (as bookapi-mcp-server) gets through to `to` (as bookapi), handshakes real. */
  async function reaches(
    callee: InboundListener,
    caller: UpstreamTls,
    to: Pod,
    from: Pod,
  ): Promise<boolean> {
    const listener = {
      ...callee,
      tls: { ...callee.tls, cert: to.cert, key: to.key, ca: to.trusts },
    };
    const server = await EmulatedInbound.start({ listener });
    try {
      const outcome = await call(server.port, {
        ...upstreamCaller(caller),
        cert: from.cert,
        key: from.key,
        ca: from.trusts,
      });
      const verdict = await server.nextVerdict();
      return verdict.accepted && outcome.response !== undefined;
    } finally {
      await server.close();
    }
  }

  /** Both directions between a pod on `previous` and one on `next`, from one run on `runAt`. */
  async function bothWays(runAt: Phase, previous: Phase, next: Phase) {
    const { run, callee, caller } = await generated(runAt);
    const pod = (p: Phase, like: string) => podOn(run, like, p.signing, p.trusted);
    const result: boolean[] = [];
    for (const [server, client] of [
      [await pod(next, callee.tls.cert), await pod(previous, caller.cert)],
      [await pod(previous, callee.tls.cert), await pod(next, caller.cert)],
    ])
      result.push(await reaches(callee, caller, server, client));
    return result;
  }

  it("generates what each step says: every sidecar trusts the bundle of the trusted generations, leaves are signed by the signing one", async () => {
    const { run, callee, caller } = await generated(PHASES.signNew);
    const bundle = pemBundle([caOf(run, "1").cert, caOf(run, "2").cert]);
    assert.equal(callee.tls.ca, bundle);
    assert.equal(caller.ca, bundle);
    const { X509Certificate } = await import("node:crypto");
    const leaf = new X509Certificate(callee.tls.cert);
    assert.ok(leaf.verify(new X509Certificate(caOf(run, "2").cert).publicKey), "signed by 2");
    assert.ok(!leaf.verify(new X509Certificate(caOf(run, "1").cert).publicKey));
    assert.equal(run.outputs.caCertificate, bundle);
  });

  for (const [title, runAt, previous, next] of [
    ["1: trust the new CA too", PHASES.trustBoth, PHASES.before, PHASES.trustBoth],
    ["2: sign with the new CA", PHASES.signNew, PHASES.trustBoth, PHASES.signNew],
    ["3: drop the old CA", PHASES.signNew, PHASES.signNew, PHASES.dropOld],
  ] as const) {
    it(`step ${title}: pods on either side of it reach each other both ways`, async () => {
      assert.deepEqual(await bothWays(runAt, previous, next), [true, true]);
    });
  }

  it("refuses the handshakes that a skipped step breaks: signing with a CA some pods do not trust yet, dropping one that still signs some pods", async () => {
    // Straight to signing with 2: a pod still trusting only 1 refuses the new certificates, as
    // caller and as callee (both sides verify in mTLS).
    assert.deepEqual(await bothWays(PHASES.signNew, PHASES.before, PHASES.signNew), [false, false]);
    // Straight to dropping 1: a pod trusting only 2 refuses certificates still signed by 1.
    assert.deepEqual(await bothWays(PHASES.signNew, PHASES.trustBoth, PHASES.dropOld), [
      false,
      false,
    ]);
  });

  it("refuses at preview a signing generation that is not trusted, naming the key", () => {
    const config = stackConfig("dev");
    assert.throws(
      () =>
        loadMeshConfig({
          ...config,
          "bookapi-mesh:certificates": JSON.stringify({ ca: { signing: "2", trusted: ["1"] } }),
        }),
      /bookapi-mesh:certificates\.ca\.signing: must be one of trusted \(1\)/,
    );
  });

  it("says at preview, while two generations are trusted, what to wait for before the next step", async () => {
    const run = await devWith(PHASES.trustBoth);
    const said = run.warnings.filter((w) => w.startsWith("certificates.ca:"));
    assert.equal(said.length, 1);
    assert.match(said[0], /every sidecar trusts 1, 2 and leaves are signed by 1/);
    assert.match(said[0], /wait until every pod has this update/);
    assert.deepEqual(
      (await devWith(PHASES.before)).warnings.filter((w) => w.startsWith("certificates.ca:")),
      [],
    );
  });

  it("refuses a CA key change in place at preview, naming the generation and the procedure, and lets the same change through a new generation", async () => {
    // The CA key keeps its algorithm under ignoreChanges; its state says ECDSA P256.
    const kept = { "mesh-ca-key": { algorithm: "ECDSA", ecdsaCurve: "P256", rsaBits: 2048 } };
    const withCertificates = (c: Record<string, unknown>) => stackConfigWithCertificates("dev", c);
    const inPlace = await runProgramOutcome(
      withCertificates({ algorithm: "RSA", rsaBits: 2048, ecdsaCurve: undefined }),
      "test",
      kept,
    );
    assert.match(
      String(inPlace.error),
      /the CA of generation "1" has an ECDSA P256 key and the config asks for RSA 2048\. A CA key cannot change in place/,
    );
    assert.match(String(inPlace.error), /keys: \{ "2": <the new key> \}/);
    const created = (run: ProgramRun, type: string) =>
      run.resources.filter((r) => r.type === type).map((r) => r.name);
    assert.ok(
      !created(inPlace.run, "tls:index/selfSignedCert:SelfSignedCert").includes("mesh-ca-cert"),
      "nothing is signed with the refused key",
    );
    // Leaves move to RSA, generation 1 keeps its key, generation 2 brings the RSA CA.
    const viaGeneration = await runProgramOutcome(
      withCertificates({
        algorithm: "RSA",
        rsaBits: 2048,
        ecdsaCurve: undefined,
        ca: {
          signing: "1",
          trusted: ["1", "2"],
          keys: {
            "1": { algorithm: "ECDSA", ecdsaCurve: "P256" },
            "2": { algorithm: "RSA", rsaBits: 2048 },
          },
        },
      }),
      "test",
      kept,
    );
    assert.equal(viaGeneration.error, undefined, String(viaGeneration.error));
  });

  it("refuses a step skipped across deployments, read from the stack's last trust output, before any cluster object is touched", async () => {
    const attempt = (last: Phase, next: Phase) =>
      runProgramOutcome(stackConfigWithCertificates("dev", { ca: next }), "test", {
        "organization/bookapi-mesh/test": { outputs: { trust: { ...last } } },
      });
    const kubernetesObjects = (run: ProgramRun) =>
      run.resources.filter((r) => r.type.startsWith("kubernetes:"));

    const signEarly = await attempt(PHASES.before, PHASES.signNew);
    assert.match(
      String(signEarly.error),
      /certificates\.ca\.signing: "2" would sign certificates that pods which trust only 1/,
    );
    assert.deepEqual(kubernetesObjects(signEarly.run), []);

    const dropEarly = await attempt(PHASES.trustBoth, PHASES.dropOld);
    assert.match(
      String(dropEarly.error),
      /certificates\.ca\.trusted: dropping "1" while the last deployment's certificates are still signed by it/,
    );
    assert.deepEqual(kubernetesObjects(dropEarly.run), []);

    for (const [last, next] of [
      [PHASES.before, PHASES.trustBoth],
      [PHASES.trustBoth, PHASES.signNew],
      [PHASES.signNew, PHASES.dropOld],
      [PHASES.before, PHASES.before],
    ] as const) {
      const step = await attempt(last, next);
      assert.equal(
        step.error,
        undefined,
        `${JSON.stringify(last)} -> ${JSON.stringify(next)}: ${String(step.error)}`,
      );
    }
  });
});
