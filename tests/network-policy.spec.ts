/**
 * NetworkPolicies: the mesh must hold for a pod that skips the sidecar. The generated policies
 * are evaluated with an independent model of NetworkPolicy semantics over every pair of pods and
 * every mesh port; the allowed traffic must equal what the `calls` graph (plus the stack's
 * scrapeFrom / directPortAllowedFrom selectors and cluster DNS) permits, nothing more or less.
 */
import assert from "node:assert/strict";
import * as pulumi from "@pulumi/pulumi";
import { MeshModel, parseMeshConfig, PROJECT } from "../components/config";
import {
  DEFAULT_DENY_POLICY,
  MeshNetworkPolicies,
  networkPolicySpecs,
} from "../components/network-policy";
import { podTemplate } from "../components/workload";
import { builtService } from "./harness/program";
import {
  KubeObject,
  loadKubernetesSchemas,
  validateKubernetesObject,
} from "./harness/kubernetes-schema";
import {
  Cluster,
  connectionAllowed,
  egressAllowed,
  ingressAllowed,
  Pod,
  Policy,
  PolicySpec,
  Protocol,
} from "./harness/network-policy-model";

const BOOKAPI = {
  name: "bookapi",
  image: "registry.example.com/bookapi:1.0.0",
  port: 5288,
  // The app port is published on the Service: the policies alone must keep callers off it.
  exposeDirectPort: true,
};
const MCP = {
  name: "bookapi-mcp-server",
  image: "registry.example.com/bookapi-mcp-server:1.0.0",
  port: 5289,
  calls: ["bookapi"],
};
/** A third service calling both others. */
const ADMIN = {
  name: "bookapi-admin",
  image: "registry.example.com/bookapi-admin:1.0.0",
  port: 5290,
  calls: ["bookapi", "bookapi-mcp-server"],
};

const MONITORING_PROMETHEUS = {
  namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "monitoring" } },
  podSelector: { matchLabels: { "app.kubernetes.io/name": "prometheus" } },
};
const FROM_NAMESPACE_OTHER = {
  namespaceSelector: {
    matchExpressions: [
      { key: "kubernetes.io/metadata.name", operator: "In" as const, values: ["other"] },
    ],
  },
};

function modelOf(services: unknown[], envoy: Record<string, unknown> = {}): MeshModel {
  return parseMeshConfig({ services, envoy });
}

/** Plain JSON of a value built from Pulumi input types (the builders only put plain values in). */
function plain<T>(value: unknown): T {
  return JSON.parse(JSON.stringify(value)) as T;
}

function policiesOf(model: MeshModel): Policy[] {
  return networkPolicySpecs(model).map((p) => ({
    name: p.name,
    namespace: model.namespace,
    spec: plain<PolicySpec>(p.spec),
  }));
}

/** A pod in the test cluster; mesh pods carry the service they run. */
interface TestPod extends Pod {
  service?: string;
}

/** Labels the Deployment really puts on the service's pods. */
function podLabelsOf(model: MeshModel, service: string): Record<string, string> {
  const svc = builtService(model, service);
  return plain<{ metadata: { labels: Record<string, string> } }>(
    podTemplate(svc, model.envoy, { configMapName: "envoy-config" }, model.kubernetesMinor),
  ).metadata.labels;
}

/**
 * The cluster: two replicas per mesh service, and the neighbours a mesh must defend against or
 * rely on: a sidecar-less pod in the mesh's namespace, pods elsewhere, cluster DNS, and a
 * monitoring namespace with Prometheus and a pod that is not Prometheus.
 */
