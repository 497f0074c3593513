//! Where zones come from. Standalone reads BIND-format files; the integrated mode's chainfire
//! backend will be another `ZoneSource`.

use std::path::PathBuf;
use std::time::SystemTime;

use hickory_proto::rr::Name;

use crate::config::{DEFAULT_RECORD_TTL, ZonesSection};
use crate::zonefile::{LoadError, Loaded, load_zone_file};

/// One zone a source holds, and a fingerprint of its current content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneRef {
    pub origin: Name,
    /// Where the zone is read from, for logs and the REST API (a file path).
    pub location: String,
    /// Changes whenever the zone may have changed; `None` when that cannot be told.
    pub fingerprint: Option<String>,
}

pub trait ZoneSource: Send + Sync + 'static {
    /// The zones to serve now.
    fn zones(&self) -> Result<Vec<ZoneRef>, String>;
    /// Reads one of them.
    fn load(&self, zone: &ZoneRef) -> Result<Loaded, LoadError>;
}

/// Zones from the files `[standalone.zones]` names, or every `*.zone` in `zone_dir`.
pub struct FileZones {
    config: ZonesSection,
}

impl FileZones {
    pub fn new(config: ZonesSection) -> Self {
        Self { config }
    }

    fn configured(&self) -> Result<Vec<(Name, PathBuf)>, String> {
        if !self.config.zone.is_empty() {
            return self
                .config
                .zone
                .iter()
                .map(|entry| {
                    let origin = Name::from_utf8(&entry.name)
                        .map_err(|err| format!("zone name {:?}: {err}", entry.name))?;
                    Ok((origin, entry.file_in(&self.config.zone_dir)))
                })
                .collect();
        }
        let dir = &self.config.zone_dir;
        let entries = std::fs::read_dir(dir).map_err(|err| {
            format!(
                "cannot list zone_dir {}: {err} (create it, or list zones in [[standalone.zones.zone]])",
                dir.display()
            )
        })?;
        let mut zones = Vec::new();
        for entry in entries.flatten() {
            let path = entry.path();
            let Some(stem) = path
                .file_name()
                .and_then(|name| name.to_str())
                .and_then(|name| name.strip_suffix(".zone"))
            else {
                continue;
            };
            match Name::from_utf8(stem) {
                Ok(origin) => zones.push((origin, path)),
                Err(err) => tracing::warn!(
                    "zone file {} is not named after a zone ({err}); skipped",
                    path.display()
                ),
            }
        }
        zones.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(zones)
    }
}

impl ZoneSource for FileZones {
    fn zones(&self) -> Result<Vec<ZoneRef>, String> {
        Ok(self
            .configured()?
            .into_iter()
            .map(|(mut origin, file)| {
                origin.set_fqdn(true);
                ZoneRef {
                    fingerprint: file_fingerprint(&file),
                    origin,
                    location: file.display().to_string(),
                }
            })
            .collect())
    }

    fn load(&self, zone: &ZoneRef) -> Result<Loaded, LoadError> {
        let ttl = self
            .config
            .zone
            .iter()
            .find(|entry| {
                Name::from_utf8(&entry.name).is_ok_and(|mut name| {
                    name.set_fqdn(true);
                    name == zone.origin
                })
            })
            .and_then(|entry| entry.ttl)
            .unwrap_or(DEFAULT_RECORD_TTL);
        load_zone_file(&zone.origin, &PathBuf::from(&zone.location), Some(ttl))
    }
}

/// Size and modification time: cheap to read at every reload, and changed by any edit.
fn file_fingerprint(file: &PathBuf) -> Option<String> {
    let meta = std::fs::metadata(file).ok()?;
    let modified = meta
        .modified()
        .ok()?
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?;
    Some(format!("{}:{}", meta.len(), modified.as_nanos()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ZoneEntry;

    #[test]
    fn a_zone_entry_ttl_applies_to_records_without_one() {
        let dir = tempfile::TempDir::new().unwrap();
        let text = "@ IN SOA ns admin 1 3600 1800 604800 60\n@ IN NS ns\nns IN A 192.0.2.1\n";
        std::fs::write(dir.path().join("t.test.zone"), text).unwrap();
        let zones = FileZones::new(ZonesSection {
            zone_dir: dir.path().to_owned(),
            zone: vec![ZoneEntry {
                name: "t.test".into(),
                file: None,
                ttl: Some(1234),
                zone_type: Default::default(),
            }],
            ..ZonesSection::default()
        });
        let found = zones.zones().unwrap();
        let loaded = zones.load(&found[0]).unwrap();
        let ns = Name::from_ascii("ns.t.test.").unwrap();
        assert_eq!(loaded.zone.node(&ns).unwrap().rrsets[0].ttl, 1234);
    }
}
