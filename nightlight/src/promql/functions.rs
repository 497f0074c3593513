//! PromQL's functions, with Prometheus's rules for extrapolation, counter resets, NaN and the
//! metric name (dropped by every function that changes a value).

use rustc_hash::FxHashMap;

use promql_parser::label::MatchOp;
use promql_parser::parser::{Call, Expr};
use time::OffsetDateTime;

use super::{Evaluator, QueryError, Result, Sample, Series, Value, offset_ms};
use crate::labels::{Labels, METRIC_NAME};

/// A function of one series' points in a window; `None` leaves the series out.
type RangeFunction<'a> = dyn Fn(&[(i64, f64)]) -> Option<f64> + 'a;

pub(super) fn call(evaluator: &Evaluator, call: &Call, t: i64) -> Result<Value> {
    let name = call.func.name;
    let args = &call.args.args;
    let arg = |at: usize| -> Result<Value> {
        match args.get(at) {
            Some(expr) => evaluator.eval(expr, t),
            None => Err(QueryError::Execution(format!(
                "{name}: argument {at} is missing"
            ))),
        }
    };
    let vector = |at: usize| -> Result<Vec<Sample>> {
        match arg(at)? {
            Value::Vector(samples) => Ok(samples),
            other => Err(wrong_type(name, "an instant vector", &other)),
        }
    };
    let matrix = |at: usize| -> Result<Vec<Series>> {
        match arg(at)? {
            Value::Matrix(series) => Ok(series),
            other => Err(wrong_type(name, "a range vector", &other)),
        }
    };
    let scalar = |at: usize| -> Result<f64> {
        match arg(at)? {
            Value::Scalar(v) => Ok(v),
            other => Err(wrong_type(name, "a scalar", &other)),
        }
    };
    let string = |at: usize| -> Result<String> {
        match arg(at)? {
            Value::String(s) => Ok(s),
            other => Err(wrong_type(name, "a string", &other)),
        }
    };
    // A range function's window ends at its selector's reference time (after `@`/`offset`).
    let range_info = || -> (i64, i64) {
        match args.first().map(|boxed| boxed.as_ref()) {
            Some(Expr::MatrixSelector(m)) => {
                let reference = evaluator.at_time(&m.vs.at, t) - offset_ms(&m.vs.offset);
                (reference, super::duration_ms(&m.range))
            }
            Some(Expr::Subquery(s)) => {
                let reference = evaluator.at_time(&s.at, t) - offset_ms(&s.offset);
                (reference, super::duration_ms(&s.range))
            }
            _ => (t, 0),
        }
    };
    let over_time = |f: &RangeFunction| -> Result<Value> {
        let mut samples = Vec::new();
        let mut keep = |labels: &Labels, points: &[(i64, f64)]| {
            if let Some(v) = f(points) {
                samples.push(Sample {
                    labels: labels.without_metric_name(),
                    t,
                    v,
                });
            }
        };
        match args.first().map(|boxed| boxed.as_ref()) {
            // The common case, a selector: its windows straight from the loaded samples.
            Some(Expr::MatrixSelector(selector)) => evaluator.windows(selector, t, keep),
            _ => {
                for series in matrix(0)? {
                    keep(&series.labels, &series.points);
                }
            }
        }
        Ok(Value::Vector(samples))
    };
    let math = |f: &dyn Fn(f64) -> f64| -> Result<Value> {
        Ok(Value::Vector(
            vector(0)?
                .into_iter()
                .map(|s| Sample {
                    labels: s.labels.without_metric_name(),
                    t,
                    v: f(s.v),
                })
                .collect(),
        ))
    };
    let date = |f: &dyn Fn(OffsetDateTime) -> f64| -> Result<Value> {
        if args.is_empty() {
            return Ok(Value::Vector(vec![Sample {
                labels: Labels::default(),
                t,
                v: f(datetime(t as f64 / 1000.0)),
            }]));
        }
        math(&|v| f(datetime(v)))
    };

    match name {
        "rate" | "increase" | "delta" => {
            let (reference, range) = range_info();
            let counter = name != "delta";
            let per_second = name == "rate";
            over_time(&|points| {
                extrapolated_rate(points, reference - range, reference, counter, per_second)
            })
        }
        "irate" | "idelta" => over_time(&|points| instant_rate(points, name == "irate")),
        "deriv" => over_time(&|points| {
            (points.len() >= 2).then(|| linear_regression(points, points[0].0).0)
        }),
        "predict_linear" => {
            let ahead = scalar(1)?;
            over_time(&|points| {
                (points.len() >= 2).then(|| {
                    let (slope, intercept) = linear_regression(points, t);
                    slope * ahead + intercept
                })
            })
        }
        "holt_winters" | "double_exponential_smoothing" => {
            let (sf, tf) = (scalar(1)?, scalar(2)?);
            if !(sf > 0.0 && sf < 1.0 && tf > 0.0 && tf < 1.0) {
                return Err(QueryError::Execution(format!(
                    "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf}; invalid trend factor. Expected: 0 < tf < 1, got: {tf}"
                )));
            }
            over_time(&|points| holt_winters(points, sf, tf))
        }
        "resets" => {
            over_time(&|points| Some(points.windows(2).filter(|w| w[1].1 < w[0].1).count() as f64))
        }
        "changes" => over_time(&|points| {
            Some(
                points
                    .windows(2)
                    .filter(|w| w[1].1 != w[0].1 && !(w[1].1.is_nan() && w[0].1.is_nan()))
                    .count() as f64,
            )
        }),
        "avg_over_time" => {
            over_time(&|points| Some(super::aggregate::mean(points.iter().map(|p| p.1))))
        }
        "sum_over_time" => over_time(&|points| Some(kahan_sum(points.iter().map(|p| p.1)))),
        "count_over_time" => over_time(&|points| Some(points.len() as f64)),
        "min_over_time" => over_time(&|points| {
            Some(points.iter().fold(
                f64::NAN,
                |acc, p| if acc.is_nan() || p.1 < acc { p.1 } else { acc },
            ))
        }),
        "max_over_time" => over_time(&|points| {
            Some(points.iter().fold(
                f64::NAN,
                |acc, p| if acc.is_nan() || p.1 > acc { p.1 } else { acc },
            ))
        }),
        "stddev_over_time" => {
            over_time(&|points| Some(super::aggregate::variance(points.iter().map(|p| p.1)).sqrt()))
        }
        "stdvar_over_time" => {
            over_time(&|points| Some(super::aggregate::variance(points.iter().map(|p| p.1))))
        }
        "present_over_time" => over_time(&|_| Some(1.0)),
        "quantile_over_time" => {
            let q = scalar(0)?;
            let series = matrix(1)?;
            Ok(Value::Vector(
                series
                    .into_iter()
                    .map(|s| {
                        let mut values: Vec<f64> = s.points.iter().map(|p| p.1).collect();
                        Sample {
                            labels: s.labels.without_metric_name(),
                            t,
                            v: quantile(q, &mut values),
                        }
                    })
                    .collect(),
            ))
        }
        // The one *_over_time function that keeps the metric name in Prometheus 2.x.
        "last_over_time" => Ok(Value::Vector(
            matrix(0)?
                .into_iter()
                .filter_map(|s| {
                    s.points.last().map(|p| Sample {
                        labels: s.labels,
                        t,
                        v: p.1,
                    })
                })
                .collect(),
        )),
        "absent_over_time" => {
            let present = !matrix(0)?.is_empty();
            Ok(Value::Vector(if present {
                Vec::new()
            } else {
                vec![Sample {
                    labels: absent_labels(args.first().map(|b| b.as_ref())),
                    t,
                    v: 1.0,
                }]
            }))
        }
        "absent" => {
            let present = !vector(0)?.is_empty();
            Ok(Value::Vector(if present {
                Vec::new()
            } else {
                vec![Sample {
                    labels: absent_labels(args.first().map(|b| b.as_ref())),
                    t,
                    v: 1.0,
                }]
            }))
        }
        "abs" => math(&f64::abs),
        "ceil" => math(&f64::ceil),
        "floor" => math(&f64::floor),
        "exp" => math(&f64::exp),
        "sqrt" => math(&f64::sqrt),
        "ln" => math(&f64::ln),
        "log2" => math(&f64::log2),
        "log10" => math(&f64::log10),
        "sgn" => math(&|v| {
            if v > 0.0 {
                1.0
            } else if v < 0.0 {
                -1.0
            } else {
                v
            }
        }),
        "sin" => math(&f64::sin),
        "cos" => math(&f64::cos),
        "tan" => math(&f64::tan),
        "asin" => math(&f64::asin),
        "acos" => math(&f64::acos),
        "atan" => math(&f64::atan),
        "sinh" => math(&f64::sinh),
        "cosh" => math(&f64::cosh),
        "tanh" => math(&f64::tanh),
        "asinh" => math(&f64::asinh),
        "acosh" => math(&f64::acosh),
        "atanh" => math(&f64::atanh),
        "deg" => math(&f64::to_degrees),
        "rad" => math(&f64::to_radians),
        "pi" => Ok(Value::Scalar(std::f64::consts::PI)),
        "round" => {
            let to_nearest = if args.len() > 1 { scalar(1)? } else { 1.0 };
            // Go's math.Floor(v*inverse+0.5)/inverse: halves round up, also below zero.
            let inverse = 1.0 / to_nearest;
            math(&|v| (v * inverse + 0.5).floor() / inverse)
        }
        "clamp" => {
            let (min, max) = (scalar(1)?, scalar(2)?);
            if max < min {
                return Ok(Value::Vector(Vec::new()));
            }
            math(&|v| v.max(min).min(max))
        }
        "clamp_min" => {
            let min = scalar(1)?;
            math(&|v| v.max(min))
        }
        "clamp_max" => {
            let max = scalar(1)?;
            math(&|v| v.min(max))
        }
        "timestamp" => Ok(Value::Vector(
            vector(0)?
                .into_iter()
                .map(|s| Sample {
                    labels: s.labels.without_metric_name(),
                    t,
                    v: s.t as f64 / 1000.0,
                })
                .collect(),
        )),
        "time" => Ok(Value::Scalar(t as f64 / 1000.0)),
        "vector" => Ok(Value::Vector(vec![Sample {
            labels: Labels::default(),
            t,
            v: scalar(0)?,
        }])),
        "scalar" => {
            let samples = vector(0)?;
            Ok(Value::Scalar(if samples.len() == 1 {
                samples[0].v
            } else {
                f64::NAN
            }))
        }
        "sort" | "sort_desc" => {
            let mut samples = vector(0)?;
            let descending = name == "sort_desc";
            // NaN sorts last either way, as in Prometheus.
            samples.sort_by(|a, b| match (a.v.is_nan(), b.v.is_nan()) {
                (true, true) => std::cmp::Ordering::Equal,
                (true, false) => std::cmp::Ordering::Greater,
                (false, true) => std::cmp::Ordering::Less,
                _ if descending => b.v.partial_cmp(&a.v).unwrap_or(std::cmp::Ordering::Equal),
                _ => a.v.partial_cmp(&b.v).unwrap_or(std::cmp::Ordering::Equal),
            });
            Ok(Value::Vector(samples))
        }
        "label_replace" => {
            let samples = vector(0)?;
            let (dst, replacement, src, pattern) = (string(1)?, string(2)?, string(3)?, string(4)?);
            let regex = regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|err| {
                QueryError::Execution(format!(
                    "invalid regular expression in label_replace(): {pattern}: {err}"
                ))
            })?;
            if !crate::labels::is_label_name(&dst) {
                return Err(QueryError::Execution(format!(
                    "invalid destination label name in label_replace(): {dst}"
                )));
            }
            let mut out = Vec::with_capacity(samples.len());
            for sample in samples {
                let value = sample.labels.get(&src).unwrap_or("");
                let labels = match regex.captures(value) {
                    Some(captures) => {
                        let mut expanded = String::new();
                        captures.expand(&go_template(&replacement), &mut expanded);
                        let mut builder = sample.labels.builder();
                        builder.set(dst.clone(), expanded);
                        builder.build()
                    }
                    None => sample.labels,
                };
                out.push(Sample { labels, ..sample });
            }
            Ok(Value::Vector(out))
        }
        "label_join" => {
            let samples = vector(0)?;
            let (dst, separator) = (string(1)?, string(2)?);
            let mut sources = Vec::new();
            for at in 3..args.len() {
                sources.push(string(at)?);
            }
            if !crate::labels::is_label_name(&dst) {
                return Err(QueryError::Execution(format!(
                    "invalid destination label name in label_join(): {dst}"
                )));
            }
            let mut out = Vec::with_capacity(samples.len());
            for sample in samples {
                let joined: Vec<&str> = sources
                    .iter()
                    .map(|source| sample.labels.get(source).unwrap_or(""))
                    .collect();
                let mut builder = sample.labels.builder();
                builder.set(dst.clone(), joined.join(&separator));
                out.push(Sample {
                    labels: builder.build(),
                    ..sample
                });
            }
            Ok(Value::Vector(out))
        }
        "histogram_quantile" => {
            let q = scalar(0)?;
            Ok(Value::Vector(histogram_quantile(q, vector(1)?, t)))
        }
        "day_of_month" => date(&|d| f64::from(d.day())),
        "day_of_week" => date(&|d| f64::from(d.weekday().number_days_from_sunday())),
        "day_of_year" => date(&|d| f64::from(d.ordinal())),
        "days_in_month" => date(&|d| f64::from(d.month().length(d.year()))),
        "hour" => date(&|d| f64::from(d.hour())),
        "minute" => date(&|d| f64::from(d.minute())),
        "month" => date(&|d| f64::from(u8::from(d.month()))),
        "year" => date(&|d| f64::from(d.year())),
        other => Err(QueryError::Execution(format!(
            "function {other}() is not supported by nightlight yet"
        ))),
    }
}

