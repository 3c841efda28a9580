/**
 * Validates Envoy v3 JSON configs against Envoy's own API protos (vendored in ./vendor/envoy-api, see its
 * SOURCE.md; their udpa, xds, validate and google imports come from `@grpc/grpc-js-xds`), the way Envoy parses them: proto3 JSON mapping, both snake_case and
 * lowerCamel field names, unknown fields rejected, `typed_config` Anys resolved by `@type` and
 * validated as their message, plus the protoc-gen-validate (PGV) rules carried in the protos.
 *
 * Also exports the cross-reference checks Envoy makes at start-up (routes name existing
 * clusters, listeners do not collide, ...) and the list of files a config makes Envoy read.
 *
 * No Envoy binary runs here, so this is the closest we get to `envoy --mode validate`.
 */
import * as fs from "node:fs";
import * as net from "node:net";
import * as path from "node:path";
import { Enum, Field, MapField, OneOf, ReflectionObject, Root, Type } from "protobufjs";
import { rootProtos, VENDORED_API } from "../../scripts/refresh-envoy-api";

export const BOOTSTRAP_TYPE = "envoy.config.bootstrap.v3.Bootstrap";
export const DISCOVERY_RESPONSE_TYPE = "envoy.service.discovery.v3.DiscoveryResponse";
export const SECRET_TYPE = "envoy.extensions.transport_sockets.tls.v3.Secret";
const TYPE_URL_PREFIX = "type.googleapis.com/";

export interface EnvoyValidationResult {
  errors: string[];
  /** Deprecated fields/enum values and work-in-progress APIs: Envoy logs these, it does not fail. */
  warnings: string[];
}

// ---------------------------------------------------------------------------------------------
// Loading the protos (once per process)
// ---------------------------------------------------------------------------------------------

export interface EnvoyProtoStats {
  /** .proto files given to protobufjs (their imports come on top). */
  files: number;
  /** Files left out because an import is not shipped (e.g. opencensus, opentelemetry protos). */
  skipped: string[];
  loadMs: number;
}

// Bundled by protobufjs itself; every other google/protobuf import resolves to its .proto copies.
const BUNDLED_WKT = new Set(
  ["any", "duration", "timestamp", "empty", "struct", "wrappers", "field_mask"].map(
    (n) => `google/protobuf/${n}.proto`,
  ),
);

/**
 * The Envoy API trees the validator can load: the vendored one (the default), and the older one
 * @grpc/grpc-js-xds ships, which predates Envoy 1.36: a field it already has is in the 1.36
 * image too (API fields are removed only long after deprecation).
 */
export type EnvoyApi = "vendored" | "bundled";
const cache = new Map<EnvoyApi, { root: Root; stats: EnvoyProtoStats }>();

function packageDir(pkg: string): string {
  return path.dirname(require.resolve(`${pkg}/package.json`));
}

function loadRoot(api: EnvoyApi = "vendored"): { root: Root; stats: EnvoyProtoStats } {
  const cached = cache.get(api);
  if (cached) return cached;
  const started = performance.now();
  const deps = path.join(packageDir("@grpc/grpc-js-xds"), "deps");
  const envoyApi = api === "vendored" ? VENDORED_API : path.join(deps, "envoy-api");
  const includeDirs = [
    envoyApi,
    path.join(deps, "xds"),
    path.join(deps, "googleapis"),
    path.join(deps, "protoc-gen-validate"),
    packageDir("protobufjs"), // google/protobuf/descriptor.proto
  ];
  const locate = (target: string): string | null => {
    if (path.isAbsolute(target)) return target;
    for (const dir of includeDirs) {
      const candidate = path.join(dir, target);
      if (fs.existsSync(candidate)) return candidate;
    }
    return null;
  };

  // The root set the vendoring script copies (with its imports), from either tree.
  const wanted = rootProtos(envoyApi);
  wanted.push("xds/type/v3/typed_struct.proto", "udpa/type/v1/typed_struct.proto");

  // A file loads only if its whole import closure is on disk; otherwise protobufjs fails the
  // entire load, so such files are skipped up front.
  const loadable = new Map<string, boolean>();
  const canLoad = (rel: string): boolean => {
    if (BUNDLED_WKT.has(rel)) return true;
    const known = loadable.get(rel);
    if (known !== undefined) return known;
    loadable.set(rel, true); // import cycles: assume fine while visiting
    const file = locate(rel);
    let ok = file !== null;
    if (file !== null) {
      const source = fs.readFileSync(file, "utf8");
      for (const m of source.matchAll(/^\s*import\s+(?:public\s+|weak\s+)?"([^"]+)"/gm)) {
        if (!canLoad(m[1])) {
          ok = false;
          break;
        }
      }
    }
    loadable.set(rel, ok);
    return ok;
  };
  const files = wanted.filter(canLoad);
  const skipped = wanted.filter((f) => !canLoad(f));

  const root = new Root();
  root.resolvePath = (_origin, target) => locate(target);
  // keepCase: field names stay as in the .proto (snake_case); lowerCamel is derived below.
  root.loadSync(files, { keepCase: true });
  root.resolveAll();
  const loaded = {
    root,
    stats: { files: files.length, skipped, loadMs: Math.round(performance.now() - started) },
  };
  cache.set(api, loaded);
  return loaded;
}

/** Loads (once) and reports what was loaded and how long it took. */
export function envoyProtoStats(): EnvoyProtoStats {
  return loadRoot().stats;
}

function stripDot(fullName: string): string {
  return fullName.startsWith(".") ? fullName.slice(1) : fullName;
}

function lookupMessage(name: string, api: EnvoyApi = "vendored"): Type | undefined {
  try {
    const found: ReflectionObject | null = loadRoot(api).root.lookup(name);
    return found instanceof Type ? found : undefined;
  } catch {
    return undefined;
  }
}

// ---------------------------------------------------------------------------------------------
// Per-type metadata (computed lazily, cached)
// ---------------------------------------------------------------------------------------------

type Dict = Record<string, unknown>;

