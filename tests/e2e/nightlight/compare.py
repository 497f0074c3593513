#!/usr/bin/env python3
"""Asks two Prometheus-compatible query APIs the same PromQL and compares their answers.

    compare.py --start S --end E [--names prometheus,nightlight] CORPUS URL_A URL_B

S and E are the unix times of the data's first and last sample. Each expression of CORPUS (one
a line, # comments, @AT@ replaced by S + 3607) is asked as an instant query at six times (S+60,
S+1807, S+3665.5, S+5400, E-17 and E+180, 3 minutes after the last sample but within the 5
minute lookback) and as one range query from S to E+300 (the lookback's edge) at a 60 s step.

Agreement: the same status (two errors agree, whatever the message); on success the same
resultType, the same series by full label set, the same timestamps, values within a relative
1e-9 (absolute 1e-12 near zero), NaN equal to NaN and infinities exact. Vectors are sets, except
that sort() and sort_desc() instant results must list their values in the same order. Also
compares /api/v1/labels, /api/v1/label/<name>/values and /api/v1/series over the data.

Prints every disagreement, then `N/M expressions agree`; exits 1 on any disagreement.
"""

import argparse
import concurrent.futures
import json
import math
import sys
import urllib.error
import urllib.parse
import urllib.request

REL, ABS = 1e-9, 1e-12
MAX_DETAILS = 8  # lines per query
MAX_QUERIES = 3  # queries shown in full per expression


def get(base, path, params):
    """(status, payload): "success" with the data, "error" with the API's error, or "broken"
    with what came instead of an API answer (which agrees with nothing)."""
    url = f"{base}{path}?{urllib.parse.urlencode(params, doseq=True)}"
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            status, body = response.status, response.read()
    except urllib.error.HTTPError as e:
        status, body = e.code, e.read()
    except Exception as e:  # noqa: BLE001 - a refused connection, a timeout: no answer
        return "broken", f"{type(e).__name__}: {e}"
    try:
        doc = json.loads(body)
    except ValueError:
        return "broken", f"HTTP {status}, not JSON: {body[:200]!r}"
    if not isinstance(doc, dict) or doc.get("status") not in ("success", "error"):
        return "broken", f"HTTP {status}, no status: {body[:200]!r}"
    if doc["status"] == "error":
        return "error", f"HTTP {status} {doc.get('errorType', '?')}: {doc.get('error', '?')}"
    if "data" not in doc:
        return "broken", f"HTTP {status}, success without data: {body[:200]!r}"
    return "success", doc["data"]


def parse_value(s):
    return float(s)  # Python reads "NaN", "+Inf", "-Inf" as Prometheus writes them


def fmt_value(v):
    if math.isnan(v) or math.isinf(v):
        return {"nan": "NaN", "inf": "+Inf", "-inf": "-Inf"}[repr(v)]
    return repr(v)


def same_value(a, b):
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= max(ABS, REL * max(abs(a), abs(b)))


def ms(ts):
    return round(float(ts) * 1000)


ORIGIN = {}  # "S" and "E" in ms, for readable times


def fmt_time(t):
    """A time in ms as unix seconds, and where that is in the data (S+1h2m, E-17s)."""
    _, ref = min(((abs(t - v), k) for k, v in ORIGIN.items()), default=(0, None))
    secs = f"{t / 1000:.3f}".rstrip("0").rstrip(".")
    if ref is None:
        return secs
    d = (t - ORIGIN[ref]) / 1000
    sign, d = ("+" if d >= 0 else "-"), abs(d)
    h, rest = divmod(d, 3600)
    m, sec = divmod(rest, 60)
    rel = (f"{int(h)}h" if h else "") + (f"{int(m)}m" if m else "") + (f"{sec:g}s" if sec or not (h or m) else "")
    return f"{secs} ({ref}{sign}{rel})"


def fmt_labels(labels):
    name = dict(labels).get("__name__", "")
    rest = ",".join(f'{k}="{v}"' for k, v in sorted(labels) if k != "__name__")
    return f"{name}{{{rest}}}"


def by_labels(result, diffs, who):
    out = {}
    for item in result:
        key = frozenset(item.get("metric", {}).items())
        if key in out:
            diffs.append(f"{who} lists {fmt_labels(key)} twice")
        out[key] = item
    return out


