//! A linearizability checker for single-key read/write registers.
//!
//! Fault-injection tests record every client operation in a [`History`] (when it was
//! invoked, when it completed, what it wrote or read) and afterwards call [`check`],
//! which looks for an order of the operations that explains every read and respects
//! real time: if A completed before B was invoked, A comes first.
//!
//! The search is the Wing & Gong / Lowe (WGL) one: extend a partial linearization
//! one operation at a time, and remember every (set of linearized ops, register
//! value) already explored so that no state is searched twice.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// What an operation did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Wrote this value.
    Write(u64),
    /// Read this value; `None` means the key was absent.
    Read(Option<u64>),
}

/// One client operation on one key. Times are nanoseconds since the history started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operation {
    pub key: String,
    pub kind: Kind,
    /// Taken before the request was sent.
    pub invoked: u64,
    /// Taken when the response arrived; `None` when the outcome is unknown (error or
    /// timeout), so the operation may take effect at any time after `invoked`, or never.
    pub completed: Option<u64>,
}

/// A thread-safe recorder of operations; clones share the same history.
#[derive(Clone)]
pub struct History {
    start: Instant,
    ops: Arc<Mutex<Vec<Operation>>>,
}

impl Default for History {
    fn default() -> Self {
        Self::new()
    }
}

