//! Parses a scrape response body: the Prometheus text exposition format 0.0.4 and the
//! OpenMetrics 1.0 text format, accepting what Prometheus 2.42 accepts.
//!
//! Deliberately kept, like Prometheus 2.42: `_created` samples are ordinary samples, `le` and
//! `quantile` values stay as written (no float normalisation), sample names are not checked
//! against their family's TYPE, and text-format quirks are accepted (labels without commas
//! between them, a trailing comma, a missing final newline, a raw newline inside a quoted label
//! value). Exemplars are checked for syntax and dropped. Stricter than Prometheus, on purpose:
//! label names starting with `__`, a label name twice in one sample, a second TYPE/HELP/UNIT for
//! one family and a TYPE after that family's samples are errors.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use crate::labels::{Labels, METRIC_NAME};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    PrometheusText,
    OpenMetrics,
}

/// The Accept header a scraper sends (prefer OpenMetrics 1.0.0, then 0.0.1, then text 0.0.4,
/// then anything) — same preference order Prometheus uses.
pub const SCRAPE_ACCEPT: &str = concat!(
    "application/openmetrics-text;version=1.0.0,",
    "application/openmetrics-text;version=0.0.1;q=0.75,",
    "text/plain;version=0.0.4;q=0.5,",
    "*/*;q=0.1",
);

impl Format {
    /// From a response Content-Type; `application/openmetrics-text` → OpenMetrics, anything
    /// else (including missing or `text/plain`) → PrometheusText.
    pub fn from_content_type(content_type: Option<&str>) -> Format {
        let media_type = content_type
            .and_then(|value| value.split(';').next())
            .unwrap_or("")
            .trim();
        if media_type.eq_ignore_ascii_case("application/openmetrics-text") {
            Format::OpenMetrics
        } else {
            Format::PrometheusText
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    GaugeHistogram,
    Summary,
    Info,
    StateSet,
    Unknown,
}

impl MetricType {
    pub fn as_str(&self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::GaugeHistogram => "gaugehistogram",
            MetricType::Summary => "summary",
            MetricType::Info => "info",
            MetricType::StateSet => "stateset",
            MetricType::Unknown => "unknown",
        }
    }

    fn from_text_format(word: &str) -> Option<MetricType> {
        Some(match word {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "summary" => MetricType::Summary,
            "untyped" => MetricType::Unknown,
            _ => return None,
        })
    }

    fn from_openmetrics(word: &str) -> Option<MetricType> {
        Some(match word {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "gaugehistogram" => MetricType::GaugeHistogram,
            "summary" => MetricType::Summary,
            "info" => MetricType::Info,
            "stateset" => MetricType::StateSet,
            "unknown" => MetricType::Unknown,
            _ => return None,
        })
    }

    /// Sample-name suffixes a family of this type may use; loose on purpose (the bare name is
    /// always included), since it only decides whether a TYPE line came too late.
    fn sample_suffixes(&self) -> &'static [&'static str] {
        match self {
            MetricType::Counter => &["", "_total", "_created"],
            MetricType::Histogram => &["", "_bucket", "_count", "_sum", "_created"],
            MetricType::GaugeHistogram => &["", "_gbucket", "_gcount", "_gsum"],
            MetricType::Summary => &["", "_count", "_sum", "_created"],
            MetricType::Info => &["", "_info"],
            MetricType::Gauge | MetricType::StateSet | MetricType::Unknown => &[""],
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetricMetadata {
    pub family: String,
    pub kind: MetricType,
    pub help: String,
    pub unit: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ScrapedSample {
    /// Includes `__name__`.
    pub labels: Labels,
    /// The explicit timestamp in milliseconds (OpenMetrics writes float seconds, the text
    /// format integer milliseconds).
    pub timestamp_ms: Option<i64>,
    pub value: f64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Scraped {
    pub samples: Vec<ScrapedSample>,
    pub metadata: Vec<MetricMetadata>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ParseError {
    /// 1-based.
    pub line: usize,
    pub reason: String,
}

pub fn parse(body: &str, format: Format) -> Result<Scraped, ParseError> {
    let mut parser = Parser::new(body, format);
    match format {
        Format::PrometheusText => parser.text_body()?,
        Format::OpenMetrics => parser.openmetrics_body()?,
    }
    Ok(parser.out)
}

const EOF_MISSING: &str = "\"# EOF\" missing at the end of an OpenMetrics exposition";

/// Which metadata lines a family has had, to refuse a second one.
#[derive(Default)]
struct FamilyLines {
    kind: bool,
    help: bool,
    unit: bool,
}

/// A cursor over the whole body; every line handler consumes its line including the `\n`.
struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    line: usize,
    format: Format,
    out: Scraped,
    /// Family name → index into `out.metadata` and `family_lines`.
    families: HashMap<&'a str, usize>,
    family_lines: Vec<FamilyLines>,
    /// Metric names that had samples, to catch a TYPE line after them.
    sample_names: HashSet<&'a str>,
    last_sample_name: &'a str,
    /// Reused per sample so that only the final `Labels` allocate.
    pairs: Vec<(&'a str, Cow<'a, str>)>,
    encoded: Vec<u8>,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str, format: Format) -> Self {
        Parser {
            text,
            bytes: text.as_bytes(),
            pos: 0,
            line: 1,
            format,
            out: Scraped::default(),
            families: HashMap::new(),
            family_lines: Vec::new(),
            sample_names: HashSet::new(),
            last_sample_name: "",
            pairs: Vec::new(),
            encoded: Vec::new(),
        }
    }

    fn error(&self, reason: impl Into<String>) -> ParseError {
        ParseError {
            line: self.line,
            reason: reason.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn rest(&self) -> &'a str {
        self.text.get(self.pos..).unwrap_or("")
    }

    /// What stands at the cursor, for an error message.
    fn found(&self) -> String {
        describe(self.rest())
    }

    fn newline(&mut self) {
        self.pos += 1;
        self.line += 1;
    }

    /// Consumes the line break (or the end of the body) that must come next.
    fn end_of_line(&mut self) -> bool {
        match self.peek() {
            None => true,
            Some(b'\n') => {
                self.newline();
                true
            }
            Some(_) => false,
        }
    }

    fn skip_blanks(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t')) {
            self.pos += 1;
        }
    }

    /// The rest of the current line, leaving the cursor on its `\n` (or the end).
    fn take_line(&mut self) -> &'a str {
        let rest = self.rest();
        let len = rest.find('\n').unwrap_or(rest.len());
        self.pos += len;
        &rest[..len]
    }

    fn take_while(&mut self, keep: impl Fn(u8) -> bool) -> &'a str {
        let start = self.pos;
        while self.peek().is_some_and(&keep) {
            self.pos += 1;
        }
        // Callers only stop on ASCII bytes, so both ends are char boundaries.
        self.text.get(start..self.pos).unwrap_or("")
    }

    fn metric_name(&mut self) -> &'a str {
        if !self.peek().is_some_and(is_metric_name_start) {
            return "";
        }
        self.take_while(is_metric_name_char)
    }

    fn label_name(&mut self) -> &'a str {
        if !self.peek().is_some_and(is_label_name_start) {
            return "";
        }
        self.take_while(is_label_name_char)
    }

