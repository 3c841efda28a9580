/**
 * Offline injection (docs/injection.md): Kubernetes YAML in, the same YAML out with the mesh added
 * to the pod templates of the workloads the stack's adopted services name, like `linkerd inject
 * --manual`. The functions are the ones the Pulumi transform uses (components/injector.ts), so a
 * workload comes out as `pulumi up` with the transform would deploy it.
 */
import { Document, parseAllDocuments } from "yaml";
import { AdoptedWorkload, injectWorkload, WorkloadObject } from "../../components/injector";
import { SERVICE_LABEL } from "../../components/names";

/** The manifests with the mesh injected, and which workloads took it. */
export interface Injected {
  text: string;
  /** `Kind/name (service x)` per injected workload, in input order. */
  injected: string[];
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
      const result = isObject(item) ? injectWorkload(item as WorkloadObject, adopted) : undefined;
      if (!result?.spec?.template) continue;
      const node = doc.createNode(result.spec.template, { aliasDuplicateObjects: false });
      doc.setIn([...at, "spec", "template"], node);
      changed = true;
      const service = result.spec.template.metadata?.labels?.[SERVICE_LABEL];
      injected.push(`${result.kind}/${result.metadata?.name} (service ${service})`);
    }
    out += changed ? doc.toString() : text.slice(from, end);
    from = end;
  });
  return { text: out + text.slice(from), injected };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