function isDict(v: unknown): v is Dict {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function dictAt(v: unknown, key: string): Dict | undefined {
  if (!isDict(v)) return undefined;
  const inner = v[key];
  return isDict(inner) ? inner : undefined;
}

function deepMerge(into: Dict, from: Dict): void {
  for (const [k, v] of Object.entries(from)) {
    const existing = into[k];
    if (isDict(existing) && isDict(v)) deepMerge(existing, v);
    else into[k] = isDict(v) ? { ...v } : v;
  }
}

/** protobufjs keeps aggregate option values (`{lte: 65535}`) structured only in parsedOptions. */
function parsedOption(obj: ReflectionObject, name: string): Dict | undefined {
  const parsed: unknown = obj.parsedOptions;
  const entries: unknown[] = Array.isArray(parsed) ? parsed : isDict(parsed) ? [parsed] : [];
  let merged: Dict | undefined;
  for (const entry of entries) {
    if (!isDict(entry) || !(name in entry)) continue;
    const value = entry[name];
    if (!isDict(value)) continue;
    merged ??= {};
    deepMerge(merged, value);
  }
  return merged;
}

function flatOptions(obj: ReflectionObject): Dict {
  const options: unknown = obj.options;
  return isDict(options) ? options : {};
}

/** protoc's default json_name: drop underscores, upper-case the following letter. */
function lowerCamel(name: string): string {
  return name.replace(/_+([a-zA-Z0-9])/g, (_m, c: string) => c.toUpperCase());
}

interface FieldInfo {
  field: Field;
  jsonName: string;
  rules?: Dict;
  deprecated: boolean;
  disallowedByDefault: boolean;
  workInProgress: boolean;
  /** The real (non-synthetic) oneof it belongs to. */
  oneof?: OneOf;
  /** proto3 `optional`: explicit presence, so PGV rules only apply when set. */
  explicitPresence: boolean;
}

interface TypeInfo {
  byKey: Map<string, FieldInfo>;
  fields: FieldInfo[];
  oneofs: { oneof: OneOf; required: boolean; members: FieldInfo[] }[];
  workInProgress: boolean;
}

const typeInfos = new WeakMap<Type, TypeInfo>();

/**
 * Whether the .proto file that declares `type` is marked work-in-progress. File options are read
 * from the file itself: protobufjs merges every file's options into the shared package namespace,
 * so one work-in-progress file (type/v3/ratelimit_strategy.proto) would mark its whole package.
 */
const wipFiles = new Map<string, boolean>();
function isWipFile(type: Type): boolean {
  let holder: ReflectionObject | null = type;
  while (holder && !holder.filename) holder = holder.parent;
  const file = holder?.filename;
  if (!file) return false;
  let wip = wipFiles.get(file);
  if (wip === undefined) {
    wip =
      /option\s+\((?:xds\.annotations\.v3|udpa\.annotations)\.file_status\)\.work_in_progress\s*=\s*true/.test(
        fs.readFileSync(file, "utf8"),
      );
    wipFiles.set(file, wip);
  }
  return wip;
}

function typeInfo(type: Type): TypeInfo {
  const known = typeInfos.get(type);
  if (known) return known;
  const byKey = new Map<string, FieldInfo>();
  const fields: FieldInfo[] = [];
  for (const field of type.fieldsArray) {
    const o = flatOptions(field);
    const explicitJson = o["json_name"];
    const synthetic = field.partOf !== null && o["proto3_optional"] === true;
    const info: FieldInfo = {
      field,
      jsonName: typeof explicitJson === "string" ? explicitJson : lowerCamel(field.name),
      rules: parsedOption(field, "(validate.rules)"),
      deprecated: o["deprecated"] === true,
      disallowedByDefault: o["(envoy.annotations.disallowed_by_default)"] === true,
      workInProgress: o["(xds.annotations.v3.field_status).work_in_progress"] === true,
      oneof: field.partOf !== null && !synthetic ? field.partOf : undefined,
      explicitPresence: synthetic,
    };
    fields.push(info);
    byKey.set(field.name, info);
    byKey.set(info.jsonName, info);
  }
  const oneofs = type.oneofsArray
    .filter((oneof) => !oneof.fieldsArray.some((f) => flatOptions(f)["proto3_optional"] === true))
    .map((oneof) => ({
      oneof,
      required: flatOptions(oneof)["(validate.required)"] === true,
      members: fields.filter((f) => f.oneof === oneof),
    }));
  const o = flatOptions(type);
  const info: TypeInfo = {
    byKey,
    fields,
    oneofs,
    workInProgress:
      o["(xds.annotations.v3.message_status).work_in_progress"] === true || isWipFile(type),
  };
  typeInfos.set(type, info);
  return info;
}

// ---------------------------------------------------------------------------------------------
// JSON → proto checks
// ---------------------------------------------------------------------------------------------

/** Called for every message object reached (also inside Anys); used by the cross-ref walks. */
type Visitor = (typeName: string, obj: Dict, at: string, get: (field: string) => unknown) => void;

interface Ctx {
  errors: string[];
  warnings: string[];
  visit?: Visitor;
  /** The API tree `typed_config` types are looked up in. */
  api: EnvoyApi;
}

function err(ctx: Ctx, at: string, message: string): void {
  ctx.errors.push(`${at || "<root>"}: ${message}`);
}

function warn(ctx: Ctx, at: string, message: string): void {
  ctx.warnings.push(`${at || "<root>"}: ${message}`);
}

function child(at: string, key: string): string {
  return at ? `${at}.${key}` : key;
}

function mapChild(at: string, key: string): string {
  return /^[A-Za-z_][A-Za-z0-9_]*$/.test(key) ? child(at, key) : `${at}[${JSON.stringify(key)}]`;
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "object") return "object";
  const shown = JSON.stringify(v);
  return `${typeof v} ${shown.length > 40 ? `${shown.slice(0, 37)}...` : shown}`;
}

const INT_RANGES: Record<string, [bigint, bigint]> = {
  int32: [-(2n ** 31n), 2n ** 31n - 1n],
  sint32: [-(2n ** 31n), 2n ** 31n - 1n],
  sfixed32: [-(2n ** 31n), 2n ** 31n - 1n],
  uint32: [0n, 2n ** 32n - 1n],
  fixed32: [0n, 2n ** 32n - 1n],
  int64: [-(2n ** 63n), 2n ** 63n - 1n],
  sint64: [-(2n ** 63n), 2n ** 63n - 1n],
  sfixed64: [-(2n ** 63n), 2n ** 63n - 1n],
  uint64: [0n, 2n ** 64n - 1n],
  fixed64: [0n, 2n ** 64n - 1n],
};

type ScalarValue = number | string | boolean | Buffer;

/** Parses one proto3-JSON scalar; returns undefined (after reporting) when malformed. */
function parseScalar(kind: string, v: unknown, at: string, ctx: Ctx): ScalarValue | undefined {
  const range = INT_RANGES[kind];
  if (range) {
    // proto3 JSON: integers may be numbers or decimal strings (64-bit ones usually strings).
    let big: bigint | undefined;
    if (typeof v === "number" && Number.isInteger(v)) big = BigInt(v);
    else if (typeof v === "string" && /^-?\d+$/.test(v)) big = BigInt(v);
    if (big === undefined) {
      err(ctx, at, `expected ${kind} (integer number or decimal string), got ${describe(v)}`);
      return undefined;
    }
    if (big < range[0] || big > range[1]) {
      err(ctx, at, `value ${big} is out of range for ${kind} [${range[0]}, ${range[1]}]`);
      return undefined;
    }
    return Number(big);
  }
  switch (kind) {
    case "double":
    case "float": {
      if (typeof v === "number") return v;
      if (v === "NaN" || v === "Infinity" || v === "-Infinity") return Number(v);
      if (typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v))) return Number(v);
      err(ctx, at, `expected ${kind} (number), got ${describe(v)}`);
      return undefined;
    }
    case "bool":
      if (typeof v === "boolean") return v;
      err(ctx, at, `expected bool (true/false), got ${describe(v)}`);
      return undefined;
    case "string":
      if (typeof v === "string") return v;
      err(ctx, at, `expected string, got ${describe(v)}`);
      return undefined;
    case "bytes":
      if (typeof v === "string" && /^[A-Za-z0-9+/_-]*={0,2}$/.test(v) && v.length % 4 !== 1) {
        return Buffer.from(v, "base64");
      }
      err(ctx, at, `expected bytes (base64 string), got ${describe(v)}`);
      return undefined;
    default:
      err(ctx, at, `unsupported scalar type ${kind}`);
      return undefined;
  }
}

function scalarDefault(kind: string): ScalarValue {
  if (kind === "string") return "";
  if (kind === "bool") return false;
  if (kind === "bytes") return Buffer.alloc(0);
  return 0;
}

const WRAPPERS: Record<string, string> = {
  "google.protobuf.DoubleValue": "double",
  "google.protobuf.FloatValue": "float",
  "google.protobuf.Int64Value": "int64",
  "google.protobuf.UInt64Value": "uint64",
  "google.protobuf.Int32Value": "int32",
  "google.protobuf.UInt32Value": "uint32",
  "google.protobuf.BoolValue": "bool",
  "google.protobuf.StringValue": "string",
  "google.protobuf.BytesValue": "bytes",
};

/** Well-known types whose JSON form is not an object of fields (so inside Any: `value`). */
const SPECIAL_JSON = new Set([
  ...Object.keys(WRAPPERS),
  "google.protobuf.Duration",
  "google.protobuf.Timestamp",
  "google.protobuf.FieldMask",
  "google.protobuf.Struct",
  "google.protobuf.Value",
  "google.protobuf.ListValue",
  "google.protobuf.Any",
]);

