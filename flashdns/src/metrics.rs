//! `photon_flashdns_*` metrics: queries counted as they are answered, zone state read at each
//! scrape.

use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::ResponseCode;
use hickory_proto::rr::RecordType;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::catalog::Catalog;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Udp,
    Tcp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct QueryLabels {
    qtype: &'static str,
    rcode: &'static str,
    transport: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct TransportLabel {
    transport: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// What the DNS servers record as they answer.
#[derive(Debug, Clone)]
pub struct DnsMetrics {
    queries: Family<QueryLabels, Counter>,
    latency: Family<TransportLabel, Histogram, fn() -> Histogram>,
    /// Packets that were not queries (too short, or responses): dropped unanswered.
    dropped: Family<TransportLabel, Counter>,
    truncated: Counter,
    reloads: Family<ResultLabel, Counter>,
}

impl Default for DnsMetrics {
    fn default() -> Self {
        Self {
            queries: Family::default(),
            // 1 µs to about 0.5 s.
            latency: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.000_001, 2.0, 20))
            }),
            dropped: Family::default(),
            truncated: Counter::default(),
            reloads: Family::default(),
        }
    }
}

impl DnsMetrics {
    pub fn answered(
        &self,
        transport: Transport,
        qtype: Option<RecordType>,
        rcode: ResponseCode,
        truncated: bool,
        took: Duration,
    ) {
        self.queries
            .get_or_create(&QueryLabels {
                qtype: qtype.map_or("none", qtype_label),
                rcode: crate::wire::rcode_name(rcode),
                transport: transport.as_str(),
            })
            .inc();
        self.latency
            .get_or_create(&TransportLabel {
                transport: transport.as_str(),
            })
            .observe(took.as_secs_f64());
        if truncated {
            self.truncated.inc();
        }
    }

    pub fn dropped(&self, transport: Transport) {
        self.dropped
            .get_or_create(&TransportLabel {
                transport: transport.as_str(),
            })
            .inc();
    }

    pub fn reloaded(&self, ok: bool) {
        let result = if ok { "ok" } else { "failed" };
        self.reloads.get_or_create(&ResultLabel { result }).inc();
    }

    pub fn register(&self, registry: &mut Registry, catalog: Arc<Catalog>) {
        registry.register(
            "queries",
            "DNS queries answered, by query type, response code and transport",
            self.queries.clone(),
        );
        registry.register(
            "query_duration_seconds",
            "Time from receiving a query to its answer being ready, by transport",
            self.latency.clone(),
        );
        registry.register(
            "packets_dropped",
            "Packets dropped unanswered (not a query), by transport",
            self.dropped.clone(),
        );
        registry.register(
            "responses_truncated",
            "UDP answers sent with TC set because they did not fit",
            self.truncated.clone(),
        );
        registry.register(
            "zone_reloads",
            "Zone reloads (timer, SIGHUP or start-up), by result",
            self.reloads.clone(),
        );
        registry.register_collector(Box::new(ZoneCollector { catalog }));
    }
}

/// Query types named in labels; any other type counts as `other`, so that random types cannot
/// grow the label set without bound.
fn qtype_label(qtype: RecordType) -> &'static str {
    match qtype {
        RecordType::A => "A",
        RecordType::AAAA => "AAAA",
        RecordType::ANY => "ANY",
        RecordType::AXFR => "AXFR",
        RecordType::CAA => "CAA",
        RecordType::CNAME => "CNAME",
        RecordType::DS => "DS",
        RecordType::HTTPS => "HTTPS",
        RecordType::IXFR => "IXFR",
        RecordType::MX => "MX",
        RecordType::NS => "NS",
        RecordType::PTR => "PTR",
        RecordType::SOA => "SOA",
        RecordType::SRV => "SRV",
        RecordType::SSHFP => "SSHFP",
        RecordType::SVCB => "SVCB",
        RecordType::TLSA => "TLSA",
        RecordType::TXT => "TXT",
        _ => "other",
    }
}

/// Zones and records served, read from the catalog at scrape time.
#[derive(Debug)]
struct ZoneCollector {
    catalog: Arc<Catalog>,
}

impl Collector for ZoneCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let zones = self.catalog.zones();
        let all = zones.all();
        let serving = all.iter().filter(|served| served.zone.is_some()).count();
        let failing = all.iter().filter(|served| served.error.is_some()).count();
        let records: usize = all
            .iter()
            .filter_map(|served| served.zone.as_ref())
            .map(|zone| zone.record_count())
            .sum();
        for (name, help, value) in [
            ("zones", "Zones configured", all.len()),
            ("zones_serving", "Zones with data being served", serving),
            (
                "zones_failing",
                "Zones whose newest file could not be loaded",
                failing,
            ),
            ("records", "Records in all served zones", records),
        ] {
            let gauge = ConstGauge::new(value as i64);
            let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
            gauge.encode(metric)?;
        }
        Ok(())
    }
}
