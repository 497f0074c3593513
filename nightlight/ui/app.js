// nightlight's web UI: query (table and chart), alerts, rules, targets and built-in dashboards,
// over the same Prometheus HTTP API that other tools use. No dependencies, nothing fetched
// from anywhere but this server.

import { Chart, formatInstant, formatValue } from "./chart.js";
import { DASHBOARDS } from "./dashboards.js";

const RANGES = ["5m", "15m", "30m", "1h", "3h", "6h", "12h", "1d", "2d", "7d"];
const UNITS = { s: 1, m: 60, h: 3600, d: 86400, w: 604800, y: 31536000 };

function parseRange(text) {
  const match = /^(\d+)([smhdwy])$/.exec(text);
  return match ? Number(match[1]) * UNITS[match[2]] * 1000 : null;
}

// --- small DOM helpers ---------------------------------------------------------------------------

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== null && value !== undefined && value !== false) node.setAttribute(key, value);
  }
  fill(node, ...children);
  return node;
}

// Replaces a node's children; arrays are flattened and null/undefined left out, as in el().
function fill(node, ...children) {
  node.replaceChildren();
  for (const child of children.flat(Infinity)) {
    if (child !== null && child !== undefined) node.append(child instanceof Node ? child : String(child));
  }
}

// Runs load() now and every `seconds` while `node` is on the page (and the tab is visible).
function keepFresh(node, seconds, load) {
  load();
  const timer = setInterval(() => {
    if (!document.body.contains(node)) clearInterval(timer);
    else if (!document.hidden) load();
  }, seconds * 1000);
}

function badge(text, kind) {
  return el("span", { class: `badge badge-${kind}` }, text);
}

function errorBox(message) {
  return el("div", { class: "error", role: "alert" }, message);
}

function ago(iso) {
  const t = Date.parse(iso);
  if (!t || t < 0 || iso.startsWith("0001")) return "never";
  const seconds = Math.max(0, (Date.now() - t) / 1000);
  if (seconds < 60) return `${seconds.toFixed(1)}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ${Math.floor(seconds % 60)}s ago`;
  return `${Math.floor(seconds / 3600)}h ${Math.floor((seconds % 3600) / 60)}m ago`;
}

function labelText(labels, skip = []) {
  const pairs = Object.entries(labels || {}).filter(([k]) => k !== "__name__" && !skip.includes(k));
  const name = labels && labels.__name__ ? labels.__name__ : "";
  if (!pairs.length) return name || "{}";
  return `${name}{${pairs.map(([k, v]) => `${k}="${v}"`).join(", ")}}`;
}

function labelChips(labels, skip = []) {
  return el("span", { class: "labels" },
    Object.entries(labels || {}).filter(([k]) => !skip.includes(k))
      .map(([k, v]) => el("span", { class: "label" }, `${k}="${v}"`)));
}

// "{{job}} {{instance}}" with a series' labels.
function legendFor(template, labels) {
  if (!template) return labelText(labels);
  return template.replace(/\{\{\s*(\w+)\s*\}\}/g, (_, name) => labels[name] ?? "");
}

// --- the API -------------------------------------------------------------------------------------

async function api(path, params = {}) {
  const url = new URL(path, location.origin);
  for (const [key, value] of Object.entries(params)) url.searchParams.set(key, value);
  let response;
  try {
    response = await fetch(url);
  } catch (err) {
    throw new Error(`nightlight did not answer (${err.message})`);
  }
  let body;
  try {
    body = await response.json();
  } catch {
    throw new Error(`HTTP ${response.status} from ${path}`);
  }
  if (body.status !== "success") throw new Error(`${body.errorType || "error"}: ${body.error}`);
  return body.data;
}

// A resolution of about one point per two pixels, in whole seconds.
function stepFor(rangeMs, widthPx) {
  const points = Math.max(50, Math.floor(widthPx / 2));
  return Math.max(1, Math.ceil(rangeMs / 1000 / points));
}

function toSeries(result, legend) {
  return result.map((series) => ({
    name: legendFor(legend, series.metric),
    labels: series.metric,
    points: series.values.map(([t, v]) => [t * 1000, Number(v)]),
  }));
}

