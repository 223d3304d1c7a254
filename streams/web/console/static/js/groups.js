// Consumer groups: list, one group's members, partitions, lag (live), and offset reset.
import { el, fmt, getJSON, notice, postJSON, table, formValues } from "./api.js";
import { LineChart } from "./chart.js";

let timer = null;

export async function render(view, args) {
  if (args[0]) return renderGroup(view, args[0]);
  view.append(el("h1", {}, "Consumer groups"));
  const { groups, app_group } = await getJSON("/api/groups");
  view.append(table(["Group", "State", { label: "Members", num: true }, "Protocol"],
    groups.map((g) => el("tr", { class: "clickable", "data-group": g.group,
      onclick: () => { location.hash = `#/groups/${encodeURIComponent(g.group)}`; } },
      el("td", {}, el("a", { href: `#/groups/${encodeURIComponent(g.group)}` }, g.group),
        g.group === app_group ? el("span", { class: "pill" }, "this app") : null),
      el("td", {}, el("span", { class: `pill state-${g.state}` }, g.state)),
      el("td", { class: "num" }, g.members), el("td", {}, g.protocol || g.protocol_type))),
    { "data-testid": "groups-table" }));
}

async function renderGroup(view, name) {
  const url = `/api/groups/${encodeURIComponent(name)}`;
  const header = el("div");
  const body = el("div");
  const chart = new LineChart("Lag over time", [{ key: "lag", label: "total lag (messages)" }]);
  chart.canvas.dataset.testid = "chart-group-lag";
  view.append(el("h1", {}, "Group ", el("code", {}, name)),
    el("p", {}, el("a", { href: "#/groups" }, "← all groups")), header, chart.element, body);
  const refresh = async () => {
    const group = await getJSON(url);
    chart.push({ lag: group.lag });
    draw(group, header, body);
    return group;
  };
  const group = await refresh();
  view.append(resetForm(name, group, refresh));
  timer = setInterval(() => refresh().catch(() => {}), 2000);
}

function draw(group, header, body) {
  header.replaceChildren(el("div", { class: "card stats", "data-testid": "group-summary" },
    el("div", { class: "stat" }, el("b", { "data-testid": "group-state" }, group.state), el("span", { class: "muted" }, "state")),
    el("div", { class: "stat" }, el("b", {}, group.members.length), el("span", { class: "muted" }, "members")),
    el("div", { class: "stat" }, el("b", { "data-testid": "group-lag" }, fmt(group.lag)), el("span", { class: "muted" }, "total lag"))));
  const most = Math.max(1, ...group.distribution.map((d) => d.partitions));
  const distribution = table(["Worker", "Partitions by topic", { label: "Count", num: true }, ""],
    group.distribution.map((d) => el("tr", { "data-member": d.member_id },
      el("td", {}, webUrl(d.url) ? el("a", { href: d.url }, d.url) : d.host, el("div", { class: "muted mono" }, d.member_id)),
      el("td", {}, Object.entries(d.by_topic).map(([t, n]) => el("span", { class: "pill" }, `${t}: ${n}`))),
      el("td", { class: "num" }, d.partitions),
      el("td", { style: "width:25%" }, el("div", { class: "bar", style: `width:${(100 * d.partitions) / most}%` })))),
    { "data-testid": "distribution-table" });
  const members = table(["Worker", "Assigned partitions"],
    group.members.map((m) => el("tr", { "data-member": m.member_id, "data-url": m.url || "" },
      el("td", {}, m.url || m.host, el("div", { class: "muted mono" }, m.client_id)),
      el("td", { "data-testid": "member-partitions" }, m.partitions.map((p) =>
        el("span", { class: "pill", "data-tp": `${p.topic}[${p.partition}]` }, `${p.topic}[${p.partition}]`))))),
    { "data-testid": "members-table" });
  const owners = Object.fromEntries(group.members.map((m) => [m.member_id, m.url || m.host]));
  const offsets = table(["Topic", { label: "Partition", num: true }, { label: "Committed", num: true },
    { label: "End offset", num: true }, { label: "Lag", num: true }, "Worker"],
    group.offsets.map((o) => el("tr", { "data-tp": `${o.topic}[${o.partition}]` },
      el("td", {}, o.topic), el("td", { class: "num" }, o.partition),
      el("td", { class: "num" }, fmt(o.committed)), el("td", { class: "num" }, fmt(o.end_offset)),
      el("td", { class: "num", "data-col": "lag" }, String(o.lag)),
      el("td", {}, o.member_id ? owners[o.member_id] : el("span", { class: "muted" }, "unassigned")))),
    { "data-testid": "offsets-table" });
  body.replaceChildren(el("h2", {}, "Partition distribution"), distribution,
    el("h2", {}, "Members"), members, el("h2", {}, "Committed offsets and lag"), offsets);
}

function resetForm(name, group, refresh) {
  const message = el("div");
  const confirmBox = el("div");
  const form = el("form", { class: "inline card", "data-testid": "reset-form" },
    el("label", {}, "Reset offsets to", el("select", { name: "to" },
      el("option", { value: "earliest" }, "earliest"), el("option", { value: "latest" }, "latest"),
      el("option", { value: "timestamp" }, "a time"))),
    el("label", {}, "Time (ISO 8601 or epoch ms)", el("input", { name: "timestamp", placeholder: "2024-05-01T12:00:00Z" })),
    el("label", {}, "Only topic (optional)", el("input", { name: "topic" })),
    el("button", { type: "submit", class: "danger", disabled: group.members.length > 0 }, "Reset…"),
    group.members.length ? el("span", { class: "muted" }, "Stop the group's consumers first: only an empty group can be reset.") : null);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const values = formValues(form);
    const body = { to: values.to };
    if (values.to === "timestamp") body.timestamp = values.timestamp;
    if (values.topic) body.topic = values.topic;
    confirmBox.replaceChildren(el("div", { class: "notice", "data-testid": "reset-confirm" },
      `Reset group ${name} to ${values.to}${values.to === "timestamp" ? " " + values.timestamp : ""}? Consumers will re-read or skip messages. `,
      el("button", { class: "danger", type: "button", onclick: async () => {
        try {
          const result = await postJSON(`/api/groups/${encodeURIComponent(name)}/reset`, body);
          confirmBox.replaceChildren();
          message.replaceChildren(notice(`offsets set: ${result.offsets.map((o) => `${o.topic}[${o.partition}]=${o.offset}`).join(", ")}`));
          await refresh();
        } catch (error) { confirmBox.replaceChildren(); message.replaceChildren(notice(error.message, "error")); }
      } }, "Yes, reset"), " ",
      el("button", { class: "secondary", type: "button", onclick: () => confirmBox.replaceChildren() }, "Cancel")));
  });
  return el("div", {}, el("h2", {}, "Reset offsets"), form, confirmBox, message);
}

export function leave() {
  clearInterval(timer);
  timer = null;
}

// Member URLs come from what each group member says about itself: only http(s) is a link.
function webUrl(value) {
  return typeof value === "string" && /^https?:\/\//i.test(value);
}
