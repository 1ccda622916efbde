// Renders the server's /openapi.json as a readable reference: operations by tag, who may call them, parameters,
// request and response schemas. Everything comes from the document; nothing is fetched from elsewhere.
"use strict";

let DOC = null;

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return e;
}

function resolve(schema, depth = 0) {
  if (!schema || depth > 6) return schema;
  if (schema.$ref) {
    const name = schema.$ref.split("/").pop();
    return resolve(DOC.components.schemas[name], depth + 1);
  }
  return schema;
}

/** A JSON-ish sketch of a schema: property names with their types, nested objects expanded a few levels. */
function sketch(schema, depth = 0) {
  const s = resolve(schema, depth);
  if (!s || depth > 4) return "…";
  if (s.oneOf || s.anyOf) return (s.oneOf || s.anyOf).map((x) => sketch(x, depth + 1)).join(" | ");
  if (s.allOf) return s.allOf.map((x) => sketch(x, depth + 1)).join(" & ");
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(" | ");
  const type = Array.isArray(s.type) ? s.type.filter((t) => t !== "null").join("|") + (s.type.includes("null") ? "?" : "") : s.type;
  if (type && type.startsWith("array")) return "[" + sketch(s.items, depth + 1) + "]";
  if (s.properties) {
    const pad = "  ".repeat(depth + 1);
    const req = new Set(s.required || []);
    const lines = Object.entries(s.properties).map(([k, v]) => `${pad}${k}${req.has(k) ? "" : "?"}: ${sketch(v, depth + 1)}`);
    return "{\n" + lines.join(",\n") + "\n" + "  ".repeat(depth) + "}";
  }
  if (s.additionalProperties) return "{ [key]: " + sketch(s.additionalProperties, depth + 1) + " }";
  return (type || "any") + (s.format ? ` (${s.format})` : "");
}

function role(op) {
  const sec = op.security || DOC.security || [];
  const scopes = sec.flatMap((r) => Object.values(r)).flat();
  return scopes.length ? `role: ${scopes[0]}` : "public";
}

function render(filter) {
  const byTag = new Map();
  for (const [path, item] of Object.entries(DOC.paths)) {
    for (const [method, op] of Object.entries(item)) {
      const text = `${method} ${path} ${op.summary || ""} ${(op.tags || []).join(" ")}`.toLowerCase();
      if (filter && !text.includes(filter.toLowerCase())) continue;
      const tag = (op.tags || ["other"])[0];
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push({ path, method, op });
    }
  }
  const doc = document.getElementById("doc");
  const toc = document.getElementById("toc");
  doc.replaceChildren();
  toc.replaceChildren();
  for (const t of DOC.tags || []) {
    const ops = byTag.get(t.name);
    if (!ops) continue;
    toc.append(el("a", { href: `#tag-${t.name}` }, t.name));
    doc.append(el("h2", { id: `tag-${t.name}` }, t.name), el("p", { class: "desc" }, t.description || ""));
    for (const { path, method, op } of ops) {
      const card = el("section", { class: "op" },
        el("h3", {}, el("span", { class: `method ${method}` }, method.toUpperCase()), el("code", {}, path), op.summary || "", el("span", { class: "pill role" }, role(op))));
      if (op.description) card.append(el("p", { class: "desc" }, op.description));
      if (op.parameters && op.parameters.length) {
        card.append(el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "parameter"), el("th", {}, "in"), el("th", {}, "type"), el("th", {}, "description"))),
          el("tbody", {}, ...op.parameters.map((p) => el("tr", {}, el("td", {}, el("code", {}, p.name + (p.required ? "" : "?"))), el("td", {}, p.in), el("td", {}, sketch(p.schema)), el("td", {}, p.description || ""))))));
      }
      const body = op.requestBody && op.requestBody.content && op.requestBody.content["application/json"];
      if (body) card.append(el("p", {}, "Request body:"), el("pre", {}, sketch(body.schema)));
      for (const [status, r] of Object.entries(op.responses || {})) {
        const c = r.content && (r.content["application/json"] || Object.values(r.content)[0]);
        const line = el("p", {}, el("strong", {}, status + " "), r.description || "");
        card.append(line);
        if (c && c.schema && !["401", "403", "429"].includes(status)) card.append(el("pre", {}, sketch(c.schema)));
      }
      doc.append(card);
    }
  }
}

document.addEventListener("DOMContentLoaded", async () => {
  const r = await fetch("/openapi.json");
  DOC = await r.json();
  document.getElementById("version").textContent = `${DOC.info.title} ${DOC.info.version}`;
  render("");
  document.getElementById("filter").addEventListener("input", (e) => render(e.target.value));
});
