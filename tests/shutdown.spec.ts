/**
 * Rollouts drop no request: the generated pods, stopped by a model of the kubelet
 * (harness/termination-model.ts), and Envoy's stop script, run for real in bash against local
 * stand-ins for Envoy's admin API and the app.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import * as fs from "node:fs";
import * as http from "node:http";
import * as net from "node:net";
import { AddressInfo } from "node:net";
import * as os from "node:os";
import * as path from "node:path";
import { loadMeshConfig, MeshConfigError } from "../components/config";
import { DRAIN_PATH, EnvoyStopPlan, envoyStopScript, shutdownPlan } from "../components/shutdown";
import { podTemplate } from "../components/workload";
import { gatewayPodTemplate, gatewayShutdown } from "../components/gateway";
import {
  builtServices,
  findObject,
  ProgramRun,
  runProgram,
  STACKS,
  stackConfig,
} from "./harness/program";
import { Assumptions, ModelPod, terminate, terminationProblems } from "./harness/termination-model";

type Config = Record<string, string>;

/** A builder's output as plain JSON, the way the engine would send it. */
const plain = <T>(value: unknown): T => JSON.parse(JSON.stringify(value)) as T;

function podOf(run: ProgramRun, service: string): ModelPod {
  return (findObject(run, "Deployment", service).inputs.spec as { template: { spec: ModelPod } })
    .template.spec;
}

function plansOf(config: Config): EnvoyStopPlan[] {
  const model = loadMeshConfig(config);
  return model.services.map((svc) => shutdownPlan(svc, model.envoy).envoy);
}

/**
 * Endpoint propagation of up to 5 s (kube-proxy's sync period is 1 s at minimum; 5 s leaves room
 * for a loaded control plane), and apps that stop at once, slowly, or use all the time the grace
 * period leaves them after the preStop sleep and Envoy's 2 s.
 */
function assumptionsFor(pod: ModelPod, preStopSeconds: number): Assumptions[] {
  const budget = (pod.terminationGracePeriodSeconds ?? 30) - preStopSeconds - 2;
  return [1, 3, 5].flatMap((endpointRemovalSeconds) =>
    [0, 5, budget].map((appStopSeconds) => ({
      endpointRemovalSeconds,
      appStopSeconds,
      appImageHasSleep: true,
    })),
  );
}

