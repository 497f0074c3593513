#!/usr/bin/env bash
# lightningstor vs Garage side by side on this machine with the same load generator
# (bench/src/s3_load.rs, the AWS SDK for Rust with default settings): PUT then GET of 4 KiB
# objects at concurrency 32 (ops/s), and of 64 MiB objects (MiB/s); then lightningstor's
# 64 MiB GET (with curl) against reading the same bytes straight from disk, with a cold page
# cache (needs root to drop it) and a warm one. Both stores fsync data and metadata before
# acknowledging. Prints each result and the ratios. Not a test: it never gates CI.
#   bench/lightningstor.sh [SMALL_REQUESTS] [LARGE_REQUESTS]   (defaults: 20000, 16)
#   bench/lightningstor.sh disk    (only the disk-path comparison; no Garage needed)
set -euo pipefail
cd "$(dirname "$0")/.."
with_garage=true
if [ "${1:-}" = disk ]; then with_garage=false; shift; fi
small=${1:-20000}
large=${2:-16}

garage=target/peer-tools/garage/bin/garage
if $with_garage && [ ! -x "$garage" ]; then
  echo "==> building Garage 2.5.0 from crates.io (once; takes a while)"
  cargo install --quiet --locked garage --version 2.5.0 --root target/peer-tools/garage
fi
source scripts/lib/release-build.sh
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

ls_run() { AWS_ACCESS_KEY_ID=$ls_key AWS_SECRET_ACCESS_KEY=$ls_secret "$load" --endpoint "http://127.0.0.1:$ls_port" --bucket bench "$@"; }
ratio() { python3 -c "import sys; a, b = map(float, sys.argv[1:]); print(f'{a / b:.2f}x')" "$1" "$2"; }

if $with_garage; then
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

g_run() { AWS_ACCESS_KEY_ID=$g_key AWS_SECRET_ACCESS_KEY=$g_secret "$load" --endpoint "http://127.0.0.1:$g_s3" --region garage --bucket bench "$@"; }
field() { sed -E "s/.*$1=([0-9.]+).*/\1/" <<<"$2"; }

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
else
  ls_run --mode put --size 4096 --concurrency 1 --requests 1 --create-bucket >/dev/null
fi

# The disk path, cold: page cache dropped before each read (as root), then one 64 MiB GET through
# lightningstor against reading its blob file straight from disk. The GET is made with curl
# (SigV4, body to /dev/null), so that what is measured is the server's path from disk to socket,
# not the SDK's buffering and checksum work, which the loads above already include.
sigv4=(--aws-sigv4 "aws:amz:us-east-1:s3" --user "$ls_key:$ls_secret" -H "x-amz-content-sha256: UNSIGNED-PAYLOAD")
head -c $((64 << 20)) /dev/urandom >"$work/cold.bin"
curl -fsS "${sigv4[@]}" -T "$work/cold.bin" "http://127.0.0.1:$ls_port/bench/cold-64m" >/dev/null
blob=$(find "$work/ls/data/blobs" -type f -size 64M -newer "$work/cold.bin" | head -1)
curl -fsS "${sigv4[@]}" -o "$work/cold.back" "http://127.0.0.1:$ls_port/bench/cold-64m"
cmp -s "$work/cold.bin" "$work/cold.back" || { echo "the cold object did not come back intact"; exit 1; }
[ -n "$blob" ] && cmp -s "$work/cold.bin" "$blob" || { echo "cannot find the cold object's blob file"; exit 1; }
rm -f "$work/cold.back"
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
get_mib() { curl -fsS "${sigv4[@]}" -o /dev/null -w '%{speed_download}' "http://127.0.0.1:$ls_port/bench/cold-64m" | python3 -c 'import sys; print(f"{float(sys.stdin.read()) / (1 << 20):.1f}")'; }
disk_mib() {
  python3 - "$blob" <<'PY'
import sys, time
start = time.perf_counter()
with open(sys.argv[1], "rb", buffering=0) as f:
    while f.read(1 << 20):
        pass
print(f"{64 / (time.perf_counter() - start):.1f}")
PY
}
median() { printf '%s\n' "$@" | sort -n | sed -n 5p; }
if drop_caches 2>/dev/null; then
  cold_get=(); cold_disk=(); warm_get=(); warm_disk=()
  # The shared disk's speed varies from read to read: interleave, and take medians of 9.
  for _ in 1 2 3 4 5 6 7 8 9; do
    drop_caches; cold_get+=("$(get_mib)"); warm_get+=("$(get_mib)")
    drop_caches; cold_disk+=("$(disk_mib)"); warm_disk+=("$(disk_mib)")
  done
  get_mib=$(median "${cold_get[@]}"); disk_mib=$(median "${cold_disk[@]}")
  warm_get_mib=$(median "${warm_get[@]}"); warm_disk_mib=$(median "${warm_disk[@]}")
  echo "cold 64 MiB GET (median of 9): lightningstor $get_mib MiB/s, disk $disk_mib MiB/s"
  echo "warm 64 MiB GET (median of 9): lightningstor $warm_get_mib MiB/s, page cache $warm_disk_mib MiB/s"
else
  get_mib=""; disk_mib=""
  echo "cannot drop the page cache (not root): disk-path comparison skipped"
fi

echo
if $with_garage; then
echo "4 KiB PUT  ops/s: lightningstor/Garage = $(ratio "${result[lightningstor.small.put.ops]}" "${result[garage.small.put.ops]}")   p99 = $(ratio "${result[lightningstor.small.put.p99]}" "${result[garage.small.put.p99]}") (lower is better)"
echo "4 KiB GET  ops/s: lightningstor/Garage = $(ratio "${result[lightningstor.small.get.ops]}" "${result[garage.small.get.ops]}")   p99 = $(ratio "${result[lightningstor.small.get.p99]}" "${result[garage.small.get.p99]}") (lower is better)"
echo "64 MiB PUT MiB/s: lightningstor/Garage = $(ratio "${result[lightningstor.large.put.mib]}" "${result[garage.large.put.mib]}")"
echo "64 MiB GET MiB/s: lightningstor/Garage = $(ratio "${result[lightningstor.large.get.mib]}" "${result[garage.large.get.mib]}")"
fi
if [ -n "$disk_mib" ]; then
  echo "64 MiB GET MiB/s, cold: lightningstor/disk path = $(ratio "$get_mib" "$disk_mib") (target >= 0.80x)"
  echo "64 MiB GET MiB/s, warm: lightningstor/page cache = $(ratio "$warm_get_mib" "$warm_disk_mib")"
fi
