// Runs a plugin module's functions as weir would, for node's test runner:
// init, prepare, then rows.
//
//   import "./plugin.js";
//   import { run } from "./weir/testing.js";
//   test("lowercases", () => {
//     assert.deepStrictEqual(run([{ email: "A@B.ORG" }], { config: { columns: ["email"] } }), [{ email: "a@b.org" }]);
//   });
//
// Rows are objects; the table's columns are their keys unless `columns` names them
// (["id int8", "email text"], like `weir plugin test` samples). What comes back is
// the rows that pass, as objects of every column (and the routing keys a map set).
import { Table, callInit, callPrepare, callRows } from "./weir.js";

export function run(rows, { config = {}, table = "public.sample", columns = null } = {}) {
  callInit(JSON.stringify(config));
  const dot = table.lastIndexOf(".");
  const schema = dot < 0 ? "public" : table.slice(0, dot);
  const name = table.slice(dot + 1);
  let declared;
  if (columns === null) {
    const keys = [];
    for (const row of rows) for (const key of Object.keys(row)) if (!keys.includes(key)) keys.push(key);
    declared = keys.map((key) => ({ name: key, pgType: "", nullable: true }));
  } else {
    declared = columns.map((c) => {
      const [columnName, pgType = ""] = c.split(/ (.*)/s);
      return { name: columnName, pgType, nullable: true };
    });
  }
  const plan = callPrepare(new Table(schema, name, declared));
  if (!plan.wants) return rows.map((row) => ({ ...row }));
  const values = rows.map((row) => plan.names.map((n) => (n in row ? row[n] : null)));
  const answer = callRows(plan, values);
  if (answer.selection) return rows.filter((_, i) => answer.selection[i]).map((row) => ({ ...row }));
  return rows.map((row, r) => {
    const merged = { ...row };
    plan.names.forEach((n, i) => (merged[n] = answer.replaced[r][i]));
    plan.routing.forEach((n, i) => {
      const value = answer.replaced[r][plan.names.length + i];
      if (value !== undefined && value !== null) merged[n] = value;
    });
    return merged;
  });
}
