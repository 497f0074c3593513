#!/usr/bin/env bash
# chainfire vs etcd, single node, side by side on this machine with the same load generator
# (bench/src/etcd_load.rs): 100 connections, 256-byte values, puts then linearizable gets.
# Prints each result and the chainfire/etcd ratios. Not a test: it never gates CI.
#   bench/chainfire.sh [REQUESTS]      (default 100000)
set -euo pipefail
cd "$(dirname "$0")/.."
requests=${1:-100000}

command -v etcd >/dev/null || { echo "needs etcd: apt-get install etcd-server"; exit 1; }
cargo build --release --locked --quiet -p chainfire -p photon-bench
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

etcd_port=$(free_port); etcd_peer=$(free_port)
etcd --name bench --data-dir "$work/etcd" \
  --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
  --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
  --initial-cluster "bench=http://127.0.0.1:$etcd_peer" --log-level error >"$work/etcd.log" 2>&1 &
pids+=($!)

cf_port=$(free_port); cf_admin=$(free_port)
target/release/chainfire --component-id bench --data-dir "$work/chainfire" --client-addr "127.0.0.1:$cf_port" \
  --set "photon.metrics.endpoint=127.0.0.1:$cf_admin" --log-level warn >"$work/chainfire.log" 2>&1 &
pids+=($!)

for port in "$etcd_port" "$cf_port"; do
  for _ in $(seq 1 100); do ETCDCTL_API=3 etcdctl --endpoints="127.0.0.1:$port" endpoint health >/dev/null 2>&1 && break; sleep 0.2; done
done

declare -A result
for mode in put get; do
  for server in etcd chainfire; do
    port=$etcd_port; [ "$server" = chainfire ] && port=$cf_port
    line=$(target/release/etcd-load --endpoint "127.0.0.1:$port" --mode "$mode" --requests "$requests")
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
