// A time-series chart on a canvas: lines with gaps where samples are missing, time and value
// axes with readable ticks, a hover readout, drag-to-zoom and a legend that hides series.

const PALETTE = [
  "#1f77b4", "#e6550d", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
  "#bcbd22", "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173", "#3182bd", "#31a354",
];

export function seriesColor(index) {
  return PALETTE[index % PALETTE.length];
}

const SI = [
  [1e15, "P"], [1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"], [1, ""],
  [1e-3, "m"], [1e-6, "µ"], [1e-9, "n"],
];
const BINARY = [[2 ** 50, "Pi"], [2 ** 40, "Ti"], [2 ** 30, "Gi"], [2 ** 20, "Mi"], [2 ** 10, "Ki"], [1, ""]];

// A value for a human: SI prefixes (binary ones for bytes), seconds as durations, ratios as %.
export function formatValue(value, unit = "") {
  if (value === null || value === undefined || Number.isNaN(value)) return "NaN";
  if (!Number.isFinite(value)) return value > 0 ? "+Inf" : "-Inf";
  if (unit === "percent") return `${trim(value * 100, 3)}%`;
  if (unit === "seconds") return formatSeconds(value);
  const abs = Math.abs(value);
  if (abs === 0) return unit === "bytes" ? "0 B" : "0";
  const scale = unit === "bytes" ? BINARY : SI;
  for (const [factor, prefix] of scale) {
    if (abs >= factor || factor === scale[scale.length - 1][0]) {
      const suffix = unit === "bytes" ? `${prefix}B` : prefix;
      return `${trim(value / factor, 3)}${unit === "bytes" ? " " : ""}${suffix}`;
    }
  }
  return String(value);
}

function formatSeconds(value) {
  const abs = Math.abs(value);
  if (abs === 0) return "0s";
  if (abs < 1e-3) return `${trim(value * 1e6, 3)}µs`;
  if (abs < 1) return `${trim(value * 1e3, 3)}ms`;
  if (abs < 60) return `${trim(value, 3)}s`;
  if (abs < 3600) return `${trim(value / 60, 3)}min`;
  if (abs < 86400) return `${trim(value / 3600, 3)}h`;
  return `${trim(value / 86400, 3)}d`;
}

function trim(value, digits) {
  return Number(value.toPrecision(digits)).toString();
}

// Ticks at 1, 2 or 5 times a power of ten covering [min, max]; the caller widens a span too
// small to divide (values equal up to rounding), so the step is never below float resolution.
function valueTicks(min, max, count) {
  const raw = (max - min) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * magnitude).find((s) => s >= raw);
  const first = Math.ceil(min / step);
  const ticks = [];
  for (let i = first; i * step <= max + step * 1e-9 && ticks.length <= 2 * count + 2; i++) {
    ticks.push(i === 0 ? 0 : i * step);
  }
  return ticks;
}

const TIME_STEPS = [
  1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400,
  172800, 604800,
].map((s) => s * 1000);

function timeTicks(start, end, count) {
  const raw = (end - start) / count;
  const step = TIME_STEPS.find((s) => s >= raw) || TIME_STEPS[TIME_STEPS.length - 1];
  // Align to the local day for steps of a day or less, so ticks fall on round local times.
  const offset = new Date(start).getTimezoneOffset() * 60000;
  const ticks = [];
  for (let t = Math.ceil((start - offset) / step) * step + offset; t <= end; t += step) {
    ticks.push(t);
  }
  return { ticks, step };
}

function pad(n) {
  return String(n).padStart(2, "0");
}