describe("pod termination (a model of the kubelet over the generated pods)", () => {
  const variants: Array<[string, Config]> = STACKS.flatMap((stack) =>
    (["native", "container"] as const).flatMap((mode) =>
      ["1.29", "1.30"].map((version): [string, Config] => {
        const base = stackConfig(stack);
        const envoy = JSON.parse(base["bookapi-mesh:envoy"] ?? "{}") as Record<string, unknown>;
        return [
          `${stack}, ${mode} sidecar, Kubernetes ${version}`,
          {
            ...base,
            "bookapi-mesh:kubernetesVersion": version,
            "bookapi-mesh:envoy": JSON.stringify({ ...envoy, sidecarMode: mode }),
          },
        ];
      }),
    ),
  );

  for (const [label, config] of variants) {
    it(`drops no request while a pod stops (${label})`, () => {
      const model = loadMeshConfig(config);
      for (const svc of builtServices(model)) {
        // The pure builder the Deployment is made from (the program tests check that it is).
        const pod = plain<ModelPod>(
          podTemplate(svc, model.envoy, { configMapName: "cm" }, model.kubernetesMinor).spec,
        );
        for (const assume of assumptionsFor(pod, svc.preStopSeconds)) {
          const timeline = terminate(pod, plansOf(config), assume);
          assert.deepEqual(
            terminationProblems(timeline, assume),
            [],
            `${svc.name} with ${JSON.stringify(assume)}: ${JSON.stringify(timeline)}`,
          );
        }
      }
    });
  }

  it("keeps a stopping gateway pod serving until a load balancer that takes up to preStopSeconds has taken it out, with no SIGKILL", () => {
    for (const stack of STACKS) {
      const model = loadMeshConfig(stackConfig(stack));
      const gw = model.gateway;
      assert.ok(gw, stack);
      const pod = plain<ModelPod>(
        gatewayPodTemplate(gw, model.envoy, { configMapName: "cm" }, []).spec,
      );
      const plans = [gatewayShutdown(gw, model.envoy).envoy];
      for (const endpointRemovalSeconds of [1, 10, 20, gw.preStopSeconds]) {
        const assume = { endpointRemovalSeconds, appStopSeconds: 0 };
        const timeline = terminate(pod, plans, assume);
        assert.deepEqual(
          terminationProblems(timeline, assume),
          [],
          `${stack} ${JSON.stringify(timeline)}`,
        );
        assert.deepEqual(timeline.killed, []);
      }
      // A load balancer slower than preStopSeconds still sends to a gateway that has stopped.
      const slow = { endpointRemovalSeconds: gw.preStopSeconds + 10, appStopSeconds: 0 };
      assert.notDeepEqual(terminationProblems(terminate(pod, plans, slow), slow), []);
    }
  });

  it("models the prod Deployment the program registers as the builder makes it", async () => {
    const config = stackConfig("prod");
    const run = await runProgram(config);
    const model = loadMeshConfig(config);
    for (const svc of builtServices(model)) {
      const built = plain<ModelPod>(
        podTemplate(svc, model.envoy, { configMapName: "cm" }, model.kubernetesMinor).spec,
      );
      const registered = podOf(run, svc.name);
      assert.deepEqual(
        [
          registered.terminationGracePeriodSeconds,
          registered.initContainers,
          registered.containers,
        ],
        [built.terminationGracePeriodSeconds, built.initContainers, built.containers],
      );
    }
  });

  it("finds the failures of a pod whose app stops at once and whose Envoy only sleeps, as before", () => {
    // The pod as the program generated it before: no app preStop, Envoy `sleep 15`, grace 25.
    const before: ModelPod = {
      terminationGracePeriodSeconds: 25,
      initContainers: [
        {
          name: "envoy",
          restartPolicy: "Always",
          lifecycle: { preStop: { exec: { command: ["sleep", "15"] } } },
        },
      ],
      containers: [{ name: "app" }],
    };
    const assume = { endpointRemovalSeconds: 3, appStopSeconds: 2 };
    const problems = terminationProblems(terminate(before, [], assume), assume);
    assert.ok(
      problems.some((p) => p.includes("the app stops accepting at 0s")),
      problems.join("\n"),
    );
    assert.ok(problems.some((p) => p.includes("never tells callers to reconnect")));
    // In container mode Envoy also left before a slow app had finished.
    const containerMode: ModelPod = {
      ...before,
      initContainers: [],
      containers: [{ name: "app" }, { ...before.initContainers![0], restartPolicy: undefined }],
    };
    const slow = { endpointRemovalSeconds: 3, appStopSeconds: 20 };
    assert.ok(
      terminationProblems(terminate(containerMode, [], slow), slow).some((p) =>
        p.includes("its responses are cut"),
      ),
    );
  });

  it("reports a SIGKILL when the app needs longer than the grace period leaves it", async () => {
    const config = stackConfig("prod");
    const run = await runProgram(config);
    const pod = podOf(run, "bookapi");
    const assume = { endpointRemovalSeconds: 1, appStopSeconds: 60 };
    const problems = terminationProblems(terminate(pod, plansOf(config), assume), assume);
    assert.ok(
      problems.some((p) => p.includes("SIGKILLed")),
      problems.join("\n"),
    );
  });

  it("shows that on 1.29 an app image without `sleep` loses the delay, which preview warns about", () => {
    const config = { ...stackConfig("prod"), "bookapi-mesh:kubernetesVersion": "1.29" };
    const model = loadMeshConfig(config);
    const [svc] = builtServices(model);
    const pod = plain<ModelPod>(
      podTemplate(svc, model.envoy, { configMapName: "cm" }, model.kubernetesMinor).spec,
    );
    const assume = { endpointRemovalSeconds: 3, appStopSeconds: 1, appImageHasSleep: false };
    const problems = terminationProblems(terminate(pod, plansOf(config), assume), assume);
    assert.ok(
      problems.some((p) => p.includes("the app stops accepting at 0s")),
      problems.join("\n"),
    );
  });

  it("shows why a plain-container Envoy is held to the end of the grace period: held only for the drain, it leaves before a slow app", () => {
    const prod = stackConfig("prod");
    const prodEnvoy = JSON.parse(prod["bookapi-mesh:envoy"]) as Record<string, unknown>;
    const config = {
      ...prod,
      "bookapi-mesh:envoy": JSON.stringify({ ...prodEnvoy, sidecarMode: "container" }),
    };
    const model = loadMeshConfig(config);
    const [svc] = builtServices(model);
    const plan = { ...shutdownPlan(svc, model.envoy).envoy };
    plan.holdSeconds = plan.drainSeconds;
    const pod = plain<ModelPod>(
      podTemplate(svc, model.envoy, { configMapName: "cm" }, model.kubernetesMinor).spec,
    );
    const envoy = pod.containers.find((c) => c.name === "envoy");
    assert.ok(envoy?.lifecycle?.preStop?.exec);
    envoy.lifecycle.preStop.exec.command[2] = envoyStopScript(plan);
    const assume = { endpointRemovalSeconds: 3, appStopSeconds: 10 };
    const problems = terminationProblems(terminate(pod, [plan], assume), assume);
    assert.ok(
      problems.some((p) => p.includes("its responses are cut")),
      problems.join("\n"),
    );
  });

  it("refuses to model a preStop hook it does not know", () => {
    const pod: ModelPod = {
      containers: [
        { name: "app" },
        { name: "envoy", lifecycle: { preStop: { exec: { command: ["/bin/sh", "-c", "x"] } } } },
      ],
    };
    assert.throws(
      () => terminate(pod, [], { endpointRemovalSeconds: 1, appStopSeconds: 1 }),
      /does not know the preStop hook/,
    );
  });
});

