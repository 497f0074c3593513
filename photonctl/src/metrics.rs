//! `photonctl metrics`: nightlight's Prometheus HTTP API, printed as tables or passed through
//! as JSON. Works against Prometheus itself too.

use serde_json::Value;

use crate::cli::{MetricsCommand, Nightlight, Output};
use crate::rest;

async fn get(target: &Nightlight, path: &str, query: &[(&str, &str)]) -> anyhow::Result<Value> {
    let url = format!("{}{path}", target.endpoint.trim_end_matches('/'));
    let request = reqwest::Client::new().get(&url).query(query);
    rest::send(request, "nightlight", &target.endpoint, &url).await
}

/// `name{a="b", c="d"}` from the API's `metric` object.
fn series_name(metric: &Value) -> String {
    let Some(labels) = metric.as_object() else {
        return "{}".into();
    };
    let name = labels.get("__name__").and_then(Value::as_str).unwrap_or("");
    let rest: Vec<String> = labels
        .iter()
        .filter(|(key, _)| *key != "__name__")
        .map(|(key, value)| format!("{key}={}", value))
        .collect();
    if rest.is_empty() && !name.is_empty() {
        return name.to_owned();
    }
    format!("{name}{{{}}}", rest.join(", "))
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.clone(),
        Value::Null => "-".to_owned(),
        other => other.to_string(),
    }
}

pub async fn run(command: MetricsCommand) -> anyhow::Result<()> {
    match command {
        MetricsCommand::Query { expr, time, target } => {
            let mut query = vec![("query", expr.as_str())];
            if let Some(time) = &time {
                query.push(("time", time));
            }
            let body = get(&target, "/api/v1/query", &query).await?;
            if target.output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&body)?);
                return Ok(());
            }
            let data = &body["data"];
            match data["resultType"].as_str() {
                Some("vector") => {
                    let result = data["result"].as_array().cloned().unwrap_or_default();
                    if result.is_empty() {
                        println!("(no series)");
                    }
                    for sample in result {
                        println!(
                            "{}  {}",
                            series_name(&sample["metric"]),
                            text(&sample["value"][1])
                        );
                    }
                }
                Some("matrix") => {
                    for series in data["result"].as_array().into_iter().flatten() {
                        println!("{}", series_name(&series["metric"]));
                        for point in series["values"].as_array().into_iter().flatten() {
                            println!("  @{}  {}", point[0], text(&point[1]));
                        }
                    }
                }
                Some(_) => println!("{}", text(&data["result"][1])),
                None => println!("{}", serde_json::to_string_pretty(data)?),
            }
        }
        MetricsCommand::Targets { target } => {
            let body = get(&target, "/api/v1/targets", &[]).await?;
            if target.output == Output::Json {
                println!("{}", serde_json::to_string_pretty(&body)?);
                return Ok(());
            }
            println!(
                "{:<16} {:<40} {:<7} {:<24} {:>9}  ERROR",
                "JOB", "ENDPOINT", "HEALTH", "LAST SCRAPE", "DURATION"
            );
            for active in body["data"]["activeTargets"]
                .as_array()
                .into_iter()
                .flatten()
            {
                let duration = active["lastScrapeDuration"].as_f64().unwrap_or(0.0);
                println!(
                    "{:<16} {:<40} {:<7} {:<24} {:>8.3}s  {}",
                    text(&active["scrapePool"]),
                    text(&active["scrapeUrl"]),
                    text(&active["health"]),
                    text(&active["lastScrape"])
                        .chars()
                        .take(23)
                        .collect::<String>(),
                    duration,
                    text(&active["lastError"]),
                );
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_print_like_promql() {
        let metric = serde_json::json!({"__name__": "up", "job": "a"});
        assert_eq!(series_name(&metric), r#"up{job="a"}"#);
        assert_eq!(series_name(&serde_json::json!({})), "{}");
        assert_eq!(series_name(&serde_json::json!({"__name__": "up"})), "up");
    }
}
