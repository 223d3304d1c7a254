// Topics: the list, one topic's partitions, creating topics and adding partitions.
import { el, fmt, getJSON, notice, postJSON, table, formValues } from "./api.js";

export async function render(view, args) {
  if (args[0]) return renderTopic(view, args[0]);
  view.append(el("h1", {}, "Topics"));
  const message = el("div");
  const form = el("form", { class: "inline card", "data-testid": "create-topic" },
    el("label", {}, "Name", el("input", { name: "name", required: true, placeholder: "payments" })),
    el("label", {}, "Partitions", el("input", { name: "partitions", type: "number", min: 1, value: "3" })),
    el("label", {}, "Replication", el("input", { name: "replication", type: "number", min: 1, value: "1" })),
    el("label", {}, "Config (key=value, one per line)", el("textarea", { name: "config", rows: 1, placeholder: "retention.ms=86400000" })),
    el("button", { type: "submit" }, "Create topic"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const values = formValues(form);
    try {
      const config = {};
      for (const line of values.config.split("\n").map((l) => l.trim()).filter(Boolean)) {
        const [key, ...rest] = line.split("=");
        if (!rest.length) throw new Error(`config line ${JSON.stringify(line)} is not key=value`);
        config[key.trim()] = rest.join("=").trim();
      }
      const created = await postJSON("/api/topics", {
        name: values.name, partitions: Number(values.partitions),
        replication: Number(values.replication), config });
      message.replaceChildren(notice(`created ${created.name} with ${created.partitions} partitions`));
      await fill(list);
    } catch (error) {
      message.replaceChildren(notice(error.message, "error"));
    }
  });
  const list = el("div");
  const internal = el("input", { type: "checkbox" });
  internal.addEventListener("change", () => fill(list, internal.checked));
  view.append(form, message, el("label", { style: "flex-direction:row;gap:6px" }, internal, "show internal topics"), list);
  await fill(list);
}

async function fill(list, internal = false) {
  const { topics } = await getJSON("/api/topics", { internal });
  list.replaceChildren(table(
    ["Topic", { label: "Partitions", num: true }, { label: "Replication", num: true },
     { label: "Messages", num: true }, { label: "Under-replicated", num: true }, ""],
    topics.map((t) => el("tr", { class: "clickable", "data-topic": t.name,
      onclick: () => { location.hash = `#/topics/${encodeURIComponent(t.name)}`; } },
      el("td", {}, el("a", { href: `#/topics/${encodeURIComponent(t.name)}` }, t.name),
        t.dead_letters ? el("span", { class: "pill" }, "dead letters") : null),
      el("td", { class: "num", "data-col": "partitions" }, t.partitions),
      el("td", { class: "num" }, t.replication),
      el("td", { class: "num" }, fmt(t.messages)),
      el("td", { class: "num" }, t.under_replicated),
      el("td", {}, el("a", { href: `#/messages/${encodeURIComponent(t.name)}`, onclick: (e) => e.stopPropagation() }, "messages")))),
    { "data-testid": "topics-table" }));
}

async function renderTopic(view, name) {
  const topic = await getJSON(`/api/topics/${encodeURIComponent(name)}`);
  view.append(el("h1", {}, "Topic ", el("code", {}, topic.name)),
    el("p", {}, el("a", { href: "#/topics" }, "← all topics"), " · ",
      el("a", { href: `#/messages/${encodeURIComponent(name)}` }, "browse messages")),
    el("div", { class: "card stats" },
      ...[["Partitions", topic.partition_count], ["Replication", topic.replication],
          ["Messages", topic.messages], ["Under-replicated", topic.under_replicated]]
        .map(([l, v]) => el("div", { class: "stat" }, el("b", {}, fmt(v)), el("span", { class: "muted" }, l)))));
  view.append(table(
    [{ label: "Partition", num: true }, { label: "Leader", num: true }, "Replicas", "In sync",
     { label: "Start offset", num: true }, { label: "End offset", num: true }, { label: "Messages", num: true }],
    topic.partitions.map((p) => el("tr", { "data-partition": p.partition },
      el("td", { class: "num" }, p.partition), el("td", { class: "num" }, p.leader),
      el("td", {}, p.replicas.join(", ")), el("td", {}, p.isr.join(", ")),
      el("td", { class: "num" }, fmt(p.start_offset)), el("td", { class: "num" }, fmt(p.end_offset)),
      el("td", { class: "num" }, fmt(p.messages)))),
    { "data-testid": "partitions-table" }));
  const message = el("div");
  const form = el("form", { class: "inline card" },
    el("label", {}, "New partition count", el("input", { name: "count", type: "number", min: topic.partition_count + 1, value: String(topic.partition_count + 1) })),
    el("button", { type: "submit" }, "Add partitions"),
    el("span", { class: "muted" }, "Kafka cannot remove partitions; keyed data moves to other partitions for new keys."));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await postJSON(`/api/topics/${encodeURIComponent(name)}/partitions`, { count: Number(formValues(form).count) });
      view.replaceChildren(); await renderTopic(view, name);
    } catch (error) { message.replaceChildren(notice(error.message, "error")); }
  });
  view.append(el("h2", {}, "Add partitions"), form, message);
}
