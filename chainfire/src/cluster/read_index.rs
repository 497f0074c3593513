//! Linearizable reads share read-index rounds, as etcd's do: reads that arrive while a round is
//! under way wait for the next one, which then serves all of them at once. (A read cannot join
//! a round that started before it arrived: that round's index may miss a write acknowledged
//! just before the read.)

use std::sync::Weak;

use tokio::sync::{mpsc, oneshot};
use tonic::Status;

use crate::node::Node;

type Waiter = oneshot::Sender<Result<u64, Status>>;

pub struct ReadIndexBatcher {
    queue: mpsc::UnboundedSender<Waiter>,
}

impl ReadIndexBatcher {
    /// Starts the round loop; it ends with the node.
    pub fn start(node: Weak<Node>) -> Self {
        let (queue, mut waiting) = mpsc::unbounded_channel::<Waiter>();
        tokio::spawn(async move {
            while let Some(first) = waiting.recv().await {
                let mut batch = vec![first];
                while let Ok(next) = waiting.try_recv() {
                    batch.push(next);
                }
                let Some(node) = node.upgrade() else { return };
                let index = node.read_index_round().await;
                drop(node);
                for waiter in batch {
                    let _ = waiter.send(index.clone());
                }
            }
        });
        Self { queue }
    }

    /// The log index a read starting now must wait for.
    pub async fn read_index(&self) -> Result<u64, Status> {
        let (waiter, answer) = oneshot::channel();
        let stopped = || Status::unavailable("etcdserver: server stopped");
        self.queue.send(waiter).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}
