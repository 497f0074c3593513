//! Reading BIND-format zone files with hickory-proto's parser, and naming the line at fault
//! when one is wrong (the parser itself reports no position).

use std::path::{Path, PathBuf};

use hickory_proto::rr::Name;
use hickory_proto::serialize::txt::Parser;

use crate::zone::{Zone, ZoneError};

/// Why a zone file could not be served.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("{file}: cannot read: {reason}")]
    Read { file: PathBuf, reason: String },
    #[error("{file}:{line}: {reason}")]
    Syntax {
        file: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{file}: {reason}")]
    Zone { file: PathBuf, reason: ZoneError },
}

/// A parsed zone and what was odd about it (records left out, mixed TTLs).
pub struct Loaded {
    pub zone: Zone,
    pub warnings: Vec<String>,
}

/// Reads `file` as the zone `origin`. `default_ttl` applies to records without a TTL when the
/// file sets no `$TTL` of its own.
pub fn load_zone_file(
    origin: &Name,
    file: &Path,
    default_ttl: Option<u32>,
) -> Result<Loaded, LoadError> {
    let text = std::fs::read_to_string(file).map_err(|err| LoadError::Read {
        file: file.to_owned(),
        reason: err.to_string(),
    })?;
    parse_zone(origin, file, &text, default_ttl)
}

pub fn parse_zone(
    origin: &Name,
    file: &Path,
    text: &str,
    default_ttl: Option<u32>,
) -> Result<Loaded, LoadError> {
    let prelude = default_ttl.map(|ttl| format!("$TTL {ttl}\n"));
    let prelude_lines = usize::from(prelude.is_some());
    let parse = |text: &str| {
        let input = match &prelude {
            Some(prelude) => format!("{prelude}{text}"),
            None => text.to_owned(),
        };
        Parser::new(input, Some(file.to_owned()), Some(origin.clone())).parse()
    };
    let records = match parse(text) {
        Ok((_, records)) => records,
        Err(err) => {
            let reason = err.to_string();
            let line = failing_line(text, &reason, |prefix| {
                parse(prefix).err().map(|err| err.to_string())
            });
            return Err(LoadError::Syntax {
                file: file.to_owned(),
                line: line.saturating_sub(prelude_lines).max(1),
                reason,
            });
        }
    };
    let records = records
        .into_values()
        .flat_map(|set| set.records_without_rrsigs().cloned().collect::<Vec<_>>());
    let (zone, warnings) =
        Zone::new(origin.clone(), records).map_err(|reason| LoadError::Zone {
            file: file.to_owned(),
            reason,
        })?;
    Ok(Loaded { zone, warnings })
}

/// The 1-based line where the whole text's parse error first shows: the shortest prefix of
/// whole lines that fails with the same error.
fn failing_line(text: &str, reason: &str, parse_prefix: impl Fn(&str) -> Option<String>) -> usize {
    let line_ends: Vec<usize> = text
        .match_indices('\n')
        .map(|(at, _)| at + 1)
        .chain(std::iter::once(text.len()))
        .collect();
    let fails_same = |lines: usize| {
        parse_prefix(&text[..line_ends[lines - 1]]).is_some_and(|error| error == reason)
    };
    let (mut low, mut high) = (1, line_ends.len());
    while low < high {
        let middle = (low + high) / 2;
        if fails_same(middle) {
            high = middle;
        } else {
            low = middle + 1;
        }
    }
    low
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Name {
        Name::from_ascii("example.com.").unwrap()
    }

    const GOOD: &str = "$ORIGIN example.com.\n$TTL 300\n@ IN SOA ns1 admin 1 3600 1800 604800 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\n";

    #[test]
    fn a_syntax_error_names_its_line() {
        let text = format!("{GOOD}www IN A 192.0.2.10\nbad IN A 300.1.1.1\nmail IN A 192.0.2.3\n");
        let err = parse_zone(&origin(), Path::new("z.zone"), &text, None)
            .err()
            .unwrap();
        match err {
            LoadError::Syntax { line, .. } => assert_eq!(line, 7, "{err}"),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn the_configured_ttl_applies_only_without_a_file_ttl() {
        let text = "@ IN SOA ns1 admin 1 3600 1800 604800 60\n@ IN NS ns1\nns1 IN A 192.0.2.1\n";
        let loaded = parse_zone(&origin(), Path::new("z.zone"), text, Some(1234)).unwrap();
        let ns1 = Name::from_ascii("ns1.example.com.").unwrap();
        assert_eq!(loaded.zone.node(&ns1).unwrap().rrsets[0].ttl, 1234);
        let loaded = parse_zone(&origin(), Path::new("z.zone"), GOOD, Some(1234)).unwrap();
        assert_eq!(loaded.zone.node(&ns1).unwrap().rrsets[0].ttl, 300);
    }

    #[test]
    fn semantic_errors_are_refused() {
        let text = format!("{GOOD}www IN CNAME ns1\nwww IN A 192.0.2.9\n");
        let err = parse_zone(&origin(), Path::new("z.zone"), &text, None)
            .err()
            .unwrap();
        assert!(err.to_string().contains("CNAME and other records"), "{err}");
        let no_soa = "$TTL 60\n@ IN NS ns1.example.com.\n";
        let err = parse_zone(&origin(), Path::new("z.zone"), no_soa, None)
            .err()
            .unwrap();
        assert!(err.to_string().contains("no SOA"), "{err}");
    }

    #[test]
    fn records_outside_the_zone_are_left_out_with_a_warning() {
        let text = format!("{GOOD}www.example.org. IN A 192.0.2.99\n");
        let loaded = parse_zone(&origin(), Path::new("z.zone"), &text, None).unwrap();
        assert_eq!(loaded.zone.record_count(), 3);
        assert!(loaded.warnings[0].contains("outside the zone"));
    }
}
