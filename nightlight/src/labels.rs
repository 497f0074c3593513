//! Label sets: the identity of a series. Always sorted by label name, names unique, no empty
//! values (Prometheus treats an empty value as an absent label).

use std::fmt;
use std::sync::{Arc, OnceLock};

use serde::ser::{Serialize, SerializeMap, Serializer};
use smol_str::SmolStr;

pub const METRIC_NAME: &str = "__name__";

/// `[a-zA-Z_][a-zA-Z0-9_]*`, the label names Prometheus accepts.
pub fn is_label_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Names and values are [`SmolStr`]s: most are short enough to live inline (no allocation of
/// their own), and a longer one is shared by reference count between the copies of it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Label {
    pub name: SmolStr,
    pub value: SmolStr,
}

/// Shared, so the many copies a query makes of a series' labels cost a reference count. The
/// set without `__name__` (which most functions and operators return, at every step of a
/// query) is computed once per shared set.
#[derive(Clone, Default)]
pub struct Labels(Arc<Shared>);

#[derive(Default)]
struct Shared {
    labels: Box<[Label]>,
    without_name: OnceLock<Labels>,
}

impl Labels {
    fn new(labels: Box<[Label]>) -> Self {
        Labels(Arc::new(Shared {
            labels,
            without_name: OnceLock::new(),
        }))
    }

    /// A set from labels already sorted by name, with unique names and no empty value.
    pub(crate) fn from_sorted(labels: Box<[Label]>) -> Self {
        debug_assert!(labels.windows(2).all(|pair| pair[0].name < pair[1].name));
        Labels::new(labels)
    }
}

impl PartialEq for Labels {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.labels == other.0.labels
    }
}

impl Eq for Labels {}

impl PartialOrd for Labels {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Labels {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.labels.cmp(&other.0.labels)
    }
}

impl std::hash::Hash for Labels {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.labels.hash(state);
    }
}

impl fmt::Debug for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Labels({self})")
    }
}

impl Labels {
    /// Builds a label set from pairs in any order; a later pair wins over an earlier one with
    /// the same name, and empty values are dropped.
    pub fn from_pairs<N: Into<SmolStr>, V: Into<SmolStr>>(
        pairs: impl IntoIterator<Item = (N, V)>,
    ) -> Self {
        let mut builder = LabelsBuilder::default();
        for (name, value) in pairs {
            builder.set(name.into(), value.into());
        }
        builder.build()
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .labels
            .binary_search_by(|label| label.name.as_str().cmp(name))
            .ok()
            .map(|at| self.0.labels[at].value.as_str())
    }

    pub fn metric_name(&self) -> Option<&str> {
        self.get(METRIC_NAME)
    }

    pub fn iter(&self) -> std::slice::Iter<'_, Label> {
        self.0.labels.iter()
    }

    pub fn len(&self) -> usize {
        self.0.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.labels.is_empty()
    }

    /// The same set without `__name__` (what most PromQL functions and operators return).
    pub fn without_metric_name(&self) -> Labels {
        // The cache first: queries ask this of the same set at every step.
        if let Some(cached) = self.0.without_name.get() {
            return cached.clone();
        }
        if self.metric_name().is_none() {
            return self.clone();
        }
        self.0
            .without_name
            .get_or_init(|| {
                Labels::new(
                    self.0
                        .labels
                        .iter()
                        .filter(|label| label.name != METRIC_NAME)
                        .cloned()
                        .collect(),
                )
            })
            .clone()
    }

    /// Only the named labels (`by`, `on`), or all but them (`without`, `ignoring`; which also
    /// drop `__name__`).
    pub fn project(&self, names: &[String], keep_listed: bool) -> Labels {
        Labels::new(
            self.0
                .labels
                .iter()
                .filter(|label| {
                    let listed = names.iter().any(|name| *name == label.name);
                    if keep_listed {
                        listed
                    } else {
                        !listed && label.name != METRIC_NAME
                    }
                })
                .cloned()
                .collect(),
        )
    }

    pub fn builder(&self) -> LabelsBuilder {
        LabelsBuilder {
            labels: self.0.labels.to_vec(),
        }
    }

    /// A stable byte encoding (name, 0xff, value, 0xff, ...) used as a map key and in storage.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            self.0
                .labels
                .iter()
                .map(|l| l.name.len() + l.value.len() + 2)
                .sum(),
        );
        for label in self.0.labels.iter() {
            out.extend_from_slice(label.name.as_bytes());
            out.push(0xff);
            out.extend_from_slice(label.value.as_bytes());
            out.push(0xff);
        }
        out
    }

    /// The inverse of [`Labels::encode`]; `None` for bytes it did not write.
    pub fn decode(bytes: &[u8]) -> Option<Labels> {
        let mut parts = bytes.split(|byte| *byte == 0xff);
        let mut labels = Vec::new();
        loop {
            let name = parts.next()?;
            if name.is_empty() {
                // The trailing separator leaves one empty part at the end.
                return parts.next().is_none().then(|| Labels::new(labels.into()));
            }
            let value = parts.next()?;
            labels.push(Label {
                name: std::str::from_utf8(name).ok()?.into(),
                value: std::str::from_utf8(value).ok()?.into(),
            });
        }
    }
}