// --- the time range picker (shared by the query page and dashboards) ----------------------------

class TimeRange {
  constructor({ range = "1h", end = null, onChange }) {
    this.range = range;
    this.end = end; // ms, or null for "now"
    this.onChange = onChange;
    this.rangeSelect = el("select", { "aria-label": "Time range", onchange: () => {
      this.range = this.rangeSelect.value;
      this.changed();
    } }, RANGES.map((r) => el("option", { value: r }, r)));
    if (!RANGES.includes(range)) this.rangeSelect.append(el("option", { value: range }, range));
    this.rangeSelect.value = range;
    this.endInput = el("input", {
      type: "datetime-local", step: "1", "aria-label": "End time (empty: now)", title: "End time (empty: now)",
      onchange: () => {
        const t = Date.parse(this.endInput.value);
        this.end = Number.isNaN(t) ? null : t;
        this.changed();
      },
    });
    this.showEnd();
    this.root = el("div", { class: "time-range" },
      el("button", { type: "button", title: "Earlier", onclick: () => this.shift(-0.5) }, "◀"),
      this.rangeSelect,
      el("button", { type: "button", title: "Later", onclick: () => this.shift(0.5) }, "▶"),
      this.endInput,
      el("button", { type: "button", title: "End now", onclick: () => { this.end = null; this.showEnd(); this.changed(); } }, "now"));
  }

  bounds() {
    const end = this.end ?? Date.now();
    return { start: end - parseRange(this.range), end };
  }

  zoom(start, end) {
    const seconds = Math.max(10, Math.round((end - start) / 1000));
    this.range = `${seconds}s`;
    if (![...this.rangeSelect.options].some((o) => o.value === this.range)) {
      this.rangeSelect.append(el("option", { value: this.range }, this.range));
    }
    this.rangeSelect.value = this.range;
    this.end = Math.round(end);
    this.showEnd();
    this.changed();
  }

  shift(fraction) {
    const { end } = this.bounds();
    const next = end + fraction * parseRange(this.range);
    this.end = next >= Date.now() ? null : next;
    this.showEnd();
    this.changed();
  }

  showEnd() {
    if (this.end === null) {
      this.endInput.value = "";
      return;
    }
    const d = new Date(this.end - new Date(this.end).getTimezoneOffset() * 60000);
    this.endInput.value = d.toISOString().slice(0, 19);
  }

  changed() {
    this.onChange();
  }
}

// --- pages ---------------------------------------------------------------------------------------

