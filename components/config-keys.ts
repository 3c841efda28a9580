/**
 * The stack config's keys as a whole: namespaces that are near misses of the project's, unknown
 * `kubernetes:` keys, the nearest known key for a typo, and which service or client an indexed
 * key belongs to. Pulumi passes every key of the stack file to the program, whatever its
 * namespace, and reads none of them for it: a misspelt namespace is otherwise silently ignored
 * and the stack deploys with defaults.
 */
import { distance } from "fastest-levenshtein";
import { z } from "zod";
import { PROJECT } from "./names";

/**
 * Every setting of @pulumi/kubernetes' Provider (ProviderArgs, v4.34), which are also the
 * `kubernetes:` stack keys its default provider reads. tests/config-keys.spec.ts checks this list
 * against the installed package, so an upgrade that adds one fails until it is listed here.
 */
export const KUBERNETES_PROVIDER_KEYS = [
  "alwaysRender",
  "cluster",
  "clusterIdentifier",
  "context",
  "deleteUnreachable",
  "enableConfigMapMutable",
  "enablePatchForce",
  "enableSecretMutable",
  "enableServerSideApply",
  "helmReleaseSettings",
  "kubeClientSettings",
  "kubeconfig",
  "namespace",
  "renderYamlToDirectory",
  "skipUpdateUnreachable",
  "suppressDeprecationWarnings",
  "suppressHelmHookWarnings",
  "upsertExistingObjects",
] as const;

/** The `kubernetes:` keys the program's explicit provider takes from the stack (provider.ts). */
export const KUBERNETES_KEYS_READ = ["context", "kubeconfig"] as const;

/** Namespaces with a reader: the project's, the providers' it uses, and Pulumi's own. */
const KNOWN_NAMESPACES = [PROJECT, "kubernetes", "tls", "pulumi"];

/**
 * The candidate closest to `word` when it is close enough to be what was meant: at most two
 * edits, or a third of the word for long words; case is ignored.
 */
export function nearest(word: string, candidates: readonly string[]): string | undefined {
  const limit = Math.max(2, Math.floor(word.length / 3));
  let best: { candidate: string; d: number } | undefined;
  for (const candidate of candidates) {
    const d = distance(word.toLowerCase(), candidate.toLowerCase());
    if (d <= limit && (!best || d < best.d)) best = { candidate, d };
  }
  return best?.candidate;
}

/** ` (did you mean "x"?)`, or nothing when no candidate is close; `shown` spells the key. */
export function suggestion(
  word: string,
  candidates: readonly string[],
  shown: (candidate: string) => string = (c) => c,
): string {
  const near = nearest(word, candidates);
  return near ? ` (did you mean "${shown(near)}"?)` : "";
}

/** A namespace that differs from the project's only in case, punctuation or a few letters. */
function nearProject(ns: string): boolean {
  const plain = (s: string) => s.toLowerCase().replace(/[^a-z0-9]/g, "");
  return plain(ns) === plain(PROJECT) || nearest(ns, [PROJECT]) !== undefined;
}

/** Problems (refused at preview) and warnings in the stack's keys outside the project's own. */
export function stackKeyProblems(all: Record<string, string>): {
  problems: string[];
  warnings: string[];
} {
  const problems: string[] = [];
  const warnings: string[] = [];
  for (const fullKey of Object.keys(all).sort()) {
    const i = fullKey.indexOf(":");
    const ns = fullKey.slice(0, i);
    // Pulumi also accepts `ns:config:key` in older state.
    const key = fullKey.slice(i + 1).replace(/^config:/, "");
    if (ns === PROJECT) continue;
    if (ns === "kubernetes") {
      if (!(KUBERNETES_PROVIDER_KEYS as readonly string[]).includes(key))
        problems.push(
          `${fullKey}: not a setting of the Kubernetes provider${suggestion(key, KUBERNETES_PROVIDER_KEYS, (k) => `kubernetes:${k}`)}`,
        );
      else if (!(KUBERNETES_KEYS_READ as readonly string[]).includes(key))
        warnings.push(
          `${fullKey} is not used: the program's own Kubernetes provider takes only ${KUBERNETES_KEYS_READ.map((k) => `kubernetes:${k}`).join(" and ")} from the stack config (docs/configuration.md)`,
        );
    } else if (nearProject(ns)) {
      problems.push(
        `${fullKey}: "${ns}" is not this project's config namespace (did you mean "${PROJECT}:${key}"?)`,
      );
    } else if (!KNOWN_NAMESPACES.includes(ns)) {
      warnings.push(
        `${fullKey} is not read by this program (config namespaces it reads: ${KNOWN_NAMESPACES.join(", ")})`,
      );
    }
  }
  return { problems, warnings };
}

/** The keys an object schema accepts at `path` of the value it parses (none when not an object). */
export function schemaKeysAt(schema: z.ZodType, path: ReadonlyArray<PropertyKey>): string[] {
  const unwrap = (s: z.ZodType): z.ZodType[] => {
    if (s instanceof z.ZodOptional || s instanceof z.ZodDefault || s instanceof z.ZodPrefault)
      return unwrap(s.unwrap() as z.ZodType);
    if (s instanceof z.ZodNullable) return unwrap(s.unwrap() as z.ZodType);
    if (s instanceof z.ZodPipe) return unwrap(s.in as z.ZodType);
    if (s instanceof z.ZodUnion) return (s.options as z.ZodType[]).flatMap(unwrap);
    return [s];
  };
  let current = unwrap(schema);
  for (const part of path) {
    current = current.flatMap((s) => {
      if (typeof part === "number" && s instanceof z.ZodArray)
        return unwrap(s.element as z.ZodType);
      if (typeof part === "string" && s instanceof z.ZodObject && part in s.shape)
        return unwrap(s.shape[part] as z.ZodType);
      return [];
    });
  }
  return [
    ...new Set(current.flatMap((s) => (s instanceof z.ZodObject ? Object.keys(s.shape) : []))),
  ];
}

/**
 * Appends the entry's name to a problem about `services[i]` or `clients[i]`, which the user knows
 * by name rather than by position.
 */
export function withEntryName(problem: string, raw: Record<string, unknown>): string {
  const match = new RegExp(`^${PROJECT}:(services|clients)\\[(\\d+)\\]`).exec(problem);
  if (!match) return problem;
  const list = raw[match[1]];
  const entry = Array.isArray(list) ? (list[Number(match[2])] as unknown) : undefined;
  const name =
    entry !== null && typeof entry === "object" ? (entry as { name?: unknown }).name : undefined;
  if (typeof name !== "string" || name === "" || problem.includes(`"${name}"`)) return problem;
  return `${problem} (${match[1] === "services" ? "service" : "client"} "${name}")`;
}
