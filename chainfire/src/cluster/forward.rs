//! Requests a member hands to the leader over the peer port, and their answers.

use serde::{Deserialize, Serialize};
use tonic::{Code, Status};

use super::member::Member;
use crate::lease::Remaining;
use crate::store::types::{Applied, Command};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Forwarded {
    /// Replicate a client write.
    Propose(Command),
    /// The log index a linearizable read must wait for.
    ReadIndex,
    /// Restart a lease's countdown (leases count down on the leader).
    LeaseKeepAlive(i64),
    LeaseRemaining(i64),
    Membership(MembershipChange),
    /// Start an election now (the leader is handing leadership over to this member).
    Campaign,
    /// Stay out of elections for this many milliseconds (while leadership moves to another).
    HoldElections(u64),
    /// The leader tells a member it removed: the member may never see the log entry that removed
    /// it, and would otherwise disturb the cluster with elections.
    Removed(u64),
}

impl Forwarded {
    /// Whether sending it twice is harmless: it may be resent when an attempt's fate is unknown.
    pub fn is_idempotent(&self) -> bool {
        !matches!(self, Forwarded::Propose(_) | Forwarded::Membership(_))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum MembershipChange {
    /// etcd's MemberAdd: a new member known by its peer URLs.
    Add {
        peer_urls: Vec<String>,
        is_learner: bool,
    },
    Remove(u64),
    Promote(u64),
    /// etcd's MemberUpdate: new peer URLs.
    UpdatePeerUrls {
        id: u64,
        peer_urls: Vec<String>,
    },
    /// A started member announces its name and client URLs (and its peer URLs, which are
    /// recorded only when there are none yet: a standalone member turned cluster member).
    Publish {
        id: u64,
        name: String,
        client_urls: Vec<String>,
        peer_urls: Vec<String>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ForwardReply {
    /// The write's answer and the log index it was applied at.
    Applied {
        applied: Applied,
        log_index: u64,
    },
    ReadIndex(u64),
    LeaseTtl(Option<i64>),
    LeaseRemaining(Option<Remaining>),
    /// A membership change took effect: the member it concerned (with its id).
    Member {
        id: u64,
        member: Member,
    },
    Done,
}

/// Why the leader did not do what was asked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Refusal {
    /// The receiver is not the leader (any more), and did nothing: ask the current leader.
    NotLeader,
    /// An answer to hand to the client as it is.
    Status { code: i32, message: String },
}

impl Refusal {
    pub fn from_status(status: &Status) -> Self {
        Refusal::Status {
            code: status.code() as i32,
            message: status.message().to_owned(),
        }
    }

    pub fn into_status(self) -> Status {
        match self {
            Refusal::NotLeader => Status::unavailable("etcdserver: not leader"),
            Refusal::Status { code, message } => Status::new(Code::from_i32(code), message),
        }
    }
}

pub type ForwardResult = Result<ForwardReply, Refusal>;
