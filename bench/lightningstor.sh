#!/usr/bin/env bash
# lightningstor vs Garage side by side on this machine with the same load generator
# (bench/src/s3_load.rs, the AWS SDK for Rust with default settings): PUT then GET of 4 KiB
# objects at concurrency 32 (ops/s), and of 64 MiB objects (MiB/s); then lightningstor's
# 64 MiB GET against reading the same bytes straight from disk, both with a cold page cache
# (needs root to drop it). Both stores fsync data and
# metadata before acknowledging. Prints each result and the ratios. Not a test: it never gates
# CI.
#   bench/lightningstor.sh [SMALL_REQUESTS] [LARGE_REQUESTS]   (defaults: 20000, 16)
set -euo pipefail
cd "$(dirname "$0")/.."
small=${1:-20000}
large=${2:-16}

garage=target/peer-tools/garage/bin/garage
if [ ! -x "$garage" ]; then
  echo "==> building Garage 2.5.0 from crates.io (once; takes a while)"
  cargo install --quiet --locked garage --version 2.5.0 --root target/peer-tools/garage
fi
cargo build --release --locked --quiet -p lightningstor -p photon-bench
load=target/release/s3-load
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 1 100); do curl -s -o /dev/null "$1" && return 0; sleep 0.1; done; echo "no answer from $1"; exit 1; }

# lightningstor
ls_port=$(free_port)
ls_key=AKIABENCHLIGHTNING01
ls_secret=bench-secret-key-000000000000000000000000
target/release/lightningstor --component-id bench --data-dir "$work/ls/data" --metadata-dir "$work/ls/meta" \
  --s3-addr "127.0.0.1:$ls_port" --grpc-addr "127.0.0.1:$(free_port)" --admin-api-addr "127.0.0.1:$(free_port)" \
  --set "standalone.auth.access_key=$ls_key" --set "standalone.auth.secret_key=$ls_secret" \
  --log-level warn >"$work/lightningstor.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$ls_port/"

# Garage, single node, with its documented minimal configuration plus fsync on.
g_s3=$(free_port); g_rpc=$(free_port); g_admin=$(free_port)
mkdir -p "$work/garage"
cat >"$work/garage/garage.toml" <<CFG
metadata_dir = "$work/garage/meta"
data_dir = "$work/garage/data"
db_engine = "lmdb"
replication_factor = 1
metadata_fsync = true
data_fsync = true
rpc_bind_addr = "127.0.0.1:$g_rpc"
rpc_public_addr = "127.0.0.1:$g_rpc"
rpc_secret = "$(openssl rand -hex 32)"

[s3_api]
s3_region = "garage"
api_bind_addr = "127.0.0.1:$g_s3"
root_domain = ".s3.garage.localhost"

[admin]
api_bind_addr = "127.0.0.1:$g_admin"
CFG
g() { "$garage" -c "$work/garage/garage.toml" "$@"; }
RUST_LOG=warn g server >"$work/garage.log" 2>&1 &
pids+=($!)
wait_http "http://127.0.0.1:$g_s3/"
node=$(g status 2>/dev/null | awk '/^[0-9a-f]{16}/ {print $1; exit}')
g layout assign -z dc1 -c 10G "$node" >/dev/null
g layout apply --version 1 >/dev/null
key_info=$(g key create bench-key)
g_key=$(awk -F': *' '/Key ID/ {print $2}' <<<"$key_info" | tr -d ' ')
g_secret=$(awk -F': *' '/Secret key/ {print $2}' <<<"$key_info" | tr -d ' ')
g bucket create bench >/dev/null
g bucket allow --read --write --owner bench --key bench-key >/dev/null

ls_run() { AWS_ACCESS_KEY_ID=$ls_key AWS_SECRET_ACCESS_KEY=$ls_secret "$load" --endpoint "http://127.0.0.1:$ls_port" --bucket bench "$@"; }
g_run() { AWS_ACCESS_KEY_ID=$g_key AWS_SECRET_ACCESS_KEY=$g_secret "$load" --endpoint "http://127.0.0.1:$g_s3" --region garage --bucket bench "$@"; }
field() { sed -E "s/.*$1=([0-9.]+).*/\1/" <<<"$2"; }
ratio() { python3 -c "import sys; a, b = map(float, sys.argv[1:]); print(f'{a / b:.2f}x')" "$1" "$2"; }

declare -A result
for case in "small put 4096 32 $small" "small get 4096 32 $small" "large put $((64 << 20)) 4 $large" "large get $((64 << 20)) 4 $large"; do
  read -r name mode size concurrency requests <<<"$case"
  for server in lightningstor garage; do
    runner=ls_run; [ "$server" = garage ] && runner=g_run
    extra=(); [ "$mode" = put ] && extra=(--create-bucket)
    line=$("$runner" --mode "$mode" --size "$size" --concurrency "$concurrency" --requests "$requests" "${extra[@]}")
    echo "$server: $line"
    result[$server.$name.$mode.ops]=$(field ops_per_sec "$line")
    result[$server.$name.$mode.mib]=$(field mib_per_sec "$line")
    result[$server.$name.$mode.p99]=$(field p99_ms "$line")
  done
done

# The disk path, cold: page cache dropped before each read (as root), then one 64 MiB GET through
# lightningstor against reading its blob file straight from disk.
blob=$(find "$work/ls/data/blobs" -type f -size +60M | head -1)
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
if drop_caches 2>/dev/null; then
  cold_get=(); cold_disk=()
  for _ in 1 2 3 4 5; do
    drop_caches
    line=$(ls_run --mode get --size $((64 << 20)) --concurrency 1 --requests 1)
    cold_get+=("$(field mib_per_sec "$line")")
    drop_caches
    cold_disk+=("$(python3 - "$blob" <<'PY'
import sys, time
start = time.perf_counter()
with open(sys.argv[1], "rb", buffering=0) as f:
    while f.read(1 << 20):
        pass
print(f"{64 / (time.perf_counter() - start):.1f}")
PY
)")
  done
  median() { printf '%s\n' "$@" | sort -n | sed -n 3p; }
  get_mib=$(median "${cold_get[@]}"); disk_mib=$(median "${cold_disk[@]}")
  echo "cold 64 MiB GET (median of 5): lightningstor $get_mib MiB/s, disk $disk_mib MiB/s"
else
  get_mib=""; disk_mib=""
  echo "cannot drop the page cache (not root): disk-path comparison skipped"
fi

echo
echo "4 KiB PUT  ops/s: lightningstor/Garage = $(ratio "${result[lightningstor.small.put.ops]}" "${result[garage.small.put.ops]}")   p99 = $(ratio "${result[lightningstor.small.put.p99]}" "${result[garage.small.put.p99]}") (lower is better)"
echo "4 KiB GET  ops/s: lightningstor/Garage = $(ratio "${result[lightningstor.small.get.ops]}" "${result[garage.small.get.ops]}")   p99 = $(ratio "${result[lightningstor.small.get.p99]}" "${result[garage.small.get.p99]}") (lower is better)"
echo "64 MiB PUT MiB/s: lightningstor/Garage = $(ratio "${result[lightningstor.large.put.mib]}" "${result[garage.large.put.mib]}")"
echo "64 MiB GET MiB/s: lightningstor/Garage = $(ratio "${result[lightningstor.large.get.mib]}" "${result[garage.large.get.mib]}")"
[ -n "$disk_mib" ] && echo "64 MiB GET MiB/s, cold: lightningstor/disk path = $(ratio "$get_mib" "$disk_mib") (target >= 0.80x)"
