//! A Prometheus remote-write 1.0 load generator for any receiver (nightlight, Prometheus with
//! `--web.enable-remote-write-receiver`): synthesises `--series` series shaped like typical
//! exporters' (100 metric names: counters, gauges and histograms with `job`, `instance` and one
//! or two of `code`/`method`/`le`/`cpu`/`mode`/`device`), one sample every `--interval-sec`
//! from `--end-ms` − `--hours` to `--end-ms`, and sends them as snappy-compressed protobuf
//! `WriteRequest`s with `--concurrency` requests in flight. Prints one `key=value` line.
//!
//! Values are what those exporters send: every value a whole number of the unit its source
//! counts in (CPU seconds in clock ticks or nanoseconds, memory in kB, sizes in pages or
//! sectors, everything else in ones), so what a sample carries is the change an exporter really
//! reports. Counters climb by up to 1–20 × their scale per sample; gauges either never move
//! (`up`, sizes, link speeds and MTUs) or wander around their level, memory at every scrape,
//! open fds now and then (see `GAUGES`).
//!
//! Everything is deterministic (`--seed`): the same arguments send the same bytes to every
//! server. The request bodies are all built and encoded before the clock starts, so that the
//! generator's own work takes as little of the shared CPUs as possible while a server ingests.
//!
//! Order: requests go out time slot group by time slot group (`--order time`, the default):
//! each request carries `--batch` series × `--samples-per-series` consecutive samples, and all
//! series' requests for one group of slots are issued before the next group's. Requests of one
//! series chunk are never in flight together, so every series' samples arrive in time order
//! (both servers refuse out-of-order samples), and the requests in flight span only a few
//! minutes of data, far inside Prometheus's head window (it refuses samples older than its
//! newest minus one hour). `--order series` sends each chunk's whole time range before the
//! next chunk's, to show that refusal. A 5xx answer or a connection error is retried (with
//! backoff); a 4xx one counts as an error (its first few bodies go to stderr) and is not.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::bail;
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use nightlight::remote_write::{Label, Sample, TimeSeries, WriteRequest, encode};
use photon_bench::Latencies;
use tokio::sync::watch;

