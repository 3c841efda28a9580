/**
 * Offline injection (docs/injection.md): Kubernetes YAML in, the same YAML out with the mesh added
 * to the pod templates of the workloads the stack's adopted services name, like `linkerd inject
 * --manual`. The functions are the ones the Pulumi transform uses (components/injector.ts), so a
 * workload comes out as `pulumi up` with the transform would deploy it.
 */
import { Document, parseAllDocuments } from "yaml";
import { AdoptedWorkload, injectWorkload, WorkloadObject } from "../../components/injector";
import { SERVICE_LABEL } from "../../components/names";

/** The manifests with the mesh injected, which workloads took it, and what undoes it. */
export interface Injected {
  text: string;
  /** `Kind/name (service x)` per injected workload, in input order. */
  injected: string[];
  /** NetworkPolicies of the input that also admit traffic to or from injected pods. */
  warnings: string[];
}

/** A label selector as a NetworkPolicy's podSelector writes it. */
interface Selector {
  matchLabels?: Record<string, string>;
  matchExpressions?: unknown[];
}

/**
 * Whether a NetworkPolicy's podSelector may select pods with `labels`: its matchLabels must all
 * be there; matchExpressions are not evaluated, so a selector with them counts as a match.
 */
function mayMatch(selector: Selector | undefined, labels: Record<string, string>): boolean {
  return Object.entries(selector?.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
}

/** Thrown for input that is not YAML the injector can read. */
export class ManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ManifestError";
  }
}

/**
 * Injects the mesh into every matching Deployment and StatefulSet of `text` (several documents,
 * and the items of a `kind: List`). Every other document, and the text between documents, is
 * written back byte for byte; an injected document keeps its key order and its comments outside
 * the pod template, which is written anew. Read and written as YAML 1.1, as Kubernetes' and
 * Helm's parsers read it: a string such as "no" or "on" stays quoted (YAML 1.2 would leave it
 * bare, and they would read a boolean), and `<<` merge keys resolve.
 */
export function injectManifests(text: string, adopted: AdoptedWorkload[]): Injected {
  if (/^\s*[{[]/.test(text))
    throw new ManifestError("the input is JSON: give YAML (e.g. kubectl get -o yaml)");
  const docs = parseAllDocuments(text, { version: "1.1" });
  if (!Array.isArray(docs)) throw new ManifestError("the input is empty");
  const injected: string[] = [];
  const pods: Array<{ title: string; labels: Record<string, string> }> = [];
  const policies: Array<{ name: string; podSelector?: Selector; admits: boolean }> = [];
  let out = "";
  let from = 0;
  docs.forEach((doc: Document, i) => {
    const error = doc.errors[0];
    if (error) throw new ManifestError(`document ${i + 1}: ${error.message}`);
    // Parsed documents always carry their source range.
    const end = doc.range?.[2] ?? text.length;
    let object: unknown;
    try {
      object = doc.toJS();
    } catch (err) {
      throw new ManifestError(`document ${i + 1}: ${err instanceof Error ? err.message : err}`);
    }
    // A List's items, or the document itself, each at its path in the document.
    const items: Array<[unknown, (string | number)[]]> =
      isObject(object) && object.kind === "List" && Array.isArray(object.items)
        ? object.items.map((item: unknown, j: number) => [item, ["items", j]])
        : [[object, []]];
    let changed = false;
    for (const [item, at] of items) {
      if (isObject(item) && item.kind === "NetworkPolicy") {
        const spec = (item.spec ?? {}) as {
          podSelector?: Selector;
          ingress?: unknown[];
          egress?: unknown[];
        };
        const name = String((item.metadata as { name?: unknown } | undefined)?.name);
        policies.push({
          name,
          podSelector: spec.podSelector,
          admits: (spec.ingress ?? []).length + (spec.egress ?? []).length > 0,
        });
      }
      const result = isObject(item) ? injectWorkload(item as WorkloadObject, adopted) : undefined;
      if (!result?.spec?.template) continue;
      const node = doc.createNode(result.spec.template, { aliasDuplicateObjects: false });
      doc.setIn([...at, "spec", "template"], node);
      changed = true;
      const labels = result.spec.template.metadata?.labels ?? {};
      const title = `${result.kind}/${result.metadata?.name} (service ${labels[SERVICE_LABEL]})`;
      injected.push(title);
      pods.push({ title, labels });
    }
    out += changed ? doc.toString() : text.slice(from, end);
    from = end;
  });
  // Policies only add: one of the owner's that admits anything reopens the pods past Envoy.
  const warnings = policies.flatMap((p) =>
    pods
      .filter((pod) => p.admits && mayMatch(p.podSelector, pod.labels))
      .map(
        (pod) =>
          `NetworkPolicy ${p.name} of the input selects the pods of ${pod.title} and admits traffic of its own, in or out: policies only add, so it opens them past Envoy and mTLS; turn it off (docs/injection.md, "What stays the owner's")`,
      ),
  );
  return { text: out + text.slice(from), injected, warnings };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
