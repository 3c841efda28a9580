/**
 * In which order the services' Deployments roll out: a caller after the services it calls.
 *
 * A new `calls` edge changes both ends: the callee's allow-list (SAN match, RBAC) and the
 * caller's outbound routes. Rolled in parallel, new caller pods could call callee pods that do
 * not admit them yet. Pulumi runs a resource's step only after the steps of what it depends on
 * (dependsOn), and pulumi-kubernetes reports a Deployment updated only once its rollout is
 * complete, so a caller's Deployment that depends on its callees' starts rolling when every
 * callee pod carries the new allow-list.
 *
 * A cycle in the call graph cannot be ordered that way (dependsOn must be acyclic): edges
 * inside a strongly connected component are left unordered and preview says so; such an edge is
 * added in two steps (docs/operations.md).
 */

/** The call graph's rollout order. */
export interface RolloutOrder {
  /** Every service, each after the services it waits for. */
  order: string[];
  /** Per service, the callees whose rollout it waits for (edges outside cycles). */
  waitsFor: Map<string, string[]>;
  /** Groups of services that call each other in a cycle, each sorted, largest first. */
  cycles: string[][];
}

/**
 * Tarjan's strongly connected components, in reverse topological order (callees first). Written
 * without recursion: a generated mesh of thousands of services is a deep graph.
 */
function components(nodes: string[], edges: Map<string, string[]>): string[][] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const onStack = new Set<string>();
  const stack: string[] = [];
  const found: string[][] = [];
  for (const root of nodes) {
    if (index.has(root)) continue;
    // Each frame: a node and how many of its edges have been followed.
    const frames: { v: string; next: number }[] = [{ v: root, next: 0 }];
    index.set(root, index.size);
    low.set(root, index.get(root) as number);
    stack.push(root);
    onStack.add(root);
    while (frames.length > 0) {
      const frame = frames[frames.length - 1];
      const out = edges.get(frame.v) ?? [];
      if (frame.next < out.length) {
        const w = out[frame.next++];
        if (!index.has(w)) {
          index.set(w, index.size);
          low.set(w, index.get(w) as number);
          stack.push(w);
          onStack.add(w);
          frames.push({ v: w, next: 0 });
        } else if (onStack.has(w)) {
          low.set(frame.v, Math.min(low.get(frame.v) as number, index.get(w) as number));
        }
        continue;
      }
      frames.pop();
      const parent = frames[frames.length - 1];
      if (parent)
        low.set(parent.v, Math.min(low.get(parent.v) as number, low.get(frame.v) as number));
      if (low.get(frame.v) === index.get(frame.v)) {
        const component: string[] = [];
        let w: string;
        do {
          w = stack.pop() as string;
          onStack.delete(w);
          component.push(w);
        } while (w !== frame.v);
        found.push(component.sort());
      }
    }
  }
  return found;
}

/** The order of a call graph given as service -> the services it calls. */
export function rolloutOrder(calls: Map<string, string[]>): RolloutOrder {
  const nodes = [...calls.keys()].sort();
  const groups = components(nodes, calls);
  const groupOf = new Map<string, number>();
  groups.forEach((group, i) => group.forEach((name) => groupOf.set(name, i)));
  const waitsFor = new Map(
    nodes.map((name) => [
      name,
      (calls.get(name) ?? []).filter((callee) => groupOf.get(callee) !== groupOf.get(name)),
    ]),
  );
  return {
    order: groups.flat(),
    waitsFor,
    cycles: groups
      .filter((group) => group.length > 1)
      .sort((a, b) => b.length - a.length || (a[0] < b[0] ? -1 : 1)),
  };
}
