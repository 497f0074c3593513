//! Binary operators: arithmetic, comparison (filtering or `bool`), and the set operators, with
//! vector matching (`on`/`ignoring`, `group_left`/`group_right`).

use rustc_hash::{FxHashMap, FxHashSet};

use promql_parser::parser::{BinModifier, BinaryExpr, LabelModifier, VectorMatchCardinality};

use super::{QueryError, Result, Sample, Value};
use crate::labels::Labels;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    Atan2,
    Eq,
    Ne,
    Gt,
    Lt,
    Ge,
    Le,
    And,
    Or,
    Unless,
}

impl Op {
    fn parse(token: &str) -> Result<Op> {
        Ok(match token {
            "+" => Op::Add,
            "-" => Op::Sub,
            "*" => Op::Mul,
            "/" => Op::Div,
            "%" => Op::Mod,
            "^" => Op::Pow,
            "atan2" => Op::Atan2,
            "==" => Op::Eq,
            "!=" => Op::Ne,
            ">" => Op::Gt,
            "<" => Op::Lt,
            ">=" => Op::Ge,
            "<=" => Op::Le,
            "and" => Op::And,
            "or" => Op::Or,
            "unless" => Op::Unless,
            other => {
                return Err(QueryError::Execution(format!(
                    "binary operator {other:?} is not supported"
                )));
            }
        })
    }

    fn is_comparison(self) -> bool {
        matches!(self, Op::Eq | Op::Ne | Op::Gt | Op::Lt | Op::Ge | Op::Le)
    }

    /// The result value and whether a comparison keeps the element.
    fn apply(self, lhs: f64, rhs: f64) -> (f64, bool) {
        match self {
            Op::Add => (lhs + rhs, true),
            Op::Sub => (lhs - rhs, true),
            Op::Mul => (lhs * rhs, true),
            Op::Div => (lhs / rhs, true),
            // Go's math.Mod: the sign of the dividend, like Rust's %.
            Op::Mod => (lhs % rhs, true),
            Op::Pow => (lhs.powf(rhs), true),
            Op::Atan2 => (lhs.atan2(rhs), true),
            Op::Eq => (lhs, lhs == rhs),
            Op::Ne => (lhs, lhs != rhs),
            Op::Gt => (lhs, lhs > rhs),
            Op::Lt => (lhs, lhs < rhs),
            Op::Ge => (lhs, lhs >= rhs),
            Op::Le => (lhs, lhs <= rhs),
            Op::And | Op::Or | Op::Unless => (lhs, true),
        }
    }
}

pub(super) fn evaluate(expr: &BinaryExpr, lhs: Value, rhs: Value, t: i64) -> Result<Value> {
    let op = Op::parse(&expr.op.to_string())?;
    let return_bool = expr.return_bool();
    match (lhs, rhs) {
        (Value::Scalar(l), Value::Scalar(r)) => {
            let (value, keep) = op.apply(l, r);
            Ok(Value::Scalar(if op.is_comparison() {
                if keep { 1.0 } else { 0.0 }
            } else {
                value
            }))
        }
        (Value::Vector(vector), Value::Scalar(scalar)) => Ok(Value::Vector(vector_scalar(
            op,
            vector,
            scalar,
            false,
            return_bool,
            t,
        ))),
        (Value::Scalar(scalar), Value::Vector(vector)) => Ok(Value::Vector(vector_scalar(
            op,
            vector,
            scalar,
            true,
            return_bool,
            t,
        ))),
        (Value::Vector(l), Value::Vector(r)) => {
            let modifier = expr.modifier.as_ref();
            match op {
                Op::And | Op::Or | Op::Unless => {
                    Ok(Value::Vector(set_operation(op, l, r, modifier)))
                }
                _ => vector_vector(op, l, r, modifier, return_bool, t).map(Value::Vector),
            }
        }
        (l, r) => Err(QueryError::Execution(format!(
            "binary operator between a {} and a {}",
            l.type_name(),
            r.type_name()
        ))),
    }
}

fn vector_scalar(
    op: Op,
    vector: Vec<Sample>,
    scalar: f64,
    scalar_on_left: bool,
    return_bool: bool,
    t: i64,
) -> Vec<Sample> {
    vector
        .into_iter()
        .filter_map(|sample| {
            let (l, r) = if scalar_on_left {
                (scalar, sample.v)
            } else {
                (sample.v, scalar)
            };
            let (mut value, mut keep) = op.apply(l, r);
            // A comparison keeps the vector's value even when the scalar is on the left.
            if op.is_comparison() && scalar_on_left {
                value = r;
            }
            if return_bool {
                value = if keep { 1.0 } else { 0.0 };
                keep = true;
            }
            keep.then(|| Sample {
                labels: if !op.is_comparison() || return_bool {
                    sample.labels.without_metric_name()
                } else {
                    sample.labels
                },
                t,
                v: value,
            })
        })
        .collect()
}

