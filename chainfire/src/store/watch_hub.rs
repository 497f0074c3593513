//! Fans committed changes out to watchers. Recent changes stay in memory; a watcher that falls
//! further behind reads from storage, so no event is lost however slow it is, and memory stays
//! bounded however many watchers there are.

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::watch;

use super::types::{Change, Revision};

/// How many recent changes are kept in memory.
const RECENT_CHANGES: usize = 16 * 1024;

pub struct WatchHub {
    recent: Mutex<VecDeque<Change>>,
    /// The latest published revision and the compaction point; watchers wait on it.
    progress: watch::Sender<Progress>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub revision: i64,
    pub compact_revision: i64,
}

/// What a watcher gets for "changes from revision N on".
pub enum Catchup {
    /// The changes (possibly none yet), all from memory.
    Recent(Vec<Change>),
    /// Memory no longer reaches back to N: read storage.
    FromStorage,
}

impl WatchHub {
    pub fn new(revision: i64, compact_revision: i64) -> Self {
        let (progress, _) = watch::channel(Progress {
            revision,
            compact_revision,
        });
        Self {
            recent: Mutex::new(VecDeque::new()),
            progress,
        }
    }

    pub fn subscribe(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
    }

    pub fn progress(&self) -> Progress {
        *self.progress.borrow()
    }

    /// Publishes the changes of committed writes (in revision order) up to `revision`.
    pub fn publish(&self, revision: i64, changes: Vec<Change>) {
        {
            let mut recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
            recent.extend(changes);
            let excess = recent.len().saturating_sub(RECENT_CHANGES);
            recent.drain(..excess);
        }
        self.progress.send_modify(|progress| {
            progress.revision = progress.revision.max(revision);
        });
    }

    pub fn compacted(&self, compact_revision: i64) {
        self.progress.send_modify(|progress| {
            progress.compact_revision = compact_revision;
        });
    }

    /// After a snapshot replaced the state: memory no longer matches storage.
    pub fn reset(&self, revision: i64, compact_revision: i64) {
        self.recent
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        self.progress.send_modify(|progress| {
            *progress = Progress {
                revision,
                compact_revision,
            };
        });
    }

    /// Changes with revision `from` or later, up to `to`.
    pub fn since(&self, from: i64, to: i64) -> Catchup {
        let recent = self.recent.lock().unwrap_or_else(|p| p.into_inner());
        let first_wanted = Revision { main: from, sub: 0 };
        let reaches_back = match recent.front() {
            Some(oldest) => oldest.revision <= first_wanted,
            // Nothing in memory: fine only if nothing happened since `from`.
            None => from > to,
        };
        if !reaches_back {
            return Catchup::FromStorage;
        }
        let start = recent.partition_point(|change| change.revision.main < from);
        Catchup::Recent(
            recent
                .range(start..)
                .take_while(|change| change.revision.main <= to)
                .cloned()
                .collect(),
        )
    }
}
