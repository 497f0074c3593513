#!/usr/bin/env bash
# chainfire driven by the real etcdctl (Debian's etcd-client): put/get/del, txn, watch, leases,
# compaction, member list, endpoint status and health; then photonctl kv, checked against etcdctl.
set -euo pipefail
cd "$(dirname "$0")/../.."

source tests/e2e/lib/build.sh
bin=target/debug/chainfire
photonctl=target/debug/photonctl
work=$(mktemp -d)
source tests/e2e/lib/checks.sh
client_port=$(free_port)
admin_port=$(free_port)

"$bin" --component-id e2e-chainfire --data-dir "$work/data" --client-addr "127.0.0.1:$client_port" \
  --set "photon.metrics.endpoint=127.0.0.1:$admin_port" >"$work/chainfire.log" 2>&1 &
pid=$!
cleanup() {
  kill $(jobs -p) 2>/dev/null || true
  kill -9 "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

export ETCDCTL_API=3
# Without a scheme: etcdctl 3.4's `endpoint status` puts an `http://` endpoint into the HTTP/2
# :authority header, which our HTTP/2 server rightly refuses (docs/chainfire.md).
endpoint="127.0.0.1:$client_port"
ctl() { etcdctl --endpoints="$endpoint" --command-timeout=10s "$@"; }


for _ in $(seq 1 100); do ctl endpoint health >/dev/null 2>&1 && break; sleep 0.2; done
contains "endpoint health" "is healthy" "$(ctl endpoint health 2>&1)"

check "put" "OK" "$(ctl put greeting hello)"
check "get" $'greeting\nhello' "$(ctl get greeting)"
ctl put app/a 1 >/dev/null
ctl put app/b 2 >/dev/null
check "get --prefix --keys-only" $'app/a\n\napp/b' "$(ctl get app/ --prefix --keys-only)"
check "get --prefix --limit" $'app/a\n1' "$(ctl get app/ --prefix --limit=1)"
rev=$(ctl get greeting -w json | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])')
ctl put greeting changed >/dev/null
check "get --rev" $'greeting\nhello' "$(ctl get greeting --rev="$rev")"
check "del --prefix" "2" "$(ctl del app/ --prefix)"
check "get after del" "" "$(ctl get app/ --prefix)"

# Transaction: compare, then one branch.
txn_out=$(printf '%s\n' 'value("greeting") = "changed"' '' 'put txn-result success' '' 'put txn-result failure' '' | ctl txn)
check "txn" $'SUCCESS\n\nOK' "$txn_out"
check "txn result" $'txn-result\nsuccess' "$(ctl get txn-result)"

# Watch: a background watcher sees a later put and delete.
etcdctl --endpoints="$endpoint" watch watched >"$work/watch.out" 2>&1 &
watcher=$!
sleep 1
ctl put watched one >/dev/null
ctl del watched >/dev/null
sleep 1
kill "$watcher" 2>/dev/null || true
check "watch" $'PUT\nwatched\none\nDELETE\nwatched' "$(cat "$work/watch.out")"

# Leases.
lease_out=$(ctl lease grant 60)
lease=$(echo "$lease_out" | awk '{print $2}')
contains "lease grant" "granted with TTL(60s)" "$lease_out"
ctl put --lease="$lease" leased value >/dev/null
contains "lease timetolive --keys" "attached keys([leased])" "$(ctl lease timetolive "$lease" --keys)"
contains "lease list" "$lease" "$(ctl lease list)"
contains "lease keep-alive --once" "keepalived with TTL(60)" "$(ctl lease keep-alive --once "$lease")"
contains "lease revoke" "revoked" "$(ctl lease revoke "$lease")"
check "leased key gone" "" "$(ctl get leased)"

# Compaction.
rev=$(ctl get greeting -w json | python3 -c 'import json,sys; print(json.load(sys.stdin)["header"]["revision"])')
check "compaction" "compacted revision $rev" "$(ctl compaction "$rev")"
contains "read below compaction" "required revision has been compacted" "$(ctl get greeting --rev=1 2>&1 || true)"

contains "member list" "e2e-chainfire" "$(ctl member list)"
contains "endpoint status" "3.5.0" "$(ctl endpoint status)"
contains "/health" '"status":"healthy"' "$(curl -s "http://127.0.0.1:$admin_port/health")"

# photonctl kv and etcdctl see the same data.
kv() { "$photonctl" kv "$@" --endpoints "http://$endpoint"; }
check "photonctl kv put" "OK" "$(kv put tool/one 1)"
check "etcdctl sees photonctl's put" $'tool/one\n1' "$(ctl get tool/one)"
ctl put tool/two 2 >/dev/null
check "photonctl kv get --prefix" $'tool/one\n1\ntool/two\n2' "$(kv get tool/ --prefix)"
contains "photonctl kv get --output json" '"mod_revision"' "$(kv get tool/two --output json)"
"$photonctl" kv watch tool/ --prefix --endpoints "http://$endpoint" >"$work/kv-watch.out" 2>&1 &
kv_watcher=$!
sleep 1
ctl put tool/three 3 >/dev/null
check "photonctl kv del --prefix" "3" "$(kv del tool/ --prefix)"
sleep 1
kill "$kv_watcher" 2>/dev/null || true
check "photonctl kv watch" $'PUT tool/three 3\nDELETE tool/one\nDELETE tool/three\nDELETE tool/two' "$(cat "$work/kv-watch.out")"
contains "photonctl kv against nothing fails" "chainfire at http://127.0.0.1:1 did not answer" "$("$photonctl" kv get x --endpoints http://127.0.0.1:1 2>&1 || true)"

summary "chainfire-etcdctl"
