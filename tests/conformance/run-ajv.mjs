// A second, independent implementation of the conformance contract (see README.md):
// the npm `yaml` package reads YAML 1.2, ajv validates against the JSON Schema.
//
//   node tests/conformance/run-ajv.mjs cases MANIFEST
//       one line of JSON: [{"file", "verdict": "parse-error" | "invalid" | "valid", "detail"}]
//   node tests/conformance/run-ajv.mjs instances SCHEMA FILE.json
//       FILE.json holds a JSON array of instances; one line of JSON: [true | false, ...]
import { readFileSync } from "node:fs";
import { dirname, resolve } from "node:path";
import Ajv2020 from "ajv/dist/2020.js";
import { isMap, isPair, isScalar, isSeq, parseAllDocuments, visit } from "yaml";

const CORE_TAGS = new Set(
  ["str", "int", "float", "bool", "null", "seq", "map"].map((t) => `tag:yaml.org,2002:${t}`),
);

class ParseError extends Error {}

function keyText(node) {
  // A plain scalar key is its text, as in JSON (`1.0:` is the key "1.0", not "1").
  return typeof node.value === "string" ? node.value : String(node.source ?? node.value);
}

function sameKey(a, b) {
  return isScalar(a) && isScalar(b) ? keyText(a) === keyText(b) : a === b;
}

// YAML 1.2 (core schema) to JSON data, with the parse-stage rules of the contract.
export function parseYaml(text) {
  const docs = parseAllDocuments(text, { version: "1.2", schema: "core", uniqueKeys: sameKey });
  if (!Array.isArray(docs)) throw new ParseError(String(docs.errors?.[0]?.message ?? "cannot parse"));
  if (docs.length > 1) throw new ParseError("more than one YAML document");
  if (docs.length === 0) return null;
  const doc = docs[0];
  const problem = doc.errors[0] ?? doc.warnings[0];
  if (problem) throw new ParseError(problem.message);
  visit(doc, {
    Pair(_, pair) {
      if (!isScalar(pair.key)) throw new ParseError("a mapping key must be a scalar");
      pair.key.value = keyText(pair.key);
    },
    Node(_, node) {
      if (node.tag && !CORE_TAGS.has(node.tag)) throw new ParseError(`unsupported tag ${node.tag}`);
      if (isScalar(node) && typeof node.value === "number" && !Number.isFinite(node.value)) {
        throw new ParseError(`${node.source} is not a finite number`);
      }
    },
  });
  return doc.toJS({ maxAliasCount: -1 });
}

export function compile(schemaPath) {
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  // An annotation for editors (the message yaml-language-server shows); it never changes a verdict.
  ajv.addKeyword({ keyword: "errorMessage", schemaType: "string" });
  return ajv.compile(JSON.parse(readFileSync(schemaPath, "utf8")));
}

function runCases(manifestPath) {
  const manifest = JSON.parse(readFileSync(manifestPath, "utf8"));
  const base = dirname(resolve(manifestPath));
  const validate = compile(resolve(base, manifest.schema));
  return manifest.cases.map(({ file }) => {
    let data;
    try {
      data = parseYaml(readFileSync(resolve(base, file), "utf8"));
    } catch (err) {
      if (!(err instanceof ParseError) && err.name !== "YAMLParseError") throw err;
      return { file, verdict: "parse-error", detail: err.message };
    }
    const ok = validate(data);
    const detail = ok ? "" : validate.errors.map((e) => `${e.instancePath || "/"} ${e.message}`).join("; ");
    return { file, verdict: ok ? "valid" : "invalid", detail };
  });
}

function runInstances(schemaPath, instancesPath) {
  const validate = compile(schemaPath);
  return JSON.parse(readFileSync(instancesPath, "utf8")).map((instance) => validate(instance));
}

const [mode, ...args] = process.argv.slice(2);
if (mode === "cases") {
  process.stdout.write(JSON.stringify(runCases(args[0])) + "\n");
} else if (mode === "instances") {
  process.stdout.write(JSON.stringify(runInstances(args[0], args[1])) + "\n");
} else {
  process.stderr.write("usage: run-ajv.mjs cases MANIFEST | instances SCHEMA FILE.json\n");
  process.exit(2);
}
