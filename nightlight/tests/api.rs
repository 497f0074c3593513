//! The HTTP API with data written through remote write and import: durability across kill -9,
//! refused input that leaves data intact, query errors in Prometheus's envelope, the metadata
//! endpoints.

mod common;

use common::Nightlight;
use nightlight::remote_write::{self, Label, Sample, TimeSeries, WriteRequest};
use serde_json::json;

/// A base time well inside the store's windows (2023-11-14T22:13:20Z).
const T0: i64 = 1_700_000_000_000;

fn series(name: &str, labels: &[(&str, &str)], points: &[(i64, f64)]) -> TimeSeries {
    let mut all = vec![Label {
        name: "__name__".into(),
        value: name.into(),
    }];
    all.extend(labels.iter().map(|(n, v)| Label {
        name: (*n).into(),
        value: (*v).into(),
    }));
    TimeSeries {
        labels: all,
        samples: points
            .iter()
            .map(|&(timestamp, value)| Sample { value, timestamp })
            .collect(),
        exemplars: Vec::new(),
    }
}

async fn write(nightlight: &Nightlight, timeseries: Vec<TimeSeries>) -> (u16, String) {
    let body = remote_write::encode(&WriteRequest {
        timeseries,
        metadata: Vec::new(),
    });
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/write", nightlight.url))
        .header("Content-Encoding", "snappy")
        .header("Content-Type", "application/x-protobuf")
        .header("X-Prometheus-Remote-Write-Version", "0.1.0")
        .body(body)
        .send()
        .await
        .unwrap();
    (
        response.status().as_u16(),
        response.text().await.unwrap_or_default(),
    )
}

fn seconds(t: i64) -> f64 {
    t as f64 / 1000.0
}

#[tokio::test]
async fn acknowledged_remote_writes_survive_kill_9() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let nightlight = Nightlight::start(&data, "", "").await;
    // 200 series x 600 samples at 15 s (2.5 hours: several chunks and windows), in batches:
    // more than a log segment, so checkpoints happen on the way.
    for batch in 0..6 {
        let timeseries = (0..200)
            .map(|s| {
                let points: Vec<(i64, f64)> = (batch * 100..(batch + 1) * 100)
                    .map(|i| (T0 + i * 15_000, (i * (s + 1)) as f64))
                    .collect();
                series("written_total", &[("series", &s.to_string())], &points)
            })
            .collect();
        assert_eq!(write(&nightlight, timeseries).await, (204, String::new()));
    }
    let metrics = reqwest::get(format!("{}/metrics", nightlight.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let checkpoints: f64 = metrics
        .lines()
        .find_map(|line| line.strip_prefix("photon_nightlight_checkpoints_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        checkpoints >= 2.0,
        "{checkpoints} checkpoint(s): the log never filled a segment"
    );
    nightlight.kill_hard();

    let nightlight = Nightlight::start(&data, "", "").await;
    let last = seconds(T0 + 599 * 15_000);
    let (status, body) = nightlight
        .query_at("sum(count_over_time(written_total[3h]))", Some(last))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["result"][0]["value"][1], "120000", "{body}");
    let (_, body) = nightlight
        .query_at("written_total{series=\"9\"}", Some(last))
        .await;
    assert_eq!(
        body["data"]["result"][0]["value"][1],
        (599 * 10).to_string()
    );

    // And again after a clean stop, which checkpoints instead of replaying the log.
    drop(nightlight);
    let nightlight = Nightlight::start(&data, "", "").await;
    let (_, body) = nightlight
        .query_at("sum(count_over_time(written_total[3h]))", Some(last))
        .await;
    assert_eq!(body["data"]["result"][0]["value"][1], "120000", "{body}");
}

#[tokio::test]
async fn refused_writes_say_why_and_leave_stored_data_intact() {
    let dir = tempfile::tempdir().unwrap();
    let nightlight = Nightlight::start(&dir.path().join("data"), "", "").await;
    let points = [(T0, 1.0), (T0 + 15_000, 2.0)];
    assert_eq!(
        write(&nightlight, vec![series("kept", &[], &points)])
            .await
            .0,
        204
    );

    let client = reqwest::Client::new();
    let garbage = client
        .post(format!("{}/api/v1/write", nightlight.url))
        .body("definitely not snappy")
        .send()
        .await
        .unwrap();
    assert_eq!(garbage.status().as_u16(), 400);

    let nameless = TimeSeries {
        labels: vec![Label {
            name: "job".into(),
            value: "x".into(),
        }],
        samples: vec![Sample {
            value: 1.0,
            timestamp: T0,
        }],
        exemplars: Vec::new(),
    };
    let (status, message) = write(&nightlight, vec![nameless]).await;
    assert_eq!(status, 400);
    assert!(message.contains("__name__"), "{message}");

    // Older than the series' newest sample: refused like Prometheus refuses it.
    let (status, message) =
        write(&nightlight, vec![series("kept", &[], &[(T0 + 5_000, 9.0)])]).await;
    assert_eq!(status, 400);
    assert!(message.contains("out of order"), "{message}");

    let bad_import = client
        .post(format!("{}/api/v1/import", nightlight.url))
        .header("Content-Type", "text/plain")
        .body("kept{broken 1\n")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_import.status().as_u16(), 400);
    assert!(bad_import.text().await.unwrap().contains("line 1"));

    let (_, body) = nightlight
        .query_at("kept[1m]", Some(seconds(T0 + 15_000)))
        .await;
    assert_eq!(
        body["data"]["result"][0]["values"],
        json!([[seconds(T0), "1"], [seconds(T0 + 15_000), "2"]])
    );
}