function queryPage(root) {
  const params = new URLSearchParams(location.search);
  const state = {
    expr: params.get("g0.expr") || "",
    tab: params.get("g0.tab") === "1" ? "table" : "graph",
  };
  const editor = el("textarea", {
    class: "expr", rows: "2", spellcheck: "false", placeholder: "PromQL expression, e.g. rate(process_cpu_seconds_total[5m])",
    "aria-label": "PromQL expression",
    onkeydown: (event) => {
      if (event.key === "Enter" && !event.shiftKey) {
        event.preventDefault();
        run();
      }
    },
  });
  editor.value = state.expr;
  const metrics = el("select", { class: "metric-picker", "aria-label": "Insert a metric name", onchange: () => {
    if (!metrics.value) return;
    editor.value = editor.value ? `${editor.value}${metrics.value}` : metrics.value;
    metrics.value = "";
    editor.focus();
  } }, el("option", { value: "" }, "metrics…"));
  api("/api/v1/label/__name__/values").then((names) => {
    for (const name of names) metrics.append(el("option", { value: name }, name));
  }).catch(() => {});
  const status = el("div", { class: "query-status" });
  const output = el("div", { class: "query-output" });
  const tabs = el("div", { class: "tabs", role: "tablist" });
  let chart = null;
  const range = new TimeRange({
    range: params.get("g0.range_input") || "1h",
    end: params.get("g0.end_input") ? Date.parse(params.get("g0.end_input")) : null,
    onChange: () => run(),
  });

  function setTab(tab) {
    state.tab = tab;
    for (const button of tabs.children) button.setAttribute("aria-selected", String(button.dataset.tab === tab));
    range.root.hidden = tab !== "graph";
    run();
  }
  for (const [tab, label] of [["graph", "Graph"], ["table", "Table"]]) {
    const button = el("button", { type: "button", role: "tab", onclick: () => setTab(tab) }, label);
    button.dataset.tab = tab;
    tabs.append(button);
  }

  function remember() {
    const next = new URLSearchParams({ "g0.expr": editor.value, "g0.tab": state.tab === "table" ? "1" : "0", "g0.range_input": range.range });
    if (range.end !== null) next.set("g0.end_input", new Date(range.end).toISOString());
    history.replaceState(null, "", `/graph?${next}`);
  }

  let generation = 0;
  async function run() {
    const expr = editor.value.trim();
    remember();
    const mine = ++generation;
    if (!expr) {
      output.replaceChildren(el("p", { class: "hint" }, "Enter an expression and press Enter. Drag across the chart to zoom; click a legend entry to hide its series."));
      status.textContent = "";
      return;
    }
    status.textContent = "Loading…";
    const started = performance.now();
    try {
      if (state.tab === "table") {
        const time = range.end === null ? {} : { time: String(range.end / 1000) };
        const data = await api("/api/v1/query", { query: expr, ...time });
        if (mine !== generation) return;
        if (chart) { chart.destroy(); chart = null; }
        output.replaceChildren(resultTable(data));
        const count = Array.isArray(data.result) ? data.result.length : 1;
        status.textContent = `${count} result${count === 1 ? "" : "s"} · ${Math.round(performance.now() - started)} ms`;
      } else {
        const { start, end } = range.bounds();
        const step = stepFor(end - start, output.clientWidth || 900);
        const data = await api("/api/v1/query_range", {
          query: expr, start: String(start / 1000), end: String(end / 1000), step: String(step),
        });
        if (mine !== generation) return;
        const series = toSeries(data.result);
        if (!chart) {
          output.replaceChildren();
          chart = new Chart(output, { onZoom: (a, b) => range.zoom(a, b) });
        }
        chart.setData(series, start, end, step * 1000);
        const points = series.reduce((n, s) => n + s.points.length, 0);
        status.textContent = `${series.length} series · ${points} points · step ${step}s · ${Math.round(performance.now() - started)} ms`;
        if (!series.length) status.textContent += " · no data in this range";
      }
    } catch (err) {
      if (mine !== generation) return;
      if (chart) { chart.destroy(); chart = null; }
      output.replaceChildren(errorBox(err.message));
      status.textContent = "";
    }
  }

  root.replaceChildren(
    el("h1", {}, "Query"),
    el("div", { class: "query-box" }, editor, el("div", { class: "query-actions" },
      el("button", { type: "button", class: "primary", onclick: () => run() }, "Execute"), metrics)),
    el("div", { class: "toolbar" }, tabs, range.root, status),
    output);
  setTab(state.tab);
  editor.focus();
}

function resultTable(data) {
  if (data.resultType === "scalar" || data.resultType === "string") {
    return el("table", { class: "results" }, el("tbody", {}, el("tr", {}, el("td", {}, data.resultType), el("td", { class: "num" }, data.result[1]))));
  }
  if (!data.result.length) return el("p", { class: "hint" }, "Empty result: no series match at this time.");
  const rows = data.result.map((item) => {
    const value = data.resultType === "matrix"
      ? item.values.map(([t, v]) => `${v} @${t}`).join("\n")
      : item.value[1];
    return el("tr", {}, el("td", { class: "series" }, labelText(item.metric)), el("td", { class: "num" }, value));
  });
  return el("table", { class: "results" },
    el("thead", {}, el("tr", {}, el("th", {}, "Series"), el("th", {}, "Value"))),
    el("tbody", {}, rows));
}

