/**
 * The policy pack (policy/): its rules pass every resource the shipped stacks register, and each
 * rule reports exactly its own violation when one resource is broken the way it guards against.
 * Last, the pack itself is started as the engine starts it and asked over its gRPC interface.
 */
import assert from "node:assert/strict";
import { ChildProcess, spawn } from "node:child_process";
import * as path from "node:path";
import * as grpc from "@grpc/grpc-js";
import { ReportViolation, ResourceValidationArgs, unknownCheckingProxy } from "@pulumi/policy";
import { AnalyzerClient } from "@pulumi/pulumi/proto/analyzer_grpc_pb";
import {
  AnalyzeRequest,
  AnalyzeResponse,
  AnalyzerInfo,
  AnalyzerResourceOptions,
  EnforcementLevel,
} from "@pulumi/pulumi/proto/analyzer_pb";
import { Empty } from "google-protobuf/google/protobuf/empty_pb";
import { Struct } from "google-protobuf/google/protobuf/struct_pb";
import { PROJECT } from "../components/config";
import { ENVOY_FILES } from "../components/envoy/model";
import { objectNames } from "../components/names";
import { PORT_NAMES, SIDECAR_CONTAINER } from "../components/pod";
import { COMPONENT_LABEL, GATEWAY_PORT_NAME } from "../components/gateway";
import { PUBLIC_ROUTE_METADATA } from "../components/envoy/gateway";
import { EXTENSION_NAMES } from "../components/envoy/types";
import { GATEWAY_LISTEN_PORT } from "../components/config";
import { ConfigSource, meshContext, meshPolicies } from "../policy/pack";
import { MESH, MeshContext, PolicyResource, RULES, TYPES, violations } from "../policy/rules";
import {
  kindOf,
  metadataName,
  PROJECT_ROOT,
  ProgramRun,
  Registered,
  runProgram,
  runStack,
  STACKS,
  stackConfig,
  stackConfigWithCertificates,
  StackName,
} from "./harness/program";

const RULE = {
  sidecar: "mesh-deployment-has-envoy-sidecar",
  inbound: "envoy-inbound-requires-client-certificate",
  admin: "envoy-admin-on-loopback",
  privateKey: "no-private-key-in-configmap",
  images: "images-pinned",
  ports: "strict-stack-services-publish-only-mtls",
  gatewayTokens: "strict-stack-gateway-routes-need-tokens",
} as const;
const ADOPTED_POLICY = "adopted-service-has-one-workload";

type Obj = Record<string, unknown>;

/** `pulumi.Config("bookapi-mesh")` over a flat `project:key` config map. */
function configSource(config: Record<string, string>): ConfigSource {
  return {
    get: (key) => config[`${PROJECT}:${key}`],
    getObject: <T>(key: string) => {
      const raw = config[`${PROJECT}:${key}`];
      return raw === undefined ? undefined : (JSON.parse(raw) as T);
    },
  };
}

/** The context the pack builds for a shipped stack. */
function contextOf(stack: StackName): MeshContext {
  return meshContext(stack, configSource(stackConfig(stack)));
}

/** A resource as the policy engine shows it, with a name for messages. */
interface Checked extends PolicyResource {
  label: string;
}

/** Every registered resource, deep-copied so a test may break one. */
function policyResources(run: ProgramRun): Checked[] {
  return run.resources.map((r: Registered) => ({
    type: r.type,
    props: structuredClone(r.inputs),
    label: `${kindOf(r.type)} ${metadataName(r) || r.name}`,
  }));
}

/**
 * Props as a policy sees them: behind the policy SDK's unknown-checking proxy, which hands out
 * a fresh proxy on every property access (so rules must not compare objects by identity).
 */
function asAnalyzed(props: Record<string, unknown>): Record<string, unknown> {
  return unknownCheckingProxy(props) as Record<string, unknown>;
}

function allViolations(resources: Checked[], ctx: MeshContext) {
  return resources.flatMap((r) =>
    violations({ type: r.type, props: asAnalyzed(r.props) }, ctx).map((v) => ({
      ...v,
      resource: r.label,
    })),
  );
}

