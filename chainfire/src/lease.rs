//! Lease clocks. Grants and revocations are replicated through Raft; the countdown is not (as
//! in etcd): the leader keeps it, restarts every lease's full TTL when it takes over, and
//! proposes the revocation of a lease whose time is up.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::store::types::{Command, LeaseRecord};

/// etcd's largest accepted TTL.
pub const MAX_LEASE_TTL: i64 = 9_000_000_000;

#[derive(Debug, Clone, Copy)]
struct Clock {
    ttl: i64,
    deadline: Instant,
    /// A revocation has been proposed and not yet applied.
    revoking: bool,
}

#[derive(Debug, Default)]
pub struct Lessor {
    clocks: Mutex<HashMap<i64, Clock>>,
}

/// What TimeToLive reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Remaining {
    pub ttl: i64,
    pub granted_ttl: i64,
}

impl Lessor {
    pub fn new(leases: &[LeaseRecord]) -> Self {
        let lessor = Self::default();
        lessor.reset_all(leases);
        lessor
    }

    fn clocks(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Clock>> {
        self.clocks.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Every lease gets its full TTL from now (at start-up, on taking leadership, after a
    /// snapshot).
    pub fn reset_all(&self, leases: &[LeaseRecord]) {
        let now = Instant::now();
        *self.clocks() = leases
            .iter()
            .map(|lease| (lease.id, clock(lease.ttl, now)))
            .collect();
    }

    /// Follows the replicated grants and revocations.
    pub fn applied(&self, command: &Command) {
        match command {
            Command::LeaseGrant { id, ttl } => {
                self.clocks().insert(*id, clock(*ttl, Instant::now()));
            }
            Command::LeaseRevoke { id } => {
                self.clocks().remove(id);
            }
            _ => {}
        }
    }

    /// Restarts the lease's countdown; `None` when there is no such lease.
    pub fn keep_alive(&self, id: i64) -> Option<i64> {
        let mut clocks = self.clocks();
        let entry = clocks.get_mut(&id)?;
        *entry = clock(entry.ttl, Instant::now());
        Some(entry.ttl)
    }

    pub fn remaining(&self, id: i64) -> Option<Remaining> {
        let clocks = self.clocks();
        let entry = clocks.get(&id)?;
        let left = entry.deadline.saturating_duration_since(Instant::now());
        Some(Remaining {
            // Rounded up, as etcd reports it.
            ttl: left.as_millis().div_ceil(1000) as i64,
            granted_ttl: entry.ttl,
        })
    }

    /// Leases whose time is up and whose revocation is not yet proposed; they are marked as
    /// being revoked.
    pub fn take_expired(&self) -> Vec<i64> {
        let now = Instant::now();
        let mut clocks = self.clocks();
        let mut due = Vec::new();
        for (id, entry) in clocks.iter_mut() {
            if !entry.revoking && entry.deadline <= now {
                entry.revoking = true;
                due.push(*id);
            }
        }
        due
    }

    /// The proposed revocation failed: try again at the next check.
    pub fn retry(&self, id: i64) {
        if let Some(entry) = self.clocks().get_mut(&id) {
            entry.revoking = false;
        }
    }

    pub fn count(&self) -> usize {
        self.clocks().len()
    }
}

fn clock(ttl: i64, now: Instant) -> Clock {
    Clock {
        ttl,
        deadline: now + Duration::from_secs(ttl.max(0) as u64),
        revoking: false,
    }
}
