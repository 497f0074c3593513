//! Alert labels and annotations are Go text/templates, as in Prometheus: `$labels`, `$value`
//! and `$externalLabels`/`$externalURL`, `.Labels`/`.Value`, and Prometheus's functions
//! (`humanize`, `humanizeDuration`, `query`, `first`, `label`, `value`, ...).
//!
//! Templates are checked when a rule file loads (an unknown function is an error there, as in
//! promtool); an expansion that fails at evaluation time gives Prometheus's
//! `<error expanding template: ...>` text instead of the annotation.

use std::collections::BTreeMap;
use std::sync::Arc;

use gotmpl::parse::{Expr, ListNode, Node, PipeNode};
use gotmpl::{Template, TemplateError, Value};

use crate::labels::Labels;

/// Prometheus puts these definitions before every template.
const PREAMBLE: &str = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}\
{{$externalURL := .ExternalURL}}{{$value := .Value}}";

const TEMPLATE_NAME: &str = "__alert";

/// A query from inside a template: the expression, answered as (labels, value) pairs.
pub type TemplateQuery = Arc<dyn Fn(&str) -> Result<Vec<(Labels, f64)>, String> + Send + Sync>;

/// What a template sees.
pub struct TemplateData<'a> {
    /// The alert's labels, without `__name__`.
    pub labels: &'a Labels,
    pub value: f64,
    pub external_url: &'a str,
}

/// Whether `text` parses as a template with Prometheus's functions (Go checks function names
/// when it parses; the template crate only when it runs, so the tree is walked here).
pub fn check(text: &str) -> Result<(), String> {
    let no_query: TemplateQuery = Arc::new(|_| Err("not evaluating".into()));
    let template = parse(text, &no_query)?;
    let mut unknown = Vec::new();
    if let Some(tree) = template.lookup(TEMPLATE_NAME) {
        undefined_functions(tree, &mut unknown);
    }
    match unknown.first() {
        Some(name) => Err(format!("function {name:?} not defined")),
        None => Ok(()),
    }
}

/// Go's own template functions.
const GO_BUILTINS: &[&str] = &[
    "and", "or", "not", "len", "index", "slice", "print", "printf", "println", "html", "js",
    "urlquery", "eq", "ne", "lt", "le", "gt", "ge", "call",
];

fn is_function(name: &str) -> bool {
    name == "query"
        || GO_BUILTINS.contains(&name)
        || FUNCTIONS.iter().any(|(known, _)| *known == name)
}

fn undefined_functions(list: &ListNode, unknown: &mut Vec<String>) {
    for node in &list.nodes {
        match node {
            Node::List(inner) => undefined_functions(inner, unknown),
            Node::Action(action) => pipe_functions(&action.pipe, unknown),
            Node::If(branch) | Node::Range(branch) | Node::With(branch) => {
                pipe_functions(&branch.pipe, unknown);
                undefined_functions(&branch.body, unknown);
                if let Some(other) = &branch.else_body {
                    undefined_functions(other, unknown);
                }
            }
            Node::Template(call) => {
                if let Some(pipe) = &call.pipe {
                    pipe_functions(pipe, unknown);
                }
            }
            Node::Define(define) => undefined_functions(&define.body, unknown),
            Node::Text(_) | Node::Break(_) | Node::Continue(_) => {}
        }
    }
}

fn pipe_functions(pipe: &PipeNode, unknown: &mut Vec<String>) {
    for command in &pipe.commands {
        for arg in &command.args {
            expr_functions(arg, unknown);
        }
    }
}

fn expr_functions(expr: &Expr, unknown: &mut Vec<String>) {
    match expr {
        Expr::Identifier(_, name) if !is_function(name) => unknown.push(name.to_string()),
        Expr::Pipe(_, pipe) => pipe_functions(pipe, unknown),
        Expr::Chain(_, inner, _) => expr_functions(inner, unknown),
        _ => {}
    }
}

/// A rule's label or annotation templates, parsed once per evaluation and expanded for each
/// element of the result.
pub struct Expander {
    /// (name, the template, or the plain text when there is no action in it)
    templates: Vec<(String, Result<Template, String>, String)>,
}

impl Expander {
    pub fn new(pairs: &[(String, String)], query: &TemplateQuery) -> Self {
        let templates = pairs
            .iter()
            .map(|(name, text)| {
                let parsed = if text.contains("{{") {
                    parse(text, query)
                } else {
                    Err(String::new())
                };
                (name.clone(), parsed, text.clone())
            })
            .collect();
        Self { templates }
    }

