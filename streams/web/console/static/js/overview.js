// Overview: cluster summary and live charts fed by Server-Sent Events from /api/live.
import { el, eventStream, fmt, getJSON } from "./api.js";
import { LineChart } from "./chart.js";

let source = null;

export async function render(view) {
  view.append(el("h1", {}, "Overview"));
  const summary = el("div", { class: "card stats", "data-testid": "cluster-summary" }, "Loading…");
  view.append(summary);
  const charts = {
    throughput: new LineChart("Messages per second", [
      { key: "produced_per_s", label: "produced to source topics" },
      { key: "processed_per_s", label: "processed by this worker" }]),
    lag: new LineChart("Consumer lag (messages)", [{ key: "lag", label: "group lag on source topics" }]),
    batch: new LineChart("Batch processing time", [{ key: "batch_ms", label: "mean ms per batch" }], { unit: "" }),
    errors: new LineChart("Errors and dead letters per second", [
      { key: "errors_per_s", label: "handler retries + publish errors" },
      { key: "dead_letters_per_s", label: "dead letters" }]),
  };
  charts.throughput.canvas.dataset.testid = "chart-throughput";
  charts.lag.canvas.dataset.testid = "chart-lag";
  const status = el("p", { class: "muted", "data-testid": "live-status" }, "connecting…");
  view.append(el("div", { class: "grid" }, Object.values(charts).map((c) => c.element)), status);

  const take = (sample) => {
    if (sample.error) { status.textContent = `last sample failed: ${sample.error}`; return; }
    Object.values(charts).forEach((c) => c.push(sample));
    status.textContent = `live · ${new Date(sample.time).toLocaleTimeString()} · ` +
      `${fmt(sample.produced_total)} produced, lag ${fmt(sample.lag)}`;
  };
  source = eventStream("/api/live", (name, data) => {
    if (name === "history") JSON.parse(data).forEach(take);
    else if (name === "sample") take(JSON.parse(data));
  }, () => { status.textContent = "live stream interrupted, reconnecting…"; });

  const cluster = await getJSON("/api/cluster");
  summary.replaceChildren(
    stat("Brokers", cluster.brokers.length),
    stat("Controller", cluster.controller_id),
    stat("Topics", cluster.topics),
    stat("Partitions", cluster.partitions),
    stat("Consumer group", cluster.consumer_group),
    el("div", { class: "stat muted" }, "cluster ", el("code", {}, cluster.cluster_id), el("br"),
      cluster.brokers.map((b) => `#${b.node_id} ${b.host}:${b.port}`).join(", ")));
}

function stat(label, value) {
  return el("div", { class: "stat" }, el("b", {}, fmt(value)), el("span", { class: "muted" }, label));
}

export function leave() {
  if (source) source.close();
  source = null;
}