function formatTime(t, step) {
  const d = new Date(t);
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
  if (step < 60000) return `${hm}:${pad(d.getSeconds())}`;
  if (step >= 86400000) return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  if (d.getHours() === 0 && d.getMinutes() === 0) return `${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
  return hm;
}

export function formatInstant(t) {
  const d = new Date(t);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
    `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

const MARGIN = { top: 10, right: 16, bottom: 26, left: 64 };

export class Chart {
  // onZoom(startMs, endMs) is called when the user selects a range.
  constructor(container, { unit = "", onZoom = null, height = 320 } = {}) {
    this.unit = unit;
    this.onZoom = onZoom;
    this.series = [];
    this.hidden = new Set();
    this.root = document.createElement("div");
    this.root.className = "chart";
    this.canvas = document.createElement("canvas");
    this.canvas.height = height;
    this.canvas.style.height = `${height}px`;
    this.tooltip = document.createElement("div");
    this.tooltip.className = "chart-tooltip";
    this.tooltip.hidden = true;
    this.legend = document.createElement("div");
    this.legend.className = "chart-legend";
    const plot = document.createElement("div");
    plot.className = "chart-plot";
    plot.append(this.canvas, this.tooltip);
    this.root.append(plot, this.legend);
    container.append(this.root);
    this.height = height;
    this.drag = null;
    this.hover = null;
    this.canvas.addEventListener("mousemove", (e) => this.onMove(e));
    this.canvas.addEventListener("mouseleave", () => {
      this.hover = null;
      this.tooltip.hidden = true;
      this.draw();
    });
    this.canvas.addEventListener("mousedown", (e) => {
      this.drag = { from: this.offsetX(e), to: this.offsetX(e) };
    });
    this.onMouseUp = () => this.finishDrag();
    window.addEventListener("mouseup", this.onMouseUp);
    this.resizer = new ResizeObserver(() => this.draw());
    this.resizer.observe(plot);
  }

  // series: [{name, points: [[ms, value], ...]}]; stepMs: the query's resolution, so a gap of
  // more than one step breaks the line.
  setData(series, start, end, stepMs) {
    this.series = series;
    this.start = start;
    this.end = end;
    this.stepMs = stepMs;
    this.hidden.clear();
    this.range = null;
    this.renderLegend();
    this.draw();
  }

  destroy() {
    this.resizer.disconnect();
    window.removeEventListener("mouseup", this.onMouseUp);
    this.root.remove();
  }

  offsetX(event) {
    return event.clientX - this.canvas.getBoundingClientRect().left;
  }

  visible() {
    return this.series.map((s, i) => ({ ...s, color: seriesColor(i), index: i }))
      .filter((s) => !this.hidden.has(s.index));
  }

  renderLegend() {
    this.legend.replaceChildren();
    this.series.forEach((series, index) => {
      const item = document.createElement("button");
      item.type = "button";
      item.className = "legend-item";
      item.title = "Click to hide or show; Shift-click to show only this series";
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = seriesColor(index);
      item.append(swatch, document.createTextNode(series.name));
      item.addEventListener("click", (event) => {
        if (event.shiftKey) {
          const onlyThis = this.hidden.size === this.series.length - 1 && !this.hidden.has(index);
          this.hidden = new Set(onlyThis ? [] : this.series.map((_, i) => i).filter((i) => i !== index));
        } else if (this.hidden.has(index)) {
          this.hidden.delete(index);
        } else {
          this.hidden.add(index);
        }
        for (const [i, child] of [...this.legend.children].entries()) {
          child.classList.toggle("off", this.hidden.has(i));
        }
        this.range = null;
        this.draw();
      });
      this.legend.append(item);
    });
  }

  // The value range of the visible series (recomputed when the data or visibility changes).
  valueRange() {
    let min = Infinity;
    let max = -Infinity;
    for (const series of this.visible()) {
      for (const [, v] of series.points) {
        if (Number.isFinite(v)) {
          if (v < min) min = v;
          if (v > max) max = v;
        }
      }
    }
    if (min === Infinity) return [0, 1];
    if (min > 0 && min < max * 0.5) min = 0;
    // Equal, or equal up to rounding: give the axis room around the value.
    if (max - min <= Math.max(Math.abs(min), Math.abs(max)) * 1e-9) {
      const pad = Math.abs(max) * 0.1 || 1;
      return [min - pad, max + pad];
    }
    return [min, max];
  }

  geometry() {
    const width = this.canvas.parentElement.clientWidth;
    if (!this.range) this.range = this.valueRange();
    let [min, max] = this.range;
    const ticks = valueTicks(min, max, Math.max(2, Math.floor(this.height / 50)));
    min = Math.min(min, ticks[0]);
    max = Math.max(max, ticks[ticks.length - 1]);
    const plotWidth = Math.max(10, width - MARGIN.left - MARGIN.right);
    const plotHeight = this.height - MARGIN.top - MARGIN.bottom;
    return {
      width,
      ticks,
      x: (t) => MARGIN.left + ((t - this.start) / (this.end - this.start || 1)) * plotWidth,
      y: (v) => MARGIN.top + (1 - (v - min) / (max - min)) * plotHeight,
      t: (x) => this.start + ((x - MARGIN.left) / plotWidth) * (this.end - this.start),
      plotWidth,
      plotHeight,
    };
  }

  draw() {
    if (this.start === undefined) return;
    const g = this.geometry();
    const ratio = window.devicePixelRatio || 1;
    this.canvas.width = Math.round(g.width * ratio);
    this.canvas.height = Math.round(this.height * ratio);
    this.canvas.style.width = `${g.width}px`;
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, g.width, this.height);
    const style = getComputedStyle(this.root);
    const grid = style.getPropertyValue("--chart-grid").trim() || "#e5e7eb";
    const text = style.getPropertyValue("--chart-text").trim() || "#4b5563";
    ctx.font = "11px system-ui, sans-serif";
    ctx.fillStyle = text;
    ctx.strokeStyle = grid;
    ctx.lineWidth = 1;

    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const tick of g.ticks) {
      const y = Math.round(g.y(tick)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(MARGIN.left, y);
      ctx.lineTo(MARGIN.left + g.plotWidth, y);
      ctx.stroke();
      ctx.fillText(formatValue(tick, this.unit), MARGIN.left - 6, y);
    }
    const { ticks, step } = timeTicks(this.start, this.end, Math.max(2, Math.floor(g.plotWidth / 90)));
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (const t of ticks) {
      const x = Math.round(g.x(t)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(x, MARGIN.top);
      ctx.lineTo(x, MARGIN.top + g.plotHeight);
      ctx.stroke();
      ctx.fillText(formatTime(t, step), x, MARGIN.top + g.plotHeight + 6);
    }

    ctx.save();
    ctx.beginPath();
    ctx.rect(MARGIN.left, MARGIN.top, g.plotWidth, g.plotHeight);
    ctx.clip();
    const gap = (this.stepMs || 0) * 1.5;
    ctx.lineWidth = 1.5;
    ctx.lineJoin = "round";
    for (const series of this.visible()) {
      ctx.strokeStyle = series.color;
      ctx.fillStyle = series.color;
      ctx.beginPath();
      let previous = null;
      let lonely = [];
      for (const [t, v] of series.points) {
        if (!Number.isFinite(v)) {
          previous = null;
          continue;
        }
        const x = g.x(t);
        const y = g.y(v);
        if (previous === null || (gap > 0 && t - previous > gap)) {
          ctx.moveTo(x, y);
          lonely.push([x, y]);
        } else {
          ctx.lineTo(x, y);
          lonely.pop();
          lonely.push(null);
        }
        previous = t;
      }
      ctx.stroke();
      // A sample with no neighbour draws as a dot, or it would be invisible.
      for (const point of lonely) {
        if (point) ctx.fillRect(point[0] - 1.5, point[1] - 1.5, 3, 3);
      }
    }
    ctx.restore();

    if (this.hover !== null) {
      ctx.strokeStyle = text;
      ctx.setLineDash([3, 3]);
      ctx.beginPath();
      ctx.moveTo(this.hover + 0.5, MARGIN.top);
      ctx.lineTo(this.hover + 0.5, MARGIN.top + g.plotHeight);
      ctx.stroke();
      ctx.setLineDash([]);
    }
    if (this.drag && Math.abs(this.drag.to - this.drag.from) > 2) {
      ctx.fillStyle = "rgba(59, 130, 246, 0.15)";
      const left = Math.min(this.drag.from, this.drag.to);
      ctx.fillRect(left, MARGIN.top, Math.abs(this.drag.to - this.drag.from), g.plotHeight);
    }
  }

  onMove(event) {
    const x = this.offsetX(event);
    if (this.drag) this.drag.to = x;
    const g = this.geometry();
    if (x < MARGIN.left || x > MARGIN.left + g.plotWidth) {
      this.hover = null;
      this.tooltip.hidden = true;
      this.draw();
      return;
    }
    const t = g.t(x);
    const rows = [];
    let at = null;
    for (const series of this.visible()) {
      const point = nearest(series.points, t);
      if (!point || (this.stepMs && Math.abs(point[0] - t) > this.stepMs)) continue;
      at = point[0];
      rows.push({ series, value: point[1] });
    }
    this.hover = at === null ? x : g.x(at);
    this.draw();
    if (!rows.length) {
      this.tooltip.hidden = true;
      return;
    }
    rows.sort((a, b) => b.value - a.value);
    this.tooltip.replaceChildren();
    const title = document.createElement("div");
    title.className = "tooltip-time";
    title.textContent = formatInstant(at);
    this.tooltip.append(title);
    for (const { series, value } of rows.slice(0, 12)) {
      const row = document.createElement("div");
      row.className = "tooltip-row";
      const swatch = document.createElement("span");
      swatch.className = "swatch";
      swatch.style.background = series.color;
      const name = document.createElement("span");
      name.className = "tooltip-name";
      name.textContent = series.name;
      const shown = document.createElement("b");
      shown.textContent = formatValue(value, this.unit);
      row.append(swatch, name, shown);
      this.tooltip.append(row);
    }
    if (rows.length > 12) {
      const more = document.createElement("div");
      more.textContent = `… ${rows.length - 12} more`;
      this.tooltip.append(more);
    }
    this.tooltip.hidden = false;
    const flip = x > g.width / 2;
    this.tooltip.style.left = flip ? "" : `${x + 14}px`;
    this.tooltip.style.right = flip ? `${g.width - x + 14}px` : "";
  }

  finishDrag() {
    if (!this.drag) return;
    const { from, to } = this.drag;
    this.drag = null;
    if (Math.abs(to - from) > 4 && this.onZoom) {
      const g = this.geometry();
      const a = g.t(Math.min(from, to));
      const b = g.t(Math.max(from, to));
      this.onZoom(Math.max(a, this.start), Math.min(b, this.end));
    } else {
      this.draw();
    }
  }
}

// The point closest to t in a time-sorted list (binary search).
function nearest(points, t) {
  if (!points.length) return null;
  let lo = 0;
  let hi = points.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (points[mid][0] < t) lo = mid + 1;
    else hi = mid;
  }
  if (lo > 0 && Math.abs(points[lo - 1][0] - t) < Math.abs(points[lo][0] - t)) lo -= 1;
  return points[lo];
}
