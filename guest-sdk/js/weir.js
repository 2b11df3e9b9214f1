// weir's JavaScript plugin SDK: a plugin is a function over a row object.
//
// A plugin module (plugin.js) registers one `map` or one `filter`, and optionally
// `init` (the stage's config, parsed) and `prepare` (which columns a table's rows
// carry):
//
//   import { map } from "./weir.js";
//   map((row, table) => { row.email = row.email?.toLowerCase(); });
//
// Nothing here touches the component bindings, so the same module runs under node's
// test runner (see testing.js) and inside weir (component.js adapts it to the
// `row-plugin` world of weir:plugin).
//
// Values a row holds: null, booleans, numbers (integers beyond 2^53 as BigInt),
// strings, Uint8Array, Date for timestamps and dates. numeric, json, uuid, arrays and
// the other PostgreSQL types arrive as their text form; a map may write an object or
// array back to such a column and it is sent as JSON text.

/** A failed call: weir applies the stage's `on_error` policy to it. */
export class PluginError extends Error {
  get kind() {
    return "failed";
  }
}

/** The stage's config is unusable (throw it from `init`). */
export class InvalidConfig extends PluginError {
  get kind() {
    return "invalid-config";
  }
}

/** This table or row cannot be handled (a missing column, a value of the wrong type). */
export class InvalidInput extends PluginError {
  get kind() {
    return "invalid-input";
  }
}

const registry = { init: null, prepare: null, map: null, filter: null, routing: [] };
const ROUTING = ["_topic", "_key", "_partition"];

/** Registers `fn(config)`, called once with the stage's config (parsed JSON). */
export function init(fn) {
  registry.init = fn;
  return fn;
}

/**
 * Registers `fn(table) -> column names | null`, called once per table and schema
 * version. null reads every column; an empty array skips the table (its rows pass
 * unchanged, uncalled). Without it, every column is read.
 */
export function prepare(fn) {
  registry.prepare = fn;
  return fn;
}

/**
 * Registers `fn(row, table) -> row | undefined` over each row: change `row` in place
 * or return a new object. `options.routing` names the routing columns the map sets
 * (`_topic`, `_key`, `_partition`).
 */
export function map(fn, options = {}) {
  const routing = options.routing ?? [];
  for (const name of routing) {
    if (!ROUTING.includes(name)) {
      throw new Error(`routing column ${name} is not one of ${ROUTING.join(", ")}`);
    }
  }
  if (registry.filter) throw new Error("a plugin registers one map or one filter, not both");
  registry.map = fn;
  registry.routing = [...routing];
  return fn;
}

/** Registers `fn(row, table) -> boolean`: rows for which it is false are dropped. */
export function filter(fn) {
  if (registry.map) throw new Error("a plugin registers one map or one filter, not both");
  registry.filter = fn;
  return fn;
}

const consoleSink = (level, message) => {
  const write = level === "error" ? console.error : level === "warn" ? console.warn : console.log;
  write(`[${level}] ${message}`);
};

/** Messages for weir's log (target `weir::plugin`, tagged with the stage). */
export const log = {
  sink: consoleSink,
  trace: (message) => log.sink("trace", message),
  debug: (message) => log.sink("debug", message),
  info: (message) => log.sink("info", message),
  warn: (message) => log.sink("warn", message),
  error: (message) => log.sink("error", message),
};

/** A table's schema version: `{ schema, name, columns: [{ name, pgType, nullable }] }`. */
export class Table {
  constructor(schema, name, columns) {
    this.schema = schema;
    this.name = name;
    this.columns = columns;
  }

  get qualified() {
    return `${this.schema}.${this.name}`;
  }

  column(name) {
    return this.columns.find((column) => column.name === name) ?? null;
  }

  /** The named columns and their old images (`_before.<name>`) that this table has. */
  withBefore(names) {
    const present = new Set(this.columns.map((column) => column.name));
    return names.flatMap((name) => [name, `_before.${name}`]).filter((name) => present.has(name));
  }
}

// --- the dispatch both the component and the test runner use --------------------

function requireFunction() {
  if (!registry.map && !registry.filter) {
    throw new PluginError("the plugin registered neither a map nor a filter (map() / filter() of weir.js)");
  }
}

export function callInit(configJson) {
  requireFunction();
  let config;
  try {
    config = configJson ? JSON.parse(configJson) : {};
  } catch (error) {
    throw new InvalidConfig(`config is not JSON: ${error.message}`);
  }
  if (!registry.init) return;
  try {
    registry.init(config);
  } catch (error) {
    if (error instanceof PluginError) throw error;
    throw new InvalidConfig(String(error?.message ?? error));
  }
}

export function callPrepare(table) {
  let names = null;
  if (registry.prepare) {
    const chosen = registry.prepare(table);
    if (chosen != null) {
      const order = new Map(table.columns.map((column, i) => [column.name, i]));
      names = [...chosen];
      for (const name of names) {
        if (!order.has(name)) throw new InvalidInput(`table ${table.qualified} has no column ${name}`);
      }
      // weir sends the read columns in the table's order.
      names.sort((a, b) => order.get(a) - order.get(b));
    }
  }
  const wants = names === null || names.length > 0;
  if (names === null) names = table.columns.map((column) => column.name);
  return { table, names, routing: registry.map ? registry.routing : [], wants };
}

/**
 * Runs the function over rows (arrays of values in `plan.names` order). Returns
 * `{ selection: [bool] }` for a filter, `{ replaced: [array] }` for a map: each array
 * holds the read columns, then the plan's routing values (undefined when unset).
 */
export function callRows(plan, rows) {
  const { names, table, routing } = plan;
  const toObject = (row) => {
    const object = {};
    for (let i = 0; i < names.length; i++) object[names[i]] = row[i];
    return object;
  };
  if (registry.filter) {
    return { selection: rows.map((row) => Boolean(registry.filter(toObject(row), table))) };
  }
  const replaced = rows.map((row) => {
    let object = toObject(row);
    const result = registry.map(object, table);
    if (result !== undefined && result !== null) object = result;
    const out = names.map((name, i) => (name in object ? object[name] : row[i]));
    for (const name of routing) out.push(object[name]);
    return out;
  });
  return { replaced };
}
