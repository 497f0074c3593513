//! The flags every server takes.

use std::path::PathBuf;

use clap::Args;
use photon_config::{Error, LogLevel, Mode, Sources};

#[derive(Debug, Clone, Default, Args)]
pub struct ServerArgs {
    /// Config file. Without it: /etc/photon/<component>/config.toml, then
    /// ./<component>-config.toml, then defaults and environment only
    #[arg(long, env = "PHOTON_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Check the configuration, print the verdict and exit: 0 when valid, 1 when not
    #[arg(long, conflicts_with = "print_config")]
    pub check_config: bool,

    /// Print the effective configuration (secrets redacted) and exit
    #[arg(long)]
    pub print_config: bool,

    /// Operation mode; beats PHOTON_MODE and the file [possible values: standalone, integrated,
    /// hybrid]
    #[arg(long, value_name = "MODE")]
    pub mode: Option<Mode>,

    /// This instance's unique id (photon.component_id)
    #[arg(long, value_name = "ID")]
    pub component_id: Option<String>,

    /// Log level [possible values: trace, debug, info, warn, error]
    #[arg(long, value_name = "LEVEL")]
    pub log_level: Option<LogLevel>,

    /// Set any configuration key, beating environment and file; repeatable
    /// (e.g. --set photon.logging.format=json)
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub set: Vec<String>,
}

impl ServerArgs {
    /// The configuration sources for `component`: the standard file lookup, the process
    /// environment and these flags.
    pub fn sources(&self, component: &str) -> Result<Sources, Error> {
        let mut sources = Sources::new(component);
        sources.explicit_file = self.config.clone();
        sources.overrides = self.overrides()?;
        Ok(sources)
    }

    /// The flags as `(dotted key, value)` settings, in the order given.
    pub fn overrides(&self) -> Result<Vec<(String, String)>, Error> {
        let mut overrides = Vec::new();
        if let Some(mode) = self.mode {
            overrides.push(("photon.mode".to_owned(), mode.to_string()));
        }
        if let Some(id) = &self.component_id {
            overrides.push(("photon.component_id".to_owned(), id.clone()));
        }
        if let Some(level) = self.log_level {
            overrides.push(("photon.logging.level".to_owned(), level.to_string()));
        }
        for setting in &self.set {
            let (key, value) = setting
                .split_once('=')
                .filter(|(key, _)| !key.trim().is_empty())
                .ok_or_else(|| Error::MalformedOverride {
                    given: setting.clone(),
                })?;
            overrides.push((key.trim().to_owned(), value.to_owned()));
        }
        Ok(overrides)
    }
}
