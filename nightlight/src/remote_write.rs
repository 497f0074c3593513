//! Prometheus remote-write 1.0 receiver codec: snappy (block format) compressed protobuf
//! `WriteRequest`s.
//!
//! The messages are hand-written prost structs with the spec's field numbers. Native histograms
//! (`TimeSeries` field 4) are not declared, so prost skips them as unknown fields: they are
//! accepted and not stored.

use crate::labels::{Labels, METRIC_NAME};

/// Refuses bodies that would decompress to more than this, before allocating the buffer.
pub const MAX_DECOMPRESSED_BYTES: usize = 64 << 20;

#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    #[prost(message, repeated, tag = "3")]
    pub exemplars: Vec<Exemplar>,
}

#[derive(Clone, PartialEq, Eq, Hash, prost::Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct Exemplar {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(double, tag = "2")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricMetadata {
    /// A [`MetricType`]; read it with `r#type()`, which maps unknown numbers to `Unknown`.
    #[prost(enumeration = "MetricType", tag = "1")]
    pub r#type: i32,
    #[prost(string, tag = "4")]
    pub metric_family_name: String,
    #[prost(string, tag = "5")]
    pub help: String,
    #[prost(string, tag = "6")]
    pub unit: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum MetricType {
    Unknown = 0,
    Counter = 1,
    Gauge = 2,
    Histogram = 3,
    Gaugehistogram = 4,
    Summary = 5,
    Info = 6,
    Stateset = 7,
}

#[derive(Debug, thiserror::Error)]
pub enum RemoteWriteError {
    #[error("invalid snappy body: {0}")]
    Snappy(String),
    #[error("body decompresses to {size} bytes, more than the {MAX_DECOMPRESSED_BYTES} allowed")]
    TooLarge { size: usize },
    #[error("invalid protobuf WriteRequest: {0}")]
    Protobuf(String),
    #[error("series {index}: {reason}")]
    InvalidSeries { index: usize, reason: String },
}

/// Snappy block format (not the framed format) decompression, then protobuf decoding. The
/// length the snappy header claims is checked before the output buffer is allocated, so a tiny
/// body cannot make us reserve gigabytes.
pub fn decode(body: &[u8]) -> Result<WriteRequest, RemoteWriteError> {
    let size =
        snap::raw::decompress_len(body).map_err(|e| RemoteWriteError::Snappy(e.to_string()))?;
    if size > MAX_DECOMPRESSED_BYTES {
        return Err(RemoteWriteError::TooLarge { size });
    }
    let raw = snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| RemoteWriteError::Snappy(e.to_string()))?;
    prost::Message::decode(raw.as_slice())
        .map_err(|e: prost::DecodeError| RemoteWriteError::Protobuf(e.to_string()))
}

/// The inverse of [`decode`] (for tests and the benchmark's load generator).
pub fn encode(request: &WriteRequest) -> Vec<u8> {
    let raw = prost::Message::encode_to_vec(request);
    snap::raw::Encoder::new()
        .compress_vec(&raw)
        // Snappy refuses only inputs near 4 GiB, which no request we build comes close to.
        .expect("write request too large for snappy")
}

/// Validates one series and converts its labels: a non-empty `__name__`, names matching
/// `[a-zA-Z_][a-zA-Z0-9_]*`, no name twice. Empty values are dropped (Prometheus treats them as
/// absent). Samples are left alone, in their order: the caller handles out-of-order ones.
pub fn series_labels(series: &TimeSeries, index: usize) -> Result<Labels, RemoteWriteError> {
    let invalid = |reason: String| RemoteWriteError::InvalidSeries { index, reason };
    for label in &series.labels {
        if !valid_label_name(&label.name) {
            return Err(invalid(format!("invalid label name {:?}", label.name)));
        }
    }
    let mut names: Vec<&str> = series
        .labels
        .iter()
        .map(|label| label.name.as_str())
        .collect();
    names.sort_unstable();
    if let Some(pair) = names.windows(2).find(|pair| pair[0] == pair[1]) {
        return Err(invalid(format!("duplicate label name {:?}", pair[0])));
    }
    let has_name = series
        .labels
        .iter()
        .any(|label| label.name == METRIC_NAME && !label.value.is_empty());
    if !has_name {
        return Err(invalid("no __name__ label".to_string()));
    }
    Ok(Labels::from_pairs(
        series
            .labels
            .iter()
            .map(|label| (label.name.as_str(), label.value.as_str())),
    ))
}

