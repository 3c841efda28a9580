/**
 * What a real cluster needs beyond the mesh itself: Pod Security enforced, availability through
 * disruptions, DNS egress that fits the cluster, and the settings real apps need, each wired
 * into valid Kubernetes objects.
 */
import assert from "node:assert/strict";
import * as k8s from "@pulumi/kubernetes";
import {
  checkKubernetesReferences,
  KubeObject,
  loadKubernetesSchemas,
  providedObjects,
  validateKubernetesObject,
} from "./harness/kubernetes-schema";
import { loadMeshConfig } from "../components/config";
import {
  findObject,
  kindOf,
  kubernetesObjects,
  ProgramRun,
  runProgram,
  runStack,
  stackConfig,
} from "./harness/program";

type Json = Record<string, unknown>;

type Template = k8s.types.output.core.v1.PodTemplateSpec;

function deploymentOf(run: ProgramRun, name: string): { replicas?: number; template: Template } {
  return findObject(run, "Deployment", name).inputs.spec as {
    replicas?: number;
    template: Template;
  };
}

function objectsOf(run: ProgramRun): KubeObject[] {
  return kubernetesObjects(run).map((r) => JSON.parse(JSON.stringify(r.inputs)) as KubeObject);
}

/** The stack's config with service `index` patched. */
function patched(stack: string, index: number, patch: Json, top: Json = {}) {
  const config = stackConfig(stack);
  const services = JSON.parse(config["bookapi-mesh:services"]) as Json[];
  services[index] = { ...services[index], ...patch };
  const extra = Object.fromEntries(
    Object.entries(top).map(([k, v]) => [
      `bookapi-mesh:${k}`,
      typeof v === "string" ? v : JSON.stringify(v),
    ]),
  );
  return { ...config, "bookapi-mesh:services": JSON.stringify(services), ...extra };
}

describe("Pod Security in the shipped stacks", () => {
  for (const stack of ["staging", "prod"] as const) {
    it(`enforces, audits and warns on "restricted" in ${stack}, pinned to the stack's Kubernetes version`, async () => {
      const run = await runStack(stack);
      const ns = kubernetesObjects(run).find((r) => kindOf(r.type) === "Namespace");
      assert.ok(ns, `${stack} creates its namespace`);
      const labels = (ns.inputs.metadata as { labels: Record<string, string> }).labels;
      for (const mode of ["enforce", "audit", "warn"]) {
        assert.equal(labels[`pod-security.kubernetes.io/${mode}`], "restricted");
        assert.equal(labels[`pod-security.kubernetes.io/${mode}-version`], "v1.29");
      }
    });
  }
});