function worldOf(model: MeshModel): { cluster: Cluster; pods: TestPod[] } {
  const ns = model.namespace;
  const pods: TestPod[] = model.services.flatMap((svc) =>
    [0, 1].map((i) => ({
      name: `${svc.name}-${i}`,
      namespace: ns,
      labels: podLabelsOf(model, svc.name),
      service: svc.name,
    })),
  );
  pods.push(
    { name: "no-sidecar", namespace: ns, labels: { app: "no-sidecar" } },
    { name: "other-ns", namespace: "other", labels: { app: "client" } },
    // Labels are not identity: a pod elsewhere wearing a caller's labels is still a stranger.
    {
      name: "impostor",
      namespace: "other",
      labels: podLabelsOf(
        model,
        (model.services.find((s) => s.upstreams.length > 0) ?? model.services[0]).name,
      ),
    },
    { name: "kube-dns", namespace: "kube-system", labels: { "k8s-app": "kube-dns" } },
    { name: "metrics-server", namespace: "kube-system", labels: { "k8s-app": "metrics-server" } },
    {
      name: "prometheus",
      namespace: "monitoring",
      labels: { "app.kubernetes.io/name": "prometheus" },
    },
    { name: "grafana", namespace: "monitoring", labels: { "app.kubernetes.io/name": "grafana" } },
  );
  const namespaces: Cluster["namespaces"] = {};
  for (const name of [ns, "other", "kube-system", "monitoring"])
    namespaces[name] = { "kubernetes.io/metadata.name": name };
  return { cluster: { namespaces, policies: policiesOf(model) }, pods };
}

/** Every port worth probing: Envoy's five, every app port, DNS. */
function probes(model: MeshModel): Array<[number, Protocol]> {
  const ports = new Set<number>([
    ...Object.values(model.envoy.ports),
    ...model.services.map((s) => s.port),
    53,
  ]);
  return [
    ...[...ports].sort((a, b) => a - b).map((p): [number, Protocol] => [p, "TCP"]),
    [53, "UDP"],
  ];
}

const edge = (src: string, dst: string, port: number, protocol: Protocol) =>
  `${src} -> ${dst}:${port}/${protocol}`;

type Judge = (src: TestPod, dst: TestPod, port: number, protocol: Protocol) => boolean;

/** The edges `judge` admits over every pair of distinct pods and every probe, sorted. */
function matrix(model: MeshModel, judge: Judge): string[] {
  const { pods } = worldOf(model);
  const allowed: string[] = [];
  for (const src of pods)
    for (const dst of pods) {
      if (src === dst) continue;
      for (const [port, protocol] of probes(model))
        if (judge(src, dst, port, protocol)) allowed.push(edge(src.name, dst.name, port, protocol));
    }
  return allowed.sort();
}

/** What the policies allow. */
function allowedMatrix(model: MeshModel): string[] {
  const { cluster } = worldOf(model);
  return matrix(model, (src, dst, port, protocol) =>
    connectionAllowed(cluster, src, dst, port, protocol),
  );
}

/** Extra access the stack grants a non-mesh pod to a service's ports, spelled out by the test. */
interface Grant {
  from: string;
  toService: string;
  ports: number[];
}

/** The topology's intent, per half of a connection. */
function intent(model: MeshModel, grants: Grant[]): { egress: Judge; ingress: Judge } {
  const calls = new Map(model.services.map((s) => [s.name, s.upstreams.map((u) => u.name)]));
  const meshCall: Judge = (src, dst, port, protocol) =>
    src.service !== undefined &&
    dst.service !== undefined &&
    protocol === "TCP" &&
    port === model.envoy.ports.inbound &&
    (calls.get(src.service) ?? []).includes(dst.service);
  const granted: Judge = (src, dst, port, protocol) =>
    grants.some(
      (g) =>
        g.from === src.name &&
        g.toService === dst.service &&
        protocol === "TCP" &&
        g.ports.includes(port),
    );
  return {
    // What a mesh pod may send: calls to its callees' inbound port, and DNS.
    egress: (src, dst, port, protocol) =>
      meshCall(src, dst, port, protocol) || (dst.name === "kube-dns" && port === 53),
    // What a mesh pod may receive: its callers on the inbound port, and the stack's grants.
    ingress: (src, dst, port, protocol) =>
      meshCall(src, dst, port, protocol) || granted(src, dst, port, protocol),
  };
}

/**
 * What should be allowed end to end, from the topology alone: callers reach callees' inbound
 * port, mesh pods reach DNS, the listed grants, and traffic between non-mesh pods is none of our
 * business (so it stays open: the policies must not spill onto other pods).
 */
