/**
 * Who may call whom as a picture: the `access` edges laid out by dagre (a layered graph layout,
 * left to right) and drawn as SVG, one `<g class="node">` per endpoint and one `<g class="edge">`
 * per allowed edge, with its port and what it may do as the edge's label.
 */
import { graphlib, layout } from "@dagrejs/dagre";
import { AccessEdge } from "../../components/access";

const FONT = 13;
/** A generous width per character of the sans-serif font, so labels fit their boxes. */
const CHAR = 7.5;

const escape = (s: string) =>
  s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

/** The label an edge carries on the picture: its port and what it allows. */
export function edgeLabel(e: AccessEdge): string {
  return `${e.port ? `:${e.port} ` : ""}${e.detail}`;
}

/** The SVG of the access graph; deterministic for the same edges. */
export function accessGraphSvg(edges: AccessEdge[], title: string): string {
  const g = new graphlib.Graph({ multigraph: true });
  g.setGraph({ rankdir: "LR", nodesep: 24, ranksep: 140, edgesep: 16, marginx: 16, marginy: 16 });
  g.setDefaultEdgeLabel(() => ({}));
  const sorted = [...edges].sort((a, b) =>
    `${a.from}|${a.to}|${edgeLabel(a)}` < `${b.from}|${b.to}|${edgeLabel(b)}` ? -1 : 1,
  );
  const names = [...new Set(sorted.flatMap((e) => [e.from, e.to]))].sort();
  for (const name of names)
    g.setNode(name, { label: name, width: name.length * CHAR + 24, height: 32 });
  sorted.forEach((e, i) => {
    const label = edgeLabel(e);
    g.setEdge(
      e.from,
      e.to,
      { label, width: label.length * (CHAR - 1), height: FONT + 4, labelpos: "c" },
      `e${i}`,
    );
  });
  layout(g);
  const { width = 0, height = 0 } = g.graph();
  const parts: string[] = [];
  for (const name of names) {
    const n = g.node(name);
    parts.push(
      `<g class="node" data-node="${escape(name)}"><rect x="${(n.x - n.width / 2).toFixed(1)}" y="${(n.y - n.height / 2).toFixed(1)}" width="${n.width.toFixed(1)}" height="${n.height}" rx="6"/><text x="${n.x.toFixed(1)}" y="${(n.y + FONT / 3).toFixed(1)}">${escape(name)}</text></g>`,
    );
  }
  sorted.forEach((e, i) => {
    const edge = g.edge({ v: e.from, w: e.to, name: `e${i}` });
    const d = edge.points
      .map(
        (p: { x: number; y: number }, j: number) =>
          `${j === 0 ? "M" : "L"}${p.x.toFixed(1)},${p.y.toFixed(1)}`,
      )
      .join(" ");
    parts.push(
      `<g class="edge" data-from="${escape(e.from)}" data-to="${escape(e.to)}"><path d="${d}" marker-end="url(#arrow)"/><text x="${(edge.x ?? 0).toFixed(1)}" y="${(edge.y ?? 0).toFixed(1)}">${escape(edgeLabel(e))}</text></g>`,
    );
  });
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${Math.ceil(width)}" height="${Math.ceil(height)}" viewBox="0 0 ${Math.ceil(width)} ${Math.ceil(height)}" font-family="sans-serif" font-size="${FONT}">`,
    `<title>${escape(title)}</title>`,
    `<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>`,
    `<style>.node rect{fill:#eef3fb;stroke:#3a5a8c} .node text{text-anchor:middle;fill:#111} .edge path{fill:none;stroke:#555;stroke-width:1.4} .edge text{text-anchor:middle;fill:#333;font-size:11px}</style>`,
    ...parts,
    "</svg>",
    "",
  ].join("\n");
}
