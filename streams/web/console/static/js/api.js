// Small helpers shared by every screen: JSON requests and DOM building without innerHTML.

export class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

// The API token lives in sessionStorage (this tab, until it closes), never in the URL.
const TOKEN_KEY = "streams-api-token";

export function apiToken() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

export function setApiToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

function withToken(headers) {
  const token = apiToken();
  return token ? { ...headers, Authorization: `Bearer ${token}` } : headers;
}

async function parse(response) {
  const text = await response.text();
  let body = null;
  try { body = text ? JSON.parse(text) : null; } catch { body = { error: text }; }
  if (!response.ok) {
    if (response.status === 401) window.dispatchEvent(new CustomEvent("auth-required"));
    throw new ApiError(response.status, (body && (body.error || body.message)) || response.statusText);
  }
  return body;
}

export async function getJSON(path, params) {
  const query = params ? "?" + new URLSearchParams(
    Object.entries(params).filter(([, v]) => v !== undefined && v !== null && v !== "")) : "";
  return parse(await fetch(path + query, { headers: withToken({ Accept: "application/json" }) }));
}

export async function postJSON(path, body) {
  return parse(await fetch(path, {
    method: "POST", headers: withToken({ "Content-Type": "application/json" }),
    body: JSON.stringify(body),
  }));
}

// Server-Sent Events read with fetch, so the request can carry the token (EventSource
// cannot send headers). onEvent(name, data) per event; reconnects after 3 s until closed.
export function eventStream(path, onEvent, onError) {
  const abort = new AbortController();
  async function run() {
    while (!abort.signal.aborted) {
      try {
        const response = await fetch(path, { headers: withToken({ Accept: "text/event-stream" }),
                                              signal: abort.signal });
        if (!response.ok) await parse(response);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            let name = "message";
            const data = [];
            for (const line of block.split("\n")) {
              if (line.startsWith("event:")) name = line.slice(6).trim();
              else if (line.startsWith("data:")) data.push(line.slice(5).trimStart());
            }
            if (data.length) onEvent(name, data.join("\n"));
          }
        }
      } catch (error) {
        if (abort.signal.aborted) return;
        onError(error);
      }
      await new Promise((resolve) => setTimeout(resolve, 3000));
    }
  }
  run();
  return { close: () => abort.abort() };
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
