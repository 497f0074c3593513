//! How results are shown.

use std::fmt::Write;

use serde::Serialize;

use crate::probe::{Probe, Verdict};

pub fn json(value: &impl Serialize) -> String {
    serde_json::to_string_pretty(value).unwrap_or_else(|err| format!("{{\"error\": \"{err}\"}}"))
}

fn latency(probe: &Probe) -> String {
    probe
        .latency_ms
        .map(|ms| format!("{ms:.1} ms"))
        .unwrap_or_else(|| "-".into())
}

fn verdict_word(probe: &Probe) -> &'static str {
    match probe.verdict() {
        Verdict::Healthy => "healthy",
        Verdict::Unhealthy => "unhealthy",
        Verdict::Unreachable => "unreachable",
    }
}

/// `check-connection`: a few labelled lines and the /health body.
pub fn connection_report(probe: &Probe) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "endpoint:  {}", probe.endpoint);
    if probe.reachable {
        let status = probe.http_status.map(|s| s.to_string()).unwrap_or_default();
        let _ = writeln!(out, "reachable: yes (HTTP {status} in {})", latency(probe));
    } else {
        let _ = writeln!(out, "reachable: no");
    }
    let _ = writeln!(out, "status:    {}", verdict_word(probe));
    if let Some(problem) = &probe.problem {
        let _ = writeln!(out, "problem:   {problem}");
    }
    if let Some(report) = &probe.health {
        let _ = writeln!(
            out,
            "component: {} {} (id {}), mode {} (decided by {})",
            report.component, report.version, report.component_id, report.mode, report.mode_source
        );
        let _ = writeln!(out, "health:\n{}", json(report));
    } else if let Some(body) = &probe.body {
        let _ = writeln!(out, "body:\n{}", json(body));
    }
    out
}

/// `status`: one row per endpoint.
pub fn status_table(probes: &[Probe]) -> String {
    let header = [
        "ENDPOINT",
        "COMPONENT",
        "ID",
        "STATUS",
        "MODE",
        "VERSION",
        "LATENCY",
        "DETAIL",
    ];
    let rows: Vec<[String; 8]> = probes
        .iter()
        .map(|probe| {
            let report = probe.health.as_ref();
            [
                probe.endpoint.clone(),
                report
                    .map(|r| r.component.clone())
                    .unwrap_or_else(|| "-".into()),
                report
                    .map(|r| r.component_id.clone())
                    .unwrap_or_else(|| "-".into()),
                verdict_word(probe).to_owned(),
                report
                    .map(|r| format!("{} ({})", r.mode, r.mode_source))
                    .unwrap_or_else(|| "-".into()),
                report
                    .map(|r| r.version.clone())
                    .unwrap_or_else(|| "-".into()),
                latency(probe),
                probe.problem.clone().unwrap_or_default(),
            ]
        })
        .collect();

    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let lines = std::iter::once(header.map(str::to_owned)).chain(rows);
    for row in lines {
        let cells: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}
