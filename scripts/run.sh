#!/usr/bin/env bash
# The README's run command: builds every PhotonCloud component that exists, starts each one
# standalone with embedded defaults (data under ./.photon/), prints its endpoints and health,
# and stops them all cleanly on Ctrl-C.
set -euo pipefail
cd "$(dirname "$0")/.."

# One line per component: "name|admin URL|endpoints to print|extra flags". Each component issue
# adds its line; the binary is target/release/<name>.
COMPONENTS=(
  "chainfire|http://127.0.0.1:2381|etcd v3 API http://127.0.0.1:2379 (try: etcdctl put hello world)|--data-dir .photon/chainfire"
  "lightningstor|http://127.0.0.1:9002|S3 http://127.0.0.1:9001, admin gRPC http://127.0.0.1:9000 (keys: .photon/lightningstor/data/initial-credentials; try: aws --endpoint-url http://127.0.0.1:9001 s3 ls)|--data-dir .photon/lightningstor/data --metadata-dir .photon/lightningstor/meta"
  "flashdns|http://127.0.0.1:8053|DNS udp+tcp 127.0.0.1:1053 (try: dig @127.0.0.1 -p 1053 www.example.com)|--zone-dir deploy/examples/zones"
  "fiberlb|http://127.0.0.1:8081|REST API http://127.0.0.1:8081/api/v1/loadbalancers; load balancer s3 on http://127.0.0.1:8088 in front of lightningstor (try: photonctl lb show s3)|--config deploy/fiberlb/run-local.toml"
  "nightlight|http://127.0.0.1:9090|web UI http://127.0.0.1:9090/, Prometheus API http://127.0.0.1:9090/api/v1/query, scraping every component with the shipped alert rules (try: photonctl metrics query 'up')|--config deploy/nightlight/run-local.toml"
)

source scripts/lib/packages.sh
ensure_packages "${BUILD_PACKAGES[@]}"

echo "==> building PhotonCloud (release)"
source scripts/lib/release-build.sh

if ((${#COMPONENTS[@]} == 0)); then
  echo "No PhotonCloud component exists yet, so nothing was started."
  echo "The operator CLI is built: target/release/photonctl --help"
  exit 0
fi

state=.photon
mkdir -p "$state"
pids=()
names=()
admins=()

stop_all() {
  trap - INT TERM
  echo
  echo "==> stopping PhotonCloud"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "all components stopped"
  exit "${1:-0}"
}
trap stop_all INT TERM

for entry in "${COMPONENTS[@]}"; do
  IFS='|' read -r name admin endpoints flags <<<"$entry"
  mkdir -p "$state/$name"
  # shellcheck disable=SC2086 # flags are words by design
  "target/release/$name" --component-id "$name-local" $flags >"$state/$name.log" 2>&1 &
  pids+=("$!")
  names+=("$name")
  admins+=(--endpoint "$admin")
  echo "==> $name started (pid $!, log $state/$name.log)"
  for _ in $(seq 1 50); do
    target/release/photonctl check-connection --endpoint "$admin" --timeout 1 >/dev/null 2>&1 && break
    sleep 0.2
  done
  echo "    endpoints: $endpoints"
  echo "    admin:     $admin (/health, /metrics)"
done

echo
target/release/photonctl status "${admins[@]}" || true
echo
echo "PhotonCloud is running. Press Ctrl-C to stop."
while sleep 1; do
  for i in "${!pids[@]}"; do
    if ! kill -0 "${pids[$i]}" 2>/dev/null; then
      echo "${names[$i]} exited unexpectedly; see $state/${names[$i]}.log"
      stop_all 1
    fi
  done
done
