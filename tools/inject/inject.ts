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
 * Injects the mesh into every matching Deployment and StatefulSet of `text` (several documents).
 * Every other document, and the text between documents, is written back byte for byte; an
 * injected document keeps its comments and key order, with a new `spec.template`.
 */
export function injectManifests(text: string, adopted: AdoptedWorkload[]): Injected {
  const docs = parseAllDocuments(text);
  if (!Array.isArray(docs)) throw new ManifestError("the input is empty");
  const injected: string[] = [];
  let out = "";
  let from = 0;
  docs.forEach((doc: Document, i) => {
    const error = doc.errors[0];
    if (error) throw new ManifestError(`document ${i + 1}: ${error.message}`);
    // Parsed documents always carry their source range.
    const end = doc.range?.[2] ?? text.length;
    const object = doc.toJS() as unknown;
    const result =
      object !== null && typeof object === "object" && !Array.isArray(object)
        ? injectWorkload(object as WorkloadObject, adopted)
        : undefined;
    if (result?.spec?.template) {
      doc.setIn(["spec", "template"], doc.createNode(result.spec.template));
      out += doc.toString();
      const service = result.spec.template.metadata?.labels?.[SERVICE_LABEL];
      injected.push(`${result.kind}/${result.metadata?.name} (service ${service})`);
    } else {
      out += text.slice(from, end);
    }
    from = end;
  });
  return { text: out + text.slice(from), injected };
}
