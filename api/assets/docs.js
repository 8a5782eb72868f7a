// Renders /openapi.json as a readable page: every operation with its parameters, body and
// answers. Kept small and local so the docs work offline.
"use strict";

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text != null) node.textContent = text;
  if (className) node.className = className;
  return node;
}

function schemaName(schema) {
  if (!schema) return "";
  if (schema.$ref) return schema.$ref.split("/").pop();
  if (schema.type === "array") return "array of " + schemaName(schema.items);
  return schema.type || "";
}

async function render() {
  const doc = await (await fetch("/openapi.json")).json();
  document.getElementById("title").textContent = doc.info.title + " " + doc.info.version;
  document.getElementById("description").textContent = doc.info.description || "";
  const root = document.getElementById("operations");
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const section = el("fieldset");
      section.appendChild(el("legend", method.toUpperCase() + " " + path));
      if (op.summary) section.appendChild(el("p", op.summary));
      if (op.description) section.appendChild(el("p", op.description, "hint"));
      if (op.parameters && op.parameters.length) {
        section.appendChild(el("h3", "Parameters"));
        const list = el("ul");
        for (const p of op.parameters) {
          list.appendChild(el("li", p.name + " (" + p.in + (p.required ? ", required" : "") + ")" + (p.description ? ": " + p.description : "")));
        }
        section.appendChild(list);
      }
      if (op.requestBody) {
        section.appendChild(el("h3", "Body"));
        const list = el("ul");
        for (const [type, media] of Object.entries(op.requestBody.content)) {
          list.appendChild(el("li", type + ": " + schemaName(media.schema)));
        }
        section.appendChild(list);
      }
      section.appendChild(el("h3", "Answers"));
      const answers = el("ul");
      for (const [status, response] of Object.entries(op.responses)) {
        const types = response.content ? Object.keys(response.content).join(", ") : "";
        answers.appendChild(el("li", status + " " + (response.description || "") + (types ? " (" + types + ")" : "")));
      }
      section.appendChild(answers);
      root.appendChild(section);
    }
  }
  const schemas = (doc.components && doc.components.schemas) || {};
  const section = el("fieldset");
  section.appendChild(el("legend", "Schemas"));
  for (const [name, schema] of Object.entries(schemas)) {
    section.appendChild(el("h3", name));
    if (schema.properties) {
      const list = el("ul");
      for (const [prop, def] of Object.entries(schema.properties)) {
        list.appendChild(el("li", prop + ": " + schemaName(def) + (def.description ? " — " + def.description : "")));
      }
      section.appendChild(list);
    } else if (schema.enum) {
      section.appendChild(el("p", schema.enum.join(", ")));
    }
  }
  root.appendChild(section);
}

document.addEventListener("DOMContentLoaded", () => { render(); });
