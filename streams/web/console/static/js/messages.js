// Messages: browse/search a topic with bounded scans, view one message, export, produce.
import { el, fmt, getJSON, notice, postJSON, pretty, table, formValues } from "./api.js";

export async function render(view, args) {
  const { topics } = await getJSON("/api/topics");
  const topic = args[0] || (topics.find((t) => !t.name.endsWith(".dlq")) || topics[0] || {}).name;
  view.append(el("h1", {}, "Messages"));
  if (!topic) { view.append(notice("No topics yet.")); return; }
  const current = topics.find((t) => t.name === topic) || { partitions: 0 };
  const topicSelect = el("select", { name: "topic", onchange: (e) => { location.hash = `#/messages/${encodeURIComponent(e.target.value)}`; } },
    topics.map((t) => el("option", { value: t.name, selected: t.name === topic }, t.name)));
  const partitions = Array.from({ length: current.partitions }, (_, i) => i);
  const form = el("form", { class: "card", "data-testid": "search-form" },
    el("div", { class: "inline" },
      el("label", {}, "Topic", topicSelect),
      el("label", {}, "Partition", el("select", { name: "partition" }, el("option", { value: "" }, "all"),
        partitions.map((p) => el("option", { value: String(p) }, String(p))))),
      el("label", {}, "Start", el("select", { name: "from" }, ["newest", "oldest", "offset", "timestamp"].map((f) => el("option", { value: f }, f)))),
      el("label", {}, "Offset", el("input", { name: "offset", type: "number", min: 0, style: "width:90px" })),
      el("label", {}, "Time", el("input", { name: "timestamp", placeholder: "ISO or epoch ms", style: "width:170px" })),
      el("label", {}, "Limit", el("input", { name: "limit", type: "number", min: 1, max: 500, value: "50", style: "width:70px" })),
      el("label", {}, "Scan at most", el("input", { name: "max_scan", type: "number", min: 1, max: 100000, value: "10000", style: "width:90px" }))),
    el("div", { class: "inline", style: "margin-top:8px" },
      el("label", {}, "Key (exact)", el("input", { name: "key", "data-testid": "search-key" })),
      el("label", {}, "Text in value", el("input", { name: "text" })),
      el("label", {}, "Header (name or name=value)", el("input", { name: "header" })),
      el("label", { style: "flex:1" }, "Filter, e.g. value.amount > 100 and headers.trace contains \"abc\"",
        el("input", { name: "filter", style: "min-width:320px" })),
      el("button", { type: "submit", "data-testid": "search-button" }, "Search")));
  const progress = el("div", { class: "muted", "data-testid": "scan-progress" });
  const results = el("div", { "data-testid": "results" });
  const detail = el("div", { class: "card", "data-testid": "message-detail" }, el("span", { class: "muted" }, "Select a message to see it whole."));
  const actions = el("div", { class: "inline" });
  view.append(form, el("div", { class: "split" }, el("div", {}, progress, actions, results), detail),
    produceForm(topic, partitions, () => search()));

  let lastParams = null;
  async function search(positions) {
    const values = formValues(form);
    delete values.topic;
    const params = positions ? { ...lastParams, positions } : values;
    lastParams = { ...values };
    progress.textContent = "scanning…";
    try {
      const result = await getJSON(`/api/topics/${encodeURIComponent(topic)}/messages`, params);
      progress.textContent = `${result.progress} · ${result.count} shown` +
        (result.complete ? " · reached the end" : "") + (result.timed_out ? " · stopped by time limit" : "");
      results.replaceChildren(messageTable(result.messages, detail));
      const exportParams = new URLSearchParams(Object.entries({ ...params, format: "jsonl" }).filter(([, v]) => v !== ""));
      actions.replaceChildren(...[
        el("a", { href: `/api/topics/${encodeURIComponent(topic)}/messages?${exportParams}`, download: `${topic}.jsonl`, "data-testid": "export-link" }, "Export JSON lines"),
        !result.complete && result.order === "oldest_first"
          ? el("button", { type: "button", class: "secondary", onclick: () => search(Object.entries(result.next_positions).map(([p, o]) => `${p}:${o}`).join(",")) }, "Continue scan")
          : null].filter(Boolean));
    } catch (error) {
      progress.textContent = "";
      results.replaceChildren(notice(error.message, "error"));
    }
  }
  form.addEventListener("submit", (event) => { event.preventDefault(); search(); });
  await search();
}

