#!/usr/bin/env bash
# nightlight vs Prometheus 2.42 (Debian's /usr/bin/prometheus) side by side on this machine with
# the same load generator (bench/src/remote_write_load.rs): SERIES series shaped like typical
# exporters' (100 metric names: counters, gauges, histogram buckets; job, instance and one or
# two of code/method/le/cpu/mode/device), one sample every 15 s over the last HOURS hours, sent
# by remote write 1.0 (2000 series × 4 samples per request, 4 requests in flight) to one server,
# then the same bytes to the other; the servers never ingest at the same time. Not a test: it
# never gates CI. The generator shares the machine's CPUs with the server it loads.
#   bench/nightlight.sh [SERIES] [HOURS]      (defaults: 100000 series, 2 hours)
#
# Order and age: the samples go out oldest time slots first (every series' 4 oldest samples,
# then the next 4, ...), each series strictly in time order; what is in flight spans a few
# minutes. Both servers accept that with no refusal. Prometheus refuses (400 "out of bounds")
# samples older than its head's newest sample minus one hour, so series after series (each
# series' whole range at once: remote-write-load --order series) is not possible with it for
# more than an hour of data; both refuse (400 "out of order") a sample older than its series'
# newest.
#
# What is measured, for each server:
# - ingest: samples/s on the wall clock (the generator's bodies are built before the clock
#   starts), and samples per CPU-second of the server process (utime+stime from /proc/PID/stat
#   over the ingest; also over the ingest plus a 10 s settle, which catches deferred work).
# - memory: VmRSS after the ingest and the 10 s settle, divided by the server's own count of
#   series in its head; for Prometheus also its Go heap in use after a forced GC (pprof
#   ?gc=1), which is what its live data needs, RSS being what the machine pays.
# - queries: query_range over the whole range at step 60 s, 4 dashboard queries, 5 runs each,
#   the median, with both servers up and idle after both ingests, the runs alternating between
#   them (so that other load on the machine weighs on both alike); the answers of both servers
#   are compared point by point.
# - disk: `du -sb` of the data directory after SIGTERM (nightlight checkpoints its open chunks
#   at shutdown; Prometheus leaves its WAL and memory-mapped head chunks: it cuts a 2 h block
#   only once its head spans 3 h), divided by the samples the server counts as stored. That
#   state of Prometheus is mostly WAL, which it compacts into blocks (index + chunks) hours
#   later, so its settled form is measured too: before SIGTERM, a snapshot through its admin
#   API writes the head as a block, and the snapshot's size is that form. The table shows both;
#   the block is the fair comparison of storage efficiency.
# Durability differs: nightlight fdatasyncs its log before answering a write; Prometheus does
# not (its WAL is synced per segment).
set -euo pipefail
cd "$(dirname "$0")/.."
series=${1:-100000}
hours=${2:-2}
concurrency=4
batch=2000
per_request=4
runs=5