#[derive(Debug, Parser)]
#[command(name = "remote-write-load")]
struct Args {
    /// The receiver, e.g. http://127.0.0.1:9090/api/v1/write
    #[arg(long)]
    url: String,
    /// Distinct series
    #[arg(long, default_value_t = 100_000)]
    series: usize,
    /// The time range the samples cover, ending at --end-ms
    #[arg(long, default_value_t = 2.0)]
    hours: f64,
    #[arg(long, default_value_t = 15)]
    interval_sec: u64,
    /// Requests in flight at once
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
    /// Series per request
    #[arg(long, default_value_t = 2000)]
    batch: usize,
    /// Consecutive samples of each series per request
    #[arg(long, default_value_t = 4)]
    samples_per_series: usize,
    /// The newest sample's timestamp (milliseconds since the epoch; default: now, rounded down
    /// to the interval). Pass the same value to every server for the same data.
    #[arg(long)]
    end_ms: Option<i64>,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    #[arg(long, value_enum, default_value_t = Order::Time)]
    order: Order,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Order {
    /// All series' samples of the oldest slots first, then the next slots
    Time,
    /// Each series chunk's whole range before the next chunk (Prometheus refuses most of it)
    Series,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if args.series == 0 || args.concurrency == 0 || args.batch == 0 || args.interval_sec == 0 {
        bail!("--series, --concurrency, --batch and --interval-sec must be at least 1");
    }
    if args.samples_per_series == 0 {
        bail!("--samples-per-series must be at least 1");
    }
    let interval_ms = args.interval_sec as i64 * 1000;
    let slots = ((args.hours * 3600.0) / args.interval_sec as f64).round() as usize;
    if slots == 0 {
        bail!("--hours covers no interval");
    }
    let end_ms = match args.end_ms {
        Some(end) => end,
        None => {
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
            now - now % interval_ms
        }
    };
    let start_ms = end_ms - (slots as i64 - 1) * interval_ms;

    // Build every body first: chunk by chunk (in parallel), each through all its rounds.
    let built = Instant::now();
    let chunks = args.series.div_ceil(args.batch);
    let rounds = slots.div_ceil(args.samples_per_series);
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let next_chunk = AtomicUsize::new(0);
    let mut bodies: Vec<Vec<Bytes>> = vec![Vec::new(); chunks];
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let chunk = next_chunk.fetch_add(1, Ordering::Relaxed);
                        if chunk >= chunks {
                            return done;
                        }
                        let first = chunk * args.batch;
                        let last = (first + args.batch).min(args.series);
                        let mut series: Vec<Series> =
                            (first..last).map(|i| Series::new(i, args.seed)).collect();
                        let mut chunk_bodies = Vec::with_capacity(rounds);
                        for round in 0..rounds {
                            let slot_range = round * args.samples_per_series
                                ..((round + 1) * args.samples_per_series).min(slots);
                            let timeseries = series
                                .iter_mut()
                                .map(|s| TimeSeries {
                                    labels: s.labels.clone(),
                                    samples: slot_range
                                        .clone()
                                        .map(|slot| Sample {
                                            value: s.step(),
                                            timestamp: start_ms + slot as i64 * interval_ms,
                                        })
                                        .collect(),
                                    exemplars: Vec::new(),
                                })
                                .collect();
                            chunk_bodies.push(Bytes::from(encode(&WriteRequest {
                                timeseries,
                                metadata: Vec::new(),
                            })));
                        }
                        done.push((chunk, chunk_bodies));
                    }
                })
            })
            .collect();
        for worker in workers {
            for (chunk, chunk_bodies) in worker.join().expect("a body builder panicked") {
                bodies[chunk] = chunk_bodies;
            }
        }
    });
    let wire_bytes: usize = bodies.iter().flatten().map(Bytes::len).sum();
    let samples_total = args.series as u64 * slots as u64;
    say(format_args!(
        "{} requests ({chunks} chunks × {rounds} rounds), {samples_total} samples, \
         {:.1} MiB of bodies built in {:.1} s; sending to {}",
        chunks * rounds,
        wire_bytes as f64 / (1 << 20) as f64,
        built.elapsed().as_secs_f64(),
        args.url,
    ));

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(300))
        .build()?;
    let shared = Arc::new(Shared {
        client,
        url: args.url.clone(),
        bodies,
        // Chunk j's next round to send: a request waits until its predecessor has been answered.
        turns: (0..chunks).map(|_| watch::channel(0usize).0).collect(),
        next: AtomicUsize::new(0),
        chunks,
        rounds,
        order: args.order,
        errors: AtomicU64::new(0),
        error_samples: AtomicU64::new(0),
        retries: AtomicU64::new(0),
        series: args.series,
        batch: args.batch,
        slots,
        samples_per_series: args.samples_per_series,
    });
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..args.concurrency {
        let shared = shared.clone();
        workers.spawn(async move { shared.work().await });
    }
    let mut latencies = Vec::with_capacity(chunks * rounds);
    // The first failure ends the run: the others may be waiting for the failed request's turn.
    while let Some(done) = workers.join_next().await {
        latencies.extend(done??);
    }
    let elapsed = started.elapsed();
    let latencies = Latencies::new(latencies);
    let errors = shared.errors.load(Ordering::Relaxed);
    let error_samples = shared.error_samples.load(Ordering::Relaxed);
    println!(
        "series={} slots={slots} samples={samples_total} requests={} errors={errors} error_samples={error_samples} \
         retries={} wire_bytes={wire_bytes} samples_per_sec={:.0} {}",
        args.series,
        latencies.len(),
        shared.retries.load(Ordering::Relaxed),
        samples_total as f64 / elapsed.as_secs_f64(),
        latencies.summary(elapsed),
    );
    Ok(())
}

struct Shared {
    client: reqwest::Client,
    url: String,
    /// `[chunk][round]`.
    bodies: Vec<Vec<Bytes>>,
    turns: Vec<watch::Sender<usize>>,
    next: AtomicUsize,
    chunks: usize,
    rounds: usize,
    order: Order,
    errors: AtomicU64,
    error_samples: AtomicU64,
    retries: AtomicU64,
    series: usize,
    batch: usize,
    slots: usize,
    samples_per_series: usize,
}

