//! What the load generators share: latency percentiles and the one-line `key=value` report.

use std::time::Duration;

/// Request latencies of a finished run.
pub struct Latencies(Vec<Duration>);

impl Latencies {
    pub fn new(mut latencies: Vec<Duration>) -> Self {
        latencies.sort_unstable();
        Self(latencies)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The latency at quantile `p` (0..=1) in milliseconds.
    pub fn percentile_ms(&self, p: f64) -> f64 {
        if self.0.is_empty() {
            return 0.0;
        }
        let index = ((self.0.len() as f64 * p).ceil() as usize).clamp(1, self.0.len()) - 1;
        self.0[index].as_secs_f64() * 1000.0
    }

    /// `ops_per_sec=… p50_ms=… p99_ms=…` over `elapsed`.
    pub fn summary(&self, elapsed: Duration) -> String {
        format!(
            "seconds={:.2} ops_per_sec={:.0} p50_ms={:.2} p99_ms={:.2}",
            elapsed.as_secs_f64(),
            self.0.len() as f64 / elapsed.as_secs_f64(),
            self.percentile_ms(0.50),
            self.percentile_ms(0.99),
        )
    }
}
