import { test } from "node:test";
import assert from "node:assert/strict";

import "./plugin.js";
import { run } from "./testing.js";
import { InvalidConfig } from "./weir.js";

test("lowercases the named columns only", () => {
  const rows = [{ id: 1, customer_email: "Ann@Example.org", status: "PAID" }];
  assert.deepEqual(run(rows, { config: { columns: ["customer_email"] } }), [
    { id: 1, customer_email: "ann@example.org", status: "PAID" },
  ]);
});

test("config without columns is refused", () => {
  assert.throws(() => run([], { config: {} }), InvalidConfig);
});
