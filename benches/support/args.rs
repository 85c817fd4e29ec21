//! The benches' command line: `--name value` options and bare `--flag`s.
//!
//! `cargo bench` adds `--bench` to the arguments; anything not asked for is
//! ignored, so that needs no handling.

/// The value after the first `name`, if there is one.
pub fn value(name: &str) -> Option<String> {
    let mut args = std::env::args().skip_while(|a| a != name);
    args.next()?;
    args.next()
}

/// `name`'s value as a number; `default` when it is absent or not a number.
pub fn arg(name: &str, default: u64) -> u64 {
    value(name).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Whether the bare flag `name` was given.
pub fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}