def points(item):
    if "value" in item:
        return [(ms(item["value"][0]), parse_value(item["value"][1]))]
    return [(ms(t), parse_value(v)) for t, v in item.get("values", [])]


def fmt_points(pts):
    shown = ", ".join(f"{fmt_value(v)} @ {fmt_time(t)}" for t, v in pts[:2])
    return shown + (f", ... ({len(pts)} points)" if len(pts) > 2 else "")


def compare_points(pa, pb, names, labels, diffs):
    if [t for t, _ in pa] != [t for t, _ in pb]:
        ta, tb = {t for t, _ in pa}, {t for t, _ in pb}
        diffs.append(f"timestamps differ for {fmt_labels(labels)}: {len(pa)} vs {len(pb)} points; "
                     f"only in {names[0]}: {[fmt_time(t) for t in sorted(ta - tb)[:4]]}, "
                     f"only in {names[1]}: {[fmt_time(t) for t in sorted(tb - ta)[:4]]}")
        return
    for (t, va), (_, vb) in zip(pa, pb):
        if not same_value(va, vb):
            diffs.append(f"value at {fmt_time(t)} of {fmt_labels(labels)}: {names[0]} {fmt_value(va)}, "
                         f"{names[1]} {fmt_value(vb)}")


def compare_data(da, db, names, ordered):
    diffs = []
    ta, tb = da.get("resultType"), db.get("resultType")
    if ta != tb:
        return [f"resultType: {names[0]} {ta}, {names[1]} {tb}"]
    ra, rb = da.get("result"), db.get("result")
    if ta in ("scalar", "string"):
        if ms(ra[0]) != ms(rb[0]):
            diffs.append(f"{ta} timestamp: {names[0]} {ra[0]}, {names[1]} {rb[0]}")
        if ta == "string" and ra[1] != rb[1]:
            diffs.append(f"string: {names[0]} {ra[1]!r}, {names[1]} {rb[1]!r}")
        if ta == "scalar" and not same_value(parse_value(ra[1]), parse_value(rb[1])):
            diffs.append(f"scalar: {names[0]} {ra[1]}, {names[1]} {rb[1]}")
        return diffs
    ma, mb = by_labels(ra, diffs, names[0]), by_labels(rb, diffs, names[1])
    for key in sorted(ma.keys() - mb.keys(), key=fmt_labels):
        diffs.append(f"only in {names[0]}: {fmt_labels(key)} {fmt_points(points(ma[key]))}")
    for key in sorted(mb.keys() - ma.keys(), key=fmt_labels):
        diffs.append(f"only in {names[1]}: {fmt_labels(key)} {fmt_points(points(mb[key]))}")
    for key in sorted(ma.keys() & mb.keys(), key=fmt_labels):
        compare_points(points(ma[key]), points(mb[key]), names, key, diffs)
    if ordered and not diffs:
        va = [points(item)[0][1] for item in ra]
        vb = [points(item)[0][1] for item in rb]
        if not all(same_value(a, b) for a, b in zip(va, vb)):
            diffs.append(f"order: {names[0]} {[fmt_value(v) for v in va]}, {names[1]} {[fmt_value(v) for v in vb]}")
    return diffs


def compare_answers(a, b, names, ordered=False):
    (sa, pa), (sb, pb) = a, b
    if sa == "broken" or sb == "broken" or sa != sb:
        return [f"{names[0]}: {describe(sa, pa)}", f"{names[1]}: {describe(sb, pb)}"]
    if sa == "error":
        return []
    return compare_data(pa, pb, names, ordered)


def describe(status, payload):
    if status != "success":
        return payload
    text = json.dumps(payload)
    return f"success {payload.get('resultType')}: {text[:300]}{'...' if len(text) > 300 else ''}"


