// Validate an AsyncAPI document the way `asyncapi validate` does (@asyncapi/parser with
// its default rules). Usage: node validate-asyncapi.mjs <file>. Exit 1 on any error.
import { readFileSync } from "node:fs";
import { Parser } from "@asyncapi/parser";

const file = process.argv[2];
const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(file, "utf8"), { source: file });
const errors = diagnostics.filter((d) => d.severity === 0);
for (const d of diagnostics) {
  console.log(`${["error", "warning", "info", "hint"][d.severity]} ${d.code} ${d.path.join(".")}: ${d.message}`);
}
if (!document || errors.length > 0) {
  console.error(`invalid: ${errors.length} error(s)`);
  process.exit(1);
}
console.log("valid");
