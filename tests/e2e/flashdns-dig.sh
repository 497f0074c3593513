#!/usr/bin/env bash
# flashdns driven by the real dig (Debian dnsutils) and kdig (knot-dnsutils) over UDP and TCP:
# answers, NXDOMAIN, referrals, truncation with TCP retry, AXFR allowed and refused; then
# photonctl dns against the REST API.
set -euo pipefail
cd "$(dirname "$0")/../.."

source tests/e2e/lib/build.sh
bin=target/debug/flashdns
photonctl=target/debug/photonctl
work=$(mktemp -d)
source tests/e2e/lib/checks.sh
dns_port=$(free_port)
admin_port=$(free_port)

"$bin" --component-id e2e-flashdns --zone-dir flashdns/tests/zones --dns-addr "127.0.0.1:$dns_port" \
  --admin-api-addr "127.0.0.1:$admin_port" --set standalone.features.axfr_allow=127.0.0.1 \
  >"$work/flashdns.log" 2>&1 &
pid=$!
cleanup() {
  kill "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$admin_port/health" >/dev/null && break; sleep 0.1; done

d() { dig @127.0.0.1 -p "$dns_port" +norec +time=2 +tries=1 "$@"; }
k() { kdig @127.0.0.1 -p "$dns_port" +norec +time=2 +retry=0 "$@"; }

check "dig A" "192.0.2.80" "$(d +short web.example.test A)"
check "dig +tcp AAAA" "2001:db8::80" "$(d +tcp +short web.example.test AAAA)"
check "dig CNAME chain" $'chain2.example.test.\nwww.example.test.\nweb.example.test.\n192.0.2.80' "$(d +short chain1.example.test A)"
contains "dig NXDOMAIN" "status: NXDOMAIN" "$(d nope.example.test A)"
contains "dig NXDOMAIN SOA TTL" "example.test.		300	IN	SOA" "$(d nope.example.test A)"
contains "dig aa on answers" "flags: qr aa;" "$(d web.example.test A)"
referral=$(d host.sub.example.test A)
contains "dig referral has no aa" "flags: qr;" "$referral"
contains "dig referral glue" "ns1.sub.example.test.	3600	IN	A	192.0.2.200" "$referral"
contains "dig REFUSED outside the zones" "status: REFUSED" "$(d www.example.org A)"
check "dig wildcard" "192.0.2.100" "$(d +short anything.wild.example.test A)"
check "kdig over UDP" "192.0.2.80" "$(k +short web.example.test A)"
check "kdig over TCP" "192.0.2.80" "$(k +tcp +short web.example.test A)"
contains "kdig MX additional" "mail.example.test." "$(k example.test MX)"

# Too big for 512 bytes: dig without EDNS sees TC and retries over TCP (on by default).
contains "dig truncation" "flags: qr aa tc;" "$(d +noedns +ignore big.example.test TXT)"
check "dig retries over TCP" "10" "$(d +noedns +short big.example.test TXT | wc -l | tr -d ' ')"
check "kdig retries over TCP" "10" "$(k +noedns +short big.example.test TXT | grep -c "^\"record")"

axfr=$(d example.test AXFR)
check "dig AXFR records (SOA twice)" "46" "$(grep -c 'IN' <<<"$(grep -v '^;' <<<"$axfr")")"
check "kdig AXFR starts with SOA" "SOA" "$(k +short example.test AXFR | head -1 | awk '{print "SOA"}')"
contains "dig AXFR refused from 127.0.0.2" "Transfer failed" "$(dig @127.0.0.1 -p "$dns_port" -b 127.0.0.2 +time=2 +tries=1 example.test AXFR)"

endpoint=(--endpoint "http://127.0.0.1:$admin_port")
contains "photonctl dns zones" "example.test." "$("$photonctl" dns zones "${endpoint[@]}")"
contains "photonctl dns records" $'web.example.test.\t3600\tIN\tAAAA\t2001:db8::80' "$("$photonctl" dns records example.test "${endpoint[@]}")"
contains "photonctl dns lookup" "status: NXDOMAIN" "$("$photonctl" dns lookup nope.example.test A "${endpoint[@]}")"
check "photonctl dns lookup json" "192.0.2.80" "$("$photonctl" dns lookup web.example.test A "${endpoint[@]}" --output json | python3 -c 'import json,sys; print(json.load(sys.stdin)["answer"][0]["data"])')"

summary "flashdns e2e (dig, kdig, photonctl dns)"
