#!/usr/bin/env python3
"""Writes the OpenMetrics backfill of nightlight's differential test against Prometheus.

    gen_data.py END OUT    (END: unix seconds of the last scrape, a whole minute)

Two hours of 15 s scrapes ending at END, deterministic (fixed seed; only END moves it in time):
counters with resets, missed scrapes, a long gap, a series that starts late and one that ends
20 minutes early; gauges with negative and tiny floats; a classic histogram over two jobs; a
summary. Prints the number of series written.

What `promtool tsdb create-blocks-from openmetrics` needs: every sample with a timestamp, the
file ending in `# EOF`, and each series' samples in time order (an older sample after a newer
one is dropped without a word). Families stay grouped and each series' points contiguous, as
OpenMetrics asks. Scrape jitter is a multiple of 1/8 s, so that seconds→milliseconds is exact
however a parser rounds.
"""

import math
import random
import sys

INTERVAL = 15
SPAN = 2 * 3600


def fmt_value(v):
    assert math.isfinite(v)
    return repr(float(v))


def fmt_ts(ms):
    return str(ms // 1000) if ms % 1000 == 0 else f"{ms // 1000}.{ms % 1000:03d}"


def escape(value):
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def fmt_labels(labels):
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in labels) + "}"


class Writer:
    def __init__(self, out):
        self.out = out
        self.series = set()

    def family(self, name, kind, help_text, unit=None):
        self.out.write(f"# TYPE {name} {kind}\n# HELP {name} {help_text}\n")
        if unit:
            self.out.write(f"# UNIT {name} {unit}\n")

    def sample(self, name, labels, value, ms):
        self.series.add((name, tuple(labels)))
        self.out.write(f"{name}{fmt_labels(labels)} {fmt_value(value)} {fmt_ts(ms)}\n")


def scrapes(rng, start, end, jitter=False, miss=0.0, first=None, last=None, gap=None):
    """Timestamps (ms) of one target's scrapes: every 15 s from start to end, shifted by up to
    1.875 s of jitter, some missed, within [first, last], none inside gap (a (from, to) pair)."""
    out = []
    for t in range(start, end + 1, INTERVAL):
        ms = t * 1000 + (rng.randrange(16) * 125 if jitter else 0)
        if rng.random() < miss:
            continue
        if first is not None and t < first or last is not None and t > last:
            continue
        if gap is not None and gap[0] <= t < gap[1]:
            continue
        out.append(ms)
    return out