function intendedMatrix(model: MeshModel, grants: Grant[] = []): string[] {
  const { egress, ingress } = intent(model, grants);
  return matrix(
    model,
    (src, dst, port, protocol) =>
      (src.service === undefined || egress(src, dst, port, protocol)) &&
      (dst.service === undefined || ingress(src, dst, port, protocol)),
  );
}

/** Differences first, so a failure names the offending edges instead of two long lists. */
function assertSameMatrix(actual: string[], expected: string[]): void {
  const extra = actual.filter((e) => !expected.includes(e));
  const missing = expected.filter((e) => !actual.includes(e));
  assert.deepEqual({ extra, missing }, { extra: [], missing: [] });
  assert.deepEqual(actual, expected);
}

/** Sources that reach any pod of `service` on `port` over TCP. */
function sourcesReaching(model: MeshModel, service: string, port: number): string[] {
  const { cluster, pods } = worldOf(model);
  const found = new Set<string>();
  for (const dst of pods.filter((p) => p.service === service))
    for (const src of pods)
      if (src !== dst && connectionAllowed(cluster, src, dst, port)) found.add(src.name);
  return [...found].sort();
}

const scenarios: Array<{ title: string; model: () => MeshModel; grants: Grant[] }> = [
  {
    title: "the default topology (bookapi-mcp-server calls bookapi)",
    model: () => modelOf([BOOKAPI, MCP]),
    grants: [],
  },
  {
    title: "a third service calling both others",
    model: () => modelOf([BOOKAPI, MCP, ADMIN]),
    grants: [],
  },
  {
    title: "scrapeFrom and directPortAllowedFrom set",
    model: () =>
      modelOf([{ ...BOOKAPI, directPortAllowedFrom: [FROM_NAMESPACE_OTHER] }, MCP, ADMIN], {
        scrapeFrom: [MONITORING_PROMETHEUS],
      }),
    grants: [
      // The whole namespace "other" is granted, whatever its pods' labels.
      { from: "other-ns", toService: "bookapi", ports: [5288] },
      { from: "impostor", toService: "bookapi", ports: [5288] },
      ...["bookapi", "bookapi-mcp-server", "bookapi-admin"].map((toService) => ({
        from: "prometheus",
        toService,
        ports: [15021, 15090],
      })),
    ],
  },
];