function find(resources: Checked[], kind: string, name: string): Checked {
  const found = resources.filter((r) => r.label === `${kind} ${name}`);
  assert.equal(found.length, 1, `expected one ${kind} ${name}`);
  return found[0];
}

/** The one versioned Envoy ConfigMap (`<service>-envoy-<hash>`) of a service. */
function envoyConfigMap(resources: Checked[], service: string): Checked {
  const found = resources.filter((r) =>
    new RegExp(`^ConfigMap ${service}-envoy-[0-9a-f]+$`).test(r.label),
  );
  assert.equal(found.length, 1, `expected one Envoy ConfigMap of ${service}`);
  return found[0];
}

/** Property access for breaking fixtures; throws where the path does not exist. */
function get(value: unknown, ...keys: (string | number)[]): Obj {
  let current = value;
  for (const key of keys) {
    assert.ok(current !== null && typeof current === "object", `no ${keys.join(".")}`);
    current = (current as Record<string | number, unknown>)[key];
  }
  assert.ok(current !== null && typeof current === "object", `no ${keys.join(".")}`);
  return current as Obj;
}

function podSpecOf(deployment: Checked): { containers: Obj[]; initContainers?: Obj[] } & Obj {
  return get(deployment.props, "spec", "template", "spec") as ReturnType<typeof podSpecOf>;
}

/** Envoy's container and the list holding it, wherever the sidecar mode puts it. */
function envoyOf(deployment: Checked): { envoy: Obj; list: Obj[] } {
  const pod = podSpecOf(deployment);
  for (const list of [pod.initContainers ?? [], pod.containers]) {
    const envoy = list.find((c) => c.name === "envoy");
    if (envoy) return { envoy, list };
  }
  throw new Error(`no envoy container in ${deployment.label}`);
}

/** Rewrites one JSON file of a ConfigMap. */
function editJson(configMap: Checked, key: string, edit: (doc: Obj) => void): void {
  const data = get(configMap.props, "data");
  const doc = JSON.parse(String(data[key])) as Obj;
  edit(doc);
  data[key] = JSON.stringify(doc, null, 2);
}

function inboundTls(bootstrap: Obj): Obj {
  const listeners = get(bootstrap, "static_resources", "listeners") as unknown as Obj[];
  const inbound = listeners.find((l) => l.name === "inbound");
  return get(inbound, "filter_chains", 0, "transport_socket", "typed_config");
}

/** Asserts the only violation is `rule` on `resource`; returns its message. */
function onlyViolation(
  resources: Checked[],
  ctx: MeshContext,
  rule: string,
  resource: Checked,
): string {
  const found = allViolations(resources, ctx);
  assert.deepEqual(
    found.map((v) => [v.rule, v.resource]),
    [[rule, resource.label]],
    `violations: ${JSON.stringify(found, null, 2)}`,
  );
  return found[0].message;
}

