#!/usr/bin/env bash
# fiberlb vs HAProxy side by side on this machine: wrk (Debian) against one nginx backend
# directly, through fiberlb and through HAProxy with equivalent settings (two threads each, X-
# Forwarded-For added, keep-alive to the backend, no health checks): req/s and p50/p99 for a
# small response and a 1 MiB response over HTTP, the small one over HTTPS, and the 1 MiB one
# through each proxy's TCP mode. Prints each result and the fiberlb/HAProxy ratios. Not a test:
# it never gates CI.
#   bench/fiberlb.sh [SECONDS] [CONNECTIONS]   (defaults: 10, 64)
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-10}
connections=${2:-64}

source scripts/lib/packages.sh
ensure_packages nginx haproxy wrk openssl
source scripts/lib/release-build.sh
work=$(mktemp -d)
# nginx's workers run as nobody: they must be able to read the files it serves.
chmod 755 "$work"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_port() { for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; echo "nothing listens on $1"; exit 1; }

# The backend: nginx with a small answer and a 1 MiB file.
ng=$(free_port)
mkdir -p "$work/www"
head -c $((1 << 20)) /dev/urandom >"$work/www/1m.bin"
cat >"$work/nginx.conf" <<CONF
daemon off;
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx.err;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $work/body; proxy_temp_path $work/proxy; fastcgi_temp_path $work/fcgi;
  uwsgi_temp_path $work/uwsgi; scgi_temp_path $work/scgi;
  server {
    listen 127.0.0.1:$ng backlog=4096;
    root $work/www;
    location = /small { return 200 "ok\n"; }
  }
}
CONF
nginx -c "$work/nginx.conf" -e "$work/nginx.err" &
pids+=($!)
wait_port "$ng"

openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=bench.test -addext subjectAltName=DNS:bench.test \
  -keyout "$work/key.pem" -out "$work/cert.pem" -days 2 2>/dev/null
cat "$work/cert.pem" "$work/key.pem" >"$work/combined.pem"

f_http=$(free_port); f_https=$(free_port); f_tcp=$(free_port); f_admin=$(free_port)
backend="[[standalone.loadbalancers.backends]]
name = \"nginx\"
address = \"127.0.0.1\"
port = $ng"
cat >"$work/fiberlb.toml" <<CONF
[photon]
component_id = "bench"
[photon.logging]
level = "warn"
[standalone.server]
admin_api_addr = "127.0.0.1:$f_admin"

[[standalone.loadbalancers]]
name = "http"
vip = "127.0.0.1"
port = $f_http
protocol = "http"
$backend

[[standalone.loadbalancers]]
name = "https"
vip = "127.0.0.1"
port = $f_https
protocol = "https"
[standalone.loadbalancers.tls]
cert_file = "$work/cert.pem"
key_file = "$work/key.pem"
$backend

[[standalone.loadbalancers]]
name = "tcp"
vip = "127.0.0.1"
port = $f_tcp
protocol = "tcp"
$backend
CONF
target/release/fiberlb --config "$work/fiberlb.toml" >"$work/fiberlb.log" 2>&1 &
pids+=($!)

h_http=$(free_port); h_https=$(free_port); h_tcp=$(free_port)
cat >"$work/haproxy.cfg" <<CONF
global
  nbthread 2
  # Within this sandbox's file-descriptor limit (HAProxy needs about two per connection).
  maxconn 4096
defaults
  mode http
  timeout connect 3s
  timeout client 60s
  timeout server 60s
frontend http_in
  bind 127.0.0.1:$h_http
  default_backend nginx
frontend https_in
  bind 127.0.0.1:$h_https ssl crt $work/combined.pem alpn h2,http/1.1
  default_backend nginx
backend nginx
  option forwardfor
  server nginx 127.0.0.1:$ng
listen tcp_in
  mode tcp
  bind 127.0.0.1:$h_tcp
  server nginx 127.0.0.1:$ng
CONF
haproxy -f "$work/haproxy.cfg" -db >"$work/haproxy.log" 2>&1 &
pids+=($!)
for port in "$f_http" "$f_https" "$f_tcp" "$h_http" "$h_https" "$h_tcp"; do wait_port "$port"; done
# Every path must really serve its bytes through every proxy, or wrk would measure errors.
for url in "http://127.0.0.1:$ng" "http://127.0.0.1:$f_http" "http://127.0.0.1:$h_http" "http://127.0.0.1:$f_tcp" "http://127.0.0.1:$h_tcp"; do
  size=$(curl -s -o /dev/null -w '%{http_code} %{size_download}' "$url/1m.bin")
  [ "$size" = "200 1048576" ] || { echo "$url/1m.bin answered $size"; exit 1; }
done
# A short warm-up of each, so that no result includes connection set-up.
for url in "http://127.0.0.1:$f_http" "http://127.0.0.1:$h_http"; do
  wrk -t2 -c"$connections" -d2s "$url/small" >/dev/null
done

# wrk's summary as "rps p50_ms p99_ms".
run_wrk() { # url
  local out
  out=$(wrk -t2 -c"$connections" -d"${seconds}s" --latency "$1")
  local rps p50 p99
  rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
  p50=$(awk '$1 == "50%" {print $2}' <<<"$out")
  p99=$(awk '$1 == "99%" {print $2}' <<<"$out")
  echo "$rps $(to_ms "$p50") $(to_ms "$p99")"
}
to_ms() { python3 -c "import sys, re; v, u = re.match(r'([0-9.]+)(us|ms|s)', sys.argv[1]).groups(); print(round(float(v) * {'us': 0.001, 'ms': 1, 's': 1000}[u], 3))" "$1"; }
ratio() { python3 -c "import sys; a, b = map(float, sys.argv[1:]); print(f'{a / b:.2f}x')" "$1" "$2"; }

declare -A result
for case in "small-http /small http://127.0.0.1:$ng http://127.0.0.1:$f_http http://127.0.0.1:$h_http" \
            "1mib-http /1m.bin http://127.0.0.1:$ng http://127.0.0.1:$f_http http://127.0.0.1:$h_http" \
            "small-https /small - https://127.0.0.1:$f_https https://127.0.0.1:$h_https" \
            "1mib-tcp /1m.bin - http://127.0.0.1:$f_tcp http://127.0.0.1:$h_tcp"; do
  read -r name path direct fiber hap <<<"$case"
  for who in direct fiberlb haproxy; do
    case $who in direct) base=$direct ;; fiberlb) base=$fiber ;; haproxy) base=$hap ;; esac
    [ "$base" = - ] && continue
    read -r rps p50 p99 <<<"$(run_wrk "$base$path")"
    result[$name.$who]="$rps $p50 $p99"
    printf '%-12s %-8s %10s req/s  p50 %8s ms  p99 %8s ms\n' "$name" "$who" "$rps" "$p50" "$p99"
  done
done

echo
for name in small-http 1mib-http small-https 1mib-tcp; do
  read -r f_rps _ f_p99 <<<"${result[$name.fiberlb]}"
  read -r h_rps _ h_p99 <<<"${result[$name.haproxy]}"
  echo "$name: fiberlb/HAProxy req/s = $(ratio "$f_rps" "$h_rps"), p99 = $(ratio "$f_p99" "$h_p99") (lower is better)"
done