    /// A quoted label value, the cursor on its opening quote. The text format (like
    /// Prometheus's lexer) lets a raw newline through; OpenMetrics does not.
    fn label_value(&mut self, label: &str) -> Result<Cow<'a, str>, ParseError> {
        if self.peek() != Some(b'"') {
            return Err(self.error(format!(
                "expected a quoted value for label {label:?}, found {}",
                self.found()
            )));
        }
        self.pos += 1;
        let start = self.pos;
        let start_line = self.line;
        let mut escaped = false;
        loop {
            match self.peek() {
                None => {
                    return Err(ParseError {
                        line: start_line,
                        reason: format!("unterminated quoted value for label {label:?}"),
                    });
                }
                Some(b'"') => break,
                Some(b'\\') => {
                    if matches!(self.bytes.get(self.pos + 1), None | Some(b'\n')) {
                        return Err(self.error(format!(
                            "backslash at the end of a line in the value of label {label:?}"
                        )));
                    }
                    escaped = true;
                    // Skipping into a multi-byte char is fine: the scan only stops on ASCII.
                    self.pos += 2;
                }
                Some(b'\n') if self.format == Format::PrometheusText => self.newline(),
                Some(b'\n') => {
                    return Err(
                        self.error(format!("unterminated quoted value for label {label:?}"))
                    );
                }
                Some(_) => self.pos += 1,
            }
        }
        let raw = self.text.get(start..self.pos).unwrap_or("");
        self.pos += 1;
        Ok(if escaped {
            Cow::Owned(unescape(raw, true))
        } else {
            Cow::Borrowed(raw)
        })
    }

    fn reserved_check(&self, label: &str) -> Result<(), ParseError> {
        if label.starts_with("__") {
            return Err(self.error(format!(
                "label name {label:?} is reserved (names starting with \"__\" are internal)"
            )));
        }
        Ok(())
    }

    fn family(&mut self, name: &'a str) -> usize {
        if let Some(&at) = self.families.get(name) {
            return at;
        }
        let at = self.out.metadata.len();
        self.out.metadata.push(MetricMetadata {
            family: name.to_string(),
            kind: MetricType::Unknown,
            help: String::new(),
            unit: String::new(),
        });
        self.family_lines.push(FamilyLines::default());
        self.families.insert(name, at);
        at
    }

    fn set_type(&mut self, family: &'a str, kind: MetricType) -> Result<(), ParseError> {
        let at = self.family(family);
        if self.family_lines[at].kind {
            return Err(self.error(format!("second TYPE line for {family:?}")));
        }
        let mut name = String::with_capacity(family.len() + 8);
        for suffix in kind.sample_suffixes() {
            name.clear();
            name.push_str(family);
            name.push_str(suffix);
            if self.sample_names.contains(name.as_str()) {
                return Err(self.error(format!(
                    "TYPE line for {family:?} after its sample {name:?}; it must come first"
                )));
            }
        }
        self.family_lines[at].kind = true;
        self.out.metadata[at].kind = kind;
        Ok(())
    }

    fn set_help(&mut self, family: &'a str, help: String) -> Result<(), ParseError> {
        let at = self.family(family);
        if self.family_lines[at].help {
            return Err(self.error(format!("second HELP line for {family:?}")));
        }
        self.family_lines[at].help = true;
        self.out.metadata[at].help = help;
        Ok(())
    }

    fn set_unit(&mut self, family: &'a str, unit: &str) -> Result<(), ParseError> {
        // Prometheus's rule: a non-empty unit is the family name's last `_`-separated part.
        let fits = family
            .strip_suffix(unit)
            .is_some_and(|head| head.ends_with('_'));
        if !unit.is_empty() && !fits {
            return Err(self.error(format!(
                "unit {unit:?} is not a suffix of metric family {family:?}"
            )));
        }
        let at = self.family(family);
        if self.family_lines[at].unit {
            return Err(self.error(format!("second UNIT line for {family:?}")));
        }
        self.family_lines[at].unit = true;
        self.out.metadata[at].unit = unit.to_string();
        Ok(())
    }

    /// Turns `pairs` plus the metric name into a sample.
    fn push_sample(
        &mut self,
        name: &'a str,
        series: &str,
        value: f64,
        timestamp_ms: Option<i64>,
    ) -> Result<(), ParseError> {
        self.pairs.push((METRIC_NAME, Cow::Borrowed(name)));
        self.pairs.sort_unstable_by(|a, b| a.0.cmp(b.0));
        if let Some(pair) = self.pairs.windows(2).find(|pair| pair[0].0 == pair[1].0) {
            let duplicate = pair[0].0;
            return Err(self.error(format!(
                "label name {duplicate:?} appears twice in {series:?}"
            )));
        }
        // Built through the encoding Labels itself decodes: sorted, unique, non-empty values
        // is exactly its invariant, and this way each string is allocated once.
        self.encoded.clear();
        for (label, value) in &self.pairs {
            if value.is_empty() {
                continue;
            }
            self.encoded.extend_from_slice(label.as_bytes());
            self.encoded.push(0xff);
            self.encoded.extend_from_slice(value.as_bytes());
            self.encoded.push(0xff);
        }
        let labels = Labels::decode(&self.encoded).unwrap_or_else(|| {
            Labels::from_pairs(self.pairs.iter().map(|(n, v)| (*n, v.as_ref())))
        });
        self.pairs.clear();
        if name != self.last_sample_name {
            self.sample_names.insert(name);
            self.last_sample_name = name;
        }
        self.out.samples.push(ScrapedSample {
            labels,
            timestamp_ms,
            value,
        });
        Ok(())
    }

    // ---- Prometheus text format 0.0.4 ----

    fn text_body(&mut self) -> Result<(), ParseError> {
        loop {
            self.skip_blanks();
            match self.peek() {
                None => return Ok(()),
                Some(b'\n') => self.newline(),
                Some(b'#') => self.text_comment()?,
                Some(byte) if is_metric_name_start(byte) => self.text_sample()?,
                Some(_) => {
                    return Err(self.error(format!(
                        "expected a metric name, a comment or a blank line, found {}",
                        self.found()
                    )));
                }
            }
        }
    }

    fn text_comment(&mut self) -> Result<(), ParseError> {
        self.pos += 1;
        let before_blanks = self.pos;
        self.skip_blanks();
        let rest = self.rest().as_bytes();
        let keyword = if self.pos == before_blanks || rest.len() < 5 {
            None
        } else {
            match (&rest[..4], rest[4]) {
                (b"HELP", b' ' | b'\t') => Some("HELP"),
                (b"TYPE", b' ' | b'\t') => Some("TYPE"),
                _ => None,
            }
        };
        let Some(keyword) = keyword else {
            // Any other comment, including "# HELP" with nothing after it, is ignored.
            self.take_line();
            self.end_of_line();
            return Ok(());
        };
        self.pos += 4;
        self.skip_blanks();
        let family = self.metric_name();
        if family.is_empty() {
            return Err(self.error(format!(
                "expected a metric name after \"# {keyword}\", found {}",
                self.found()
            )));
        }
        // Like Prometheus, whatever byte follows the name separates it from the text.
        let raw = self.take_line();
        let text = if raw.is_empty() {
            Some("")
        } else {
            raw.get(1..)
        };
        let Some(text) = text else {
            return Err(self.error(format!(
                "{keyword} line for {family:?}: the name is followed by a non-ASCII character"
            )));
        };
        if keyword == "TYPE" {
            let kind = MetricType::from_text_format(text).ok_or_else(|| {
                self.error(format!(
                    "invalid metric type {text:?} for {family:?} (expected counter, gauge, histogram, summary or untyped)"
                ))
            })?;
            self.set_type(family, kind)?;
        } else {
            self.set_help(family, unescape(text, false))?;
        }
        self.end_of_line();
        Ok(())
    }

    fn text_sample(&mut self) -> Result<(), ParseError> {
        let start = self.pos;
        let name = self.metric_name();
        self.pairs.clear();
        self.skip_blanks();
        if self.peek() == Some(b'{') {
            self.pos += 1;
            self.text_labels(name)?;
        }
        let series = self.text.get(start..self.pos).unwrap_or("").trim_end();
        self.skip_blanks();
        let token = self.take_while(|byte| !matches!(byte, b'{' | b' ' | b'\t' | b'\n'));
        if token.is_empty() {
            return Err(self.error(format!(
                "expected a value after {series:?}, found {}",
                self.found()
            )));
        }
        let Some(value) = parse_float(token) else {
            return Err(self.error(format!(
                "expected a value after {series:?}, found {token:?}"
            )));
        };
        self.skip_blanks();
        let mut timestamp_ms = None;
        if self.peek().is_some_and(|byte| byte.is_ascii_digit()) {
            let digits = self.take_while(|byte| byte.is_ascii_digit());
            let Ok(ms) = digits.parse::<i64>() else {
                return Err(self.error(format!(
                    "timestamp {digits:?} of {series:?} is out of range for milliseconds"
                )));
            };
            timestamp_ms = Some(ms);
            self.skip_blanks();
        }
        let line = self.line;
        if !self.end_of_line() {
            let expected = if timestamp_ms.is_some() {
                "the end of the line after the timestamp"
            } else {
                "an integer millisecond timestamp or the end of the line after the value"
            };
            return Err(self.error(format!(
                "expected {expected} of {series:?}, found {}",
                self.found()
            )));
        }
        self.push_sample(name, series, value, timestamp_ms)
            .map_err(|error| ParseError { line, ..error })
    }

    /// The label set after `{`: blanks anywhere, commas optional (as in Prometheus 2.42).
    fn text_labels(&mut self, metric: &str) -> Result<(), ParseError> {
        self.pairs.clear();
        loop {
            self.skip_blanks();
            if self.peek() == Some(b'}') {
                self.pos += 1;
                return Ok(());
            }
            let label = self.label_name();
            if label.is_empty() {
                return Err(self.error(format!(
                    "expected a label name or \"}}\" in the labels of {metric:?}, found {}",
                    self.found()
                )));
            }
            self.reserved_check(label)?;
            self.skip_blanks();
            if self.peek() != Some(b'=') {
                return Err(self.error(format!(
                    "expected \"=\" after label name {label:?}, found {}",
                    self.found()
                )));
            }
            self.pos += 1;
            self.skip_blanks();
            let value = self.label_value(label)?;
            self.pairs.push((label, value));
            self.skip_blanks();
            if self.peek() == Some(b',') {
                self.pos += 1;
            }
        }
    }

    // ---- OpenMetrics 1.0 ----

    fn openmetrics_body(&mut self) -> Result<(), ParseError> {
        loop {
            match self.peek() {
                None => return Err(self.error(EOF_MISSING)),
                Some(b'\n') => {
                    return Err(self.error("blank lines are not allowed in OpenMetrics"));
                }
                Some(b'#') => {
                    if self.openmetrics_comment()? {
                        return Ok(());
                    }
                }
                Some(byte) if is_metric_name_start(byte) => self.openmetrics_sample()?,
                Some(_) => {
                    return Err(self.error(format!(
                        "expected a metric name or \"# HELP\", \"# TYPE\", \"# UNIT\", \"# EOF\", found {}",
                        self.found()
                    )));
                }
            }
        }
    }

    /// A `#` line; true once `# EOF` ended the exposition.
    fn openmetrics_comment(&mut self) -> Result<bool, ParseError> {
        let rest = self.rest();
        let keyword = ["HELP", "TYPE", "UNIT", "EOF"].into_iter().find(|keyword| {
            rest.strip_prefix("# ")
                .is_some_and(|after| after.starts_with(keyword))
        });
        let Some(keyword) = keyword else {
            return Err(self.error(format!(
                "expected \"# HELP\", \"# TYPE\", \"# UNIT\" or \"# EOF\" (OpenMetrics has no other comments), found {}",
                self.found()
            )));
        };
        self.pos += 2 + keyword.len();
        if keyword == "EOF" {
            let after = self.rest();
            if after.is_empty() || after == "\n" {
                return Ok(true);
            }
            if after.starts_with('\n') {
                self.line += 1;
            }
            return Err(self.error("unexpected data after \"# EOF\""));
        }
        if self.peek() != Some(b' ') {
            return Err(self.error(format!(
                "expected \" \" and a metric name after \"# {keyword}\", found {}",
                self.found()
            )));
        }
        self.pos += 1;
        let family = self.metric_name();
        if family.is_empty() {
            return Err(self.error(format!(
                "expected a metric name after \"# {keyword}\", found {}",
                self.found()
            )));
        }
        if self.peek() != Some(b' ') {
            return Err(self.error(format!(
                "expected \" \" and text after \"# {keyword} {family}\", found {}",
                self.found()
            )));
        }
        self.pos += 1;
        let text = self.take_line();
        if self.peek().is_none() {
            return Err(self.error(EOF_MISSING));
        }
        match keyword {
            "TYPE" => {
                let kind = MetricType::from_openmetrics(text).ok_or_else(|| {
                    self.error(format!(
                        "invalid metric type {text:?} for {family:?} (expected counter, gauge, histogram, gaugehistogram, summary, info, stateset or unknown)"
                    ))
                })?;
                self.set_type(family, kind)?;
            }
            "HELP" => self.set_help(family, unescape(text, true))?,
            _ => self.set_unit(family, text)?,
        }
        self.newline();
        Ok(false)
    }

    /// `name{labels} value [timestamp] [# {exemplar labels} value [timestamp]]`, single spaces.
    fn openmetrics_sample(&mut self) -> Result<(), ParseError> {
        let start = self.pos;
        let name = self.metric_name();
        self.pairs.clear();
        if self.peek() == Some(b'{') {
            self.pos += 1;
            self.openmetrics_labels(name, true)?;
        }
        let series = self.text.get(start..self.pos).unwrap_or("");
        let (value, timestamp_ms, line) = self.openmetrics_sample_tail(series)?;
        self.push_sample(name, series, value, timestamp_ms)
            .map_err(|error| ParseError { line, ..error })
    }

    /// Value, timestamp and exemplar; returns the sample's line, since the cursor has moved on.
    fn openmetrics_sample_tail(
        &mut self,
        series: &str,
    ) -> Result<(f64, Option<i64>, usize), ParseError> {
        let token = self.space_and_token();
        if token.is_empty() {
            return Err(self.error(format!(
                "expected \" \" and a value after {series:?}, found {}",
                self.found()
            )));
        }
        let value = parse_float(token).ok_or_else(|| {
            self.error(format!(
                "expected a value after {series:?}, found {token:?}"
            ))
        })?;
        let line = self.line;
        let mut timestamp_ms = None;
        if !self.rest().starts_with(" # {") && self.peek() == Some(b' ') {
            let token = self.space_and_token();
            if token.is_empty() {
                return Err(self.error(format!(
                    "expected a timestamp, an exemplar or the end of the line after the value of {series:?}, found {}",
                    self.found()
                )));
            }
            timestamp_ms = Some(self.openmetrics_timestamp(token, series, "timestamp")?);
        }
        if self.rest().starts_with(" # {") {
            self.pos += 4;
            self.openmetrics_exemplar(series)?;
            return Ok((value, timestamp_ms, line));
        }
        self.openmetrics_end_of_line(series)?;
        Ok((value, timestamp_ms, line))
    }

    fn openmetrics_exemplar(&mut self, series: &str) -> Result<(), ParseError> {
        self.openmetrics_labels(series, false)?;
        let token = self.space_and_token();
        if token.is_empty() {
            return Err(self.error(format!(
                "expected \" \" and a value after the exemplar labels of {series:?}, found {}",
                self.found()
            )));
        }
        if parse_float(token).is_none() {
            return Err(self.error(format!(
                "expected an exemplar value for {series:?}, found {token:?}"
            )));
        }
        if self.peek() == Some(b' ') {
            let token = self.space_and_token();
            if token.is_empty() {
                return Err(self.error(format!(
                    "expected an exemplar timestamp or the end of the line for {series:?}, found {}",
                    self.found()
                )));
            }
            self.openmetrics_timestamp(token, series, "exemplar timestamp")?;
        }
        self.openmetrics_end_of_line(series)
    }

    fn openmetrics_end_of_line(&mut self, series: &str) -> Result<(), ParseError> {
        match self.peek() {
            None => Err(self.error(EOF_MISSING)),
            Some(b'\n') => {
                self.newline();
                Ok(())
            }
            Some(_) => Err(self.error(format!(
                "expected the end of the line after {series:?}, found {}",
                self.found()
            ))),
        }
    }

    /// One space then a token up to the next space or line end; "" when that is not there.
    fn space_and_token(&mut self) -> &'a str {
        if self.peek() != Some(b' ') {
            return "";
        }
        let at = self.pos;
        self.pos += 1;
        let token = self.take_while(|byte| !matches!(byte, b' ' | b'\n'));
        if token.is_empty() {
            self.pos = at;
        }
        token
    }

    /// Float seconds to milliseconds.
    fn openmetrics_timestamp(
        &self,
        token: &str,
        series: &str,
        what: &str,
    ) -> Result<i64, ParseError> {
        match parse_float(token) {
            // Truncated toward zero, as Prometheus converts them.
            Some(seconds) if seconds.is_finite() => Ok((seconds * 1000.0) as i64),
            Some(_) => Err(self.error(format!("invalid {what} {token:?} of {series:?}"))),
            None => Err(self.error(format!(
                "expected a number of seconds as the {what} of {series:?}, found {token:?}"
            ))),
        }
    }

    /// The label set after `{`: no blanks, commas between pairs, no trailing comma. Exemplar
    /// labels (`keep` false) are only checked.
    fn openmetrics_labels(&mut self, series: &str, keep: bool) -> Result<(), ParseError> {
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            let label = self.label_name();
            if label.is_empty() {
                return Err(self.error(format!(
                    "expected a label name in the labels of {series:?}, found {}",
                    self.found()
                )));
            }
            if keep {
                self.reserved_check(label)?;
            }
            if self.peek() != Some(b'=') {
                return Err(self.error(format!(
                    "expected \"=\" after label name {label:?}, found {}",
                    self.found()
                )));
            }
            self.pos += 1;
            let value = self.label_value(label)?;
            if keep {
                self.pairs.push((label, value));
            }
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => {
                    return Err(self.error(format!(
                        "expected \",\" or \"}}\" after the value of label {label:?}, found {}",
                        self.found()
                    )));
                }
            }
        }
    }
}

