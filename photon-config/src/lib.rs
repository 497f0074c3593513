//! PhotonCloud's shared configuration: the common `[photon]` schema, one loader for every
//! component (defaults < file < environment < command line), operation-mode detection and the
//! `/health` model.

#[macro_use]
mod keyword;

mod env;
mod error;
pub mod health;
mod load;
pub mod mode;
mod redact;
pub mod schema;
pub mod suite;
mod validate;

pub use error::{Error, Invalid};
pub use load::{Loaded, NoSections, Sections, Sources, config_file, default_file_candidates, load};
pub use mode::{ModeSource, ResolvedMode};
pub use schema::{
    Backend, BackendChoice, LogFormat, LogLevel, Mode, PhotonSection, list_or_comma_separated,
};
