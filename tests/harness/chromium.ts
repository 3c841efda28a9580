/**
 * Headless Chromium (Debian's `chromium` package; CI installs it, `CHROMIUM` names another
 * binary): loads an HTML page, lets its scripts run, and returns the DOM they left.
 */
import { spawnSync } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { pathToFileURL } from "node:url";

/** The Chromium binary, or undefined when this machine has none. */
export function findChromium(): string | undefined {
  const candidates = [process.env.CHROMIUM, "chromium", "chromium-browser"].filter(
    (c): c is string => !!c,
  );
  return candidates.find((c) => spawnSync(c, ["--version"]).status === 0);
}

/** The DOM of `html` after its scripts ran, as `chromium --headless --dump-dom` prints it. */
export function domAfterScripts(binary: string, html: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "bookapi-mesh-chromium-"));
  try {
    const file = path.join(dir, "page.html");
    fs.writeFileSync(file, html);
    const run = spawnSync(
      binary,
      [
        "--headless",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-sandbox",
        `--user-data-dir=${path.join(dir, "profile")}`,
        "--virtual-time-budget=2000",
        "--dump-dom",
        pathToFileURL(file).href,
      ],
      { encoding: "utf8", timeout: 20_000 },
    );
    if (run.error) throw new Error(`chromium did not finish: ${run.error.message}`);
    if (run.status !== 0) throw new Error(`chromium failed (${String(run.status)}): ${run.stderr}`);
    return run.stdout;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
