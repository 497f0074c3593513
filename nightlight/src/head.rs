//! The head: every series' labels, the inverted index from label pairs to series and each
//! series' open chunk, in memory.
//!
//! Memory per active series is what a metrics store is judged by, so the head keeps each
//! distinct label string once ([`Symbols`]) and a series holds its labels as pairs of the
//! strings' numbers: 8 bytes a label, where a [`Label`] is 48 and its set an allocation more.
//! [`Labels`] are built from the numbers when a query or the API asks for them.

use std::hash::Hasher;

use hashbrown::HashTable;
use promql_parser::label::{MatchOp, Matcher};
use rustc_hash::{FxHashMap, FxHasher};
use smol_str::SmolStr;

use crate::chunk::ChunkEncoder;
use crate::labels::{Label, Labels};

/// A label as the numbers of its name and value in [`Symbols`].
type SymbolPair = (u32, u32);

pub struct MemSeries {
    /// Sorted by name, as [`Labels`] are.
    labels: Box<[SymbolPair]>,
    /// Never empty once the series has a sample: a full chunk is closed as the next sample
    /// arrives, and that sample starts the new one.
    pub open: ChunkEncoder,
}

#[derive(Default)]
pub struct Head {
    pub series: FxHashMap<u64, MemSeries>,
    /// Series ids by the hash of their label strings ([`hash_pairs`]); equal hashes are told
    /// apart by comparing the labels.
    by_hash: HashTable<u64>,
    /// Label name → value → ascending series ids, all by symbol number.
    postings: FxHashMap<u32, FxHashMap<u32, Vec<u64>>>,
    symbols: Symbols,
    pub next_id: u64,
}

impl Head {
    pub fn find(&self, labels: &Labels) -> Option<u64> {
        self.by_hash
            .find(hash_labels(labels), |id| {
                self.series
                    .get(id)
                    .is_some_and(|series| self.symbols.same(&series.labels, labels))
            })
            .copied()
    }

    /// Adds a series that [`Head::find`] does not know.
    pub fn insert(&mut self, id: u64, labels: &Labels) {
        let pairs: Box<[SymbolPair]> = labels
            .iter()
            .map(|label| {
                (
                    self.symbols.intern(&label.name),
                    self.symbols.intern(&label.value),
                )
            })
            .collect();
        for &(name, value) in &pairs {
            let ids = self
                .postings
                .entry(name)
                .or_default()
                .entry(value)
                .or_default();
            // Ids grow, but a replayed store inserts in key order too; keep the list sorted.
            match ids.last() {
                Some(last) if *last > id => {
                    let at = ids.partition_point(|existing| *existing < id);
                    ids.insert(at, id);
                }
                _ => ids.push(id),
            }
        }
        self.series.insert(
            id,
            MemSeries {
                labels: pairs,
                open: ChunkEncoder::new(),
            },
        );
        let (series, symbols) = (&self.series, &self.symbols);
        self.by_hash.insert_unique(hash_labels(labels), id, |id| {
            symbols.hash(&series[id].labels)
        });
        self.next_id = self.next_id.max(id + 1);
    }

    pub fn remove(&mut self, id: u64) {
        let Some(series) = self.series.remove(&id) else {
            return;
        };
        let hash = self.symbols.hash(&series.labels);
        if let Ok(entry) = self.by_hash.find_entry(hash, |other| *other == id) {
            entry.remove();
        }
        for &(name, value) in &series.labels {
            if let Some(values) = self.postings.get_mut(&name) {
                if let Some(ids) = values.get_mut(&value) {
                    ids.retain(|other| *other != id);
                    if ids.is_empty() {
                        values.remove(&value);
                    }
                }
                if values.is_empty() {
                    self.postings.remove(&name);
                }
            }
            self.symbols.release(name);
            self.symbols.release(value);
        }
    }

    /// The labels of a series of this head.
    pub fn labels(&self, series: &MemSeries) -> Labels {
        Labels::from_sorted(
            self.symbols
                .strings(&series.labels)
                .map(|(name, value)| Label {
                    name: name.clone(),
                    value: value.clone(),
                })
                .collect(),
        )
    }

