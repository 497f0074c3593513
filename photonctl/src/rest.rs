//! Calls to a component's JSON REST API: the answer's body, or an error naming the URL, the
//! status and the component's own reason.

use anyhow::{Context, bail};
use serde_json::Value;

/// Sends `request` (to `url`, on `component` at `endpoint`) and returns its JSON body.
pub async fn send(
    request: reqwest::RequestBuilder,
    component: &str,
    endpoint: &str,
    url: &str,
) -> anyhow::Result<Value> {
    let response = request
        .send()
        .await
        .with_context(|| format!("{component} at {endpoint} did not answer"))?;
    let status = response.status();
    let body: Value = response
        .json()
        .await
        .with_context(|| format!("{url} did not answer JSON"))?;
    if !status.is_success() {
        let reason = body["error"].as_str().unwrap_or("no reason given");
        bail!("{url}: {status}: {reason}");
    }
    Ok(body)
}
