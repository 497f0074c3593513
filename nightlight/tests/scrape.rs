//! Scraping real HTTP exporters: labels, synthetic series, staleness, failures and limits.

mod common;

use common::{Exporter, Nightlight, scrape_job};

const COUNTERS: &str = "# HELP requests_total Requests served.\n# TYPE requests_total counter\nrequests_total{code=\"200\"} 5\nrequests_total{code=\"500\"} 1\n# TYPE temperature gauge\ntemperature -3.5\n";

#[tokio::test]
async fn scraped_samples_get_job_and_instance_and_the_synthetic_series() {
    let exporter = Exporter::start(COUNTERS).await;
    let dir = tempfile::tempdir().unwrap();
    let nightlight = Nightlight::start(
        &dir.path().join("data"),
        "",
        &scrape_job("api", &[&exporter], "labels = { env = \"test\" }"),
    )
    .await;
    nightlight.wait_for("up{job=\"api\"}", |v| v == 1.0).await;

    let result = nightlight.query("requests_total{code=\"200\"}").await;
    assert_eq!(result.len(), 1);
    assert_eq!(
        result[0]["metric"],
        serde_json::json!({
            "__name__": "requests_total", "code": "200", "env": "test",
            "instance": exporter.address, "job": "api",
        })
    );
    assert_eq!(result[0]["value"][1], "5");
    assert_eq!(nightlight.value("temperature").await, Some(-3.5));
    assert_eq!(
        nightlight
            .value("scrape_samples_scraped{job=\"api\"}")
            .await,
        Some(3.0)
    );
    assert!(
        nightlight
            .value("scrape_duration_seconds{job=\"api\"}")
            .await
            .unwrap()
            < 1.0
    );

    let (_, metadata) = nightlight
        .get("/api/v1/metadata?metric=requests_total")
        .await;
    assert_eq!(
        metadata["data"]["requests_total"][0],
        serde_json::json!({"type": "counter", "help": "Requests served.", "unit": ""})
    );
    // Asked for gzip and got it (the exporter compresses when asked).
    assert!(exporter.accept_encoding.lock().unwrap().contains("gzip"));
    let (_, targets) = nightlight.get("/api/v1/targets").await;
    let active = &targets["data"]["activeTargets"][0];
    assert_eq!(active["health"], "up");
    assert_eq!(
        active["scrapeUrl"],
        format!("http://{}/metrics", exporter.address)
    );
}

#[tokio::test]
async fn a_series_that_disappears_is_marked_stale_at_the_next_scrape() {
    let exporter = Exporter::start("kept 1\ngone 2\n").await;
    let dir = tempfile::tempdir().unwrap();
    let nightlight = Nightlight::start(
        &dir.path().join("data"),
        "",
        &scrape_job("e", &[&exporter], ""),
    )
    .await;
    nightlight.wait_for("gone", |v| v == 2.0).await;
    exporter.set("kept 1\n");
    // Without a staleness marker the old sample would answer for 5 minutes.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !nightlight.query("gone").await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "gone never went stale"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(nightlight.value("kept").await, Some(1.0));
    // The series still has its past: a range selector sees the samples before the marker.
    assert!(nightlight.value("count_over_time(gone[1m])").await.unwrap() >= 1.0);
}

#[tokio::test]
async fn a_malformed_exposition_fails_only_its_own_target_and_says_which_line() {
    let good = Exporter::start("good_metric 1\n").await;
    let bad = Exporter::start("bad_metric 1\n").await;
    let dir = tempfile::tempdir().unwrap();
    let nightlight = Nightlight::start(
        &dir.path().join("data"),
        "",
        &scrape_job("mixed", &[&good, &bad], ""),
    )
    .await;
    nightlight.wait_for("bad_metric", |v| v == 1.0).await;
    bad.set("bad_metric 1\nbad_metric{x=\"unterminated} 2\n");
    let bad_up = format!("up{{instance=\"{}\"}}", bad.address);
    nightlight.wait_for(&bad_up, |v| v == 0.0).await;
    assert_eq!(
        nightlight
            .value(&format!("up{{instance=\"{}\"}}", good.address))
            .await,
        Some(1.0)
    );
    assert_eq!(nightlight.value("good_metric").await, Some(1.0));
    // A failed scrape marks the target's series stale.
    assert!(nightlight.query("bad_metric").await.is_empty());
    let (_, targets) = nightlight.get("/api/v1/targets").await;
    let bad_target = targets["data"]["activeTargets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["labels"]["instance"] == bad.address.as_str())
        .unwrap()
        .clone();
    assert_eq!(bad_target["health"], "down");
    let error = bad_target["lastError"].as_str().unwrap();
    assert!(error.contains("line 2"), "{error}");
    assert!(nightlight.log_text().contains(&bad.address));
}

#[tokio::test]
async fn http_errors_and_limits_mark_the_target_down_with_the_reason() {
    let failing = Exporter::start("m 1\n").await;
    failing.set_status(500);
    let large = Exporter::start("a 1\nb 2\nc 3\n").await;
    let dir = tempfile::tempdir().unwrap();
    let nightlight = Nightlight::start(
        &dir.path().join("data"),
        "",
        &format!(
            "{}{}",
            scrape_job("failing", &[&failing], ""),
            scrape_job("large", &[&large], "sample_limit = 2")
        ),
    )
    .await;
    nightlight
        .wait_for("up{job=\"failing\"}", |v| v == 0.0)
        .await;
    nightlight.wait_for("up{job=\"large\"}", |v| v == 0.0).await;
    let (_, targets) = nightlight.get("/api/v1/targets").await;
    let errors: Vec<String> = targets["data"]["activeTargets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["lastError"].as_str().unwrap().to_owned())
        .collect();
    assert!(
        errors.iter().any(|e| e.contains("HTTP status 500")),
        "{errors:?}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e.contains("sample limit exceeded: 3 samples, limit 2")),
        "{errors:?}"
    );
    assert!(nightlight.query("a").await.is_empty());
}

#[tokio::test]
async fn openmetrics_is_negotiated_and_honor_labels_keeps_the_targets_own() {
    let exporter = Exporter::start("").await;
    exporter.set_openmetrics(
        "# TYPE jobs counter\njobs_total{job=\"inner\"} 7\njobs_created{job=\"inner\"} 1.5e9\n# EOF\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let nightlight = Nightlight::start(
        &dir.path().join("data"),
        "",
        &format!(
            "{}{}",
            scrape_job("renamed", &[&exporter], ""),
            scrape_job("honored", &[&exporter], "honor_labels = true")
        ),
    )
    .await;
    nightlight
        .wait_for("up{job=\"renamed\"}", |v| v == 1.0)
        .await;
    nightlight
        .wait_for("up{job=\"honored\"}", |v| v == 1.0)
        .await;
    assert_eq!(
        nightlight
            .value("jobs_total{job=\"renamed\", exported_job=\"inner\"}")
            .await,
        Some(7.0)
    );
    assert_eq!(
        nightlight.value("jobs_total{job=\"inner\"}").await,
        Some(7.0)
    );
}
