/**
 * `npm run render:golden`: refreshes the golden renders under tests/golden/<stack>/ (private keys
 * redacted) and the offline injector's output, tests/golden/inject/. tests/render.spec.ts and
 * tests/inject.spec.ts produce the same again and compare byte for byte, so any change to what
 * the program deploys shows up in review as a diff of these files. Run it after a deliberate
 * change and commit the result with the change.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { main as inject } from "../inject/cli";
import { PROJECT_ROOT } from "./engine";
import { writeOutput } from "./output";
import { renderFiles, resolveStack, runStack } from "./render";

/** The stacks kept as goldens. */
export const GOLDEN_STACKS = ["dev", "prod"] as const;

export const goldenFolder = (stack: string): string =>
  path.join(PROJECT_ROOT, "tests", "golden", stack);

/** The offline injector's golden case: a stack adopting a chart, the chart, and the result. */
export const INJECT_GOLDEN = {
  stack: path.join(PROJECT_ROOT, "tests", "fixtures", "inject", "Pulumi.adopted.yaml"),
  input: path.join(PROJECT_ROOT, "tests", "fixtures", "inject", "podinfo.yaml"),
  output: path.join(PROJECT_ROOT, "tests", "golden", "inject", "podinfo.yaml"),
};

async function main(): Promise<void> {
  for (const stack of GOLDEN_STACKS) {
    const files = renderFiles(await runStack(resolveStack(stack)), { includeSecrets: false });
    writeOutput(goldenFolder(stack), stack, files);
    console.log(`refreshed ${path.relative(PROJECT_ROOT, goldenFolder(stack))}`);
  }
  const { manifests } = inject([INJECT_GOLDEN.stack, INJECT_GOLDEN.input], () => "", PROJECT_ROOT);
  fs.mkdirSync(path.dirname(INJECT_GOLDEN.output), { recursive: true });
  fs.writeFileSync(INJECT_GOLDEN.output, manifests);
  console.log(`refreshed ${path.relative(PROJECT_ROOT, INJECT_GOLDEN.output)}`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? `render:golden: ${err.message}` : err);
    process.exit(1);
  });
}
