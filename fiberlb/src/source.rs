//! Where the load balancer definitions come from and go back to: the adapter seam between
//! fiberlb and its configuration store (the config file standalone; chainfire with
//! integration).

use std::io::Write;
use std::path::PathBuf;

use futures::future::BoxFuture;
use photon_config::Sources;

use crate::config::{FiberlbSections, LoadBalancer};

pub trait ConfigSource: Send + Sync {
    /// For logs: where definitions come from.
    fn describe(&self) -> String;
    /// The definitions as they are now, checked.
    fn load(&self) -> BoxFuture<'_, Result<Vec<LoadBalancer>, String>>;
    /// Stores `loadbalancers` as the definitions; returns where they went.
    fn save<'a>(
        &'a self,
        loadbalancers: &'a [LoadBalancer],
    ) -> BoxFuture<'a, Result<String, String>>;
}

/// The config file (with the environment and flags layered on it, as at start-up).
pub struct FileSource {
    sources: Sources,
}

impl FileSource {
    pub fn new(sources: Sources) -> Self {
        Self { sources }
    }

    /// The file start-up read (the same lookup as `photon_config::load`).
    fn file(&self) -> Option<PathBuf> {
        photon_config::config_file(&self.sources).ok().flatten()
    }
}

impl ConfigSource for FileSource {
    fn describe(&self) -> String {
        match self.file() {
            Some(path) => format!("config file {}", path.display()),
            None => "defaults (no config file)".to_owned(),
        }
    }

    fn load(&self) -> BoxFuture<'_, Result<Vec<LoadBalancer>, String>> {
        Box::pin(async move {
            photon_config::load::<FiberlbSections>(&self.sources)
                .map(|loaded| loaded.sections.standalone.loadbalancers)
                .map_err(|err| err.to_string())
        })
    }

    fn save<'a>(
        &'a self,
        loadbalancers: &'a [LoadBalancer],
    ) -> BoxFuture<'a, Result<String, String>> {
        Box::pin(async move {
            let path = self
                .file()
                .ok_or("no config file to write to: start fiberlb with --config PATH".to_owned())?;
            let text = std::fs::read_to_string(&path)
                .map_err(|err| format!("cannot read {}: {err}", path.display()))?;
            let mut document: toml::Table = toml::from_str(&text)
                .map_err(|err| format!("cannot parse {}: {err}", path.display()))?;
            let standalone = document
                .entry("standalone")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            let toml::Value::Table(standalone) = standalone else {
                return Err(format!("{}: standalone is not a table", path.display()));
            };
            let value = toml::Value::try_from(loadbalancers)
                .map_err(|err| format!("cannot write the load balancers as TOML: {err}"))?;
            standalone.insert("loadbalancers".to_owned(), value);
            let rendered = toml::to_string_pretty(&document)
                .map_err(|err| format!("cannot render {}: {err}", path.display()))?;
            write_atomically(&path, rendered.as_bytes())
                .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
            Ok(path.display().to_string())
        })
    }
}

/// Writes a sibling temporary file, syncs it and renames it over `path`: a crash leaves the
/// old file or the new one.
fn write_atomically(path: &std::path::Path, contents: &[u8]) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".fiberlb-tmp");
    let temporary = PathBuf::from(temporary);
    let mut file = std::fs::File::create(&temporary)?;
    file.write_all(contents)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}