impl Shared {
    async fn work(&self) -> anyhow::Result<Vec<Duration>> {
        let mut latencies = Vec::new();
        loop {
            let index = self.next.fetch_add(1, Ordering::Relaxed);
            if index >= self.chunks * self.rounds {
                return Ok(latencies);
            }
            let (chunk, round) = match self.order {
                Order::Time => (index % self.chunks, index / self.chunks),
                Order::Series => (index / self.rounds, index % self.rounds),
            };
            // The predecessor was handed out earlier, so this wait always ends.
            let mut turn = self.turns[chunk].subscribe();
            turn.wait_for(|next| *next == round).await?;
            let sent = Instant::now();
            self.send(chunk, round).await?;
            latencies.push(sent.elapsed());
            self.turns[chunk].send_replace(round + 1);
        }
    }

    async fn send(&self, chunk: usize, round: usize) -> anyhow::Result<()> {
        let body = self.bodies[chunk][round].clone();
        let mut backoff = Duration::from_millis(50);
        let mut attempt = 0u32;
        loop {
            let answer = self
                .client
                .post(&self.url)
                .header("Content-Encoding", "snappy")
                .header("Content-Type", "application/x-protobuf")
                .header("User-Agent", "photon-bench-remote-write-load")
                .header("X-Prometheus-Remote-Write-Version", "0.1.0")
                .body(body.clone())
                .send()
                .await;
            let retry_reason = match answer {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) if response.status().is_client_error() => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    let errors = self.errors.fetch_add(1, Ordering::Relaxed);
                    let series = (self.series - chunk * self.batch).min(self.batch);
                    let samples =
                        (self.slots - round * self.samples_per_series).min(self.samples_per_series);
                    self.error_samples
                        .fetch_add((series * samples) as u64, Ordering::Relaxed);
                    if errors < 5 {
                        say(format_args!(
                            "chunk {chunk} round {round}: {status}: {}",
                            text.trim()
                        ));
                    }
                    return Ok(());
                }
                Ok(response) => {
                    let status = response.status();
                    let text = response.text().await.unwrap_or_default();
                    format!("{status}: {}", text.trim())
                }
                Err(err) => format!("{err}"),
            };
            if attempt >= 30 {
                bail!(
                    "chunk {chunk} round {round}: giving up after {attempt} retries: {retry_reason}"
                );
            }
            let retries = self.retries.fetch_add(1, Ordering::Relaxed);
            if retries < 5 {
                say(format_args!(
                    "chunk {chunk} round {round}: retrying: {retry_reason}"
                ));
            }
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(5));
            attempt += 1;
        }
    }
}

/// A line on stderr; a closed stderr is no reason to stop the run.
fn say(message: std::fmt::Arguments) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "remote-write-load: {message}");
}

/// SplitMix64: small, fast and the same on every platform and version.
#[derive(Clone)]
struct Rng(u64);

