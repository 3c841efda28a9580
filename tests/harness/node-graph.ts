/**
 * What Grafana's node graph panel draws from the dashboard's queries, in three steps:
 *
 * 1. the frames Grafana's Prometheus data source makes of instant table queries (a model of
 *    `transformDFToTable`, grafana-prometheus result_transformer.ts: per refId a `Time` field,
 *    one string field per label in sorted order, and the value field, `Value` when one refId
 *    returned frames and `Value #<refId>` when several did);
 * 2. the panel's transformations, run by Grafana's own code (`transformDataFrame` of
 *    @grafana/data, the version of @grafana/schema);
 * 3. a model of the panel (public/app/plugins/panel/nodeGraph/utils.ts): the frames it takes
 *    (`getNodeGraphDataFrames`: a node graph name or refId, or an `id` field), the units it
 *    applies (`applyOptionsToFrames`), edges being the frames with a `source` field
 *    (`getGraphFrame`), fields found by lower-cased name, the first one winning (`FieldCache`),
 *    and each stat written as its number with two decimals and the unit's name (`statToString`);
 *    with a nodes frame (this dashboard always has one) only its ids are nodes, and an edge whose
 *    source or target is not one is an error (newer Grafana refuses the graph, older ones crash).
 */
import { firstValueFrom } from "rxjs";
import {
  DataFrame,
  Field,
  FieldType,
  standardTransformers,
  standardTransformersRegistry,
  transformDataFrame,
} from "@grafana/data";
import type { Panel } from "@grafana/schema";
import type { Options as NodeGraphOptions } from "@grafana/schema/dist/esm/raw/composable/nodegraph/panelcfg/x/NodeGraphPanelCfg_types.gen";

/** One instant-query result: the series' labels and value. */
export interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** The frames of instant table queries, by refId, as the Prometheus data source hands them on. */
export function prometheusTableFrames(results: Partial<Record<string, Sample[]>>): DataFrame[] {
  const returned = Object.entries(results).filter((r): r is [string, Sample[]] => !!r[1]);
  return returned.map(([refId, samples]) => {
    const labels = [...new Set(samples.flatMap((s) => Object.keys(s.labels)))].sort();
    return {
      refId,
      length: samples.length,
      meta: { preferredVisualisationType: "rawPrometheus" },
      fields: [
        { name: "Time", type: FieldType.time, config: {}, values: samples.map(() => 300_000) },
        ...labels.map((name): Field => ({
          name,
          type: FieldType.string,
          config: { filterable: true },
          values: samples.map((s) => s.labels[name] ?? ""),
        })),
        {
          name: returned.length > 1 ? `Value #${refId}` : "Value",
          type: FieldType.number,
          config: {},
          values: samples.map((s) => s.value),
        },
      ],
    };
  });
}

let registered = false;

/** The panel's transformations on `frames`, by Grafana's own code. */
export async function grafanaTransform(
  transformations: NonNullable<Panel["transformations"]>,
  frames: DataFrame[],
): Promise<DataFrame[]> {
  if (!registered) {
    // Grafana registers its transformations at start-up; the data package only defines them.
    const all = [...new Map(Object.values(standardTransformers).map((t) => [t.id, t]))];
    standardTransformersRegistry.setInit(() =>
      all.map(([id, info]) => ({
        id,
        name: info.name,
        description: info.description,
        transformation: () => Promise.resolve(info),
        editor: () => null,
        imageDark: "",
        imageLight: "",
      })),
    );
    registered = true;
  }
  // transformDataFrame reads `window.__grafanaSceneContext`: a bare window for the call only (one
  // at load time would make a dependency look for a DOM).
  const global = globalThis as { window?: object };
  const had = "window" in global;
  global.window ??= {};
  // The schema spells a transformation's topic as a string, the data package as an enum.
  const configs = transformations.map(({ topic, ...rest }) => {
    if (topic) throw new Error(`a transformation with a topic (${topic}) is not modelled`);
    return rest;
  });
  try {
    return await firstValueFrom(transformDataFrame(configs, frames));
  } finally {
    if (!had) delete global.window;
  }
}

/** An edge as the node graph writes it. */
export interface DrawnEdge {
  id: string;
  source: string;
  target: string;
  mainStat: string;
  secondaryStat: string;
}

/** What the node graph draws, or why it cannot. */
export interface DrawnGraph {
  nodes: string[];
  edges: DrawnEdge[];
  errors: string[];
}

const fieldOf = (frame: DataFrame, name: string): Field | undefined =>
  frame.fields.find((f) => f.name.toLowerCase() === name);

function statToString(field: Field | undefined, row: number): string {
  if (!field) return "";
  const value: unknown = field.values[row];
  if (typeof value === "string") return value;
  const decimals = field.config.decimals || 2;
  return typeof value === "number" && Number.isFinite(value)
    ? value.toFixed(decimals) + (field.config.unit ? ` ${field.config.unit}` : "")
    : "";
}

/** The node graph panel on the transformed frames, with the panel's options. */
export function drawNodeGraph(frames: DataFrame[], options: NodeGraphOptions): DrawnGraph {
  const graphFrames = frames.filter(
    (f) =>
      f.meta?.preferredVisualisationType === "nodeGraph" ||
      ["nodes", "edges"].includes(f.name ?? "") ||
      ["nodes", "edges"].includes(f.refId ?? "") ||
      f.fields.some((x) => x.name === "id"),
  );
  const isEdges = (f: DataFrame) => f.fields.some((x) => x.name === "source");
  for (const frame of graphFrames) {
    const units = isEdges(frame) ? options.edges : options.nodes;
    for (const [name, unit] of [
      ["mainstat", units?.mainStatUnit],
      ["secondarystat", units?.secondaryStatUnit],
    ] as const) {
      const field = fieldOf(frame, name);
      if (field && unit) field.config = { ...field.config, unit };
    }
  }
  const nodesFrame = graphFrames.find((f) => !isEdges(f));
  const edgesFrame = graphFrames.find(isEdges);
  const errors: string[] = [];
  const nodeIds = nodesFrame ? (fieldOf(nodesFrame, "id")?.values ?? []).map(String) : [];
  if (nodesFrame && !fieldOf(nodesFrame, "id")) errors.push("the nodes frame has no id field");
  const edges: DrawnEdge[] = [];
  if (edgesFrame) {
    const [id, source, target, main, secondary] = [
      "id",
      "source",
      "target",
      "mainstat",
      "secondarystat",
    ].map((n) => fieldOf(edgesFrame, n));
    if (!id) errors.push("the edges frame has no id field");
    for (let row = 0; row < edgesFrame.length; row++) {
      const edge: DrawnEdge = {
        id: String(id?.values[row]),
        source: String(source?.values[row]),
        target: String(target?.values[row]),
        mainStat: statToString(main, row),
        secondaryStat: statToString(secondary, row),
      };
      for (const end of [edge.source, edge.target]) {
        if (!nodeIds.includes(end)) errors.push(`edge ${edge.id} references a missing node ${end}`);
      }
      edges.push(edge);
    }
  }
  edges.sort((a, b) => a.id.localeCompare(b.id));
  return { nodes: [...nodeIds].sort(), edges, errors };
}
