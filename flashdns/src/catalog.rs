//! The zones being served, swapped whole on reload so that queries never wait for a reload
//! and never see half of one.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;
use hickory_proto::rr::Name;
use rustc_hash::FxHashMap;

use crate::source::{ZoneRef, ZoneSource};
use crate::zone::Zone;

/// One configured zone: its data when it has ever loaded, and how the last attempt went.
#[derive(Debug)]
pub struct ServedZone {
    pub source: ZoneRef,
    /// `None` until the zone has loaded once; queries for it get SERVFAIL meanwhile.
    pub zone: Option<Arc<Zone>>,
    pub loaded_at: Option<SystemTime>,
    /// Why the newest version could not be loaded (the older `zone` is still served).
    pub error: Option<String>,
}

#[derive(Debug, Default)]
pub struct ZoneSet {
    zones: FxHashMap<Name, Arc<ServedZone>>,
    /// Label counts of the shortest and longest origins, to bound the search for a zone.
    labels: (usize, usize),
}

impl ZoneSet {
    fn new(zones: FxHashMap<Name, Arc<ServedZone>>) -> Self {
        let counts = zones.keys().map(|name| name.iter().count());
        let labels = (counts.clone().min().unwrap_or(0), counts.max().unwrap_or(0));
        Self { zones, labels }
    }

    /// The zone with the longest origin that `name` is in.
    pub fn find(&self, name: &Name) -> Option<&Arc<ServedZone>> {
        let labels = name.iter().count();
        let (shortest, longest) = self.labels;
        (shortest..=longest.min(labels))
            .rev()
            .find_map(|depth| self.zones.get(&name.trim_to(depth)))
    }

    /// Every zone, in canonical name order.
    pub fn all(&self) -> Vec<&Arc<ServedZone>> {
        let mut zones: Vec<_> = self.zones.values().collect();
        zones.sort_by(|a, b| a.source.origin.cmp(&b.source.origin));
        zones
    }

    pub fn get(&self, origin: &Name) -> Option<&Arc<ServedZone>> {
        self.zones.get(origin)
    }
}

/// What one reload did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReloadReport {
    pub loaded: Vec<String>,
    pub unchanged: usize,
    pub failed: Vec<String>,
    pub removed: Vec<String>,
    /// The source itself could not be listed; nothing changed.
    pub source_error: Option<String>,
}

impl ReloadReport {
    pub fn is_ok(&self) -> bool {
        self.failed.is_empty() && self.source_error.is_none()
    }
}

pub struct Catalog {
    source: Box<dyn ZoneSource>,
    current: ArcSwap<ZoneSet>,
    last_reload: Mutex<Option<(SystemTime, ReloadReport)>>,
    /// Reloads run one at a time (the timer and SIGHUP may coincide).
    reloading: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").finish_non_exhaustive()
    }
}

impl Catalog {
    pub fn new(source: Box<dyn ZoneSource>) -> Self {
        Self {
            source,
            current: ArcSwap::from_pointee(ZoneSet::default()),
            last_reload: Mutex::new(None),
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    pub fn zones(&self) -> arc_swap::Guard<Arc<ZoneSet>> {
        self.current.load()
    }

    pub fn last_reload(&self) -> Option<(SystemTime, ReloadReport)> {
        self.last_reload
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Re-reads the source. Zones whose fingerprint is unchanged are kept as they are unless
    /// `force`; a zone that fails to load keeps serving its previous data.
    pub async fn reload(self: &Arc<Self>, force: bool) -> ReloadReport {
        let _one_at_a_time = self.reloading.lock().await;
        let catalog = self.clone();
        let report = tokio::task::spawn_blocking(move || catalog.reload_now(force))
            .await
            .unwrap_or_else(|err| ReloadReport {
                source_error: Some(format!("reload task failed: {err}")),
                ..ReloadReport::default()
            });
        *self
            .last_reload
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) =
            Some((SystemTime::now(), report.clone()));
        report
    }

    fn reload_now(&self, force: bool) -> ReloadReport {
        let mut report = ReloadReport::default();
        let refs = match self.source.zones() {
            Ok(refs) => refs,
            Err(err) => {
                tracing::error!(
                    "cannot list zones: {err}; the zones already loaded stay in service"
                );
                report.source_error = Some(err);
                return report;
            }
        };
        let previous = self.current.load_full();
        let mut next = FxHashMap::default();
        for source in refs {
            let old = previous.get(&source.origin);
            if let Some(old) = old
                && !force
                && old.source.fingerprint.is_some()
                && old.source.fingerprint == source.fingerprint
            {
                report.unchanged += 1;
                next.insert(source.origin.clone(), old.clone());
                continue;
            }
            let served = self.load_one(source, old.map(Arc::as_ref), &mut report);
            next.insert(served.source.origin.clone(), Arc::new(served));
        }
        for gone in previous.all() {
            if !next.contains_key(&gone.source.origin) {
                tracing::info!(
                    "zone {} is no longer configured ({} gone); it is not served any more",
                    gone.source.origin,
                    gone.source.location
                );
                report.removed.push(gone.source.origin.to_string());
            }
        }
        self.current.store(Arc::new(ZoneSet::new(next)));
        report
    }

    fn load_one(
        &self,
        source: ZoneRef,
        old: Option<&ServedZone>,
        report: &mut ReloadReport,
    ) -> ServedZone {
        let origin = source.origin.clone();
        let old_zone = old.and_then(|old| old.zone.as_ref());
        match self.source.load(&source) {
            Ok(loaded) => {
                for warning in &loaded.warnings {
                    tracing::warn!("zone {origin} ({}): {warning}", source.location);
                }
                let zone = loaded.zone;
                match old_zone {
                    Some(old) if !serial_increased(old.serial(), zone.serial()) => tracing::warn!(
                        "zone {origin} changed in {} but its SOA serial did not increase ({} -> {}); secondaries will not pick up the change",
                        source.location,
                        old.serial(),
                        zone.serial()
                    ),
                    _ => tracing::info!(
                        "zone {origin} loaded from {}: serial {}, {} records",
                        source.location,
                        zone.serial(),
                        zone.record_count()
                    ),
                }
                report.loaded.push(origin.to_string());
                ServedZone {
                    source,
                    zone: Some(Arc::new(zone)),
                    loaded_at: Some(SystemTime::now()),
                    error: None,
                }
            }
            Err(err) => {
                let error = err.to_string();
                match old_zone {
                    Some(old) => tracing::error!(
                        "zone {origin} not reloaded: {error}; still serving serial {}",
                        old.serial()
                    ),
                    None => tracing::error!(
                        "zone {origin} cannot be loaded: {error}; its queries get SERVFAIL until the file is fixed"
                    ),
                }
                report.failed.push(format!("{origin}: {error}"));
                ServedZone {
                    source,
                    zone: old_zone.cloned(),
                    loaded_at: old.and_then(|old| old.loaded_at),
                    error: Some(error),
                }
            }
        }
    }
}

/// RFC 1982 serial number arithmetic: is `new` after `old`?
pub fn serial_increased(old: u32, new: u32) -> bool {
    new != old && new.wrapping_sub(old) < 1 << 31
}

#[cfg(test)]
mod tests {
    use super::serial_increased;

    #[test]
    fn serials_compare_with_wraparound() {
        assert!(serial_increased(1, 2));
        assert!(!serial_increased(2, 2));
        assert!(!serial_increased(3, 2));
        assert!(serial_increased(u32::MAX, 0));
        assert!(!serial_increased(0, u32::MAX));
    }
}
