import assert from "node:assert/strict";
import {
  checkKubernetesReferences,
  KubeObject,
  loadKubernetesSchemas,
  providedObjects,
  validateKubernetesObject,
} from "./harness/kubernetes-schema";
import { loadMeshConfig } from "../components/config";
import { kubernetesObjects, ProgramRun, runStack, STACKS, stackConfig } from "./harness/program";

/** The object a Kubernetes resource sends to the API server: its inputs. */
function asKubeObject(inputs: Record<string, unknown>): KubeObject {
  return JSON.parse(JSON.stringify(inputs)) as KubeObject;
}

function objectsOf(run: ProgramRun): KubeObject[] {
  return kubernetesObjects(run).map((r) => asKubeObject(r.inputs));
}

const deployment = (): KubeObject => ({
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name: "web", namespace: "ns" },
  spec: {
    selector: { matchLabels: { app: "web" } },
    template: {
      metadata: { labels: { app: "web" } },
      spec: {
        serviceAccountName: "web",
        containers: [
          {
            name: "web",
            image: "web:1",
            ports: [{ name: "http", containerPort: 8080 }],
            readinessProbe: { httpGet: { path: "/", port: "http" } },
            volumeMounts: [{ name: "cfg", mountPath: "/cfg" }],
          },
        ],
        volumes: [{ name: "cfg", configMap: { name: "web-cfg" } }],
      },
    },
  },
});
const service = (): KubeObject => ({
  apiVersion: "v1",
  kind: "Service",
  metadata: { name: "web", namespace: "ns" },
  spec: { selector: { app: "web" }, ports: [{ name: "http", port: 80, targetPort: "http" }] },
});
const named = (kind: string, name: string): KubeObject => ({
  apiVersion: "v1",
  kind,
  metadata: { name, namespace: "ns" },
});
const valid = (): KubeObject[] => [
  deployment(),
  service(),
  named("ServiceAccount", "web"),
  named("ConfigMap", "web-cfg"),
];

type PodSpecShape = {
  containers: Array<Record<string, unknown> & { ports: Array<Record<string, unknown>> }>;
  volumes: Array<Record<string, unknown>>;
  serviceAccountName: string;
};
const podOf = (d: KubeObject) => (d.spec as { template: { spec: PodSpecShape } }).template.spec;

before(loadKubernetesSchemas);