describe("availability", () => {
  it("gives each replicated service a PodDisruptionBudget that keeps all but one pod up", async () => {
    const run = await runStack("prod");
    for (const name of ["bookapi", "bookapi-mcp-server"]) {
      const pdb = findObject(run, "PodDisruptionBudget", name).inputs.spec as Json;
      assert.equal(pdb.maxUnavailable, 1);
      assert.deepEqual(pdb.selector, {
        matchLabels: {
          "app.kubernetes.io/name": name,
          "app.kubernetes.io/part-of": "bookapi-mesh",
        },
      });
      // A crash-looping pod must not block a node drain.
      assert.equal(pdb.unhealthyPodEvictionPolicy, "AlwaysAllow");
    }
  });

  it("spreads replicated pods over nodes and zones without ever refusing to schedule", async () => {
    const run = await runStack("prod");
    const spread = deploymentOf(run, "bookapi").template.spec.topologySpreadConstraints ?? [];
    assert.deepEqual(
      spread.map((c) => [c.topologyKey, c.whenUnsatisfiable, c.maxSkew]),
      [
        ["kubernetes.io/hostname", "ScheduleAnyway", 1],
        ["topology.kubernetes.io/zone", "ScheduleAnyway", 1],
      ],
    );
  });

  it("adds neither a budget nor spreading for a single replica, which a budget would pin", async () => {
    const run = await runStack("dev");
    assert.equal(
      kubernetesObjects(run).filter((r) => kindOf(r.type) === "PodDisruptionBudget").length,
      0,
    );
    assert.equal(deploymentOf(run, "bookapi").template.spec.topologySpreadConstraints, undefined);
  });

  it("hands the replica count to an HPA when autoscaling is set", async () => {
    const run = await runProgram(
      patched("prod", 0, {
        replicas: undefined,
        autoscaling: { minReplicas: 2, maxReplicas: 6, targetCPUUtilization: 70 },
      }),
    );
    const hpa = findObject(run, "HorizontalPodAutoscaler", "bookapi").inputs.spec as Json;
    assert.deepEqual(hpa.scaleTargetRef, {
      apiVersion: "apps/v1",
      kind: "Deployment",
      name: "bookapi",
    });
    assert.equal(hpa.minReplicas, 2);
    assert.equal(hpa.maxReplicas, 6);
    assert.deepEqual(hpa.metrics, [
      {
        type: "Resource",
        resource: { name: "cpu", target: { type: "Utilization", averageUtilization: 70 } },
      },
    ]);
    // Left to the HPA: a replicas field would reset its choice on every `pulumi up`.
    assert.equal(deploymentOf(run, "bookapi").replicas, undefined);
    findObject(run, "PodDisruptionBudget", "bookapi");
    await loadKubernetesSchemas();
    assert.deepEqual(objectsOf(run).flatMap(validateKubernetesObject), []);
  });

  it("lets the Cluster Autoscaler drain a node under a mesh pod: every emptyDir it mounts is listed as safe to evict", async () => {
    const annotation = "cluster-autoscaler.kubernetes.io/safe-to-evict-local-volumes";
    for (const stack of ["dev", "prod"] as const) {
      const run = await runStack(stack);
      for (const name of ["bookapi", "bookapi-mcp-server", "mesh-gateway"]) {
        const { template } = deploymentOf(run, name);
        const emptyDirs = (template.spec.volumes ?? [])
          .filter((v) => v.emptyDir)
          .map((v) => v.name);
        // The autoscaler keeps a node whose pods have an emptyDir not on this list.
        const listed = (template.metadata.annotations?.[annotation] ?? "")
          .split(",")
          .filter(Boolean);
        assert.deepEqual(
          emptyDirs.filter((v) => !listed.includes(v)),
          [],
          `${stack} ${name}`,
        );
      }
    }
    // A service's own list is kept beside tmp (its scratch volume is its call).
    const run = await runProgram(
      patched("prod", 0, {
        volumes: [{ name: "cache", mountPath: "/cache", emptyDir: {} }],
        podAnnotations: { [annotation]: "cache" },
      }),
    );
    assert.equal(
      deploymentOf(run, "bookapi").template.metadata.annotations?.[annotation],
      "tmp,cache",
    );
  });
});

describe("DNS egress", () => {
  type Egress = Array<{ to: Json[]; ports: Json[] }>;
  const dnsRule = (run: ProgramRun) =>
    (findObject(run, "NetworkPolicy", "bookapi-mesh").inputs.spec as { egress: Egress }).egress.at(
      -1,
    );

  it("allows kube-dns on UDP and TCP 53 by default", async () => {
    const rule = dnsRule(await runStack("dev"));
    assert.deepEqual(rule?.to, [
      {
        namespaceSelector: { matchLabels: { "kubernetes.io/metadata.name": "kube-system" } },
        podSelector: { matchLabels: { "k8s-app": "kube-dns" } },
      },
    ]);
    assert.deepEqual(rule?.ports, [
      { protocol: "UDP", port: 53 },
      { protocol: "TCP", port: 53 },
    ]);
  });

  it("allows a NodeLocal DNSCache address instead when network.dns names it", async () => {
    const run = await runProgram(
      patched(
        "dev",
        0,
        {},
        {
          network: { dns: { peers: [{ ipBlock: { cidr: "169.254.20.10/32" } }] } },
        },
      ),
    );
    assert.deepEqual(dnsRule(run)?.to, [{ ipBlock: { cidr: "169.254.20.10/32" } }]);
    await loadKubernetesSchemas();
    assert.deepEqual(objectsOf(run).flatMap(validateKubernetesObject), []);
  });
});

