//! Loading: defaults < config file < environment < command line, merged by the `config` crate,
//! then checked key by key so that every refusal names its source, key, value and what is
//! accepted.

use std::path::{Path, PathBuf};

use config::{Config, FileFormat, Value, ValueKind};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::env::{EnvironmentLayer, is_environment_origin};
use crate::mode::ModeSource;
use crate::schema::PhotonSection;
use crate::validate::validate_photon;
use crate::{Error, Invalid};

/// A component's own top-level sections (everything beside `[photon]`, e.g. the spec's
/// `[standalone.server]`). Implementations should deny unknown fields.
pub trait Sections: Serialize + DeserializeOwned + Default + Send + Sync + 'static {
    /// Checks that types alone cannot express (ranges, combinations of keys).
    fn validate(&self, _photon: &PhotonSection) -> Vec<Invalid> {
        Vec::new()
    }
}

/// For a binary with no sections of its own: any top-level key beside `[photon]` is refused.
#[derive(Debug, Clone, Default, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoSections {}

impl Sections for NoSections {}

/// Accepts any sections unchecked; for tools that only need `[photon]` of some component's file.
impl Sections for toml::Table {}

/// Where a configuration comes from.
#[derive(Debug, Clone)]
pub struct Sources {
    /// The component's name, e.g. `lightningstor`.
    pub component: String,
    /// A file named by `--config` (or `PHOTON_CONFIG`): it must exist.
    pub explicit_file: Option<PathBuf>,
    /// Files tried in order when none is named; the first that exists is used.
    pub file_candidates: Vec<PathBuf>,
    /// The environment, as `(name, value)` pairs.
    pub env: Vec<(String, String)>,
    /// Command-line settings as `(dotted key, value)`, highest precedence.
    pub overrides: Vec<(String, String)>,
}

impl Sources {
    /// The standard lookup for `component` with the process environment.
    pub fn new(component: &str) -> Self {
        Self {
            component: component.to_owned(),
            explicit_file: None,
            file_candidates: default_file_candidates(component),
            env: std::env::vars().collect(),
            overrides: Vec::new(),
        }
    }
}

/// `/etc/photon/<component>/config.toml`, then `./<component>-config.toml`.
pub fn default_file_candidates(component: &str) -> Vec<PathBuf> {
    vec![
        PathBuf::from(format!("/etc/photon/{component}/config.toml")),
        PathBuf::from(format!("./{component}-config.toml")),
    ]
}

/// A loaded, checked configuration.
#[derive(Debug, Clone)]
pub struct Loaded<S> {
    pub photon: PhotonSection,
    pub sections: S,
    /// The file that was read, if any.
    pub file: Option<PathBuf>,
    /// Which layer set `photon.mode` (and its description), when one did.
    pub(crate) mode_set_by: Option<(ModeSource, String)>,
}

pub fn load<S: Sections>(sources: &Sources) -> Result<Loaded<S>, Error> {
    let file = config_file(sources)?;
    let environment = EnvironmentLayer::from_vars(sources.env.iter().cloned())?;

    let mut builder = Config::builder();
    if let Some(path) = &file {
        builder = builder.add_source(config::File::from(path.as_path()).format(FileFormat::Toml));
    }
    builder = builder.add_source(environment);
    for (key, value) in &sources.overrides {
        builder = builder
            .set_override(key.as_str(), value.as_str())
            .map_err(|_| Error::MalformedOverride {
                given: format!("{key}={value}"),
            })?;
    }
    let merged = builder.build().map_err(|err| match err {
        config::ConfigError::FileParse { cause, .. } => Error::FileUnusable {
            path: file.clone().unwrap_or_default(),
            reason: cause.to_string(),
        },
        other => Error::FileUnusable {
            path: file.clone().unwrap_or_default(),
            reason: other.to_string(),
        },
    })?;
    let tree = merged.cache;
    let mut top = match &tree.kind {
        ValueKind::Table(table) => table.clone(),
        _ => Default::default(),
    };

    let photon_value = top
        .remove("photon")
        .unwrap_or_else(|| Value::new(None, ValueKind::Table(Default::default())));
    let located = |key: &str, reason: String| located(&tree, file.as_deref(), key, reason);
    let photon: PhotonSection = deserialize(photon_value, "photon", located)?;
    let sections: S = deserialize(Value::new(None, ValueKind::Table(top)), "", located)?;

    let problems = validate_photon(&photon)
        .into_iter()
        .chain(sections.validate(&photon));
    if let Some(problem) = problems.into_iter().next() {
        return Err(located(&problem.key, problem.reason));
    }

    let mode_set_by = lookup(&tree, "photon.mode").map(|value| {
        let source = match value.origin() {
            None => ModeSource::Cli,
            Some(origin) if is_environment_origin(origin) => ModeSource::Env,
            Some(_) => ModeSource::File,
        };
        (source, origin_label(Some(value), file.as_deref()))
    });
    Ok(Loaded {
        photon,
        sections,
        file,
        mode_set_by,
    })
}