fn valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == b'_')
        && bytes.all(|byte| byte.is_ascii_alphanumeric() || byte == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(name: &str, value: &str) -> Label {
        Label {
            name: name.to_string(),
            value: value.to_string(),
        }
    }

    fn series(labels: &[(&str, &str)]) -> TimeSeries {
        TimeSeries {
            labels: labels
                .iter()
                .map(|(name, value)| label(name, value))
                .collect(),
            samples: vec![Sample {
                value: 1.0,
                timestamp: 1_700_000_000_000,
            }],
            exemplars: vec![],
        }
    }

    fn reason(result: Result<Labels, RemoteWriteError>) -> String {
        match result {
            Err(RemoteWriteError::InvalidSeries { reason, .. }) => reason,
            other => panic!("expected InvalidSeries, got {other:?}"),
        }
    }

    #[test]
    fn round_trip() {
        let request = WriteRequest {
            timeseries: vec![
                TimeSeries {
                    labels: vec![
                        label("__name__", "http_requests_total"),
                        label("job", "api"),
                    ],
                    samples: vec![
                        Sample {
                            value: 10.0,
                            timestamp: 1_700_000_000_000,
                        },
                        Sample {
                            value: f64::from_bits(0x7ff0_0000_0000_0002),
                            timestamp: 1_700_000_015_000,
                        },
                    ],
                    exemplars: vec![Exemplar {
                        labels: vec![label("trace_id", "abc")],
                        value: 0.25,
                        timestamp: 1_700_000_000_001,
                    }],
                },
                series(&[("__name__", "up")]),
            ],
            metadata: vec![MetricMetadata {
                r#type: MetricType::Counter as i32,
                metric_family_name: "http_requests_total".to_string(),
                help: "Requests served.".to_string(),
                unit: String::new(),
            }],
        };
        let body = encode(&request);
        let decoded = decode(&body).unwrap();
        // The stale NaN is not `==` itself, so compare its bits and the rest separately.
        let stale = decoded.timeseries[0].samples[1].value;
        assert_eq!(stale.to_bits(), 0x7ff0_0000_0000_0002);
        let mut expected = request.clone();
        let mut got = decoded.clone();
        expected.timeseries[0].samples.pop();
        got.timeseries[0].samples.pop();
        assert_eq!(got, expected);
        assert_eq!(decoded.metadata[0].r#type(), MetricType::Counter);

        let labels = series_labels(&decoded.timeseries[0], 0).unwrap();
        assert_eq!(labels.to_string(), r#"http_requests_total{job="api"}"#);
    }

    /// A sender's view of the messages, with native histograms (field 4; a `Histogram` message
    /// here only needs some bytes) that ours leave out.
    #[derive(Clone, PartialEq, prost::Message)]
    struct SenderRequest {
        #[prost(message, repeated, tag = "1")]
        timeseries: Vec<SenderSeries>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    struct SenderSeries {
        #[prost(message, repeated, tag = "1")]
        labels: Vec<Label>,
        #[prost(bytes = "vec", repeated, tag = "4")]
        histograms: Vec<Vec<u8>>,
    }

    #[test]
    fn native_histograms_are_skipped() {
        let sent = SenderRequest {
            timeseries: vec![SenderSeries {
                labels: vec![label("__name__", "h")],
                histograms: vec![vec![0x08, 0x05], vec![]],
            }],
        };
        let body = snap::raw::Encoder::new()
            .compress_vec(&prost::Message::encode_to_vec(&sent))
            .unwrap();
        let decoded = decode(&body).unwrap();
        assert_eq!(decoded.timeseries.len(), 1);
        assert!(decoded.timeseries[0].samples.is_empty());
        let labels = series_labels(&decoded.timeseries[0], 0).unwrap();
        assert_eq!(labels.metric_name(), Some("h"));
    }

    #[test]
    fn garbage_body_is_a_snappy_error() {
        for body in [&b"definitely not snappy"[..], b"", &[0xff; 12]] {
            assert!(
                matches!(decode(body), Err(RemoteWriteError::Snappy(_))),
                "{body:?}"
            );
        }
    }

    #[test]
    fn huge_claimed_length_is_refused_before_allocating() {
        // Snappy's header is the decompressed length as a varint: 1 GiB, then a few bytes.
        let mut body = Vec::new();
        let mut len = 1u64 << 30;
        while len >= 0x80 {
            body.push((len as u8) | 0x80);
            len >>= 7;
        }
        body.push(len as u8);
        body.extend_from_slice(&[0x00, 0x01, 0x02]);
        match decode(&body) {
            Err(RemoteWriteError::TooLarge { size }) => assert_eq!(size, 1 << 30),
            other => panic!("expected TooLarge, got {other:?}"),
        }
    }

    #[test]
    fn valid_snappy_of_garbage_is_a_protobuf_error() {
        let body = snap::raw::Encoder::new()
            .compress_vec(b"\x0a\xff\xff\xff\x0f garbage")
            .unwrap();
        assert!(matches!(decode(&body), Err(RemoteWriteError::Protobuf(_))));
    }

    #[test]
    fn series_needs_a_name() {
        assert_eq!(
            reason(series_labels(&series(&[("job", "x")]), 3)),
            "no __name__ label"
        );
        assert_eq!(
            reason(series_labels(&series(&[("__name__", ""), ("job", "x")]), 3)),
            "no __name__ label"
        );
        match series_labels(&series(&[]), 7) {
            Err(err @ RemoteWriteError::InvalidSeries { index: 7, .. }) => {
                assert_eq!(err.to_string(), "series 7: no __name__ label");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn duplicate_label_names_are_refused() {
        let dup = series(&[
            ("__name__", "up"),
            ("job", "a"),
            ("instance", "i"),
            ("job", "b"),
        ]);
        assert_eq!(
            reason(series_labels(&dup, 0)),
            r#"duplicate label name "job""#
        );
    }

    #[test]
    fn label_names_are_checked() {
        for bad in ["", "1abc", "a-b", "é", "a.b", "a b"] {
            let result = series_labels(&series(&[("__name__", "up"), (bad, "x")]), 0);
            assert!(reason(result).starts_with("invalid label name"), "{bad:?}");
        }
        let ok = series_labels(
            &series(&[("__name__", "up"), ("_a9", "x"), ("Z", "y"), ("empty", "")]),
            0,
        )
        .unwrap();
        assert_eq!(ok.len(), 3);
        assert_eq!(ok.get("empty"), None);
    }
}
