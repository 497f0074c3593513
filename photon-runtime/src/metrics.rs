//! Metrics every server exports besides its own: the standard `process_*` set and
//! `photon_build_info`.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::registry::Registry;

/// Registers `photon_build_info` and the process collector on the root registry.
pub(crate) fn register_common(registry: &mut Registry, component: &str, version: &str, mode: &str) {
    let build_info = Family::<Vec<(String, String)>, Gauge>::default();
    build_info
        .get_or_create(&vec![
            ("component".to_owned(), component.to_owned()),
            ("version".to_owned(), version.to_owned()),
            ("mode".to_owned(), mode.to_owned()),
        ])
        .set(1);
    registry.register(
        "photon_build_info",
        "Always 1; labels tell the component, its version and operation mode",
        build_info,
    );
    registry.register_collector(Box::new(ProcessCollector));
}

/// Reads `/proc/self` at each scrape, with Prometheus' standard process metric names.
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Ok(process) = procfs::process::Process::myself() else {
            return Ok(());
        };
        if let Ok(stat) = process.stat() {
            let ticks = procfs::ticks_per_second() as f64;
            let cpu = ConstCounter::new((stat.utime + stat.stime) as f64 / ticks);
            cpu.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds",
                None,
                cpu.metric_type(),
            )?)?;
            let gauges = [
                (
                    "process_resident_memory_bytes",
                    "Resident memory size in bytes",
                    stat.rss as f64 * procfs::page_size() as f64,
                ),
                (
                    "process_virtual_memory_bytes",
                    "Virtual memory size in bytes",
                    stat.vsize as f64,
                ),
                (
                    "process_threads",
                    "Number of OS threads in the process",
                    stat.num_threads as f64,
                ),
            ];
            for (name, help, value) in gauges {
                encode_gauge(&mut encoder, name, help, value)?;
            }
            if let Ok(boot) = procfs::boot_time_secs() {
                let started = boot as f64 + stat.starttime as f64 / ticks;
                encode_gauge(
                    &mut encoder,
                    "process_start_time_seconds",
                    "Start time of the process since unix epoch in seconds",
                    started,
                )?;
            }
        }
        if let Ok(open) = process.fd_count() {
            encode_gauge(
                &mut encoder,
                "process_open_fds",
                "Number of open file descriptors",
                open as f64,
            )?;
        }
        if let Ok(limits) = process.limits()
            && let procfs::process::LimitValue::Value(max) = limits.max_open_files.soft_limit
        {
            encode_gauge(
                &mut encoder,
                "process_max_fds",
                "Maximum number of open file descriptors",
                max as f64,
            )?;
        }
        Ok(())
    }
}

fn encode_gauge(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    value: f64,
) -> Result<(), std::fmt::Error> {
    let gauge = ConstGauge::new(value);
    gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)
}