impl History {
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            ops: Arc::default(),
        }
    }

    /// The current time; call it before sending a request and pass it back when recording.
    pub fn invoke(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    /// A write acknowledged just now.
    pub fn write_ok(&self, key: &str, value: u64, invoked: u64) {
        self.record(key, Kind::Write(value), invoked, Some(self.invoke()));
    }

    /// A write that failed or timed out: it may or may not have taken effect.
    pub fn write_unknown(&self, key: &str, value: u64, invoked: u64) {
        self.record(key, Kind::Write(value), invoked, None);
    }

    /// A read that returned `value` just now. Failed reads are not recorded: they
    /// observed nothing, so they constrain nothing.
    pub fn read_ok(&self, key: &str, value: Option<u64>, invoked: u64) {
        self.record(key, Kind::Read(value), invoked, Some(self.invoke()));
    }

    pub fn operations(&self) -> Vec<Operation> {
        self.lock().clone()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn record(&self, key: &str, kind: Kind, invoked: u64, completed: Option<u64>) {
        let key = key.to_owned();
        self.lock().push(Operation {
            key,
            kind,
            invoked,
            completed,
        });
    }

    // A panicking client task must not hide the history from the checker.
    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Operation>> {
        self.ops
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What [`check`] looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CheckStats {
    pub keys: usize,
    pub operations: usize,
}

/// Give up rather than run for ever (or out of memory) on a pathological history with
/// many long-overlapping operations; a few hundred mostly sequential ops need far fewer.
const MAX_STATES: usize = 1_000_000;

/// Checks that, for every key, the operations are linearizable for a register that
/// starts absent. On failure the error names the key and the operation that could
/// not be placed.
pub fn check(operations: &[Operation]) -> Result<CheckStats, String> {
    // Keys are independent registers, and checking them apart keeps each search small.
    let mut by_key: BTreeMap<&str, Vec<&Operation>> = BTreeMap::new();
    for op in operations {
        by_key.entry(&op.key).or_default().push(op);
    }
    for (key, ops) in &by_key {
        Search::new(ops)
            .run()
            .map_err(|e| format!("key {key}: {e}"))?;
    }
    Ok(CheckStats {
        keys: by_key.len(),
        operations: operations.len(),
    })
}

/// A point of the search: which operations are linearized so far (a bitset over
/// `Search::ops`) and the register value they leave.
#[derive(Clone, PartialEq, Eq, Hash)]
struct State {
    done: Vec<u64>,
    value: Option<u64>,
}

fn is_set(bits: &[u64], i: usize) -> bool {
    bits[i / 64] & (1 << (i % 64)) != 0
}

fn set(bits: &mut [u64], i: usize) {
    bits[i / 64] |= 1 << (i % 64);
}

/// The search for one key.
struct Search<'a> {
    /// Sorted by invocation, which lets `candidates` stop scanning early.
    ops: Vec<&'a Operation>,
    /// For each unknown-outcome write, the reads that returned its value.
    readers: Vec<Vec<usize>>,
    /// How many completed operations there are; all of them must be linearized.
    required: usize,
}

impl<'a> Search<'a> {
    fn new(ops: &[&'a Operation]) -> Self {
        // An unknown write whose value nobody read can be left out: placing it could
        // only hide earlier values from later reads, never explain a read.
        let observed: HashSet<u64> = ops
            .iter()
            .filter_map(|op| match op.kind {
                Kind::Read(value) => value,
                Kind::Write(_) => None,
            })
            .collect();
        let mut ops: Vec<&Operation> = ops
            .iter()
            .copied()
            .filter(|op| match op.kind {
                Kind::Write(v) => op.completed.is_some() || observed.contains(&v),
                Kind::Read(_) => true,
            })
            .collect();
        ops.sort_by_key(|op| op.invoked);
        let readers = ops
            .iter()
            .map(|op| match (op.kind.clone(), op.completed) {
                (Kind::Write(v), None) => (0..ops.len())
                    .filter(|&r| ops[r].kind == Kind::Read(Some(v)))
                    .collect(),
                _ => Vec::new(),
            })
            .collect();
        let required = ops.iter().filter(|op| op.completed.is_some()).count();
        Self {
            ops,
            readers,
            required,
        }
    }

    fn run(&self) -> Result<(), String> {
        let start = State {
            done: vec![0; self.ops.len().div_ceil(64)],
            value: None,
        };
        // Depth-first over states; each entry also counts its linearized completed ops.
        let mut stack = vec![(start, 0usize)];
        let mut seen = HashSet::new();
        // The state that linearized the most completed ops, to explain a failure.
        let mut furthest: Option<(State, usize)> = None;
        while let Some((mut state, mut finished)) = stack.pop() {
            // A read that may go next and returns the current value can always be
            // placed at once: it changes no value and only lifts real-time constraints.
            let candidates = loop {
                let candidates = self.candidates(&state.done);
                let read = Kind::Read(state.value);
                match candidates.iter().find(|&&i| self.ops[i].kind == read) {
                    Some(&i) => {
                        set(&mut state.done, i);
                        finished += 1;
                    }
                    None => break candidates,
                }
            };
            // Unknown writes still pending are simply taken never to have happened.
            if finished == self.required {
                return Ok(());
            }
            if !seen.insert(state.clone()) {
                continue;
            }
            if seen.len() > MAX_STATES {
                return Err(format!("gave up after {MAX_STATES} search states"));
            }
            if furthest.as_ref().is_none_or(|(_, most)| finished > *most) {
                furthest = Some((state.clone(), finished));
            }
            // Branch on which write goes next; reversed so the earliest is tried first.
            for &i in candidates.iter().rev() {
                if let Kind::Write(v) = self.ops[i].kind {
                    let mut next = state.clone();
                    set(&mut next.done, i);
                    next.value = Some(v);
                    let completed = usize::from(self.ops[i].completed.is_some());
                    stack.push((next, finished + completed));
                }
            }
        }
        Err(self.explain(&furthest.expect("the start state is always explored").0))
    }

    /// The operations that may be linearized next: those invoked before every other
    /// pending operation completed (otherwise that one must come first).
    fn candidates(&self, done: &[u64]) -> Vec<usize> {
        let first = 64 * done.iter().take_while(|&&w| w == u64::MAX).count();
        let mut min_completed = u64::MAX;
        let mut found = Vec::new();
        for i in first..self.ops.len() {
            if is_set(done, i) {
                continue;
            }
            let op = self.ops[i];
            // Sorted by invocation, so every later op was also invoked too late.
            if op.invoked > min_completed {
                break;
            }
            min_completed = min_completed.min(op.completed.unwrap_or(u64::MAX));
            // An unknown write whose readers are all placed can no longer help.
            let useless =
                op.completed.is_none() && self.readers[i].iter().all(|&r| is_set(done, r));
            if !useless {
                found.push(i);
            }
        }
        found
    }

    /// Describes why the search failed, from the state that got furthest. Its next
    /// operation in real time is a read whose value no placement of writes explains
    /// (a pending write there could always have been placed, getting further still).
    fn explain(&self, furthest: &State) -> String {
        let pending = (0..self.ops.len())
            .filter(|&i| !is_set(&furthest.done, i) && self.ops[i].completed.is_some());
        let Some(stuck) = pending.min_by_key(|&i| self.ops[i].completed) else {
            return "no linearization found".to_owned();
        };
        let op = self.ops[stuck];
        let writes = || self.ops.iter().filter(|w| matches!(w.kind, Kind::Write(_)));
        let mut before: Vec<&Operation> = writes()
            .filter(|w| w.completed.is_some_and(|c| c < op.invoked))
            .copied()
            .collect();
        before.sort_by_key(|w| w.completed);
        let before = &before[before.len().saturating_sub(3)..];
        let end = op.completed.unwrap_or(u64::MAX);
        let overlapping: Vec<&Operation> = writes()
            .filter(|w| w.invoked <= end && w.completed.is_none_or(|c| c >= op.invoked))
            .copied()
            .collect();
        format!(
            "{} but no linearization allows it (the furthest one reached leaves {:?}); \
             last acknowledged writes before it: {}; overlapping writes: {}",
            describe(op),
            furthest.value,
            list(before),
            list(&overlapping),
        )
    }
}

fn seconds(ns: u64) -> String {
    format!("{:.3}s", ns as f64 / 1e9)
}

/// E.g. `read [1.200s..1.300s] returned Some(7)` or `write of 7 [1.000s..?]`.
fn describe(op: &Operation) -> String {
    let end = op.completed.map_or("?".to_owned(), seconds);
    let span = format!("[{}..{end}]", seconds(op.invoked));
    match op.kind {
        Kind::Read(v) => format!("read {span} returned {v:?}"),
        Kind::Write(v) => format!("write of {v} {span}"),
    }
}

fn list(ops: &[&Operation]) -> String {
    if ops.is_empty() {
        return "none".to_owned();
    }
    // Unknown writes overlap everything after them, so keep the list short.
    const SHOWN: usize = 4;
    let mut described: Vec<String> = ops.iter().take(SHOWN).map(|op| describe(op)).collect();
    if ops.len() > SHOWN {
        described.push(format!("and {} more", ops.len() - SHOWN));
    }
    described.join(", ")
}
