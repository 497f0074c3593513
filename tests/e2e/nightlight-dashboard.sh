#!/usr/bin/env bash
# nightlight's web UI in headless Chromium (Debian's chromium and chromium-driver), driven over
# WebDriver (tests/e2e/nightlight/dashboard.py): a day of imported history plus live scrapes of an
# exporter, a target that is down and nightlight itself, with a rule file. Every page must load
# without console errors, a query must draw (and zoom) a chart, the targets page must show the
# down target. Screenshots are kept in target/e2e-artifacts/nightlight-dashboard/.
set -euo pipefail
cd "$(dirname "$0")/../.."

source tests/e2e/lib/build.sh
bin=target/debug/nightlight
source tests/e2e/lib/checks.sh
source tests/e2e/lib/scratch.sh
source tests/e2e/nightlight/lib.sh
fixtures=tests/e2e/nightlight
artifacts=target/e2e-artifacts/nightlight-dashboard
rm -rf "$artifacts"

exporter_port=$(free_port)
down_port=$(free_port)
nl_port=$(free_port)
nl="http://127.0.0.1:$nl_port"
python3 "$fixtures/http_fixtures.py" exporter "$work/exposition.prom" "$exporter_port" &
pids+=($!)
cat >"$work/rules.yml" <<'EOF'
groups:
  - name: e2e
    interval: 1s
    rules:
      - record: job:e2e_requests:rate5m
        expr: sum by (job) (rate(e2e_requests_total[5m]))
      - alert: E2ETargetDown
        expr: up{job="broken"} == 0
        annotations:
          summary: "{{ $labels.instance }} of {{ $labels.job }} is down"
EOF
write_config() { # with-targets
  cat >"$work/nightlight.toml" <<CONF
[photon]
component_id = "e2e-dashboard"

[standalone.server]
http_addr = "127.0.0.1:$nl_port"

[standalone.storage]
data_dir = "$work/nightlight"

[standalone.collection]
scrape_interval_sec = 1
scrape_timeout_sec = 1
self_scrape = $1

[standalone.rules]
rule_files = ["$work/rules.yml"]
CONF
  if [ "$1" == true ]; then
    cat >>"$work/nightlight.toml" <<CONF

[[standalone.scrape_targets]]
name = "demo"
static_configs = ["127.0.0.1:$exporter_port"]

[[standalone.scrape_targets]]
name = "broken"
static_configs = ["127.0.0.1:$down_port"]
CONF
  fi
}

# A day of history for the exporter's series (imported before it is scraped, so the scrapes
# continue the same series), then nightlight again with its targets.
write_config false
"$bin" --config "$work/nightlight.toml" >"$work/nightlight.log" 2>&1 &
pid=$!
wait_ready "$nl/-/ready" "$work/nightlight.log"
# The exporter then serves the counters where the history left them.
python3 - "$exporter_port" "$work/exposition.prom" >"$work/history.om" <<'PY'
import math, sys, time
port, exposition, now = sys.argv[1], sys.argv[2], int(time.time()) - 60
print("# TYPE e2e_requests counter")
latest = []
for path, scale in (("/a", 2.0), ("/b", 0.2)):
    total = 0.0
    for t in range(now - 86400, now, 30):
        # A daily rhythm, so the chart has a shape to look at.
        total += 30 * scale * (1.2 + math.sin(2 * math.pi * (t % 86400) / 86400))
        print(f'e2e_requests_total{{job="demo",instance="127.0.0.1:{port}",path="{path}"}} {total:.1f} {t}')
    latest.append(f'e2e_requests_total{{path="{path}"}} {total:.1f}')
print("# EOF")
with open(exposition, "w") as out:
    out.write("# TYPE e2e_requests_total counter\n" + "\n".join(latest) + "\n")
PY
check "a day of history imports" 204 "$(curl -s -o /dev/null -w '%{http_code}' \
  -H 'Content-Type: application/openmetrics-text; version=1.0.0' --data-binary "@$work/history.om" "$nl/api/v1/import")"
kill "$pid"
wait "$pid" || true

write_config true
"$bin" --config "$work/nightlight.toml" >>"$work/nightlight.log" 2>&1 &
pids+=($!)
wait_ready "$nl/-/ready" "$work/nightlight.log"
# A few scrapes and evaluations, so rates and alerts exist.
sleep 4

python3 "$fixtures/dashboard.py" "$nl" "$artifacts" "127.0.0.1:$down_port" | tee "$work/dashboard.out" || true
dashboard=$(tail -1 "$work/dashboard.out")
passed_in_browser=$(sed -nE 's/^dashboard: ([0-9]+) passed, 0 failed$/\1/p' <<<"$dashboard")
check "the browser checks pass" "dashboard: ${passed_in_browser:-?} passed, 0 failed" "$dashboard"
check "screenshots are saved" yes "$([ -s "$artifacts/query-graph.png" ] && [ -s "$artifacts/targets.png" ] && echo yes || echo no)"
echo "screenshots: $artifacts"

summary nightlight-dashboard
