#!/usr/bin/env bash
# The differential test's own check, without nightlight: two Prometheus 2.42 over the same
# backfill must agree on the whole corpus. Run it after changing corpus.promql, gen_data.py or
# compare.py; a disagreement here is an expression whose answer is not deterministic (ties in
# topk or sort, say), not a nightlight bug. Not one of the tests/e2e/*.sh that scripts/test.sh runs.
set -euo pipefail
cd "$(dirname "$0")/../../.."

source tests/e2e/lib/checks.sh
source scripts/lib/packages.sh
ensure_packages prometheus
source tests/e2e/lib/scratch.sh
source tests/e2e/nightlight/lib.sh

make_data
backfill "$work/tsdb-a"
backfill "$work/tsdb-b"
printf 'global:\n  evaluation_interval: 1m\n' >"$work/prometheus.yml"
a_port=$(free_port); b_port=$(free_port)
start_prometheus prometheus-a "$work/prometheus.yml" "$work/tsdb-a" "$a_port"
start_prometheus prometheus-b "$work/prometheus.yml" "$work/tsdb-b" "$b_port"
a="http://127.0.0.1:$a_port"; b="http://127.0.0.1:$b_port"
wait_ready "$a/-/ready" "$work/prometheus-a.log"
wait_ready "$b/-/ready" "$work/prometheus-b.log"

check "Prometheus A has the backfilled series" "$data_series" "$(series_count "$a")"
check "Prometheus B has the backfilled series" "$data_series" "$(series_count "$b")"
compare_corpus prometheus-a,prometheus-b "$a" "$b"

summary "nightlight's PromQL corpus against Prometheus itself"
