/**
 * The Envoy files the program actually deploys, for every shipped stack: valid against Envoy's
 * v3 protos, consistent the way Envoy checks at start-up, readable through the pod's mounts, and
 * saying what the design says.
 */
import assert from "node:assert/strict";
import * as k8s from "@pulumi/kubernetes";
import { at, Json } from "./harness/json";
import * as path from "node:path";
import { loadMeshConfig, MeshModel } from "../components/config";
import { NO_CALLER_SAN } from "../components/envoy";
import { ENVOY_FILES } from "../components/envoy/model";
import {
  checkBootstrapReferences,
  referencedFiles,
  validateBootstrapDetailed,
  validateSdsFileDetailed,
} from "./harness/envoy-schema";
import {
  envoyConfigMapOf,
  findObject,
  ProgramRun,
  runStack,
  STACKS,
  stackConfig,
} from "./harness/program";

const listeners = (bootstrap: Json) =>
  at(bootstrap, "static_resources", "listeners") as unknown as Json[];
const clusters = (bootstrap: Json) =>
  at(bootstrap, "static_resources", "clusters") as unknown as Json[];
const listener = (bootstrap: Json, name: string) =>
  listeners(bootstrap).find((l) => l.name === name);

function socketOf(l: Json): string {
  const a = at(l, "address", "socket_address");
  const host = String(a.address);
  return `${host.includes(":") ? `[${host}]` : host}:${String(a.port_value)}`;
}

function sanMatchers(validation: Json): Array<{ san_type: string; exact: string }> {
  return ((validation.match_typed_subject_alt_names as Json[] | undefined) ?? []).map((m) => ({
    san_type: String(m.san_type),
    exact: String(at(m, "matcher").exact),
  }));
}

type Mount = k8s.types.output.core.v1.VolumeMount;
type Volume = k8s.types.output.core.v1.Volume;

/** Every file the sidecar can read: mount path + key of the mounted ConfigMap/Secret. */
function sidecarFiles(run: ProgramRun, service: string): Set<string> {
  const pod = at(findObject(run, "Deployment", service).inputs, "spec", "template", "spec");
  const volumes = pod.volumes as unknown as Volume[];
  const containers = [
    ...((pod.initContainers as Json[] | undefined) ?? []),
    ...(pod.containers as unknown as Json[]),
  ];
  const envoy = containers.find((c) => c.name === "envoy");
  assert.ok(envoy, "no envoy container");
  const files = new Set<string>();
  for (const m of envoy.volumeMounts as unknown as Mount[]) {
    const v = volumes.find((vol) => vol.name === m.name);
    assert.ok(v, `mount of unknown volume ${m.name}`);
    const data = v.configMap
      ? (findObject(run, "ConfigMap", v.configMap.name).inputs.data as Record<string, string>)
      : v.secret
        ? (findObject(run, "Secret", v.secret.secretName).inputs.stringData as Record<
            string,
            string
          >)
        : {};
    files.add(m.mountPath);
    for (const key of Object.keys(data)) files.add(path.posix.join(m.mountPath, key));
  }
  return files;
}