/// The file `sources` names: the explicit one (which must exist), else the first candidate that
/// exists, else none.
pub fn config_file(sources: &Sources) -> Result<Option<PathBuf>, Error> {
    if let Some(path) = &sources.explicit_file {
        return match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => Ok(Some(path.clone())),
            Ok(_) => Err(Error::FileUnusable {
                path: path.clone(),
                reason: "it is not a regular file".into(),
            }),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Err(Error::FileNotFound {
                path: path.clone(),
                named_by: "--config".into(),
            }),
            Err(err) => Err(Error::FileUnusable {
                path: path.clone(),
                reason: err.to_string(),
            }),
        };
    }
    Ok(sources
        .file_candidates
        .iter()
        .find(|path| Path::new(path).is_file())
        .cloned())
}

/// Deserializes `value` into `T`, turning a failure into an error that names the key's full
/// path, its value and the layer it came from.
fn deserialize<T: DeserializeOwned>(
    value: Value,
    prefix: &str,
    located: impl Fn(&str, String) -> Error,
) -> Result<T, Error> {
    serde_path_to_error::deserialize(value).map_err(|err| {
        let inner = err.path().to_string();
        let key = match (prefix.is_empty(), inner.as_str()) {
            (true, _) => inner.clone(),
            (false, ".") => prefix.to_owned(),
            (false, _) => format!("{prefix}.{inner}"),
        };
        located(&key, reason(err.inner()))
    })
}

/// The bare reason of a deserialization error, without the crate's own location suffixes.
fn reason(err: &config::ConfigError) -> String {
    match err {
        config::ConfigError::Type {
            unexpected,
            expected,
            ..
        } => format!("invalid type: {unexpected}, expected {expected}"),
        config::ConfigError::At { error, .. } => reason(error),
        other => other.to_string(),
    }
}

/// An [`Error::Invalid`] for `key`, with the value and the layer that set it.
fn located(tree: &Value, file: Option<&Path>, key: &str, reason: String) -> Error {
    let found = lookup(tree, key);
    let origin = origin_label(found, file);
    let value = found.and_then(|value| match &value.kind {
        ValueKind::String(text) => Some(format!("{text:?}")),
        ValueKind::Table(_) | ValueKind::Nil => None,
        other => Some(other.to_string()),
    });
    Error::Invalid {
        origin,
        key: key.to_owned(),
        value,
        reason,
    }
}

/// Where a merged value came from, in words: the layer that set it. A table takes the origin of
/// its first value that has one.
fn origin_label(found: Option<&Value>, file: Option<&Path>) -> String {
    match found.map(first_origin) {
        Some(Some(origin)) if is_environment_origin(origin) => origin.to_owned(),
        Some(Some(_)) => match file {
            Some(path) => format!("config file {}", path.display()),
            None => "configuration".to_owned(),
        },
        Some(None) => "command line".to_owned(),
        None => "configuration".to_owned(),
    }
}

fn first_origin(value: &Value) -> Option<&str> {
    match &value.kind {
        ValueKind::Table(table) => table.values().find_map(first_origin),
        ValueKind::Array(items) => items.iter().find_map(first_origin),
        _ => value.origin(),
    }
}

/// Finds `a.b[2].c` in the merged tree, or the nearest ancestor that exists (an environment
/// variable gives a whole list as one string, so `list[1]` finds `list`). `None` when not even
/// the first part exists.
fn lookup<'a>(tree: &'a Value, key: &str) -> Option<&'a Value> {
    let mut node = tree;
    for part in key.split('.').filter(|part| !part.is_empty()) {
        let (name, indices) = match part.find('[') {
            Some(at) => part.split_at(at),
            None => (part, ""),
        };
        if !name.is_empty() {
            node = match &node.kind {
                ValueKind::Table(table) => match table.get(name) {
                    Some(child) => child,
                    None if std::ptr::eq(node, tree) => return None,
                    None => return Some(node),
                },
                _ => return Some(node),
            };
        }
        for index in indices.split(['[', ']']).filter(|i| !i.is_empty()) {
            node = match (&node.kind, index.parse::<usize>()) {
                (ValueKind::Array(items), Ok(index)) if index < items.len() => &items[index],
                _ => return Some(node),
            };
        }
    }
    Some(node)
}

impl<S: Sections> Loaded<S> {
    /// The effective configuration as TOML, with secrets replaced by `<redacted>`.
    pub fn to_redacted_toml(&self) -> String {
        let mut table = match toml::Value::try_from(&self.sections) {
            Ok(toml::Value::Table(table)) => table,
            _ => toml::Table::new(),
        };
        if let Ok(photon) = toml::Value::try_from(&self.photon) {
            table.insert("photon".into(), photon);
        }
        let mut value = toml::Value::Table(table);
        crate::redact::redact(&mut value);
        toml::to_string_pretty(&value).unwrap_or_else(|err| format!("# cannot show: {err}\n"))
    }
}