const TYPED_STRUCTS = new Set(["xds.type.v3.TypedStruct", "udpa.type.v1.TypedStruct"]);

const MAX_DURATION_SECONDS = 315576000000n;

/** Duration JSON is a string like "1.5s"; returns nanoseconds. */
function parseDuration(v: unknown, at: string, ctx: Ctx): bigint | undefined {
  const m = typeof v === "string" ? /^(-)?(\d+)(?:\.(\d{1,9}))?s$/.exec(v) : null;
  if (!m) {
    err(ctx, at, `malformed Duration ${describe(v)}: expected a string like "5s" or "0.250s"`);
    return undefined;
  }
  const seconds = BigInt(m[2]);
  if (seconds > MAX_DURATION_SECONDS) {
    err(ctx, at, `Duration ${JSON.stringify(v)} exceeds ±${MAX_DURATION_SECONDS}s`);
    return undefined;
  }
  const nanos = seconds * 1_000_000_000n + BigInt((m[3] ?? "").padEnd(9, "0") || "0");
  return m[1] ? -nanos : nanos;
}

const TIMESTAMP_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/;

interface Slot {
  /** "<owner message>.<field>" that holds the current message, for extension-category checks. */
  holder?: string;
}

/**
 * Which extension @types may appear in `typed_config` of the message held by a given field.
 * Envoy finds the factory by type URL within the slot's category, so a config from another
 * category (or the wrong TLS context direction) fails at start-up.
 */
const EXTENSION_SLOTS: Record<string, { category: string; prefix: string; reject?: string }> = {
  "envoy.config.listener.v3.FilterChain.transport_socket": {
    category: "downstream transport socket",
    prefix: "envoy.extensions.transport_sockets.",
    reject: "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
  },
  "envoy.config.cluster.v3.Cluster.transport_socket": {
    category: "upstream transport socket",
    prefix: "envoy.extensions.transport_sockets.",
    reject: "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
  },
  "envoy.config.cluster.v3.Cluster.TransportSocketMatch.transport_socket": {
    category: "upstream transport socket",
    prefix: "envoy.extensions.transport_sockets.",
    reject: "envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
  },
  "envoy.config.listener.v3.FilterChain.filters": {
    category: "network filter",
    prefix: "envoy.extensions.filters.network.",
  },
  "envoy.config.listener.v3.Listener.listener_filters": {
    category: "listener filter",
    prefix: "envoy.extensions.filters.listener.",
  },
  "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.http_filters":
    { category: "HTTP filter", prefix: "envoy.extensions.filters.http." },
};

function checkMessage(type: Type, v: unknown, at: string, ctx: Ctx, slot: Slot): void {
  const name = stripDot(type.fullName);
  const wrapped = WRAPPERS[name];
  if (wrapped) {
    parseScalar(wrapped, v, at, ctx);
    return;
  }
  switch (name) {
    case "google.protobuf.Duration":
      parseDuration(v, at, ctx);
      return;
    case "google.protobuf.Timestamp":
      if (typeof v !== "string" || !TIMESTAMP_RE.test(v)) {
        err(ctx, at, `malformed Timestamp ${describe(v)}: expected RFC 3339 text`);
      }
      return;
    case "google.protobuf.FieldMask":
      if (typeof v !== "string") err(ctx, at, `expected FieldMask string, got ${describe(v)}`);
      return;
    case "google.protobuf.Value":
      return; // any JSON value
    case "google.protobuf.Struct":
      if (!isDict(v)) err(ctx, at, `expected Struct (JSON object), got ${describe(v)}`);
      return;
    case "google.protobuf.ListValue":
      if (!Array.isArray(v)) err(ctx, at, `expected ListValue (JSON array), got ${describe(v)}`);
      return;
    case "google.protobuf.Any":
      checkAny(v, at, ctx, slot);
      return;
  }
  if (!isDict(v)) {
    err(ctx, at, `expected object (${name}), got ${describe(v)}`);
    return;
  }
  checkFields(type, v, at, ctx, slot);
}

function checkAny(v: unknown, at: string, ctx: Ctx, slot: Slot): void {
  if (!isDict(v)) {
    err(ctx, at, `expected Any (object with "@type"), got ${describe(v)}`);
    return;
  }
  const typeUrl = v["@type"];
  if (typeof typeUrl !== "string") {
    err(ctx, at, `Any is missing its "@type" (type.googleapis.com/<message name>)`);
    return;
  }
  if (!typeUrl.startsWith(TYPE_URL_PREFIX)) {
    err(ctx, child(at, "@type"), `"${typeUrl}" must look like ${TYPE_URL_PREFIX}<message name>`);
    return;
  }
  const inner = resolveTypeUrl(typeUrl, child(at, "@type"), ctx);
  if (!inner) return;
  const innerName = stripDot(inner.fullName);
  const body: Dict = { ...v };
  delete body["@type"];

  checkExtensionSlot(innerName, body, at, ctx, slot);

  if (SPECIAL_JSON.has(innerName)) {
    for (const key of Object.keys(body)) {
      if (key !== "value") {
        err(
          ctx,
          child(at, key),
          `unknown field "${key}" (an Any of ${innerName} has only "value")`,
        );
      }
    }
    if ("value" in body) checkMessage(inner, body["value"], child(at, "value"), ctx, slot);
    return;
  }
  checkFields(inner, body, at, ctx, {});

  // A TypedStruct carries another extension's config as a Struct: validate it as that message.
  if (TYPED_STRUCTS.has(innerName) && typeof body["type_url"] === "string") {
    const target = resolveTypeUrl(body["type_url"], child(at, "type_url"), ctx, true);
    const value = body["value"] ?? {};
    if (target && isDict(value)) checkFields(target, value, child(at, "value"), ctx, {});
  }
}

function resolveTypeUrl(
  typeUrl: string,
  at: string,
  ctx: Ctx,
  anyPrefix = false,
): Type | undefined {
  const name = anyPrefix
    ? typeUrl.slice(typeUrl.lastIndexOf("/") + 1)
    : typeUrl.slice(TYPE_URL_PREFIX.length);
  const type = name ? lookupMessage(name, ctx.api) : undefined;
  if (!type) {
    err(ctx, at, `"${typeUrl}" does not resolve to a message in Envoy's v3 API protos`);
  }
  return type;
}

function checkExtensionSlot(innerName: string, body: Dict, at: string, ctx: Ctx, slot: Slot) {
  const rule = slot.holder ? EXTENSION_SLOTS[slot.holder] : undefined;
  if (!rule) return;
  let effective = innerName;
  if (TYPED_STRUCTS.has(innerName) && typeof body["type_url"] === "string") {
    effective = body["type_url"].slice(body["type_url"].lastIndexOf("/") + 1);
  }
  if (!effective.startsWith(rule.prefix) || effective === rule.reject) {
    err(
      ctx,
      child(at, "@type"),
      `${effective} is not a ${rule.category} config (expected ${rule.prefix}*` +
        `${rule.reject ? `, not ${rule.reject.split(".").pop()}` : ""})`,
    );
  }
}

function editDistance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_v, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let diag = row[0];
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const above = row[j];
      row[j] = Math.min(row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = above;
    }
  }
  return row[b.length];
}

function suggestion(key: string, info: TypeInfo): string {
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(key.length / 4)) + 1;
  for (const candidate of info.byKey.keys()) {
    const d = editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best ? `; did you mean "${best}"?` : "";
}

function isSet(v: unknown): boolean {
  return v !== undefined && v !== null;
}

