//! Commands off the wire, in RESP2: arrays of bulk strings, and inline commands
//! as `redis-cli` or a person with `nc` sends them. Parsing works on a buffer
//! that may hold a partial or several pipelined commands, and bounds what one
//! command may claim.

/// A parsed command: the byte range of each argument, and the bytes it took.
pub type Command = (Vec<(usize, usize)>, usize);

/// One command from the front of `buf`; `None` if incomplete. Handles RESP arrays
/// of bulk strings and inline commands.
pub fn parse_command(buf: &[u8]) -> Result<Option<Command>, &'static str> {
    let Some(&first) = buf.first() else {
        return Ok(None);
    };
    if first != b'*' {
        let Some(nl) = buf.iter().position(|&b| b == b'\n') else {
            return Ok(None);
        };
        let mut args = Vec::new();
        let mut start = None;
        for (i, &b) in buf[..nl].iter().enumerate() {
            let space = b.is_ascii_whitespace();
            match (start, space) {
                (None, false) => start = Some(i),
                (Some(s), true) => {
                    args.push((s, i));
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            args.push((s, nl));
        }
        return Ok(Some((args, nl + 1)));
    }
    let Some((n, mut pos)) = int_line(buf, 1)? else {
        return Ok(None);
    };
    if n > 1024 {
        return Err("too many arguments");
    }
    let mut args = Vec::with_capacity(n);
    for _ in 0..n {
        match buf.get(pos) {
            None => return Ok(None),
            Some(b'$') => {}
            Some(_) => return Err("expected '$'"),
        }
        let Some((len, start)) = int_line(buf, pos + 1)? else {
            return Ok(None);
        };
        if len > 1 << 20 {
            return Err("argument too long");
        }
        if buf.len() < start + len + 2 {
            return Ok(None);
        }
        args.push((start, start + len));
        pos = start + len + 2;
    }
    Ok(Some((args, pos)))
}

/// A decimal number ending in CRLF at `start`: its value and the position after.
fn int_line(buf: &[u8], start: usize) -> Result<Option<(usize, usize)>, &'static str> {
    let Some(rel) = buf
        .get(start..)
        .and_then(|b| b.windows(2).position(|w| w == b"\r\n"))
    else {
        return Ok(None);
    };
    let text = std::str::from_utf8(&buf[start..start + rel]).map_err(|_| "bad length")?;
    let n = text.parse().map_err(|_| "bad length")?;
    Ok(Some((n, start + rel + 2)))
}
