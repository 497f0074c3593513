use std::path::PathBuf;

/// Why a configuration was refused. Every message names where the bad input came from (a file,
/// an environment variable or the command line), the key, the value and what is accepted.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("config file {} does not exist (named by {named_by})", path.display())]
    FileNotFound { path: PathBuf, named_by: String },

    #[error("config file {} cannot be used: {reason}", path.display())]
    FileUnusable { path: PathBuf, reason: String },

    #[error("environment variable {name} is not a PhotonCloud setting; accepted: {accepted}")]
    UnknownEnvironmentVariable { name: String, accepted: String },

    #[error(
        "command-line override {given:?} is not KEY=VALUE (for example photon.logging.level=debug)"
    )]
    MalformedOverride { given: String },

    #[error("{origin}: {key}{}: {reason}", value.as_ref().map(|v| format!(" = {v}")).unwrap_or_default())]
    Invalid {
        /// `config file PATH`, `environment variable NAME`, `command line` or `configuration`.
        origin: String,
        /// The dotted key, e.g. `photon.logging.level`.
        key: String,
        /// The offending value as written, when there is one.
        value: Option<String>,
        /// What is wrong and what is accepted.
        reason: String,
    },
}

/// A problem found by a validator, before the loader adds where the value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub key: String,
    pub reason: String,
}

impl Invalid {
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            reason: reason.into(),
        }
    }
}
