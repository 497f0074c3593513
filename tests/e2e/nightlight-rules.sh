#!/usr/bin/env bash
# nightlight's rules beside the real Prometheus (Debian's 2.42) and Alertmanager (Debian's 0.25):
# promtool and nightlight agree on which rule files load (and nightlight names the line); both
# servers evaluate one rule file against one exporter and must report the same rules, health,
# alerts (with their expanded labels and annotations) and recorded series; nightlight sends to a
# real Alertmanager, whose webhook notifications must match the ones nightlight posts to its own
# local_webhook, firing and then resolved; photonctl shows the alerts and rules.
set -euo pipefail
cd "$(dirname "$0")/../.."

source tests/e2e/lib/build.sh
bin=target/debug/nightlight
photonctl=target/debug/photonctl
source tests/e2e/lib/checks.sh
source tests/e2e/lib/scratch.sh
source tests/e2e/nightlight/lib.sh
fixtures=tests/e2e/nightlight
rules=$fixtures/rules

# --- Which rule files load: promtool and nightlight --check-config ---------------------------
nightlight_check() { # rule-file: prints what nightlight says, and "exit N"
  printf '[photon]\ncomponent_id = "e2e-check"\n[standalone.storage]\ndata_dir = "%s"\n[standalone.rules]\nrule_files = ["%s"]\n' \
    "$work/unused" "$1" >"$work/check.toml"
  local rc=0
  "$bin" --config "$work/check.toml" --check-config >"$work/check.out" 2>&1 || rc=$?
  cat "$work/check.out"
  echo "exit $rc"
}
promtool_rc() { local rc=0; promtool check rules "$1" >/dev/null 2>&1 || rc=$?; echo "$rc"; }

