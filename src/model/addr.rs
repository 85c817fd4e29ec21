//! `host:port` addresses: the one parser of the form every Redis server,
//! Sentinel and replication master is named by.
//!
//! An [`Addr`] keeps the text it was parsed from and prints exactly that, so
//! stored records keep their spelling (`localhost:6379` stays `localhost:6379`,
//! an unbracketed `::1:6379` stays as it was typed).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A `host:port` address: a non-empty host (IPv6 in brackets or not: the port
/// is after the last `:`) and a port in 1..=65535.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Addr {
    /// The address as given.
    text: String,
    /// Where the host is in `text` (start, end), brackets left out.
    host: (usize, usize),
    port: u16,
}

/// Why a string is not a `host:port` address; shows the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("address {input:?} is not host:port{}", .problem.suffix())]
pub struct AddrError {
    /// The rejected text.
    pub input: String,
    problem: Problem,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Problem {
    NoPort,
    Host,
    Port,
}

impl Problem {
    fn suffix(self) -> &'static str {
        match self {
            Problem::NoPort => "",
            Problem::Host => ": the host is missing or invalid",
            Problem::Port => ": the port must be 1..65535",
        }
    }
}

impl Addr {
    /// Parses `text`; the error names the input and what is wrong with it.
    pub fn parse(text: &str) -> Result<Addr, AddrError> {
        let (host, port) = Addr::split(text)?;
        // `host` borrows from `text`: its offset locates it without a copy.
        let start = host.as_ptr() as usize - text.as_ptr() as usize;
        Ok(Addr {
            text: text.to_owned(),
            host: (start, start + host.len()),
            port,
        })
    }

    /// The host and port of `text` without building an [`Addr`]: for callers
    /// that only look (no allocation).
    pub fn split(text: &str) -> Result<(&str, u16), AddrError> {
        let err = |problem| AddrError {
            input: text.to_owned(),
            problem,
        };
        let (host, port) = text.rsplit_once(':').ok_or_else(|| err(Problem::NoPort))?;
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(host);
        if host.is_empty() || host.chars().any(|c| c.is_whitespace() || "/[]".contains(c)) {
            return Err(err(Problem::Host));
        }
        match port.parse::<u16>() {
            Ok(p) if p > 0 && port.bytes().all(|b| b.is_ascii_digit()) => Ok((host, p)),
            _ => Err(err(Problem::Port)),
        }
    }

    /// The host, without IPv6 brackets.
    pub fn host(&self) -> &str {
        &self.text[self.host.0..self.host.1]
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The address as given.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Addr {
    type Err = AddrError;

    fn from_str(s: &str) -> Result<Addr, AddrError> {
        Addr::parse(s)
    }
}

impl Serialize for Addr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

impl<'de> Deserialize<'de> for Addr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Addr, D::Error> {
        let text = String::deserialize(d)?;
        Addr::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn good_addresses() {
        for (text, host, port) in [
            ("127.0.0.1:6379", "127.0.0.1", 6379),
            ("redis-a.local:7000", "redis-a.local", 7000),
            ("[::1]:6379", "::1", 6379),
            ("::1:6379", "::1", 6379),
            ("localhost:1", "localhost", 1),
        ] {
            let a = Addr::parse(text).unwrap();
            assert_eq!((a.host(), a.port()), (host, port), "{text}");
            assert_eq!(a.to_string(), text);
            assert_eq!(Addr::split(text).unwrap(), (host, port));
        }
    }

    #[test]
    fn bad_addresses_name_the_input() {
        for (bad, why) in [
            ("", "is not host:port"),
            ("127.0.0.1", "is not host:port"),
            (":6379", "host"),
            ("[]:6379", "host"),
            ("a b:1", "host"),
            ("a/b:1", "host"),
            ("h:", "port"),
            ("h:0", "port"),
            ("h:70000", "port"),
            ("h:x", "port"),
            ("h:+1", "port"),
        ] {
            let e = Addr::parse(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("{bad:?}")), "{bad}: {e}");
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn serde_is_the_plain_string() {
        let a = Addr::parse("localhost:6380").unwrap();
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, "\"localhost:6380\"");
        assert_eq!(serde_json::from_str::<Addr>(&json).unwrap(), a);
        let e = serde_json::from_str::<Addr>("\"nope\"").unwrap_err();
        assert!(e.to_string().contains("\"nope\""), "{e}");
    }
}
