//! PromQL evaluation over the store, with Prometheus 2.x semantics (the version Debian ships,
//! which the differential test compares against): range selectors include their left edge,
//! instant selectors look back `lookback_delta` (5 minutes), stale markers end a series.
//!
//! Queries are parsed by `promql-parser`. Every selector's samples for the whole query are
//! loaded once up front (so `max_samples` is checked before any work), then the tree is
//! evaluated at each step of the query, which keeps every operator a plain function of one
//! instant.

mod aggregate;
mod binary;
mod functions;

use rustc_hash::{FxHashMap, FxHashSet};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use promql_parser::label::{MatchOp, Matcher};
use promql_parser::parser::{
    self, AtModifier, Expr, MatrixSelector, Offset, SubqueryExpr, VectorSelector, value::ValueType,
};

use crate::chunk::is_stale_nan;
use crate::labels::{Labels, METRIC_NAME};
use crate::storage::{SeriesData, Storage, StorageError};

/// One element of an instant vector. `t` is the evaluation time, except straight out of a
/// selector where it is the sample's own timestamp (which `timestamp()` returns).
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub labels: Labels,
    pub t: i64,
    pub v: f64,
}

/// A series of points: an element of a range vector or of a range query's result.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Labels,
    pub points: Vec<(i64, f64)>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Scalar(f64),
    String(String),
    Vector(Vec<Sample>),
    Matrix(Vec<Series>),
}

impl Value {
    fn type_name(&self) -> &'static str {
        match self {
            Value::Scalar(_) => "scalar",
            Value::String(_) => "string",
            Value::Vector(_) => "vector",
            Value::Matrix(_) => "matrix",
        }
    }
}

/// Why a query failed, in the classes the Prometheus API reports.
#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    /// The query does not parse or is ill-typed (`bad_data`, 400).
    #[error("{0}")]
    BadData(String),
    /// It parsed but cannot be evaluated on this data (`execution`, 422).
    #[error("{0}")]
    Execution(String),
    #[error("query timed out in expression evaluation")]
    Timeout,
    #[error(
        "query processing would load too many samples into memory in query execution (limit {0}: standalone.query.max_samples)"
    )]
    TooManySamples(usize),
    #[error("{0}")]
    Storage(#[from] StorageError),
}

type Result<T> = std::result::Result<T, QueryError>;

#[derive(Debug, Clone)]
pub struct EngineOptions {
    pub lookback_delta_ms: i64,
    pub max_samples: usize,
    pub timeout: Duration,
    /// Subqueries without a step use this (Prometheus's evaluation_interval, 1 minute).
    pub default_subquery_step_ms: i64,
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            lookback_delta_ms: 5 * 60 * 1000,
            max_samples: 50_000_000,
            timeout: Duration::from_secs(120),
            default_subquery_step_ms: 60 * 1000,
        }
    }
}

pub struct Engine {
    storage: Arc<Storage>,
    options: EngineOptions,
}

impl Engine {
    pub fn new(storage: Arc<Storage>, options: EngineOptions) -> Self {
        Self { storage, options }
    }

    pub fn parse(query: &str) -> Result<Expr> {
        register_legacy_functions();
        parser::parse(query)
            .map_err(|err| QueryError::BadData(format!("invalid parameter \"query\": {err}")))
    }

    /// Evaluates `query` at `t` (ms).
    pub fn instant(&self, query: &str, t: i64, timeout: Option<Duration>) -> Result<Value> {
        self.instant_expr(&Self::parse(query)?, t, timeout)
    }

    /// Evaluates a parsed expression at `t` (ms), as rules do on every evaluation.
    pub fn instant_expr(&self, expr: &Expr, t: i64, timeout: Option<Duration>) -> Result<Value> {
        let evaluator = self.prepare(expr, t, t, 0, timeout)?;
        let value = evaluator.eval(expr, t)?;
        Ok(match value {
            // Selectors carry sample times; the API reports the evaluation time.
            Value::Vector(samples) => Value::Vector(
                samples
                    .into_iter()
                    .map(|sample| Sample { t, ..sample })
                    .collect(),
            ),
            other => other,
        })
    }

