//! The health checks behind `/health`.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use photon_config::ResolvedMode;
use photon_config::health::{CHECK_OK, HealthReport, HealthStatus};
use tokio::task::JoinSet;

/// A check that takes longer than this counts as failed.
const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

type CheckFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;
type Check = Arc<dyn Fn() -> CheckFuture + Send + Sync>;

/// The component's identity and its named checks; cheap to clone and share with the parts that
/// add checks.
#[derive(Clone)]
pub struct Health {
    inner: Arc<Inner>,
}

struct Inner {
    component: String,
    component_id: String,
    version: String,
    mode: ResolvedMode,
    checks: RwLock<BTreeMap<String, Check>>,
}

impl Health {
    pub fn new(component: &str, component_id: &str, version: &str, mode: ResolvedMode) -> Self {
        Self {
            inner: Arc::new(Inner {
                component: component.to_owned(),
                component_id: component_id.to_owned(),
                version: version.to_owned(),
                mode,
                checks: RwLock::new(BTreeMap::new()),
            }),
        }
    }

    /// Adds (or replaces) the check `name`: `Ok(())` when healthy, `Err(what is wrong)` when not.
    pub fn add_check<F, Fut>(&self, name: impl Into<String>, check: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<(), String>> + Send + 'static,
    {
        let check: Check = Arc::new(move || Box::pin(check()));
        self.inner
            .checks
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .insert(name.into(), check);
    }

    /// Runs every check concurrently, each bounded by a timeout.
    pub async fn report(&self) -> HealthReport {
        let checks: Vec<(String, Check)> = self
            .inner
            .checks
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .iter()
            .map(|(name, check)| (name.clone(), check.clone()))
            .collect();

        let mut running = JoinSet::new();
        for (name, check) in checks {
            running.spawn(async move {
                let outcome = match tokio::time::timeout(CHECK_TIMEOUT, check()).await {
                    Ok(Ok(())) => CHECK_OK.to_owned(),
                    Ok(Err(problem)) => problem,
                    Err(_) => format!("no answer within {CHECK_TIMEOUT:?}"),
                };
                (name, outcome)
            });
        }
        let mut results = BTreeMap::new();
        while let Some(joined) = running.join_next().await {
            match joined {
                Ok((name, outcome)) => {
                    results.insert(name, outcome);
                }
                Err(err) => {
                    results.insert(format!("check-task-{}", results.len()), err.to_string());
                }
            }
        }

        let healthy = results.values().all(|outcome| outcome == CHECK_OK);
        HealthReport {
            status: if healthy {
                HealthStatus::Healthy
            } else {
                HealthStatus::Unhealthy
            },
            mode: self.inner.mode.mode,
            mode_source: self.inner.mode.source,
            component: self.inner.component.clone(),
            component_id: self.inner.component_id.clone(),
            version: self.inner.version.clone(),
            checks: results,
        }
    }
}
