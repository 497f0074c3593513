//! Graceful shutdown: stop accepting, drain in-flight work up to a deadline, exit.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Shared by every server of a process. Servers stop accepting when [`Shutdown::token`] is
/// cancelled; work spawned on [`Shutdown::tracker`] is waited for, up to the deadline.
#[derive(Debug, Clone)]
pub struct Shutdown {
    token: CancellationToken,
    tracker: TaskTracker,
    deadline: Duration,
}

impl Shutdown {
    pub fn new(deadline: Duration) -> Self {
        Self {
            token: CancellationToken::new(),
            tracker: TaskTracker::new(),
            deadline,
        }
    }

    pub fn token(&self) -> CancellationToken {
        self.token.clone()
    }

    pub fn tracker(&self) -> TaskTracker {
        self.tracker.clone()
    }

    pub fn deadline(&self) -> Duration {
        self.deadline
    }

    /// Starts the shutdown (as a signal would).
    pub fn trigger(&self) {
        self.token.cancel();
    }

    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Cancels the token, then waits for tracked work until the deadline. Returns how many
    /// tasks were still running when the deadline passed (0 when all finished).
    pub async fn drain(&self) -> usize {
        self.token.cancel();
        self.tracker.close();
        match tokio::time::timeout(self.deadline, self.tracker.wait()).await {
            Ok(()) => 0,
            Err(_) => self.tracker.len(),
        }
    }
}

/// Waits for SIGINT or SIGTERM and returns its name.
pub async fn wait_for_signal() -> std::io::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(tokio::select! {
        _ = interrupt.recv() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn drain_waits_for_tracked_work() {
        let shutdown = Shutdown::new(Duration::from_secs(5));
        let token = shutdown.token();
        let finished = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = finished.clone();
        shutdown.tracker().spawn(async move {
            token.cancelled().await;
            tokio::time::sleep(Duration::from_millis(50)).await;
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        });
        assert_eq!(shutdown.drain().await, 0);
        assert!(finished.load(std::sync::atomic::Ordering::SeqCst));
    }

    #[tokio::test]
    async fn drain_gives_up_at_the_deadline() {
        let shutdown = Shutdown::new(Duration::from_millis(50));
        shutdown
            .tracker()
            .spawn(tokio::time::sleep(Duration::from_secs(60)));
        assert_eq!(shutdown.drain().await, 1);
    }

    #[tokio::test]
    async fn a_real_sigterm_is_seen() {
        let waiter = tokio::spawn(wait_for_signal());
        // Let the handler be installed before the signal is sent.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let status = std::process::Command::new("kill")
            .args(["-TERM", &std::process::id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let name = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(name, "SIGTERM");
    }
}
