/**
 * The one JSON walker of the test suite: follow a path strictly, or list every key of a tree.
 */
import assert from "node:assert/strict";

export interface Json {
  [key: string]: unknown;
}

/** Follows a path of keys/indices, failing loudly if any step is missing. */
export function at(value: unknown, ...steps: Array<string | number>): Json {
  let cur: unknown = value;
  for (const step of steps) {
    assert.ok(
      cur !== null && typeof cur === "object",
      `missing ${steps.join(".")} at ${String(step)}`,
    );
    cur = (cur as Record<string | number, unknown>)[step];
  }
  assert.ok(cur !== undefined, `missing ${steps.join(".")}`);
  return cur as Json;
}

/** Every (key, value) pair in a JSON tree, with its path for messages and its parent object. */
export function entries(
  value: unknown,
  root = "$",
): { at: string; key: string; value: unknown; parent: object }[] {
  const out: { at: string; key: string; value: unknown; parent: object }[] = [];
  const visit = (node: unknown, path: string): void => {
    if (Array.isArray(node)) node.forEach((x, i) => visit(x, `${path}[${i}]`));
    else if (typeof node === "object" && node !== null) {
      for (const [key, child] of Object.entries(node)) {
        out.push({ at: `${path}.${key}`, key, value: child, parent: node });
        visit(child, `${path}.${key}`);
      }
    }
  };
  visit(value, root);
  return out;
}
