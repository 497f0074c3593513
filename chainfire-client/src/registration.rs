use std::time::Duration;

use etcd_client::PutOptions;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::{Backoff, Error};

/// A key kept alive on a lease by a background task. Stopping (or dropping) it revokes the
/// lease, so the key disappears at once instead of after the TTL.
pub struct Registration {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

struct Registrar {
    client: etcd_client::Client,
    key: String,
    value: Vec<u8>,
    ttl_secs: i64,
}

impl Registrar {
    /// Grants a lease and puts the key on it.
    async fn register(&mut self) -> Result<i64, Error> {
        let lease = self.client.lease_grant(self.ttl_secs, None).await?.id();
        let options = PutOptions::new().with_lease(lease);
        self.client
            .put(self.key.clone(), self.value.clone(), Some(options))
            .await?;
        Ok(lease)
    }

    /// Keeps `lease` alive until stopped; returns `false` if the lease was lost.
    async fn keep_alive(&mut self, lease: i64, stop: &mut oneshot::Receiver<()>) -> Option<bool> {
        let Ok((mut keeper, mut responses)) = self.client.lease_keep_alive(lease).await else {
            return Some(false);
        };
        let interval = Duration::from_millis((self.ttl_secs.max(1) as u64 * 1000) / 3);
        loop {
            if keeper.keep_alive().await.is_err() {
                return Some(false);
            }
            match responses.message().await {
                Ok(Some(response)) if response.ttl() > 0 => {}
                _ => return Some(false),
            }
            tokio::select! {
                _ = &mut *stop => return None,
                () = tokio::time::sleep(interval) => {}
            }
        }
    }

    async fn run(mut self, mut lease: i64, mut stop: oneshot::Receiver<()>) {
        let mut backoff = Backoff::new();
        loop {
            if self.keep_alive(lease, &mut stop).await.is_none() {
                // Stopped: revoke so the key goes away now.
                let _ = self.client.lease_revoke(lease).await;
                return;
            }
            tracing::warn!(
                "registration {} lost its lease; registering again",
                self.key
            );
            loop {
                tokio::select! {
                    _ = &mut stop => return,
                    registered = self.register() => match registered {
                        Ok(new_lease) => {
                            lease = new_lease;
                            backoff = Backoff::new();
                            break;
                        }
                        Err(err) => {
                            tracing::warn!("registration {} cannot reach chainfire: {err}", self.key);
                        }
                    },
                }
                backoff.wait().await;
            }
        }
    }
}

impl Registration {
    pub(crate) async fn start(
        client: etcd_client::Client,
        key: &str,
        value: Vec<u8>,
        ttl_secs: i64,
    ) -> Result<Self, Error> {
        let mut registrar = Registrar {
            client,
            key: key.to_owned(),
            value,
            ttl_secs,
        };
        let lease = registrar.register().await?;
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(registrar.run(lease, stopped));
        Ok(Self {
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// Revokes the lease (deleting the key) and waits for the background task to end.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        // The task revokes the lease on its own once told to stop.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
