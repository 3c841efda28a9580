/**
 * `npm run render:golden`: refreshes the golden renders under tests/golden/<stack>/ (private keys
 * redacted). tests/render.spec.ts renders the same stacks into a temp folder and compares byte for
 * byte, so any change to what the program deploys shows up in review as a diff of these files.
 * Run it after a deliberate change and commit the result with the change.
 */
import * as path from "node:path";
import { PROJECT_ROOT } from "./engine";
import { writeOutput } from "./output";
import { renderFiles, resolveStack, runStack } from "./render";

/** The stacks kept as goldens. */
export const GOLDEN_STACKS = ["dev", "prod"] as const;

export const goldenFolder = (stack: string): string =>
  path.join(PROJECT_ROOT, "tests", "golden", stack);

async function main(): Promise<void> {
  for (const stack of GOLDEN_STACKS) {
    const files = renderFiles(await runStack(resolveStack(stack)), { includeSecrets: false });
    writeOutput(goldenFolder(stack), stack, files);
    console.log(`refreshed ${path.relative(PROJECT_ROOT, goldenFolder(stack))}`);
  }
}

if (require.main === module) {
  main().catch((err: unknown) => {
    console.error(err instanceof Error ? `render:golden: ${err.message}` : err);
    process.exit(1);
  });
}
