#!/usr/bin/env bash
# chainfire vs etcd side by side on this machine with the same load generator
# (bench/src/etcd_load.rs): 100 connections spread over the members, 256-byte values, puts then
# linearizable gets. Prints each result and the chainfire/etcd ratios. Not a test: it never
# gates CI.
#   bench/chainfire.sh [REQUESTS] [MEMBERS]      (defaults: 100000 requests, 1 member; 3 for a
#                                                 three-member cluster of each)
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-100000}
members=${2:-1}

command -v etcd >/dev/null || { echo "needs etcd: apt-get install etcd-server"; exit 1; }
source scripts/lib/release-build.sh
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Ports for every member of both clusters, and their member lists.
declare -a etcd_client etcd_peer cf_client cf_peer
etcd_initial=""; cf_initial=""
for i in $(seq 0 $((members - 1))); do
  etcd_client[$i]=$(free_port); etcd_peer[$i]=$(free_port)
  cf_client[$i]=$(free_port); cf_peer[$i]=$(free_port)
  etcd_initial+="${etcd_initial:+,}etcd$i=http://127.0.0.1:${etcd_peer[$i]}"
  cf_initial+="${cf_initial:+,}cf$i=http://127.0.0.1:${cf_peer[$i]}"
done
cluster_flags=()
[ "$members" -gt 1 ] && cluster_flags=(--bootstrap-cluster --initial-cluster "$cf_initial")

for i in $(seq 0 $((members - 1))); do
  etcd --name "etcd$i" --data-dir "$work/etcd$i" \
    --listen-client-urls "http://127.0.0.1:${etcd_client[$i]}" --advertise-client-urls "http://127.0.0.1:${etcd_client[$i]}" \
    --listen-peer-urls "http://127.0.0.1:${etcd_peer[$i]}" --initial-advertise-peer-urls "http://127.0.0.1:${etcd_peer[$i]}" \
    --initial-cluster "$etcd_initial" --log-level error >"$work/etcd$i.log" 2>&1 &
  pids+=($!)
  target/release/chainfire --component-id "cf$i" --data-dir "$work/cf$i" --client-addr "127.0.0.1:${cf_client[$i]}" \
    --peer-addr "127.0.0.1:${cf_peer[$i]}" --set "photon.metrics.endpoint=127.0.0.1:$(free_port)" \
    --log-level warn "${cluster_flags[@]}" >"$work/cf$i.log" 2>&1 &
  pids+=($!)
done

join() { local IFS=,; echo "$*"; }
etcd_endpoints=$(join "${etcd_client[@]/#/127.0.0.1:}")
cf_endpoints=$(join "${cf_client[@]/#/127.0.0.1:}")
for endpoints in "$etcd_endpoints" "$cf_endpoints"; do
  for _ in $(seq 1 100); do ETCDCTL_API=3 etcdctl --endpoints="$endpoints" put bench-ready yes >/dev/null 2>&1 && break; sleep 0.2; done
done

echo "$members member(s) each, $requests requests per run"
declare -A result
for mode in put get; do
  for server in etcd chainfire; do
    endpoints=$etcd_endpoints; [ "$server" = chainfire ] && endpoints=$cf_endpoints
    line=$(target/release/etcd-load --endpoint "$endpoints" --mode "$mode" --requests "$requests")
    echo "$server $line"
    result[$server.$mode.ops]=$(sed -E 's/.*ops_per_sec=([0-9.]+).*/\1/' <<<"$line")
    result[$server.$mode.p99]=$(sed -E 's/.*p99_ms=([0-9.]+).*/\1/' <<<"$line")
  done
done

echo
for mode in put get; do
  python3 - "$mode" "${result[chainfire.$mode.ops]}" "${result[etcd.$mode.ops]}" \
    "${result[chainfire.$mode.p99]}" "${result[etcd.$mode.p99]}" <<'PY'
import sys
mode, cf_ops, etcd_ops, cf_p99, etcd_p99 = sys.argv[1], *map(float, sys.argv[2:])
print(f"{mode:>4}: throughput chainfire/etcd = {cf_ops / etcd_ops:.2f}x   p99 chainfire/etcd = {cf_p99 / etcd_p99:.2f}x (lower is better)")
PY
done