    /// Evaluates `query` at every `step` from `start` to `end` (ms), one series per label set.
    pub fn range(
        &self,
        query: &str,
        start: i64,
        end: i64,
        step: i64,
        timeout: Option<Duration>,
    ) -> Result<Vec<Series>> {
        let expr = Self::parse(query)?;
        match expr.value_type() {
            ValueType::Scalar | ValueType::Vector => {}
            other => {
                return Err(QueryError::BadData(format!(
                    "invalid expression type \"{}\" for range query, must be Scalar or instant Vector",
                    match other {
                        ValueType::Matrix => "range vector",
                        ValueType::String => "string",
                        _ => "unknown",
                    }
                )));
            }
        }
        let evaluator = self.prepare(&expr, start, end, step, timeout)?;
        evaluator.eval_steps(&expr, start, end, step, "range query step")
    }

    /// Loads every selector's samples for evaluations between `start` and `end`.
    fn prepare(
        &self,
        expr: &Expr,
        start: i64,
        end: i64,
        step: i64,
        timeout: Option<Duration>,
    ) -> Result<Evaluator> {
        let timeout = timeout.map_or(self.options.timeout, |t| t.min(self.options.timeout));
        let mut evaluator = Evaluator {
            data: FxHashMap::default(),
            start,
            end,
            lookback: self.options.lookback_delta_ms,
            subquery_step: if step > 0 {
                step
            } else {
                self.options.default_subquery_step_ms
            },
            deadline: Instant::now() + timeout,
        };
        let mut needed: FxHashMap<usize, (&VectorSelector, i64, i64)> = FxHashMap::default();
        evaluator.plan(expr, start, end, &mut needed);
        let mut loaded = 0usize;
        for (key, (selector, mint, maxt)) in needed {
            let series = self.select(selector, mint, maxt)?;
            loaded += series.iter().map(|s| s.samples.len()).sum::<usize>();
            if loaded > self.options.max_samples {
                return Err(QueryError::TooManySamples(self.options.max_samples));
            }
            evaluator.check_deadline()?;
            evaluator.data.insert(key, series);
        }
        Ok(evaluator)
    }

    fn select(&self, selector: &VectorSelector, mint: i64, maxt: i64) -> Result<Vec<SeriesData>> {
        let mut base: Vec<Matcher> = selector.matchers.matchers.clone();
        if let Some(name) = &selector.name {
            base.push(Matcher::new(MatchOp::Equal, METRIC_NAME, name));
        }
        if selector.matchers.or_matchers.is_empty() {
            return Ok(self.storage.select(&base, mint, maxt)?);
        }
        // `{a="1" or b="2"}`: the union of each alternative.
        let mut seen: FxHashMap<Labels, SeriesData> = FxHashMap::default();
        for alternative in &selector.matchers.or_matchers {
            let mut matchers = base.clone();
            matchers.extend(alternative.iter().cloned());
            for series in self.storage.select(&matchers, mint, maxt)? {
                seen.entry(series.labels.clone()).or_insert(series);
            }
        }
        let mut series: Vec<SeriesData> = seen.into_values().collect();
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(series)
    }
}

/// Prometheus 2.x's name for `double_exponential_smoothing`, which the parser knows only by
/// its new name.
fn register_legacy_functions() {
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    REGISTERED.call_once(|| {
        let holt_winters = parser::Function::new(
            "holt_winters",
            vec![ValueType::Matrix, ValueType::Scalar, ValueType::Scalar],
            0,
            ValueType::Vector,
            false,
        );
        if let Err(err) = parser::register_extra_functions(vec![holt_winters]) {
            tracing::warn!("holt_winters() is unavailable: {err}");
        }
    });
}

/// Prometheus refuses a function's or operator's result that has two elements with one label
/// set (typically after dropping the metric name).
fn check_unique_labels(value: Value) -> Result<Value> {
    if let Value::Vector(samples) = &value
        && samples.len() > 1
    {
        let mut seen = FxHashSet::with_capacity_and_hasher(samples.len(), Default::default());
        if !samples.iter().all(|sample| seen.insert(&sample.labels)) {
            return Err(QueryError::Execution(
                "vector cannot contain metrics with the same labelset".into(),
            ));
        }
    }
    Ok(value)
}

/// A range function over one metric's series gives one element per series, each with that
/// series' labels less the shared name: they cannot collide, and the check (a hash of every
/// element's labels at every step) can be skipped.
fn keeps_series_apart(call: &parser::Call) -> bool {
    let Some(Expr::MatrixSelector(matrix)) = call.args.args.first().map(|arg| arg.as_ref()) else {
        return false;
    };
    let selector = &matrix.vs;
    selector.name.is_some()
        || selector
            .matchers
            .matchers
            .iter()
            .any(|m| m.name == METRIC_NAME && matches!(m.op, MatchOp::Equal))
}