describe("the NetworkPolicy model", () => {
  const ns = {
    a: { "kubernetes.io/metadata.name": "a" },
    b: { "kubernetes.io/metadata.name": "b" },
  };
  const web: Pod = { name: "web", namespace: "a", labels: { app: "web" } };
  const db: Pod = { name: "db", namespace: "a", labels: { app: "db", tier: "data" } };
  const remote: Pod = { name: "remote", namespace: "b", labels: { app: "web" } };
  const policy = (spec: PolicySpec, namespace = "a"): Policy => ({ name: "p", namespace, spec });
  const cluster = (...policies: Policy[]): Cluster => ({ namespaces: ns, policies });

  it("allows everything when there are no policies", () => {
    for (const [src, dst] of [
      [web, db],
      [db, remote],
      [remote, web],
    ])
      assert.ok(connectionAllowed(cluster(), src, dst, 1234, "UDP"));
  });

  it("isolates only the pods a policy selects", () => {
    const c = cluster(policy({ podSelector: { matchLabels: { app: "db" } } }));
    assert.equal(connectionAllowed(c, web, db, 5432), false);
    assert.equal(connectionAllowed(c, remote, web, 80), true);
    // A policy in namespace a does not isolate the look-alike pod in namespace b.
    assert.equal(connectionAllowed(c, web, remote, 80), true);
  });

  it("treats an omitted or empty `from` as every source and omitted ports as every port", () => {
    for (const rule of [{}, { from: [] }]) {
      const c = cluster(policy({ podSelector: {}, policyTypes: ["Ingress"], ingress: [rule] }));
      assert.ok(connectionAllowed(c, remote, db, 1, "TCP"));
      assert.ok(connectionAllowed(c, web, db, 65535, "UDP"));
    }
  });

  it("denies all ingress for a policy with policyType Ingress and no rules, leaving egress open", () => {
    const c = cluster(
      policy({ podSelector: { matchLabels: { app: "db" } }, policyTypes: ["Ingress"] }),
    );
    assert.equal(connectionAllowed(c, web, db, 5432), false);
    assert.equal(connectionAllowed(c, db, remote, 80), true);
  });

  it("defaults policyTypes to Ingress, plus Egress only when egress rules exist", () => {
    const noEgress = cluster(policy({ podSelector: { matchLabels: { app: "db" } } }));
    assert.equal(connectionAllowed(noEgress, db, remote, 80), true);
    const withEgress = cluster(
      policy({
        podSelector: { matchLabels: { app: "db" } },
        egress: [{ to: [{ podSelector: { matchLabels: { app: "web" } } }] }],
      }),
    );
    assert.equal(connectionAllowed(withEgress, db, web, 80), true);
    assert.equal(connectionAllowed(withEgress, db, remote, 80), false);
    assert.equal(connectionAllowed(withEgress, web, db, 5432), false);
  });

  it("matches a port number with TCP as the default protocol", () => {
    const c = cluster(
      policy({
        podSelector: {},
        ingress: [{ ports: [{ port: 53 }, { port: 8000, endPort: 8002, protocol: "UDP" }] }],
      }),
    );
    assert.equal(connectionAllowed(c, remote, db, 53, "TCP"), true);
    assert.equal(connectionAllowed(c, remote, db, 53, "UDP"), false);
    assert.equal(connectionAllowed(c, remote, db, 54, "TCP"), false);
    assert.equal(connectionAllowed(c, remote, db, 8001, "UDP"), true);
    assert.equal(connectionAllowed(c, remote, db, 8003, "UDP"), false);
  });

  it("reads a bare podSelector peer in the policy's namespace only", () => {
    const c = cluster(
      policy({
        podSelector: { matchLabels: { app: "db" } },
        ingress: [{ from: [{ podSelector: { matchLabels: { app: "web" } } }] }],
      }),
    );
    assert.equal(connectionAllowed(c, web, db, 5432), true);
    assert.equal(connectionAllowed(c, remote, db, 5432), false);
  });

  it("ANDs namespaceSelector and podSelector within one peer and ORs separate peers", () => {
    const inB = { namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "b" } } };
    const webPods = { podSelector: { matchLabels: { app: "web" } } };
    const other: Pod = { name: "other", namespace: "b", labels: { app: "other" } };
    const and = cluster(
      policy({
        podSelector: { matchLabels: { app: "db" } },
        ingress: [{ from: [{ ...inB, ...webPods }] }],
      }),
    );
    assert.equal(connectionAllowed(and, remote, db, 5432), true);
    assert.equal(connectionAllowed(and, other, db, 5432), false);
    assert.equal(connectionAllowed(and, web, db, 5432), false);
    const or = cluster(
      policy({ podSelector: { matchLabels: { app: "db" } }, ingress: [{ from: [inB, webPods] }] }),
    );
    assert.equal(connectionAllowed(or, other, db, 5432), true);
    assert.equal(connectionAllowed(or, web, db, 5432), true);
  });

  it("applies matchExpressions In, NotIn, Exists and DoesNotExist", () => {
    const admits = (
      operator: "In" | "NotIn" | "Exists" | "DoesNotExist",
      values: string[] | undefined,
      src: Pod,
    ) =>
      connectionAllowed(
        cluster(
          policy({
            podSelector: { matchLabels: { app: "web" } },
            ingress: [
              {
                from: [{ podSelector: { matchExpressions: [{ key: "tier", operator, values }] } }],
              },
            ],
          }),
        ),
        src,
        web,
        80,
      );
    const untiered: Pod = { name: "x", namespace: "a", labels: { app: "x" } };
    assert.deepEqual(
      [
        admits("In", ["data"], db),
        admits("In", ["data"], untiered),
        admits("NotIn", ["data"], db),
        admits("NotIn", ["data"], untiered),
        admits("Exists", undefined, db),
        admits("Exists", undefined, untiered),
        admits("DoesNotExist", undefined, db),
        admits("DoesNotExist", undefined, untiered),
      ],
      [true, false, false, true, true, false, false, true],
    );
  });

  it("needs both the source's egress and the destination's ingress", () => {
    const admitWeb = policy({
      podSelector: { matchLabels: { app: "db" } },
      ingress: [{ from: [{ podSelector: { matchLabels: { app: "web" } } }] }],
    });
    const webNoEgress = policy({
      podSelector: { matchLabels: { app: "web" } },
      policyTypes: ["Egress"],
    });
    assert.equal(connectionAllowed(cluster(admitWeb), web, db, 5432), true);
    assert.equal(connectionAllowed(cluster(admitWeb, webNoEgress), web, db, 5432), false);
  });

  it("matches ipBlocks against addresses, minus their exceptions, and selects nothing outside by labels", () => {
    const fromBlock = cluster(
      policy({
        podSelector: {},
        ingress: [
          {
            from: [
              { ipBlock: { cidr: "203.0.113.0/24", except: ["203.0.113.128/25"] } },
              { ipBlock: { cidr: "2001:db8::/32" } },
              { podSelector: {} },
            ],
          },
        ],
      }),
    );
    const outside = (ip: string): Pod => ({
      name: ip,
      namespace: "",
      labels: {},
      ip,
      external: true,
    });
    assert.equal(connectionAllowed(fromBlock, outside("203.0.113.7"), db, 80), true);
    assert.equal(connectionAllowed(fromBlock, outside("203.0.113.200"), db, 80), false);
    assert.equal(connectionAllowed(fromBlock, outside("198.51.100.1"), db, 80), false);
    assert.equal(connectionAllowed(fromBlock, outside("2001:db8::5"), db, 80), true);
    // The podSelector {} selects every pod of the namespace, never an address outside.
    assert.equal(connectionAllowed(fromBlock, outside("192.0.2.1"), db, 80), false);
  });

  it("rejects what it cannot decide instead of guessing", () => {
    const withIpBlock = cluster(
      policy({ podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: "10.0.0.0/8" } }] }] }),
    );
    assert.throws(() => connectionAllowed(withIpBlock, web, db, 80), /no address for an ipBlock/);
    const withNamedPort = cluster(
      policy({ podSelector: {}, ingress: [{ ports: [{ port: "http" }] }] }),
    );
    assert.throws(() => connectionAllowed(withNamedPort, web, db, 80), /named port/);
  });
});