impl Rng {
    fn seeded(parts: &[u64]) -> Rng {
        let mut rng = Rng(0x005E_ED0F_5EED);
        for part in parts {
            rng.0 ^= part.wrapping_mul(0x9E37_79B9_7F4A_7C15);
            rng.next();
        }
        rng
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// A counter reset, as a restarted process would show: about one per series every 10,000
/// samples (42 hours at 15 s).
const RESET_ONE_IN: u64 = 10_000;

/// One counter that several series follow: a histogram's buckets, `_count` and `_sum` of one
/// label combination advance together (same seed), so the buckets stay cumulative.
#[derive(Clone)]
struct Group {
    rng: Rng,
    count: u64,
    max_increment: u64,
}

impl Group {
    fn new(family: usize, group: usize, seed: u64) -> Group {
        let mut rng = Rng::seeded(&[seed, 1, family as u64, group as u64]);
        let count = rng.below(1_000_000);
        let max_increment = 1 + rng.below(40);
        Group {
            rng,
            count,
            max_increment,
        }
    }

    /// The increment of this step (0 after a reset).
    fn step(&mut self) -> u64 {
        if self.rng.below(RESET_ONE_IN) == 0 {
            self.count = 0;
            return 0;
        }
        let increment = self.rng.below(self.max_increment + 1);
        self.count += increment;
        increment
    }
}

enum Kind {
    /// `count` and the increments are in `unit`s.
    Counter {
        count: u64,
        max_increment: u64,
        unit: Unit,
    },
    /// `units` of `unit`, wandering around `level`: with probability `moves`, by up to
    /// `step_units` either way (see [`Walk`]).
    Gauge {
        units: u64,
        level: f64,
        moves: f64,
        step_units: f64,
        unit: Unit,
    },
    Bucket {
        group: Group,
        fraction: f64,
    },
    HistogramCount {
        group: Group,
    },
    HistogramSum {
        group: Group,
        mean: f64,
        sum: f64,
    },
}

struct Series {
    /// Sorted by name, as remote write requires.
    labels: Vec<Label>,
    kind: Kind,
    rng: Rng,
}

impl Series {
    /// Series `index`: metric `index % 100`, and that metric's `index / 100`-th label
    /// combination, so every request carries a mix of all metric names.
    fn new(index: usize, seed: u64) -> Series {
        let metrics = metrics();
        let metric = &metrics[index % metrics.len()];
        let k = index / metrics.len();
        let mut rng = Rng::seeded(&[seed, 0, index as u64]);
        let combos = metric.scheme.combos();
        let (extra, target) = (k % combos, k / combos);
        let (job, port) = JOBS[target % JOBS.len()];
        let instance = format!(
            "10.{}.{}.{}:{port}",
            (target >> 16) & 255,
            (target >> 8) & 255,
            target & 255
        );
        let mut labels = vec![
            label("__name__", &metric.name),
            label("job", job),
            label("instance", &instance),
        ];
        labels.extend(metric.scheme.labels(extra));
        labels.sort_by(|a, b| a.name.cmp(&b.name));
        let kind = match metric.kind {
            MetricKind::Counter(scale, unit) => Kind::Counter {
                count: rng.below(unit.of(1e6 * scale)),
                max_increment: unit.of((1 + rng.below(20)) as f64 * scale),
                unit,
            },
            MetricKind::Gauge(scale, unit, walk) => {
                let units = unit.of((0.5 + rng.unit()) * scale);
                Kind::Gauge {
                    units,
                    level: units as f64,
                    moves: walk.moves,
                    step_units: unit.units_in(walk.step * scale),
                    unit,
                }
            }
            MetricKind::Bucket { family, median } => {
                // Scheme::LeMethod: `le` varies fastest, then method, then the target.
                let (le, group) = (extra % BUCKETS.len(), k / BUCKETS.len());
                let bound = BUCKETS[le].parse::<f64>().unwrap_or(f64::INFINITY);
                Kind::Bucket {
                    group: Group::new(family, group, seed),
                    fraction: if bound.is_infinite() {
                        1.0
                    } else {
                        bound / (bound + median)
                    },
                }
            }
            MetricKind::Count { family } => Kind::HistogramCount {
                group: Group::new(family, k, seed),
            },
            MetricKind::Sum { family, median } => Kind::HistogramSum {
                group: Group::new(family, k, seed),
                mean: median,
                sum: rng.below(100_000) as f64 * median,
            },
        };
        Series { labels, kind, rng }
    }

    /// The next sample's value.
    fn step(&mut self) -> f64 {
        match &mut self.kind {
            Kind::Counter {
                count,
                max_increment,
                unit,
            } => {
                if self.rng.below(RESET_ONE_IN) == 0 {
                    *count = 0;
                } else {
                    *count += self.rng.below(*max_increment + 1);
                }
                unit.value(*count)
            }
            Kind::Gauge {
                units,
                level,
                moves,
                step_units,
                unit,
            } => {
                if self.rng.unit() < *moves {
                    let now = *units as f64;
                    let pull = (*level - now) * REVERSION;
                    let moved = now + pull + (2.0 * self.rng.unit() - 1.0) * *step_units;
                    *units = moved.round().max(0.0) as u64;
                }
                unit.value(*units)
            }
            Kind::Bucket { group, fraction } => {
                group.step();
                (group.count as f64 * *fraction).floor()
            }
            Kind::HistogramCount { group } => {
                group.step();
                group.count as f64
            }
            Kind::HistogramSum { group, mean, sum } => {
                let increment = group.step();
                if group.count == 0 {
                    *sum = 0.0;
                }
                *sum += increment as f64 * *mean * (0.5 + self.rng.unit());
                (*sum * 1e6).round() / 1e6
            }
        }
    }
}

fn label(name: &str, value: &str) -> Label {
    Label {
        name: name.to_owned(),
        value: value.to_owned(),
    }
}

const JOBS: [(&str, u16); 6] = [
    ("node", 9100),
    ("api", 8080),
    ("postgres", 9187),
    ("redis", 9121),
    ("nginx", 9113),
    ("grpc", 9092),
];
const CODES: [&str; 6] = ["200", "201", "204", "400", "404", "500"];
const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
const CPUS: usize = 8;
const MODES: [&str; 8] = [
    "user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal",
];
const DEVICES: [&str; 4] = ["eth0", "eth1", "nvme0n1", "sda"];
/// Prometheus client libraries' default buckets.
const BUCKETS: [&str; 12] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf",
];

#[derive(Clone, Copy)]
enum Scheme {
    None,
    Code,
    Method,
    CodeMethod,
    Cpu,
    CpuMode,
    Mode,
    Device,
    LeMethod,
}

impl Scheme {
    fn combos(self) -> usize {
        match self {
            Scheme::None => 1,
            Scheme::Code => CODES.len(),
            Scheme::Method => METHODS.len(),
            Scheme::CodeMethod => CODES.len() * METHODS.len(),
            Scheme::Cpu => CPUS,
            Scheme::CpuMode => CPUS * MODES.len(),
            Scheme::Mode => MODES.len(),
            Scheme::Device => DEVICES.len(),
            Scheme::LeMethod => BUCKETS.len() * METHODS.len(),
        }
    }

