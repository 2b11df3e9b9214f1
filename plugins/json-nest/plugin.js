// json-nest: gathers flat columns into one nested JSON document, the shape
// document stores and APIs downstream want, written to a json, jsonb or text column.
//
//   config:
//     target: profile                 # the column the document is written to
//     fields:                         # dotted path in the document: source column
//       customer.email: email
//       customer.name: name
//       address.city: city
//     merge: true                     # keep what the target already holds (default true)
//     numbers: [total]                # numeric columns written as JSON numbers
//
// A null source column leaves its path out; a row with none of them keeps its
// target as it was. With `merge`, the target's own JSON (an
// object) is the base and the fields are set into it; a target holding anything else
// is an invalid-input error. Source columns are only read: they stay in the row. The
// old row image gets the same document built from its own columns.
import { init, prepare, map, InvalidConfig, InvalidInput, log } from "./weir.js";

let settings = null;

init((config) => {
  const { target, fields, merge = true, numbers = [] } = config;
  if (typeof target !== "string" || target === "") throw new InvalidConfig("target must name a column");
  if (fields === null || typeof fields !== "object" || Array.isArray(fields) || Object.keys(fields).length === 0) {
    throw new InvalidConfig("fields must map dotted paths to column names");
  }
  const paths = [];
  for (const [path, column] of Object.entries(fields)) {
    const parts = path.split(".");
    if (parts.some((part) => part === "")) throw new InvalidConfig(`path ${JSON.stringify(path)} has an empty segment`);
    if (typeof column !== "string") throw new InvalidConfig(`fields.${path} must name a column`);
    paths.push({ parts, column });
  }
  if (!Array.isArray(numbers)) throw new InvalidConfig("numbers must be a list of column names");
  settings = { target, paths, merge: Boolean(merge), numbers: new Set(numbers) };
  log.info(`json-nest: ${paths.length} field(s) into ${target}`);
});

prepare((table) => {
  if (!table.column(settings.target)) return [];
  const sources = settings.paths.map((p) => p.column);
  return table.withBefore([settings.target, ...sources]);
});

function setPath(document, parts, value) {
  let node = document;
  for (const part of parts.slice(0, -1)) {
    if (node[part] === null || typeof node[part] !== "object" || Array.isArray(node[part])) node[part] = {};
    node = node[part];
  }
  node[parts[parts.length - 1]] = value;
}

const BASE64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// bytea as base64 (the component's runtime has no Buffer).
function base64(bytes) {
  let out = "";
  for (let i = 0; i < bytes.length; i += 3) {
    const n = (bytes[i] << 16) | ((bytes[i + 1] ?? 0) << 8) | (bytes[i + 2] ?? 0);
    out += BASE64[(n >> 18) & 63] + BASE64[(n >> 12) & 63];
    out += i + 1 < bytes.length ? BASE64[(n >> 6) & 63] : "=";
    out += i + 2 < bytes.length ? BASE64[n & 63] : "=";
  }
  return out;
}

function jsonValue(column, value) {
  if (value instanceof Date) return value.toISOString();
  if (typeof value === "bigint") return value.toString();
  if (value instanceof Uint8Array) return base64(value);
  if (settings.numbers.has(column) && typeof value === "string" && value.trim() !== "" && Number.isFinite(Number(value))) {
    return Number(value);
  }
  return value;
}

function build(row, prefix, table) {
  const targetName = prefix + settings.target;
  if (!(targetName in row)) return;
  let document = {};
  const existing = row[targetName];
  if (settings.merge && existing !== null && existing !== undefined) {
    try {
      document = typeof existing === "string" ? JSON.parse(existing) : existing;
    } catch {
      throw new InvalidInput(`${table.qualified}.${targetName} does not hold JSON`);
    }
    if (document === null || typeof document !== "object" || Array.isArray(document)) {
      throw new InvalidInput(`${table.qualified}.${targetName} holds JSON that is not an object`);
    }
  }
  let any = false;
  for (const { parts, column } of settings.paths) {
    const value = row[prefix + column];
    if (value === null || value === undefined) continue;
    setPath(document, parts, jsonValue(column, value));
    any = true;
  }
  // A row without any of the source values (or an old image without them, as a
  // delete has with the default replica identity) keeps its target as it was.
  if (any) row[targetName] = JSON.stringify(document);
}

map((row, table) => {
  build(row, "", table);
  build(row, "_before.", table);
});
