/**
 * Checks a PromQL expression against the series a stack exposes (tests/harness/stats-model.ts),
 * parsed by Prometheus' own grammar (@prometheus-io/lezer-promql): it must parse, every selector
 * must name a series that exists with labels that can match, and every `by (...)` label must be
 * one the series it groups carry. A renamed cluster, listener or tag then fails a test instead of
 * silently emptying a panel or an alert.
 */
import { parser } from "@prometheus-io/lezer-promql";
import type { SyntaxNode } from "@lezer/common";
import { LabelValue, labelCanBe, Series } from "./stats-model";

/** Series Prometheus makes itself for every target. */
const SYNTHETIC = ["up", "scrape_duration_seconds", "scrape_samples_scraped"];

interface Selector {
  metric: string;
  matchers: { label: string; op: string; value: string }[];
  text: string;
}

function unquote(s: string): string {
  return JSON.parse(s.startsWith("'") ? `"${s.slice(1, -1).replace(/"/g, '\\"')}"` : s) as string;
}

function child(node: SyntaxNode, name: string): SyntaxNode | undefined {
  for (let c = node.firstChild; c; c = c.nextSibling) if (c.name === name) return c;
  return undefined;
}

function children(node: SyntaxNode, name: string): SyntaxNode[] {
  const out: SyntaxNode[] = [];
  for (let c = node.firstChild; c; c = c.nextSibling) if (c.name === name) out.push(c);
  return out;
}

/** Whether `value` can satisfy one matcher against a series' label (absent labels are ""). */
function satisfiable(v: LabelValue | undefined, op: string, value: string): boolean {
  const re = () => new RegExp(`^(?:${value})$`);
  switch (op) {
    case "=":
      return value === "" ? v === undefined : labelCanBe(v, value);
    case "!=":
      return v === undefined || typeof v !== "string" || v !== value;
    case "=~":
      if (v === undefined) return re().test("");
      // A value known only by its form: assume it can match (e.g. any pod).
      return typeof v === "string" ? re().test(v) : true;
    case "!~":
      return v === undefined || typeof v !== "string" || !re().test(v);
    default:
      throw new Error(`promql check: unknown match operator ${op}`);
  }
}

/** The series a selector can select. */
function selected(sel: Selector, series: Series[], target: Record<string, LabelValue>): Series[] {
  const candidates = SYNTHETIC.includes(sel.metric)
    ? [{ name: sel.metric, labels: target, stat: "(Prometheus)", type: "gauge" as const }]
    : series.filter((s) => s.name === sel.metric);
  return candidates.filter((s) =>
    sel.matchers.every((m) => satisfiable(s.labels[m.label], m.op, m.value)),
  );
}

/**
 * Problems of `expr` against `series` (one mesh's, every workload's together) and the labels
 * every scrape target carries; empty when it parses and can select something at every step.
 */
export function checkExpression(
  expr: string,
  series: Series[],
  target: Record<string, LabelValue>,
): string[] {
  const tree = parser.parse(expr);
  const problems: string[] = [];
  tree.iterate({
    enter(ref) {
      if (ref.type.isError)
        problems.push(`does not parse at ${ref.from}: ${expr.slice(ref.from, ref.from + 20)}`);
    },
  });
  if (problems.length > 0) return problems;

  /** The series below a node (for its `by` labels). */
  const below = (node: SyntaxNode): Series[] => {
    const out: Series[] = [];
    const walk = (n: SyntaxNode) => {
      if (n.name === "VectorSelector") out.push(...selected(selectorOf(n), series, target));
      for (let c = n.firstChild; c; c = c.nextSibling) walk(c);
    };
    walk(node);
    return out;
  };
  const selectorOf = (node: SyntaxNode): Selector => {
    const id = child(node, "Identifier");
    const matchers = child(node, "LabelMatchers");
    return {
      metric: id ? expr.slice(id.from, id.to) : "",
      text: expr.slice(node.from, node.to),
      matchers: (matchers ? children(matchers, "UnquotedLabelMatcher") : []).map((m) => {
        const name = child(m, "LabelName") as SyntaxNode;
        const op = child(m, "MatchOp") as SyntaxNode;
        const str = child(m, "StringLiteral") as SyntaxNode;
        return {
          label: expr.slice(name.from, name.to),
          op: expr.slice(op.from, op.to),
          value: unquote(expr.slice(str.from, str.to)),
        };
      }),
    };
  };

  /** Labels label_replace/label_join write below a node (their second argument). */
  const written = (node: SyntaxNode): string[] => {
    const out: string[] = [];
    const visit = (n: SyntaxNode) => {
      if (n.name === "FunctionCall") {
        const id = child(n, "FunctionIdentifier");
        const name = id ? expr.slice(id.from, id.to) : "";
        const body = child(n, "FunctionCallBody");
        // The arguments are the body's children: the vector, then the destination label.
        const first = body ? child(body, "StringLiteral") : undefined;
        if ((name === "label_replace" || name === "label_join") && first)
          out.push(unquote(expr.slice(first.from, first.to)));
      }
      for (let c = n.firstChild; c; c = c.nextSibling) visit(c);
    };
    visit(node);
    return out;
  };

  const walk = (node: SyntaxNode) => {
    if (node.name === "VectorSelector") {
      const sel = selectorOf(node);
      if (!sel.metric) problems.push(`${sel.text}: selects by labels only; name the metric`);
      else if (!SYNTHETIC.includes(sel.metric) && !series.some((s) => s.name === sel.metric))
        problems.push(`${sel.metric}: no such series for this stack`);
      else if (selected(sel, series, target).length === 0)
        problems.push(`${sel.text}: its label matchers select no series of this stack`);
    }
    if (node.name === "AggregateExpr") {
      const modifier = child(node, "AggregateModifier");
      const grouping = modifier ? child(modifier, "GroupingLabels") : undefined;
      const labels = grouping
        ? children(grouping, "LabelName").map((l) => expr.slice(l.from, l.to))
        : [];
      const under = below(node);
      const made = written(node);
      for (const label of labels)
        if (
          label !== "le" &&
          !made.includes(label) &&
          !under.some((s) => s.labels[label] !== undefined)
        )
          problems.push(`by (${label}): no series it aggregates carries that label`);
      if (labels.includes("le") && !under.some((s) => s.labels.le !== undefined))
        problems.push(`by (le): no histogram bucket under it`);
    }
    for (let c = node.firstChild; c; c = c.nextSibling) walk(c);
  };
  walk(tree.topNode);
  return problems;
}