fn selector_key(selector: &VectorSelector) -> usize {
    std::ptr::from_ref(selector) as usize
}

fn duration_ms(duration: &Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

fn offset_ms(offset: &Option<Offset>) -> i64 {
    match offset {
        None => 0,
        Some(Offset::Pos(d)) => duration_ms(d),
        Some(Offset::Neg(d)) => -duration_ms(d),
    }
}

fn system_time_ms(time: &SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => duration_ms(&after),
        Err(before) => -duration_ms(&before.duration()),
    }
}

struct Evaluator {
    /// Samples per selector node (keyed by its address in the tree).
    data: FxHashMap<usize, Vec<SeriesData>>,
    start: i64,
    end: i64,
    lookback: i64,
    subquery_step: i64,
    deadline: Instant,
}

impl Evaluator {
    fn check_deadline(&self) -> Result<()> {
        if Instant::now() > self.deadline {
            return Err(QueryError::Timeout);
        }
        Ok(())
    }

    /// The time a node with this `@` is evaluated at, when evaluated at `t`.
    fn at_time(&self, at: &Option<AtModifier>, t: i64) -> i64 {
        match at {
            None => t,
            Some(AtModifier::Start) => self.start,
            Some(AtModifier::End) => self.end,
            Some(AtModifier::At(time)) => system_time_ms(time),
        }
    }