describe("app settings", () => {
  const settings: Json = {
    command: ["/app/server"],
    args: ["--listen", ":5288"],
    env: [
      { name: "LOG_FORMAT", value: "json" },
      { name: "DB_PASSWORD", valueFrom: { secretKeyRef: { name: "bookapi-db", key: "password" } } },
    ],
    envFrom: [{ configMapRef: { name: "bookapi-settings" } }],
    imagePullSecrets: ["team-registry"],
    probes: {
      readiness: { httpGet: { path: "/ready", port: "http" }, periodSeconds: 3 },
      liveness: { httpGet: { path: "/live", port: 5288 }, failureThreshold: 5 },
    },
    volumes: [
      { name: "cache", mountPath: "/var/cache/bookapi", emptyDir: { sizeLimit: "1Gi" } },
      {
        name: "db-ca",
        mountPath: "/etc/bookapi/db-ca",
        readOnly: true,
        secret: { secretName: "bookapi-db-ca" },
      },
    ],
    podLabels: { team: "books" },
    podAnnotations: { "example.com/owner": "books-team" },
    nodeSelector: { "kubernetes.io/os": "linux" },
    tolerations: [{ key: "dedicated", operator: "Equal", value: "books", effect: "NoSchedule" }],
  };
  let run: ProgramRun;
  before(async () => {
    run = await runProgram(patched("prod", 0, settings, { imagePullSecrets: ["mesh-registry"] }));
  });

  it("wires every setting into the app container and its pod, in Kubernetes' own shapes", () => {
    const { template } = deploymentOf(run, "bookapi");
    const app = template.spec.containers.find((c) => c.name === "app");
    assert.ok(app);
    assert.deepEqual(app.command, settings.command);
    assert.deepEqual(app.args, settings.args);
    assert.deepEqual(app.env, settings.env);
    assert.deepEqual(app.envFrom, settings.envFrom);
    assert.deepEqual(app.readinessProbe, {
      httpGet: { path: "/ready", port: "http" },
      periodSeconds: 3,
    });
    assert.deepEqual(app.livenessProbe, {
      httpGet: { path: "/live", port: 5288 },
      failureThreshold: 5,
    });
    assert.deepEqual(
      app.volumeMounts.map((m) => [m.name, m.mountPath]),
      [
        ["tmp", "/tmp"],
        ["cache", "/var/cache/bookapi"],
        ["db-ca", "/etc/bookapi/db-ca"],
      ],
    );
    assert.deepEqual(template.spec.imagePullSecrets, [
      { name: "mesh-registry" },
      { name: "team-registry" },
    ]);
    assert.deepEqual(template.spec.nodeSelector, settings.nodeSelector);
    assert.deepEqual(template.spec.tolerations, settings.tolerations);
    assert.equal(template.metadata.labels.team, "books");
    assert.equal(template.metadata.labels["app.kubernetes.io/name"], "bookapi");
    assert.equal(template.metadata.annotations["example.com/owner"], "books-team");
    assert.ok(template.spec.volumes.some((v) => v.name === "db-ca"));
  });

  it("keeps the sidecar out of the app's settings", () => {
    const { template } = deploymentOf(run, "bookapi");
    const envoy = template.spec.initContainers.find((c) => c.name === "envoy");
    assert.ok(envoy);
    assert.equal(envoy.env, undefined);
    assert.deepEqual(
      envoy.volumeMounts.map((m) => m.name),
      ["envoy-config", "envoy-certs"],
    );
  });

  it("produces objects that pass the Kubernetes schema and the cross-reference check", async () => {
    await loadKubernetesSchemas();
    const objects = objectsOf(run);
    assert.deepEqual(objects.flatMap(validateKubernetesObject), []);
    // Secrets and ConfigMaps the app names are the user's; the program's own must all resolve.
    const provided = providedObjects(loadMeshConfig(stackConfig("prod")));
    const problems = checkKubernetesReferences(objects, 29, provided).filter(
      (p) => !/"bookapi-db-ca" is not created/.test(p),
    );
    assert.deepEqual(problems, []);
  });

  it("keeps the default TCP readiness check when no probe is given", async () => {
    const app = deploymentOf(await runStack("prod"), "bookapi").template.spec.containers.find(
      (c) => c.name === "app",
    );
    assert.deepEqual(app?.readinessProbe, { tcpSocket: { port: "http" }, periodSeconds: 5 });
    assert.equal(app?.livenessProbe, undefined);
  });
});