    fn labels(self, i: usize) -> Vec<Label> {
        match self {
            Scheme::None => vec![],
            Scheme::Code => vec![label("code", CODES[i])],
            Scheme::Method => vec![label("method", METHODS[i])],
            Scheme::CodeMethod => vec![
                label("code", CODES[i % CODES.len()]),
                label("method", METHODS[i / CODES.len()]),
            ],
            Scheme::Cpu => vec![label("cpu", &i.to_string())],
            Scheme::CpuMode => vec![
                label("mode", MODES[i % MODES.len()]),
                label("cpu", &(i / MODES.len()).to_string()),
            ],
            Scheme::Mode => vec![label("mode", MODES[i])],
            Scheme::Device => vec![label("device", DEVICES[i])],
            Scheme::LeMethod => vec![
                label("le", BUCKETS[i % BUCKETS.len()]),
                label("method", METHODS[i / BUCKETS.len()]),
            ],
        }
    }
}

/// What an exporter counts in: a value is a whole number of units, `times / per` each, computed
/// as exporters do (`units × times`, then one division), so that centiseconds are `ticks / 100`
/// and nanoseconds `ns / 1e9` exactly as node_exporter and Go's `Duration.Seconds()` give them.
#[derive(Clone, Copy)]
struct Unit {
    times: u64,
    per: u64,
}

/// Ones: requests, packets, bytes, fds.
const ONE: Unit = Unit { times: 1, per: 1 };
/// /proc/stat's clock ticks (USER_HZ = 100): CPU seconds.
const CENTI: Unit = Unit { times: 1, per: 100 };
/// Milliseconds, as /proc/diskstats counts I/O time.
const MILLI: Unit = Unit {
    times: 1,
    per: 1000,
};
/// Nanoseconds: schedstat, cgroup CPU usage, Go durations.
const NANO: Unit = Unit {
    times: 1,
    per: 1_000_000_000,
};
/// Whole multiples: kB as /proc/meminfo reports memory, pages, disk sectors.
const fn times(n: u64) -> Unit {
    Unit { times: n, per: 1 }
}

impl Unit {
    fn units_in(self, amount: f64) -> f64 {
        amount * self.per as f64 / self.times as f64
    }

    /// The whole units nearest to `amount`.
    fn of(self, amount: f64) -> u64 {
        self.units_in(amount).round() as u64
    }