for file in "$rules/good.yml" deploy/nightlight/rules/*.yml; do
  check "promtool accepts $file" 0 "$(promtool_rc "$file")"
  contains "nightlight accepts $file" "exit 0" "$(nightlight_check "$PWD/$file")"
done
while IFS='|' read -r file said; do
  check "promtool refuses $file" 1 "$(promtool_rc "$rules/$file")"
  verdict=$(nightlight_check "$rules/$file")
  contains "nightlight refuses $file" "exit 1" "$verdict"
  contains "nightlight names the place and reason in $file" "$rules/$file:$said" "$verdict"
done <<'BAD'
bad-expression.yml|5:15: group "a", rule 1: could not parse expression
bad-for-in-recording.yml|6:14: group "a", rule 1: invalid field 'for' in recording rule
bad-template-function.yml|7:14: group "a", rule 1: annotation "s": invalid template: function "nosuch" not defined
bad-unknown-field.yml|3:5: unknown field `rulez`
bad-repeated-group.yml|6:11: group name "a" is repeated in the same file
bad-record-name.yml|4:17: group "a", rule 1: invalid recording rule name: "bad name"
bad-duration.yml|6:14: group "a", rule 1: for: "soon" is not a duration
BAD

# --- One exporter, one rule file, two evaluators ----------------------------------------------
cp "$fixtures/exposition.prom" "$work/exposition.prom"
exporter_port=$(free_port)
python3 "$fixtures/http_fixtures.py" exporter "$work/exposition.prom" "$exporter_port" &
pids+=($!)
mkdir -p "$work/received"
receiver_port=$(free_port)
python3 "$fixtures/http_fixtures.py" receiver "$work/received" "$receiver_port" &
pids+=($!)

am_port=$(free_port)
cat >"$work/alertmanager.yml" <<CONF
route:
  receiver: local_webhook
  group_by: [alertname]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: local_webhook
    webhook_configs:
      - url: http://127.0.0.1:$receiver_port/alertmanager
CONF
prometheus-alertmanager --config.file="$work/alertmanager.yml" --storage.path="$work/alertmanager" \
  --web.listen-address="127.0.0.1:$am_port" --cluster.listen-address= >"$work/alertmanager.log" 2>&1 &
pids+=($!)

cat >"$work/prometheus.yml" <<CONF
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files: ["$PWD/$rules/good.yml"]
scrape_configs:
  - job_name: e2e
    static_configs:
      - targets: ["127.0.0.1:$exporter_port"]
CONF
prom_port=$(free_port)
start_prometheus prometheus "$work/prometheus.yml" "$work/prometheus-data" "$prom_port"

nl_port=$(free_port)
cat >"$work/nightlight.toml" <<CONF
[photon]
component_id = "e2e-nightlight"

[standalone.server]
http_addr = "127.0.0.1:$nl_port"
enable_lifecycle = true

[standalone.storage]
data_dir = "$work/nightlight"

[standalone.collection]
scrape_interval_sec = 1
scrape_timeout_sec = 1
self_scrape = false

[[standalone.scrape_targets]]
name = "e2e"
static_configs = ["127.0.0.1:$exporter_port"]

[standalone.rules]
rule_files = ["$PWD/$rules/good.yml"]
evaluation_interval_sec = 1

[standalone.alerting]
enabled = true
local_webhook = "http://127.0.0.1:$receiver_port/nightlight"
alertmanager_url = "http://127.0.0.1:$am_port"
group_wait_sec = 1
group_interval_sec = 1
CONF
"$bin" --config "$work/nightlight.toml" >"$work/nightlight.log" 2>&1 &
pids+=($!)
prom="http://127.0.0.1:$prom_port"
nl="http://127.0.0.1:$nl_port"
wait_ready "$prom/-/ready" "$work/prometheus.log"
wait_ready "$nl/-/ready" "$work/nightlight.log"
wait_ready "http://127.0.0.1:$am_port/-/ready" "$work/alertmanager.log"

# Both have evaluated with scraped data once the hot rooms' alerts (no `for`) are firing.
firing_count() { # url
  curl -s "$1/api/v1/alerts" | python3 -c 'import json, sys
print(sum(a["state"] == "firing" for a in json.load(sys.stdin)["data"]["alerts"]))' 2>/dev/null || echo 0
}
for _ in $(seq 1 100); do
  [ "$(firing_count "$prom")" == 2 ] && [ "$(firing_count "$nl")" == 2 ] && break
  sleep 0.2
done
sleep 2 # a few more evaluations on both, so neither is caught between two
python3 "$fixtures/compare_rules.py" "$prom" "$nl" | tee "$work/compare.out" || true
check "Prometheus and nightlight report the same rules" "rules: 6/6 agree" "$(grep '^rules:' "$work/compare.out")"
check "Prometheus and nightlight report the same alerts" "alerts: same (4 alerts)" "$(grep '^alerts:' "$work/compare.out")"
check "Prometheus and nightlight record the same series" "recorded: 3/3 agree" "$(grep '^recorded:' "$work/compare.out")"

# --- Notifications: nightlight's webhook and Alertmanager's ------------------------------------
# Prints the newest E2EHot notification of status $2 that receiver $1 got, normalised for
# comparison (Alertmanager's own externalURL is its address, nightlight's is its own).
notification() { # receiver status
  python3 - "$work/received/$1.jsonl" "$2" <<'PY'
import json, sys
path, status = sys.argv[1], sys.argv[2]
try:
    lines = open(path).read().splitlines()
except FileNotFoundError:
    lines = []
found = [json.loads(l) for l in lines if json.loads(l)["groupLabels"].get("alertname") == "E2EHot"]
found = [n for n in found if n["status"] == status and all(a["status"] == status for a in n["alerts"])]
if found:
    note = found[-1]
    note.pop("externalURL")
    if status == "resolved":
        for alert in note["alerts"]:  # the two saw the resolution at different instants
            alert["endsAt"] = "set" if alert["endsAt"] != "0001-01-01T00:00:00Z" else "unset"
    print(json.dumps(note, sort_keys=True))
PY
}
wait_for_notification() { # receiver status
  for _ in $(seq 1 150); do
    [ -n "$(notification "$1" "$2")" ] && return 0
    sleep 0.2
  done
}
for status in firing resolved; do
  if [ "$status" == resolved ]; then
    # The rooms cool down: both alerts resolve.
    sed -i 's/^e2e_temperature_celsius{room="kitchen"} .*/e2e_temperature_celsius{room="kitchen"} 20/;
      s/^e2e_temperature_celsius{room="office"} .*/e2e_temperature_celsius{room="office"} 21/' "$work/exposition.prom"
  fi
  wait_for_notification nightlight "$status"
  wait_for_notification alertmanager "$status"
  ours=$(notification nightlight "$status")
  theirs=$(notification alertmanager "$status")
  contains "nightlight's webhook got the $status notification" "\"status\": \"$status\"" "$ours"
  contains "Alertmanager relayed nightlight's alerts as $status" "\"status\": \"$status\"" "$theirs"
  check "nightlight's $status webhook payload is Alertmanager's" "$theirs" "$ours"
done
contains "the resolved notification has the alerts' end" '"endsAt": "set"' "$(notification nightlight resolved)"
am_alerts=$(curl -s "http://127.0.0.1:$am_port/api/v2/alerts?filter=alertname%3D%22E2EPendingForAnHour%22")
check "pending alerts are not sent to Alertmanager" "[]" "$am_alerts"

# --- photonctl ---------------------------------------------------------------------------------
alerts_out=$("$photonctl" metrics alerts --endpoint "$nl" 2>&1 || true)
contains "photonctl metrics alerts lists a pending alert" "E2EPendingForAnHour" "$alerts_out"
contains "photonctl metrics alerts shows its state" "pending" "$alerts_out"
rules_out=$("$photonctl" metrics rules --endpoint "$nl" 2>&1 || true)
contains "photonctl metrics rules lists the recording rules" "job:e2e_requests:sum" "$rules_out"
contains "photonctl metrics rules shows health" "ok" "$rules_out"
reload_out=$(curl -s -X POST "$nl/-/reload")
contains "POST /-/reload reloads the rules" "reloaded 6 rules" "$reload_out"

summary nightlight-rules
