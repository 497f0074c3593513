#!/usr/bin/env bash
# flashdns vs NSD vs Knot DNS side by side on this machine: the same zone (the tests' example.test),
# the same dnsperf query mix (answers, CNAME chains, wildcards, referrals, NXDOMAIN), each server
# with as many UDP workers as cores. Prints each server's QPS and flashdns's ratios. Not a test: it
# never gates CI.
#   bench/flashdns.sh [SECONDS] [CLIENTS]      (defaults: 10 seconds, 4 dnsperf sockets)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
clients=${2:-4}

for tool in dnsperf nsd knotd; do
  command -v "$tool" >/dev/null || { echo "needs $tool: apt-get install dnsperf nsd knot"; exit 1; }
done
source scripts/lib/release-build.sh
work=$(mktemp -d)
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
[ -n "${BENCH_KEEP_LOGS:-}" ] && trap 'cat "$work"/*.log; cleanup' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
cores=$(nproc)
zones=$(realpath flashdns/tests/zones)

# The query mix: every kind of answer the server gives, NXDOMAIN among them.
cat >"$work/queries" <<'QUERIES'
web.example.test A
web.example.test AAAA
www.example.test A
chain1.example.test A
example.test MX
example.test NS
example.test SOA
_sip._tcp.example.test SRV
mail.example.test A
anything.wild.example.test A
deep.name.wild.example.test TXT
host.sub.example.test A
nope.example.test A
missing.example.test AAAA
b.ent.wild.example.test A
web.example.test MX
QUERIES

flashdns_port=$(free_port)
target/release/flashdns --component-id bench --zone-dir "$zones" --dns-addr "127.0.0.1:$flashdns_port" \
  --admin-api-addr "127.0.0.1:$(free_port)" --log-level warn >"$work/flashdns.log" 2>&1 &
pids+=($!)

nsd_port=$(free_port)
mkdir -p "$work/nsd"
cat >"$work/nsd/nsd.conf" <<NSD
server:
  ip-address: 127.0.0.1
  port: $nsd_port
  server-count: $cores
  username: ""
  chroot: ""
  zonesdir: "$zones"
  pidfile: "$work/nsd/nsd.pid"
  zonelistfile: "$work/nsd/zone.list"
  xfrdfile: "$work/nsd/xfrd.state"
  xfrdir: "$work/nsd"
  database: ""
  verbosity: 0
  rrl-ratelimit: 0   # response rate limiting would throttle dnsperf (one source address)
remote-control:
  control-enable: no
zone:
  name: example.test
  zonefile: example.test.zone
NSD
nsd -d -c "$work/nsd/nsd.conf" >"$work/nsd.log" 2>&1 &
pids+=($!)

knot_port=$(free_port)
mkdir -p "$work/knot"
cat >"$work/knot/knot.conf" <<KNOT
server:
  listen: 127.0.0.1@$knot_port
  rundir: $work/knot
  udp-workers: $cores
database:
  storage: $work/knot/db
zone:
  - domain: example.test
    file: $zones/example.test.zone
log:
  - target: stderr
    any: error
KNOT
knotd -c "$work/knot/knot.conf" >"$work/knot.log" 2>&1 &
pids+=($!)

for port in "$flashdns_port" "$nsd_port" "$knot_port"; do
  for _ in $(seq 1 100); do
    [ -n "$(dig @127.0.0.1 -p "$port" +short +time=1 +tries=1 web.example.test A 2>/dev/null)" ] && break
    sleep 0.1
  done
done

qps() { # port
  dnsperf -s 127.0.0.1 -p "$1" -d "$work/queries" -l "$seconds" -c "$clients" -q 500 2>&1 |
    awk '/Queries per second/ {print $4}'
}
echo "==> $seconds s each, $clients dnsperf sockets, $cores cores shared by server and dnsperf"
flashdns=$(qps "$flashdns_port"); echo "flashdns: $flashdns qps"
nsd=$(qps "$nsd_port"); echo "NSD:      $nsd qps"
knot=$(qps "$knot_port"); echo "Knot:     $knot qps"
python3 - "$flashdns" "$nsd" "$knot" <<'PY'
import sys
flashdns, nsd, knot = map(float, sys.argv[1:])
print(f"flashdns/NSD:  {flashdns / nsd:.2f}x")
print(f"flashdns/Knot: {flashdns / knot:.2f}x")
PY
