//! A fake server's canned answers: the INFO text as a ready bulk reply, its
//! sections on demand, and the few other commands a stats probe sends.

use bytes::Bytes;

/// A responder's canned answers.
pub struct Info {
    /// `INFO` / `INFO all` as a RESP bulk string.
    pub bulk: Bytes,
    /// The text, for `INFO <section>`.
    text: String,
    /// How many `field:value` lines the text has.
    pub fields: usize,
}

impl Info {
    pub fn new(text: String) -> Info {
        let mut bulk = format!("${}\r\n", text.len()).into_bytes();
        bulk.extend_from_slice(text.as_bytes());
        bulk.extend_from_slice(b"\r\n");
        let fields = text
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with('#') && l.contains(':'))
            .count();
        Info {
            bulk: Bytes::from(bulk),
            text,
            fields,
        }
    }

    /// `INFO <section>`: that section, or an empty bulk string if unknown.
    fn section(&self, name: &[u8], out: &mut Vec<u8>) {
        let name = String::from_utf8_lossy(name);
        let body = self
            .text
            .split("\r\n\r\n")
            .find(|sec| {
                sec.strip_prefix("# ")
                    .and_then(|s| s.split("\r\n").next())
                    .is_some_and(|h| h.eq_ignore_ascii_case(name.trim()))
            })
            .unwrap_or("");
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
            Some(section) => info.section(section, out),
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