    /// Every template expanded for `data`; a failure is the error text, as Prometheus shows it.
    pub fn expand(&self, data: &TemplateData) -> Vec<(String, String)> {
        let context = context(data);
        self.templates
            .iter()
            .map(|(name, parsed, text)| {
                let value = match parsed {
                    Ok(template) => template
                        .execute_to_string(&context)
                        .unwrap_or_else(|err| format!("<error expanding template: {name}: {err}>")),
                    Err(err) if err.is_empty() => text.clone(),
                    Err(err) => format!("<error expanding template: {name}: {err}>"),
                };
                (name.clone(), value)
            })
            .collect()
    }
}

fn parse(text: &str, query: &TemplateQuery) -> Result<Template, String> {
    let mut template = Template::new(TEMPLATE_NAME);
    for (name, function) in FUNCTIONS {
        template = template.func(name, function);
    }
    let query = query.clone();
    template
        .func("query", move |args| run_query(&query, args))
        .parse(&format!("{PREAMBLE}{text}"))
        .map_err(|err| err.to_string())
}

fn string(text: impl Into<Arc<str>>) -> Value {
    Value::String(text.into())
}

fn map(entries: impl IntoIterator<Item = (String, Value)>) -> Value {
    Value::Map(Arc::new(
        entries
            .into_iter()
            .map(|(key, value)| (Arc::from(key), value))
            .collect::<BTreeMap<Arc<str>, Value>>(),
    ))
}

fn labels_value(labels: &Labels) -> Value {
    map(labels
        .iter()
        .map(|label| (label.name.to_string(), string(label.value.as_str()))))
}

fn context(data: &TemplateData) -> Value {
    map([
        ("Labels".to_owned(), labels_value(data.labels)),
        ("Value".to_owned(), Value::Float(data.value)),
        ("ExternalLabels".to_owned(), map([])),
        ("ExternalURL".to_owned(), string(data.external_url)),
    ])
}

type Function = fn(&[Value]) -> gotmpl::Result<Value>;

const FUNCTIONS: &[(&str, Function)] = &[
    ("humanize", humanize),
    ("humanize1024", humanize1024),
    ("humanizeDuration", humanize_duration),
    ("humanizePercentage", humanize_percentage),
    ("humanizeTimestamp", humanize_timestamp),
    ("toUpper", to_upper),
    ("toLower", to_lower),
    ("title", title),
    ("match", regex_match),
    ("reReplaceAll", regex_replace_all),
    ("stripPort", strip_port),
    ("stripDomain", strip_domain),
    ("safeHtml", identity),
    ("first", first),
    ("label", label),
    ("value", sample_value),
    ("strvalue", strvalue),
    ("sortByLabel", sort_by_label),
    ("args", args),
];

fn generic(message: impl Into<String>) -> TemplateError {
    TemplateError::Exec(message.into())
}

fn exactly<'a>(name: &str, args: &'a [Value], count: usize) -> gotmpl::Result<&'a [Value]> {
    if args.len() == count {
        Ok(args)
    } else {
        Err(generic(format!(
            "{name} takes {count} arguments, not {}",
            args.len()
        )))
    }
}

/// A number or a numeric string, as Prometheus's functions accept.
fn number(value: &Value) -> gotmpl::Result<f64> {
    match value {
        Value::Float(v) => Ok(*v),
        Value::Int(v) => Ok(*v as f64),
        Value::Uint(v) => Ok(*v as f64),
        Value::String(text) => text
            .trim()
            .parse()
            .map_err(|_| generic(format!("{text:?} is not a number"))),
        other => Err(generic(format!("{other} is not a number"))),
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::String(text) => text.to_string(),
        other => other.to_string(),
    }
}

/// Go's `%.4g`: four significant digits, exponent form outside [1e-4, 1e4).
fn format_g4(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf" } else { "-Inf" }.into();
    }
    if v == 0.0 {
        return "0".into();
    }
    let scientific = format!("{v:.3e}");
    let (mantissa, exponent) = scientific.split_once('e').expect("exponent form");
    let exponent: i32 = exponent.parse().expect("exponent digits");
    if !(-4..4).contains(&exponent) {
        let mantissa = trim_zeros(mantissa);
        let sign = if exponent < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exponent.abs());
    }
    let decimals = (3 - exponent).max(0) as usize;
    trim_zeros(&format!("{v:.decimals$}")).to_owned()
}

