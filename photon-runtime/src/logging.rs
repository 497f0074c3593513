use std::io::IsTerminal;

use photon_config::LogFormat;
use photon_config::schema::LoggingSection;
use tracing_subscriber::EnvFilter;

/// Libraries whose debug output drowns the component's own; kept at `warn` unless tracing.
const CHATTY_LIBRARIES: &[&str] = &["hyper", "hyper_util", "h2", "tower", "rustls", "reqwest"];

/// openraft reports every failed heartbeat to an unreachable peer (twice a second, at error
/// level); chainfire's transport logs reachability changes once instead.
const QUIET_LIBRARIES: &[&str] = &["openraft=error", "openraft::replication=off"];

/// Sets up the global subscriber from `[photon.logging]`, logging to standard error. A second
/// call (tests start several services in one process) keeps the first subscriber.
pub fn init_tracing(logging: &LoggingSection) {
    let level = logging.level.as_str();
    let mut directives = vec![level.to_owned()];
    if level != "trace" {
        directives.extend(CHATTY_LIBRARIES.iter().map(|lib| format!("{lib}=warn")));
        directives.extend(
            QUIET_LIBRARIES
                .iter()
                .map(|directive| directive.to_string()),
        );
    }
    let filter = EnvFilter::new(directives.join(","));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // Ignoring the error is the documented way to keep an already installed subscriber.
    let _ = match logging.format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
