/**
 * Writing the render's output folder without ever deleting what the render did not write.
 *
 * The render leaves a marker file listing every file it wrote. It writes into a folder that is
 * new, empty, or carries its marker; on a re-render it deletes exactly the files the marker lists
 * (and the folders that leaves empty), then writes. A non-empty folder without the marker (`.`,
 * the project, a folder of your own) is refused, and so is the project folder or any folder
 * above it even with a marker. A file of yours in a render folder survives re-renders, and the
 * render refuses to overwrite one that has the name of a file it wants to write. It never follows
 * a symbolic link inside the folder: a marker, a listed file or a folder on the way to either
 * that is a link (or a listed entry that is a folder) stops the render before it deletes anything.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { PROJECT_ROOT } from "./engine";
import { OutputFile, RenderError } from "./render";

/** The marker file's name, at the top of every render folder. */
export const MARKER = ".bookapi-mesh-render";

const MARKER_HEADER = [
  "# bookapi-mesh render folder: `npm run render` wrote the files listed below. Rendering into",
  "# this folder again deletes exactly these files (and folders left empty), nothing else.",
];

const isInside = (parent: string, child: string) => {
  const rel = path.relative(parent, child);
  return rel === "" || (!rel.startsWith("..") && !path.isAbsolute(rel));
};

/**
 * Checks that `rel` inside `dir` can be deleted or written without following a link: every folder
 * on the way exists as a real folder (or not at all) and the entry itself is a regular file (or
 * absent). fs calls follow links, so a planted link would send a delete or a write elsewhere.
 */
function checkPlainPath(dir: string, rel: string): void {
  const parts = rel.split(/[\\/]/).filter((p) => p !== "" && p !== ".");
  let at = dir;
  for (const [i, part] of parts.entries()) {
    at = path.join(at, part);
    let info: fs.Stats;
    try {
      info = fs.lstatSync(at);
    } catch {
      return; // absent from here on: nothing to follow
    }
    const last = i === parts.length - 1;
    if (info.isSymbolicLink() || (last ? !info.isFile() : !info.isDirectory())) {
      throw new RenderError(
        `refusing to touch ${at}: it is ${info.isSymbolicLink() ? "a symbolic link" : last ? "not a regular file" : "not a folder"}, which the render never writes; nothing was deleted (remove the folder yourself if it is yours)`,
      );
    }
  }
}

/** The files a marker lists; refuses a marker that names anything outside its folder. */
function markedFiles(dir: string): string[] {
  checkPlainPath(dir, MARKER);
  const text = fs.readFileSync(path.join(dir, MARKER), "utf8");
  const files = text
    .split("\n")
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"));
  for (const file of files) {
    const abs = path.resolve(dir, file);
    if (path.isAbsolute(file) || abs === dir || !isInside(dir, abs) || file === MARKER) {
      throw new RenderError(
        `${path.join(dir, MARKER)} lists "${file}", which is not a file inside the folder: refusing to delete anything (remove the folder yourself if it is yours)`,
      );
    }
    checkPlainPath(dir, file);
  }
  return files;
}

/**
 * Checks that `dir` may receive a render; returns the files a previous render left there (to be
 * deleted before writing), or none for a new or empty folder. Throws a RenderError otherwise.
 */
export function checkOutputFolder(dir: string): string[] {
  const abs = path.resolve(dir);
  // Compared as real paths too, so a link to the project (or above it) is refused as well.
  const real = fs.existsSync(abs) ? fs.realpathSync(abs) : abs;
  if (isInside(abs, PROJECT_ROOT) || isInside(real, fs.realpathSync(PROJECT_ROOT))) {
    throw new RenderError(
      `refusing to render into ${abs}: it is the project folder or contains it. Name a folder of its own (default out/<stack>)`,
    );
  }
  if (!fs.existsSync(abs)) return [];
  if (!fs.statSync(abs).isDirectory())
    throw new RenderError(`refusing to render into ${abs}: it is not a folder`);
  const entries = fs.readdirSync(abs);
  if (entries.length === 0) return [];
  if (!entries.includes(MARKER)) {
    throw new RenderError(
      `refusing to render into ${abs}: it is not empty and has no ${MARKER} marker, so the render did not write it and will not delete anything there. Name a new or empty folder (default out/<stack>)`,
    );
  }
  return markedFiles(abs);
}

/** Removes the empty folders between `file`'s folder and `dir` (exclusive). */
function pruneEmptyFolders(dir: string, file: string): void {
  for (let d = path.dirname(file); d !== dir && isInside(dir, d); d = path.dirname(d)) {
    try {
      fs.rmdirSync(d); // only ever removes an empty folder
    } catch {
      return;
    }
  }
}

/**
 * Writes a render into `dir` (see the rules above). The marker is written before the files, so
 * an interrupted render still leaves a folder the next one may clean.
 */
export function writeOutput(dir: string, stack: string, files: OutputFile[]): void {
  const abs = path.resolve(dir);
  const previous = checkOutputFolder(abs);
  for (const rel of previous) {
    const file = path.join(abs, rel);
    fs.rmSync(file, { force: true }); // a file (never recursive); gone already is fine
    pruneEmptyFolders(abs, file);
  }
  for (const f of files) checkPlainPath(abs, f.path);
  const clash = files.find((f) => fs.existsSync(path.join(abs, f.path)));
  if (clash) {
    throw new RenderError(
      `refusing to overwrite ${path.join(abs, clash.path)}: the render did not write it (it is not in ${MARKER}). Move it away and render again`,
    );
  }
  fs.mkdirSync(abs, { recursive: true });
  // Replaced, never written through: checkOutputFolder has made sure it is a regular file.
  fs.rmSync(path.join(abs, MARKER), { force: true });
  fs.writeFileSync(
    path.join(abs, MARKER),
    [...MARKER_HEADER, `# stack: ${stack}`, ...files.map((f) => f.path), ""].join("\n"),
    { flag: "wx" },
  );
  for (const f of files) {
    const file = path.join(abs, f.path);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    // "wx": never through an existing file or link; private keys readable by the owner only.
    fs.writeFileSync(file, f.content, { flag: "wx", mode: f.secret ? 0o600 : 0o644 });
  }
}