/// Imports a small known data set.
async fn import_fixture(nightlight: &Nightlight) {
    let mut body = String::new();
    for (code, step) in [("200", 10.0), ("500", 1.0)] {
        for i in 0..=40 {
            body.push_str(&format!(
                "http_requests_total{{code=\"{code}\",job=\"web\"}} {} {}\n",
                step * i as f64,
                T0 + i * 15_000
            ));
        }
    }
    let response = reqwest::Client::new()
        .post(format!("{}/api/v1/import", nightlight.url))
        .header("Content-Type", "text/plain; version=0.0.4")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
}

#[tokio::test]
async fn queries_answer_in_prometheus_shape_and_errors_use_its_types() {
    let dir = tempfile::tempdir().unwrap();
    let nightlight = Nightlight::start(
        &dir.path().join("data"),
        "",
        "[standalone.query]\nmax_samples = 60",
    )
    .await;
    import_fixture(&nightlight).await;
    let at = seconds(T0 + 40 * 15_000);

    let (_, body) = nightlight
        .query_at("sum by (code) (rate(http_requests_total[5m]))", Some(at))
        .await;
    let mut rates: Vec<(String, String)> = body["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["metric"]["code"].as_str().unwrap().to_owned(),
                r["value"][1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    rates.sort();
    // 10 and 1 per 15 s, sampled over the whole window: exactly 2/3 and 1/15 per second.
    assert_eq!(rates[0].0, "200");
    assert!((rates[0].1.parse::<f64>().unwrap() - 10.0 / 15.0).abs() < 1e-9);
    assert!((rates[1].1.parse::<f64>().unwrap() - 1.0 / 15.0).abs() < 1e-9);

    let (status, body) = nightlight.query_at("scalar(vector(2)) * 3", Some(at)).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["data"],
        json!({"resultType": "scalar", "result": [at, "6"]})
    );

    let response = reqwest::Client::new()
        .get(format!("{}/api/v1/query_range", nightlight.url))
        .query(&[
            ("query", "http_requests_total{code=\"500\"} * 2"),
            ("start", &seconds(T0).to_string()),
            ("end", &seconds(T0 + 60_000).to_string()),
            ("step", "30s"),
        ])
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(
        body["data"],
        json!({"resultType": "matrix", "result": [{
            "metric": {"code": "500", "job": "web"},
            "values": [[seconds(T0), "0"], [seconds(T0 + 30_000), "4"], [seconds(T0 + 60_000), "8"]],
        }]})
    );

    let (status, body) = nightlight.query_at("sum(rate(x[5m]", None).await;
    assert_eq!(status, 400);
    assert_eq!(body["errorType"], "bad_data");
    let (status, body) = nightlight
        .query_at("count_over_time(http_requests_total[1h])", Some(at))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errorType"], "execution");
    assert!(body["error"].as_str().unwrap().contains("too many samples"));
    let (status, _) = nightlight
        .get("/api/v1/query_range?query=up[5m]&start=1&end=2&step=1")
        .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn series_labels_and_values_list_what_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let nightlight = Nightlight::start(&dir.path().join("data"), "", "").await;
    import_fixture(&nightlight).await;
    let (status, body) = nightlight
        .get("/api/v1/series?match[]=http_requests_total%7Bcode%3D~%225..%22%7D")
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        body["data"],
        json!([{"__name__": "http_requests_total", "code": "500", "job": "web"}])
    );
    let (_, body) = nightlight.get("/api/v1/labels").await;
    assert_eq!(body["data"], json!(["__name__", "code", "job"]));
    let (_, body) = nightlight.get("/api/v1/label/code/values").await;
    assert_eq!(body["data"], json!(["200", "500"]));
    let (status, body) = nightlight.get("/api/v1/series").await;
    assert_eq!(status, 400);
    assert_eq!(body["error"], "no match[] parameter provided");
    let (_, body) = nightlight.get("/api/v1/status/buildinfo").await;
    assert!(body["data"]["version"].as_str().unwrap().starts_with("2."));
}
