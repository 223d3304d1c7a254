// Dead letters: per source topic, the letters with their error headers; replay some or all.
import { el, getJSON, notice, postJSON, table } from "./api.js";
import { messageDetail } from "./messages.js";

export async function render(view, args) {
  view.append(el("h1", {}, "Dead letters"));
  const { topics } = await getJSON("/api/dlq");
  if (!topics.length) { view.append(notice("No dead-letter topics.")); return; }
  const source = args[0] || (topics.find((t) => t.dead_letters > 0) || topics[0]).source_topic;
  view.append(table(["Source topic", "Dead-letter topic", { label: "Dead letters", num: true }],
    topics.map((t) => el("tr", { class: `clickable ${t.source_topic === source ? "selected" : ""}`, "data-source": t.source_topic,
      onclick: () => { location.hash = `#/dlq/${encodeURIComponent(t.source_topic)}`; } },
      el("td", {}, t.source_topic), el("td", {}, t.dlq_topic), el("td", { class: "num" }, t.dead_letters))),
    { "data-testid": "dlq-topics" }));
  const status = el("div");
  const list = el("div");
  const detail = el("div", { class: "card" }, el("span", { class: "muted" }, "Select a letter to see it whole."));
  view.append(el("h2", {}, "Letters of ", el("code", {}, source)), status, el("div", { class: "split" }, list, detail));

  async function load() {
    const result = await getJSON(`/api/dlq/${encodeURIComponent(source)}`, { limit: 200 });
    const boxes = [];
    const rows = result.messages.map((m) => {
      const box = el("input", { type: "checkbox", "data-partition": m.partition, "data-offset": m.offset, onclick: (e) => e.stopPropagation() });
      boxes.push(box);
      const row = el("tr", { class: "clickable", "data-key": m.key ?? "", "data-offset": m.offset, "data-partition": m.partition },
        el("td", {}, box), el("td", { class: "num" }, `${m.partition}:${m.offset}`), el("td", { class: "mono" }, m.key ?? "null"),
        el("td", {}, m.error.error_type), el("td", {}, m.error.error_message),
        el("td", { class: "mono" }, `${m.error.original_topic}[${m.error.original_partition}]@${m.error.original_offset}`),
        el("td", { class: "num" }, m.error.attempts), el("td", { class: "mono" }, m.error.failed_at));
      row.addEventListener("click", () => detail.replaceChildren(messageDetail(m)));
      return row;
    });
    const replay = async (body, label) => {
      try {
        const done = await postJSON(`/api/dlq/${encodeURIComponent(source)}/replay`, body);
        status.replaceChildren(notice(`${label}: replayed ${done.replayed}, skipped ${done.skipped}` + (done.restamped ? ` (${done.restamped} with the replay's time: their own was past the topic's retention)` : ""), "info", "replay-result"));
      } catch (error) { status.replaceChildren(notice(error.message, "error", "replay-result")); }
    };
    list.replaceChildren(
      el("p", { class: "muted", "data-testid": "dlq-progress" }, `${result.progress} · ${result.count} shown`),
      el("div", { class: "inline" },
        el("button", { type: "button", "data-testid": "replay-selected", onclick: () => {
          const offsets = boxes.filter((b) => b.checked).map((b) => [Number(b.dataset.partition), Number(b.dataset.offset)]);
          if (!offsets.length) { status.replaceChildren(notice("Select letters to replay first.", "error", "replay-result")); return; }
          replay({ offsets }, `selected ${offsets.length}`);
        } }, "Replay selected"),
        el("button", { type: "button", class: "secondary", onclick: () => {
          if (confirm(`Replay every dead letter of ${source} to ${source}?`)) replay({ all: true }, "all");
        } }, "Replay all")),
      result.messages.length
        ? table(["", "Position", "Key", "Error", "Message", "Original", { label: "Attempts", num: true }, "Failed at"], rows, { "data-testid": "dlq-table" })
        : notice("No dead letters.", "info", "no-results"));
  }
  await load();
}