describe("the Kubernetes schema check", () => {
  it("accepts a well-formed, consistent set of objects", () => {
    for (const o of valid()) assert.deepEqual(validateKubernetesObject(o), []);
    assert.deepEqual(checkKubernetesReferences(valid(), 29), []);
  });

  const broken: Array<[string, (objs: KubeObject[]) => void, RegExp]> = [
    [
      "a container port given as text",
      (o) => (podOf(o[0]).containers[0].ports[0].containerPort = "8080"),
      /containerPort.*integer/,
    ],
    [
      "an unknown protocol",
      (o) => (podOf(o[0]).containers[0].ports[0].protocol = "HTTP"),
      /protocol.*(SCTP|allowedValues)/,
    ],
    [
      "capabilities.drop given as a string",
      (o) => (podOf(o[0]).containers[0].securityContext = { capabilities: { drop: "ALL" } }),
      /drop.*array/,
    ],
    [
      "a port name longer than 15 characters",
      (o) => (podOf(o[0]).containers[0].ports[0].name = "much-too-long-name"),
      /port name/,
    ],
    [
      "a Service name that is not a DNS-1035 label",
      (o) => (o[1].metadata.name = "1web"),
      /not a valid Service name/,
    ],
  ];
  for (const [what, mutate, message] of broken) {
    it(`rejects ${what}`, () => {
      const objs = valid();
      mutate(objs);
      const errors = objs.flatMap(validateKubernetesObject);
      assert.ok(
        errors.some((e) => message.test(e)),
        JSON.stringify(errors),
      );
    });
  }

  it("rejects a kind it has no schema for instead of passing it unchecked", () => {
    assert.match(
      validateKubernetesObject({
        apiVersion: "batch/v1",
        kind: "Job",
        metadata: { name: "x" },
      }).join(),
      /no schema/,
    );
  });

  const dangling: Array<[string, (objs: KubeObject[]) => void, RegExp]> = [
    [
      "a Service selector that matches no pod",
      (o) => ((o[1].spec as { selector: Record<string, string> }).selector = { app: "other" }),
      /matches no pods/,
    ],
    [
      "a Service targetPort no container opens",
      (o) =>
        ((o[1].spec as { ports: Array<Record<string, unknown>> }).ports[0].targetPort = "grpc"),
      /targets grpc/,
    ],
    [
      "a probe on a port the container does not open",
      (o) => (podOf(o[0]).containers[0].readinessProbe = { tcpSocket: { port: 9999 } }),
      /probe hits port 9999/,
    ],
    [
      "a volume naming a ConfigMap that is not created",
      (o) => (podOf(o[0]).volumes[0] = { name: "cfg", configMap: { name: "missing" } }),
      /ConfigMap "missing"/,
    ],
    [
      "a mount of a volume the pod does not have",
      (o) => (podOf(o[0]).volumes = []),
      /unknown volume "cfg"/,
    ],
    [
      "a service account that is not created",
      (o) => (podOf(o[0]).serviceAccountName = "ghost"),
      /ServiceAccount "ghost"/,
    ],
    [
      "a ConfigMap in another namespace",
      (o) => (o[3].metadata.namespace = "elsewhere"),
      /ConfigMap "web-cfg" is not created in ns/,
    ],
    [
      "a Deployment selector that does not match its pod labels",
      (o) =>
        ((o[0].spec as { selector: { matchLabels: Record<string, string> } }).selector.matchLabels =
          { app: "x" }),
      /selector does not match/,
    ],
  ];
  for (const [what, mutate, message] of dangling) {
    it(`reports ${what}`, () => {
      const objs = valid();
      mutate(objs);
      const problems = checkKubernetesReferences(objs, 29);
      assert.ok(
        problems.some((p) => message.test(p)),
        JSON.stringify(problems),
      );
    });
  }
});

describe("every Kubernetes object the program registers", () => {
  for (const stack of STACKS) {
    it(`validates against the Kubernetes schema and references only what exists, in stack ${stack}`, async () => {
      const objects = objectsOf(await runStack(stack));
      assert.ok(objects.length >= 10);
      assert.deepEqual(objects.flatMap(validateKubernetesObject), []);
      const model = loadMeshConfig(stackConfig(stack));
      assert.deepEqual(
        checkKubernetesReferences(objects, model.kubernetesMinor, providedObjects(model)),
        [],
      );
    });
  }

  it("targets the native sidecar's mTLS port by number, which every supported version resolves", async () => {
    const objects = objectsOf(await runStack("prod"));
    const provided = providedObjects(loadMeshConfig(stackConfig("prod")));
    for (const minor of [27, 29, 31, 32, 34])
      assert.deepEqual(checkKubernetesReferences(objects, minor, provided), [], `1.${minor}`);
  });
});

describe("named Service target ports on a native sidecar (kubernetes#127958)", () => {
  /** The prod stack's objects with the mTLS port targeted by name, as before. */
  async function withNamedTarget(): Promise<KubeObject[]> {
    const objects = objectsOf(await runStack("prod"));
    for (const o of objects.filter((x) => x.kind === "Service"))
      for (const p of (o.spec as { ports: Array<{ name: string; targetPort: unknown }> }).ports)
        if (p.name === "mtls") p.targetPort = "mtls";
    return objects;
  }

  it("resolves to no endpoint before Kubernetes 1.32", async () => {
    const problems = checkKubernetesReferences(await withNamedTarget(), 31);
    assert.ok(
      problems.some((p) =>
        /targets the name "mtls", which Kubernetes 1.31 does not resolve/.test(p),
      ),
      problems.join("\n"),
    );
  });

  it("resolves from 1.32, where sidecar ports are looked up too", async () => {
    const provided = providedObjects(loadMeshConfig(stackConfig("prod")));
    assert.deepEqual(checkKubernetesReferences(await withNamedTarget(), 32, provided), []);
  });
});
