#!/usr/bin/env bash
# fiberlb in front of two real nginx servers (Debian nginx), driven with curl: round robin,
# forwarding headers, h2c, the TCP proxy, health-check ejection when an nginx dies, and
# photonctl lb (list, show, drain, remove, add) against the REST API.
set -euo pipefail
cd "$(dirname "$0")/../.."

source tests/e2e/lib/build.sh
bin=target/debug/fiberlb
photonctl=target/debug/photonctl
source tests/e2e/lib/checks.sh
source tests/e2e/lib/scratch.sh

start_nginx() { # name port
  mkdir -p "$work/$1"
  cat >"$work/$1/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $work/$1/nginx.pid;
error_log $work/$1/error.log;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path $work/$1/body;
  proxy_temp_path $work/$1/proxy;
  fastcgi_temp_path $work/$1/fastcgi;
  uwsgi_temp_path $work/$1/uwsgi;
  scgi_temp_path $work/$1/scgi;
  server {
    listen 127.0.0.1:$2;
    location /health { return 200 "ok\n"; }
    location / { return 200 "$1 xff=\$http_x_forwarded_for proto=\$http_x_forwarded_proto\n"; }
  }
}
CONF
  nginx -c "$work/$1/nginx.conf" -e "$work/$1/error.log" &
  pids+=($!)
  nginx_pid=$!
}
wait_port() { for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$1/health" && return 0; sleep 0.1; done; echo "no answer on $1"; exit 1; }

n1_port=$(free_port); n2_port=$(free_port)
start_nginx nginx-1 "$n1_port"
start_nginx nginx-2 "$n2_port"
n2_pid=$nginx_pid
wait_port "$n1_port"; wait_port "$n2_port"

http_port=$(free_port); tcp_port=$(free_port); admin_port=$(free_port)
cat >"$work/fiberlb.toml" <<CONF
[photon]
component_id = "e2e-fiberlb"

[standalone.server]
admin_api_addr = "127.0.0.1:$admin_port"

[[standalone.loadbalancers]]
name = "web"
vip = "127.0.0.1"
port = $http_port
protocol = "http"
method = "roundrobin"

[[standalone.loadbalancers.backends]]
name = "nginx-1"
address = "127.0.0.1"
port = $n1_port

[[standalone.loadbalancers.backends]]
name = "nginx-2"
address = "127.0.0.1"
port = $n2_port

[standalone.loadbalancers.healthcheck]
type = "http"
path = "/health"
interval_sec = 1
timeout_sec = 1
fall = 1
rise = 1

[[standalone.loadbalancers]]
name = "raw"
vip = "127.0.0.1"
port = $tcp_port
protocol = "tcp"

[[standalone.loadbalancers.backends]]
name = "nginx-1"
address = "127.0.0.1"
port = $n1_port
CONF
"$bin" --config "$work/fiberlb.toml" >"$work/fiberlb.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$admin_port/health" >/dev/null && break; sleep 0.1; done

get() { curl -s --max-time 5 "$@"; }
names() { for _ in 1 2 3 4; do get "http://127.0.0.1:$http_port/" | cut -d' ' -f1; done | sort | uniq -c | awk '{print $2"="$1}' | tr '\n' ' '; }

check "round robin over two nginx" "nginx-1=2 nginx-2=2 " "$(names)"
contains "X-Forwarded-For reaches nginx" "xff=127.0.0.1 proto=http" "$(get "http://127.0.0.1:$http_port/")"
contains "h2c through fiberlb" "nginx-" "$(get --http2-prior-knowledge "http://127.0.0.1:$http_port/")"
check "h2c version" "2" "$(get --http2-prior-knowledge -o /dev/null -w '%{http_version}' "http://127.0.0.1:$http_port/")"
contains "TCP proxy to nginx" "nginx-1" "$(get "http://127.0.0.1:$tcp_port/")"

endpoint=(--endpoint "http://127.0.0.1:$admin_port")
contains "photonctl lb list" "web" "$("$photonctl" lb list "${endpoint[@]}")"
contains "photonctl lb list backends up" "2/2" "$("$photonctl" lb list "${endpoint[@]}")"
contains "photonctl lb show" "nginx-2" "$("$photonctl" lb show web "${endpoint[@]}")"
contains "photonctl lb backend drain" "is draining" "$("$photonctl" lb backend drain web nginx-1 "${endpoint[@]}")"
check "drained backend gets no requests" "nginx-2=4 " "$(names)"
"$photonctl" lb backend drain web nginx-1 --undo "${endpoint[@]}" >/dev/null
check "undrained backend is back" "nginx-1=2 nginx-2=2 " "$(names)"

# An nginx dies: the next failed check (1 s) takes it out, and clients see only the other.
kill "$n2_pid"; wait "$n2_pid" 2>/dev/null || true
for _ in $(seq 1 50); do
  "$photonctl" lb show web "${endpoint[@]}" | grep -q "nginx-2 .* down" && break; sleep 0.1
done
contains "photonctl shows the dead nginx down" "down" "$("$photonctl" lb show web "${endpoint[@]}" | grep nginx-2)"
check "only the live nginx answers" "nginx-1=4 " "$(names)"

contains "photonctl lb backend remove" "removed backend nginx-2" "$("$photonctl" lb backend remove web nginx-2 "${endpoint[@]}")"
contains "photonctl lb backend add" "added backend again" "$("$photonctl" lb backend add web again --address 127.0.0.1 --port "$n1_port" "${endpoint[@]}")"
check "photonctl lb show json" "nginx-1 again" "$("$photonctl" lb show web "${endpoint[@]}" --output json | python3 -c 'import json,sys; print(" ".join(b["name"] for b in json.load(sys.stdin)["backend_status"]))')"
contains "metrics per backend" 'photon_fiberlb_http_requests_total{lb="web",backend="nginx-1",code="2xx"}' "$(get "http://127.0.0.1:$admin_port/metrics")"

summary "fiberlb with nginx and curl"
