// Tables: the app's tables, key lookup (routed to the owning worker), browse by prefix.
import { el, getJSON, notice, pretty, table, formValues } from "./api.js";

export async function render(view, args) {
  const { tables } = await getJSON("/api/tables");
  view.append(el("h1", {}, "Tables"));
  if (!tables.length) { view.append(notice("This app declares no tables.")); return; }
  const name = args[0] || tables[0].name;
  view.append(table(["Table", "Key type", "Value type", { label: "Partitions", num: true }],
    tables.map((t) => el("tr", { class: `clickable ${t.name === name ? "selected" : ""}`, "data-table": t.name,
      onclick: () => { location.hash = `#/tables/${encodeURIComponent(t.name)}`; } },
      el("td", {}, t.name), el("td", {}, t.key_type), el("td", {}, t.value_type), el("td", { class: "num" }, t.partitions))),
    { "data-testid": "tables-table" }));

  const lookupResult = el("div", { "data-testid": "lookup-result" });
  const lookup = el("form", { class: "inline card", "data-testid": "lookup-form" },
    el("label", {}, `Look up a key in ${name}`, el("input", { name: "key", required: true })),
    el("button", { type: "submit" }, "Look up"));
  lookup.addEventListener("submit", async (event) => {
    event.preventDefault();
    const key = formValues(lookup).key;
    try {
      const found = await getJSON(`/api/tables/${encodeURIComponent(name)}/${encodeURIComponent(key)}`);
      lookupResult.replaceChildren(el("div", { class: "card" }, el("h2", {}, "Key ", el("code", {}, String(found.key))),
        el("pre", { "data-testid": "lookup-value" },
          pretty(found.windows !== undefined ? found.windows : found.value))));
    } catch (error) { lookupResult.replaceChildren(notice(error.message, "error", "lookup-error")); }
  });

  const page = el("div");
  const browse = el("form", { class: "inline card", "data-testid": "browse-form" },
    el("label", {}, "Key prefix", el("input", { name: "prefix" })),
    el("label", {}, "Page size", el("input", { name: "limit", type: "number", min: 1, max: 500, value: "25" })),
    el("button", { type: "submit" }, "Browse"));
  let pages = [];
  async function load(after) {
    const values = formValues(browse);
    try {
      const result = await getJSON(`/api/tables/${encodeURIComponent(name)}`, { ...values, after });
      const windowed = result.entries.some((e) => e.window);
      page.replaceChildren(
        table(["Key", ...(windowed ? ["Window"] : []), "Value"], result.entries.map((e) => el("tr", { "data-key": String(e.key) },
          el("td", { class: "mono" }, String(e.key)),
          windowed ? el("td", { class: "mono" }, e.window ? `${e.window.start} – ${e.window.end}` : "") : null,
          el("td", {}, el("pre", {}, pretty(e.value))))), { "data-testid": "browse-table" }),
        el("div", { class: "inline", style: "margin-top:8px" },
          el("button", { type: "button", class: "secondary", disabled: pages.length === 0, onclick: () => { pages.pop(); load(pages[pages.length - 1]); } }, "← Previous"),
          el("button", { type: "button", class: "secondary", disabled: !result.next_after, onclick: () => { pages.push(result.next_after); load(result.next_after); } }, "Next →"),
          el("span", { class: "muted" }, `${result.entries.length} keys` +
            (result.workers_asked.length ? ` · also from ${result.workers_asked.length} other worker(s)` : "") +
            (result.workers_unreachable.length ? ` · unreachable: ${result.workers_unreachable.join(", ")}` : ""))));
    } catch (error) { page.replaceChildren(notice(error.message, "error")); }
  }
  browse.addEventListener("submit", (event) => { event.preventDefault(); pages = []; load(); });
  view.append(el("h2", {}, "Look up"), lookup, lookupResult, el("h2", {}, "Browse"), browse, page);
  await load();
}