function summary(value) {
  const text = typeof value === "string" ? value : JSON.stringify(value);
  return text && text.length > 90 ? text.slice(0, 90) + "…" : text;
}

function messageTable(messages, detail) {
  if (!messages.length) return notice("No messages matched.", "info", "no-results");
  return table(["Time", { label: "Partition", num: true }, { label: "Offset", num: true }, "Key", "Value"],
    messages.map((m) => {
      const row = el("tr", { class: "clickable", "data-offset": m.offset, "data-partition": m.partition, "data-key": m.key ?? "" },
        el("td", { class: "mono" }, new Date(m.timestamp).toISOString().replace("T", " ").slice(0, 23)),
        el("td", { class: "num" }, m.partition), el("td", { class: "num" }, m.offset),
        el("td", { class: "mono", "data-col": "key" }, m.key ?? "null"),
        el("td", { class: "mono" }, summary(m.value)));
      row.addEventListener("click", () => {
        row.parentElement.querySelectorAll("tr.selected").forEach((r) => r.classList.remove("selected"));
        row.classList.add("selected");
        detail.replaceChildren(messageDetail(m));
      });
      return row;
    }), { "data-testid": "messages-table" });
}

export function messageDetail(m) {
  return el("div", {},
    el("h2", {}, `${m.topic} [${m.partition}] @ ${m.offset}`),
    el("p", { class: "muted" }, new Date(m.timestamp).toISOString(), ` · ${fmt(m.size)} bytes`),
    el("h2", {}, "Key"), el("pre", { "data-testid": "detail-key" }, m.key ?? "null"),
    el("h2", {}, `Value (${m.value_encoding})`), el("pre", { "data-testid": "detail-value" }, pretty(m.value)),
    el("h2", {}, "Headers"),
    Object.keys(m.headers).length
      ? table(["Name", "Value"], Object.entries(m.headers).map(([k, v]) => el("tr", {}, el("td", { class: "mono" }, k), el("td", { class: "mono" }, v))))
      : el("p", { class: "muted" }, "none"));
}

function produceForm(topic, partitions, after) {
  const message = el("div");
  const form = el("form", { class: "card", "data-testid": "produce-form" },
    el("h2", {}, "Produce a message to ", el("code", {}, topic)),
    el("div", { class: "inline" },
      el("label", {}, "Key", el("input", { name: "key" })),
      el("label", {}, "Partition", el("select", { name: "partition" }, el("option", { value: "" }, "by key"),
        partitions.map((p) => el("option", { value: String(p) }, String(p))))),
      el("label", { style: "flex:1" }, "Value (JSON, or plain text)", el("textarea", { name: "value", placeholder: '{"amount": 120}' })),
      el("label", {}, "Headers (name=value per line)", el("textarea", { name: "headers" })),
      el("button", { type: "submit" }, "Produce")), message);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = formValues(form);
    try {
      const headers = {};
      for (const line of values.headers.split("\n").map((l) => l.trim()).filter(Boolean)) {
        const at = line.indexOf("=");
        if (at < 1) throw new Error(`header line ${JSON.stringify(line)} is not name=value`);
        headers[line.slice(0, at).trim()] = line.slice(at + 1).trim();
      }
      let value = values.value;
      try { value = JSON.parse(values.value); } catch { /* plain text */ }
      const body = { key: values.key || null, value: values.value === "" ? null : value, headers };
      if (values.partition !== "") body.partition = Number(values.partition);
      const result = await postJSON(`/api/topics/${encodeURIComponent(topic)}/messages`, body);
      message.replaceChildren(notice(`written to partition ${result.partition} at offset ${result.offset}`, "info", "produce-result"));
      await after();
    } catch (error) { message.replaceChildren(notice(error.message, "error", "produce-result")); }
  });
  return form;
}
