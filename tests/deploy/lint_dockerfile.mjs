// Lints a Dockerfile with dockerfile-utils (the validator behind VS Code's Dockerfile
// support): unknown instructions, malformed EXPOSE/HEALTHCHECK/STOPSIGNAL/COPY flags,
// duplicate or misplaced instructions. Warnings fail too. Before the real file, a
// deliberately broken one must be refused, so a linter that accepts everything is caught.
//   node lint_dockerfile.mjs DOCKERFILE
import { readFileSync } from "node:fs";
import { validate } from "dockerfile-utils";

const severity = { 1: "error", 2: "warning", 3: "information", 4: "hint" };

function problems(text) {
  return validate(text).filter((d) => d.severity <= 2);
}

const broken = "FROM debian:bookworm-slim\nEXPOSE tern\nSTOPSIGNAL\nHEALTHCHECK CMD\nCOPYY a b\n";
if (problems(broken).length < 4) {
  console.log("FAIL: self-check: the linter let a broken Dockerfile through");
  process.exit(1);
}

const path = process.argv[2];
const text = readFileSync(path, "utf8");
const found = problems(text);
for (const d of found) {
  const line = text.split("\n")[d.range.start.line];
  console.log(`${path}:${d.range.start.line + 1}: ${severity[d.severity]}: ${d.message}\n    ${line}`);
}
if (found.length > 0) {
  console.log(`FAIL: ${found.length} problem(s)`);
  process.exit(1);
}
console.log(`ok: ${path}: no errors or warnings from dockerfile-utils`);