function alertsPage(root) {
  const shown = new Set(["firing", "pending"]);
  // Rules the operator opened or closed stay so across refreshes.
  const opened = new Map();
  let groups = null;
  const body = el("div", {});
  const filters = el("div", { class: "filters" }, ["firing", "pending", "inactive"].map((state) => {
    const box = el("input", { type: "checkbox", checked: shown.has(state) ? "" : null, onchange: () => {
      if (box.checked) shown.add(state); else shown.delete(state);
      render();
    } });
    return el("label", {}, box, ` ${state}`);
  }));
  root.replaceChildren(el("h1", {}, "Alerts"), filters, body);
  function render() {
    if (!groups) return;
    const rules = groups.flatMap((group) => group.rules.map((rule) => ({ ...rule, group: group.name, file: group.file })));
    const counts = { firing: 0, pending: 0, inactive: 0 };
    for (const rule of rules) counts[rule.state] += 1;
    const visible = rules.filter((rule) => shown.has(rule.state));
    fill(body,
      el("p", { class: "summary" }, badge(`${counts.firing} firing`, "firing"), " ", badge(`${counts.pending} pending`, "pending"), " ", badge(`${counts.inactive} inactive`, "inactive")),
      rules.length ? null : el("p", { class: "hint" }, "No alerting rules are loaded: list rule files in standalone.rules.rule_files."),
      visible.map((rule) => {
        const key = `${rule.file};${rule.group};${rule.name}`;
        const open = opened.has(key) ? opened.get(key) : rule.state === "firing";
        const details = el("details", { class: `alert-rule state-${rule.state}`, open: open ? "" : null },
          el("summary", {}, badge(rule.state, rule.state), " ", el("b", {}, rule.name), ` (${rule.alerts.length} active)`, el("span", { class: "muted" }, ` ${rule.group} · ${rule.file}`)),
          el("pre", { class: "rule-def" }, ruleText(rule)),
          rule.alerts.length ? el("table", { class: "results" },
            el("thead", {}, el("tr", {}, ["Labels", "State", "Active since", "Value", "Annotations"].map((h) => el("th", {}, h)))),
            el("tbody", {}, rule.alerts.map((alert) => el("tr", {},
              el("td", {}, labelChips(alert.labels, ["alertname"])),
              el("td", {}, badge(alert.state, alert.state)),
              el("td", {}, `${formatInstant(Date.parse(alert.activeAt))} (${ago(alert.activeAt)})`),
              el("td", { class: "num" }, alert.value),
              el("td", {}, Object.entries(alert.annotations).map(([k, v]) => el("div", {}, el("b", {}, `${k}: `), v))))))) : null);
        details.addEventListener("toggle", () => opened.set(key, details.open));
        return details;
      }));
  }
  keepFresh(body, 10, async () => {
    try {
      groups = (await api("/api/v1/rules", { type: "alert" })).groups;
      render();
    } catch (err) {
      fill(body, errorBox(err.message));
    }
  });
}

function ruleText(rule) {
  const lines = [rule.type === "alerting" ? `alert: ${rule.name}` : `record: ${rule.name}`, `expr: ${rule.query}`];
  if (rule.duration) lines.push(`for: ${rule.duration}s`);
  if (rule.keepFiringFor) lines.push(`keep_firing_for: ${rule.keepFiringFor}s`);
  for (const [title, pairs] of [["labels", rule.labels], ["annotations", rule.annotations]]) {
    if (pairs && Object.keys(pairs).length) {
      lines.push(`${title}:`);
      for (const [k, v] of Object.entries(pairs)) lines.push(`  ${k}: ${v}`);
    }
  }
  return lines.join("\n");
}