describe("the app's preStop delay", () => {
  async function appHook(version: string) {
    const run = await runProgram({
      ...stackConfig("dev"),
      "bookapi-mesh:kubernetesVersion": version,
    });
    const app = podOf(run, "bookapi").containers.find((c) => c.name === "app");
    return app?.lifecycle?.preStop;
  }

  it("uses the kubelet's sleep action from Kubernetes 1.30, needing nothing in the app's image", async () => {
    assert.deepEqual(await appHook("1.30"), { sleep: { seconds: 10 } });
  });

  it("falls back to running sleep in the app's image on 1.29, where the sleep action is off", async () => {
    assert.deepEqual(await appHook("1.29"), { exec: { command: ["sleep", "10"] } });
  });

  it("warns at preview that the fallback needs `sleep` in every app image, and only below 1.30", async () => {
    const warnings: string[] = [];
    for (const version of ["1.29", "1.30"])
      warnings.push(
        ...(await runProgram({ ...stackConfig("prod"), "bookapi-mesh:kubernetesVersion": version }))
          .warnings,
      );
    assert.deepEqual(
      warnings.filter((w) => w.includes("preStop delay")).map((w) => w.slice(0, 27)),
      ['kubernetesVersion "1.29": e'],
    );
  });

  const invalid: Array<[string, Record<string, unknown>, string]> = [
    [
      "a preStop delay shorter than Envoy's drain",
      { preStopSeconds: 3 },
      "bookapi-mesh:services[0].preStopSeconds: must be at least envoy.drainSeconds (5)",
    ],
    [
      "a grace period that leaves the app no time after its SIGTERM",
      { preStopSeconds: 10, terminationGracePeriodSeconds: 12 },
      "bookapi-mesh:services[0].terminationGracePeriodSeconds: must be at least preStopSeconds + 5 (15)",
    ],
  ];
  for (const [what, fields, message] of invalid) {
    it(`refuses ${what}, naming the key`, () => {
      const config = stackConfig("dev");
      const services = JSON.parse(config["bookapi-mesh:services"]) as Record<string, unknown>[];
      services[0] = { ...services[0], ...fields };
      assert.throws(
        () => loadMeshConfig({ ...config, "bookapi-mesh:services": JSON.stringify(services) }),
        (err: unknown) =>
          err instanceof MeshConfigError && err.problems.some((p) => p.startsWith(message)),
      );
    });
  }
});