for (const stack of STACKS) {
  describe(`the Envoy files of stack ${stack}`, () => {
    let run: ProgramRun;
    let model: MeshModel;
    before(async () => {
      run = await runStack(stack);
      model = loadMeshConfig(stackConfig(stack));
    });

    const filesOf = (service: string) =>
      envoyConfigMapOf(run, service).inputs.data as Record<string, string>;
    const bootstrapOf = (service: string) =>
      JSON.parse(filesOf(service)[ENVOY_FILES.bootstrap]) as Json;

    it("validate against Envoy's v3 protos with no errors and no deprecation warnings", () => {
      for (const svc of model.services) {
        const files = filesOf(svc.name);
        const boot = validateBootstrapDetailed(JSON.parse(files[ENVOY_FILES.bootstrap]));
        assert.deepEqual(boot, { errors: [], warnings: [] }, svc.name);
        for (const sds of [ENVOY_FILES.sdsCertificate, ENVOY_FILES.sdsValidation]) {
          assert.deepEqual(
            validateSdsFileDetailed(JSON.parse(files[sds])),
            { errors: [], warnings: [] },
            `${svc.name} ${sds}`,
          );
        }
      }
    });

    it("pass Envoy's start-up checks: routes name existing clusters, names and addresses are unique", () => {
      for (const svc of model.services)
        assert.deepEqual(checkBootstrapReferences(bootstrapOf(svc.name)), [], svc.name);
    });

    it("read only files that the sidecar's volume mounts provide", () => {
      for (const svc of model.services) {
        const provided = sidecarFiles(run, svc.name);
        const files = filesOf(svc.name);
        const wanted = [
          ...referencedFiles(JSON.parse(files[ENVOY_FILES.bootstrap])),
          ...referencedFiles(JSON.parse(files[ENVOY_FILES.sdsCertificate])),
          ...referencedFiles(JSON.parse(files[ENVOY_FILES.sdsValidation])),
        ];
        assert.ok(wanted.length >= 5, `too few referenced files: ${wanted.join(", ")}`);
        for (const file of wanted)
          assert.ok(
            provided.has(file),
            `${svc.name}: ${file} is not mounted (have ${[...provided].join(", ")})`,
          );
      }
    });

    it("bind admin to loopback and the outbound listener to loopback, only for services that call others", () => {
      for (const svc of model.services) {
        const b = bootstrapOf(svc.name);
        assert.equal(at(b, "admin", "address", "socket_address").address, "127.0.0.1");
        const outbound = listener(b, "outbound");
        if (svc.upstreams.length === 0) assert.equal(outbound, undefined, svc.name);
        else assert.equal(socketOf(outbound as Json), `127.0.0.1:${model.envoy.ports.outbound}`);
        assert.equal(socketOf(listener(b, "inbound") as Json), `[::]:${model.envoy.ports.inbound}`);
      }
    });

    it("require a client certificate inbound, TLS 1.2 or later, and allow exactly the derived callers", () => {
      for (const svc of model.services) {
        const tls = at(
          listener(bootstrapOf(svc.name), "inbound"),
          "filter_chains",
          0,
          "transport_socket",
          "typed_config",
        );
        assert.equal(tls.require_client_certificate, true);
        assert.equal(
          at(tls, "common_tls_context", "tls_params").tls_minimum_protocol_version,
          "TLSv1_2",
        );
        const validation = at(
          tls,
          "common_tls_context",
          "combined_validation_context",
          "default_validation_context",
        );
        // With no callers, a SAN no certificate can carry: Envoy reads an empty list as "any".
        const callerFqdns =
          svc.callers.length > 0
            ? svc.callers.map((c) => `${c.name}.${model.namespace}.svc.cluster.local`)
            : [NO_CALLER_SAN];
        assert.deepEqual(
          sanMatchers(validation)
            .filter((m) => m.san_type === "DNS")
            .map((m) => m.exact)
            .sort(),
          callerFqdns.sort(),
          svc.name,
        );
      }
    });

    it("dial each dependency's pods through its absolute headless Service name on 15001, with the service FQDN as SNI and SAN check", () => {
      for (const svc of model.services) {
        const upstreams = clusters(bootstrapOf(svc.name)).filter((c) =>
          String(c.name).startsWith("upstream_"),
        );
        assert.equal(upstreams.length, svc.upstreams.length, svc.name);
        for (const callee of svc.upstreams.map((u) => u.name)) {
          const fqdn = `${callee}.${model.namespace}.svc.cluster.local`;
          const c = upstreams.find((u) => u.name === `upstream_${callee}`);
          assert.ok(c, `${svc.name} has no cluster for ${callee}`);
          const endpoint = at(
            c,
            "load_assignment",
            "endpoints",
            0,
            "lb_endpoints",
            0,
            "endpoint",
            "address",
            "socket_address",
          );
          assert.equal(
            `${String(endpoint.address)}:${String(endpoint.port_value)}`,
            // The headless Service: every ready pod is an Envoy host.
            `${callee}-pods.${model.namespace}.svc.cluster.local.:${model.envoy.ports.inbound}`,
          );
          const tls = at(c, "transport_socket", "typed_config");
          assert.equal(tls.sni, fqdn);
          const validation = at(
            tls,
            "common_tls_context",
            "combined_validation_context",
            "default_validation_context",
          );
          assert.ok(sanMatchers(validation).some((m) => m.san_type === "DNS" && m.exact === fqdn));
        }
      }
    });
  });
}