impl<'a> IntoIterator for &'a Labels {
    type Item = &'a Label;
    type IntoIter = std::slice::Iter<'a, Label>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.labels.iter()
    }
}

/// `{__name__="up", job="x"}` in the form PromQL and Prometheus's error messages use.
impl fmt::Display for Labels {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = self.metric_name();
        if let Some(name) = name {
            f.write_str(name)?;
        }
        let rest: Vec<&Label> = self
            .0
            .labels
            .iter()
            .filter(|l| l.name != METRIC_NAME)
            .collect();
        if rest.is_empty() && name.is_some() {
            return Ok(());
        }
        f.write_str("{")?;
        for (at, label) in rest.iter().enumerate() {
            if at > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{}={:?}", label.name, label.value)?;
        }
        f.write_str("}")
    }
}

/// The Prometheus API's `"metric": {"name": "value", ...}`.
impl Serialize for Labels {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.labels.len()))?;
        for label in self.0.labels.iter() {
            map.serialize_entry(&label.name, &label.value)?;
        }
        map.end()
    }
}

#[derive(Debug, Clone, Default)]
pub struct LabelsBuilder {
    labels: Vec<Label>,
}

impl LabelsBuilder {
    /// Sets a label; an empty value removes it.
    pub fn set(&mut self, name: impl Into<SmolStr>, value: impl Into<SmolStr>) -> &mut Self {
        let (name, value) = (name.into(), value.into());
        match self.labels.binary_search_by(|label| label.name.cmp(&name)) {
            Ok(at) if value.is_empty() => {
                self.labels.remove(at);
            }
            Ok(at) => self.labels[at].value = value,
            Err(_) if value.is_empty() => {}
            Err(at) => self.labels.insert(at, Label { name, value }),
        }
        self
    }

    pub fn remove(&mut self, name: &str) -> &mut Self {
        if let Ok(at) = self
            .labels
            .binary_search_by(|label| label.name.as_str().cmp(name))
        {
            self.labels.remove(at);
        }
        self
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.labels
            .binary_search_by(|label| label.name.as_str().cmp(name))
            .ok()
            .map(|at| self.labels[at].value.as_str())
    }

    pub fn build(&self) -> Labels {
        Labels::new(self.labels.as_slice().into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_are_sorted_deduplicated_and_empty_values_dropped() {
        let labels =
            Labels::from_pairs([("job", "a"), ("__name__", "up"), ("job", "b"), ("x", "")]);
        assert_eq!(labels.to_string(), r#"up{job="b"}"#);
        assert_eq!(labels.get("job"), Some("b"));
        assert_eq!(labels.get("x"), None);
    }

    #[test]
    fn encoding_round_trips_and_refuses_foreign_bytes() {
        let labels = Labels::from_pairs([("__name__", "m"), ("path", "/a b"), ("é", "ü")]);
        assert_eq!(Labels::decode(&labels.encode()), Some(labels));
        assert_eq!(Labels::decode(b""), Some(Labels::default()));
        assert_eq!(Labels::decode(b"name\xffvalue"), None);
    }
}
