//! nightlight: Prometheus-compatible metrics — scraping, a compressed time-series store with a
//! write-ahead log, and the PromQL query API.

pub mod chunk;
pub mod exposition;
pub mod labels;
pub mod promql;
pub mod remote_write;
pub mod storage;
pub mod wal;