command -v prometheus >/dev/null || { echo "needs prometheus: apt-get install prometheus"; exit 1; }
source scripts/lib/release-build.sh
load=target/release/remote-write-load
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_ready() { for _ in $(seq 1 300); do curl -sf -o /dev/null "$1/-/ready" && return 0; sleep 0.1; done; echo "$1 never became ready"; exit 1; }
ticks=$(getconf CLK_TCK)
# utime + stime of a process in clock ticks (fields 14 and 15; the name in field 2 may hold spaces).
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{printf "%d\n", $12 + $13}'; }
rss_bytes() { awk '/^VmRSS:/ {printf "%d\n", $2 * 1024}' "/proc/$1/status"; }
# The sum of every sample of one metric name in a server's own /metrics.
metric() { curl -sf "$1/metrics" | awk -v m="$2" '$1 == m || index($1, m "{") == 1 {s += $NF} END {printf "%.0f\n", s}'; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {print v[int((NR + 1) / 2)]}'; }

# The same data for both: the newest sample at the start of this run, rounded to the interval.
end_ms=$(python3 -c 'import time; t = int(time.time() * 1000); print(t - t % 15000)')
start_s=$(python3 -c "import sys; print(($end_ms - round($hours * 3600) * 1000 + 15000) / 1000)")
end_s=$(python3 -c "print($end_ms / 1000)")
queries=(
  'sum(rate(http_requests_total[5m]))'
  'sum by (job) (rate(node_cpu_seconds_total[5m]))'
  'histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))'
  'avg(node_memory_Active_bytes)'
)
results=$work/results
: >"$results"
note() { echo "$1 $2 $3" >>"$results"; }

echo "nightlight at $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- nightlight || echo '+local changes'), $(prometheus --version 2>&1 | head -1)"
echo "$series series × $hours h at 15 s ($(python3 -c "print(round($hours * 240) * $series)") samples), $concurrency requests in flight of $batch series × $per_request samples"

declare -A url dir pid

# Starts one server on a fresh data directory, loads it and measures its CPU and memory.
ingest() { # name
  local name=$1 port
  port=$(free_port); url[$name]=http://127.0.0.1:$port; dir[$name]=$work/$name-data
  mkdir -p "${dir[$name]}"
  case $name in
    nightlight)
      cat >"$work/nightlight.toml" <<CONF
[photon]
component_id = "bench-nightlight"
[photon.logging]
level = "warn"
[standalone.server]
http_addr = "127.0.0.1:$port"
[standalone.storage]
data_dir = "${dir[$name]}"
retention_days = 3650
[standalone.collection]
self_scrape = false
CONF
      target/release/nightlight --config "$work/nightlight.toml" >"$work/nightlight.log" 2>&1 &
      ;;
    prometheus)
      printf 'global:\n  scrape_interval: 15s\n' >"$work/prometheus.yml"
      prometheus --config.file="$work/prometheus.yml" --storage.tsdb.path="${dir[$name]}" \
        --web.listen-address="127.0.0.1:$port" --web.enable-remote-write-receiver --web.enable-admin-api \
        --storage.tsdb.retention.time=3650d --log.level=warn >"$work/prometheus.log" 2>&1 &
      ;;
  esac
  pid[$name]=$!
  pids+=("${pid[$name]}")
  local u=${url[$name]} p=${pid[$name]}
  wait_ready "$u"

  local cpu0 cpu1 cpu2 line
  cpu0=$(cpu_ticks "$p")
  line=$("$load" --url "$u/api/v1/write" --series "$series" --hours "$hours" --interval-sec 15 \
    --concurrency "$concurrency" --batch "$batch" --samples-per-series "$per_request" --end-ms "$end_ms" 2>"$work/$name.load.err")
  cpu1=$(cpu_ticks "$p")
  { grep -v 'bodies built' "$work/$name.load.err" || true; } | sed 's/^/  /'
  echo "$name: $line"
  sleep 10
  cpu2=$(cpu_ticks "$p")
  note "$name" rss "$(rss_bytes "$p")"
  if [ "$name" = nightlight ]; then
    note "$name" head "$(metric "$u" photon_nightlight_head_series)"
    note "$name" stored "$(metric "$u" photon_nightlight_samples_appended_total)"
  else
    note "$name" head "$(metric "$u" prometheus_tsdb_head_series)"
    note "$name" stored "$(metric "$u" prometheus_tsdb_head_samples_appended_total)"
    curl -sf -o /dev/null "$u/debug/pprof/heap?gc=1"
    note "$name" go_heap "$(metric "$u" go_memstats_heap_inuse_bytes)"
    note "$name" rss_after_gc "$(rss_bytes "$p")"
  fi
  local key
  for key in samples_per_sec errors error_samples retries samples; do
    note "$name" "$key" "$(sed -E "s/.*(^| )$key=([0-9.]+).*/\2/" <<<"$line")"
  done
  note "$name" cpu_ingest "$(python3 -c "print(($cpu1 - $cpu0) / $ticks)")"
  note "$name" cpu_settle "$(python3 -c "print(($cpu2 - $cpu0) / $ticks)")"
}