fn wrong_type(function: &str, expected: &str, got: &Value) -> QueryError {
    QueryError::Execution(format!(
        "{function}: expected {expected}, got a {}",
        got.type_name()
    ))
}

fn datetime(seconds: f64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(seconds.floor() as i64)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Go's `$1`/`${name}` templates are Rust regex's too, except that Go reads `$1x` as the
/// group named `1x`; both leave an unknown group empty.
fn go_template(replacement: &str) -> String {
    replacement.to_owned()
}

/// `absent()`'s labels: the selector's equality matchers (a label matched twice is left out).
fn absent_labels(arg: Option<&Expr>) -> Labels {
    let selector = match arg {
        Some(Expr::VectorSelector(vs)) => vs,
        Some(Expr::MatrixSelector(ms)) => &ms.vs,
        _ => return Labels::default(),
    };
    let mut counts: FxHashMap<&str, usize> = FxHashMap::default();
    for matcher in &selector.matchers.matchers {
        *counts.entry(matcher.name.as_str()).or_default() += 1;
    }
    let pairs = selector.matchers.matchers.iter().filter(|m| {
        m.op == MatchOp::Equal && m.name != METRIC_NAME && counts[m.name.as_str()] == 1
    });
    Labels::from_pairs(pairs.map(|m| (m.name.clone(), m.value.clone())))
}

/// Prometheus's extrapolated rate: the change over the samples in the window, extended to the
/// window's edges unless the series starts or ends well inside it, and never below zero for a
/// counter.
fn extrapolated_rate(
    points: &[(i64, f64)],
    range_start: i64,
    range_end: i64,
    counter: bool,
    per_second: bool,
) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let (first, last) = (points[0], points[points.len() - 1]);
    let mut result = last.1 - first.1;
    if counter {
        for pair in points.windows(2) {
            if pair[1].1 < pair[0].1 {
                result += pair[0].1;
            }
        }
    }
    let mut to_start = (first.0 - range_start) as f64 / 1000.0;
    let to_end = (range_end - last.0) as f64 / 1000.0;
    let sampled = (last.0 - first.0) as f64 / 1000.0;
    let average_gap = sampled / (points.len() - 1) as f64;
    if counter && result > 0.0 && first.1 >= 0.0 {
        let to_zero = sampled * (first.1 / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    let threshold = average_gap * 1.1;
    let mut interval = sampled;
    interval += if to_start < threshold {
        to_start
    } else {
        average_gap / 2.0
    };
    interval += if to_end < threshold {
        to_end
    } else {
        average_gap / 2.0
    };
    result *= interval / sampled;
    if per_second {
        result /= (range_end - range_start) as f64 / 1000.0;
    }
    Some(result)
}

fn instant_rate(points: &[(i64, f64)], is_rate: bool) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let (previous, last) = (points[points.len() - 2], points[points.len() - 1]);
    let mut result = if is_rate && last.1 < previous.1 {
        last.1
    } else {
        last.1 - previous.1
    };
    let interval = last.0 - previous.0;
    if interval == 0 {
        return None;
    }
    if is_rate {
        result /= interval as f64 / 1000.0;
    }
    Some(result)
}

/// Least-squares slope and intercept (at `intercept_time`), with Kahan summation as
/// Prometheus does.
fn linear_regression(points: &[(i64, f64)], intercept_time: i64) -> (f64, f64) {
    let first = points[0].1;
    if points.iter().all(|p| p.1 == first) {
        if first.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, first);
    }
    let n = points.len() as f64;
    let (mut sum_x, mut c_x) = (0.0, 0.0);
    let (mut sum_y, mut c_y) = (0.0, 0.0);
    let (mut sum_xy, mut c_xy) = (0.0, 0.0);
    let (mut sum_x2, mut c_x2) = (0.0, 0.0);
    for &(t, v) in points {
        let x = (t - intercept_time) as f64 / 1000.0;
        (sum_x, c_x) = kahan_add(x, sum_x, c_x);
        (sum_y, c_y) = kahan_add(v, sum_y, c_y);
        (sum_xy, c_xy) = kahan_add(x * v, sum_xy, c_xy);
        (sum_x2, c_x2) = kahan_add(x * x, sum_x2, c_x2);
    }
    let (sum_x, sum_y, sum_xy, sum_x2) = (sum_x + c_x, sum_y + c_y, sum_xy + c_xy, sum_x2 + c_x2);
    let covariance = sum_xy - sum_x * sum_y / n;
    let variance = sum_x2 - sum_x * sum_x / n;
    let slope = covariance / variance;
    (slope, sum_y / n - slope * sum_x / n)
}