    /// Records the time range each selector is read over, when the node is evaluated at
    /// times between `from` and `to`.
    fn plan<'e>(
        &self,
        expr: &'e Expr,
        from: i64,
        to: i64,
        needed: &mut FxHashMap<usize, (&'e VectorSelector, i64, i64)>,
    ) {
        let mut need = |selector: &'e VectorSelector, back: i64| {
            let (from, to) = match &selector.at {
                None => (from, to),
                at => {
                    let t = self.at_time(at, from);
                    (t, t)
                }
            };
            let offset = offset_ms(&selector.offset);
            let (mint, maxt) = (from - offset - back, to - offset);
            let entry = needed
                .entry(selector_key(selector))
                .or_insert((selector, mint, maxt));
            entry.1 = entry.1.min(mint);
            entry.2 = entry.2.max(maxt);
        };
        match expr {
            Expr::VectorSelector(selector) => need(selector, self.lookback),
            Expr::MatrixSelector(MatrixSelector { vs, range }) => need(vs, duration_ms(range)),
            Expr::Subquery(subquery) => {
                let (from, to) = match &subquery.at {
                    None => (from, to),
                    at => {
                        let t = self.at_time(at, from);
                        (t, t)
                    }
                };
                let offset = offset_ms(&subquery.offset);
                let range = duration_ms(&subquery.range);
                self.plan(&subquery.expr, from - offset - range, to - offset, needed);
            }
            Expr::Aggregate(aggregate) => {
                self.plan(&aggregate.expr, from, to, needed);
                if let Some(param) = &aggregate.param {
                    self.plan(param, from, to, needed);
                }
            }
            Expr::Unary(unary) => self.plan(&unary.expr, from, to, needed),
            Expr::Binary(binary) => {
                self.plan(&binary.lhs, from, to, needed);
                self.plan(&binary.rhs, from, to, needed);
            }
            Expr::Paren(paren) => self.plan(&paren.expr, from, to, needed),
            Expr::Call(call) => {
                for arg in &call.args.args {
                    self.plan(arg, from, to, needed);
                }
            }
            Expr::NumberLiteral(_) | Expr::StringLiteral(_) | Expr::Extension(_) => {}
        }
    }

    fn eval(&self, expr: &Expr, t: i64) -> Result<Value> {
        match expr {
            Expr::NumberLiteral(number) => Ok(Value::Scalar(number.val)),
            Expr::StringLiteral(string) => Ok(Value::String(string.val.clone())),
            Expr::Paren(paren) => self.eval(&paren.expr, t),
            Expr::VectorSelector(selector) => Ok(Value::Vector(self.instant_vector(selector, t))),
            Expr::MatrixSelector(matrix) => Ok(Value::Matrix(self.range_vector(matrix, t))),
            Expr::Subquery(subquery) => self.subquery(subquery, t).map(Value::Matrix),
            Expr::Unary(unary) => match self.eval(&unary.expr, t)? {
                Value::Scalar(v) => Ok(Value::Scalar(-v)),
                Value::Vector(samples) => Ok(Value::Vector(
                    samples
                        .into_iter()
                        .map(|s| Sample {
                            labels: s.labels.without_metric_name(),
                            t,
                            v: -s.v,
                        })
                        .collect(),
                )),
                other => Err(QueryError::Execution(format!(
                    "unary minus on a {}",
                    other.type_name()
                ))),
            },
            Expr::Binary(binary) => {
                let lhs = self.eval(&binary.lhs, t)?;
                let rhs = self.eval(&binary.rhs, t)?;
                binary::evaluate(binary, lhs, rhs, t).and_then(check_unique_labels)
            }
            Expr::Aggregate(aggregate) => {
                let param = match &aggregate.param {
                    Some(param) => Some(self.eval(param, t)?),
                    None => None,
                };
                let Value::Vector(input) = self.eval(&aggregate.expr, t)? else {
                    return Err(QueryError::Execution(
                        "aggregation over something other than an instant vector".into(),
                    ));
                };
                aggregate::evaluate(aggregate, param, input, t)
            }
            Expr::Call(call) => {
                let value = functions::call(self, call, t)?;
                if keeps_series_apart(call) {
                    Ok(value)
                } else {
                    check_unique_labels(value)
                }
            }
            Expr::Extension(_) => Err(QueryError::Execution(
                "extension expressions are not supported".into(),
            )),
        }
    }

    fn selected(&self, selector: &VectorSelector) -> &[SeriesData] {
        self.data
            .get(&selector_key(selector))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The newest sample of each series at most `lookback` old, unless it is a stale marker.
    fn instant_vector(&self, selector: &VectorSelector, t: i64) -> Vec<Sample> {
        let reference = self.at_time(&selector.at, t) - offset_ms(&selector.offset);
        let oldest = reference - self.lookback;
        self.selected(selector)
            .iter()
            .filter_map(|series| {
                let end = seek(&series.samples, reference, true);
                let &(st, v) = series.samples[..end].last()?;
                (st >= oldest && !is_stale_nan(v)).then(|| Sample {
                    labels: series.labels.clone(),
                    t: st,
                    v,
                })
            })
            .collect()
    }

    /// Each series' samples in `[reference - range, reference]`, stale markers left out.
    fn range_vector(&self, matrix: &MatrixSelector, t: i64) -> Vec<Series> {
        let mut series = Vec::new();
        self.windows(matrix, t, |labels, points| {
            series.push(Series {
                labels: labels.clone(),
                points: points.to_vec(),
            })
        });
        series
    }

    /// Calls `each` with every series' window of [`Evaluator::range_vector`], borrowed from
    /// the loaded samples (copied only when a stale marker has to be left out): range
    /// functions read a window once, so they need no copy of it.
    fn windows(
        &self,
        matrix: &MatrixSelector,
        t: i64,
        mut each: impl FnMut(&Labels, &[(i64, f64)]),
    ) {
        let selector = &matrix.vs;
        let reference = self.at_time(&selector.at, t) - offset_ms(&selector.offset);
        let oldest = reference - duration_ms(&matrix.range);
        let mut without_stale = Vec::new();
        for series in self.selected(selector) {
            let from = seek(&series.samples, oldest, false);
            let to = from + seek(&series.samples[from..], reference, true);
            let window = &series.samples[from..to];
            if window.iter().any(|(_, v)| is_stale_nan(*v)) {
                without_stale.clear();
                without_stale.extend(window.iter().copied().filter(|(_, v)| !is_stale_nan(*v)));
                if !without_stale.is_empty() {
                    each(&series.labels, &without_stale);
                }
            } else if !window.is_empty() {
                each(&series.labels, window);
            }
        }
    }

    /// The inner expression at every multiple of the step in `[reference - range, reference]`.
    fn subquery(&self, subquery: &SubqueryExpr, t: i64) -> Result<Vec<Series>> {
        let reference = self.at_time(&subquery.at, t) - offset_ms(&subquery.offset);
        let step = subquery
            .step
            .as_ref()
            .map(duration_ms)
            .filter(|step| *step > 0)
            .unwrap_or(self.subquery_step);
        let oldest = reference - duration_ms(&subquery.range);
        let mut at = oldest.div_euclid(step) * step;
        if at < oldest {
            at += step;
        }
        self.eval_steps(&subquery.expr, at, reference, step, "subquery")
    }

    /// `expr` at every `step` from `from` to `to`, gathered into one series per label set.
    fn eval_steps(
        &self,
        expr: &Expr,
        from: i64,
        to: i64,
        step: i64,
        what: &str,
    ) -> Result<Vec<Series>> {
        let mut by_labels: FxHashMap<Labels, Vec<(i64, f64)>> = FxHashMap::default();
        let mut t = from;
        while t <= to {
            self.check_deadline()?;
            match self.eval(expr, t)? {
                Value::Scalar(v) => by_labels.entry(Labels::default()).or_default().push((t, v)),
                Value::Vector(samples) => {
                    for sample in samples {
                        by_labels
                            .entry(sample.labels)
                            .or_default()
                            .push((t, sample.v));
                    }
                }
                other => {
                    return Err(QueryError::Execution(format!(
                        "{what} returned a {}",
                        other.type_name()
                    )));
                }
            }
            t += step;
        }
        let mut series: Vec<Series> = by_labels
            .into_iter()
            .map(|(labels, points)| Series { labels, points })
            .collect();
        series.sort_by(|a, b| a.labels.cmp(&b.labels));
        Ok(series)
    }
}

