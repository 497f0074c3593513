#!/usr/bin/env bash
# nightlight against the real Prometheus (Debian's 2.42), differentially: two hours of generated
# OpenMetrics data (counters with resets and gaps, gauges, a histogram, a summary) backfilled into
# Prometheus with promtool and imported into nightlight through /api/v1/import, then the PromQL
# corpus (tests/e2e/nightlight/corpus.promql) asked of both as instant and range queries and the
# answers compared (compare.py). Then a second Prometheus scrapes nightlight's /metrics and
# remote-writes what it scrapes to nightlight, which must answer for it.
set -euo pipefail
cd "$(dirname "$0")/../.."

source tests/e2e/lib/build.sh
bin=target/debug/nightlight
source tests/e2e/lib/checks.sh
source tests/e2e/lib/scratch.sh
source tests/e2e/nightlight/lib.sh

make_data
backfill "$work/prometheus"
printf 'global:\n  evaluation_interval: 1m\n' >"$work/prometheus.yml"
prom_port=$(free_port)
start_prometheus prometheus "$work/prometheus.yml" "$work/prometheus" "$prom_port"

nl_port=$(free_port)
cat >"$work/nightlight.toml" <<CONF
[photon]
component_id = "e2e-nightlight"

[standalone.server]
http_addr = "127.0.0.1:$nl_port"

[standalone.storage]
data_dir = "$work/nightlight"
retention_days = 3650

[standalone.collection]
self_scrape = false
CONF
"$bin" --config "$work/nightlight.toml" >"$work/nightlight.log" 2>&1 &
pids+=($!)
prom="http://127.0.0.1:$prom_port"
nl="http://127.0.0.1:$nl_port"
wait_ready "$prom/-/ready" "$work/prometheus.log"
wait_ready "$nl/-/ready" "$work/nightlight.log"

check "Prometheus has the backfilled series" "$data_series" "$(series_count "$prom")"
imported=$(curl -s -o "$work/import.out" -w '%{http_code}' --max-time 30 \
  -H 'Content-Type: application/openmetrics-text; version=1.0.0' --data-binary "@$work/data.om" "$nl/api/v1/import" || true)
check "nightlight imports the OpenMetrics file" "204" "$imported"
if [ "$imported" == 204 ]; then
  check "nightlight has the imported series" "$data_series" "$(series_count "$nl")"
  compare_corpus prometheus,nightlight "$prom" "$nl"
else
  [ ! -s "$work/import.out" ] || { head -c 2000 "$work/import.out" | sed 's/^/  /'; echo; }
  check "PromQL corpus (not run: the import failed)" "run" "not run"
fi
# promtool refuses such a file too ("data does not end with # EOF").
check "nightlight refuses an import without # EOF" "400" \
  "$(printf '# TYPE e2e_refused gauge\ne2e_refused 1 %s\n' "$data_end" | curl -s -o /dev/null -w '%{http_code}' \
    -H 'Content-Type: application/openmetrics-text; version=1.0.0' --data-binary @- "$nl/api/v1/import")"

# A real Prometheus scrapes nightlight every second and remote-writes the samples to it.
remote_port=$(free_port)
cat >"$work/remote.yml" <<CONF
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: remote
    static_configs:
      - targets: ["127.0.0.1:$nl_port"]
remote_write:
  - url: http://127.0.0.1:$nl_port/api/v1/write
    queue_config:
      batch_send_deadline: 1s
CONF
# (At exit it would wait a minute, the default flush deadline, to send what nightlight, stopped
# at the same time, no longer takes.)
start_prometheus remote "$work/remote.yml" "$work/remote" "$remote_port" --storage.remote.flush-deadline=1s
wait_ready "http://127.0.0.1:$remote_port/-/ready" "$work/remote.log"
nl_value() { # query: the values of nightlight's instant answer, or "none", or the error
  curl -s -G --max-time 5 "$nl/api/v1/query" --data-urlencode "query=$1" | python3 -c 'import json, sys
try:
    doc = json.load(sys.stdin)
    values = [s["value"][1] for s in doc["data"]["result"]] if doc["status"] == "success" else [doc["error"]]
    print(" ".join(values) or "none")
except Exception as e: print(f"no answer ({type(e).__name__})")'
}
for _ in $(seq 1 60); do
  [ "$(nl_value 'up{job="remote"}')" == 1 ] && [ "$(nl_value 'count({job="remote"}) > 10')" != none ] && break
  sleep 0.5
done
check "remote write: nightlight has up{job=\"remote\"} = 1" "1" "$(nl_value 'up{job="remote"}')"
check "remote write: nightlight has its own scraped metrics" "yes" \
  "$(nl_value 'count({job="remote"}) > 10' | awk '{print ($1 != "none" && $1 > 10) ? "yes" : "no: " $0}')"
check "remote write: Prometheus counts no failed samples" "0" \
  "$(curl -s "http://127.0.0.1:$remote_port/metrics" | awk '/^prometheus_remote_storage_samples_failed_total/ {print $2}')"

# photonctl metrics against nightlight: a query and the targets table.
photonctl=target/debug/photonctl
check "photonctl metrics query prints the series and its value" \
  "up{instance=\"127.0.0.1:$nl_port\", job=\"remote\"}  1" \
  "$("$photonctl" metrics query --endpoint "$nl" 'up{job="remote"}')"
contains "photonctl metrics query reports a bad expression with nightlight's reason" \
  '400 Bad Request: invalid parameter "query"' \
  "$("$photonctl" metrics query --endpoint "$nl" 'up[' 2>&1 || true)"
contains "photonctl metrics query --output json passes the answer through" '"resultType": "vector"' \
  "$("$photonctl" metrics query --endpoint "$nl" 'vector(1)' --output json)"
contains "photonctl metrics targets lists the (empty) target table" "JOB" \
  "$("$photonctl" metrics targets --endpoint "$nl")"

summary "nightlight against Prometheus (PromQL corpus, import, remote write, photonctl metrics)"
