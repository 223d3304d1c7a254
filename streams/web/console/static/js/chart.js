// A small line chart on <canvas>: a few series over the last N samples, y axis from 0.
// canvas.dataset.points / .last expose what is drawn, so tests can see the chart move.

const COLORS = ["#2f6fde", "#1e8c4e", "#c0392b", "#b9770e", "#7d3cc8", "#16a2b8"];

export class LineChart {
  constructor(title, series, { capacity = 120, unit = "" } = {}) {
    this.series = series;           // [{key, label}]
    this.capacity = capacity;
    this.unit = unit;
    this.samples = [];
    this.canvas = document.createElement("canvas");
    this.canvas.className = "chart";
    this.canvas.dataset.points = "0";
    this.canvas.setAttribute("role", "img");
    this.canvas.setAttribute("aria-label", title);
    this.legend = document.createElement("div");
    this.legend.className = "legend";
    series.forEach((s, i) => {
      const item = document.createElement("span");
      const swatch = document.createElement("i");
      swatch.style.background = COLORS[i % COLORS.length];
      item.append(swatch, s.label);
      this.legend.append(item);
    });
    const heading = document.createElement("h2");
    heading.textContent = title;
    this.element = document.createElement("div");
    this.element.className = "card";
    this.element.append(heading, this.legend, this.canvas);
    new ResizeObserver(() => this.draw()).observe(this.canvas);
  }

  push(sample) {
    this.samples.push(sample);
    if (this.samples.length > this.capacity) this.samples.shift();
    this.canvas.dataset.points = String(this.samples.length);
    const last = {};
    for (const s of this.series) last[s.key] = sample[s.key] ?? null;
    this.canvas.dataset.last = JSON.stringify(last);
    this.draw();
  }

  draw() {
    const canvas = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth || 400, height = canvas.clientHeight || 180;
    canvas.width = width * ratio; canvas.height = height * ratio;
    const ctx = canvas.getContext("2d");
    ctx.scale(ratio, ratio);
    ctx.clearRect(0, 0, width, height);
    const left = 56, right = 8, top = 8, bottom = 20;
    const values = this.samples.flatMap((s) => this.series.map((x) => s[x.key])).filter(Number.isFinite);
    const max = niceMax(Math.max(1, ...values));
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = "#6b7385"; ctx.strokeStyle = "#e6e9f0"; ctx.lineWidth = 1;
    for (let i = 0; i <= 4; i++) {
      const y = top + (height - top - bottom) * (1 - i / 4);
      ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(width - right, y); ctx.stroke();
      ctx.fillText(formatTick(max * i / 4) + this.unit, 4, y + 4);
    }
    ctx.fillText(`last ${this.samples.length} samples`, left, height - 4);
    const step = (width - left - right) / Math.max(1, this.capacity - 1);
    const offset = this.capacity - this.samples.length;
    this.series.forEach((s, index) => {
      ctx.strokeStyle = COLORS[index % COLORS.length]; ctx.lineWidth = 2; ctx.beginPath();
      let started = false;
      this.samples.forEach((sample, i) => {
        const v = sample[s.key];
        if (!Number.isFinite(v)) { started = false; return; }
        const x = left + (offset + i) * step;
        const y = top + (height - top - bottom) * (1 - v / max);
        if (started) ctx.lineTo(x, y); else { ctx.moveTo(x, y); started = true; }
      });
      ctx.stroke();
    });
  }
}

function niceMax(v) {
  const power = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * power >= v) return m * power;
  return 10 * power;
}

function formatTick(v) {
  if (v >= 1e6) return (v / 1e6).toFixed(1) + "M";
  if (v >= 1e3) return (v / 1e3).toFixed(1) + "k";
  return Number.isInteger(v) ? String(v) : v.toFixed(1);
}
