/**
 * Leaf keys rotate: at the first `pulumi up` of each `certificates.keyRotationHours` period and
 * whenever `certificates.keyEpoch` changes, every leaf (services, clients, the gateway's identity
 * and public certificate) gets a new key, CSR and certificate, its Secret is updated in place,
 * nothing is deleted and no pod restarts. Played on the dev stack by running the program at two
 * times against a model of the engine's and providers' replacement rules
 * (tests/harness/pki-update-model.ts).
 */
import assert from "node:assert/strict";
import { clock } from "../components/clock";
import { caResourceName, CertificateValidity, rotationPeriod, TrustState } from "../components/pki";
import { planPkiUpdate, shouldTriggerReplace } from "./harness/pki-update-model";
import {
  ProgramRun,
  runProgram,
  stackConfig,
  stackConfigWithCertificates,
  once,
} from "./harness/program";
import { restartedDeployments } from "./harness/update-model";
import { loadMeshConfig } from "../components/config";
import { createHash, X509Certificate } from "node:crypto";
import * as net from "node:net";
import * as tls from "node:tls";
import { CA_CERTIFICATE_USES } from "../components/pki";
import { fakeTlsResource, setFakeTlsClock } from "./harness/fake-tls";
import { dial } from "./harness/mtls";

const HOUR = 3_600_000;
const KEY = "tls:index/privateKey:PrivateKey";

/** The dev stack (with `certificates` overrides) run at time `at`; each run once. */
const devAt = once((at: number, certificates: Record<string, unknown> = {}): Promise<ProgramRun> =>
  runDevAt(at, certificates),
);

async function runDevAt(at: number, certificates: Record<string, unknown>): Promise<ProgramRun> {
  const saved = clock.now;
  clock.now = () => at;
  try {
    return await runProgram(stackConfigWithCertificates("dev", certificates));
  } finally {
    clock.now = saved;
  }
}

/** The leaves' keys: every key but the CA's. */
const leafKeyResources = (run: ProgramRun) =>
  run.resources.filter((r) => r.type === KEY && r.name !== `${caResourceName("mesh", "1")}-key`);
const leafKeys = (run: ProgramRun) =>
  leafKeyResources(run)
    .map((r) => r.name)
    .sort();

