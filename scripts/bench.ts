/**
 * `npm run bench`: how the program scales with the number of services.
 *
 * For generated topologies of N services, each calling up to 3 others, runs the whole program
 * through the render's engine shim (tools/render/engine.ts, with the throwaway tls stand-in) and
 * prints the evaluation time, the resource count, and the Envoy
 * bootstrap size per proxy (median and max), beside the size a full-mesh config (every proxy
 * knowing every service) would have at the same N.
 */
import { parseMeshConfig } from "../components/config";
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

async function main(): Promise<void> {
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
      // 1.30: no preview warning about the exec preStop fallback in the timings' output.
      config: {
        "bookapi-mesh:services": JSON.stringify(services),
        "bookapi-mesh:kubernetesVersion": "1.30",
      },
      standIns: throwawayTls(stack),
    });
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
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
  const widths = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  const line = (r: string[]) => `| ${r.map((cell, c) => cell.padStart(widths[c])).join(" | ")} |`;
  console.log(line(rows[0]));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const r of rows.slice(1)) console.log(line(r));
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
