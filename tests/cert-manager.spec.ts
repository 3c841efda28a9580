/**
 * cert-manager mode (`certificates.issuer: cert-manager`): what the program registers, checked
 * against cert-manager's published schemas and admission rules, and what the certificates
 * cert-manager would issue from it do in real TLS handshakes (tests/harness/cert-manager-emulator.ts
 * issues them as cert-manager's CA issuer does).
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { loadMeshConfig } from "../components/config";
import { CertificateSpec } from "../components/identity";
import { CERT_FILES, CERT_MANAGER_NAMES, SIDECAR_PATHS } from "../components/names";
import { serviceCertificateUses } from "../components/pki";
import { admissionProblems, issueAllCertificates } from "./harness/cert-manager-emulator";
import {
  checkKubernetesReferences,
  KubeObject,
  loadKubernetesSchemas,
  providedObjects,
  validateKubernetesObject,
} from "./harness/kubernetes-schema";
import {
  call,
  EmulatedInbound,
  inboundListener,
  sidecar,
  upstreamCaller,
  upstreamCluster,
} from "./harness/mtls";
import {
  envoyConfigMapOf,
  findObject,
  kindOf,
  kubernetesObjects,
  metadataName,
  once,
  ProgramRun,
  runProgram,
  runProgramOutcome,
  stackConfig,
  stackConfigWithCertificates,
} from "./harness/program";
import { planUpdate, restartedDeployments, runsAfter } from "./harness/update-model";

const WORKLOADS = ["bookapi", "bookapi-mcp-server", "mesh-gateway"];
const CALLEES = ["bookapi", "bookapi-mcp-server"];

const devConfig = (issuer: string, patch: Record<string, unknown> = {}) =>
  stackConfigWithCertificates("dev", { issuer, ...patch });
/** The dev stack in either mode; cert-manager's Secrets added once its Certificates are issued. */
const devIn = once(async (issuer: "pulumi" | "cert-manager") => {
  const run = await runProgram(devConfig(issuer), "dev");
  if (issuer === "cert-manager") await issueAllCertificates(run);
  return run;
});

const specOf = (run: ProgramRun, name: string) =>
  findObject(run, "Certificate", name).inputs.spec as CertificateSpec;
const objectsOf = (run: ProgramRun, kind: string) =>
  kubernetesObjects(run).filter((r) => kindOf(r.type) === kind);
/** A file as a workload's Envoy reads it. */
const fileOf = (run: ProgramRun, workload: string, file: string) =>
  sidecar(run, workload).readFile(`${SIDECAR_PATHS.certDir}/${file}`);
const asKubeObject = (r: { inputs: Record<string, unknown> }) =>
  JSON.parse(JSON.stringify(r.inputs)) as KubeObject;

/** A certificate's key usage bits and extended key usages, as its extensions carry them. */
function usesOf(pem: string): { keyUsage?: number; extended: string[] } {
  const cert = new x509.X509Certificate(pem);
  return {
    keyUsage: cert.getExtension(x509.KeyUsagesExtension)?.usages,
    extended: [...(cert.getExtension(x509.ExtendedKeyUsageExtension)?.usages ?? [])].map(String),
  };
}

