/**
 * `npm run bench`: how the program scales with the number of services.
 *
 * For generated topologies of N services, each calling up to 3 others, runs the whole program
 * through the render's engine shim (tools/render/engine.ts, with the throwaway tls stand-in) and
 * prints the evaluation time, the resource count, and the Envoy
 * bootstrap size per proxy (median and max), beside the size a full-mesh config (every proxy
 * knowing every service) would have at the same N. Then the program's own compute without the
 * engine (parsing and validating the config, building every sidecar's Envoy files) at 1,000 and
 * 5,000 services, and how much it grows between them.
 */
import { loadMeshConfig, parseMeshConfig } from "../components/config";
import { buildEnvoyFiles } from "../components/envoy";
import { ENVOY_FILES } from "../components/envoy/model";
import { trafficSpec } from "../components/envoy-units";
import { sidecarSpec } from "../components/mesh";
import { runProgram } from "../tools/render/engine";
import { throwawayTls } from "../tools/render/throwaway-tls";

/** Service i calls i+1, i+7 and i+31 (mod N): a sparse graph with cycles and fan-in. */
export function generatedServices(n: number): Array<Record<string, unknown>> {
  return Array.from({ length: n }, (_, i) => {
    const calls = [...new Set([1, 7, 31].map((step) => (i + step) % n))]
      .filter((j) => j !== i)
      .slice(0, 3);
    return {
      name: `svc-${i}`,
      image: `registry.example.com/svc-${i}:1.0.0`,
      port: 8080,
      calls: calls.map((j) => `svc-${j}`),
    };
  });
}

/** The stack config of generated services, as Pulumi hands it to the program. */
function stackConfig(services: Array<Record<string, unknown>>): Record<string, string> {
  return {
    "bookapi-mesh:services": JSON.stringify(services),
    // 1.30: no preview warning about the exec preStop fallback in the timings' output.
    "bookapi-mesh:kubernetesVersion": "1.30",
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

/** Bootstrap size of a proxy that knows every other service as caller and upstream. */
function fullMeshBootstrapSize(services: Array<Record<string, unknown>>): number {
  const model = parseMeshConfig({ services });
  const [first] = model.services;
  const others = model.services
    .filter((s) => s !== first)
    .map((s) => ({
      name: s.name,
      fqdn: s.fqdn,
      spiffeId: s.spiffeId,
      podsFqdn: s.podsFqdn,
      traffic: trafficSpec(s.traffic),
    }));
  const spec = { ...sidecarSpec(model, first), callers: others, upstreams: others };
  return Buffer.byteLength(buildEnvoyFiles(spec)[ENVOY_FILES.bootstrap]);
}

/** Prints rows as a Markdown table, the first row as its header. */
function printTable(rows: string[][]): void {
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const line = (r: string[]) => `| ${r.map((cell, c) => cell.padStart(widths[c])).join(" | ")} |`;
  console.log(line(rows[0]));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const r of rows.slice(1)) console.log(line(r));
}

/** Seconds since `started` (a process.hrtime.bigint() reading). */
function secondsSince(started: bigint): number {
  return Number(process.hrtime.bigint() - started) / 1e9;
}

interface Compute {
  parse: number;
  builders: number;
  total: number;
}

/**
 * The program's compute at each N, without the engine: the stack config parsed and validated as
 * the program reads it, then every sidecar's Envoy files built. Per N, the run of median total
 * among `rounds`, after a warm-up run (the JIT). The sizes take turns, so a change in the
 * machine's load falls on both, and a short pause follows each run, for the collector to catch up
 * with its garbage before the next.
 */
async function programCompute(sizes: number[], rounds: number): Promise<Compute[]> {
  const configs = sizes.map((n) => stackConfig(generatedServices(n)));
  const once = async (config: Record<string, string>): Promise<Compute> => {
    const started = process.hrtime.bigint();
    const model = loadMeshConfig(config);
    const parse = secondsSince(started);
    const built = process.hrtime.bigint();
    for (const svc of model.services) buildEnvoyFiles(sidecarSpec(model, svc));
    const builders = secondsSince(built);
    await new Promise((resolve) => setTimeout(resolve, 20));
    return { parse, builders, total: parse + builders };
  };
  const runs: Compute[][] = sizes.map(() => []);
  for (let round = -1; round < rounds; round++)
    for (const [i, config] of configs.entries()) {
      const run = await once(config);
      if (round >= 0) runs[i].push(run);
    }
  return runs.map((r) => r.sort((a, b) => a.total - b.total)[Math.floor(r.length / 2)]);
}

/** compute(5,000) / compute(1,000) at or below this: linear (5) with some slack for noise. */
const MAX_COMPUTE_RATIO = 5.5;

async function main(): Promise<void> {
  // Measured first, printed after the table: the engine runs leave the process a heap of some
  // hundred MB, which the collector would then walk during the compute's runs.
  const [small, large] = [1000, 5000];
  const rounds = 7;
  const compute = await programCompute([small, large], rounds);
  const rows: string[][] = [
    [
      "N",
      "eval (s)",
      "resources",
      "bootstrap median (B)",
      "bootstrap max (B)",
      "full-mesh bootstrap (B)",
    ],
  ];
  for (const n of [2, 10, 50, 200]) {
    const services = generatedServices(n);
    const started = process.hrtime.bigint();
    const stack = `bench-${n}`;
    const run = await runProgram({
      stack,
      config: stackConfig(services),
      standIns: throwawayTls(stack),
    });
    const seconds = secondsSince(started);
    // Envoy ConfigMaps only (not the stack's claim).
    const sizes = run.resources
      .filter((r) => r.type === "kubernetes:core/v1:ConfigMap")
      .flatMap(
        (r) => (r.inputs.data as Record<string, string | undefined>)[ENVOY_FILES.bootstrap] ?? [],
      )
      .map((bootstrap) => Buffer.byteLength(bootstrap));
    rows.push([
      String(n),
      seconds.toFixed(2),
      String(run.resources.length),
      String(median(sizes)),
      String(Math.max(...sizes)),
      String(fullMeshBootstrapSize(services)),
    ]);
  }
  printTable(rows);

  console.log(`\nProgram compute without the engine (median of ${rounds} runs after a warm-up):`);
  printTable([
    ["N", "parse + validate (s)", "Envoy builders (s)", "compute (s)"],
    ...compute.map((c, i) => [
      String([small, large][i]),
      c.parse.toFixed(3),
      c.builders.toFixed(3),
      c.total.toFixed(3),
    ]),
  ]);
  const ratio = compute[1].total / compute[0].total;
  console.log(
    `compute(${large}) / compute(${small}): ${ratio.toFixed(2)} (linear: ${large / small}; at most ${MAX_COMPUTE_RATIO})${ratio > MAX_COMPUTE_RATIO ? " ABOVE THE BOUND: some step grows faster than the mesh" : ""}`,
  );
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
