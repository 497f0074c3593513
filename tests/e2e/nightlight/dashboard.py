#!/usr/bin/env python3
"""The web UI in headless Chromium (nightlight-dashboard.sh).

  dashboard.py NIGHTLIGHT_URL ARTIFACT_DIR DOWN_TARGET

Every page loads with no console errors; a query draws a chart and zooms on a drag; the table
tab lists series; the targets page shows the down target with its error; alerts, rules and the
built-in dashboards render. Screenshots go to ARTIFACT_DIR. Prints one line per check and
"dashboard: N passed, M failed".
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
from webdriver import Browser  # noqa: E402

base, artifacts, down_target = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(artifacts, exist_ok=True)
passed = failed = 0


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL {name}" + (f"\n  {detail}" if detail else ""))


def no_console_errors(page):
    errors = [message for level, message in browser.console() if level == "SEVERE"]
    check(f"{page}: no console errors", not errors, "\n  ".join(errors))


def shot(name):
    path = os.path.join(artifacts, f"{name}.png")
    browser.screenshot(path)
    print(f"screenshot {path}")


# Pixels of a chart's canvas in the first series' colour (#1f77b4): a line was drawn.
COLOURED_PIXELS = """
const canvas = document.querySelector(arguments[0]);
if (!canvas || !canvas.width) return 0;
const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
let count = 0;
for (let i = 0; i < data.length; i += 4) {
  if (Math.abs(data[i] - 31) < 30 && Math.abs(data[i + 1] - 119) < 30 && Math.abs(data[i + 2] - 180) < 30) count++;
}
return count;
"""

browser = Browser()
try:
    # The query page: a chart of a day of data.
    started = time.time()
    browser.get(f"{base}/graph?g0.range_input=1d")
    check("query page title", browser.wait_for("return document.title === 'Query · nightlight'"))
    browser.type("textarea.expr", "rate(e2e_requests_total[5m])\n")
    status = browser.wait_for(
        "const s = document.querySelector('.query-status').textContent; return s.includes('series') ? s : ''")
    check("a range query reports its series", "2 series" in (status or ""), status)
    lit = browser.wait_for(COLOURED_PIXELS, 10, ".chart canvas")
    check("the chart draws lines", (lit or 0) > 200, f"{lit} coloured pixels")
    print(f"query page with a day of data ready in {time.time() - started:.2f}s")
    legend = browser.script("return [...document.querySelectorAll('.legend-item')].map(e => e.textContent)")
    check("the legend names both series", len(legend) == 2 and all("e2e_requests_total" not in n for n in legend)
          and any('path="/a"' in n for n in legend), legend)
    no_console_errors("query page")
    shot("query-graph")

    # Drag across the middle of the chart: the range shrinks and the URL says so.
    before = browser.script("return location.search")
    browser.drag(".chart canvas", 0.4, 0.6)
    after = browser.wait_for("return location.search !== arguments[0] ? location.search : ''", 10, before)
    check("dragging across the chart zooms in", after and "g0.range_input=" in after and "g0.end_input=" in after
          and "1d" not in after, f"{before} -> {after}")
    shot("query-zoomed")

    browser.click(".tabs button:nth-child(2)")
    rows = browser.wait_for("return document.querySelectorAll('table.results tbody tr').length")
    check("the table tab lists the series", rows == 2, rows)
    no_console_errors("query table")
    shot("query-table")

    # A bad expression shows the server's reason.
    browser.script("document.querySelector('textarea.expr').value = ''")
    browser.type("textarea.expr", "sum(\n")
    error = browser.wait_for("const e = document.querySelector('.error'); return e ? e.textContent : ''")
    check("a bad expression shows the server's error", "bad_data" in (error or ""), error)
    # Chromium logs the 400 itself; that one entry is expected, anything else is not.
    unexpected = [m for level, m in browser.console() if level == "SEVERE" and "query=sum%28" not in m]
    check("a bad expression logs nothing but its 400", not unexpected, unexpected)

    # Links from alert notifications (generatorURL) open the query page.
    browser.get(f"{base}/graph?g0.expr=up&g0.tab=1")
    rows = browser.wait_for("return document.querySelectorAll('table.results tbody tr').length")
    check("a generatorURL link opens the expression as a table", rows == 3, rows)

    browser.get(f"{base}/targets")
    row = browser.wait_for(
        "const r = [...document.querySelectorAll('tr.target-down')]; return r.length ? r[0].textContent : ''")
    check("the targets page shows the down target", down_target in (row or "") and "DOWN" in (row or ""), row)
    check("the down target's error is shown", "connect" in (row or "").lower(), row)
    up_rows = browser.script("return document.querySelectorAll('tr.target-up').length")
    check("the targets page shows the up targets", up_rows == 2, up_rows)
    no_console_errors("targets page")
    shot("targets")

    browser.get(f"{base}/alerts")
    text = browser.wait_for(
        "const d = document.querySelector('details.alert-rule'); return d ? document.querySelector('main').textContent : ''")
    check("the alerts page shows the firing alert", "E2ETargetDown" in (text or "") and "firing" in (text or ""), text)
    check("the alert's annotation is expanded", f"{down_target} of broken is down" in (text or ""), text)
    no_console_errors("alerts page")
    shot("alerts")

    browser.get(f"{base}/rules")
    text = browser.wait_for(
        "const t = document.querySelector('section.rule-group'); return t ? t.textContent : ''")
    check("the rules page lists the groups' rules", "job:e2e_requests:rate5m" in (text or ""), text)
    no_console_errors("rules page")
    shot("rules")

    browser.get(f"{base}/dashboards")
    cards = browser.wait_for("return document.querySelectorAll('.dashboard-cards .card').length")
    check("the dashboards page lists the built-in dashboards", cards >= 6, cards)
    for dashboard in ["overview", "nightlight", "chainfire"]:
        started = time.time()
        browser.get(f"{base}/dashboards/{dashboard}")
        settled = browser.wait_for(
            "const p = document.querySelectorAll('.panel'); return p.length && [...p].every(e => "
            "e.querySelector('canvas, table, .hint, .error')) ? p.length : 0", 20)
        errors = browser.script("return [...document.querySelectorAll('.panel .error')].map(e => e.textContent)")
        check(f"dashboard {dashboard}: every panel renders", settled and not errors, errors)
        charts = browser.script("return document.querySelectorAll('.panel canvas').length")
        if dashboard != "chainfire":  # nothing here scrapes a chainfire
            check(f"dashboard {dashboard}: charts drawn", charts >= 2, charts)
        print(f"dashboard {dashboard}: {settled} panels, {charts} charts in {time.time() - started:.2f}s")
        no_console_errors(f"dashboard {dashboard}")
        shot(f"dashboard-{dashboard}")
finally:
    browser.close()

print(f"dashboard: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