fn trim_zeros(text: &str) -> &str {
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.')
    } else {
        text
    }
}

fn scaled(mut v: f64, base: f64, up: &[&str], down: &[&str]) -> String {
    if v == 0.0 || !v.is_finite() {
        return format_g4(v);
    }
    let mut prefix = "";
    if v.abs() >= 1.0 {
        for next in up {
            if v.abs() < base {
                break;
            }
            prefix = next;
            v /= base;
        }
    } else {
        for next in down {
            if v.abs() >= 1.0 {
                break;
            }
            prefix = next;
            v *= base;
        }
    }
    format!("{}{prefix}", format_g4(v))
}

const SMALL_PREFIXES: &[&str] = &["m", "u", "n", "p", "f", "a", "z", "y"];

fn humanize(args: &[Value]) -> gotmpl::Result<Value> {
    let v = number(&exactly("humanize", args, 1)?[0])?;
    let up = &["k", "M", "G", "T", "P", "E", "Z", "Y"];
    Ok(string(scaled(v, 1000.0, up, SMALL_PREFIXES)))
}

fn humanize1024(args: &[Value]) -> gotmpl::Result<Value> {
    let v = number(&exactly("humanize1024", args, 1)?[0])?;
    let up = &["ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"];
    Ok(string(scaled(v, 1024.0, up, &[])))
}

fn humanize_duration(args: &[Value]) -> gotmpl::Result<Value> {
    let v = number(&exactly("humanizeDuration", args, 1)?[0])?;
    if !v.is_finite() {
        return Ok(string(format_g4(v)));
    }
    if v.abs() >= 1.0 {
        let sign = if v < 0.0 { "-" } else { "" };
        let whole = v.abs() as i64;
        let (days, hours, minutes, seconds) = (
            whole / 86_400,
            whole / 3600 % 24,
            whole / 60 % 60,
            whole % 60,
        );
        let text = if days != 0 {
            format!("{sign}{days}d {hours}h {minutes}m {seconds}s")
        } else if hours != 0 {
            format!("{sign}{hours}h {minutes}m {seconds}s")
        } else if minutes != 0 {
            format!("{sign}{minutes}m {seconds}s")
        } else {
            format!("{}s", format_g4(v))
        };
        return Ok(string(text));
    }
    Ok(string(format!(
        "{}s",
        scaled(v, 1000.0, &[], SMALL_PREFIXES)
    )))
}

fn humanize_percentage(args: &[Value]) -> gotmpl::Result<Value> {
    let v = number(&exactly("humanizePercentage", args, 1)?[0])?;
    Ok(string(format!("{}%", format_g4(v * 100.0))))
}