fn holt_winters(points: &[(i64, f64)], sf: f64, tf: f64) -> Option<f64> {
    if points.len() < 2 {
        return None;
    }
    let mut smoothed = points[0].1;
    let mut trend = points[1].1 - points[0].1;
    let mut previous = smoothed;
    for (at, point) in points.iter().enumerate().skip(1) {
        if at > 1 {
            trend = tf * (smoothed - previous) + (1.0 - tf) * trend;
        }
        previous = smoothed;
        smoothed = sf * point.1 + (1.0 - sf) * (previous + trend);
    }
    Some(smoothed)
}

fn kahan_add(value: f64, sum: f64, compensation: f64) -> (f64, f64) {
    let total = sum + value;
    let compensation = if total.is_infinite() {
        0.0
    } else if sum.abs() >= value.abs() {
        compensation + ((sum - total) + value)
    } else {
        compensation + ((value - total) + sum)
    };
    (total, compensation)
}

fn kahan_sum(values: impl Iterator<Item = f64>) -> f64 {
    let (mut sum, mut compensation) = (0.0, 0.0);
    for v in values {
        (sum, compensation) = kahan_add(v, sum, compensation);
    }
    if sum.is_infinite() {
        sum
    } else {
        sum + compensation
    }
}

/// The φ-quantile with linear interpolation between the closest ranks (sorts `values`).
pub(super) fn quantile(q: f64, values: &mut [f64]) -> f64 {
    if values.is_empty() || q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    values.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let n = values.len() as f64;
    let rank = q * (n - 1.0);
    let lower = rank.floor().max(0.0);
    let upper = (lower + 1.0).min(n - 1.0);
    let weight = rank - rank.floor();
    values[lower as usize] * (1.0 - weight) + values[upper as usize] * weight
}