def main():
    end = int(sys.argv[1])
    path = sys.argv[2]
    assert end % 60 == 0, "END must be a whole minute"
    start = end - SPAN
    rng = random.Random(20240611)
    with open(path, "w") as out:
        w = Writer(out)

        # Counters: job × instance × method × code, integer increments.
        w.family("http_requests", "counter", "HTTP requests handled.")
        for job in ("api", "web"):
            for instance in ("10.0.0.1:9100", "10.0.0.2:9100"):
                for method in ("GET", "POST"):
                    for code in ("200", "500"):
                        labels = [("code", code), ("instance", instance), ("job", job), ("method", method)]
                        base = (40 if method == "GET" else 9) * (1 if code == "200" else 0.05)
                        jitter = instance.startswith("10.0.0.2")
                        resets = set()
                        if job == "api" and instance == "10.0.0.2:9100":
                            resets = {start + 37 * 60, start + 95 * 60 + 30}
                        elif job == "web" and method == "POST" and code == "200":
                            resets = {start + 61 * 60}
                        gap = (start + 70 * 60, start + 80 * 60) if (job, method, code) == ("web", "GET", "500") else None
                        value = float(rng.randrange(1000, 100000))
                        for ms in scrapes(rng, start, end, jitter=jitter, miss=0.03, gap=gap):
                            t = ms // 1000
                            if any(r <= t < r + INTERVAL for r in resets):
                                value = float(rng.randrange(0, 5))
                            else:
                                value += rng.randrange(0, int(base * 30) + 2)
                            w.sample("http_requests_total", labels, value, ms)
        # One that starts 45 minutes in, one that stops 20 minutes before the end.
        for code, first, last in (("503", start + 45 * 60, None), ("404", None, end - 20 * 60)):
            labels = [("code", code), ("instance", "10.0.0.1:9100"), ("job", "api"), ("method", "GET")]
            value = 0.0
            for ms in scrapes(rng, start, end, first=first, last=last):
                value += rng.randrange(0, 20)
                w.sample("http_requests_total", labels, value, ms)

        # A float counter with a reset.
        w.family("process_cpu_seconds", "counter", "CPU time.")
        for job in ("api", "web"):
            for instance in ("10.0.0.1:9100", "10.0.0.2:9100"):
                labels = [("instance", instance), ("job", job)]
                value = rng.uniform(100, 5000)
                reset = start + 50 * 60 if (job, instance) == ("web", "10.0.0.1:9100") else None
                for ms in scrapes(rng, start, end, jitter=instance.startswith("10.0.0.2"), miss=0.02):
                    if reset is not None and reset <= ms // 1000 < reset + INTERVAL:
                        value = rng.uniform(0, 1)
                    else:
                        value += rng.uniform(0, 15 * 0.8)
                    w.sample("process_cpu_seconds_total", labels, value, ms)

        # Gauges: temperatures around zero (negative outside), random floats of all sizes.
        w.family("node_temperature_celsius", "gauge", "Sensor temperature.", unit="celsius")
        for instance in ("10.0.0.1:9100", "10.0.0.2:9100"):
            for sensor, mean in (("cpu", 55.0), ("outside", -3.0)):
                labels = [("instance", instance), ("job", "node"), ("sensor", sensor)]
                value = mean + rng.uniform(-5, 5)
                for ms in scrapes(rng, start, end, miss=0.01):
                    value += rng.gauss(0, 1.3) + (mean - value) * 0.05
                    w.sample("node_temperature_celsius", labels, value, ms)

        w.family("account_balance", "gauge", "Balance, any sign and size.")
        for account, scale in (("alpha", 1e6), ("beta", 1.0), ("gamma", 1e-5), ("delta", 250.0)):
            labels = [("account", account), ("job", "bank")]
            for ms in scrapes(rng, start, end, jitter=True):
                w.sample("account_balance", labels, rng.uniform(-scale, scale), ms)

        w.family("queue_depth", "gauge", "Items waiting.")
        for queue in ("ingest", "export", "retry"):
            labels = [("instance", "10.0.0.1:9100"), ("job", "worker"), ("queue", queue)]
            value = 0.0
            for ms in scrapes(rng, start, end, miss=0.02):
                value = max(0.0, value + rng.randrange(-6, 7))
                w.sample("queue_depth", labels, value, ms)

        w.family("build_info", "gauge", "Build facts, in labels.")
        for job, version, path in (("api", "1.4.2", 'C:\\srv\\api "main"'), ("web", "2.0.0-rc.1", "/srv/web, root")):
            labels = [("branch", "main"), ("job", job), ("path", path), ("version", version)]
            for ms in scrapes(rng, start, end):
                w.sample("build_info", labels, 1.0, ms)

        # A classic histogram over two jobs: per scrape all buckets, _sum and _count together.
        bounds = ["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1.0", "2.5", "5.0", "10.0", "+Inf"]
        w.family("http_request_duration_seconds", "histogram", "Request latency.", unit="seconds")
        for job, mu in (("api", math.log(0.08)), ("web", math.log(0.4))):
            counts = [0] * len(bounds)
            total = 0.0
            first = True
            for ms in scrapes(rng, start, end, miss=0.02):
                n = 0 if first else rng.randrange(5, 60)
                first = False
                for _ in range(n):
                    x = rng.lognormvariate(mu, 1.1)
                    total += x
                    for i, b in enumerate(bounds):
                        if b == "+Inf" or x <= float(b):
                            counts[i] += 1
                for b, c in zip(bounds, counts):
                    w.sample("http_request_duration_seconds_bucket", [("job", job), ("le", b)], float(c), ms)
                w.sample("http_request_duration_seconds_sum", [("job", job)], total, ms)
                w.sample("http_request_duration_seconds_count", [("job", job)], float(counts[-1]), ms)

        # A summary over two services.
        w.family("rpc_duration_seconds", "summary", "RPC latency.", unit="seconds")
        for service, scale in (("auth", 0.02), ("billing", 0.3)):
            count, total = 0, 0.0
            for ms in scrapes(rng, start, end, jitter=service == "billing"):
                q50 = scale * rng.uniform(0.8, 1.2)
                for q, v in (("0.5", q50), ("0.9", q50 * rng.uniform(2, 3)), ("0.99", q50 * rng.uniform(4, 8))):
                    w.sample("rpc_duration_seconds", [("quantile", q), ("service", service)], v, ms)
                n = rng.randrange(10, 200)
                count += n
                total += n * q50 * 1.3
                w.sample("rpc_duration_seconds_sum", [("service", service)], total, ms)
                w.sample("rpc_duration_seconds_count", [("service", service)], float(count), ms)

        out.write("# EOF\n")
    print(len(w.series))


if __name__ == "__main__":
    main()
