//! The INFO of one group server as a stats round keeps it, and which INFO
//! sections a round asks for.
//!
//! A round parses 64 to 1024 replies of 2–20 KB every second. Two small strings
//! per field would be most of that work, so [`Info`] keeps the reply's text once
//! and, per field, where its key and value lie in it.

use std::collections::BTreeSet;

/// `key:value` fields of an INFO reply, looked up by key.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Info {
    text: Box<str>,
    /// Key and value spans into `text`, sorted by key, one per key.
    spans: Vec<(Span, Span)>,
}

/// A byte range of `Info::text` (u32: an INFO reply is bounded far below 4 GB).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span(u32, u32);

impl Span {
    fn get(self, text: &str) -> &str {
        &text[self.0 as usize..self.1 as usize]
    }

    fn bytes(self, text: &[u8]) -> &[u8] {
        &text[self.0 as usize..self.1 as usize]
    }
}

impl Info {
    /// Parses the text of `INFO`: `key:value` lines; section headers (`# Server`)
    /// and blank lines are skipped, malformed lines ignored rather than failing
    /// the whole reply. Keys and values are trimmed; of a repeated key the last
    /// line wins.
    pub fn parse(text: String) -> Info {
        // Bytes, not chars: every cut is at an ASCII byte (`\n`, `:`, ASCII
        // space), so each span is a char boundary of the text. At 1024
        // targets a round parses ~130,000 lines, and `str::find` per line and
        // a stable sort were a third of its CPU.
        let bytes = text.as_bytes();
        let mut spans = Vec::with_capacity(bytes.len() / 32);
        let mut at = 0;
        while at < bytes.len() {
            let end = bytes[at..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(bytes.len(), |i| at + i + 1);
            let line = &bytes[at..end];
            if line.first() != Some(&b'#')
                && let Some(colon) = line.iter().position(|&b| b == b':')
            {
                let key = trimmed(bytes, at, at + colon);
                if key.0 < key.1 {
                    spans.push((key, trimmed(bytes, at + colon + 1, end)));
                }
            }
            at = end;
        }
        // Equal keys keep their line order (the tie-break on position), so
        // that the dedup below keeps the last line.
        spans.sort_unstable_by(|a, b| {
            a.0.bytes(bytes)
                .cmp(b.0.bytes(bytes))
                .then(a.0.0.cmp(&b.0.0))
        });
        spans.dedup_by(|later, earlier| {
            let same = later.0.bytes(bytes) == earlier.0.bytes(bytes);
            if same {
                *earlier = *later;
            }
            same
        });
        Info {
            text: text.into_boxed_str(),
            spans,
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        let text = self.text.as_bytes();
        let i = self
            .spans
            .binary_search_by(|(k, _)| k.bytes(text).cmp(key.as_bytes()))
            .ok()?;
        Some(self.spans[i].1.get(&self.text))
    }

    /// True when the reply has `key`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    /// Every field, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.spans
            .iter()
            .map(|(k, v)| (k.get(&self.text), v.get(&self.text)))
    }

    /// How many fields.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// True when there are no fields.
    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }
}

/// The span of `text[start..end]` without surrounding ASCII whitespace.
fn trimmed(text: &[u8], mut start: usize, mut end: usize) -> Span {
    while start < end && text[start].is_ascii_whitespace() {
        start += 1;
    }
    while end > start && text[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    Span(start as u32, end as u32)
}

impl std::fmt::Debug for Info {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

/// For tests and fakes: an INFO of these fields.
impl<K: AsRef<str>, V: AsRef<str>> FromIterator<(K, V)> for Info {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(it: I) -> Info {
        let mut text = String::new();
        for (k, v) in it {
            text.push_str(k.as_ref());
            text.push(':');
            text.push_str(v.as_ref());
            text.push_str("\r\n");
        }
        Info::parse(text)
    }
}

/// The sections every round needs: those holding the derived fields (role and
/// replication offsets, memory, ops/s, clients, keys per db, version).
pub const DERIVED_SECTIONS: [&str; 6] = [
    "server",
    "clients",
    "memory",
    "stats",
    "replication",
    "keyspace",
];

/// Section names Redis 7 and 8 know, besides `all`, `default` and
/// `everything`; true for those plain `INFO` returns on servers that take at
/// most one section name (Redis < 7, codis-server).
const KNOWN: [(&str, bool); 14] = [
    ("server", true),
    ("clients", true),
    ("memory", true),
    ("persistence", true),
    ("stats", true),
    ("replication", true),
    ("cpu", true),
    ("modules", true),
    ("commandstats", false),
    ("errorstats", true),
    ("latencystats", false),
    ("cluster", true),
    ("keyspace", true),
    ("keysizes", false),
];

fn known(name: &str) -> Option<bool> {
    KNOWN
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, plain)| *plain)
}