/** proto3 implicit presence: Envoy only "sees" (e.g. for deprecation) non-default values. */
function isNonDefault(v: unknown): boolean {
  if (!isSet(v)) return false;
  if (v === false || v === 0 || v === "" || v === "0") return false;
  if (Array.isArray(v)) return v.length > 0;
  return true;
}

function checkFields(type: Type, obj: Dict, at: string, ctx: Ctx, slot: Slot): void {
  const info = typeInfo(type);
  const typeName = stripDot(type.fullName);
  if (info.workInProgress) {
    warn(ctx, at, `${typeName} is marked work-in-progress (API may change without notice)`);
  }
  const values = new Map<FieldInfo, { key: string; value: unknown }>();
  for (const [key, value] of Object.entries(obj)) {
    const fi = info.byKey.get(key);
    if (!fi) {
      err(ctx, child(at, key), `unknown field "${key}" in ${typeName}${suggestion(key, info)}`);
      continue;
    }
    const seen = values.get(fi);
    if (seen) {
      err(ctx, child(at, key), `field "${fi.field.name}" given twice (as "${seen.key}" too)`);
      continue;
    }
    values.set(fi, { key, value });
    const fieldAt = child(at, key);
    if (fi.deprecated && isNonDefault(value)) {
      if (fi.disallowedByDefault) {
        err(ctx, fieldAt, `field "${fi.field.name}" is deprecated and disallowed by default`);
      } else {
        warn(ctx, fieldAt, `field "${fi.field.name}" of ${typeName} is deprecated`);
      }
    }
    if (fi.workInProgress && isSet(value)) {
      warn(ctx, fieldAt, `field "${fi.field.name}" is marked work-in-progress`);
    }
    // An Any field is judged by where its message sits (e.g. a listener's transport_socket).
    const isAny = fi.field.resolvedType?.fullName === ".google.protobuf.Any";
    checkFieldValue(
      fi,
      value,
      fieldAt,
      ctx,
      isAny ? slot : { holder: `${typeName}.${fi.field.name}` },
    );
  }

  for (const { oneof, required, members } of info.oneofs) {
    const present = members.filter((m) => isSet(values.get(m)?.value));
    if (present.length > 1) {
      const names = present.map((m) => `"${values.get(m)?.key}"`).join(" and ");
      err(ctx, at, `${names} are both set, but they belong to oneof "${oneof.name}" (at most one)`);
    } else if (present.length === 0 && required) {
      const names = members.map((m) => `"${m.field.name}"`).join(", ");
      err(ctx, at, `one of ${names} is required (oneof "${oneof.name}" in ${typeName})`);
    }
  }

  for (const fi of info.fields) {
    if (!fi.rules) continue;
    const entry = values.get(fi);
    const present = entry !== undefined && isSet(entry.value);
    // Rules of an unset oneof member or proto3 `optional` field are not evaluated by PGV.
    if (!present && (fi.oneof || fi.explicitPresence)) continue;
    applyFieldRules(
      fi,
      fi.rules,
      entry?.value,
      present,
      child(at, entry?.key ?? fi.field.name),
      ctx,
    );
  }

  ctx.visit?.(typeName, obj, at, (field) => {
    const fi = info.byKey.get(field);
    return fi ? values.get(fi)?.value : undefined;
  });
}

function checkFieldValue(fi: FieldInfo, value: unknown, at: string, ctx: Ctx, slot: Slot): void {
  const field = fi.field;
  if (value === null) return; // proto3 JSON: null means "not set"
  if (field instanceof MapField) {
    if (!isDict(value)) {
      err(ctx, at, `expected map (JSON object) for "${field.name}", got ${describe(value)}`);
      return;
    }
    for (const [k, item] of Object.entries(value)) {
      const itemAt = mapChild(at, k);
      if (field.keyType !== "string") parseScalar(field.keyType, k, itemAt, ctx);
      checkElement(field, item, itemAt, ctx, slot);
    }
    return;
  }
  if (field.repeated) {
    if (!Array.isArray(value)) {
      err(ctx, at, `expected array for repeated field "${field.name}", got ${describe(value)}`);
      return;
    }
    value.forEach((item, i) => checkElement(field, item, `${at}[${i}]`, ctx, slot));
    return;
  }
  checkElement(field, value, at, ctx, slot);
}

function checkElement(field: Field, v: unknown, at: string, ctx: Ctx, slot: Slot): void {
  const resolved = field.resolvedType;
  if (resolved instanceof Type) {
    const isValue = stripDot(resolved.fullName) === "google.protobuf.Value";
    if (v === null && !isValue) {
      err(ctx, at, `null is not allowed here`);
      return;
    }
    checkMessage(resolved, v, at, ctx, slot);
  } else if (resolved instanceof Enum) {
    parseEnum(resolved, v, at, ctx);
  } else {
    parseScalar(field.type, v, at, ctx);
  }
}

/** Enum JSON is the value name (or its number); returns the number. */
function parseEnum(e: Enum, v: unknown, at: string, ctx: Ctx): number | undefined {
  const enumName = stripDot(e.fullName);
  if (typeof v === "number" && Number.isInteger(v) && Math.abs(v) < 2 ** 31) return v;
  if (typeof v !== "string") {
    err(ctx, at, `expected ${enumName} value name, got ${describe(v)}`);
    return undefined;
  }
  const num = e.values[v];
  if (num === undefined) {
    const names = Object.keys(e.values);
    const shown = names.length > 12 ? `${names.slice(0, 12).join(", ")}, ...` : names.join(", ");
    err(ctx, at, `unknown enum value "${v}" for ${enumName} (expected one of ${shown})`);
    return undefined;
  }
  const valueOptions: unknown = e.valuesOptions?.[v];
  if (isDict(valueOptions)) {
    if (valueOptions["(envoy.annotations.disallowed_by_default_enum)"] === true) {
      err(ctx, at, `enum value ${v} is deprecated and disallowed by default`);
    } else if (valueOptions["deprecated"] === true) {
      warn(ctx, at, `enum value ${v} of ${enumName} is deprecated`);
    }
  }
  return num;
}

// ---------------------------------------------------------------------------------------------
// protoc-gen-validate rules
// ---------------------------------------------------------------------------------------------

/** A quiet context: values were already type-checked; here they are only parsed again. */
function quiet(): Ctx {
  return { errors: [], warnings: [], api: "vendored" };
}