describe("key rotation", function () {
  const period = loadMeshConfig(stackConfig("dev")).certificates.keyRotationHours;
  /** The start of a rotation period, and two times either side of it. */
  const boundary = (rotationPeriod(period, Date.UTC(2027, 0, 1)) + 1) * period * HOUR;

  it("rotates every leaf once per certificate validity unless keyRotationHours says otherwise", () => {
    const model = loadMeshConfig(stackConfig("dev"));
    assert.equal(model.certificates.keyRotationHours, model.certificates.validityHours);
    assert.equal(rotationPeriod(24, 47.9 * HOUR), 1);
    assert.equal(rotationPeriod(24, 48 * HOUR), 2);
  });

  it("replaces nothing on a second run in the same rotation period", async () => {
    const before = await devAt(boundary + HOUR);
    const after = await devAt(boundary + 2 * HOUR);
    assert.deepEqual(planPkiUpdate(before, after), {
      replaced: [],
      created: [],
      objects: [],
      deleted: [],
    });
  });

  it("crossing a rotation boundary re-keys every leaf: new key, CSR and certificate, Secrets updated in place, no Kubernetes object deleted, no pod restarted", async () => {
    const before = await devAt(boundary - HOUR);
    const after = await devAt(boundary + HOUR);
    const plan = planPkiUpdate(before, after);
    const leaves = leafKeys(after).map((k) => k.replace(/-key$/, ""));
    assert.deepEqual(leaves, [
      "mesh-bookapi",
      "mesh-bookapi-mcp-server",
      "mesh-gateway-edge",
      "mesh-gateway-identity",
    ]);
    const expected = leaves.flatMap((leaf) => [
      `${KEY}::${leaf}-key`,
      `tls:index/certRequest:CertRequest::${leaf}-csr`,
      `tls:index/locallySignedCert:LocallySignedCert::${leaf}-cert`,
    ]);
    assert.deepEqual([...plan.replaced].sort(), expected.sort());
    assert.ok(!plan.replaced.some((r) => r.includes("mesh-ca")), "the CA keeps its key");
    assert.deepEqual(plan.created, []);
    assert.deepEqual(plan.deleted, []);
    assert.deepEqual(
      plan.objects.sort((a, b) => (a.object < b.object ? -1 : 1)),
      [
        { object: "Secret/bookapi-mcp-server-tls", action: "update" },
        { object: "Secret/bookapi-tls", action: "update" },
        { object: "Secret/mesh-gateway-edge-tls", action: "update" },
        { object: "Secret/mesh-gateway-tls", action: "update" },
      ],
    );
    assert.deepEqual(restartedDeployments(before, after), []);
  });

  it("re-keys every leaf at the next up when keyEpoch changes, and only then", async () => {
    const before = await devAt(boundary + HOUR);
    const rekeyed = await devAt(boundary + 2 * HOUR, { keyEpoch: "2027-01-incident" });
    const plan = planPkiUpdate(before, rekeyed);
    assert.equal(plan.replaced.filter((r) => r.startsWith(`${KEY}::`)).length, 4);
    const again = await devAt(boundary + 3 * HOUR, { keyEpoch: "2027-01-incident" });
    assert.deepEqual(planPkiUpdate(rekeyed, again).replaced, []);
  });

  it("replaces no key when upgrading a stack whose keys have no trigger recorded yet, in the preview as in the update", async () => {
    const current = await devAt(boundary + HOUR);
    // State from before: keys recorded without a replacement trigger.
    const old: ProgramRun = {
      ...current,
      resources: current.resources.map((r) => ({ ...r, replacementTrigger: undefined })),
    };
    assert.deepEqual(planPkiUpdate(old, current), {
      replaced: [],
      created: [],
      objects: [],
      deleted: [],
    });
    // Known at preview: a string, not the output of a resource created in the same update.
    const triggers = leafKeyResources(current).map((r) => r.replacementTrigger);
    assert.deepEqual(new Set(triggers), new Set([`${rotationPeriod(period, boundary + HOUR)}:`]));
  });

  it("follows the engine: a trigger replaces only against a recorded, different value", () => {
    assert.equal(shouldTriggerReplace("b", "a"), true);
    assert.equal(shouldTriggerReplace("a", "a"), false);
    assert.equal(shouldTriggerReplace("a", undefined), false, "nothing recorded: no replace");
    assert.equal(shouldTriggerReplace(undefined, "a"), false, "trigger removed: no replace");
  });

  it("shows each leaf's dates and key epoch in the stack outputs, and the CA's expiry, nothing secret", async () => {
    const run = await devAt(boundary + HOUR);
    const certificates = run.outputs.certificates as Record<string, CertificateValidity>;
    assert.deepEqual(Object.keys(certificates).sort(), [
      "gateway/edge",
      "gateway/identity",
      "service/bookapi",
      "service/bookapi-mcp-server",
    ]);
    const model = loadMeshConfig(stackConfig("dev"));
    for (const [leaf, v] of Object.entries(certificates)) {
      assert.ok(Date.parse(v.notBefore) < Date.parse(v.renewalDue), leaf);
      assert.equal(
        Date.parse(v.notAfter) - Date.parse(v.renewalDue),
        model.certificates.earlyRenewalHours * HOUR,
      );
      assert.equal(v.keyEpoch, `${rotationPeriod(period, boundary + HOUR)}:`);
      assert.match(v.publicKeySha256, /^[0-9a-f]{64}$/);
    }
    // The public key of the certificate in the Secret, not anything secret.
    const secretCert = run.resources.find(
      (r) => r.name === "mesh-bookapi-cert" && r.type.startsWith("tls:"),
    )?.state.certPem;
    const spki = new X509Certificate(String(secretCert)).publicKey.export({
      type: "spki",
      format: "der",
    });
    assert.equal(
      certificates["service/bookapi"].publicKeySha256,
      createHash("sha256").update(spki).digest("hex"),
    );
    const trust = run.outputs.trust as TrustState;
    assert.deepEqual([trust.signing, trust.trusted], ["1", ["1"]]);
    assert.match(trust.generations["1"].caCertificateSha256, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
    assert.ok(
      Date.parse(trust.generations["1"].renewalDue) < Date.parse(trust.generations["1"].notAfter),
    );
    assert.equal(
      trust.bundleSha256,
      createHash("sha256").update(String(run.outputs.caCertificate)).digest("hex"),
    );
    assert.ok(!run.secretOutputs.includes("certificates") && !run.secretOutputs.includes("trust"));
    assert.doesNotMatch(JSON.stringify([certificates, trust]), /PRIVATE KEY|BEGIN/);
  });

  it("warns at preview when a renewal window sees fewer than two runs of the stated schedule", async () => {
    const run = await devAt(boundary, { upEveryHours: 200 });
    // dev: earlyRenewalHours 360 (< 400), caEarlyRenewalHours 720 (fine).
    assert.deepEqual(
      run.warnings.filter((w) => w.includes("upEveryHours")),
      [
        "certificates.earlyRenewalHours (360 h) is shorter than two runs of the stated schedule (upEveryHours 200 h): a service certificate may expire before a run renews it; run pulumi up more often or lengthen the window",
      ],
    );
    const daily = await devAt(boundary, { upEveryHours: 24 });
    assert.deepEqual(
      daily.warnings.filter((w) => w.includes("upEveryHours")),
      [],
    );
  });

  it("keeps trust across a CA renewal with the same key: real handshakes verify old leaves against the new CA and new leaves against the old", async () => {
    const key = await fakeTlsResource("tls:index/privateKey:PrivateKey", {
      algorithm: "ECDSA",
      ecdsaCurve: "P256",
    });
    // As components/pki.ts makes the CA, re-issued later from the same key and subject.
    const caCert = async (at: Date) => {
      setFakeTlsClock(() => at);
      try {
        return await fakeTlsResource("tls:index/selfSignedCert:SelfSignedCert", {
          privateKeyPem: key.privateKeyPem,
          subject: { commonName: "bookapi-mesh CA (default)", organization: "bookapi-mesh" },
          isCaCertificate: true,
          setSubjectKeyId: true,
          allowedUses: CA_CERTIFICATE_USES,
          validityPeriodHours: 87600,
          earlyRenewalHours: 720,
        });
      } finally {
        setFakeTlsClock();
      }
    };
    const oldCa = await caCert(new Date("2025-01-01T00:00:00Z"));
    const newCa = await caCert(new Date("2026-06-01T00:00:00Z"));
    assert.notEqual(oldCa.certPem, newCa.certPem);
    const leafFrom = async (ca: Record<string, unknown>) => {
      const leafKey = await fakeTlsResource("tls:index/privateKey:PrivateKey", {
        algorithm: "ECDSA",
        ecdsaCurve: "P256",
      });
      const csr = await fakeTlsResource("tls:index/certRequest:CertRequest", {
        privateKeyPem: leafKey.privateKeyPem,
        subject: { commonName: "bookapi.default.svc.cluster.local", organization: "bookapi-mesh" },
        dnsNames: ["bookapi.default.svc.cluster.local"],
        uris: [],
      });
      const cert = await fakeTlsResource("tls:index/locallySignedCert:LocallySignedCert", {
        certRequestPem: csr.certRequestPem,
        caCertPem: ca.certPem,
        caPrivateKeyPem: key.privateKeyPem,
        allowedUses: ["digital_signature", "server_auth", "client_auth"],
        validityPeriodHours: 2160,
        earlyRenewalHours: 360,
      });
      return { cert: String(cert.certPem), key: String(leafKey.privateKeyPem) };
    };
    for (const [signer, trusted] of [
      [oldCa, newCa],
      [newCa, oldCa],
    ]) {
      const leaf = await leafFrom(signer);
      const server = tls.createServer({ ...leaf });
      server.on("secureConnection", (s) => s.end("ok\n"));
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      try {
        const outcome = await dial((server.address() as net.AddressInfo).port, {
          ca: String(trusted.certPem),
          servername: "bookapi.default.svc.cluster.local",
        });
        assert.equal(outcome.error, undefined, JSON.stringify(outcome.error));
        assert.equal(outcome.response, "ok");
      } finally {
        server.close();
      }
    }
  });
});