describe("Envoy's stop script, run in bash", () => {
  const listen = (server: net.Server) =>
    new Promise<number>((resolve) =>
      server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port)),
    );
  const close = (server: net.Server) =>
    new Promise<void>((resolve) => server.close(() => resolve()));

  /**
   * Runs the script with a stand-in `sleep` first on PATH that appends `sleep <args>` to `log`
   * and returns at once: what the script waits for is read from the log, not from a clock, so
   * the test does not depend on the machine's speed.
   */
  function run(script: string, log: string): Promise<{ code: number; stderr: string }> {
    const bin = fs.mkdtempSync(path.join(os.tmpdir(), "stop-script-"));
    fs.writeFileSync(path.join(bin, "sleep"), `#!/bin/sh\necho "sleep $*" >> "${log}"\n`, {
      mode: 0o755,
    });
    const child = spawn("bash", ["-c", script], {
      stdio: ["ignore", "ignore", "pipe"],
      env: { ...process.env, PATH: `${bin}:${process.env.PATH ?? ""}` },
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    return new Promise((resolve) =>
      child.on("exit", (code) => {
        fs.rmSync(bin, { recursive: true, force: true });
        resolve({ code: code ?? -1, stderr });
      }),
    );
  }
  const scratchLog = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), "stop-log-")), "log");
  const lines = (log: string) => fs.readFileSync(log, "utf8").trim().split("\n");

  it("POSTs the graceful inbound drain to the admin API, then holds Envoy for holdSeconds", async () => {
    const log = scratchLog();
    // A stand-in for Envoy's admin API, which answers a mutating GET with 405.
    const admin = http.createServer((req, res) => {
      fs.appendFileSync(log, `${req.method} ${req.url}\n`);
      res.statusCode = req.method === "POST" ? 200 : 405;
      res.end("OK\n");
    });
    const adminPort = await listen(admin);
    try {
      const { code, stderr } = await run(
        envoyStopScript({ adminPort, drainSeconds: 1, holdSeconds: 2 }),
        log,
      );
      assert.equal(code, 0, stderr);
      // The drain request is answered before the hold starts, and the hold is holdSeconds.
      assert.deepEqual(lines(log), [`POST ${DRAIN_PATH}`, "sleep 2"]);
    } finally {
      await close(admin);
    }
  });

  it("still holds Envoy when the admin API cannot be reached", async () => {
    const log = scratchLog();
    const unused = net.createServer();
    const adminPort = await listen(unused);
    await close(unused);
    const { code } = await run(
      envoyStopScript({ adminPort, drainSeconds: 1, holdSeconds: 1 }),
      log,
    );
    assert.equal(code, 0);
    assert.deepEqual(lines(log), ["sleep 1"]);
  });

  it("holds a native sidecar for the drain time and a plain container until 2 s before the grace period ends", () => {
    const model = loadMeshConfig(stackConfig("prod"));
    const svc = model.services[0];
    assert.equal(shutdownPlan(svc, { ...model.envoy, sidecarMode: "native" }).envoy.holdSeconds, 5);
    assert.equal(
      shutdownPlan(svc, { ...model.envoy, sidecarMode: "container" }).envoy.holdSeconds,
      svc.terminationGracePeriodSeconds - 2,
    );
  });
});