function asList(v: unknown): unknown[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

function ruleText(kind: string, rules: Dict): string {
  const parts = Object.entries(rules).map(([k, v]) => `${k}: ${JSON.stringify(v)}`);
  return `(validate.rules).${kind} = {${parts.join(", ")}}`;
}

function applyFieldRules(
  fi: FieldInfo,
  rules: Dict,
  raw: unknown,
  present: boolean,
  at: string,
  ctx: Ctx,
): void {
  const field = fi.field;
  if (field instanceof MapField) {
    const map = isDict(raw) ? raw : {};
    const r = dictAt(rules, "map");
    if (!r) return;
    checkCount(ctx, at, Object.keys(map).length, r["min_pairs"], r["max_pairs"], "pair(s)");
    const keyRules = dictAt(r, "keys");
    const valueRules = dictAt(r, "values");
    for (const [k, item] of Object.entries(map)) {
      if (keyRules) applyScalarRules(field.keyType, keyRules, k, `${mapChild(at, k)} (key)`, ctx);
      if (valueRules) applyElementRules(field, valueRules, item, isSet(item), mapChild(at, k), ctx);
    }
    return;
  }
  if (field.repeated) {
    const list = Array.isArray(raw) ? raw : [];
    const r = dictAt(rules, "repeated");
    if (!r) return;
    checkCount(ctx, at, list.length, r["min_items"], r["max_items"], "item(s)");
    if (r["unique"] === true) {
      const seen = new Set<string>();
      list.forEach((item, i) => {
        const keyOf = JSON.stringify(item);
        if (seen.has(keyOf))
          err(ctx, `${at}[${i}]`, `duplicate item ${keyOf} (items must be unique)`);
        seen.add(keyOf);
      });
    }
    const items = dictAt(r, "items");
    if (items)
      list.forEach((item, i) => applyElementRules(field, items, item, true, `${at}[${i}]`, ctx));
    return;
  }
  if (dictAt(rules, "message")?.["required"] === true && !present) {
    err(ctx, at, `required field "${field.name}" is missing`);
    return;
  }
  applyElementRules(field, rules, raw, present, at, ctx);
}

/** The bounds on a repeated field's items or a map's pairs. */
function checkCount(
  ctx: Ctx,
  at: string,
  count: number,
  min: unknown,
  max: unknown,
  unit: string,
): void {
  if (typeof min === "number" && count < min)
    err(ctx, at, `needs at least ${min} ${unit}, got ${count}`);
  if (typeof max === "number" && count > max)
    err(ctx, at, `allows at most ${max} ${unit}, got ${count}`);
}

function applyElementRules(
  field: Field,
  rules: Dict,
  raw: unknown,
  present: boolean,
  at: string,
  ctx: Ctx,
): void {
  const resolved = field.resolvedType;
  if (resolved instanceof Enum) {
    const r = dictAt(rules, "enum");
    if (!r) return;
    const num = present ? parseEnum(resolved, raw, at, quiet()) : 0;
    if (num === undefined) return;
    const label = Object.keys(resolved.values).find((k) => resolved.values[k] === num) ?? `${num}`;
    if (r["defined_only"] === true && !Object.values(resolved.values).includes(num)) {
      err(ctx, at, `enum value ${num} is not defined in ${stripDot(resolved.fullName)}`);
    }
    if (r["const"] !== undefined && num !== r["const"]) {
      err(ctx, at, `enum value ${label} must be ${r["const"]}`);
    }
    const allowed = asList(r["in"]);
    if (allowed.length > 0 && !allowed.includes(num)) {
      err(ctx, at, `enum value ${label} is not allowed (${ruleText("enum", r)})`);
    }
    if (asList(r["not_in"]).includes(num)) {
      err(ctx, at, `enum value ${label} is not allowed here (${ruleText("enum", r)})`);
    }
    return;
  }
  if (resolved instanceof Type) {
    const name = stripDot(resolved.fullName);
    if (name === "google.protobuf.Duration") {
      const r = dictAt(rules, "duration");
      if (!r) return;
      if (r["required"] === true && !present) {
        err(ctx, at, `required Duration "${field.name}" is missing`);
        return;
      }
      if (!present) return;
      const nanos = parseDuration(raw, at, quiet());
      if (nanos !== undefined) checkDurationRules(r, nanos, String(raw), at, ctx);
      return;
    }
    if (name === "google.protobuf.Any") {
      const r = dictAt(rules, "any");
      if (!r) return;
      if (r["required"] === true && !present)
        err(ctx, at, `required Any "${field.name}" is missing`);
      const typeUrl = isDict(raw) ? raw["@type"] : undefined;
      const allowed = asList(r["in"]);
      if (present && allowed.length > 0 && !allowed.includes(typeUrl)) {
        err(ctx, at, `@type ${JSON.stringify(typeUrl)} is not allowed (${ruleText("any", r)})`);
      }
      return;
    }
    if (dictAt(rules, "message")?.["required"] === true && !present) {
      err(ctx, at, `required field "${field.name}" is missing`);
      return;
    }
    const wrapped = WRAPPERS[name];
    if (wrapped && present) applyScalarRules(wrapped, rules, raw, at, ctx);
    return;
  }
  applyScalarRules(field.type, rules, present ? raw : scalarDefault(field.type), at, ctx);
}

function applyScalarRules(kind: string, rules: Dict, raw: unknown, at: string, ctx: Ctx): void {
  const r = dictAt(rules, kind);
  if (!r) return;
  const value = parseScalar(kind, raw, at, quiet());
  if (value === undefined) return;
  if (typeof value === "number") checkNumberRules(kind, r, value, at, ctx);
  else if (typeof value === "string") checkStringRules(r, value, at, ctx);
  else if (typeof value === "boolean") {
    if (r["const"] !== undefined && value !== r["const"]) err(ctx, at, `must be ${r["const"]}`);
  } else checkBytesRules(r, value, at, ctx);
}

function toNumber(v: unknown): number | undefined {
  if (typeof v === "number") return v;
  if (typeof v === "string" && v.trim() !== "" && Number.isFinite(Number(v))) return Number(v);
  return undefined;
}

/**
 * PGV range semantics: with both bounds, lower < upper means "inside", upper < lower means
 * "outside" the range.
 */
function checkRange<T extends number | bigint>(
  r: Dict,
  value: T,
  conv: (x: unknown) => T | undefined,
): boolean {
  const gt = conv(r["gt"]);
  const gte = conv(r["gte"]);
  const lt = conv(r["lt"]);
  const lte = conv(r["lte"]);
  const lower = gt ?? gte;
  const upper = lt ?? lte;
  const lowerOk = gt !== undefined ? value > gt : gte !== undefined ? value >= gte : true;
  const upperOk = lt !== undefined ? value < lt : lte !== undefined ? value <= lte : true;
  if (lower !== undefined && upper !== undefined && upper < lower) return lowerOk || upperOk;
  return lowerOk && upperOk;
}

function checkNumberRules(kind: string, r: Dict, value: number, at: string, ctx: Ctx): void {
  const bad = (what: string) => err(ctx, at, `value ${value} ${what} (${ruleText(kind, r)})`);
  const c = toNumber(r["const"]);
  if (c !== undefined && value !== c) bad(`must equal ${c}`);
  const allowed = asList(r["in"]).map(toNumber);
  if (allowed.length > 0 && !allowed.includes(value)) bad("is not one of the allowed values");
  if (asList(r["not_in"]).map(toNumber).includes(value)) bad("is not allowed");
  if (!checkRange(r, value, toNumber)) {
    const bounds = [
      r["gt"] !== undefined ? `> ${r["gt"]}` : undefined,
      r["gte"] !== undefined ? `>= ${r["gte"]}` : undefined,
      r["lt"] !== undefined ? `< ${r["lt"]}` : undefined,
      r["lte"] !== undefined ? `<= ${r["lte"]}` : undefined,
    ].filter((b) => b !== undefined);
    bad(`must be ${bounds.join(" and ")}`);
  }
}

function durationNanos(v: unknown): bigint | undefined {
  if (!isDict(v)) return undefined;
  const seconds = toNumber(v["seconds"]) ?? 0;
  const nanos = toNumber(v["nanos"]) ?? 0;
  return BigInt(seconds) * 1_000_000_000n + BigInt(nanos);
}

function checkDurationRules(r: Dict, nanos: bigint, shown: string, at: string, ctx: Ctx): void {
  const fmt = (x: unknown) => {
    const n = durationNanos(x);
    return n === undefined ? "?" : `${Number(n) / 1e9}s`;
  };
  const bounds: Dict = {};
  for (const k of ["gt", "gte", "lt", "lte"]) if (r[k] !== undefined) bounds[k] = r[k];
  if (!checkRange(bounds, nanos, durationNanos)) {
    const text = Object.entries(bounds)
      .map(([k, v]) => `${{ gt: ">", gte: ">=", lt: "<", lte: "<=" }[k]} ${fmt(v)}`)
      .join(" and ");
    err(ctx, at, `Duration ${shown} must be ${text} ((validate.rules).duration)`);
  }
  if (r["const"] !== undefined && nanos !== durationNanos(r["const"])) {
    err(ctx, at, `Duration ${shown} must equal ${fmt(r["const"])}`);
  }
}

/**
 * PGV's regexes for HTTP header names/values (strict is the default); non-strict only bans
 * NUL, CR and LF, and allows empty.
 */
function wellKnownRegex(name: unknown, strict: boolean): RegExp | undefined {
  if (name !== "HTTP_HEADER_NAME" && name !== "HTTP_HEADER_VALUE") return undefined;
  if (!strict) return /^[^\0\n\r]*$/;
  // Copied verbatim from PGV, including its "+-." character range.
  return name === "HTTP_HEADER_NAME"
    ? /^:?[0-9a-zA-Z!#$%&'*+-.^_|~`]+$/
    : /^[^\0-\x08\x0A-\x1F\x7F]*$/;
}

function isHostname(s: string): boolean {
  if (s.length > 253) return false;
  const labels = s.replace(/\.$/, "").split(".");
  return labels.every((l) => /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(l));
}

function checkStringRules(r: Dict, s: string, at: string, ctx: Ctx): void {
  if (r["ignore_empty"] === true && s === "") return;
  const bad = (what: string) =>
    err(ctx, at, `${s === "" ? "empty string" : JSON.stringify(s)} ${what}`);
  const chars = [...s].length;
  const bytes = Buffer.byteLength(s, "utf8");
  const n = (k: string) => toNumber(r[k]);
  const minLen = n("min_len");
  const maxLen = n("max_len");
  const len = n("len");
  const minBytes = n("min_bytes");
  const maxBytes = n("max_bytes");
  if (minLen !== undefined && chars < minLen) {
    bad(`is too short: min_len ${minLen}${minLen === 1 ? " (must not be empty)" : ""}`);
  }
  if (maxLen !== undefined && chars > maxLen) bad(`is too long: max_len ${maxLen}`);
  if (len !== undefined && chars !== len) bad(`must have length ${len}`);
  if (minBytes !== undefined && bytes < minBytes) {
    bad(`is too short: min_bytes ${minBytes}${minBytes === 1 ? " (must not be empty)" : ""}`);
  }
  if (maxBytes !== undefined && bytes > maxBytes) bad(`is too long: max_bytes ${maxBytes}`);
  if (r["const"] !== undefined && s !== r["const"]) bad(`must equal ${JSON.stringify(r["const"])}`);
  if (typeof r["prefix"] === "string" && !s.startsWith(r["prefix"])) {
    bad(`must start with ${JSON.stringify(r["prefix"])}`);
  }
  if (typeof r["suffix"] === "string" && !s.endsWith(r["suffix"])) {
    bad(`must end with ${JSON.stringify(r["suffix"])}`);
  }
  if (typeof r["contains"] === "string" && !s.includes(r["contains"])) {
    bad(`must contain ${JSON.stringify(r["contains"])}`);
  }
  if (typeof r["not_contains"] === "string" && s.includes(r["not_contains"])) {
    bad(`must not contain ${JSON.stringify(r["not_contains"])}`);
  }
  const allowed = asList(r["in"]);
  if (allowed.length > 0 && !allowed.includes(s)) {
    bad(`is not one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}`);
  }
  if (asList(r["not_in"]).includes(s)) bad("is not allowed");
  if (typeof r["pattern"] === "string") {
    // PGV uses RE2; the patterns in Envoy's protos are also valid JavaScript regexes.
    let re: RegExp | undefined;
    try {
      re = new RegExp(r["pattern"], "u");
    } catch {
      re = undefined;
    }
    if (re && !re.test(s)) bad(`does not match pattern ${r["pattern"]}`);
  }
  const known = wellKnownRegex(r["well_known_regex"], r["strict"] !== false);
  if (known && !known.test(s)) bad(`is not a valid ${String(r["well_known_regex"])}`);
  if (r["ip"] === true && net.isIP(s) === 0) bad("is not an IP address");
  if (r["ipv4"] === true && !net.isIPv4(s)) bad("is not an IPv4 address");
  if (r["ipv6"] === true && !net.isIPv6(s)) bad("is not an IPv6 address");
  if (r["hostname"] === true && !isHostname(s)) bad("is not a hostname");
  if (r["address"] === true && net.isIP(s) === 0 && !isHostname(s)) {
    bad("is not an IP address or hostname");
  }
}

function checkBytesRules(r: Dict, b: Buffer, at: string, ctx: Ctx): void {
  const n = (k: string) => toNumber(r[k]);
  const minLen = n("min_len");
  const maxLen = n("max_len");
  const len = n("len");
  if (minLen !== undefined && b.length < minLen) err(ctx, at, `needs at least ${minLen} byte(s)`);
  if (maxLen !== undefined && b.length > maxLen) err(ctx, at, `allows at most ${maxLen} byte(s)`);
  if (len !== undefined && b.length !== len) err(ctx, at, `must be exactly ${len} byte(s)`);
}

// ---------------------------------------------------------------------------------------------
// Public validation API
// ---------------------------------------------------------------------------------------------

function rootType(typeName: string, api: EnvoyApi): Type {
  const type = lookupMessage(typeName, api);
  if (!type) throw new Error(`envoy-schema: no message type ${typeName} in the loaded protos`);
  return type;
}

function run(
  typeName: string,
  json: unknown,
  visit?: Visitor,
  api: EnvoyApi = "vendored",
): EnvoyValidationResult {
  const ctx: Ctx = { errors: [], warnings: [], visit, api };
  checkMessage(rootType(typeName, api), json, "", ctx, {});
  return { errors: ctx.errors, warnings: ctx.warnings };
}

/** Validates `json` as message `typeName`; returns errors and (deprecation/WIP) warnings. */
export function validateEnvoyMessageDetailed(
  typeName: string,
  json: unknown,
): EnvoyValidationResult {
  return run(typeName, json);
}

/** Validates `json` as message `typeName`; returns `<path>: <problem>` errors (empty = valid). */
export function validateEnvoyMessage(typeName: string, json: unknown): string[] {
  return run(typeName, json).errors;
}

export function validateBootstrap(json: unknown): string[] {
  return validateEnvoyMessage(BOOTSTRAP_TYPE, json);
}

export function validateBootstrapDetailed(json: unknown): EnvoyValidationResult {
  return validateEnvoyMessageDetailed(BOOTSTRAP_TYPE, json);
}

/** Validates a bootstrap against another API tree (see EnvoyApi). */
export function validateBootstrapWith(api: EnvoyApi, json: unknown): EnvoyValidationResult {
  return run(BOOTSTRAP_TYPE, json, undefined, api);
}

/**
 * A file-based SDS file (path_config_source) is a DiscoveryResponse whose resources are Secret
 * Anys. Like Envoy's SdsApi, it must carry exactly one Secret, named as the sds config expects.
 */
export function validateSdsFileDetailed(
  json: unknown,
  expectedSecretName?: string,
): EnvoyValidationResult {
  const result = run(DISCOVERY_RESPONSE_TYPE, json);
  const resources = isDict(json) ? json["resources"] : undefined;
  if (!Array.isArray(resources)) {
    if (!result.errors.some((e) => e.startsWith("resources:"))) {
      result.errors.push(`resources: missing; an SDS file needs exactly one Secret resource`);
    }
    return result;
  }
  if (resources.length !== 1) {
    result.errors.push(`resources: Envoy expects exactly 1 SDS secret, got ${resources.length}`);
  }
  resources.forEach((resource, i) => {
    if (!isDict(resource)) return;
    const typeUrl = resource["@type"];
    if (typeUrl !== TYPE_URL_PREFIX + SECRET_TYPE) {
      result.errors.push(
        `resources[${i}].@type: expected "${TYPE_URL_PREFIX}${SECRET_TYPE}", got ${describe(typeUrl)}`,
      );
    } else if (expectedSecretName !== undefined && resource["name"] !== expectedSecretName) {
      result.errors.push(
        `resources[${i}].name: Envoy expects secret "${expectedSecretName}", got ${describe(resource["name"])}`,
      );
    }
  });
  return result;
}

export function validateSdsFile(json: unknown, expectedSecretName?: string): string[] {
  return validateSdsFileDetailed(json, expectedSecretName).errors;
}

// ---------------------------------------------------------------------------------------------
// Start-up cross-reference checks
// ---------------------------------------------------------------------------------------------

interface Seen {
  at: string;
  obj: Dict;
  get: (field: string) => unknown;
}

/** Every message object of each type, reached through the schema (so Anys and camelCase work). */
function collect(typeName: string, json: unknown): Map<string, Seen[]> {
  const found = new Map<string, Seen[]>();
  run(typeName, json, (name, obj, at, get) => {
    const list = found.get(name) ?? [];
    list.push({ at, obj, get });
    found.set(name, list);
  });
  return found;
}

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
}

function getField(obj: unknown, snake: string): unknown {
  if (!isDict(obj)) return undefined;
  return obj[snake] ?? obj[lowerCamel(snake)];
}

/** Keys sorted so that two equal filter_chain_match objects compare equal. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  if (isDict(v)) {
    const keys = Object.keys(v).sort();
    return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(v[k])}`).join(",")}}`;
  }
  return JSON.stringify(v) ?? "null";
}

interface BoundSocket {
  at: string;
  owner: string;
  ip?: string;
  pipe?: string;
  port: number;
  protocol: string;
  ipv4Compat: boolean;
}

function boundSocket(address: unknown, at: string, owner: string): BoundSocket | undefined {
  const pipe = getField(address, "pipe");
  if (isDict(pipe) && typeof pipe["path"] === "string") {
    return { at, owner, pipe: pipe["path"], port: 0, protocol: "PIPE", ipv4Compat: false };
  }
  const sa = getField(address, "socket_address");
  if (!isDict(sa)) return undefined;
  const port = toNumber(getField(sa, "port_value"));
  const ip = getField(sa, "address");
  if (port === undefined || typeof ip !== "string") return undefined;
  const protocol = getField(sa, "protocol");
  return {
    at: child(at, "socket_address"),
    owner,
    ip,
    port,
    protocol: typeof protocol === "string" ? protocol : "TCP",
    ipv4Compat: getField(sa, "ipv4_compat") === true,
  };
}

function describeSocket(s: BoundSocket): string {
  if (s.pipe !== undefined) return `pipe ${s.pipe}`;
  return `${s.ip?.includes(":") ? `[${s.ip}]` : s.ip}:${s.port}/${s.protocol}`;
}

function collides(a: BoundSocket, b: BoundSocket): boolean {
  if (a.pipe !== undefined || b.pipe !== undefined) return a.pipe === b.pipe;
  if (a.port === 0 || a.port !== b.port || a.protocol !== b.protocol) return false;
  if (a.ip === b.ip) return true;
  const fa = net.isIP(a.ip ?? "");
  const fb = net.isIP(b.ip ?? "");
  const wildcard = (s: BoundSocket) => s.ip === "0.0.0.0" || s.ip === "::";
  // "::" with ipv4_compat also takes the IPv4 port.
  const v4View = (s: BoundSocket, family: number) =>
    family === 4 || (s.ip === "::" && s.ipv4Compat);
  if (fa === fb) return wildcard(a) || wildcard(b);
  return (
    (v4View(a, fa) && v4View(b, fb) && (wildcard(a) || wildcard(b))) ||
    (a.ip === "::" && a.ipv4Compat && fb === 4) ||
    (b.ip === "::" && b.ipv4Compat && fa === 4)
  );
}

const TERMINAL_NETWORK_FILTERS = new Set([
  "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
  "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
  "envoy.extensions.filters.network.direct_response.v3.Config",
  "envoy.extensions.filters.network.echo.v3.Echo",
  "envoy.extensions.filters.network.redis_proxy.v3.RedisProxy",
  "envoy.extensions.filters.network.thrift_proxy.v3.ThriftProxy",
  "envoy.extensions.filters.network.dubbo_proxy.v3.DubboProxy",
]);
const TERMINAL_HTTP_FILTERS = new Set([
  "envoy.extensions.filters.http.router.v3.Router",
  "envoy.extensions.filters.http.upstream_codec.v3.UpstreamCodec",
]);

function typedConfigName(filter: unknown): string | undefined {
  const typeUrl = getField(getField(filter, "typed_config"), "@type");
  return typeof typeUrl === "string" ? typeUrl.slice(typeUrl.lastIndexOf("/") + 1) : undefined;
}

/** Envoy requires the terminal filter (router, HCM, tcp_proxy, ...) to be last, and only last. */
function checkTerminalOrder(
  filters: unknown,
  terminal: Set<string>,
  at: string,
  kind: string,
  errors: string[],
): void {
  if (!Array.isArray(filters) || filters.length === 0) return;
  filters.forEach((f, i) => {
    const name = typedConfigName(f);
    if (!name) return;
    const last = i === filters.length - 1;
    if (!last && terminal.has(name)) {
      errors.push(`${at}[${i}]: terminal ${kind} ${name} must be the last in the chain`);
    }
    if (last && !terminal.has(name) && lookupMessage(name)) {
      errors.push(`${at}[${i}]: the last ${kind} must be terminal (e.g. a router), got ${name}`);
    }
  });
}

/**
 * The checks Envoy makes when it starts with this bootstrap, beyond the schema: names resolve,
 * names are unique, sockets do not collide, filters are in a workable order.
 */
export function checkBootstrapReferences(bootstrap: unknown): string[] {
  const errors: string[] = [];
  const seen = collect(BOOTSTRAP_TYPE, bootstrap);
  const all = (name: string) => seen.get(name) ?? [];
  const statics = getField(bootstrap, "static_resources");

  // Unique names (listeners, clusters, secrets).
  const names = (list: unknown, at: string, kind: string): Map<string, string> => {
    const byName = new Map<string, string>();
    if (!Array.isArray(list)) return byName;
    list.forEach((item, i) => {
      const name = getField(item, "name");
      if (typeof name !== "string" || name === "") return;
      const first = byName.get(name);
      if (first) errors.push(`${at}[${i}].name: duplicate ${kind} name "${name}" (also ${first})`);
      else byName.set(name, `${at}[${i}]`);
    });
    return byName;
  };
  const listeners = getField(statics, "listeners");
  const clusters = getField(statics, "clusters");
  names(listeners, "static_resources.listeners", "listener");
  const clusterNames = names(clusters, "static_resources.clusters", "cluster");
  const secretNames = names(getField(statics, "secrets"), "static_resources.secrets", "secret");

  // Cluster references. With CDS, clusters may legitimately arrive later.
  const hasCds = getField(getField(bootstrap, "dynamic_resources"), "cds_config") !== undefined;
  const known = [...clusterNames.keys()].join(", ") || "none";
  const refCluster = (name: unknown, at: string) => {
    if (typeof name === "string" && name !== "" && !clusterNames.has(name)) {
      errors.push(
        `${at}: cluster "${name}" is not defined in static_resources.clusters (known: ${known})`,
      );
    }
  };
  if (!hasCds) {
    const refs: [string, string][] = [
      ["envoy.config.route.v3.RouteAction", "cluster"],
      ["envoy.config.route.v3.WeightedCluster.ClusterWeight", "name"],
      ["envoy.config.route.v3.RouteAction.RequestMirrorPolicy", "cluster"],
      ["envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy", "cluster"],
      [
        "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.WeightedCluster.ClusterWeight",
        "name",
      ],
      ["envoy.config.core.v3.HttpUri", "cluster"],
    ];
    for (const [typeName, field] of refs) {
      for (const s of all(typeName)) refCluster(s.get(field), child(s.at, field));
    }
  }
  // xDS/gRPC services must point at a static cluster even with CDS.
  for (const s of all("envoy.config.core.v3.GrpcService.EnvoyGrpc")) {
    refCluster(s.get("cluster_name"), child(s.at, "cluster_name"));
  }

  // Secrets referenced by name without an sds_config must be static secrets.
  for (const s of all("envoy.extensions.transport_sockets.tls.v3.SdsSecretConfig")) {
    const name = s.get("name");
    if (s.get("sds_config") === undefined && typeof name === "string" && !secretNames.has(name)) {
      errors.push(`${child(s.at, "name")}: unknown static secret "${name}" (no sds_config given)`);
    }
  }

  // Bound sockets: listeners (with their additional addresses) and the admin listener.
  const sockets: BoundSocket[] = [];
  const adminAddress = getField(getField(bootstrap, "admin"), "address");
  const admin = boundSocket(adminAddress, "admin.address", "admin");
  if (admin) sockets.push(admin);
  if (Array.isArray(listeners)) {
    listeners.forEach((l, i) => {
      const at = `static_resources.listeners[${i}]`;
      if (getField(l, "address") === undefined && getField(l, "api_listener") === undefined) {
        errors.push(`${at}: listener has no address (Envoy: "address is necessary")`);
      }
      if (getField(l, "bind_to_port") === false) return;
      const main = boundSocket(getField(l, "address"), `${at}.address`, at);
      if (main) sockets.push(main);
      const extra = getField(l, "additional_addresses");
      if (Array.isArray(extra)) {
        extra.forEach((a, j) => {
          const s = boundSocket(
            getField(a, "address"),
            `${at}.additional_addresses[${j}].address`,
            at,
          );
          if (s) sockets.push(s);
        });
      }
    });
  }
  sockets.forEach((s, i) => {
    const clash = sockets.slice(0, i).find((o) => o.owner !== s.owner && collides(o, s));
    if (clash) {
      errors.push(
        `${s.at}: ${describeSocket(s)} collides with ${clash.at} (${describeSocket(clash)}); ` +
          `Envoy cannot bind both`,
      );
    }
    // Without a resolver, Envoy parses listener/admin addresses as IP literals only.
    if (s.ip !== undefined && net.isIP(s.ip) === 0) {
      errors.push(`${s.at}.address: "${s.ip}" is not an IP address (listeners bind IP literals)`);
    }
  });

  // STATIC clusters' endpoints are IP literals too; LOGICAL_DNS takes exactly one endpoint.
  if (Array.isArray(clusters)) {
    clusters.forEach((c, i) => {
      // The DNS cluster extension (cluster_type envoy.cluster.dns) is strict or logical DNS by
      // all_addresses_in_single_endpoint; another cluster_type is a custom cluster, not checked.
      const custom = getField(c, "cluster_type");
      const dns = getField(custom, "typed_config");
      const type =
        custom === undefined
          ? (getField(c, "type") ?? "STATIC")
          : getField(custom, "name") === "envoy.cluster.dns"
            ? getField(dns, "all_addresses_in_single_endpoint") === true
              ? "LOGICAL_DNS"
              : "STRICT_DNS"
            : "CUSTOM";
      const localities = getField(getField(c, "load_assignment"), "endpoints");
      if (!Array.isArray(localities)) return;
      const at = `static_resources.clusters[${i}].load_assignment.endpoints`;
      const lbEndpoints = localities.flatMap((loc, j) => {
        const list = getField(loc, "lb_endpoints");
        return Array.isArray(list)
          ? list.map((ep, k) => ({ ep, at: `${at}[${j}].lb_endpoints[${k}]` }))
          : [];
      });
      if (type === "STATIC" || type === 0) {
        for (const { ep, at: epAt } of lbEndpoints) {
          const sa = getField(getField(getField(ep, "endpoint"), "address"), "socket_address");
          const ip = getField(sa, "address");
          if (typeof ip === "string" && net.isIP(ip) === 0 && !getField(sa, "resolver_name")) {
            errors.push(
              `${epAt}.endpoint.address.socket_address.address: "${ip}" is not an IP address ` +
                `(STATIC clusters need IPs; use DNS discovery for host names)`,
            );
          }
        }
      }
      if ((type === "LOGICAL_DNS" || type === 2) && lbEndpoints.length !== 1) {
        errors.push(
          `${at}: LOGICAL_DNS clusters need exactly one endpoint, got ${lbEndpoints.length}`,
        );
      }
    });
  }

  // Per listener: filter chains must differ in their match; terminal network filter last.
  for (const l of all("envoy.config.listener.v3.Listener")) {
    const chains = l.get("filter_chains");
    if (!Array.isArray(chains)) continue;
    const matches = new Map<string, number>();
    chains.forEach((chain, i) => {
      const key = canonical(getField(chain, "filter_chain_match") ?? {});
      const first = matches.get(key);
      if (first !== undefined) {
        errors.push(
          `${child(l.at, "filter_chains")}[${i}].filter_chain_match: same matching rules as ` +
            `filter_chains[${first}] (Envoy rejects duplicate filter chain matches)`,
        );
      } else matches.set(key, i);
    });
  }
  for (const fc of all("envoy.config.listener.v3.FilterChain")) {
    checkTerminalOrder(
      fc.get("filters"),
      TERMINAL_NETWORK_FILTERS,
      child(fc.at, "filters"),
      "network filter",
      errors,
    );
  }
  for (const hcm of all(
    "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
  )) {
    checkTerminalOrder(
      hcm.get("http_filters"),
      TERMINAL_HTTP_FILTERS,
      child(hcm.at, "http_filters"),
      "HTTP filter",
      errors,
    );
  }

  // Virtual host domains must be unique within a route configuration.
  for (const rc of all("envoy.config.route.v3.RouteConfiguration")) {
    const vhosts = rc.get("virtual_hosts");
    if (!Array.isArray(vhosts)) continue;
    const domains = new Map<string, string>();
    vhosts.forEach((vh, i) => {
      strings(getField(vh, "domains")).forEach((d, j) => {
        const at = `${child(rc.at, "virtual_hosts")}[${i}].domains[${j}]`;
        const first = domains.get(d.toLowerCase());
        if (first) errors.push(`${at}: duplicate domain "${d}" (also ${first})`);
        else domains.set(d.toLowerCase(), at);
      });
    });
  }
  return errors;
}

/**
 * Every file the config makes Envoy read: DataSource `filename`s (certificates, keys, CAs, ...),
 * path_config_source `path`s, `watched_directory.path`s, runtime disk layers. Works on a
 * bootstrap or (auto-detected by its `resources` array) on an SDS DiscoveryResponse file.
 */
export function referencedFiles(json: unknown, typeName?: string): string[] {
  const effective =
    typeName ??
    (isDict(json) && Array.isArray(json["resources"]) && !("static_resources" in json)
      ? DISCOVERY_RESPONSE_TYPE
      : BOOTSTRAP_TYPE);
  const seen = collect(effective, json);
  const files = new Set<string>();
  const add = (typeName: string, field: string) => {
    for (const s of seen.get(typeName) ?? []) {
      const value = s.get(field);
      if (typeof value === "string" && value !== "") files.add(value);
    }
  };
  add("envoy.config.core.v3.DataSource", "filename");
  add("envoy.config.core.v3.WatchedDirectory", "path");
  add("envoy.config.core.v3.PathConfigSource", "path");
  add("envoy.config.core.v3.ConfigSource", "path"); // deprecated spelling of path_config_source
  add("envoy.config.bootstrap.v3.RuntimeLayer.DiskLayer", "symlink_root");
  return [...files].sort();
}
