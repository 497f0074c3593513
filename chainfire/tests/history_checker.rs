//! Unit tests of the linearizability checker used by the fault-injection tests.
//! Histories are built directly from `Operation` values so they are deterministic.

mod common;

use common::history::{CheckStats, History, Kind, Operation, check};

/// Milliseconds, in the checker's nanosecond time unit.
const MS: u64 = 1_000_000;

fn write(key: &str, value: u64, invoked: u64, completed: u64) -> Operation {
    Operation {
        key: key.to_owned(),
        kind: Kind::Write(value),
        invoked: invoked * MS,
        completed: Some(completed * MS),
    }
}

fn write_unknown(key: &str, value: u64, invoked: u64) -> Operation {
    Operation {
        key: key.to_owned(),
        kind: Kind::Write(value),
        invoked: invoked * MS,
        completed: None,
    }
}

fn read(key: &str, value: Option<u64>, invoked: u64, completed: u64) -> Operation {
    Operation {
        key: key.to_owned(),
        kind: Kind::Read(value),
        invoked: invoked * MS,
        completed: Some(completed * MS),
    }
}

fn rejected(ops: &[Operation]) -> String {
    match check(ops) {
        Ok(stats) => panic!("accepted a non-linearizable history ({stats:?}): {ops:#?}"),
        Err(e) => e,
    }
}

#[test]
fn empty_history_is_accepted() {
    let stats = check(&[]).unwrap();
    assert_eq!(
        stats,
        CheckStats {
            keys: 0,
            operations: 0
        }
    );
}

#[test]
fn sequential_write_then_read_is_accepted() {
    let ops = [
        read("k", None, 0, 1),
        write("k", 1, 2, 3),
        read("k", Some(1), 4, 5),
        write("k", 2, 6, 7),
        read("k", Some(2), 8, 9),
    ];
    assert_eq!(
        check(&ops).unwrap(),
        CheckStats {
            keys: 1,
            operations: 5
        }
    );
}

#[test]
fn read_of_a_value_never_written_is_rejected() {
    let ops = [write("k", 1, 0, 1), read("k", Some(7), 2, 3)];
    let e = rejected(&ops);
    assert!(e.contains("key k:"), "{e}");
    assert!(e.contains("returned Some(7)"), "{e}");
}

#[test]
fn planted_stale_read_is_rejected() {
    // w(1) completes, then w(2) completes, then a read invoked after that returns 1.
    let ops = [
        write("k3", 1, 0, 10),
        write("k3", 2, 20, 30),
        read("k3", Some(1), 40, 50),
    ];
    let e = rejected(&ops);
    assert!(
        e.starts_with("key k3: read [0.040s..0.050s] returned Some(1)"),
        "{e}"
    );
    assert!(e.contains("write of 2 [0.020s..0.030s]"), "{e}");
}

#[test]
fn stale_read_is_rejected_on_one_key_among_good_ones() {
    let mut ops = vec![
        write("a", 1, 0, 10),
        read("a", Some(1), 20, 30),
        write("b", 5, 0, 10),
        write("b", 6, 20, 30),
        read("b", Some(5), 40, 50),
    ];
    let e = rejected(&ops);
    assert!(e.starts_with("key b:"), "{e}");
    ops.pop();
    check(&ops).unwrap();
}

#[test]
fn overlapping_write_and_read_may_go_either_way() {
    // The read overlaps w(2), so it may see the old or the new value.
    for seen in [1, 2] {
        let ops = [
            write("k", 1, 0, 10),
            write("k", 2, 20, 40),
            read("k", Some(seen), 25, 35),
        ];
        check(&ops).unwrap();
    }
}

#[test]
fn concurrent_reads_must_agree_with_one_order() {
    // Both reads overlap w(2), but the first one saw 2 and completed before the
    // second was invoked, so the second cannot see 1 again.
    let ops = [
        write("k", 1, 0, 10),
        write("k", 2, 20, 100),
        read("k", Some(2), 30, 40),
        read("k", Some(1), 50, 60),
    ];
    rejected(&ops);
}

#[test]
fn unknown_write_that_is_observed_is_accepted() {
    let ops = [
        write("k", 1, 0, 10),
        write_unknown("k", 2, 20),
        read("k", Some(1), 30, 40),
        read("k", Some(2), 100, 110),
    ];
    check(&ops).unwrap();
}