describe("mesh NetworkPolicies", () => {
  before(loadKubernetesSchemas);

  it("are a default deny plus one policy per service, with fixed names", () => {
    assert.equal(DEFAULT_DENY_POLICY, "bookapi-mesh-default-deny");
    assert.deepEqual(
      networkPolicySpecs(modelOf([MCP, BOOKAPI])).map((p) => p.name),
      ["bookapi-mesh-default-deny", "bookapi-mesh", "bookapi-mcp-server-mesh"],
    );
  });

  it("isolate every mesh pod for ingress and egress in the default deny", () => {
    const [deny] = networkPolicySpecs(modelOf([BOOKAPI, MCP]));
    assert.deepEqual(plain(deny.spec), {
      podSelector: { matchLabels: { "app.kubernetes.io/part-of": PROJECT } },
      policyTypes: ["Ingress", "Egress"],
    });
    // A mesh-labelled pod that no service policy selects still gets nothing.
    const model = modelOf([BOOKAPI, MCP]);
    const { cluster } = worldOf(model);
    const stray: Pod = {
      name: "stray",
      namespace: model.namespace,
      labels: { "app.kubernetes.io/part-of": PROJECT },
    };
    const noSidecar: Pod = { name: "n", namespace: model.namespace, labels: {} };
    assert.equal(connectionAllowed(cluster, noSidecar, stray, 80), false);
    assert.equal(connectionAllowed(cluster, stray, noSidecar, 80), false);
  });

  for (const scenario of scenarios) {
    it(`allow exactly what the topology permits for ${scenario.title}`, () => {
      const model = scenario.model();
      assertSameMatrix(allowedMatrix(model), intendedMatrix(model, scenario.grants));
    });

    it(`allow exactly the intended egress and, separately, ingress for ${scenario.title}`, () => {
      // Each half on its own, so one half cannot hide a hole in the other.
      const model = scenario.model();
      const { cluster } = worldOf(model);
      const { egress, ingress } = intent(model, scenario.grants);
      const fromMesh =
        (judge: Judge): Judge =>
        (src, dst, port, protocol) =>
          src.service !== undefined && judge(src, dst, port, protocol);
      const toMesh =
        (judge: Judge): Judge =>
        (src, dst, port, protocol) =>
          dst.service !== undefined && judge(src, dst, port, protocol);
      assertSameMatrix(
        matrix(
          model,
          fromMesh((s, d, p, pr) => egressAllowed(cluster, s, d, p, pr)),
        ),
        matrix(model, fromMesh(egress)),
      );
      assertSameMatrix(
        matrix(
          model,
          toMesh((s, d, p, pr) => ingressAllowed(cluster, s, d, p, pr)),
        ),
        matrix(model, toMesh(ingress)),
      );
    });

    it(`never write an allow-all rule for ${scenario.title}`, () => {
      for (const { name, spec } of networkPolicySpecs(scenario.model())) {
        const s = plain<PolicySpec>(spec);
        for (const rule of s.ingress ?? []) {
          assert.ok((rule.from ?? []).length > 0, `${name}: an ingress rule without peers`);
          assert.ok((rule.ports ?? []).length > 0, `${name}: an ingress rule without ports`);
        }
        for (const rule of s.egress ?? []) {
          assert.ok((rule.to ?? []).length > 0, `${name}: an egress rule without peers`);
          assert.ok((rule.ports ?? []).length > 0, `${name}: an egress rule without ports`);
        }
      }
    });

    it(`pass Kubernetes' NetworkPolicy schema for ${scenario.title}`, () => {
      const model = scenario.model();
      for (const { name, spec } of networkPolicySpecs(model)) {
        const obj: KubeObject = {
          apiVersion: "networking.k8s.io/v1",
          kind: "NetworkPolicy",
          metadata: { name, namespace: model.namespace },
          spec: plain(spec),
        };
        assert.deepEqual(validateKubernetesObject(obj), []);
      }
    });
  }

  it("admit nothing on the inbound port of a service nobody calls", () => {
    const model = modelOf([BOOKAPI, MCP], { scrapeFrom: [MONITORING_PROMETHEUS] });
    const uncalled = model.services.find((s) => s.name === "bookapi-mcp-server");
    assert.deepEqual(uncalled?.callers, []);
    assert.deepEqual(sourcesReaching(model, "bookapi-mcp-server", model.envoy.ports.inbound), []);
    const policy = networkPolicySpecs(model).find((p) => p.name === "bookapi-mcp-server-mesh");
    const ingress = plain<PolicySpec>(policy?.spec).ingress ?? [];
    assert.ok(
      ingress.every(
        (rule) => !(rule.ports ?? []).some((p) => p.port === model.envoy.ports.inbound),
      ),
      "no ingress rule mentions the inbound port",
    );
  });

  it("admit a service's callers on its inbound port and no one else", () => {
    const model = modelOf([BOOKAPI, MCP, ADMIN]);
    assert.deepEqual(sourcesReaching(model, "bookapi", 15001), [
      "bookapi-admin-0",
      "bookapi-admin-1",
      "bookapi-mcp-server-0",
      "bookapi-mcp-server-1",
    ]);
    assert.deepEqual(sourcesReaching(model, "bookapi-mcp-server", 15001), [
      "bookapi-admin-0",
      "bookapi-admin-1",
    ]);
  });

  it("block direct service-to-service traffic to an app port the Service publishes", () => {
    const model = modelOf([{ ...BOOKAPI, directPortAllowedFrom: [FROM_NAMESPACE_OTHER] }, MCP]);
    assert.equal(model.services.find((s) => s.name === "bookapi")?.exposeDirectPort, true);
    // Only namespace "other", as directPortAllowedFrom says; no mesh pod.
    assert.deepEqual(sourcesReaching(model, "bookapi", 5288), ["impostor", "other-ns"]);
  });

  it("follow a changed port plan without code changes", () => {
    const model = modelOf([BOOKAPI, MCP], {
      ports: { inbound: 16001, outbound: 16006, admin: 19901, health: 16021, metrics: 16090 },
      scrapeFrom: [MONITORING_PROMETHEUS],
    });
    assertSameMatrix(
      allowedMatrix(model),
      intendedMatrix(
        model,
        ["bookapi", "bookapi-mcp-server"].map((toService) => ({
          from: "prometheus",
          toService,
          ports: [16021, 16090],
        })),
      ),
    );
  });
});