# Stops a server with SIGTERM and measures its data directory (Prometheus: also as a block).
stop() { # name
  local name=$1 u=${url[$1]} d=${dir[$1]} p=${pid[$1]}
  if [ "$name" = prometheus ]; then
    local snapshot
    snapshot=$(curl -sf -XPOST "$u/api/v1/admin/tsdb/snapshot" | python3 -c 'import json, sys; print(json.load(sys.stdin)["data"]["name"])')
    note "$name" disk_block "$(du -sb "$d/snapshots/$snapshot" | cut -f1)"
  fi
  local stopping stopped
  stopping=$(date +%s.%N)
  kill -TERM "$p"
  wait "$p" || true
  stopped=$(date +%s.%N)
  pids=("${pids[@]/$p}")
  note "$name" shutdown_s "$(python3 -c "print(round($stopped - $stopping, 2))")"
  note "$name" disk "$(du -sb --exclude=snapshots "$d" | cut -f1)"
  echo "  $name data dir after SIGTERM: $(cd "$d" && du -sb --exclude=snapshots -- * 2>/dev/null | awk '{printf "%s %.1f MiB  ", $2, $1 / 1048576}')"
  local problems
  # Prometheus logs its own SIGTERM as a warning.
  problems=$(grep -iE 'warn|error' "$work/$name.log" | grep -v 'Received SIGTERM' || true)
  if [ -n "$problems" ]; then
    echo "  $name log: $(wc -l <<<"$problems") warning/error line(s), the first ones:"
    head -5 <<<"$problems" | cut -c1-300 | sed 's/^/    /'
  fi
}

ingest nightlight
ingest prometheus
# The queries, with both servers up and idle: each query's runs alternate between the two, so
# that other load on the machine weighs on both alike.
declare -A times
for i in "${!queries[@]}"; do
  for run in $(seq 1 "$runs"); do
    for name in nightlight prometheus; do
      t=$(curl -sf -o "$work/$name.q$i.json" -w '%{time_total}' -G "${url[$name]}/api/v1/query_range" \
        --data-urlencode "query=${queries[$i]}" -d "start=$start_s" -d "end=$end_s" -d step=60) \
        || { echo "$name: query ${queries[$i]} failed: $(cat "$work/$name.q$i.json" 2>/dev/null)"; t=nan; }
      times[$name.$i]+=" $t"
    done
  done
  for name in nightlight prometheus; do
    # shellcheck disable=SC2086 # the list of times, one word each
    note "$name" "q$i" "$(python3 -c "print($(median ${times[$name.$i]}) * 1000)")"
  done
done
stop nightlight
stop prometheus

python3 - "$results" "$work" "${queries[@]}" <<'PY'
import json, math, sys

path, work, queries = sys.argv[1], sys.argv[2], sys.argv[3:]
r = {"nightlight": {}, "prometheus": {}}
for line in open(path):
    server, key, value = line.split()
    r[server][key] = float(value)
n, p = r["nightlight"], r["prometheus"]
for s in (n, p):
    s["per_cpu"] = s["stored"] / s["cpu_ingest"] if s["cpu_ingest"] else math.inf
    s["per_cpu_settle"] = s["stored"] / s["cpu_settle"] if s["cpu_settle"] else math.inf
    s["rss_per_series"] = s["rss"] / max(s["head"], 1)
    s["disk_per_sample"] = s["disk"] / max(s["stored"], 1)
p["block_per_sample"] = p["disk_block"] / max(p["stored"], 1)

print()
for name, s in r.items():
    print(f"{name}: stored {s['stored']:.0f} of {s['samples']:.0f} samples sent, {s['head']:.0f} series in the head, "
          f"CPU {s['cpu_ingest']:.1f} s during the ingest ({s['cpu_settle']:.1f} s with the settle), "
          f"RSS {s['rss'] / 2**20:.0f} MiB, disk {s['disk'] / 2**20:.1f} MiB, SIGTERM to exit {s['shutdown_s']} s")
