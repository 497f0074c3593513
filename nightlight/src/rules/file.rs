//! Prometheus rule files: `groups:` of recording and alerting rules, read and checked as
//! promtool checks them. Every error names the file, the line and the column.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use promql_parser::parser::Expr;
use serde::Deserialize;
use serde_saphyr::Spanned;

use super::template;
use crate::labels::{METRIC_NAME, is_label_name};
use crate::promql::Engine;
use crate::timefmt::parse_prometheus_duration;

/// Why a rule file was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleFileError {
    pub file: PathBuf,
    pub line: u64,
    pub column: u64,
    pub reason: String,
}

impl fmt::Display for RuleFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.reason
        )
    }
}

/// A checked group, as its file defines it.
#[derive(Debug, Clone)]
pub struct GroupSpec {
    pub file: PathBuf,
    pub name: String,
    /// The group's own `interval`; the configured evaluation interval when absent.
    pub interval: Option<Duration>,
    /// The most series (recording) or alerts (alerting) a rule may produce; 0 is no limit.
    pub limit: usize,
    pub rules: Vec<RuleSpec>,
}

#[derive(Debug, Clone)]
pub struct RuleSpec {
    /// The recorded metric or the alert's name.
    pub name: String,
    /// The expression in PromQL's canonical form, as the API shows it.
    pub query: String,
    pub expr: Expr,
    /// Label templates (alerting) or values (recording), in name order.
    pub labels: Vec<(String, String)>,
    pub kind: RuleKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RuleKind {
    Recording,
    Alerting {
        hold: Duration,
        keep_firing_for: Duration,
        /// Annotation templates, in name order.
        annotations: Vec<(String, String)>,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    groups: Vec<Spanned<RawGroup>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGroup {
    name: Spanned<String>,
    #[serde(default)]
    interval: Option<Spanned<String>>,
    #[serde(default)]
    limit: usize,
    #[serde(default)]
    rules: Vec<Spanned<RawRule>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    #[serde(default)]
    record: Option<Spanned<String>>,
    #[serde(default)]
    alert: Option<Spanned<String>>,
    #[serde(default)]
    expr: Option<Spanned<String>>,
    #[serde(default, rename = "for")]
    hold: Option<Spanned<String>>,
    #[serde(default)]
    keep_firing_for: Option<Spanned<String>>,
    #[serde(default)]
    labels: HashMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    annotations: HashMap<Spanned<String>, Spanned<String>>,
}

/// Reads and checks one rule file.
pub fn load(path: &Path) -> Result<Vec<GroupSpec>, Vec<RuleFileError>> {
    let text = std::fs::read_to_string(path).map_err(|err| {
        vec![RuleFileError {
            file: path.to_owned(),
            line: 0,
            column: 0,
            reason: format!("cannot read the file: {err}"),
        }]
    })?;
    parse(path, &text)
}

/// Checks `text` as the rule file `path`; every problem is reported, not just the first.
pub fn parse(path: &Path, text: &str) -> Result<Vec<GroupSpec>, Vec<RuleFileError>> {
    let error_at = |line: u64, column: u64, reason: String| RuleFileError {
        file: path.to_owned(),
        line,
        column,
        reason,
    };
    let raw: RawFile = if text.trim().is_empty() {
        // An empty file is an empty rule set, as promtool says.
        RawFile { groups: Vec::new() }
    } else {
        serde_saphyr::from_str(text).map_err(|err| {
            let (line, column) = err.location().map_or((0, 0), |at| (at.line(), at.column()));
            vec![error_at(line, column, yaml_reason(&err.to_string()))]
        })?
    };
    let mut errors = Vec::new();
    let mut groups = Vec::new();
    let mut names = BTreeSet::new();
    for group in raw.groups {
        let at = &group.referenced;
        let group = group.value;
        let mut fail = |spot: &serde_saphyr::Location, reason: String| {
            errors.push(error_at(spot.line(), spot.column(), reason));
        };
        let name = group.name.value.clone();
        if name.is_empty() {
            fail(
                &group.name.referenced,
                "group name must not be empty".into(),
            );
        } else if !names.insert(name.clone()) {
            fail(
                &group.name.referenced,
                format!("group name {name:?} is repeated in the same file"),
            );
        }
        let interval =
            group.interval.as_ref().and_then(|interval| {
                match parse_prometheus_duration(&interval.value) {
                    Some(duration) if !duration.is_zero() => Some(duration),
                    _ => {
                        fail(
                            &interval.referenced,
                            format!(
                                "group {name:?}: interval {:?} is not a duration such as 30s or 1m",
                                interval.value
                            ),
                        );
                        None
                    }
                }
            });
        if group.rules.is_empty() {
            // Prometheus accepts an empty group; it simply evaluates nothing.
            tracing::debug!(
                "{}:{}: group {name:?} has no rules",
                path.display(),
                at.line()
            );
        }
        let mut rules = Vec::new();
        for (index, rule) in group.rules.into_iter().enumerate() {
            let context = format!("group {name:?}, rule {}", index + 1);
            match check_rule(&context, &rule.referenced, rule.value) {
                Ok(rule) => rules.push(rule),
                Err(problems) => {
                    for (spot, reason) in problems {
                        fail(&spot, reason);
                    }
                }
            }
        }
        groups.push(GroupSpec {
            file: path.to_owned(),
            name,
            interval,
            limit: group.limit,
            rules,
        });
    }
    if errors.is_empty() {
        Ok(groups)
    } else {
        Err(errors)
    }
}

/// serde-saphyr's message without its position (we print our own) and source excerpt.
fn yaml_reason(display: &str) -> String {
    let first = display.lines().next().unwrap_or(display);
    let first = first.strip_prefix("error: ").unwrap_or(first);
    match first.split_once(": ") {
        Some((position, reason)) if position.starts_with("line ") => reason.to_owned(),
        _ => first.to_owned(),
    }
}

type Problems = Vec<(serde_saphyr::Location, String)>;

fn check_rule(
    context: &str,
    at: &serde_saphyr::Location,
    rule: RawRule,
) -> Result<RuleSpec, Problems> {
    let mut problems: Problems = Vec::new();
    let mut fail = |spot: &serde_saphyr::Location, reason: String| {
        problems.push((*spot, format!("{context}: {reason}")));
    };
    let (name, is_alert) = match (&rule.record, &rule.alert) {
        (Some(record), None) => {
            if !is_metric_name(&record.value) {
                fail(
                    &record.referenced,
                    format!("invalid recording rule name: {:?}", record.value),
                );
            }
            (record.value.clone(), false)
        }
        (None, Some(alert)) => {
            if alert.value.is_empty() {
                fail(&alert.referenced, "alert name must not be empty".into());
            }
            (alert.value.clone(), true)
        }
        (Some(record), Some(_)) => {
            fail(
                &record.referenced,
                "only one of 'record' and 'alert' must be set".into(),
            );
            (record.value.clone(), false)
        }
        (None, None) => {
            fail(at, "one of 'record' or 'alert' must be set".into());
            (String::new(), false)
        }
    };
    let expr = match &rule.expr {
        None => {
            fail(at, "field 'expr' must be set in rule".into());
            None
        }
        Some(expr) => match Engine::parse(&expr.value) {
            Ok(parsed) => Some(parsed),
            Err(err) => {
                let reason = err.to_string();
                let reason = reason
                    .strip_prefix("invalid parameter \"query\": ")
                    .unwrap_or(&reason);
                fail(
                    &expr.referenced,
                    format!("could not parse expression: {reason}"),
                );
                None
            }
        },
    };
    let duration = |fail: &mut dyn FnMut(&serde_saphyr::Location, String),
                    field: &str,
                    value: &Option<Spanned<String>>| {
        let value = value.as_ref()?;
        if !is_alert {
            fail(
                &value.referenced,
                format!("invalid field '{field}' in recording rule"),
            );
            return None;
        }
        let parsed = parse_prometheus_duration(&value.value);
        if parsed.is_none() {
            fail(
                &value.referenced,
                format!(
                    "{field}: {:?} is not a duration such as 5m or 1h",
                    value.value
                ),
            );
        }
        parsed
    };
    let hold = duration(&mut fail, "for", &rule.hold).unwrap_or_default();
    let keep_firing_for =
        duration(&mut fail, "keep_firing_for", &rule.keep_firing_for).unwrap_or_default();
    for (label, value) in sorted(&rule.labels) {
        if !is_label_name(&label.value) || label.value == METRIC_NAME {
            fail(
                &label.referenced,
                format!("invalid label name: {:?}", label.value),
            );
        }
        if is_alert && let Err(err) = template::check(&value.value) {
            fail(
                &value.referenced,
                format!("label {:?}: invalid template: {err}", label.value),
            );
        }
    }
    for (annotation, value) in sorted(&rule.annotations) {
        if !is_alert {
            fail(
                &annotation.referenced,
                "invalid field 'annotations' in recording rule".into(),
            );
            break;
        }
        if !is_label_name(&annotation.value) {
            fail(
                &annotation.referenced,
                format!("invalid annotation name: {:?}", annotation.value),
            );
        }
        if let Err(err) = template::check(&value.value) {
            fail(
                &value.referenced,
                format!("annotation {:?}: invalid template: {err}", annotation.value),
            );
        }
    }
    let pairs = |map: &HashMap<Spanned<String>, Spanned<String>>| {
        sorted(map)
            .into_iter()
            .map(|(name, value)| (name.value.clone(), value.value.clone()))
            .collect()
    };
    let (labels, annotations) = (pairs(&rule.labels), pairs(&rule.annotations));
    match expr {
        Some(expr) if problems.is_empty() => Ok(RuleSpec {
            name,
            // Printed back as Prometheus prints it (`sum by (job) (x)` for `sum(x) by (job)`).
            query: expr.to_string(),
            expr,
            labels,
            kind: if is_alert {
                RuleKind::Alerting {
                    hold,
                    keep_firing_for,
                    annotations,
                }
            } else {
                RuleKind::Recording
            },
        }),
        _ => Err(problems),
    }
}

fn sorted(
    map: &HashMap<Spanned<String>, Spanned<String>>,
) -> Vec<(&Spanned<String>, &Spanned<String>)> {
    let mut pairs: Vec<_> = map.iter().collect();
    pairs.sort_by(|a, b| a.0.value.cmp(&b.0.value));
    pairs
}

/// `[a-zA-Z_:][a-zA-Z0-9_:]*`
fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors(text: &str) -> Vec<String> {
        parse(Path::new("rules.yml"), text)
            .err()
            .unwrap_or_default()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn groups_and_rules_load() {
        let text = r#"
groups:
  - name: node
    interval: 30s
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
        labels:
          team: infra
      - alert: InstanceDown
        expr: |
          up == 0
        for: 5m
        keep_firing_for: 1m
        labels:
          severity: page
        annotations:
          summary: "{{ $labels.instance }} is down"
"#;
        let groups = parse(Path::new("rules.yml"), text).expect("loads");
        assert_eq!(groups.len(), 1);
        let group = &groups[0];
        assert_eq!(group.interval, Some(Duration::from_secs(30)));
        assert_eq!(group.rules[0].name, "job:up:sum");
        assert_eq!(group.rules[0].kind, RuleKind::Recording);
        assert_eq!(group.rules[1].query, "up == 0");
        assert_eq!(
            group.rules[1].kind,
            RuleKind::Alerting {
                hold: Duration::from_secs(300),
                keep_firing_for: Duration::from_secs(60),
                annotations: vec![("summary".into(), "{{ $labels.instance }} is down".into())],
            }
        );
        assert!(parse(Path::new("empty.yml"), "").expect("empty").is_empty());
        let text = "groups:\n  - name: a\n    rules:\n      - record: x\n        expr: sum(up)   by(job)\n";
        let groups = parse(Path::new("rules.yml"), text).expect("loads");
        assert_eq!(groups[0].rules[0].query, "sum by (job) (up)");
    }

    #[test]
    fn errors_name_file_line_and_reason() {
        assert_eq!(
            errors("groups:\n  - name: a\n    rulez: []\n"),
            ["rules.yml:3:5: unknown field `rulez`, expected one of name, interval, limit, rules"]
        );
        let text = "groups:\n  - name: a\n    rules:\n      - record: x\n        expr: sum(\n";
        let found = errors(text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0]
                .starts_with("rules.yml:5:15: group \"a\", rule 1: could not parse expression:"),
            "{found:?}"
        );
        let text = "groups:\n  - name: a\n    rules:\n      - record: x\n        expr: up\n        for: 5m\n  - name: a\n    rules:\n      - alert: A\n        expr: up\n        for: soon\n        annotations:\n          s: '{{ nosuch }}'\n";
        let found = errors(text);
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(
            found[0].contains(":6:14: group \"a\", rule 1: invalid field 'for' in recording rule")
        );
        assert!(found[1].contains(":7:11: group name \"a\" is repeated in the same file"));
        assert!(found[2].contains(":11:14: group \"a\", rule 1: for: \"soon\" is not a duration"));
        assert!(
            found[3].contains(":13:14: group \"a\", rule 1: annotation \"s\": invalid template")
        );
        assert_eq!(
            errors("groups:\n  - name: a\n    rules:\n      - expr: up\n"),
            ["rules.yml:4:9: group \"a\", rule 1: one of 'record' or 'alert' must be set"]
        );
        assert_eq!(
            errors(
                "groups:\n  - name: a\n    rules:\n      - record: 'bad name'\n        expr: up\n"
            ),
            ["rules.yml:4:17: group \"a\", rule 1: invalid recording rule name: \"bad name\""]
        );
    }
}