function rulesPage(root) {
  const body = el("div", {});
  root.replaceChildren(el("h1", {}, "Rules"), body);
  keepFresh(body, 30, async () => {
    let groups;
    try {
      groups = (await api("/api/v1/rules")).groups;
    } catch (err) {
      fill(body, errorBox(err.message));
      return;
    }
    fill(body,
      groups.length ? null : el("p", { class: "hint" }, "No rule groups are loaded: list rule files in standalone.rules.rule_files, then reload (SIGHUP, or POST /-/reload with standalone.server.enable_lifecycle)."),
      groups.map((group) => el("section", { class: "rule-group" },
        el("h2", {}, group.name, el("span", { class: "muted" }, ` ${group.file} · every ${group.interval}s · last ${ago(group.lastEvaluation)} · took ${formatValue(group.evaluationTime, "seconds")}`)),
        el("table", { class: "results" },
          el("thead", {}, el("tr", {}, ["Rule", "Health", "Last evaluation", "Took"].map((h) => el("th", {}, h)))),
          el("tbody", {}, group.rules.map((rule) => el("tr", {},
            el("td", {}, el("pre", { class: "rule-def" }, ruleText(rule)), rule.lastError ? errorBox(rule.lastError) : null),
            el("td", {}, badge(rule.health, rule.health === "ok" ? "up" : rule.health === "err" ? "down" : "inactive")),
            el("td", {}, ago(rule.lastEvaluation)),
            el("td", { class: "num" }, formatValue(rule.evaluationTime, "seconds")))))))));
  });
}

function targetsPage(root) {
  let targets = null;
  const onlyUnhealthy = el("input", { type: "checkbox", onchange: () => render() });
  const body = el("div", {});
  root.replaceChildren(el("h1", {}, "Targets"), el("div", { class: "filters" }, el("label", {}, onlyUnhealthy, " only unhealthy")), body);
  function render() {
    if (!targets) return;
    const jobs = new Map();
    for (const target of targets) {
      if (!jobs.has(target.scrapePool)) jobs.set(target.scrapePool, []);
      jobs.get(target.scrapePool).push(target);
    }
    fill(body, targets.length ? null : el("p", { class: "hint" }, "No scrape targets: add [[standalone.scrape_targets]] to the configuration."));
    for (const [job, list] of jobs) {
      const up = list.filter((t) => t.health === "up").length;
      const rows = list.filter((t) => !onlyUnhealthy.checked || t.health !== "up");
      if (!rows.length) continue;
      body.append(el("section", { class: "job" },
        el("h2", {}, job, " ", badge(`${up}/${list.length} up`, up === list.length ? "up" : "down")),
        el("table", { class: "results targets" },
          el("thead", {}, el("tr", {}, ["Endpoint", "State", "Labels", "Last scrape", "Duration", "Error"].map((h) => el("th", {}, h)))),
          el("tbody", {}, rows.map((t) => el("tr", { class: `target-${t.health}` },
            el("td", {}, el("a", { href: t.scrapeUrl }, t.scrapeUrl)),
            el("td", {}, badge(t.health.toUpperCase(), t.health === "up" ? "up" : t.health === "down" ? "down" : "inactive")),
            el("td", {}, labelChips(t.labels, ["job"])),
            el("td", {}, ago(t.lastScrape)),
            el("td", { class: "num" }, formatValue(t.lastScrapeDuration, "seconds")),
            el("td", { class: "target-error" }, t.lastError || "")))))));
    }
  }
  keepFresh(body, 10, async () => {
    try {
      targets = (await api("/api/v1/targets")).activeTargets;
      render();
    } catch (err) {
      fill(body, errorBox(err.message));
    }
  });
}

