import { test } from "node:test";
import assert from "node:assert/strict";

import "./plugin.js";
import { run } from "./testing.js";
import { InvalidConfig, InvalidInput } from "./weir.js";

const config = {
  target: "profile",
  fields: { "customer.email": "email", "customer.name": "name", "address.city": "city", total: "total" },
  numbers: ["total"],
};

test("gathers columns into a nested document", () => {
  const [row] = run([{ id: 1, email: "ann@example.org", name: "Ann", city: "Leeds", total: "12.50", profile: null }], { config });
  assert.deepEqual(JSON.parse(row.profile), {
    customer: { email: "ann@example.org", name: "Ann" },
    address: { city: "Leeds" },
    total: 12.5,
  });
  assert.equal(row.email, "ann@example.org", "sources stay in the row");
});

test("merges into what the target holds and leaves nulls out", () => {
  const [row] = run([{ email: "bob@example.org", name: null, city: null, total: null, profile: '{"tier":"gold","customer":{"id":9}}' }], { config });
  assert.deepEqual(JSON.parse(row.profile), { tier: "gold", customer: { id: 9, email: "bob@example.org" } });
});

test("a target that is not a JSON object is refused", () => {
  assert.throws(() => run([{ email: "x@y.z", profile: "[1,2]" }], { config }), InvalidInput);
  assert.throws(() => run([{ email: "x@y.z", profile: "not json" }], { config }), InvalidInput);
});

test("the old image gets its own document", () => {
  const [row] = run([{ email: "new@x.org", profile: null, "_before.email": "old@x.org", "_before.profile": null }], { config });
  assert.deepEqual(JSON.parse(row["_before.profile"]), { customer: { email: "old@x.org" } });
});

test("tables without the target pass untouched", () => {
  const rows = [{ id: 1, email: "a@b.c" }];
  assert.deepEqual(run(rows, { config }), rows);
});

test("bad config is refused", () => {
  assert.throws(() => run([], { config: { fields: { a: "b" } } }), InvalidConfig);
  assert.throws(() => run([], { config: { target: "t", fields: {} } }), InvalidConfig);
  assert.throws(() => run([], { config: { target: "t", fields: { "a..b": "c" } } }), InvalidConfig);
});

test("bytes travel as base64", () => {
  const [row] = run([{ email: new Uint8Array([104, 105, 33, 255]), profile: null }], { config: { target: "profile", fields: { raw: "email" } } });
  assert.deepEqual(JSON.parse(row.profile), { raw: "aGkh/w==" });
});