describe("cert-manager mode (certificates.issuer cert-manager)", function () {
  before(loadKubernetesSchemas);

  it("gives each workload a Certificate with the names, uses, key type and lifetime the program's own certificate has, into <workload>-cert", async () => {
    const [own, managed] = [await devIn("pulumi"), await devIn("cert-manager")];
    const c = loadMeshConfig(devConfig("cert-manager")).certificates;
    for (const workload of WORKLOADS) {
      const spec = specOf(managed, workload);
      const programs = new X509Certificate(fileOf(own, workload, CERT_FILES.certificate));
      assert.equal(
        `CN=${spec.commonName}\nO=${spec.subject.organizations[0]}`,
        programs.subject.split("\n").sort().join("\n"),
      );
      assert.deepEqual(
        [...spec.dnsNames.map((d) => `DNS:${d}`), ...spec.uris.map((u) => `URI:${u}`)].sort(),
        (programs.subjectAltName ?? "").split(", ").sort(),
      );
      assert.deepEqual(spec.usages, ["digital signature", "server auth", "client auth"]);
      assert.deepEqual(serviceCertificateUses(c.key), [
        "digital_signature",
        "server_auth",
        "client_auth",
      ]);
      assert.deepEqual(spec.privateKey, {
        algorithm: "ECDSA",
        size: 256,
        rotationPolicy: "Always",
      });
      assert.equal(programs.publicKey.asymmetricKeyDetails?.namedCurve, "prime256v1");
      assert.equal(spec.duration, `${c.validityHours}h`);
      assert.equal(spec.renewBefore, `${c.earlyRenewalHours}h`);
      assert.equal(spec.secretName, `${workload}-cert`);
      assert.deepEqual(spec.issuerRef, {
        group: "cert-manager.io",
        kind: "Issuer",
        name: CERT_MANAGER_NAMES.issuer("1"),
      });
      // The certificate cert-manager issued from it carries the same names and uses.
      const issued = new X509Certificate(fileOf(managed, workload, CERT_FILES.certificate));
      assert.equal(issued.subject, programs.subject);
      assert.equal(issued.subjectAltName, programs.subjectAltName);
      const uses = usesOf(issued.toString());
      assert.deepEqual(uses, usesOf(programs.toString()));
      assert.ok(uses.keyUsage !== undefined && uses.extended.length === 2, JSON.stringify(uses));
    }
  });

  it("writes no identity Secret and no identity key of its own for the workloads; clients and the gateway's public certificate stay the program's", async () => {
    const managed = await devIn("cert-manager");
    const secrets = objectsOf(managed, "Secret")
      .filter((r) => !r.urn.startsWith("cert-manager::"))
      .map(metadataName)
      .sort();
    assert.deepEqual(secrets, ["bookapi-mesh-ca-1-issuer", "mesh-gateway-edge-tls"]);
    const keys = managed.resources
      .filter((r) => r.type === "tls:index/privateKey:PrivateKey")
      .map((r) => r.name)
      .sort();
    assert.deepEqual(keys, [
      "mesh-ca-key",
      "mesh-cert-manager-1-intermediate-key",
      "mesh-gateway-edge-key",
    ]);
  });

  it("hands the Issuer an intermediate CA signed by the signing generation, its key only in Pulumi secrets and the Issuer's Secret", async () => {
    const run = await devIn("cert-manager");
    const issuer = findObject(run, "Issuer", CERT_MANAGER_NAMES.issuer("1"));
    assert.deepEqual(issuer.inputs.spec, {
      ca: { secretName: CERT_MANAGER_NAMES.issuerSecret("1") },
    });
    const secret = findObject(run, "Secret", CERT_MANAGER_NAMES.issuerSecret("1"));
    assert.equal(secret.inputs.type, "kubernetes.io/tls");
    assert.ok(
      secret.secretInputs.some((p) => p.startsWith("stringData")),
      "tls.key is a secret",
    );
    const data = secret.inputs.stringData as Record<string, string>;
    const intermediate = new X509Certificate(data[CERT_FILES.certificate]);
    const root = new X509Certificate(data[CERT_FILES.ca]);
    assert.ok(intermediate.ca, "the intermediate is a CA");
    assert.ok(intermediate.verify(root.publicKey), "signed by the mesh CA");
    assert.equal(root.subject, root.issuer, "ca.crt is the self-signed root");
    assert.equal(data[CERT_FILES.ca].match(/BEGIN CERTIFICATE/g)?.length, 1);
    const hours =
      (Date.parse(intermediate.validTo) - Date.parse(intermediate.validFrom)) / 3_600_000;
    assert.equal(
      hours,
      loadMeshConfig(devConfig("cert-manager")).certificates.intermediateValidityHours,
    );
    // Every ConfigMap the stack writes is free of private keys.
    for (const cm of objectsOf(run, "ConfigMap"))
      assert.doesNotMatch(JSON.stringify(cm.inputs), /PRIVATE KEY/, metadataName(cm));
  });

  it("mounts the Certificate's Secret and the trust ConfigMap as one projected volume, so Envoy reads the same files and its config does not change", async () => {
    const [own, managed] = [await devIn("pulumi"), await devIn("cert-manager")];
    for (const workload of WORKLOADS) {
      assert.deepEqual(
        envoyConfigMapOf(managed, workload).inputs.data,
        envoyConfigMapOf(own, workload).inputs.data,
        workload,
      );
      const trusted = fileOf(managed, workload, CERT_FILES.ca);
      assert.equal(trusted, managed.outputs.caCertificate);
      // tls.crt is the leaf and the intermediate, as cert-manager writes it.
      const chain = fileOf(managed, workload, CERT_FILES.certificate).match(/BEGIN CERTIFICATE/g);
      assert.equal(chain?.length, 2);
    }
  });

  it("starts no pod before its Certificate is Ready: the Deployment waits for it and the trust ConfigMap, the Certificate for its Issuer", async () => {
    const run = await devIn("cert-manager");
    const trust = findObject(run, "ConfigMap", CERT_MANAGER_NAMES.trustConfigMap);
    const issuer = findObject(run, "Issuer", CERT_MANAGER_NAMES.issuer("1"));
    for (const workload of WORKLOADS) {
      const deployment = findObject(run, "Deployment", workload);
      const certificate = findObject(run, "Certificate", workload);
      assert.ok(runsAfter(run, deployment, certificate), `${workload} after its Certificate`);
      assert.ok(runsAfter(run, deployment, trust), `${workload} after the trust bundle`);
      assert.ok(runsAfter(run, certificate, issuer), `${workload}'s Certificate after the Issuer`);
      const annotations = (certificate.inputs.metadata as { annotations: Record<string, string> })
        .annotations;
      assert.equal(annotations["pulumi.com/waitFor"], "condition=Ready");
    }
    const issuerAnnotations = (issuer.inputs.metadata as { annotations: Record<string, string> })
      .annotations;
    assert.equal(issuerAnnotations["pulumi.com/waitFor"], "condition=Ready");
  });

  it("validates every object against Kubernetes' and cert-manager's published schemas, which refuse a broken Certificate", async () => {
    const run = await devIn("cert-manager");
    const objects = kubernetesObjects(run)
      .filter((r) => !r.urn.startsWith("cert-manager::"))
      .map(asKubeObject);
    assert.deepEqual(objects.flatMap(validateKubernetesObject), []);
    const model = loadMeshConfig(devConfig("cert-manager"));
    assert.deepEqual(
      checkKubernetesReferences(objects, model.kubernetesMinor, providedObjects(model)),
      [],
    );
    const certificate = objects.find((o) => o.kind === "Certificate") as KubeObject;
    const broken = JSON.parse(JSON.stringify(certificate)) as KubeObject & {
      spec: { privateKey: { rotationPolicy: string } };
    };
    broken.spec.privateKey.rotationPolicy = "Sometimes";
    assert.match(validateKubernetesObject(broken).join(), /rotationPolicy/);
  });

  it("keeps cert-manager's admission rules: a Certificate the program writes passes them, the emulated webhook refuses one that breaks them", async () => {
    const spec = specOf(await devIn("cert-manager"), "bookapi");
    assert.deepEqual(admissionProblems(spec), []);
    assert.match(admissionProblems({ ...spec, renewBefore: "0h" }).join(), /greater than 5m0s/);
    assert.match(
      admissionProblems({ ...spec, renewBefore: spec.duration }).join(),
      /greater than renewBefore/,
    );
  });

  describe("real handshakes", () => {
    /** Whether `callee`'s inbound listener admits `caller`'s certificate (its own trust bundle checking the callee's). */
    async function admits(run: ProgramRun, callee: string, caller: string): Promise<boolean> {
      const listener = inboundListener(sidecar(run, callee));
      const server = await EmulatedInbound.start({ listener });
      try {
        const outcome = await call(server.port, {
          cert: fileOf(run, caller, CERT_FILES.certificate),
          key: fileOf(run, caller, CERT_FILES.privateKey),
          ca: fileOf(run, caller, CERT_FILES.ca),
          servername: callee,
          sanMatchers: [],
          minVersion: "TLSv1.2",
          maxVersion: "TLSv1.3",
        });
        const verdict = await server.nextVerdict();
        return verdict.accepted && outcome.response !== undefined;
      } finally {
        await server.close();
      }
    }

    async function matrix(run: ProgramRun): Promise<string[]> {
      const rows: string[] = [];
      for (const callee of CALLEES)
        for (const caller of WORKLOADS)
          if (caller !== callee)
            rows.push(
              `${caller} -> ${callee}: ${(await admits(run, callee, caller)) ? "accepted" : "refused"}`,
            );
      return rows;
    }

    it("accepts cert-manager's certificates exactly where the program's are accepted, and refuses them where those are refused", async () => {
      const own = await matrix(await devIn("pulumi"));
      assert.deepEqual(own, [
        "bookapi-mcp-server -> bookapi: accepted",
        "mesh-gateway -> bookapi: refused",
        "bookapi -> bookapi-mcp-server: refused",
        "mesh-gateway -> bookapi-mcp-server: accepted",
      ]);
      assert.deepEqual(await matrix(await devIn("cert-manager")), own);
    });

    it("completes every allowed call of the stack with the callers' own upstream settings (SNI and SAN checks both ways)", async () => {
      const run = await devIn("cert-manager");
      for (const [caller, callee] of [
        ["bookapi-mcp-server", "bookapi"],
        ["mesh-gateway", "bookapi-mcp-server"],
      ]) {
        const server = await EmulatedInbound.start({
          listener: inboundListener(sidecar(run, callee)),
        });
        try {
          const outcome = await call(
            server.port,
            upstreamCaller(upstreamCluster(sidecar(run, caller), `upstream_${callee}`)),
          );
          const verdict = await server.nextVerdict();
          assert.ok(verdict.accepted, `${caller} -> ${callee}: ${JSON.stringify(verdict)}`);
          assert.ok(outcome.response !== undefined, JSON.stringify(outcome.error));
        } finally {
          await server.close();
        }
      }
    });

    it("keeps pods talking through a switch of issuer: a pod with the program's certificate and one with cert-manager's reach each other both ways", async () => {
      const own = await devIn("pulumi");
      // The next `pulumi up` keeps the CA (its key and certificate stay in state).
      const kept = Object.fromEntries(
        own.resources
          .filter((r) => r.name === "mesh-ca-key" || r.name === "mesh-ca-cert")
          .map((r) => [r.name, r.state]),
      );
      const { run: switched, error } = await runProgramOutcome(
        devConfig("cert-manager"),
        "dev",
        kept,
      );
      assert.equal(error, undefined);
      await issueAllCertificates(switched);
      const pod = (run: ProgramRun, workload: string) => ({
        cert: fileOf(run, workload, CERT_FILES.certificate),
        key: fileOf(run, workload, CERT_FILES.privateKey),
        ca: fileOf(run, workload, CERT_FILES.ca),
      });
      for (const [calleeRun, callerRun] of [
        [own, switched],
        [switched, own],
      ]) {
        const listener = inboundListener(sidecar(calleeRun, "bookapi"));
        const callee = pod(calleeRun, "bookapi");
        const server = await EmulatedInbound.start({
          listener: { ...listener, tls: { ...listener.tls, ...callee } },
        });
        try {
          const caller = upstreamCaller(
            upstreamCluster(sidecar(callerRun, "bookapi-mcp-server"), "upstream_bookapi"),
          );
          const outcome = await call(server.port, caller);
          const verdict = await server.nextVerdict();
          assert.ok(verdict.accepted, JSON.stringify(verdict));
          assert.ok(outcome.response !== undefined, JSON.stringify(outcome.error));
        } finally {
          await server.close();
        }
      }
    });
  });

  describe("on a live cluster (the update model)", () => {
    it("switching issuer rolls each Deployment onto its Certificate's Secret after creating it, and deletes the program's Secrets only at the end", async () => {
      const steps = planUpdate(await devIn("pulumi"), await devIn("cert-manager"));
      const of = (object: string) => steps.find((s) => s.object === object)?.action;
      for (const workload of WORKLOADS) {
        assert.equal(of(`Certificate/${workload}`), "create");
        assert.equal(of(`Secret/${workload}-tls`), "delete at end");
        assert.equal(of(`Deployment/${workload}`), "update");
      }
      assert.deepEqual(
        steps.filter((s) => s.action.startsWith("replace")),
        [],
        "nothing is replaced",
      );
    });

    it("signing with a new generation moves every Certificate to the new Issuer (cert-manager re-issues them) and restarts no pod", async () => {
      const trustBoth = await runProgram(
        devConfig("cert-manager", { ca: { signing: "1", trusted: ["1", "2"] } }),
        "dev",
      );
      const signNew = await runProgram(
        devConfig("cert-manager", { ca: { signing: "2", trusted: ["1", "2"] } }),
        "dev",
      );
      const steps = planUpdate(trustBoth, signNew);
      const of = (object: string) => steps.find((s) => s.object === object)?.action;
      assert.equal(of(`Issuer/${CERT_MANAGER_NAMES.issuer("2")}`), "create");
      assert.equal(of(`Issuer/${CERT_MANAGER_NAMES.issuer("1")}`), "delete at end");
      for (const workload of WORKLOADS) {
        assert.equal(of(`Certificate/${workload}`), "update");
        assert.equal(specOf(signNew, workload).issuerRef.name, CERT_MANAGER_NAMES.issuer("2"));
      }
      assert.deepEqual(restartedDeployments(trustBoth, signNew), []);
    });
  });

  it("shows each workload's Certificate and its terms in the certificates output (no dates that would go stale), and the intermediate's expiry in the trust output", async () => {
    const run = await devIn("cert-manager");
    const c = loadMeshConfig(devConfig("cert-manager")).certificates;
    const certificates = run.outputs.certificates as Record<string, Record<string, unknown>>;
    const terms = { duration: `${c.validityHours}h`, renewBefore: `${c.earlyRenewalHours}h` };
    assert.deepEqual(certificates["service/bookapi"], {
      issuer: "cert-manager",
      certificate: "default/bookapi",
      ...terms,
    });
    assert.deepEqual(certificates["gateway/identity"], {
      issuer: "cert-manager",
      certificate: "default/mesh-gateway",
      ...terms,
    });
    assert.equal(typeof certificates["gateway/edge"].notAfter, "string");
    const trust = run.outputs.trust as { intermediate: Record<string, string> };
    const intermediate = new X509Certificate(
      (
        findObject(run, "Secret", CERT_MANAGER_NAMES.issuerSecret("1")).inputs.stringData as Record<
          string,
          string
        >
      )[CERT_FILES.certificate],
    );
    assert.equal(trust.intermediate.generation, "1");
    // A certificate's times have whole seconds.
    const seconds = (t: string) => Math.floor(Date.parse(t) / 1000);
    assert.equal(seconds(trust.intermediate.notAfter), seconds(intermediate.validTo));
    assert.equal(
      Date.parse(trust.intermediate.notAfter) - Date.parse(trust.intermediate.renewalDue),
      (c.validityHours + c.earlyRenewalHours) * 3_600_000,
    );
  });

  it("refuses, like cert-manager, an issuer Secret whose ca.crt is not the intermediate's issuer", async () => {
    // The cert-manager run with the pulumi run's CA (another key) as the issuer's root.
    const run = structuredClone(await devIn("cert-manager"));
    const data = findObject(run, "Secret", CERT_MANAGER_NAMES.issuerSecret("1")).inputs
      .stringData as Record<string, string>;
    data[CERT_FILES.ca] = (await devIn("pulumi")).outputs.caCertificate as string;
    await assert.rejects(issueAllCertificates(run), /chain is broken/);
  });

  describe("config errors at preview, naming the key", () => {
    const refuses = (patch: Record<string, unknown>, message: RegExp) =>
      assert.throws(() => loadMeshConfig(devConfig("cert-manager", patch)), message);

    it("refuses a renewal window under cert-manager's 5 minute minimum", () =>
      refuses(
        { earlyRenewalHours: 0 },
        /bookapi-mesh:certificates\.earlyRenewalHours: must be at least 1 with issuer cert-manager/,
      ));

    it("refuses an intermediate that would not outlive the certificates it signs, or that would outlive the CA", () => {
      refuses(
        { validityHours: 100, earlyRenewalHours: 10, intermediateValidityHours: 110 },
        /certificates\.intermediateValidityHours: must be more than validityHours \+ earlyRenewalHours \(110\)/,
      );
      refuses(
        { caValidityHours: 5000, intermediateValidityHours: 6000 },
        /certificates\.intermediateValidityHours: must not exceed caValidityHours \(5000\)/,
      );
    });

    it("refuses a workload whose certificate's common name cert-manager would refuse as longer than 64 characters", () => {
      const config = {
        ...devConfig("cert-manager"),
        "bookapi-mesh:namespace": "a-namespace-with-a-rather-long-name",
      };
      assert.throws(
        () => loadMeshConfig(config),
        /bookapi-mesh:services\[\d\]\.name: with certificates\.issuer cert-manager its certificate's common name "bookapi-mcp-server\.a-namespace-with-a-rather-long-name\.svc\.cluster\.local" has \d+ characters; cert-manager refuses more than 64/,
      );
      assert.doesNotThrow(() =>
        loadMeshConfig({ ...config, "bookapi-mesh:certificates": JSON.stringify({}) }),
      );
    });

    it("refuses an issuer it does not know", () =>
      assert.throws(
        () => loadMeshConfig(devConfig("vault")),
        /bookapi-mesh:certificates\.issuer: must be pulumi or cert-manager/,
      ));
  });
});

/** Used by the default-mode check below: the shipped stacks keep the program as issuer. */
describe("the shipped stacks", () => {
  it("keep the program as issuer, so an upgrade changes nothing", () => {
    for (const stack of ["dev", "staging", "prod", "local"])
      assert.equal(loadMeshConfig(stackConfig(stack)).certificates.issuer, "pulumi", stack);
  });
});
