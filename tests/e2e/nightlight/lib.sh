# Sourced by nightlight-prometheus.sh and nightlight/self-check.sh, after checks.sh and with
# $work and the pids array set: the test data, and Prometheus (Debian's 2.42) started over it.

# Writes two hours of 15 s samples ending at a whole minute about an hour ago to $work/data.om
# (gen_data.py); sets data_start and data_end (unix seconds of the first and last sample) and
# data_series (how many series the file has).
make_data() {
  data_end=$((($(date +%s) / 60 - 60) * 60))
  data_start=$((data_end - 7200))
  data_series=$(python3 tests/e2e/nightlight/gen_data.py "$data_end" "$work/data.om")
}

# Backfills $work/data.om into a TSDB directory: promtool cuts it into blocks at the 2-hour
# boundaries (two blocks here), which Prometheus loads when it starts and answers for at once.
# The retention of 3650d only keeps it from deleting old blocks (an hour-old backfill would
# stay under the default 15d too).
backfill() { # dir
  promtool tsdb create-blocks-from openmetrics --quiet "$work/data.om" "$1" >/dev/null
}

start_prometheus() { # name config-file tsdb-dir port [flag...] (log: $work/name.log)
  prometheus --config.file="$2" --storage.tsdb.path="$3" --storage.tsdb.retention.time=3650d \
    --web.listen-address="127.0.0.1:$4" "${@:5}" >"$work/$1.log" 2>&1 &
  pids+=($!)
}

wait_ready() { # url log
  for _ in $(seq 1 150); do curl -fs -o /dev/null "$1" && return 0; sleep 0.1; done
  echo "no answer from $1; the end of $2:"
  tail -20 "$2"
  exit 1
}

# How many series a query API has over the data's two hours (/api/v1/series).
series_count() { # base-url
  curl -s -G "$1/api/v1/series" --data-urlencode 'match[]={__name__=~".+"}' \
    --data-urlencode "start=$data_start" --data-urlencode "end=$data_end" |
    python3 -c 'import json, sys
try: print(len(json.load(sys.stdin)["data"]))
except Exception as e: print(f"no series list ({type(e).__name__})")'
}

# Runs compare.py on the corpus against two query APIs, printing its report, and checks that
# every expression and every metadata endpoint agreed.
compare_corpus() { # names url-a url-b
  local corpus=tests/e2e/nightlight/corpus.promql size
  size=$(grep -cvE '^[[:space:]]*(#|$)' "$corpus")
  python3 tests/e2e/nightlight/compare.py --names "$1" --start "$data_start" --end "$data_end" \
    "$corpus" "$2" "$3" | tee "$work/compare.out" || true
  check "PromQL corpus: ${1/,/ and } agree" "$size/$size expressions agree" "$(tail -1 "$work/compare.out")"
  check "metadata endpoints: ${1/,/ and } agree" "metadata: 5/5 endpoints agree" "$(grep '^metadata:' "$work/compare.out")"
}