/// How many of time-sorted `samples` are before `t` (or at it too, when `inclusive`): what
/// `partition_point` finds, but starting where `t` falls if the samples are evenly spaced
/// (scrapes nearly are) and galloping from there, so that a query step costs a few
/// comparisons per series instead of a binary search over all of its samples.
fn seek(samples: &[(i64, f64)], t: i64, inclusive: bool) -> usize {
    let before = |st: i64| if inclusive { st <= t } else { st < t };
    let n = samples.len();
    if n == 0 || !before(samples[0].0) {
        return 0;
    }
    if before(samples[n - 1].0) {
        return n;
    }
    // From here on samples[low] is before and samples[high] is not.
    let (mut low, mut high) = (0, n - 1);
    let (first, last) = (samples[0].0, samples[n - 1].0);
    let guess = ((i128::from(t - first) * (n - 1) as i128) / i128::from(last - first).max(1))
        .clamp(1, (n - 1) as i128) as usize;
    let mut step = 1;
    if before(samples[guess].0) {
        low = guess;
        while low + step < high && before(samples[low + step].0) {
            low += step;
            step *= 2;
        }
        high = high.min(low + step);
    } else {
        high = guess;
        while high - low > step && !before(samples[high - step].0) {
            high -= step;
            step *= 2;
        }
        low = low.max(high.saturating_sub(step));
    }
    while high - low > 1 {
        let mid = low + (high - low) / 2;
        if before(samples[mid].0) {
            low = mid;
        } else {
            high = mid;
        }
    }
    high
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`, the form Prometheus prints values in.
pub fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        v.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::seek;

    #[test]
    fn seek_finds_what_partition_point_finds() {
        // Even, uneven (gaps, bursts) and tiny series, every boundary and beyond both ends.
        let mut shapes: Vec<Vec<i64>> = vec![
            (0..480).map(|i| i * 15_000).collect(),
            vec![5],
            vec![5, 5, 5, 9],
            (0..200)
                .map(|i: i64| i * i * 7 + if i % 13 == 0 { 100_000 * i } else { 0 })
                .collect(),
        ];
        for shape in &mut shapes {
            shape.sort_unstable();
        }
        for times in shapes {
            let samples: Vec<(i64, f64)> = times.iter().map(|&t| (t, 0.0)).collect();
            let (lo, hi) = (times[0] - 20_000, times[times.len() - 1] + 20_000);
            let exact = times.iter().flat_map(|&t| [t - 1, t, t + 1]);
            for t in (lo..=hi).step_by(977).chain(exact) {
                for inclusive in [false, true] {
                    let expected = samples
                        .partition_point(|(st, _)| if inclusive { *st <= t } else { *st < t });
                    assert_eq!(seek(&samples, t, inclusive), expected, "t={t} {inclusive}");
                }
            }
        }
        assert_eq!(seek(&[], 5, true), 0);
    }
}