    fn value(self, units: u64) -> f64 {
        (units * self.times) as f64 / self.per as f64
    }
}

/// How a gauge moves from sample to sample: with probability `moves`, by up to `step` of its
/// magnitude either way (then to whole units, never below 0). Sizes, link speeds and `up` do
/// not move at all; memory moves every scrape; open fds now and then.
#[derive(Clone, Copy)]
struct Walk {
    moves: f64,
    step: f64,
}

/// The share of its distance to its starting level a gauge moves back each step, so that a walk
/// stays around its level (load around 4, in-flight requests around 20) instead of drifting off
/// or sinking to 0 over the hours.
const REVERSION: f64 = 0.05;

const FIXED: Walk = Walk {
    moves: 0.0,
    step: 0.0,
};

const fn walk(moves: f64, step: f64) -> Walk {
    Walk { moves, step }
}

#[derive(Clone, Copy)]
enum MetricKind {
    /// Increments of up to 1–20 × this per sample (the factor fixed per series), in whole units.
    Counter(f64, Unit),
    /// Starting within ±50% of this magnitude, in whole units, moving as the walk says.
    Gauge(f64, Unit, Walk),
    Bucket {
        family: usize,
        median: f64,
    },
    Count {
        family: usize,
    },
    Sum {
        family: usize,
        median: f64,
    },
}

struct Metric {
    name: String,
    kind: MetricKind,
    scheme: Scheme,
}

/// The counters, with the unit each counts in: CPU time in clock ticks or nanoseconds, I/O time
/// in milliseconds, disk bytes in sectors, everything else in ones.
#[rustfmt::skip]
const COUNTERS: [(&str, f64, Unit, Scheme); 45] = [
    ("http_requests_total",                  1.0,       ONE,        Scheme::CodeMethod),
    ("http_request_size_bytes_total",        1000.0,    ONE,        Scheme::Method),
    ("http_response_size_bytes_total",       5000.0,    ONE,        Scheme::Method),
    ("http_client_requests_total",           1.0,       ONE,        Scheme::CodeMethod),
    ("apiserver_request_total",              1.0,       ONE,        Scheme::CodeMethod),
    ("nginx_http_requests_total",            1.0,       ONE,        Scheme::Code),
    ("haproxy_backend_http_responses_total", 1.0,       ONE,        Scheme::Code),
    ("grpc_server_handled_total",            1.0,       ONE,        Scheme::CodeMethod),
    ("grpc_server_started_total",            1.0,       ONE,        Scheme::Method),
    ("grpc_server_msg_received_total",       1.0,       ONE,        Scheme::Method),
    ("grpc_server_msg_sent_total",           1.0,       ONE,        Scheme::Method),
    ("grpc_client_handled_total",            1.0,       ONE,        Scheme::CodeMethod),
    ("node_cpu_seconds_total",               1.0,       CENTI,      Scheme::CpuMode),
    ("node_cpu_guest_seconds_total",         1.0,       CENTI,      Scheme::CpuMode),
    ("node_schedstat_running_seconds_total", 1.0,       NANO,       Scheme::Cpu),
    ("node_schedstat_waiting_seconds_total", 1.0,       NANO,       Scheme::Cpu),
    ("node_schedstat_timeslices_total",      100.0,     ONE,        Scheme::Cpu),
    ("node_softnet_processed_total",         100.0,     ONE,        Scheme::Cpu),
    ("node_softnet_dropped_total",           1.0,       ONE,        Scheme::Cpu),
    ("node_context_switches_total",          1000.0,    ONE,        Scheme::Cpu),
    ("node_intr_total",                      1000.0,    ONE,        Scheme::Cpu),
    ("node_network_receive_bytes_total",     10_000.0,  ONE,        Scheme::Device),
    ("node_network_transmit_bytes_total",    10_000.0,  ONE,        Scheme::Device),
    ("node_network_receive_packets_total",   10.0,      ONE,        Scheme::Device),
    ("node_network_transmit_packets_total",  10.0,      ONE,        Scheme::Device),
    ("node_network_receive_errs_total",      1.0,       ONE,        Scheme::Device),
    ("node_network_transmit_drop_total",     1.0,       ONE,        Scheme::Device),
    ("node_disk_read_bytes_total",           4096.0,    times(512), Scheme::Device),
    ("node_disk_written_bytes_total",        4096.0,    times(512), Scheme::Device),
    ("node_disk_reads_completed_total",      1.0,       ONE,        Scheme::Device),
    ("node_disk_writes_completed_total",     1.0,       ONE,        Scheme::Device),
    ("node_disk_io_time_seconds_total",      1.0,       MILLI,      Scheme::Device),
    ("process_cpu_seconds_total",            1.0,       CENTI,      Scheme::Mode),
    ("pg_stat_database_xact_commit_total",   10.0,      ONE,        Scheme::Mode),
    ("pg_stat_database_blks_hit_total",      100.0,     ONE,        Scheme::Mode),
    ("redis_commands_processed_total",       10.0,      ONE,        Scheme::Method),
    ("redis_keyspace_hits_total",            10.0,      ONE,        Scheme::Method),
    ("redis_keyspace_misses_total",          1.0,       ONE,        Scheme::Method),
    ("redis_net_input_bytes_total",          1000.0,    ONE,        Scheme::Method),
    ("nginx_connections_accepted_total",     1.0,       ONE,        Scheme::Code),
    ("prometheus_http_requests_total",       1.0,       ONE,        Scheme::CodeMethod),
    ("go_gc_cycles_total",                   1.0,       ONE,        Scheme::Mode),
    ("go_memstats_alloc_bytes_total",        100_000.0, ONE,        Scheme::Mode),
    ("process_io_read_bytes_total",          4096.0,    ONE,        Scheme::Mode),
    ("container_cpu_usage_seconds_total",    1.0,       NANO,       Scheme::Cpu),
];

/// The gauges, each with the unit its exporter reports in and how it moves.
#[rustfmt::skip]
const GAUGES: [(&str, f64, Unit, Walk, Scheme); 40] = [
    ("node_memory_MemAvailable_bytes",      8e9,    times(1024),          walk(1.0, 0.005), Scheme::None),
    ("node_memory_Active_bytes",            4e9,    times(1024),          walk(1.0, 0.005), Scheme::None),
    ("node_memory_Cached_bytes",            2e9,    times(1024),          walk(1.0, 0.002), Scheme::None),
    ("node_memory_Buffers_bytes",           5e8,    times(1024),          walk(0.5, 0.001), Scheme::None),
    ("node_load1",                          4.0,    CENTI,                walk(1.0, 0.1),   Scheme::None),
    ("node_load5",                          4.0,    CENTI,                walk(1.0, 0.03),  Scheme::None),
    ("node_load15",                         4.0,    CENTI,                walk(1.0, 0.01),  Scheme::None),
    ("node_filefd_allocated",               5000.0, ONE,                  walk(1.0, 0.01),  Scheme::None),
    ("node_cpu_scaling_frequency_hertz",    3e9,    times(1000),          walk(1.0, 0.1),   Scheme::Cpu),
    ("node_cpu_frequency_max_hertz",        3.5e9,  times(100_000_000),   FIXED,            Scheme::Cpu),
    ("node_hwmon_temp_celsius",             60.0,   ONE,                  walk(0.5, 0.05),  Scheme::Cpu),
    ("node_pressure_cpu_waiting_ratio",     1.0,    CENTI,                walk(1.0, 0.3),   Scheme::Cpu),
    ("node_filesystem_avail_bytes",         1e11,   times(4096),          walk(0.5, 1e-5),  Scheme::Device),
    ("node_filesystem_size_bytes",          2e11,   times(4096),          FIXED,            Scheme::Device),
    ("node_filesystem_files_free",          1e7,    ONE,                  walk(0.5, 1e-5),  Scheme::Device),
    ("node_network_up",                     1.0,    ONE,                  FIXED,            Scheme::Device),
    ("node_network_mtu_bytes",              1500.0, times(1500),          FIXED,            Scheme::Device),
    ("node_disk_io_now",                    10.0,   ONE,                  walk(1.0, 0.5),   Scheme::Device),
    ("node_network_speed_bytes",            1.25e9, times(1_250_000_000), FIXED,            Scheme::Device),
    ("node_procs_running",                  20.0,   ONE,                  walk(1.0, 0.3),   Scheme::Mode),
    ("process_resident_memory_bytes",       3e8,    times(4096),          walk(1.0, 0.005), Scheme::Mode),
    ("process_open_fds",                    200.0,  ONE,                  walk(0.3, 0.02),  Scheme::Mode),
    ("go_goroutines",                       300.0,  ONE,                  walk(0.5, 0.02),  Scheme::Mode),
    ("go_memstats_heap_inuse_bytes",        2e8,    times(8192),          walk(1.0, 0.05),  Scheme::Mode),
    ("pg_stat_activity_count",              50.0,   ONE,                  walk(0.5, 0.1),   Scheme::Mode),
    ("pg_database_size_bytes",              5e10,   times(8192),          walk(0.3, 1e-5),  Scheme::Mode),
    ("redis_connected_clients",             100.0,  ONE,                  walk(0.5, 0.05),  Scheme::Method),
    ("redis_memory_used_bytes",             1e9,    ONE,                  walk(1.0, 0.002), Scheme::Method),
    ("redis_db_keys",                       1e6,    ONE,                  walk(1.0, 0.001), Scheme::Method),
    ("nginx_connections_active",            500.0,  ONE,                  walk(1.0, 0.05),  Scheme::Code),
    ("nginx_connections_waiting",           300.0,  ONE,                  walk(1.0, 0.05),  Scheme::Code),
    ("http_requests_in_flight",             20.0,   ONE,                  walk(1.0, 0.3),   Scheme::Method),
    ("grpc_server_streams_in_flight",       10.0,   ONE,                  walk(1.0, 0.3),   Scheme::Method),
    ("apiserver_current_inflight_requests", 30.0,   ONE,                  walk(1.0, 0.3),   Scheme::Method),
    ("container_memory_working_set_bytes",  5e8,    times(4096),          walk(1.0, 0.005), Scheme::Cpu),
    ("container_spec_cpu_shares",           1024.0, times(1024),          FIXED,            Scheme::Cpu),
    ("kube_pod_container_status_restarts",  3.0,    ONE,                  FIXED,            Scheme::Code),
    ("up",                                  1.0,    ONE,                  FIXED,            Scheme::Code),
    ("scrape_duration_seconds",             0.05,   NANO,                 walk(1.0, 0.5),   Scheme::Code),
    ("scrape_samples_scraped",              1500.0, ONE,                  FIXED,            Scheme::Code),
];

/// Histogram families (`_bucket`, `_count`, `_sum` each) and the median observation.
const HISTOGRAMS: [(&str, f64); 5] = [
    ("http_request_duration_seconds", 0.08),
    ("grpc_server_handling_seconds", 0.02),
    ("apiserver_request_duration_seconds", 0.15),
    ("pg_query_duration_seconds", 0.01),
    ("nginx_upstream_response_seconds", 0.3),
];

/// The 100 metric names: 45 counters, 40 gauges, 5 histograms of 3 names each.
fn metrics() -> &'static [Metric] {
    static METRICS: std::sync::OnceLock<Vec<Metric>> = std::sync::OnceLock::new();
    METRICS.get_or_init(|| {
        let mut all: Vec<Metric> = Vec::with_capacity(100);
        for (name, scale, unit, scheme) in COUNTERS {
            all.push(Metric {
                name: name.to_owned(),
                kind: MetricKind::Counter(scale, unit),
                scheme,
            });
        }
        for (name, scale, unit, walk, scheme) in GAUGES {
            all.push(Metric {
                name: name.to_owned(),
                kind: MetricKind::Gauge(scale, unit, walk),
                scheme,
            });
        }
        for (family, (name, median)) in HISTOGRAMS.into_iter().enumerate() {
            all.push(Metric {
                name: format!("{name}_bucket"),
                kind: MetricKind::Bucket { family, median },
                scheme: Scheme::LeMethod,
            });
            all.push(Metric {
                name: format!("{name}_count"),
                kind: MetricKind::Count { family },
                scheme: Scheme::Method,
            });
            all.push(Metric {
                name: format!("{name}_sum"),
                kind: MetricKind::Sum { family, median },
                scheme: Scheme::Method,
            });
        }
        all
    })
}