/** A resource as the mocks saw it: type, logical name and inputs. */
interface SeenResource {
  type: string;
  name: string;
  inputs: Record<string, unknown>;
}

function valueOf<T>(output: pulumi.Output<T>): Promise<T> {
  return new Promise((resolve) => output.apply((v) => resolve(v)));
}

describe("MeshNetworkPolicies", () => {
  before(loadKubernetesSchemas);

  it("registers every policy as a named, labelled, deleteBeforeReplace child", async () => {
    const model = modelOf([BOOKAPI, MCP, ADMIN]);
    const seen: SeenResource[] = [];
    await pulumi.runtime.setMocks(
      {
        newResource(args) {
          seen.push({
            type: args.type,
            name: args.name,
            inputs: args.inputs as Record<string, unknown>,
          });
          return { id: `${args.name}-id`, state: args.inputs as Record<string, unknown> };
        },
        call(args) {
          throw new Error(`unexpected call to ${args.token}`);
        },
      },
      PROJECT,
      "test",
      false,
    );
    const options: Array<{
      type: string;
      name: string;
      deleteBeforeReplace: unknown;
      parent?: pulumi.Resource;
    }> = [];
    const component = new MeshNetworkPolicies(
      "mesh-np",
      { model, namespace: pulumi.output("shop") },
      {
        // Inherited by children, so it shows the options each child was registered with.
        transformations: [
          (args) => {
            options.push({
              type: args.type,
              name: args.name,
              // Only custom resources carry the option, so the component's own entry has none.
              deleteBeforeReplace:
                "deleteBeforeReplace" in args.opts ? args.opts.deleteBeforeReplace : undefined,
              parent: args.opts.parent,
            });
            return undefined;
          },
        ],
      },
    );

    const expected = networkPolicySpecs(model);
    assert.deepEqual(
      await valueOf(component.policyNames),
      expected.map((p) => p.name),
    );
    const policies = seen.filter((r) => r.type === "kubernetes:networking.k8s.io/v1:NetworkPolicy");
    assert.deepEqual(
      policies.map((r) => r.name).sort(),
      expected.map((p) => `mesh-np-${p.name}`).sort(),
    );
    for (const p of expected) {
      const registered = policies.find((r) => r.name === `mesh-np-${p.name}`);
      const inputs = plain<KubeObject>(registered?.inputs);
      assert.deepEqual(inputs.metadata, {
        name: p.name,
        namespace: "shop",
        labels: { "app.kubernetes.io/part-of": PROJECT, "app.kubernetes.io/managed-by": "pulumi" },
      });
      assert.deepEqual(inputs.spec, plain(p.spec));
      assert.deepEqual(validateKubernetesObject(inputs), []);
      const opts = options.find((o) => o.name === `mesh-np-${p.name}`);
      assert.equal(opts?.deleteBeforeReplace, true, `${p.name} is deleteBeforeReplace`);
      assert.equal(opts?.parent, component, `${p.name} is a child of the component`);
    }
    assert.ok(
      options.some((o) => o.type === "bookapi-mesh:network-policy:MeshNetworkPolicies"),
      "the component registers under its type token",
    );
  });
});