fn humanize_timestamp(args: &[Value]) -> gotmpl::Result<Value> {
    let v = number(&exactly("humanizeTimestamp", args, 1)?[0])?;
    if !v.is_finite() {
        return Ok(string(format_g4(v)));
    }
    let at = time::OffsetDateTime::from_unix_timestamp_nanos((v * 1e9) as i128)
        .map_err(|err| generic(err.to_string()))?;
    // Go's time.Time String(), in UTC: fractional seconds only when there are any.
    let fraction = match at.nanosecond() {
        0 => String::new(),
        nanos => format!(".{nanos:09}").trim_end_matches('0').to_owned(),
    };
    Ok(string(format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}{fraction} +0000 UTC",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    )))
}

fn to_upper(args: &[Value]) -> gotmpl::Result<Value> {
    Ok(string(
        text(&exactly("toUpper", args, 1)?[0]).to_uppercase(),
    ))
}

fn to_lower(args: &[Value]) -> gotmpl::Result<Value> {
    Ok(string(
        text(&exactly("toLower", args, 1)?[0]).to_lowercase(),
    ))
}

fn title(args: &[Value]) -> gotmpl::Result<Value> {
    let source = text(&exactly("title", args, 1)?[0]);
    let mut out = String::with_capacity(source.len());
    let mut at_word_start = true;
    for c in source.chars() {
        if at_word_start {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        // Go's strings.Title: letters, digits and `_` continue a word, as do non-ASCII symbols.
        at_word_start =
            c.is_whitespace() || (c.is_ascii() && !(c.is_ascii_alphanumeric() || c == '_'));
    }
    Ok(string(out))
}

fn regex(pattern: &str) -> gotmpl::Result<regex::Regex> {
    regex::Regex::new(pattern).map_err(|err| generic(err.to_string()))
}

fn regex_match(args: &[Value]) -> gotmpl::Result<Value> {
    let args = exactly("match", args, 2)?;
    Ok(Value::Bool(
        regex(&text(&args[0]))?.is_match(&text(&args[1])),
    ))
}

fn regex_replace_all(args: &[Value]) -> gotmpl::Result<Value> {
    let args = exactly("reReplaceAll", args, 3)?;
    let pattern = regex(&text(&args[0]))?;
    let (replacement, source) = (text(&args[1]), text(&args[2]));
    Ok(string(
        pattern
            .replace_all(&source, replacement.as_str())
            .into_owned(),
    ))
}

/// Go's net.SplitHostPort: `host:port` or `[host]:port`; `None` for anything else (such as
/// a bare IPv6 address).
fn split_host_port(address: &str) -> Option<(&str, &str)> {
    if let Some(rest) = address.strip_prefix('[') {
        let (host, port) = rest.split_once("]:")?;
        return Some((host, port));
    }
    let (host, port) = address.split_once(':')?;
    (!port.contains(':')).then_some((host, port))
}

fn strip_port(args: &[Value]) -> gotmpl::Result<Value> {
    let address = text(&exactly("stripPort", args, 1)?[0]);
    let host = split_host_port(&address).map_or(address.as_str(), |(host, _)| host);
    Ok(string(host.to_owned()))
}

fn strip_domain(args: &[Value]) -> gotmpl::Result<Value> {
    let address = text(&exactly("stripDomain", args, 1)?[0]);
    let (host, port) = split_host_port(&address).unwrap_or((address.as_str(), ""));
    if host.parse::<std::net::IpAddr>().is_ok() {
        return Ok(string(address.clone()));
    }
    let short = host.split('.').next().unwrap_or(host);
    Ok(string(match port {
        "" => short.to_owned(),
        port if short.contains(':') => format!("[{short}]:{port}"),
        port => format!("{short}:{port}"),
    }))
}

fn identity(args: &[Value]) -> gotmpl::Result<Value> {
    Ok(exactly("safeHtml", args, 1)?[0].clone())
}

/// A query result element as Prometheus's templates see it: `.Labels` and `.Value`.
fn sample(labels: &Labels, v: f64) -> Value {
    map([
        ("Labels".to_owned(), labels_value(labels)),
        ("Value".to_owned(), Value::Float(v)),
    ])
}

fn run_query(query: &TemplateQuery, args: &[Value]) -> gotmpl::Result<Value> {
    let expression = text(&exactly("query", args, 1)?[0]);
    let samples = query(&expression).map_err(generic)?;
    Ok(Value::List(
        samples
            .iter()
            .map(|(labels, v)| sample(labels, *v))
            .collect(),
    ))
}

fn first(args: &[Value]) -> gotmpl::Result<Value> {
    match &exactly("first", args, 1)?[0] {
        Value::List(items) => items
            .first()
            .cloned()
            .ok_or_else(|| generic("first() called on vector with no elements")),
        _ => Err(generic("first() needs the result of query")),
    }
}

fn field<'a>(value: &'a Value, name: &str) -> gotmpl::Result<&'a Value> {
    value
        .field(name)
        .ok_or_else(|| generic("needs a sample from query"))
}

fn label_of(sample: &Value, name: &str) -> gotmpl::Result<Value> {
    Ok(field(sample, "Labels")?
        .field(name)
        .cloned()
        .unwrap_or_else(|| string("")))
}

fn label(args: &[Value]) -> gotmpl::Result<Value> {
    let args = exactly("label", args, 2)?;
    label_of(&args[1], &text(&args[0]))
}

fn sample_value(args: &[Value]) -> gotmpl::Result<Value> {
    Ok(field(&exactly("value", args, 1)?[0], "Value")?.clone())
}

fn strvalue(args: &[Value]) -> gotmpl::Result<Value> {
    label_of(&exactly("strvalue", args, 1)?[0], "__value__")
}

fn sort_by_label(args: &[Value]) -> gotmpl::Result<Value> {
    let args = exactly("sortByLabel", args, 2)?;
    let name = text(&args[0]);
    let Value::List(items) = &args[1] else {
        return Err(generic("sortByLabel() needs the result of query"));
    };
    let mut sorted = items.to_vec();
    sorted.sort_by_key(|item| label_of(item, &name).map(|v| text(&v)).unwrap_or_default());
    Ok(Value::List(sorted.into()))
}

