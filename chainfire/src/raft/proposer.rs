//! Batches concurrent client writes into one log entry, as etcd does: while a batch is being
//! committed, new requests queue up and go together in the next one, so one disk sync serves
//! many writes.

use std::sync::Arc;
use std::time::Duration;

use openraft::error::ClientWriteError;
use tokio::sync::{Semaphore, mpsc, oneshot};
use tonic::Status;

use super::Raft;
use crate::cluster::member::Member;
use crate::store::types::{Applied, Command, Proposal};

/// Commands in one log entry at most.
const MAX_BATCH_COMMANDS: usize = 512;
/// Encoded request bytes in one log entry at most (one request may alone exceed it).
const MAX_BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Batches being committed at once: one fills while the other is on its way to disk.
const BATCHES_IN_FLIGHT: usize = 2;

type Reply = oneshot::Sender<Result<Committed, ProposeError>>;

/// A command's answer and the index of the log entry that carried it.
pub type Committed = (Applied, u64);

/// Why a proposal has no answer. Every case leaves it unknown whether the command takes effect:
/// once handed to Raft, an entry another member copied may still be committed by a later leader,
/// even after this member dropped it.
#[derive(Debug, Clone)]
pub struct ProposeError(pub Status);

struct Pending {
    command: Command,
    reply: Reply,
}

/// Hands commands to Raft in batches.
#[derive(Clone)]
pub struct Proposer {
    queue: mpsc::Sender<Pending>,
}

impl Proposer {
    /// Starts the batching task; it ends when every `Proposer` is dropped. A batch not answered
    /// within `commit_timeout` fails (openraft drops the answers of entries it discards while
    /// installing a snapshot, which would otherwise hold a batch slot forever).
    pub fn start(raft: Raft, commit_timeout: Duration) -> Self {
        let (queue, waiting) = mpsc::channel(16 * 1024);
        tokio::spawn(batch_loop(raft, waiting, commit_timeout));
        Self { queue }
    }

    /// Replicates `command` and returns the state machine's answer to it.
    pub async fn propose(&self, command: Command) -> Result<Committed, ProposeError> {
        let (reply, answer) = oneshot::channel();
        self.queue
            .send(Pending { command, reply })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

fn stopped() -> ProposeError {
    ProposeError(Status::unavailable("etcdserver: server stopped"))
}

async fn batch_loop(raft: Raft, mut waiting: mpsc::Receiver<Pending>, commit_timeout: Duration) {
    let in_flight = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT));
    while let Some(first) = waiting.recv().await {
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        // Take whatever queued up while the previous batches were committing.
        let mut bytes = first.command.encoded_bytes();
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH_COMMANDS && bytes < MAX_BATCH_BYTES {
            match waiting.try_recv() {
                Ok(next) => {
                    bytes += next.command.encoded_bytes();
                    batch.push(next);
                }
                Err(_) => break,
            }
        }
        let (commands, replies): (Vec<Command>, Vec<Reply>) = batch
            .into_iter()
            .map(|pending| (pending.command, pending.reply))
            .unzip();
        match raft.client_write_ff(Proposal(commands)).await {
            Ok(committed) => {
                tokio::spawn(async move {
                    let outcome = tokio::time::timeout(commit_timeout, committed).await;
                    drop(permit);
                    let Ok(outcome) = outcome else {
                        let status = Status::deadline_exceeded(
                            "etcdserver: request timed out; the write may or may not take effect",
                        );
                        return fail_all(replies, &ProposeError(status));
                    };
                    match outcome {
                        Ok(Ok(response)) => {
                            let index = response.log_id.index;
                            for (reply, applied) in replies.into_iter().zip(response.data) {
                                let _ = reply.send(Ok((applied, index)));
                            }
                        }
                        Ok(Err(err)) => fail_all(replies, &write_error(err)),
                        Err(_) => fail_all(replies, &stopped()),
                    }
                });
            }
            Err(fatal) => {
                tracing::error!("Raft stopped; refusing writes: {fatal}");
                fail_all(
                    replies,
                    &ProposeError(Status::unavailable(format!(
                        "etcdserver: raft stopped: {fatal}"
                    ))),
                );
            }
        }
    }
}

fn write_error(err: ClientWriteError<u64, Member>) -> ProposeError {
    ProposeError(match err {
        // This member lost the lead before committing the entry; another member may still
        // commit it.
        ClientWriteError::ForwardToLeader(_) => {
            Status::unavailable("etcdserver: leader changed; the write may or may not take effect")
        }
        ClientWriteError::ChangeMembershipError(err) => {
            Status::failed_precondition(err.to_string())
        }
    })
}

fn fail_all(replies: Vec<Reply>, error: &ProposeError) {
    for reply in replies {
        let _ = reply.send(Err(error.clone()));
    }
}
