//! Aggregation operators with `by`/`without`.

use std::hash::{Hash, Hasher};

use promql_parser::parser::{AggregateExpr, LabelModifier};
use rustc_hash::{FxHashMap, FxHasher};

use super::functions::quantile;
use super::{QueryError, Result, Sample, Value, format_value};
use crate::labels::{Label, Labels, METRIC_NAME};

pub(super) fn evaluate(
    expr: &AggregateExpr,
    param: Option<Value>,
    input: Vec<Sample>,
    t: i64,
) -> Result<Value> {
    let op = expr.op.to_string();
    let group_of = |labels: &Labels| match &expr.modifier {
        Some(LabelModifier::Include(by)) => labels.project(&by.labels, true),
        Some(LabelModifier::Exclude(without)) => labels.project(&without.labels, false),
        None => Labels::default(),
    };
    let scalar_param = || match &param {
        Some(Value::Scalar(v)) => Ok(*v),
        _ => Err(QueryError::Execution(format!(
            "{op} needs a scalar parameter"
        ))),
    };

    if op == "count_values" {
        return count_values(&param, input, &group_of, t);
    }

    // Groups in order of first appearance, as Prometheus emits them. Without grouping labels
    // (`sum(x)`, `avg by () (x)`) every element is in the one group (none for no elements);
    // otherwise an element finds its group by a hash of its grouping labels, and a group's
    // own label set is built once.
    let modifier = &expr.modifier;
    let mut groups: Vec<(Labels, Vec<Sample>)> = Vec::new();
    let one_group = match modifier {
        None => true,
        Some(LabelModifier::Include(by)) => by.labels.is_empty(),
        Some(LabelModifier::Exclude(_)) => false,
    };
    if one_group {
        if !input.is_empty() {
            groups.push((Labels::default(), input));
        }
    } else {
        let mut by_hash: FxHashMap<u64, Vec<usize>> = FxHashMap::default();
        for sample in input {
            let mut hasher = FxHasher::default();
            for label in grouping(&sample.labels, modifier) {
                label.hash(&mut hasher);
            }
            let candidates = by_hash.entry(hasher.finish()).or_default();
            let found = candidates.iter().copied().find(|&at| {
                grouping(&groups[at].1[0].labels, modifier).eq(grouping(&sample.labels, modifier))
            });
            match found {
                Some(at) => groups[at].1.push(sample),
                None => {
                    candidates.push(groups.len());
                    groups.push((group_of(&sample.labels), vec![sample]));
                }
            }
        }
    }

    let mut out = Vec::with_capacity(groups.len());
    for (key, members) in groups {
        let values = || members.iter().map(|s| s.v);
        let value = match op.as_str() {
            "sum" => values().sum(),
            "avg" => mean(values()),
            "count" => members.len() as f64,
            "group" => 1.0,
            "min" => values().fold(
                f64::NAN,
                |acc, v| if acc.is_nan() || v < acc { v } else { acc },
            ),
            "max" => values().fold(
                f64::NAN,
                |acc, v| if acc.is_nan() || v > acc { v } else { acc },
            ),
            "stddev" => variance(values()).sqrt(),
            "stdvar" => variance(values()),
            "quantile" => {
                let q = scalar_param()?;
                let mut values: Vec<f64> = values().collect();
                quantile(q, &mut values)
            }
            "topk" | "bottomk" => {
                let k = scalar_param()?;
                out.extend(select_k(members, k, op == "topk"));
                continue;
            }
            other => {
                return Err(QueryError::Execution(format!(
                    "aggregation {other:?} is not supported"
                )));
            }
        };
        out.push(Sample {
            labels: key,
            t,
            v: value,
        });
    }
    Ok(Value::Vector(out))
}

/// The labels that decide an element's group.
fn grouping<'a>(
    labels: &'a Labels,
    modifier: &'a Option<LabelModifier>,
) -> impl Iterator<Item = &'a Label> + 'a {
    labels.iter().filter(move |label| match modifier {
        Some(LabelModifier::Include(by)) => by.labels.iter().any(|name| *name == label.name),
        Some(LabelModifier::Exclude(without)) => {
            label.name != METRIC_NAME && !without.labels.iter().any(|name| *name == label.name)
        }
        None => false,
    })
}

/// `count_values("label", v)`: per group and distinct value, how many elements have it.
fn count_values(
    param: &Option<Value>,
    input: Vec<Sample>,
    group_of: &dyn Fn(&Labels) -> Labels,
    t: i64,
) -> Result<Value> {
    let Some(Value::String(label)) = param else {
        return Err(QueryError::Execution(
            "count_values needs a string parameter".into(),
        ));
    };
    if !crate::labels::is_label_name(label) {
        return Err(QueryError::Execution(format!(
            "invalid label name {label:?}"
        )));
    }
    let mut order: Vec<Labels> = Vec::new();
    let mut counts: FxHashMap<Labels, f64> = FxHashMap::default();
    for sample in input {
        let mut key = group_of(&sample.labels).builder();
        key.set(label.clone(), format_value(sample.v));
        let key = key.build();
        *counts.entry(key.clone()).or_insert_with(|| {
            order.push(key);
            0.0
        }) += 1.0;
    }
    Ok(Value::Vector(
        order
            .into_iter()
            .map(|key| {
                let v = counts[&key];
                Sample { labels: key, t, v }
            })
            .collect(),
    ))
}

/// The `k` largest (or smallest) elements with their own labels; NaN ranks below everything.
fn select_k(mut members: Vec<Sample>, k: f64, largest: bool) -> Vec<Sample> {
    if k.is_nan() || k < 1.0 {
        return Vec::new();
    }
    let k = if k >= members.len() as f64 {
        members.len()
    } else {
        k as usize
    };
    members.sort_by(|a, b| {
        let (a, b) = (a.v, b.v);
        match (a.is_nan(), b.is_nan()) {
            (true, true) => std::cmp::Ordering::Equal,
            (true, false) => std::cmp::Ordering::Greater,
            (false, true) => std::cmp::Ordering::Less,
            _ if largest => b.partial_cmp(&a).unwrap_or(std::cmp::Ordering::Equal),
            _ => a.partial_cmp(&b).unwrap_or(std::cmp::Ordering::Equal),
        }
    });
    members.truncate(k);
    members
}

/// The running mean Prometheus uses, which stays finite where a plain sum would overflow.
pub(super) fn mean(values: impl Iterator<Item = f64>) -> f64 {
    let mut mean: f64 = 0.0;
    let mut count = 0.0;
    for v in values {
        count += 1.0;
        if mean.is_infinite() {
            if v.is_infinite() && (mean > 0.0) != (v > 0.0) {
                mean = f64::NAN;
            }
            continue;
        }
        mean += v / count - mean / count;
    }
    mean
}

/// Welford's population variance.
pub(super) fn variance(values: impl Iterator<Item = f64>) -> f64 {
    let (mut count, mut mean, mut m2) = (0.0, 0.0, 0.0);
    for v in values {
        count += 1.0;
        let delta = v - mean;
        mean += delta / count;
        m2 += delta * (v - mean);
    }
    m2 / count
}
