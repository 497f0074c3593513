#!/usr/bin/env bash
# A three-member chainfire cluster driven by the real etcdctl: bootstrap, writes through any
# member, member list/add/promote/remove, a fourth member joining with --join, move-leader,
# endpoint status on every member, and a killed leader replaced.
set -euo pipefail
cd "$(dirname "$0")/../.."

source scripts/lib/packages.sh
etcdctl35=$(ensure_etcdctl_3_5)
source tests/e2e/lib/build.sh
bin=target/debug/chainfire
work=$(mktemp -d)
source tests/e2e/lib/checks.sh

declare -a client peer pids
for i in 0 1 2 3; do client[$i]=$(free_port); peer[$i]=$(free_port); done
initial="cf0=http://127.0.0.1:${peer[0]},cf1=http://127.0.0.1:${peer[1]},cf2=http://127.0.0.1:${peer[2]}"
start() { # index, cluster flags...
  local i=$1; shift
  "$bin" --component-id "cf$i" --data-dir "$work/cf$i" --client-addr "127.0.0.1:${client[$i]}" \
    --peer-addr "127.0.0.1:${peer[$i]}" --set "photon.metrics.endpoint=127.0.0.1:$(free_port)" \
    --set raft.heartbeat_interval_ms=50 --set raft.election_timeout_ms=500 \
    "$@" >"$work/cf$i.log" 2>&1 &
  pids[$i]=$!
}
crash() { # index: kill -9, quietly
  kill -9 "${pids[$1]}"; wait "${pids[$1]}" 2>/dev/null || true; unset "pids[$1]"
}
cleanup() {
  kill -9 "${pids[@]}" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

export ETCDCTL_API=3
# Without a scheme: etcdctl 3.4 puts an `http://` endpoint into the HTTP/2 :authority header of
# `endpoint status`, which our HTTP/2 server refuses (docs/chainfire.md).
all="127.0.0.1:${client[0]},127.0.0.1:${client[1]},127.0.0.1:${client[2]}"
ctl() { etcdctl --endpoints="$all" --command-timeout=15s "$@"; }
on() { local i=$1; shift; etcdctl --endpoints="127.0.0.1:${client[$i]}" --command-timeout=15s "$@"; }

wait_for() { # what, command...
  local what=$1; shift
  for _ in $(seq 1 150); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "timed out waiting for $what; the members' logs:"
  tail -n 20 "$work"/cf*.log
  return 1
}
leader_index() {
  for i in "${!pids[@]}"; do
    [ "$(on "$i" endpoint status -w json 2>/dev/null | python3 -c 'import json,sys; s=json.load(sys.stdin)[0]["Status"]; print(s["leader"] == s["header"]["member_id"])' 2>/dev/null)" == "True" ] && { echo "$i"; return; }
  done
}

for i in 0 1 2; do start "$i" --bootstrap-cluster --initial-cluster "$initial"; done
wait_for "the cluster to elect a leader" ctl put ready yes
wait_for "every member to publish its client URL" bash -c \
  "[ \$(etcdctl --endpoints=$all member list | grep -c 'http://127.0.0.1:[0-9]*, http') == 3 ]"

members=$(ctl member list)
for i in 0 1 2; do
  contains "member list has cf$i" "cf$i, http://127.0.0.1:${peer[$i]}, http://127.0.0.1:${client[$i]}, false" "$members"
done
status=$(ctl endpoint status)
check "endpoint status answers on every member" "3" "$(grep -c '3.5.0' <<<"$status")"
check "exactly one leader" "1" "$(grep -c ', true, false,' <<<"$status")"
# etcdctl 3.5 takes the members' client URLs (with their scheme) from the member list.
status=$("$etcdctl35" --endpoints="http://127.0.0.1:${client[0]}" endpoint status --cluster)
check "endpoint status --cluster (etcdctl 3.5)" "3" "$(grep -c 'http://127.0.0.1:[0-9]*, [0-9a-f]*, 3.5.0' <<<"$status")"
contains "endpoint health" "is healthy" "$(on 1 endpoint health 2>&1)"

leader=$(leader_index)
follower=$(( (leader + 1) % 3 ))
check "put through a follower" "OK" "$(on "$follower" put via-follower 1)"
check "linearizable get on another member" $'via-follower\n1' "$(on $(( (leader + 2) % 3 )) get via-follower)"

# An operator adds a learner, promotes it once it has caught up, and removes it.
added=$(ctl member add cf3 --learner --peer-urls="http://127.0.0.1:${peer[3]}")
contains "member add --learner" "added to cluster" "$added"
start 3 --join "http://127.0.0.1:${client[0]},http://127.0.0.1:${client[1]}"
wait_for "the learner to publish itself" bash -c \
  "etcdctl --endpoints=$all member list | grep -q 'cf3, http://127.0.0.1:${peer[3]}, http://127.0.0.1:${client[3]}, true'"
learner_id=$(ctl member list | grep cf3 | cut -d, -f1)
wait_for "the learner to be promoted" ctl member promote "$learner_id"
contains "promoted learner is a voter" "cf3, http://127.0.0.1:${peer[3]}, http://127.0.0.1:${client[3]}, false" "$(ctl member list)"
check "the new member has the data" $'via-follower\n1' "$(on 3 get via-follower --consistency=s)"
contains "member remove" "removed from cluster" "$(ctl member remove "$learner_id")"
check "three members again" "3" "$(ctl member list | wc -l)"
wait_for "the removed member to stop by itself" bash -c "! kill -0 ${pids[3]} 2>/dev/null"
contains "the removed member says why it stopped" "was removed from the cluster" "$(cat "$work/cf3.log")"
wait "${pids[3]}" 2>/dev/null || true; unset 'pids[3]'

# move-leader to a follower.
leader=$(leader_index)
target=$(( (leader + 1) % 3 ))
target_id=$(on "$target" endpoint status -w json | python3 -c 'import json,sys; print("%x" % json.load(sys.stdin)[0]["Status"]["header"]["member_id"])')
contains "move-leader" "Leadership transferred" "$(ctl move-leader "$target_id")"
check "the target leads" "$target" "$(leader_index)"

# kill -9 the leader: the other two elect a new one and keep every acknowledged write.
for n in $(seq 1 50); do on "$target" put "k$n" "$n" >/dev/null; done
crash "$target"
survivor=$(( (target + 1) % 3 ))
wait_for "a new leader" on "$survivor" put after-failover yes
check "writes survive the leader's death" $'k50\n50' "$(on "$survivor" get k50)"
check "all 50 keys" "50" "$(on "$survivor" get k --prefix --keys-only | grep -c '^k')"

summary "chainfire cluster with etcdctl"
