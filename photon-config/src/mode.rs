//! Operation-mode detection (the spec's section 3.1): command line, then `PHOTON_MODE`, then
//! the config file, then a probe of the control plane, then standalone. The result says which
//! source decided, for the start-up log and `/health`.

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::health::health_url;
use crate::load::{Loaded, Sections};
use crate::schema::Mode;

/// How long the control-plane probe waits for an answer.
pub const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

crate::keyword_enum! {
    /// Which source decided the operation mode.
    pub enum ModeSource {
        Cli => "cli",
        Env => "env",
        File => "file",
        Probe => "probe",
        Default => "default",
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResolvedMode {
    pub mode: Mode,
    pub source: ModeSource,
    /// One line for the log: what exactly decided, e.g. `environment variable PHOTON_MODE`.
    pub detail: String,
}

impl<S: Sections> Loaded<S> {
    /// Resolves the operation mode; probes the control plane only when no layer set the mode
    /// and an endpoint is configured.
    pub async fn resolve_mode(&self, probe_timeout: Duration) -> ResolvedMode {
        if let (Some(mode), Some((source, origin))) = (self.photon.mode, &self.mode_set_by) {
            return ResolvedMode {
                mode,
                source: *source,
                detail: format!("photon.mode set by {origin}"),
            };
        }
        let Some(endpoint) = &self.photon.integrated.control_plane_endpoint else {
            return ResolvedMode {
                mode: Mode::Standalone,
                source: ModeSource::Default,
                detail: "no mode configured and no control plane endpoint to probe".into(),
            };
        };
        let url = health_url(endpoint);
        match probe(&url, probe_timeout).await {
            Ok(answer) => ResolvedMode {
                mode: Mode::Integrated,
                source: ModeSource::Probe,
                detail: format!("control plane at {url} answered {answer}"),
            },
            Err(why) => ResolvedMode {
                mode: Mode::Standalone,
                source: ModeSource::Default,
                detail: format!("no mode configured and the control plane probe failed: {why}"),
            },
        }
    }
}

/// GETs `url`; `Ok` with a description when it answers 2xx within `timeout`.
async fn probe(url: &str, timeout: Duration) -> Result<String, String> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .map_err(|err| format!("cannot build an HTTP client: {err}"))?;
    let started = Instant::now();
    let response = client
        .get(url)
        .send()
        .await
        .map_err(|err| format!("{url} did not answer within {timeout:?}: {err}"))?;
    let status = response.status();
    if status.is_success() {
        Ok(format!("{status} in {} ms", started.elapsed().as_millis()))
    } else {
        Err(format!("{url} answered {status}"))
    }
}
