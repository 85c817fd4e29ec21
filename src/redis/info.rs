//! INFO text → field map.

use std::collections::BTreeMap;

/// Parses the text of `INFO`: `key:value` lines; section headers (`# Server`) and
/// blank lines are skipped. Malformed lines are ignored rather than failing the
/// whole reply.
pub fn parse_info(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

/// The databases that hold keys, from the text of `INFO keyspace`, ascending.
pub(crate) fn dbs_with_keys(info: &str) -> Vec<u32> {
    keyspace(info).into_iter().map(|(db, _)| db).collect()
}

/// Each database that holds keys and how many, from the text of `INFO
/// keyspace`, by db.
pub(crate) fn keyspace(info: &str) -> Vec<(u32, u64)> {
    let mut dbs: Vec<(u32, u64)> = parse_info(info)
        .iter()
        .filter_map(|(name, fields)| {
            let db = name.strip_prefix("db")?.parse().ok()?;
            let keys: u64 = fields
                .split(',')
                .find_map(|f| f.strip_prefix("keys="))?
                .parse()
                .ok()?;
            (keys > 0).then_some((db, keys))
        })
        .collect();
    dbs.sort_unstable();
    dbs
}

/// Parses `major.minor.patch` into a comparable tuple.
pub(crate) fn version_tuple(v: &str) -> Option<(u32, u32, u32)> {
    let mut it = v.split('.').map(|p| p.parse::<u32>().ok());
    Some((it.next()??, it.next()??, it.next().flatten().unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sections() {
        let m = parse_info(
            "# Server\r\nredis_version:7.0.15\r\n\r\n# Keyspace\r\ndb0:keys=3,expires=0\r\nbogus\r\n",
        );
        assert_eq!(m["redis_version"], "7.0.15");
        assert_eq!(m["db0"], "keys=3,expires=0");
        assert_eq!(m.len(), 2);
    }

    #[test]
    fn versions() {
        assert_eq!(version_tuple("7.0.15"), Some((7, 0, 15)));
        assert!(version_tuple("6.2.0") >= Some((6, 2, 0)));
        assert!(version_tuple("6.0.9") < Some((6, 2, 0)));
        assert_eq!(version_tuple("x"), None);
    }
}
