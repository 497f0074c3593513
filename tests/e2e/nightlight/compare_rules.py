#!/usr/bin/env python3
"""Compares what two Prometheus-compatible servers say about the same rule file.

  compare_rules.py PROMETHEUS_URL NIGHTLIGHT_URL

Asks both for /api/v1/rules, /api/v1/alerts and the series the recording rules wrote, and
prints one line per difference, then "rules: N/M agree" (rules whose definition, health,
state and alerts, with their expanded labels and annotations and values, are the same) and
"recorded: N/M agree". Timing fields (activeAt, lastEvaluation, evaluationTime) differ by
nature and are left out.
"""
import json
import sys
import urllib.parse
import urllib.request

TIMING = {"activeAt", "lastEvaluation", "evaluationTime", "keepFiringSince"}


def get(base, path, **params):
    url = f"{base}{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)["data"]


def without_timing(value):
    if isinstance(value, dict):
        return {k: without_timing(v) for k, v in value.items() if k not in TIMING}
    if isinstance(value, list):
        items = [without_timing(v) for v in value]
        return sorted(items, key=lambda v: json.dumps(v, sort_keys=True))
    return value


def rules_by_name(base):
    found = {}
    for group in get(base, "/api/v1/rules")["groups"]:
        for rule in group["rules"]:
            found[(group["name"], rule["name"])] = without_timing(rule)
    return found


def main():
    prometheus, nightlight = sys.argv[1], sys.argv[2]
    theirs, ours = rules_by_name(prometheus), rules_by_name(nightlight)
    agree = 0
    for key in sorted(theirs):
        if key not in ours:
            print(f"rule {key}: missing from nightlight")
            continue
        expected, actual = theirs[key], ours[key]
        differences = [
            f"  {field}: prometheus {json.dumps(expected.get(field))} nightlight {json.dumps(actual.get(field))}"
            for field in sorted(set(expected) | set(actual))
            if expected.get(field) != actual.get(field)
        ]
        if differences:
            print(f"rule {key}:")
            print("\n".join(differences))
        else:
            agree += 1
    for key in sorted(set(ours) - set(theirs)):
        print(f"rule {key}: only in nightlight")
    print(f"rules: {agree}/{len(theirs)} agree")

    alerts = [without_timing(get(base, "/api/v1/alerts")["alerts"]) for base in (prometheus, nightlight)]
    if alerts[0] != alerts[1]:
        print(f"alerts differ:\n  prometheus {json.dumps(alerts[0])}\n  nightlight {json.dumps(alerts[1])}")
    print(f"alerts: {'same' if alerts[0] == alerts[1] else 'different'} ({len(alerts[0])} alerts)")

    selector = '{__name__=~"job:.+|e2e:.+"}'
    recorded = []
    for base in (prometheus, nightlight):
        result = get(base, "/api/v1/query", query=selector)["result"]
        recorded.append({json.dumps(s["metric"], sort_keys=True): s["value"][1] for s in result})
    same = 0
    for series in sorted(recorded[0]):
        if recorded[1].get(series) == recorded[0][series]:
            same += 1
        else:
            print(f"recorded {series}: prometheus {recorded[0][series]} nightlight {recorded[1].get(series)}")
    for series in sorted(set(recorded[1]) - set(recorded[0])):
        print(f"recorded {series}: only in nightlight")
    print(f"recorded: {same}/{len(recorded[0])} agree")


if __name__ == "__main__":
    main()