function dashboardsPage(root, id) {
  const dashboard = DASHBOARDS.find((d) => d.id === id);
  const list = el("nav", { class: "dashboard-list" }, DASHBOARDS.map((d) =>
    el("a", { href: `/dashboards/${d.id}`, class: d.id === id ? "active" : null, "data-link": "" }, d.title)));
  if (!dashboard) {
    root.replaceChildren(el("h1", {}, "Dashboards"), el("div", { class: "dashboard-cards" }, DASHBOARDS.map((d) =>
      el("a", { class: "card", href: `/dashboards/${d.id}`, "data-link": "" }, el("h2", {}, d.title), el("p", {}, d.description)))));
    return;
  }
  const grid = el("div", { class: "panels" });
  const panels = [];
  const refreshSelect = el("select", { "aria-label": "Refresh every", onchange: () => schedule() },
    [["0", "no refresh"], ["15", "every 15s"], ["30", "every 30s"], ["60", "every 1m"]].map(([v, t]) => el("option", { value: v }, t)));
  refreshSelect.value = "30";
  const range = new TimeRange({ range: "1h", onChange: () => refresh() });
  root.replaceChildren(list, el("div", { class: "toolbar" }, el("h1", {}, dashboard.title), range.root, refreshSelect),
    el("p", { class: "muted" }, dashboard.description), grid);
  for (const panel of dashboard.panels) {
    const body = el("div", { class: "panel-body" });
    const section = el("section", { class: "panel" }, el("h3", {}, panel.title, el("a", {
      class: "panel-link", title: "Open in the query page", "data-link": "",
      href: `/graph?${new URLSearchParams({ "g0.expr": panel.queries[0].expr, "g0.tab": panel.table ? "1" : "0" })}`,
    }, "↗")), body);
    grid.append(section);
    panels.push({ panel, body, chart: null });
  }
  async function refresh() {
    const { start, end } = range.bounds();
    await Promise.all(panels.map(async (entry) => {
      const { panel, body } = entry;
      try {
        if (panel.table) {
          const results = await Promise.all(panel.queries.map((q) => api("/api/v1/query", { query: q.expr })
            .then((data) => data.result.map((item) => ({ name: legendFor(q.legend, item.metric), value: Number(item.value[1]) })))));
          const rows = results.flat();
          body.replaceChildren(rows.length ? el("table", { class: "results compact" }, el("tbody", {}, rows.map((row) =>
            el("tr", {}, el("td", {}, row.name), el("td", { class: "num" }, formatValue(row.value, panel.unit || "")))))) :
            el("p", { class: "hint" }, "no data"));
          return;
        }
        const step = stepFor(end - start, (body.clientWidth || 600));
        const results = await Promise.all(panel.queries.map((q) => api("/api/v1/query_range", {
          query: q.expr, start: String(start / 1000), end: String(end / 1000), step: String(step),
        }).then((data) => toSeries(data.result, q.legend))));
        const series = results.flat();
        if (!series.length) {
          if (entry.chart) { entry.chart.destroy(); entry.chart = null; }
          body.replaceChildren(el("p", { class: "hint" }, "no data in this range"));
          return;
        }
        if (!entry.chart) {
          body.replaceChildren();
          entry.chart = new Chart(body, { unit: panel.unit || "", height: 200, onZoom: (a, b) => range.zoom(a, b) });
        }
        entry.chart.setData(series, start, end, step * 1000);
      } catch (err) {
        if (entry.chart) { entry.chart.destroy(); entry.chart = null; }
        body.replaceChildren(errorBox(err.message));
      }
    }));
  }
  let timer = null;
  function schedule() {
    clearInterval(timer);
    const seconds = Number(refreshSelect.value);
    if (seconds > 0) timer = setInterval(() => { if (document.body.contains(grid)) refresh(); else clearInterval(timer); }, seconds * 1000);
  }
  schedule();
  refresh();
}

// --- routing -------------------------------------------------------------------------------------

const PAGES = [
  ["/graph", "Query", queryPage],
  ["/alerts", "Alerts", alertsPage],
  ["/rules", "Rules", rulesPage],
  ["/targets", "Targets", targetsPage],
  ["/dashboards", "Dashboards", (root) => dashboardsPage(root, location.pathname.split("/")[2])],
];

function route() {
  const main = document.getElementById("main");
  const path = location.pathname === "/" ? "/graph" : location.pathname;
  const page = PAGES.find(([prefix]) => path === prefix || path.startsWith(`${prefix}/`)) || PAGES[0];
  for (const link of document.querySelectorAll("header nav a")) {
    link.classList.toggle("active", link.getAttribute("href") === page[0]);
  }
  document.title = `${page[1]} · nightlight`;
  page[2](main);
}

function navigate(href) {
  history.pushState(null, "", href);
  route();
}

function start() {
  const nav = document.querySelector("header nav");
  for (const [path, title] of PAGES) nav.append(el("a", { href: path, "data-link": "" }, title));
  document.addEventListener("click", (event) => {
    const link = event.target.closest("a[data-link]");
    if (!link || event.ctrlKey || event.metaKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    navigate(link.getAttribute("href"));
  });
  window.addEventListener("popstate", route);
  route();
}

start();