/// The labels two elements are matched on.
fn signature(labels: &Labels, modifier: Option<&BinModifier>) -> Labels {
    match modifier.and_then(|m| m.matching.as_ref()) {
        Some(LabelModifier::Include(on)) => labels.project(&on.labels, true),
        Some(LabelModifier::Exclude(ignoring)) => labels.project(&ignoring.labels, false),
        None => labels.without_metric_name(),
    }
}

fn set_operation(
    op: Op,
    lhs: Vec<Sample>,
    rhs: Vec<Sample>,
    modifier: Option<&BinModifier>,
) -> Vec<Sample> {
    let rhs_signatures: FxHashSet<Labels> =
        rhs.iter().map(|s| signature(&s.labels, modifier)).collect();
    match op {
        Op::And => lhs
            .into_iter()
            .filter(|s| rhs_signatures.contains(&signature(&s.labels, modifier)))
            .collect(),
        Op::Unless => lhs
            .into_iter()
            .filter(|s| !rhs_signatures.contains(&signature(&s.labels, modifier)))
            .collect(),
        _ => {
            let lhs_signatures: FxHashSet<Labels> =
                lhs.iter().map(|s| signature(&s.labels, modifier)).collect();
            let mut out = lhs;
            out.extend(
                rhs.into_iter()
                    .filter(|s| !lhs_signatures.contains(&signature(&s.labels, modifier))),
            );
            out
        }
    }
}

fn vector_vector(
    op: Op,
    lhs: Vec<Sample>,
    rhs: Vec<Sample>,
    modifier: Option<&BinModifier>,
    return_bool: bool,
    t: i64,
) -> Result<Vec<Sample>> {
    let cardinality = modifier.map_or(&VectorMatchCardinality::OneToOne, |m| &m.card);
    // The "many" side goes on the left; the values are swapped back for the operator.
    let swapped = matches!(cardinality, VectorMatchCardinality::OneToMany(_));
    let (many, one) = if swapped { (rhs, lhs) } else { (lhs, rhs) };
    let include: &[String] = match cardinality {
        VectorMatchCardinality::ManyToOne(labels) | VectorMatchCardinality::OneToMany(labels) => {
            &labels.labels
        }
        _ => &[],
    };
    let one_to_one = matches!(cardinality, VectorMatchCardinality::OneToOne);

    let mut one_side: FxHashMap<Labels, &Sample> = FxHashMap::default();
    for sample in &one {
        let key = signature(&sample.labels, modifier);
        if let Some(previous) = one_side.insert(key.clone(), sample) {
            return Err(QueryError::Execution(format!(
                "found duplicate series for the match group {key} on the {} hand-side of the operation: [{}, {}];many-to-many matching not allowed: matching labels must be unique on one side",
                if swapped { "left" } else { "right" },
                previous.labels,
                sample.labels
            )));
        }
    }
    let mut matched_one_to_one: FxHashSet<Labels> = FxHashSet::default();
    let mut seen_results: FxHashSet<Labels> = FxHashSet::default();
    let mut out = Vec::new();
    for sample in &many {
        let key = signature(&sample.labels, modifier);
        let Some(other) = one_side.get(&key) else {
            continue;
        };
        if one_to_one && !matched_one_to_one.insert(key.clone()) {
            return Err(QueryError::Execution(
                "multiple matches for labels: many-to-one matching must be explicit (group_left/group_right)".into(),
            ));
        }
        let (l, r) = if swapped {
            (other.v, sample.v)
        } else {
            (sample.v, other.v)
        };
        let (mut value, mut keep) = op.apply(l, r);
        if return_bool {
            value = if keep { 1.0 } else { 0.0 };
            keep = true;
        }
        if !keep {
            continue;
        }
        let labels = result_labels(
            &sample.labels,
            &other.labels,
            op,
            modifier,
            include,
            return_bool,
        );
        if !one_to_one && !seen_results.insert(labels.clone()) {
            return Err(QueryError::Execution(
                "multiple matches for labels: grouping labels must ensure unique matches".into(),
            ));
        }
        out.push(Sample {
            labels,
            t,
            v: value,
        });
    }
    Ok(out)
}

fn result_labels(
    many: &Labels,
    one: &Labels,
    op: Op,
    modifier: Option<&BinModifier>,
    include: &[String],
    return_bool: bool,
) -> Labels {
    let mut builder = many.builder();
    if !op.is_comparison() || return_bool {
        builder.remove(crate::labels::METRIC_NAME);
    }
    let one_to_one = modifier.is_none_or(|m| matches!(m.card, VectorMatchCardinality::OneToOne));
    if one_to_one {
        match modifier.and_then(|m| m.matching.as_ref()) {
            Some(LabelModifier::Include(on)) => {
                let keep = builder.build().project(&on.labels, true);
                builder = keep.builder();
            }
            Some(LabelModifier::Exclude(ignoring)) => {
                for name in &ignoring.labels {
                    builder.remove(name);
                }
            }
            None => {}
        }
    }
    for name in include {
        match one.get(name) {
            Some(value) => builder.set(name.clone(), value.to_owned()),
            None => builder.remove(name),
        };
    }
    builder.build()
}