describe("policy pack: the rules on the shipped stacks", function () {
  const runs = new Map<StackName, ProgramRun>();
  let containerMode: ProgramRun;
  let certManagerMode: ProgramRun;

  before(async function () {
    this.timeout(120_000);
    // One program run at a time: the Pulumi runtime's mocks are process-wide.
    for (const stack of STACKS) runs.set(stack, await runStack(stack));
    const dev = stackConfig("dev");
    const envoy = JSON.parse(dev[`${PROJECT}:envoy`]) as Obj;
    containerMode = await runProgram(
      { ...dev, [`${PROJECT}:envoy`]: JSON.stringify({ ...envoy, sidecarMode: "container" }) },
      "dev",
    );
    certManagerMode = await runProgram(
      stackConfigWithCertificates("dev", { issuer: "cert-manager" }),
      "dev",
    );
  });

  function resourcesOf(stack: StackName): Checked[] {
    const run = runs.get(stack);
    assert.ok(run, `stack ${stack} did not run`);
    return policyResources(run);
  }

  it("relies on the names the program gives the sidecar, its files, objects and ports", function () {
    assert.equal(MESH.project, PROJECT);
    assert.equal(MESH.bootstrapKey, ENVOY_FILES.bootstrap);
    assert.equal(MESH.mtlsPortName, PORT_NAMES.inbound);
    assert.equal(MESH.sidecarName, SIDECAR_CONTAINER);
    assert.equal(`bookapi${MESH.configMapInfix}`, objectNames("bookapi").configMapPrefix);
    assert.equal(`bookapi${MESH.secretSuffix}`, objectNames("bookapi").secret);
    assert.equal(
      `bookapi${MESH.certManagerSecretSuffix}`,
      objectNames("bookapi").certManagerSecret,
    );
    assert.equal(MESH.gatewayTargetPort, GATEWAY_LISTEN_PORT);
    assert.equal(MESH.gatewayPortName, GATEWAY_PORT_NAME);
    assert.deepEqual({ [MESH.componentLabel]: MESH.gatewayComponent }, { ...COMPONENT_LABEL });
    assert.equal(MESH.jwtAuthnFilter, EXTENSION_NAMES.jwtAuthn);
    const [ns, key] = MESH.publicRouteMetadata;
    assert.deepEqual(PUBLIC_ROUTE_METADATA.filter_metadata, { [ns]: { [key]: true } });
  });

  for (const stack of STACKS) {
    it(`finds no violation in any resource of the ${stack} stack`, function () {
      const resources = resourcesOf(stack);
      for (const rule of RULES) {
        assert.ok(
          resources.some((r) => rule.types.includes(r.type)),
          `${rule.name} inspects nothing in ${stack}`,
        );
      }
      assert.deepEqual(allViolations(resources, contextOf(stack)), []);
    });
  }

  it("finds no violation when Envoy runs as a plain container (sidecarMode container)", function () {
    const resources = policyResources(containerMode);
    const deployment = find(resources, "Deployment", "bookapi");
    assert.ok(podSpecOf(deployment).containers.some((c) => c.name === "envoy"));
    assert.deepEqual(allViolations(resources, contextOf("dev")), []);
  });

  it("finds no violation when cert-manager issues the identities (the sidecar mounts its Certificate's Secret, projected)", function () {
    const resources = policyResources(certManagerMode);
    assert.ok(resources.some((r) => r.label === "Certificate bookapi"));
    assert.deepEqual(allViolations(resources, contextOf("dev")), []);
  });

  describe("the Envoy sidecar rule", function () {
    it("reports a mesh Deployment whose native Envoy sidecar was dropped", function () {
      const resources = resourcesOf("dev");
      const deployment = find(resources, "Deployment", "bookapi");
      const pod = podSpecOf(deployment);
      pod.initContainers = (pod.initContainers ?? []).filter((c) => c.name !== "envoy");
      const message = onlyViolation(resources, contextOf("dev"), RULE.sidecar, deployment);
      assert.match(message, /has no Envoy sidecar/);
    });

    it("reports a mesh Deployment whose Envoy container was dropped in container mode", function () {
      const resources = policyResources(containerMode);
      const deployment = find(resources, "Deployment", "bookapi-mcp-server");
      const pod = podSpecOf(deployment);
      pod.containers = pod.containers.filter((c) => c.name !== "envoy");
      onlyViolation(resources, contextOf("dev"), RULE.sidecar, deployment);
    });

    it("reports an Envoy initContainer without restartPolicy Always", function () {
      const resources = resourcesOf("prod");
      const deployment = find(resources, "Deployment", "bookapi");
      delete envoyOf(deployment).envoy.restartPolicy;
      const message = onlyViolation(resources, contextOf("prod"), RULE.sidecar, deployment);
      assert.match(message, /restartPolicy Always/);
    });

    it("reports a sidecar that mounts another service's TLS Secret", function () {
      const resources = resourcesOf("dev");
      const deployment = find(resources, "Deployment", "bookapi");
      const volumes = podSpecOf(deployment).volumes as Obj[];
      const certs = volumes.find((v) => v.secret !== undefined);
      get(certs, "secret").secretName = "bookapi-mcp-server-tls";
      const message = onlyViolation(resources, contextOf("dev"), RULE.sidecar, deployment);
      assert.match(message, /does not mount Secret "bookapi-tls"/);
    });

    it("ignores Deployments outside the mesh namespace and labels", function () {
      const resources = resourcesOf("dev");
      const deployment = find(resources, "Deployment", "bookapi");
      const metadata = get(deployment.props, "metadata");
      metadata.namespace = "other";
      metadata.labels = {};
      const pod = podSpecOf(deployment);
      pod.initContainers = [];
      assert.deepEqual(allViolations(resources, contextOf("dev")), []);
    });
  });

  describe("the inbound mTLS rule", function () {
    it("reports an inbound listener with require_client_certificate false", function () {
      const resources = resourcesOf("dev");
      const configMap = envoyConfigMap(resources, "bookapi");
      editJson(configMap, "envoy.json", (b) => (inboundTls(b).require_client_certificate = false));
      const message = onlyViolation(resources, contextOf("dev"), RULE.inbound, configMap);
      assert.match(message, /require_client_certificate: true/);
    });

    it("reports an inbound listener served in plain text", function () {
      const resources = resourcesOf("staging");
      const configMap = envoyConfigMap(resources, "bookapi-mcp-server");
      editJson(configMap, "envoy.json", (b) => {
        const listeners = get(b, "static_resources", "listeners") as unknown as Obj[];
        delete get(
          listeners.find((l) => l.name === "inbound"),
          "filter_chains",
          0,
        ).transport_socket;
      });
      const message = onlyViolation(resources, contextOf("staging"), RULE.inbound, configMap);
      assert.match(message, /does not terminate TLS/);
    });

    it("reports a trust SDS secret without a trusted CA", function () {
      const resources = resourcesOf("prod");
      const configMap = envoyConfigMap(resources, "bookapi");
      editJson(configMap, "sds-validation.json", (sds) => {
        delete get(sds, "resources", 0, "validation_context").trusted_ca;
      });
      const message = onlyViolation(resources, contextOf("prod"), RULE.inbound, configMap);
      assert.match(message, /has no trusted_ca/);
    });

    it("reports an inbound TLS context that trusts no CA via SDS", function () {
      const resources = resourcesOf("dev");
      const configMap = envoyConfigMap(resources, "bookapi");
      editJson(configMap, "envoy.json", (b) => {
        const common = get(inboundTls(b), "common_tls_context");
        delete get(common, "combined_validation_context").validation_context_sds_secret_config;
      });
      const message = onlyViolation(resources, contextOf("dev"), RULE.inbound, configMap);
      assert.match(message, /no trusted CA via SDS/);
    });
  });

  describe("the admin rule", function () {
    it("reports Envoy admin bound to 0.0.0.0", function () {
      const resources = resourcesOf("prod");
      const configMap = envoyConfigMap(resources, "bookapi-mcp-server");
      editJson(configMap, "envoy.json", (b) => {
        get(b, "admin", "address", "socket_address").address = "0.0.0.0";
      });
      const message = onlyViolation(resources, contextOf("prod"), RULE.admin, configMap);
      assert.match(message, /binds to "0\.0\.0\.0"/);
    });

    it("accepts Envoy admin bound to ::1", function () {
      const resources = resourcesOf("prod");
      const configMap = envoyConfigMap(resources, "bookapi-mcp-server");
      editJson(configMap, "envoy.json", (b) => {
        get(b, "admin", "address", "socket_address").address = "::1";
      });
      assert.deepEqual(allViolations(resources, contextOf("prod")), []);
    });
  });

  describe("the private-key rule", function () {
    /** The service's real private key, from its Secret. */
    function privateKeyPem(resources: Checked[]): string {
      const key = get(find(resources, "Secret", "bookapi-tls").props, "stringData")["tls.key"];
      assert.ok(typeof key === "string" && key.includes("PRIVATE KEY"));
      return key;
    }

    it("reports a PEM private key in a ConfigMap's data, without echoing the key", function () {
      const resources = resourcesOf("dev");
      const configMap = envoyConfigMap(resources, "bookapi");
      const pem = privateKeyPem(resources);
      get(configMap.props, "data")["tls.key"] = pem;
      const message = onlyViolation(resources, contextOf("dev"), RULE.privateKey, configMap);
      assert.match(message, /data key "tls\.key" holds a private key/);
      assert.ok(!message.includes(pem.split("\n")[1]), "message leaks key material");
    });

    it("reports a PEM private key hidden in a ConfigMap's binaryData", function () {
      const resources = resourcesOf("local");
      const configMap = envoyConfigMap(resources, "bookapi-mcp-server");
      configMap.props.binaryData = {
        "key.bin": Buffer.from(privateKeyPem(resources)).toString("base64"),
      };
      const message = onlyViolation(resources, contextOf("local"), RULE.privateKey, configMap);
      assert.match(message, /binaryData key "key\.bin"/);
    });
  });

  describe("the pinned-image rule", function () {
    it("reports an app container on :latest", function () {
      const resources = resourcesOf("dev");
      const deployment = find(resources, "Deployment", "bookapi");
      const app = podSpecOf(deployment).containers.find((c) => c.name === "app");
      get(app).image = "registry.example.com/bookapi:latest";
      const message = onlyViolation(resources, contextOf("dev"), RULE.images, deployment);
      assert.match(message, /container "app" .* uses the latest tag/);
    });

    it("reports an Envoy initContainer image without a tag behind a registry port", function () {
      const resources = resourcesOf("staging");
      const deployment = find(resources, "Deployment", "bookapi");
      envoyOf(deployment).envoy.image = "registry.local:5000/envoyproxy/envoy";
      const message = onlyViolation(resources, contextOf("staging"), RULE.images, deployment);
      assert.match(message, /initContainer "envoy" .* has no tag/);
    });

    it("accepts images pinned by sha256 digest", function () {
      const resources = resourcesOf("dev");
      const deployment = find(resources, "Deployment", "bookapi");
      envoyOf(deployment).envoy.image = `envoyproxy/envoy@sha256:${"ab".repeat(32)}`;
      assert.deepEqual(allViolations(resources, contextOf("dev")), []);
    });
  });

  describe("the published-ports rule", function () {
    /** Publishes the app port the way a dev stack does (exposeDirectPort). */
    function publishAppPort(service: Checked): void {
      const spec = get(service.props, "spec");
      spec.ports = [
        ...(spec.ports as Obj[]),
        { name: "http", port: 5288, targetPort: "http", protocol: "TCP" },
      ];
    }

    it("reports an app port published by a mesh Service in prod", function () {
      const resources = resourcesOf("prod");
      const service = find(resources, "Service", "bookapi");
      publishAppPort(service);
      const message = onlyViolation(resources, contextOf("prod"), RULE.ports, service);
      assert.match(message, /publishes port 5288 \(http\) -> http in stack "prod"/);
    });

    it("reports an mtls-named port that forwards to the app in prod", function () {
      const resources = resourcesOf("prod");
      const service = find(resources, "Service", "bookapi");
      get(service.props, "spec", "ports", 0).targetPort = "http";
      onlyViolation(resources, contextOf("prod"), RULE.ports, service);
    });

    it("lets only the gateway's Service publish its https port in prod, and nothing else beside it", function () {
      const resources = resourcesOf("prod");
      const gateway = find(resources, "Service", "mesh-gateway");
      assert.deepEqual(allViolations(resources, contextOf("prod")), []);
      publishAppPort(gateway);
      const message = onlyViolation(resources, contextOf("prod"), RULE.ports, gateway);
      assert.match(message, /publishes port 5288 \(http\)/);
      // Its https port must reach the TLS listener, nothing else in the pod.
      const gatewayPorts = get(gateway.props, "spec").ports as Obj[];
      gatewayPorts.splice(1);
      gatewayPorts[0].targetPort = 9901;
      assert.match(
        onlyViolation(resources, contextOf("prod"), RULE.ports, gateway),
        /publishes port 443 \(https\) -> 9901/,
      );
      // The same https port on a service's Service is an app port.
      const service = find(resources, "Service", "bookapi");
      get(service.props, "spec").ports = [{ name: "https", port: 443, targetPort: 8443 }];
      assert.equal(
        allViolations(resources, contextOf("prod")).filter((v) => v.resource === "Service bookapi")
          .length,
        1,
      );
    });

    it("allows the app ports the dev stack publishes", function () {
      const resources = resourcesOf("dev");
      const ports = get(find(resources, "Service", "bookapi").props, "spec").ports as Obj[];
      assert.ok(
        ports.some((p) => p.name === "http"),
        "dev no longer publishes the app port",
      );
      assert.deepEqual(allViolations(resources, contextOf("dev")), []);
    });

    it("fails closed when the stack name is unknown", function () {
      const resources = resourcesOf("dev");
      const found = allViolations(resources, { ...contextOf("dev"), stack: "" });
      assert.deepEqual(
        found.map((v) => [v.rule, v.resource]),
        [
          [RULE.ports, "Service bookapi"],
          [RULE.ports, "Service bookapi-mcp-server"],
        ],
      );
      assert.match(found[0].message, /unknown stack/);
    });
  });
  describe("the gateway token rule", function () {
    /** The gateway's routes on its edge listener (8443), in its versioned ConfigMap. */
    function edgeRoutes(configMap: Checked, edit: (routes: Obj[]) => void): void {
      editJson(configMap, MESH.bootstrapKey, (bootstrap) => {
        const listeners = get(bootstrap, "static_resources", "listeners") as unknown as Obj[];
        const edge = listeners.find(
          (l) => get(l, "address", "socket_address").port_value === MESH.gatewayTargetPort,
        );
        const hcm = get(edge, "filter_chains", 0, "filters", 0, "typed_config");
        edit(get(hcm, "route_config", "virtual_hosts", 0).routes as Obj[]);
      });
    }
    const forwarding = (routes: Obj[]) => routes.filter((r) => r.route !== undefined);

    it("reports a prod gateway route forwarded with its token check turned off", function () {
      const resources = resourcesOf("prod");
      const configMap = envoyConfigMap(resources, "mesh-gateway");
      edgeRoutes(configMap, (routes) => {
        const [first] = forwarding(routes);
        get(first, "typed_per_filter_config")[MESH.jwtAuthnFilter] = { disabled: true };
      });
      const message = onlyViolation(resources, contextOf("prod"), RULE.gatewayTokens, configMap);
      assert.match(message, /forwards .*mcp.* to .* with no token check in a strict stack/);
    });

    it("holds in staging, whose podSecurity is restricted, though only prod is a strict stack by name", function () {
      const resources = resourcesOf("staging");
      const configMap = envoyConfigMap(resources, "mesh-gateway");
      edgeRoutes(configMap, (routes) => {
        for (const r of forwarding(routes)) delete r.typed_per_filter_config;
      });
      const ctx = contextOf("staging");
      assert.equal(ctx.podSecurity, "restricted");
      assert.ok(allViolations(resources, ctx).every((v) => v.rule === RULE.gatewayTokens));
      assert.ok(allViolations(resources, ctx).length > 0);
      assert.deepEqual(allViolations(resources, { ...ctx, podSecurity: undefined }), []);
    });

    it("accepts a route the stack marks public, and any route outside strict stacks", function () {
      const resources = resourcesOf("dev");
      const configMap = envoyConfigMap(resources, "mesh-gateway");
      let marked = 0;
      edgeRoutes(
        configMap,
        (routes) => (marked = forwarding(routes).filter((r) => r.metadata).length),
      );
      assert.ok(marked > 0, "dev's public route carries the mark");
      assert.deepEqual(
        allViolations(resources, { ...contextOf("dev"), stack: "prod" }).filter(
          (v) => v.rule === RULE.gatewayTokens,
        ),
        [],
      );
      edgeRoutes(configMap, (routes) => {
        for (const r of routes) delete r.metadata;
      });
      assert.deepEqual(allViolations(resources, contextOf("dev")), []);
      assert.ok(
        allViolations(resources, { ...contextOf("dev"), stack: "prod" }).some(
          (v) => v.rule === RULE.gatewayTokens,
        ),
      );
    });
  });
});

