// Small helpers shared by every screen: JSON requests and DOM building without innerHTML.

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function parse(response) {
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = { error: text }; }
  if (!response.ok) {
    throw new ApiError(response.status, (body && (body.error || body.message)) || response.statusText);
  }
  return body;
}

export async function getJSON(path, params) {
  const query = params ? "?" + new URLSearchParams(
    Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== "")) : "";
  return parse(await fetch(path + query, { headers: { Accept: "application/json" } }));
}

export async function postJSON(path, body) {
  return parse(await fetch(path, {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  }));
}

// el("td", {class: "num", dataset: {x: 1}}, "text", child, ...)
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (name === "dataset") Object.assign(node.dataset, value);
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else if (name === "value") node.value = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

export function table(headers, rows, attrs = {}) {
  return el("table", attrs,
    el("thead", {}, el("tr", {}, headers.map((h) =>
      el("th", { class: h.num ? "num" : null }, h.label ?? h)))),
    el("tbody", {}, rows));
}

export function notice(text, kind = "info", testid = "notice") {
  return el("div", { class: `notice ${kind === "error" ? "error" : ""}`, "data-testid": testid }, text);
}

export function fmt(n) {
  if (n === null || n === undefined) return "–";
  return typeof n === "number" ? n.toLocaleString("en-US", { maximumFractionDigits: 2 }) : String(n);
}

export function pretty(value) {
  return typeof value === "string" ? value : JSON.stringify(value, null, 2);
}

export function formValues(form) {
  return Object.fromEntries(new FormData(form).entries());
}