fn is_metric_name_start(byte: u8) -> bool {
    byte.is_ascii_alphabetic() || byte == b'_' || byte == b':'
}

fn is_metric_name_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_' || byte == b':'
}

fn is_label_name_start(byte: u8) -> bool {
    byte.is_ascii_alphabetic() || byte == b'_'
}

fn is_label_name_char(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'_'
}

/// Undoes `\\`, `\n` and (`quote`) `\"`; any other backslash stays as written, as Prometheus
/// does. The text format's HELP has no `\"` escape.
fn unescape(raw: &str, quote: bool) -> String {
    if !raw.contains('\\') {
        return raw.to_string();
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let mut lookahead = chars.clone();
        match lookahead.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('"') if quote => out.push('"'),
            _ => {
                out.push('\\');
                continue;
            }
        }
        chars = lookahead;
    }
    out
}

/// A sample value as Prometheus reads it (Go's `strconv.ParseFloat` without hex floats or
/// underscores): decimal, `NaN`, `[+-]Inf`/`Infinity`, any case.
fn parse_float(token: &str) -> Option<f64> {
    if token.bytes().any(|byte| matches!(byte, b'p' | b'P' | b'_')) {
        return None;
    }
    let unsigned = token.strip_prefix(['+', '-']).unwrap_or(token);
    // Rust reads a signed NaN; Go does not.
    if unsigned.len() != token.len() && unsigned.starts_with(['n', 'N']) {
        return None;
    }
    let value: f64 = token.parse().ok()?;
    // Rust rounds an overflow to infinity; Go reports it as out of range.
    if value.is_infinite() && !unsigned.starts_with(['i', 'I']) {
        return None;
    }
    Some(value)
}