describe("policy pack: wiring into @pulumi/policy", function () {
  let prod: ProgramRun;
  before(async function () {
    this.timeout(60_000);
    prod = await runStack("prod");
  });

  it("declares one mandatory policy per rule and the adopted-workload stack policy, the strict-stack rules and it configurable", function () {
    const policies = meshPolicies(contextOf("prod"));
    assert.deepEqual(
      policies.map((p) => [p.name, p.enforcementLevel]),
      [...RULES.map((r) => [r.name, "mandatory"]), [ADOPTED_POLICY, "mandatory"]],
    );
    const configurable = policies.filter((p) => p.configSchema !== undefined).map((p) => p.name);
    assert.deepEqual(configurable, [RULE.ports, RULE.gatewayTokens, ADOPTED_POLICY]);
  });

  it("reads the mesh namespace and inbound port from the stack config", function () {
    const ctx = meshContext(
      "prod",
      configSource({
        [`${PROJECT}:namespace`]: "mesh",
        [`${PROJECT}:envoy`]: JSON.stringify({ ports: { inbound: 16001 } }),
      }),
    );
    assert.deepEqual(ctx, {
      stack: "prod",
      namespace: "mesh",
      inboundPort: 16001,
      strictStacks: ["prod"],
    });
    assert.equal(meshContext("dev", configSource({})).namespace, "default");
  });

  /** Runs one policy's validateResource on a resource the way the analyzer does. */
  function validate(
    policyName: string,
    ctx: MeshContext,
    resource: PolicyResource,
    config: Obj,
  ): string[] {
    const policy = meshPolicies(ctx).find((p) => p.name === policyName);
    assert.ok(
      policy &&
        "validateResource" in policy &&
        policy.validateResource &&
        !Array.isArray(policy.validateResource),
    );
    const messages: string[] = [];
    const report: ReportViolation = (message) => messages.push(message);
    const args: Pick<ResourceValidationArgs, "type" | "props" | "getConfig"> = {
      type: resource.type,
      props: asAnalyzed(resource.props),
      getConfig: <T extends object>() => config as T,
    };
    void policy.validateResource(args as ResourceValidationArgs, report);
    return messages;
  }

  it("applies the policy config's strictStacks instead of the default", function () {
    const service = find(policyResources(prod), "Service", "bookapi");
    get(service.props, "spec", "ports", 0).name = "https";
    const prodCtx = contextOf("prod");
    assert.equal(validate(RULE.ports, prodCtx, service, {}).length, 1);
    assert.deepEqual(validate(RULE.ports, prodCtx, service, { strictStacks: ["staging"] }), []);
    const stagingCtx = { ...prodCtx, stack: "staging" };
    assert.equal(
      validate(RULE.ports, stagingCtx, service, { strictStacks: ["staging"] }).length,
      1,
    );
  });
});