/// Which INFO sections a stats round asks each group server for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InfoSections {
    /// `INFO all`.
    All,
    /// These sections (the derived ones always among them), lower-case, sorted.
    Only(BTreeSet<String>),
}

impl Default for InfoSections {
    fn default() -> Self {
        InfoSections::Only(DERIVED_SECTIONS.iter().map(|s| (*s).to_owned()).collect())
    }
}

impl InfoSections {
    /// Parses a comma- or space-separated list of section names, or `all`. The
    /// derived sections are added to any list; an empty list means just them.
    pub fn parse(text: &str) -> Result<InfoSections, String> {
        let names: Vec<String> = text
            .split([',', ' '])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_ascii_lowercase)
            .collect();
        if names.iter().any(|n| n == "all") {
            if names.len() > 1 {
                return Err(format!(
                    "{text:?}: `all` already holds every section; write it alone"
                ));
            }
            return Ok(InfoSections::All);
        }
        let mut set = match InfoSections::default() {
            InfoSections::Only(s) => s,
            InfoSections::All => unreachable!("the default is a list"),
        };
        for n in names {
            if known(&n).is_none() {
                let names: Vec<&str> = KNOWN.iter().map(|(n, _)| *n).collect();
                return Err(format!(
                    "unknown INFO section {n:?}; known: all, {}",
                    names.join(", ")
                ));
            }
            set.insert(n);
        }
        Ok(InfoSections::Only(set))
    }

    /// The arguments of `INFO` on Redis 7 and later.
    pub fn args(&self) -> Vec<String> {
        match self {
            InfoSections::All => vec!["all".to_owned()],
            InfoSections::Only(s) => s.iter().cloned().collect(),
        }
    }

    /// The arguments of `INFO` on a server that takes at most one section name
    /// (Redis < 7, codis-server): none when plain `INFO` holds every section
    /// asked for, else `all`.
    pub fn legacy_args(&self) -> Vec<String> {
        match self {
            InfoSections::Only(s) if s.iter().all(|n| known(n) == Some(true)) => Vec::new(),
            _ => vec!["all".to_owned()],
        }
    }
}

impl std::fmt::Display for InfoSections {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.args().join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_ascii_text_and_repeats_keep_their_order() {
        let i = Info::parse(
            "ключ:значение\r\nk:1\na:x\nk:2\r\n\tt\t:\t v \t\nlast:no newline".to_owned(),
        );
        assert_eq!(i.get("ключ"), Some("значение"));
        assert_eq!(i.get("k"), Some("2"), "the last of two lines wins");
        assert_eq!(i.get("t"), Some("v"));
        assert_eq!(i.get("last"), Some("no newline"));
        let keys: Vec<&str> = i.iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            ["a", "k", "last", "t", "ключ"],
            "key order, one per key"
        );
    }

    #[test]
    fn fields_are_spans_of_the_text() {
        let i = Info::parse(
            "# Server\r\nredis_version:7.0.15\r\n\r\n# Keyspace\r\ndb0:keys=3,expires=0\r\nbogus\r\n  spaced : v 1 \r\n:nokey\r\nrole:master\r\nrole:slave"
                .to_owned(),
        );
        assert_eq!(i.get("redis_version"), Some("7.0.15"));
        assert_eq!(i.get("db0"), Some("keys=3,expires=0"));
        assert_eq!(i.get("spaced"), Some("v 1"));
        assert_eq!(i.get("role"), Some("slave"), "the last line wins");
        assert_eq!(i.get("bogus"), None);
        assert_eq!(i.get(""), None);
        assert_eq!(i.len(), 4);
        let keys: Vec<&str> = i.iter().map(|(k, _)| k).collect();
        assert_eq!(keys, ["db0", "redis_version", "role", "spaced"]);
        assert_eq!(Info::parse(String::new()).len(), 0);
        assert_eq!(Info::parse("é:ü\n".to_owned()).get("é"), Some("ü"));
    }

    #[test]
    fn sections() {
        let derived = InfoSections::default();
        assert_eq!(
            derived.args(),
            [
                "clients",
                "keyspace",
                "memory",
                "replication",
                "server",
                "stats"
            ]
        );
        assert_eq!(InfoSections::parse("").unwrap(), derived);
        assert_eq!(derived.legacy_args(), Vec::<String>::new());
        let more = InfoSections::parse("CommandStats, cpu").unwrap();
        assert_eq!(more.args().len(), 8);
        assert_eq!(more.legacy_args(), ["all"]);
        assert_eq!(InfoSections::parse("all").unwrap(), InfoSections::All);
        assert_eq!(InfoSections::All.legacy_args(), ["all"]);
        let e = InfoSections::parse("memory,cpus").unwrap_err();
        assert!(e.contains("\"cpus\"") && e.contains("commandstats"), "{e}");
        let e = InfoSections::parse("all,cpu").unwrap_err();
        assert!(e.contains("alone"), "{e}");
    }
}