/// The start of `rest` up to its line end, quoted and cut short, for an error message.
fn describe(rest: &str) -> String {
    const MAX: usize = 40;
    if rest.is_empty() {
        return "the end of the input".to_string();
    }
    let line = rest.split('\n').next().unwrap_or("");
    if line.is_empty() {
        return "the end of the line".to_string();
    }
    let mut end = line.len().min(MAX);
    while !line.is_char_boundary(end) {
        end -= 1;
    }
    if end < line.len() {
        format!("{:?}...", &line[..end])
    } else {
        format!("{line:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Labels {
        Labels::from_pairs(pairs.iter().copied())
    }

    fn sample(pairs: &[(&str, &str)], value: f64, timestamp_ms: Option<i64>) -> ScrapedSample {
        ScrapedSample {
            labels: labels(pairs),
            timestamp_ms,
            value,
        }
    }

    fn text(body: &str) -> Scraped {
        parse(body, Format::PrometheusText).unwrap_or_else(|error| panic!("{error}"))
    }

    fn om(body: &str) -> Scraped {
        parse(body, Format::OpenMetrics).unwrap_or_else(|error| panic!("{error}"))
    }

    fn text_error(body: &str) -> String {
        parse(body, Format::PrometheusText)
            .expect_err("should not parse")
            .to_string()
    }

    fn om_error(body: &str) -> String {
        parse(body, Format::OpenMetrics)
            .expect_err("should not parse")
            .to_string()
    }

    fn meta(family: &str, kind: MetricType, help: &str, unit: &str) -> MetricMetadata {
        MetricMetadata {
            family: family.to_string(),
            kind,
            help: help.to_string(),
            unit: unit.to_string(),
        }
    }

    #[test]
    fn content_type_and_accept_header() {
        assert_eq!(Format::from_content_type(None), Format::PrometheusText);
        assert_eq!(
            Format::from_content_type(Some("text/plain; version=0.0.4; charset=utf-8")),
            Format::PrometheusText
        );
        assert_eq!(
            Format::from_content_type(Some(
                "application/openmetrics-text; version=1.0.0; charset=utf-8"
            )),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::from_content_type(Some(" Application/OpenMetrics-Text")),
            Format::OpenMetrics
        );
        assert_eq!(Format::from_content_type(Some("")), Format::PrometheusText);
        assert!(SCRAPE_ACCEPT.starts_with("application/openmetrics-text;version=1.0.0,"));
        assert!(SCRAPE_ACCEPT.ends_with(",*/*;q=0.1"));
    }

    #[test]
    fn metric_type_names() {
        let all = [
            (MetricType::Counter, "counter"),
            (MetricType::Gauge, "gauge"),
            (MetricType::Histogram, "histogram"),
            (MetricType::GaugeHistogram, "gaugehistogram"),
            (MetricType::Summary, "summary"),
            (MetricType::Info, "info"),
            (MetricType::StateSet, "stateset"),
            (MetricType::Unknown, "unknown"),
        ];
        for (kind, name) in all {
            assert_eq!(kind.as_str(), name);
            assert_eq!(MetricType::from_openmetrics(name), Some(kind));
        }
        assert_eq!(
            MetricType::from_text_format("untyped"),
            Some(MetricType::Unknown)
        );
        assert_eq!(MetricType::from_text_format("unknown"), None);
        assert_eq!(MetricType::from_openmetrics("untyped"), None);
    }

    #[test]
    fn text_format_samples_metadata_and_comments() {
        let body = "# HELP http_requests_total The total number of HTTP requests.\n\
                    # TYPE http_requests_total counter\n\
                    http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
                    http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\n\
                    \n\
                    # A normal comment, and an empty one:\n\
                    #\n\
                    msdos_file_access_time_seconds{path=\"C:\\\\DIR\\\\FILE.TXT\",error=\"Cannot find file:\\n\\\"FILE.TXT\\\"\"} 1.458255915e9\n\
                    metric_without_timestamp_and_labels 12.47\n\
                    something_weird{problem=\"division by zero\"} +Inf 3982045\n\
                    \t  indented{a=\"1\",} -Inf\n\
                    spaced { a = \"1\" , b= \"2\" , } NaN\n\
                    # HELP escaped Backslash \\\\ newline \\n other \\t quote \\\"\n";
        let scraped = text(body);
        let expected = [
            sample(
                &[
                    ("__name__", "http_requests_total"),
                    ("method", "post"),
                    ("code", "200"),
                ],
                1027.0,
                Some(1395066363000),
            ),
            sample(
                &[
                    ("__name__", "http_requests_total"),
                    ("method", "post"),
                    ("code", "400"),
                ],
                3.0,
                Some(1395066363000),
            ),
            sample(
                &[
                    ("__name__", "msdos_file_access_time_seconds"),
                    ("path", "C:\\DIR\\FILE.TXT"),
                    ("error", "Cannot find file:\n\"FILE.TXT\""),
                ],
                1.458255915e9,
                None,
            ),
            sample(
                &[("__name__", "metric_without_timestamp_and_labels")],
                12.47,
                None,
            ),
            sample(
                &[
                    ("__name__", "something_weird"),
                    ("problem", "division by zero"),
                ],
                f64::INFINITY,
                Some(3982045),
            ),
            sample(
                &[("__name__", "indented"), ("a", "1")],
                f64::NEG_INFINITY,
                None,
            ),
        ];
        assert_eq!(&scraped.samples[..6], &expected);
        let last = &scraped.samples[6];
        assert_eq!(
            last.labels,
            labels(&[("__name__", "spaced"), ("a", "1"), ("b", "2")])
        );
        assert!(last.value.is_nan());
        assert_eq!(scraped.samples.len(), 7);
        assert_eq!(
            scraped.metadata,
            vec![
                meta(
                    "http_requests_total",
                    MetricType::Counter,
                    "The total number of HTTP requests.",
                    ""
                ),
                meta(
                    "escaped",
                    MetricType::Unknown,
                    "Backslash \\ newline \n other \\t quote \\\"",
                    ""
                ),
            ]
        );
    }

    #[test]
    fn text_format_negative_timestamp_is_refused() {
        // Prometheus's lexer takes only digits as a timestamp.
        assert_eq!(
            text_error("a 1 -3982045\n"),
            "line 1: expected an integer millisecond timestamp or the end of the line after the value of \"a\", found \"-3982045\""
        );
    }

    #[test]
    fn text_format_values() {
        let body = "a 1e3\nb -0.5\nc Inf\nd +inf\ne NaN\nf .5\ng 1.\nh +7\ni 1E-400\nj -Infinity\n";
        let values: Vec<f64> = text(body).samples.iter().map(|s| s.value).collect();
        assert_eq!(values[..4], [1000.0, -0.5, f64::INFINITY, f64::INFINITY]);
        assert!(values[4].is_nan());
        assert_eq!(values[5..], [0.5, 1.0, 7.0, 0.0, f64::NEG_INFINITY]);
        for bad in [
            "0x1p3", "0x10", "1_000", "true", "1e400", "-1e999", "+NaN", "-nan", "1,5", "--1",
            "1e", ".",
        ] {
            assert_eq!(
                text_error(&format!("# ok\nfoo{{a=\"b\"}} {bad}\n")),
                format!("line 2: expected a value after \"foo{{a=\\\"b\\\"}}\", found {bad:?}")
            );
        }
        assert_eq!(
            text_error("# TYPE foo gauge\n\nfoo{a=\"b\"} abc\n"),
            r#"line 3: expected a value after "foo{a=\"b\"}", found "abc""#
        );
        assert_eq!(
            text_error("foo{a=\"b\"}\n"),
            r#"line 1: expected a value after "foo{a=\"b\"}", found the end of the line"#
        );
        assert_eq!(
            text_error("foo"),
            r#"line 1: expected a value after "foo", found the end of the input"#
        );
    }

    #[test]
    fn text_format_timestamps() {
        let scraped = text("a 1 0\nb 2 9223372036854775807 \t\nc 3\t  42");
        let stamps: Vec<_> = scraped.samples.iter().map(|s| s.timestamp_ms).collect();
        assert_eq!(stamps, [Some(0), Some(i64::MAX), Some(42)]);
        assert_eq!(
            text_error("a 1 9223372036854775808\n"),
            "line 1: timestamp \"9223372036854775808\" of \"a\" is out of range for milliseconds"
        );
        assert!(text_error("a 1 1.5\n").contains("after the timestamp of \"a\", found \".5\""));
        assert!(text_error("a 1 2 3\n").contains("found \"3\""));
        assert!(
            text_error("a 1 # comment\n").starts_with("line 1: expected an integer millisecond")
        );
    }

    #[test]
    fn text_format_quirks_prometheus_accepts() {
        // No final newline, labels without commas, no blank before the value, and a raw newline
        // inside a quoted value (the lexer allows it); the line count stays right after it.
        let scraped = text("a{x=\"1\" y=\"2\"}3\nb{v=\"two\nlines\"} 4\nc-5");
        assert_eq!(
            scraped.samples,
            vec![
                sample(&[("__name__", "a"), ("x", "1"), ("y", "2")], 3.0, None),
                sample(&[("__name__", "b"), ("v", "two\nlines")], 4.0, None),
                sample(&[("__name__", "c")], -5.0, None),
            ]
        );
        assert!(text_error("a{v=\"x\ny\"} 1\nbad line\n").starts_with("line 3: "));
        // The byte after a HELP name is a separator whatever it is; empty help is fine.
        let scraped =
            text("# HELP a-dash\n# HELP b\n# HELP c \n#\tTYPE  a gauge\n# HELPER x\n# TYPE\n");
        assert_eq!(
            scraped.metadata,
            vec![
                meta("a", MetricType::Gauge, "dash", ""),
                meta("b", MetricType::Unknown, "", ""),
                meta("c", MetricType::Unknown, "", ""),
            ]
        );
        // Empty label values are the same as absent labels.
        assert_eq!(
            text("a{x=\"\"} 1\n").samples[0].labels,
            labels(&[("__name__", "a")])
        );
    }

    #[test]
    fn text_format_histogram_and_summary_samples_stay_as_written() {
        let body = "# TYPE h histogram\n\
                    h_bucket{le=\"0.5\"} 1\nh_bucket{le=\"1\"} 2\nh_bucket{le=\"+Inf\"} 3\n\
                    h_sum 4.5\nh_count 3\n\
                    # TYPE s summary\n\
                    s{quantile=\"0.50\"} 1\ns_sum 2\ns_count 3\n";
        let scraped = text(body);
        let le: Vec<_> = scraped.samples[..3]
            .iter()
            .map(|s| s.labels.get("le").unwrap_or_default().to_string())
            .collect();
        assert_eq!(le, ["0.5", "1", "+Inf"]);
        assert_eq!(scraped.samples[5].labels.get("quantile"), Some("0.50"));
        assert_eq!(scraped.samples.len(), 8);
        assert_eq!(
            scraped.metadata,
            vec![
                meta("h", MetricType::Histogram, "", ""),
                meta("s", MetricType::Summary, "", "")
            ]
        );
    }

    #[test]
    fn text_format_names_and_labels_are_validated() {
        assert!(
            text("some:aggregate:rate5m{a_b=\"c\"} 1\n_under{_x=\"y\",Z9=\"z\"} 1\n")
                .samples
                .len()
                == 2
        );
        assert_eq!(
            text_error("ok 1\n1bad 1\n"),
            "line 2: expected a metric name, a comment or a blank line, found \"1bad 1\""
        );
        assert_eq!(
            text_error("a{b:c=\"d\"} 1\n"),
            r#"line 1: expected "=" after label name "b", found ":c=\"d\"} 1""#
        );
        assert!(text_error("a{1b=\"d\"} 1\n").contains("expected a label name"));
        assert!(text_error("a{,} 1\n").contains("expected a label name"));
        assert!(text_error("a{b=\"1\",,} 1\n").contains("expected a label name"));
        assert!(text_error("a{b='c'} 1\n").contains("expected a quoted value for label \"b\""));
        assert_eq!(
            text_error("a{b=\"c\",b=\"d\"} 1\n"),
            r#"line 1: label name "b" appears twice in "a{b=\"c\",b=\"d\"}""#
        );
        assert_eq!(
            text_error("\n\na{__name__=\"x\"} 1\n"),
            r#"line 3: label name "__name__" is reserved (names starting with "__" are internal)"#
        );
        assert!(text_error("a{__meta=\"x\"} 1\n").contains("reserved"));
        assert!(text_error("a{b=\"c\"}{d=\"e\"} 1\n").contains("expected a value"));
        assert!(text_error("{a=\"b\"} 1\n").contains("expected a metric name"));
        assert!(
            text_error("# TYPE 1a gauge\n").contains("expected a metric name after \"# TYPE\"")
        );
        assert!(text_error("# HELP \n").contains("expected a metric name after \"# HELP\""));
        assert!(text_error("# HELP aé\n").starts_with("line 1: HELP line for \"a\""));
    }

    #[test]
    fn text_format_type_and_help_rules() {
        assert_eq!(
            text_error("# TYPE a gauge\n# TYPE a counter\n"),
            r#"line 2: second TYPE line for "a""#
        );
        assert_eq!(
            text_error("# HELP a x\n# HELP a y\n"),
            r#"line 2: second HELP line for "a""#
        );
        assert_eq!(
            text_error("a 1\n# TYPE a gauge\n"),
            r#"line 2: TYPE line for "a" after its sample "a"; it must come first"#
        );
        assert!(
            text_error("h_bucket{le=\"1\"} 1\n# TYPE h histogram\n")
                .contains("after its sample \"h_bucket\"")
        );
        assert_eq!(
            text_error("# TYPE a gaugehistogram\n"),
            r#"line 1: invalid metric type "gaugehistogram" for "a" (expected counter, gauge, histogram, summary or untyped)"#
        );
        assert!(text_error("# TYPE a counter \n").contains("invalid metric type \"counter \""));
        assert!(text_error("# TYPE a\n").contains("invalid metric type \"\""));
        // A different family with a related name is fine, and HELP may follow samples.
        let scraped = text("a_sum 1\n# TYPE a gauge\n# HELP a_sum late help\n# TYPE u untyped\n");
        assert_eq!(
            scraped.metadata,
            vec![
                meta("a", MetricType::Gauge, "", ""),
                meta("a_sum", MetricType::Unknown, "late help", ""),
                meta("u", MetricType::Unknown, "", ""),
            ]
        );
    }

    const OPENMETRICS: &str = "# TYPE acme_http_router_request_seconds summary\n\
# UNIT acme_http_router_request_seconds seconds\n\
# HELP acme_http_router_request_seconds Latency though all of ACME's HTTP request router.\n\
acme_http_router_request_seconds_sum{path=\"/api/v1\",method=\"GET\"} 9036.32\n\
acme_http_router_request_seconds_count{path=\"/api/v1\",method=\"GET\"} 807283.0\n\
acme_http_router_request_seconds_created{path=\"/api/v1\",method=\"GET\"} 1605281325.0\n\
# TYPE go_goroutines gauge\n\
go_goroutines 69 1520879607.789\n\
# TYPE foo counter\n\
# HELP foo A \\\"quoted\\\" help\\nwith lines\n\
foo_total{a=\"b\"} 17.0 1520879607.789 # {id=\"counter-test\"} 5\n\
foo_created{a=\"b\"} 1520872607.123\n\
# TYPE hist histogram\n\
hist_bucket{le=\"0.01\"} 0 # {} 0.005\n\
hist_bucket{le=\"+Inf\"} 17 # {trace_id=\"KOO5S4vxi0o\"} 0.67 1520879602.029\n\
hist_count 17\n\
hist_sum 324789.3\n\
# TYPE gh gaugehistogram\n\
gh_gbucket{le=\"+Inf\"} 2\n\
gh_gcount 2\n\
gh_gsum 1.5\n\
# TYPE build info\n\
build_info{version=\"1.2\"} 1\n\
# TYPE door stateset\n\
door{door=\"open\"} 1\n\
door{door=\"closed\"} 0\n\
# TYPE other unknown\n\
other{} -0.0 -1.5\n\
# EOF\n";

    #[test]
    fn openmetrics_exposition() {
        let scraped = om(OPENMETRICS);
        let names: Vec<_> = scraped
            .samples
            .iter()
            .map(|s| s.labels.metric_name().unwrap_or_default())
            .collect();
        assert_eq!(
            names,
            [
                "acme_http_router_request_seconds_sum",
                "acme_http_router_request_seconds_count",
                "acme_http_router_request_seconds_created",
                "go_goroutines",
                "foo_total",
                "foo_created",
                "hist_bucket",
                "hist_bucket",
                "hist_count",
                "hist_sum",
                "gh_gbucket",
                "gh_gcount",
                "gh_gsum",
                "build_info",
                "door",
                "door",
                "other",
            ]
        );
        assert_eq!(
            scraped.samples[0],
            sample(
                &[
                    ("__name__", "acme_http_router_request_seconds_sum"),
                    ("path", "/api/v1"),
                    ("method", "GET")
                ],
                9036.32,
                None
            )
        );
        assert_eq!(scraped.samples[2].value, 1605281325.0);
        // Float seconds to the nearest millisecond.
        assert_eq!(scraped.samples[3].timestamp_ms, Some(1520879607789));
        assert_eq!(scraped.samples[4].timestamp_ms, Some(1520879607789));
        assert_eq!(scraped.samples[4].value, 17.0);
        assert_eq!(scraped.samples[16].timestamp_ms, Some(-1500));
        assert_eq!(scraped.samples[16].labels, labels(&[("__name__", "other")]));
        assert_eq!(
            scraped.metadata,
            vec![
                meta(
                    "acme_http_router_request_seconds",
                    MetricType::Summary,
                    "Latency though all of ACME's HTTP request router.",
                    "seconds"
                ),
                meta("go_goroutines", MetricType::Gauge, "", ""),
                meta(
                    "foo",
                    MetricType::Counter,
                    "A \"quoted\" help\nwith lines",
                    ""
                ),
                meta("hist", MetricType::Histogram, "", ""),
                meta("gh", MetricType::GaugeHistogram, "", ""),
                meta("build", MetricType::Info, "", ""),
                meta("door", MetricType::StateSet, "", ""),
                meta("other", MetricType::Unknown, "", ""),
            ]
        );
    }

    #[test]
    fn openmetrics_timestamps_truncate_to_milliseconds() {
        let scraped = om("a 1 1.9999\nb 1 1.0004\nc 1 1e3\nd 1 0.001\ne 1 -0.0006\n# EOF");
        let stamps: Vec<_> = scraped.samples.iter().map(|s| s.timestamp_ms).collect();
        assert_eq!(
            stamps,
            [Some(1999), Some(1000), Some(1_000_000), Some(1), Some(0)]
        );
        for bad in ["NaN", "Inf", "-Inf"] {
            assert_eq!(
                om_error(&format!("a 1 {bad}\n# EOF\n")),
                format!("line 1: invalid timestamp {bad:?} of \"a\"")
            );
        }
        assert!(
            om_error("a 1 1z\n# EOF\n")
                .contains("expected a number of seconds as the timestamp of \"a\", found \"1z\"")
        );
        assert!(
            om_error("a 1 2 3\n# EOF\n")
                .contains("expected the end of the line after \"a\", found \" 3\"")
        );
    }

    #[test]
    fn openmetrics_eof_rules() {
        assert_eq!(om("# EOF"), Scraped::default());
        assert_eq!(om("# EOF\n"), Scraped::default());
        assert_eq!(
            om_error("a 1\nb 2\n"),
            r##"line 3: "# EOF" missing at the end of an OpenMetrics exposition"##
        );
        assert_eq!(
            om_error("a 1\nb 2"),
            r##"line 2: "# EOF" missing at the end of an OpenMetrics exposition"##
        );
        assert_eq!(
            om_error(""),
            r##"line 1: "# EOF" missing at the end of an OpenMetrics exposition"##
        );
        assert!(om_error("# TYPE a gauge\n").contains("\"# EOF\" missing"));
        assert!(om_error("a 1 # {x=\"y\"} 1").contains("\"# EOF\" missing"));
        assert_eq!(
            om_error("# EOF\na 1\n"),
            r##"line 2: unexpected data after "# EOF""##
        );
        assert_eq!(
            om_error("# EOF\n\n"),
            r##"line 2: unexpected data after "# EOF""##
        );
        assert_eq!(
            om_error("# EOFa 1"),
            r##"line 1: unexpected data after "# EOF""##
        );
        assert_eq!(
            om_error("# EOF "),
            r##"line 1: unexpected data after "# EOF""##
        );
        assert!(om_error("#EOF\n").contains("OpenMetrics has no other comments"));
    }

    #[test]
    fn openmetrics_is_strict_about_layout() {
        assert_eq!(
            om_error("a 1\n\nb 1\n# EOF\n"),
            "line 2: blank lines are not allowed in OpenMetrics"
        );
        assert!(om_error(" a 1\n# EOF\n").contains("expected a metric name"));
        assert!(om_error("a\t1\n# EOF\n").contains("expected \" \" and a value after \"a\""));
        assert!(om_error("a  1\n# EOF\n").contains("expected \" \" and a value after \"a\""));
        assert!(
            om_error("a {b=\"c\"} 1\n# EOF\n")
                .contains("expected a value after \"a\", found \"{b=\\\"c\\\"}\"")
        );
        assert!(om_error("a 1 \n# EOF\n").contains("expected a timestamp, an exemplar"));
        assert!(om_error("a 1\t2\n# EOF\n").contains("found \"1\\t2\""));
        assert!(om_error("a{b=\"c\",} 1\n# EOF\n").contains("expected a label name"));
        assert!(om_error("a{b=\"c\" d=\"e\"} 1\n# EOF\n").contains("expected \",\" or \"}\""));
        assert!(om_error("a{b = \"c\"} 1\n# EOF\n").contains("expected \"=\""));
        assert!(om_error("a{b=\"c\nd\"} 1\n# EOF\n").contains("unterminated quoted value"));
        assert!(om_error("a{__x=\"c\"} 1\n# EOF\n").contains("reserved"));
        assert!(om_error("a{b=\"1\",b=\"2\"} 1\n# EOF\n").contains("appears twice"));
        assert!(
            om_error("# random comment\n# EOF\n").contains("OpenMetrics has no other comments")
        );
        assert!(om_error("#\tTYPE a gauge\n# EOF\n").contains("OpenMetrics has no other comments"));
        assert!(om_error("# TYPE a untyped\n# EOF\n").contains("invalid metric type \"untyped\""));
        assert!(om_error("# TYPE a  gauge\n# EOF\n").contains("invalid metric type \" gauge\""));
        assert!(
            om_error("# TYPE  a gauge\n# EOF\n")
                .contains("expected a metric name after \"# TYPE\"")
        );
        assert!(
            om_error("# HELP a\n# EOF\n").contains("expected \" \" and text after \"# HELP a\"")
        );
        assert_eq!(
            om("# HELP a \n# EOF\n").metadata,
            vec![meta("a", MetricType::Unknown, "", "")]
        );
        assert!(
            om_error("# TYPE a gauge\na 1\n# TYPE a gauge\n# EOF\n").contains("second TYPE line")
        );
        assert!(
            om_error("a_total 1\n# TYPE a counter\n# EOF\n")
                .contains("after its sample \"a_total\"")
        );
    }

    #[test]
    fn openmetrics_units() {
        let scraped = om("# UNIT a_seconds seconds\n# UNIT b \n# EOF\n");
        assert_eq!(
            scraped.metadata,
            vec![
                meta("a_seconds", MetricType::Unknown, "", "seconds"),
                meta("b", MetricType::Unknown, "", "")
            ]
        );
        for family in ["metric", "metricseconds", "seconds"] {
            assert_eq!(
                om_error(&format!("# UNIT {family} seconds\n# EOF\n")),
                format!("line 1: unit \"seconds\" is not a suffix of metric family {family:?}")
            );
        }
        assert!(om_error("# UNIT a_s s\n# UNIT a_s s\n# EOF\n").contains("second UNIT line"));
    }

    #[test]
    fn openmetrics_exemplars_are_checked_and_dropped() {
        let scraped = om("a_total 1 # {a=\"b\",c=\"d\"} 2 3.5\nb 1 10 # {} 2\n# EOF\n");
        assert_eq!(
            scraped.samples[0],
            sample(&[("__name__", "a_total")], 1.0, None)
        );
        assert_eq!(scraped.samples[1].timestamp_ms, Some(10_000));
        for (body, reason) in [
            (
                "a 1 # {aa=bb}\n",
                "expected a quoted value for label \"aa\"",
            ),
            (
                "a 1 # {aa=\"bb\"}\n",
                "expected \" \" and a value after the exemplar labels",
            ),
            ("a 1 # {bb}\n", "expected \"=\" after label name \"bb\""),
            ("a 1 # {aa=\"bb\",,cc=\"dd\"} 1\n", "expected a label name"),
            (
                "a 1 # {aa=\"bb\"} 1_2\n",
                "expected an exemplar value for \"a\", found \"1_2\"",
            ),
            (
                "a 1 # {aa=\"bb\"} 1 NaN\n",
                "invalid exemplar timestamp \"NaN\"",
            ),
            ("a 1 # {aa=\"bb\"} 1 2 3\n", "expected the end of the line"),
            (
                "a 1 # x\n",
                "expected a number of seconds as the timestamp of \"a\", found \"#\"",
            ),
            (
                "a 1 2 # {a=\"b\"} 1 # {a=\"b\"} 1\n",
                "expected a number of seconds as the exemplar timestamp of \"a\", found \"#\"",
            ),
        ] {
            let error = om_error(&format!("{body}# EOF\n"));
            assert!(error.contains(reason), "{body:?}: {error}");
        }
    }

    /// A tiny xorshift generator, so the garbage tests need no extra crate.
    struct Rng(u64);

    impl Rng {
        fn step(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn never_panics_on_garbage_truncation_or_huge_input() {
        let formats = [Format::PrometheusText, Format::OpenMetrics];
        let valid_text =
            "# HELP h H\\n\n# TYPE h histogram\nh_bucket{le=\"+Inf\",x=\"é\\\"\"} 1 123\nh_sum 2\n";
        for body in [valid_text, OPENMETRICS] {
            for end in (0..=body.len()).filter(|end| body.is_char_boundary(*end)) {
                for format in formats {
                    let _ = parse(&body[..end], format);
                }
            }
        }
        let alphabet: Vec<char> = "ab_:{}=\",# \t\n\\\"01e.+-InfNaN# EOF# TYPEHELPUNITé€\u{0}\r"
            .chars()
            .collect();
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        for _ in 0..20_000 {
            let len = (rng.step() % 40) as usize;
            let garbage: String = (0..len)
                .map(|_| alphabet[(rng.step() % alphabet.len() as u64) as usize])
                .collect();
            for format in formats {
                let _ = parse(&garbage, format);
                let _ = parse(&format!("{garbage}\n# EOF\n"), format);
                let _ = parse(&format!("m{{a=\"{garbage}\"}} {garbage}\n"), format);
            }
            let bytes: Vec<u8> = (0..len).map(|_| rng.step() as u8).collect();
            let lossy = String::from_utf8_lossy(&bytes);
            for format in formats {
                let _ = parse(&lossy, format);
            }
        }
        for body in [
            "a{b=\"unterminated",
            "a{b=\"x\\",
            "a{b=\"x\\\n\"} 1",
            "a{b=\"x\"",
            "a{b=",
            "a{",
            "# TYPE a",
        ] {
            for format in formats {
                assert!(parse(body, format).is_err(), "{body:?}");
            }
        }
        for body in ["# HELP", "# ", "#", "# HELP a", "a 1"] {
            assert!(parse(body, Format::OpenMetrics).is_err(), "{body:?}");
        }
        let huge = format!("a 1{} {}\n", "0".repeat(400), "9".repeat(30));
        assert!(text_error(&huge).contains("expected a value"));
        let huge_ts = format!("a 1 {}\n", "9".repeat(400));
        assert!(text_error(&huge_ts).contains("out of range"));
        let huge_om_ts = format!("a 1 {}\n# EOF\n", "9".repeat(400));
        assert!(om_error(&huge_om_ts).contains("expected a number of seconds"));
        assert_eq!(
            om("a 1 1e300\n# EOF\n").samples[0].timestamp_ms,
            Some(i64::MAX)
        );
        let long_name = "x".repeat(100_000);
        assert_eq!(text(&format!("{long_name} 1\n")).samples.len(), 1);
    }

    #[test]
    fn many_samples_parse() {
        use std::fmt::Write;
        let mut body = String::from("# TYPE m counter\n");
        for i in 0..10_000 {
            let _ = writeln!(
                body,
                "m_total{{instance=\"host-{i}\",job=\"node\",le=\"{i}\"}} {i}.5"
            );
        }
        body.push_str("# EOF\n");
        let scraped = om(&body);
        assert_eq!(scraped.samples.len(), 10_000);
        assert_eq!(
            scraped.samples[9_999].labels.get("instance"),
            Some("host-9999")
        );
        assert_eq!(scraped.samples[9_999].value, 9999.5);
        assert_eq!(text(&body.replace("# EOF\n", "")).samples.len(), 10_000);
    }
}
