// The component's entry module: adapts the plugin (./plugin.js) to weir's
// `row-plugin` world. It converts WIT values to JavaScript values and back; a value
// the function left as it was goes back as the very WIT value that came in.
import { log as hostLog } from "weir:plugin/host@0.1.0";
import "./plugin.js";
import { PluginError, Table, callInit, callPrepare, callRows, log } from "./weir.js";

log.sink = (level, message) => hostLog(level, String(message));

// Prepared tables, by the id weir gave them.
const plans = new Map();

function fail(error) {
  if (error instanceof PluginError) return { tag: error.kind, val: error.message };
  return { tag: "failed", val: `${error?.name ?? "Error"}: ${error?.message ?? error}` };
}

function guarded(call) {
  try {
    return call();
  } catch (error) {
    throw fail(error);
  }
}

const MICROS_PER_MS = 1000n;
const MS_PER_DAY = 86_400_000;

function toJs(value) {
  switch (value.tag) {
    case "null":
      return null;
    case "int":
    case "uint": {
      const n = value.val;
      return n >= -9007199254740991n && n <= 9007199254740991n ? Number(n) : n;
    }
    case "timestamp":
      return new Date(Number(value.val / MICROS_PER_MS));
    case "date":
      return new Date(value.val * MS_PER_DAY);
    default:
      return value.val;
  }
}

function toWit(value, like) {
  if (value === null || value === undefined) return { tag: "null" };
  switch (typeof value) {
    case "string":
      return { tag: "text", val: value };
    case "boolean":
      return { tag: "boolean", val: value };
    case "bigint":
      return like === "uint" && value >= 0n ? { tag: "uint", val: value } : { tag: "int", val: value };
    case "number":
      if (Number.isInteger(value) && like !== "float") {
        return like === "uint" && value >= 0 ? { tag: "uint", val: BigInt(value) } : { tag: "int", val: BigInt(value) };
      }
      return { tag: "float", val: value };
    default:
      break;
  }
  if (value instanceof Uint8Array) return { tag: "bytes", val: value };
  if (value instanceof Date) {
    if (like === "date") return { tag: "date", val: Math.floor(value.getTime() / MS_PER_DAY) };
    return { tag: "timestamp", val: BigInt(value.getTime()) * MICROS_PER_MS };
  }
  if (typeof value === "object") return { tag: "text", val: JSON.stringify(value) };
  return { tag: "text", val: String(value) };
}

export const row = {
  init(config) {
    guarded(() => callInit(config));
  },

  prepare(id, info) {
    const columns = info.columns.map((c) => ({ name: c.name, pgType: c.pgType, nullable: c.nullable }));
    const plan = guarded(() => callPrepare(new Table(info.schema, info.name, columns)));
    plans.set(id, plan);
    return { columns: plan.wants ? plan.names : [], routing: plan.routing, wantsTable: plan.wants };
  },

  process(id, rows) {
    const plan = plans.get(id);
    if (!plan) throw { tag: "failed", val: `table ${id} was never prepared` };
    const values = rows.map((r) => r.map(toJs));
    const answer = guarded(() => callRows(plan, values));
    if (answer.selection) return { tag: "selection", val: answer.selection };
    const width = plan.names.length;
    const replaced = answer.replaced.map((out, r) => {
      const original = rows[r];
      const before = values[r];
      return out.map((value, i) => {
        if (i >= width) return toWit(value, "text");
        return value === before[i] ? original[i] : toWit(value, original[i].tag);
      });
    });
    return { tag: "replaced", val: replaced };
  },
};