#[test]
fn unknown_write_never_observed_is_accepted() {
    let ops = [
        write("k", 1, 0, 10),
        write_unknown("k", 2, 20),
        read("k", Some(1), 30, 40),
        read("k", Some(1), 100, 110),
    ];
    check(&ops).unwrap();
}

#[test]
fn unknown_write_cannot_be_seen_before_it_was_invoked() {
    let ops = [
        write("k", 1, 0, 10),
        read("k", Some(2), 20, 30),
        write_unknown("k", 2, 40),
    ];
    let e = rejected(&ops);
    assert!(e.contains("returned Some(2)"), "{e}");
}

#[test]
fn unknown_write_once_seen_cannot_be_unseen() {
    // After a read saw 2 and a later read saw 1 again, only another write of 1 could
    // explain it, and there is none after the unknown write was invoked.
    let ops = [
        write("k", 1, 0, 10),
        write_unknown("k", 2, 20),
        read("k", Some(2), 30, 40),
        read("k", Some(1), 50, 60),
    ];
    rejected(&ops);
}

#[test]
fn read_of_none_after_a_completed_write_is_rejected() {
    let ops = [write("k", 1, 0, 10), read("k", None, 20, 30)];
    let e = rejected(&ops);
    assert!(e.contains("returned None"), "{e}");
}

#[test]
fn recorder_records_in_order_and_clones_share() {
    let history = History::new();
    let other = history.clone();
    let t = history.invoke();
    history.write_ok("k", 1, t);
    let t = other.invoke();
    other.read_ok("k", Some(1), t);
    let t = other.invoke();
    other.write_unknown("k", 2, t);
    assert_eq!(history.len(), 3);
    let ops = history.operations();
    assert!(ops[0].invoked <= ops[0].completed.unwrap());
    assert!(ops[0].completed.unwrap() <= ops[1].invoked);
    assert_eq!(ops[2].completed, None);
    assert_eq!(
        check(&ops).unwrap(),
        CheckStats {
            keys: 1,
            operations: 3
        }
    );
}

/// A deterministic pseudo-random generator, so the test needs no dependency.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }
}

/// A linearizable history by construction: each key gets operations whose
/// linearization points are 10 ms apart, with intervals widened around those points
/// (mostly a little, sometimes enough to overlap neighbours), and some writes whose
/// outcome is unknown (taking effect or not).
fn generated_history(keys: usize, per_key: usize) -> Vec<Operation> {
    let mut rng = Lcg(42);
    let mut ops = Vec::new();
    let mut next_value = 1;
    for k in 0..keys {
        let key = format!("k{k}");
        let mut value = None;
        for n in 0..per_key as u64 {
            let point = 10 + n * 10;
            let widen = if rng.below(8) == 0 { 30 } else { 4 };
            let invoked = point - rng.below(widen + 1).min(point);
            let completed = point + rng.below(widen + 1);
            let (kind, completed) = match rng.below(10) {
                0..=3 => (Kind::Read(value), Some(completed)),
                4..=8 => {
                    value = Some(next_value);
                    (Kind::Write(next_value), Some(completed))
                }
                // Unknown outcome: half of these take effect, half never do.
                _ => {
                    if rng.below(2) == 0 {
                        value = Some(next_value);
                    }
                    (Kind::Write(next_value), None)
                }
            };
            if let Kind::Write(_) = kind {
                next_value += 1;
            }
            ops.push(Operation {
                key: key.clone(),
                kind,
                invoked: invoked * MS,
                completed: completed.map(|c| c * MS),
            });
        }
    }
    ops
}

#[test]
fn many_mostly_sequential_operations_are_checked() {
    let ops = generated_history(20, 300);
    let stats = check(&ops).unwrap();
    assert_eq!(
        stats,
        CheckStats {
            keys: 20,
            operations: 6000
        }
    );
}

#[test]
fn stale_read_planted_late_in_a_long_history_is_rejected() {
    let mut ops = generated_history(20, 300);
    // A read invoked after everything on k7 finished, returning k7's first written
    // value, which was overwritten by later acknowledged writes.
    let first = ops
        .iter()
        .find_map(|op| match op.kind {
            Kind::Write(v) if op.key == "k7" && op.completed.is_some() => Some(v),
            _ => None,
        })
        .unwrap();
    ops.push(read("k7", Some(first), 10_000, 10_010));
    let e = rejected(&ops);
    assert!(e.starts_with("key k7: read [10.000s..10.010s]"), "{e}");
}