/// The classic-histogram quantile over `_bucket` series grouped by their labels without `le`.
fn histogram_quantile(q: f64, buckets: Vec<Sample>, t: i64) -> Vec<Sample> {
    let mut order: Vec<Labels> = Vec::new();
    let mut groups: FxHashMap<Labels, Vec<(f64, f64)>> = FxHashMap::default();
    for sample in buckets {
        let Some(bound) = sample.labels.get("le").and_then(parse_bound) else {
            continue;
        };
        let mut key = sample.labels.without_metric_name().builder();
        key.remove("le");
        let key = key.build();
        groups
            .entry(key.clone())
            .or_insert_with(|| {
                order.push(key);
                Vec::new()
            })
            .push((bound, sample.v));
    }
    order
        .into_iter()
        .map(|labels| {
            let mut group = groups.remove(&labels).unwrap_or_default();
            Sample {
                labels,
                t,
                v: bucket_quantile(q, &mut group),
            }
        })
        .collect()
}

fn parse_bound(text: &str) -> Option<f64> {
    match text.trim() {
        "+Inf" | "Inf" | "+inf" | "inf" => Some(f64::INFINITY),
        "-Inf" | "-inf" => Some(f64::NEG_INFINITY),
        other => other.parse().ok(),
    }
}

fn bucket_quantile(q: f64, buckets: &mut Vec<(f64, f64)>) -> f64 {
    if q.is_nan() {
        return f64::NAN;
    }
    if q < 0.0 {
        return f64::NEG_INFINITY;
    }
    if q > 1.0 {
        return f64::INFINITY;
    }
    buckets.sort_by(|a, b| a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal));
    if buckets.last().is_none_or(|b| b.0 != f64::INFINITY) {
        return f64::NAN;
    }
    // Buckets with the same bound (e.g. "1" and "1.0") are one bucket.
    buckets.dedup_by(|later, earlier| {
        if later.0 == earlier.0 {
            earlier.1 += later.1;
            true
        } else {
            false
        }
    });
    if buckets.len() < 2 {
        return f64::NAN;
    }
    // Counts must not decrease (scrapes of buckets are not atomic).
    let mut max = f64::NEG_INFINITY;
    for bucket in buckets.iter_mut() {
        if bucket.1 > max {
            max = bucket.1;
        } else {
            bucket.1 = max;
        }
    }
    let total = buckets[buckets.len() - 1].1;
    if total == 0.0 || total.is_nan() {
        return f64::NAN;
    }
    let rank = q * total;
    let at = buckets.partition_point(|b| b.1 < rank);
    if at == buckets.len() - 1 {
        return buckets[buckets.len() - 2].0;
    }
    if at == 0 && buckets[0].0 <= 0.0 {
        return buckets[0].0;
    }
    let (start, below) = if at == 0 {
        (0.0, 0.0)
    } else {
        (buckets[at - 1].0, buckets[at - 1].1)
    };
    let end = buckets[at].0;
    let count = buckets[at].1 - below;
    start + (end - start) * ((rank - below) / count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_extrapolates_like_prometheus() {
        // A counter rising 1/s sampled every 15 s over a 60 s window ending 5 s after the last.
        let points: Vec<(i64, f64)> = (0..4)
            .map(|i| (10_000 + i * 15_000, 10.0 + 15.0 * i as f64))
            .collect();
        let rate = extrapolated_rate(&points, 0, 60_000, true, true).unwrap();
        // 45 s sampled; +7.5 s (half a gap) at the start as 10 s > 16.5 s? no: 10 < 16.5 → +10;
        // 5 s at the end → 45 + 10 + 5 = 60 s of a 45-unit rise → 60 units / 60 s.
        assert!((rate - 1.0).abs() < 1e-12, "{rate}");
        // A reset adds the value before it.
        let reset = [(0, 5.0), (15_000, 1.0)];
        let increase = extrapolated_rate(&reset, 0, 15_000, true, false).unwrap();
        assert!((increase - 1.0).abs() < 1e-12, "{increase}");
    }

    #[test]
    fn quantiles_interpolate_between_ranks() {
        assert_eq!(quantile(0.5, &mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert_eq!(quantile(2.0, &mut [1.0]), f64::INFINITY);
        let mut buckets = vec![(0.1, 1.0), (0.5, 3.0), (f64::INFINITY, 4.0), (1.0, 4.0)];
        let median = bucket_quantile(0.5, &mut buckets);
        assert!((median - 0.3).abs() < 1e-12, "{median}");
        assert!(bucket_quantile(0.5, &mut vec![(1.0, 1.0)]).is_nan());
    }
}
