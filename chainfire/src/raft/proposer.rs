//! Batches concurrent client writes into one log entry, as etcd does: while a batch is being
//! committed, new requests queue up and go together in the next one, so one disk sync serves
//! many writes.

use std::sync::Arc;

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

#[derive(Debug, Clone)]
pub enum ProposeError {
    /// This member is not the leader, and the command was not (or will never be) committed:
    /// it can safely go to the leader instead.
    NotLeader,
    Failed(Status),
}

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
    /// Starts the batching task; it ends when every `Proposer` is dropped.
    pub fn start(raft: Raft) -> Self {
        let (queue, waiting) = mpsc::channel(16 * 1024);
        tokio::spawn(batch_loop(raft, waiting));
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
    ProposeError::Failed(Status::unavailable("etcdserver: server stopped"))
}

async fn batch_loop(raft: Raft, mut waiting: mpsc::Receiver<Pending>) {
    let in_flight = Arc::new(Semaphore::new(BATCHES_IN_FLIGHT));
    while let Some(first) = waiting.recv().await {
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        // Take whatever queued up while the previous batches were committing.
        let mut bytes = command_bytes(&first.command);
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH_COMMANDS && bytes < MAX_BATCH_BYTES {
            match waiting.try_recv() {
                Ok(next) => {
                    bytes += command_bytes(&next.command);
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
                    let outcome = committed.await;
                    drop(permit);
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
                    &ProposeError::Failed(Status::unavailable(format!(
                        "etcdserver: raft stopped: {fatal}"
                    ))),
                );
            }
        }
    }
}

fn command_bytes(command: &Command) -> usize {
    match command {
        Command::Put(bytes) | Command::DeleteRange(bytes) | Command::Txn(bytes) => bytes.len(),
        _ => 16,
    }
}

fn write_error(err: ClientWriteError<u64, Member>) -> ProposeError {
    match err {
        // openraft says so only for entries it never appended or has discarded uncommitted.
        ClientWriteError::ForwardToLeader(_) => ProposeError::NotLeader,
        ClientWriteError::ChangeMembershipError(err) => {
            ProposeError::Failed(Status::failed_precondition(err.to_string()))
        }
    }
}

fn fail_all(replies: Vec<Reply>, error: &ProposeError) {
    for reply in replies {
        let _ = reply.send(Err(error.clone()));
    }
}
