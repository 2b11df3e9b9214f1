// {{name}}: a weir plugin in JavaScript. As generated it lowercases the text
// columns named in its config (and their old images), e.g.
// {"columns": ["customer_email"]}. Change the three functions to make it yours.
import { init, prepare, map, log, InvalidConfig } from "./weir.js";

let columns = [];

init((config) => {
  if (!Array.isArray(config.columns) || config.columns.length === 0 || !config.columns.every((c) => typeof c === "string")) {
    throw new InvalidConfig('config needs {"columns": ["name", ...]}');
  }
  columns = config.columns;
  log.info(`{{name}}: lowercasing ${columns.join(", ")}`);
});

// Read only these (weir sends nothing else); an empty list skips the table.
prepare((table) => table.withBefore(columns));

map((row) => {
  for (const [name, value] of Object.entries(row)) {
    if (typeof value === "string") row[name] = value.toLowerCase();
  }
});
