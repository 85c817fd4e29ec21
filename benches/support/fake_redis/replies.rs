//! A fake server's canned answers: the INFO text as a ready bulk reply, its
//! sections on demand, and the few other commands a stats probe sends.

use bytes::Bytes;

/// A responder's canned answers.
pub struct Info {
    /// `INFO` / `INFO all` as a RESP bulk string.
    pub bulk: Bytes,
    /// The text, for `INFO <section>`.
    text: String,
    /// How many `field:value` lines the sections topom asks for by default
    /// have (at least what a round keeps of each server).
    pub fields: usize,
}

impl Info {
    pub fn new(text: String) -> Info {
        let mut bulk = format!("${}\r\n", text.len()).into_bytes();
        bulk.extend_from_slice(text.as_bytes());
        bulk.extend_from_slice(b"\r\n");
        let fields = text
            .split("\r\n\r\n")
            .filter(|sec| {
                sec.strip_prefix("# ")
                    .and_then(|s| s.split("\r\n").next())
                    .is_some_and(|h| {
                        topom::model::DERIVED_SECTIONS.contains(&h.to_ascii_lowercase().as_str())
                    })
            })
            .flat_map(str::lines)
            .filter(|l| !l.is_empty() && !l.starts_with('#') && l.contains(':'))
            .count();
        Info {
            bulk: Bytes::from(bulk),
            text,
            fields,
        }
    }

    /// `INFO <section>...` (Redis 7 takes several): those sections in the
    /// order of the text, unknown names contributing nothing.
    fn sections(&self, names: &[&[u8]], out: &mut Vec<u8>) {
        let names: Vec<String> = names
            .iter()
            .map(|n| String::from_utf8_lossy(n).trim().to_ascii_lowercase())
            .collect();
        let body: Vec<&str> = self
            .text
            .split("\r\n\r\n")
            .filter(|sec| {
                sec.strip_prefix("# ")
                    .and_then(|s| s.split("\r\n").next())
                    .is_some_and(|h| names.contains(&h.to_ascii_lowercase()))
            })
            .collect();
        let body = body.join("\r\n\r\n");
        out.extend_from_slice(format!("${}\r\n{body}\r\n", body.len()).as_bytes());
    }
}

pub fn respond(args: &[&[u8]], info: &Info, out: &mut Vec<u8>) {
    let Some(cmd) = args.first() else {
        return; // an empty command gets no reply, as in Redis
    };
    if cmd.eq_ignore_ascii_case(b"INFO") {
        match args.get(1) {
            None => out.extend_from_slice(&info.bulk),
            Some(s)
                if s.eq_ignore_ascii_case(b"all")
                    || s.eq_ignore_ascii_case(b"default")
                    || s.eq_ignore_ascii_case(b"everything") =>
            {
                out.extend_from_slice(&info.bulk)
            }
            Some(_) => info.sections(&args[1..], out),
        }
    } else if cmd.eq_ignore_ascii_case(b"PING") {
        out.extend_from_slice(b"+PONG\r\n");
    } else if cmd.eq_ignore_ascii_case(b"AUTH") {
        out.extend_from_slice(b"+OK\r\n");
    } else {
        let name = String::from_utf8_lossy(cmd);
        out.extend_from_slice(format!("-ERR unknown command '{name}'\r\n").as_bytes());
    }
}