def run_expression(expr, urls, names, times, range_params):
    """Every disagreement for one expression, as (what was asked, [differences])."""
    out = []
    ordered = expr.replace(" ", "").startswith(("sort(", "sort_desc("))
    for label, t in times:
        params = {"query": expr, "time": f"{t:.3f}"}
        answers = [get(u, "/api/v1/query", params) for u in urls]
        diffs = compare_answers(*answers, names, ordered)
        if diffs:
            out.append((f"instant query at {t:.3f} ({label})", diffs))
    params = {"query": expr, **range_params}
    answers = [get(u, "/api/v1/query_range", params) for u in urls]
    diffs = compare_answers(*answers, names)
    if diffs:
        out.append((f"range query {range_params['start']}..{range_params['end']} step {range_params['step']}", diffs))
    return out


def compare_metadata(urls, names, start, end):
    window = {"start": str(start), "end": str(end + 300)}
    asks = [
        ("/api/v1/labels", window),
        ("/api/v1/label/__name__/values", window),
        ("/api/v1/label/job/values", window),
        ("/api/v1/label/code/values", {"match[]": 'http_requests_total{job="api"}', **window}),
        ("/api/v1/series", {"match[]": ['http_requests_total{code=~"4..|503"}', "build_info"], **window}),
    ]
    failures = []
    for path, params in asks:
        (sa, pa), (sb, pb) = (get(u, path, params) for u in urls)
        what = f"{path} {params.get('match[]', '')}".strip()
        if sa != "success" or sb != "success":
            failures.append((what, [f"{names[0]}: {describe(sa, pa)}", f"{names[1]}: {describe(sb, pb)}"]))
            continue
        if not isinstance(pa, list) or not isinstance(pb, list):
            failures.append((what, [f"{names[0]}: {json.dumps(pa)[:400]}", f"{names[1]}: {json.dumps(pb)[:400]}"]))
            continue
        ja, jb = ({json.dumps(x, sort_keys=True) for x in d} for d in (pa, pb))
        if ja != jb or len(pa) != len(pb):
            failures.append((what, [f"{len(pa)} vs {len(pb)} entries",
                                    f"only in {names[0]}: {', '.join(sorted(ja - jb))[:400]}",
                                    f"only in {names[1]}: {', '.join(sorted(jb - ja))[:400]}"]))
    return failures, len(asks)


def read_corpus(path, substitutions):
    exprs = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            for k, v in substitutions.items():
                line = line.replace(k, v)
            exprs.append(line)
    return exprs


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("corpus")
    p.add_argument("url_a")
    p.add_argument("url_b")
    p.add_argument("--start", type=int, required=True)
    p.add_argument("--end", type=int, required=True)
    p.add_argument("--names", default="prometheus,nightlight")
    p.add_argument("--jobs", type=int, default=4)
    args = p.parse_args()
    names = args.names.split(",")
    urls = [args.url_a.rstrip("/"), args.url_b.rstrip("/")]
    s, e = args.start, args.end
    exprs = read_corpus(args.corpus, {"@AT@": str(s + 3607)})
    times = [("S+1m", s + 60), ("S+30m7s", s + 1807), ("S+1h1m5.5s", s + 3665.5), ("S+1h30m", s + 5400),
             ("E-17s", e - 17), ("E+3m", e + 180)]
    ORIGIN.update(S=s * 1000, E=e * 1000)
    range_params = {"start": str(s), "end": str(e + 300), "step": "60"}

    with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda x: run_expression(x, urls, names, times, range_params), exprs))

    agree = 0
    for expr, failures in zip(exprs, results):
        if not failures:
            agree += 1
            continue
        print(f"MISMATCH {expr}")
        for what, diffs in failures[:MAX_QUERIES]:
            print(f"  {what}:")
            for d in diffs[:MAX_DETAILS]:
                print(f"    {d}")
            if len(diffs) > MAX_DETAILS:
                print(f"    ... and {len(diffs) - MAX_DETAILS} more")
        if len(failures) > MAX_QUERIES:
            print(f"  also differs: {'; '.join(what for what, _ in failures[MAX_QUERIES:])}")
    meta_failures, meta_total = compare_metadata(urls, names, s, e)
    for what, diffs in meta_failures:
        print(f"MISMATCH {what}")
        for d in diffs:
            print(f"    {d}")
    print(f"metadata: {meta_total - len(meta_failures)}/{meta_total} endpoints agree")
    print(f"{agree}/{len(exprs)} expressions agree")
    sys.exit(0 if agree == len(exprs) and not meta_failures else 1)


if __name__ == "__main__":
    main()