describe("policy pack: run as the engine runs it", function () {
  const packDir = path.join(PROJECT_ROOT, "policy");
  const children: ChildProcess[] = [];
  const clients = new Map<string, AnalyzerClient>();
  let prod: ProgramRun;
  let dev: ProgramRun;

  /** Starts `policy/index.ts` with the engine's environment; resolves its gRPC port. */
  function startPack(stack: StackName): Promise<number> {
    const proc = spawn(process.execPath, ["-r", "tsx/cjs", "index.ts"], {
      cwd: packDir,
      env: {
        ...process.env,
        PULUMI_NODEJS_STACK: stack,
        PULUMI_NODEJS_PROJECT: PROJECT,
        PULUMI_CONFIG: JSON.stringify(stackConfig(stack)),
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    children.push(proc);
    return new Promise((resolve, reject) => {
      let out = "";
      let err = "";
      proc.stdout?.on("data", (chunk: Buffer) => {
        out += chunk.toString();
        const line = /^(\d+)\s*$/m.exec(out);
        if (line) resolve(Number(line[1]));
      });
      proc.stderr?.on("data", (chunk: Buffer) => (err += chunk.toString()));
      proc.on("exit", (code) => reject(new Error(`policy pack exited (${code}): ${err}`)));
    });
  }

  /** Unary gRPC call as a promise. */
  function call<Res>(
    invoke: (callback: (error: grpc.ServiceError | null, response: Res) => void) => unknown,
  ): Promise<Res> {
    return new Promise((resolve, reject) =>
      invoke((error, response) => (error ? reject(error) : resolve(response))),
    );
  }

  function analyze(
    stack: StackName,
    resource: PolicyResource & { name: string },
  ): Promise<AnalyzeResponse> {
    const client = clients.get(stack);
    assert.ok(client, `no policy pack running for ${stack}`);
    const req = new AnalyzeRequest()
      .setType(resource.type)
      .setName(resource.name)
      .setOptions(new AnalyzerResourceOptions())
      .setUrn(`urn:pulumi:${stack}::${PROJECT}::${resource.type}::${resource.name}`)
      .setProperties(Struct.fromJavaScript(JSON.parse(JSON.stringify(resource.props))));
    return call<AnalyzeResponse>((cb) => client.analyze(req, cb));
  }

  before(async function () {
    this.timeout(60_000);
    prod = await runStack("prod");
    dev = await runStack("dev");
    for (const stack of ["prod", "dev"] as const) {
      const port = await startPack(stack);
      clients.set(
        stack,
        new AnalyzerClient(`127.0.0.1:${port}`, grpc.credentials.createInsecure()),
      );
    }
  });

  after(function () {
    for (const client of clients.values()) client.close();
    for (const child of children) child.kill();
  });

  /** Every Kubernetes object of a run, analyzed by that stack's pack: its diagnostics. */
  async function analyzeRun(stack: StackName, run: ProgramRun): Promise<string[]> {
    const found: string[] = [];
    for (const r of run.resources.filter((x) => x.type.startsWith("kubernetes:"))) {
      const response = await analyze(stack, { type: r.type, name: r.name, props: r.inputs });
      found.push(...response.getDiagnosticsList().map((d) => `${r.name}: ${d.getMessage()}`));
    }
    return found;
  }

  it("advertises every rule and the stack policy as mandatory policies of the bookapi-mesh pack", async function () {
    const client = clients.get("prod");
    assert.ok(client);
    const info = await call<AnalyzerInfo>((cb) => client.getAnalyzerInfo(new Empty(), cb));
    assert.equal(info.getName(), "bookapi-mesh");
    assert.deepEqual(
      info.getPoliciesList().map((p) => [p.getName(), p.getEnforcementlevel()]),
      [...RULES, { name: ADOPTED_POLICY }].map((r) => [r.name, EnforcementLevel.MANDATORY]),
    );
  });

  it("passes every Kubernetes object of the prod and dev stacks", async function () {
    assert.deepEqual(await analyzeRun("prod", prod), []);
    assert.deepEqual(await analyzeRun("dev", dev), []);
  });

  it("knows its stack from the engine: the app port dev publishes is a violation in prod", async function () {
    const service = dev.resources.find(
      (r) => r.type === TYPES.service && metadataName(r) === "bookapi",
    );
    assert.ok(service);
    const ports = get(service.inputs, "spec").ports as Obj[];
    assert.ok(
      ports.some((p) => p.name === "http"),
      "dev no longer publishes the app port",
    );
    const inDev = await analyze("dev", { ...service, props: service.inputs });
    assert.deepEqual(inDev.getDiagnosticsList(), []);
    const inProd = await analyze("prod", { ...service, props: service.inputs });
    assert.deepEqual(
      inProd.getDiagnosticsList().map((d) => [d.getPolicyname(), d.getEnforcementlevel()]),
      [[RULE.ports, EnforcementLevel.MANDATORY]],
    );
    assert.match(inProd.getDiagnosticsList()[0].getMessage(), /in stack "prod"/);
  });
});