print(f"prometheus: Go heap in use after a forced GC {p['go_heap'] / 2**20:.0f} MiB "
      f"({p['go_heap'] / max(p['head'], 1):.0f} B/series; RSS then {p['rss_after_gc'] / 2**20:.0f} MiB); "
      f"as a compacted block (snapshot) {p['disk_block'] / 2**20:.1f} MiB")

rows = [
    ("ingest samples/s, wall clock (higher is better)", n["samples_per_sec"], p["samples_per_sec"], True, "{:.0f}"),
    ("samples per server CPU-s (higher is better)", n["per_cpu"], p["per_cpu"], True, "{:.0f}"),
    ("  the same, CPU over the ingest + 10 s", n["per_cpu_settle"], p["per_cpu_settle"], True, "{:.0f}"),
    ("RSS bytes per series (lower is better)", n["rss_per_series"], p["rss_per_series"], False, "{:.0f}"),
    ("  against Prometheus's Go heap after GC", n["rss_per_series"], p["go_heap"] / max(p["head"], 1), False, "{:.0f}"),
    ("disk bytes/sample after SIGTERM (lower is better)", n["disk_per_sample"], p["disk_per_sample"], False, "{:.3f}"),
    ("  against Prometheus as a compacted block", n["disk_per_sample"], p["block_per_sample"], False, "{:.3f}"),
]
for i, q in enumerate(queries):
    rows.append((f"Q{i + 1} query_range ms, median (lower is better)", n[f"q{i}"], p[f"q{i}"], False, "{:.1f}"))

width = max(len(row[0]) for row in rows)
print()
print(f"{'metric':<{width}}  {'nightlight':>12}  {'Prometheus':>12}  {'nl/prom':>8}  ahead?")
for label, a, b, higher, fmt in rows:
    ratio = a / b if b else math.inf
    ahead = (ratio > 1) if higher else (ratio < 1)
    print(f"{label:<{width}}  {fmt.format(a):>12}  {fmt.format(b):>12}  {ratio:>7.2f}x  {'yes' if ahead else 'NO'}")
errors = lambda s: f"{s['errors']:.0f}/{s['error_samples']:.0f}/{s['retries']:.0f}"
print(f"{'4xx requests/their samples/5xx retries':<{width}}  {errors(n):>12}  {errors(p):>12}")
print()
print("Q1-Q4 cover the whole range at step 60 s, 5 runs each:")
for i, q in enumerate(queries):
    print(f"Q{i + 1}: {q}")

# The two servers' answers, point by point.
def load(server, i):
    try:
        data = json.load(open(f"{work}/{server}.q{i}.json"))
    except (OSError, ValueError):
        return None
    if data.get("status") != "success":
        return None
    return {json.dumps(s["metric"], sort_keys=True): dict((float(t), float(v)) for t, v in s["values"])
            for s in data["data"]["result"]}

for i, q in enumerate(queries):
    a, b = load("nightlight", i), load("prometheus", i)
    if a is None or b is None:
        print(f"Q{i + 1} answers: nightlight {'ok' if a is not None else 'FAILED'}, Prometheus {'ok' if b is not None else 'FAILED'}")
        continue
    points = sum(len(v) for v in b.values())
    differ = missing = extra = 0
    worst = 0.0
    for key in set(a) | set(b):
        sa, sb = a.get(key, {}), b.get(key, {})
        for t in set(sa) | set(sb):
            if t not in sa:
                missing += 1
            elif t not in sb:
                extra += 1
            else:
                va, vb = sa[t], sb[t]
                if math.isnan(va) and math.isnan(vb):
                    continue
                rel = abs(va - vb) / max(abs(va), abs(vb), 1e-12)
                if rel > 1e-9:
                    differ += 1
                    worst = max(worst, rel)
    verdict = "identical" if differ == missing == extra == 0 else (
        f"{differ} differ (worst relative {worst:.2g}), {missing} missing from nightlight, {extra} only in nightlight")
    print(f"Q{i + 1} answers: {len(b)} series, {points} points in Prometheus's; {verdict}")
PY