    /// Every series id, ascending.
    pub fn all_ids(&self) -> Vec<u64> {
        let mut all: Vec<u64> = self.series.keys().copied().collect();
        all.sort_unstable();
        all
    }

    /// Ascending ids of the series every matcher accepts. A matcher that accepts the empty
    /// string also accepts series without that label, as in Prometheus.
    pub fn matching(&self, matchers: &[Matcher]) -> Vec<u64> {
        let mut result: Option<Vec<u64>> = None;
        let mut filters = Vec::new();
        for matcher in matchers {
            if matcher.is_match("") {
                filters.push(matcher);
                continue;
            }
            let ids = self.ids_with_value(matcher);
            result = Some(match result {
                None => ids,
                Some(sofar) => intersect(&sofar, &ids),
            });
        }
        let ids = result.unwrap_or_else(|| self.all_ids());
        if filters.is_empty() {
            return ids;
        }
        ids.into_iter()
            .filter(|id| {
                let Some(series) = self.series.get(id) else {
                    return false;
                };
                filters.iter().all(|matcher| {
                    let value = self
                        .symbols
                        .number(&matcher.name)
                        .and_then(|name| series.labels.iter().find(|(n, _)| *n == name))
                        .map_or("", |&(_, value)| self.symbols.string(value));
                    matcher.is_match(value)
                })
            })
            .collect()
    }

    /// Series whose label `matcher.name` has a (non-empty) value the matcher accepts.
    fn ids_with_value(&self, matcher: &Matcher) -> Vec<u64> {
        let Some(values) = self
            .symbols
            .number(&matcher.name)
            .and_then(|name| self.postings.get(&name))
        else {
            return Vec::new();
        };
        if let MatchOp::Equal = matcher.op {
            return self
                .symbols
                .number(&matcher.value)
                .and_then(|value| values.get(&value))
                .cloned()
                .unwrap_or_default();
        }
        let mut ids: Vec<u64> = values
            .iter()
            .filter(|(value, _)| matcher.is_match(self.symbols.string(**value)))
            .flat_map(|(_, ids)| ids.iter().copied())
            .collect();
        ids.sort_unstable();
        ids
    }

    /// Every label name, sorted.
    pub fn label_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .postings
            .keys()
            .map(|name| self.symbols.string(*name).to_string())
            .collect();
        names.sort();
        names
    }

    /// Every value of label `name`, sorted.
    pub fn label_values(&self, name: &str) -> Vec<String> {
        let mut values: Vec<String> = self
            .symbols
            .number(name)
            .and_then(|name| self.postings.get(&name))
            .map(|values| {
                values
                    .keys()
                    .map(|value| self.symbols.string(*value).to_string())
                    .collect()
            })
            .unwrap_or_default();
        values.sort();
        values
    }
}

/// The distinct label names and values of the head, each stored once under a number, and
/// counted so that a string goes (and its number is reused) when its last series does.
#[derive(Default)]
struct Symbols {
    strings: Vec<SmolStr>,
    /// How many labels of the head's series use each string.
    uses: Vec<u32>,
    numbers: FxHashMap<SmolStr, u32>,
    /// Numbers of strings no series uses any more.
    free: Vec<u32>,
}

impl Symbols {
    fn intern(&mut self, s: &SmolStr) -> u32 {
        if let Some(&number) = self.numbers.get(s.as_str()) {
            self.uses[number as usize] += 1;
            return number;
        }
        let number = match self.free.pop() {
            Some(number) => {
                self.strings[number as usize] = s.clone();
                self.uses[number as usize] = 1;
                number
            }
            None => {
                let number = u32::try_from(self.strings.len())
                    .expect("fewer than 2^32 distinct label strings");
                self.strings.push(s.clone());
                self.uses.push(1);
                number
            }
        };
        self.numbers.insert(s.clone(), number);
        number
    }

    fn release(&mut self, number: u32) {
        let uses = &mut self.uses[number as usize];
        *uses -= 1;
        if *uses == 0 {
            let s = std::mem::take(&mut self.strings[number as usize]);
            self.numbers.remove(s.as_str());
            self.free.push(number);
        }
    }

    fn number(&self, s: &str) -> Option<u32> {
        self.numbers.get(s).copied()
    }