fn args(args: &[Value]) -> gotmpl::Result<Value> {
    Ok(map(args
        .iter()
        .enumerate()
        .map(|(at, value)| (format!("arg{at}"), value.clone()))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_query() -> TemplateQuery {
        Arc::new(|_| Err("no queries here".into()))
    }

    fn render(text: &str, value: f64) -> String {
        let labels = Labels::from_pairs([("instance", "db-1:9100"), ("job", "node")]);
        let data = TemplateData {
            labels: &labels,
            value,
            external_url: "http://nightlight:9090",
        };
        expand_one(text, &data, &no_query())
    }

    fn expand_one(text: &str, data: &TemplateData, query: &TemplateQuery) -> String {
        let pairs = [("summary".to_owned(), text.to_owned())];
        Expander::new(&pairs, query).expand(data).remove(0).1
    }

    #[test]
    fn labels_and_value_expand() {
        assert_eq!(
            render(
                "{{ $labels.instance }} of {{ .Labels.job }} is {{ $value }}",
                2.5
            ),
            "db-1:9100 of node is 2.5"
        );
        assert_eq!(render("{{ $labels.instance | stripPort }}", 0.0), "db-1");
        assert_eq!(
            render(r#"{{ stripPort "::1" }} {{ stripPort "[::1]:9" }}"#, 0.0),
            "::1 ::1"
        );
        assert_eq!(
            render(
                r#"{{ stripDomain "db.example.com:9100" }} {{ stripDomain "10.0.0.1:9" }}"#,
                0.0
            ),
            "db:9100 10.0.0.1:9"
        );
        assert_eq!(render(r#"{{ title "big room_a-b" }}"#, 0.0), "Big Room_a-B");
        assert_eq!(render(r#"{{ printf "%.1f" $value }}"#, 0.25), "0.2");
        assert_eq!(render(r#"{{ printf "%.2f" $value }}"#, 5.0), "5.00");
        assert_eq!(render("{{ $value }}", -2.5), "-2.5");
        assert_eq!(
            render("{{ if gt $value 1.0 }}high{{ else }}low{{ end }}", 2.0),
            "high"
        );
        assert_eq!(render("no template", 1.0), "no template");
    }

    #[test]
    fn humanizers_match_prometheus() {
        assert_eq!(render("{{ humanize $value }}", 1234567.0), "1.235M");
        assert_eq!(render("{{ humanize $value }}", 0.0012), "1.2m");
        assert_eq!(render("{{ humanize1024 $value }}", 2048.0), "2ki");
        assert_eq!(render("{{ humanizePercentage $value }}", 0.1234), "12.34%");
        assert_eq!(
            render("{{ humanizeDuration $value }}", 93784.0),
            "1d 2h 3m 4s"
        );
        assert_eq!(render("{{ humanizeDuration $value }}", 0.25), "250ms");
        assert_eq!(render("{{ humanizeDuration $value }}", 12.5), "12.5s");
        assert_eq!(
            render("{{ humanizeTimestamp $value }}", 1_700_000_000.0),
            "2023-11-14 22:13:20 +0000 UTC"
        );
        assert_eq!(format_g4(123456789.0), "1.235e+08");
        assert_eq!(format_g4(0.00001234), "1.234e-05");
        assert_eq!(format_g4(42.0), "42");
    }

    #[test]
    fn failures_are_reported_in_the_text() {
        assert!(check("{{ nosuchfunction $value }}").is_err());
        assert!(check("{{ humanize $value }}").is_ok());
        let text = render(r#"{{ query "up" | first | value }}"#, 0.0);
        assert!(
            text.starts_with("<error expanding template: summary:"),
            "{text}"
        );
    }

    #[test]
    fn query_results_reach_the_template() {
        let labels = Labels::from_pairs([("instance", "a")]);
        let data = TemplateData {
            labels: &labels,
            value: 0.0,
            external_url: "",
        };
        let answer: TemplateQuery = Arc::new(|expression| {
            assert_eq!(expression, "up");
            Ok(vec![(Labels::from_pairs([("instance", "b")]), 7.0)])
        });
        let text = expand_one(
            r#"{{ with query "up" }}{{ . | first | label "instance" }}={{ . | first | value }}{{ end }}"#,
            &data,
            &answer,
        );
        assert_eq!(text, "b=7");
    }
}