    fn string(&self, number: u32) -> &SmolStr {
        &self.strings[number as usize]
    }

    fn strings<'a>(
        &'a self,
        pairs: &'a [SymbolPair],
    ) -> impl Iterator<Item = (&'a SmolStr, &'a SmolStr)> + 'a {
        pairs
            .iter()
            .map(|&(name, value)| (self.string(name), self.string(value)))
    }

    /// The hash of a series filed with these pairs (see [`hash_pairs`]).
    fn hash(&self, pairs: &[SymbolPair]) -> u64 {
        hash_pairs(self.strings(pairs))
    }

    fn same(&self, pairs: &[SymbolPair], labels: &Labels) -> bool {
        pairs.len() == labels.len()
            && self
                .strings(pairs)
                .zip(labels)
                .all(|((name, value), label)| *name == label.name && *value == label.value)
    }
}

/// The hash the head files a series under, from its label strings in order: the same for a
/// [`Labels`] and for the series' symbol pairs. `0xff` cannot occur in UTF-8, so the
/// separators keep `{a="bc"}` and `{ab="c"}` apart.
fn hash_pairs<'a>(pairs: impl Iterator<Item = (&'a SmolStr, &'a SmolStr)>) -> u64 {
    let mut hasher = FxHasher::default();
    for (name, value) in pairs {
        hasher.write(name.as_bytes());
        hasher.write_u8(0xff);
        hasher.write(value.as_bytes());
        hasher.write_u8(0xff);
    }
    hasher.finish()
}

fn hash_labels(labels: &Labels) -> u64 {
    hash_pairs(labels.iter().map(|label| (&label.name, &label.value)))
}

fn intersect(a: &[u64], b: &[u64]) -> Vec<u64> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::new();
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push(a[i]);
                i += 1;
                j += 1;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(pairs: &[(&str, &str)]) -> Labels {
        // Each set built from its own strings, as decoded requests are.
        Labels::from_pairs(pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())))
    }

    #[test]
    fn a_label_string_is_held_once_and_goes_with_its_last_series() {
        let name = "apiserver_request_duration_seconds_bucket";
        let mut head = Head::default();
        let fast = set(&[("__name__", name), ("le", "0.1")]);
        let slow = set(&[("__name__", name), ("le", "0.5")]);
        head.insert(1, &fast);
        head.insert(2, &slow);
        // `__name__`, the name, `le`, and two bounds.
        assert_eq!(head.symbols.numbers.len(), 5);
        assert_eq!(head.labels(&head.series[&2]), slow);

        head.remove(1);
        assert_eq!(head.find(&fast), None);
        assert_eq!(head.find(&slow), Some(2));
        assert_eq!(head.symbols.numbers.len(), 4);
        assert_eq!(head.label_values("le"), ["0.5"]);

        // The freed number is reused, and the surviving series keeps its strings.
        let other = set(&[("__name__", "up"), ("job", "node")]);
        head.insert(3, &other);
        assert_eq!(head.symbols.strings.len(), 7);
        assert_eq!(head.labels(&head.series[&2]), slow);
        assert_eq!(head.labels(&head.series[&3]), other);

        head.remove(2);
        head.remove(3);
        assert!(head.symbols.numbers.is_empty());
        assert!(head.postings.is_empty());
        assert_eq!(head.by_hash.len(), 0);
    }

    #[test]
    fn series_are_found_by_their_labels_through_growth_and_removals() {
        let mut head = Head::default();
        let labels = |i: u64| set(&[("__name__", "m"), ("i", &i.to_string())]);
        for id in 0..2000 {
            head.insert(id, &labels(id));
        }
        for id in (0..2000).step_by(3) {
            head.remove(id);
        }
        for id in 0..2000 {
            let expected = (id % 3 != 0).then_some(id);
            assert_eq!(head.find(&labels(id)), expected, "series {id}");
        }
    }

    #[test]
    fn the_hash_tells_where_a_name_ends_and_its_value_starts() {
        assert_ne!(
            hash_labels(&set(&[("a", "bc")])),
            hash_labels(&set(&[("ab", "c")]))
        );
    }
}
