//! Moving between Codis and topom: `topom import` reads a product out of a Codis
//! store and writes it into topom's; `topom export` writes topom's product back
//! as a Codis store, so the original codis-dashboard can take over again.
//!
//! ```text
//!  Codis fs root ─┐                                      ┌─► Codis fs root (export --to-fs)
//!  etcd v3 tree ──┼─► read ─► check ─► plan (printed) ─► write ─► topom store
//!  --config-dump ─┘   (every record, problems collected)  └─► --config-dump JSON (export --to-dump)
//! ```
//!
//! | file        | job                                                                    |
//! |-------------|------------------------------------------------------------------------|
//! | `read.rs`   | the three sources into a [`Source`]: each record with where it came from|
//! | `check.rs`  | pure checks: every problem, not the first; builds the records to write |
//! | `owner.rs`  | is the Codis dashboard that holds the product still answering?         |
//! | `plan.rs`   | the dry-run text: groups, slot ranges, actions, proxies, sentinels     |
//! | `import.rs` | the import run: lock the target, refuse a non-empty one, one batch      |
//! | `export.rs` | the export run: to a Codis filesystem root or a `--config-dump` file    |
//!
//! This is an offline tool beside [`crate::server`]: like it, it opens concrete
//! store backends (the target from the service's config, the source from the
//! command line). It never runs while a topom serves the product: both commands
//! take the product's ownership lock first, which names the holder when refused.
//! The coordinator is not involved; the records are the contract (Codis JSON, see
//! [`crate::model`]), and topom's slot engine resumes imported slot actions when
//! the service starts.

mod check;
mod export;
mod import;
mod owner;
mod plan;
mod read;

use std::fmt;

pub use check::{Checked, check};
pub use export::{ExportOptions, ExportTarget, run_export};
pub use import::{ImportOptions, run_import};
pub use plan::{render_plan, slot_ranges};
pub use read::{Located, Source, SourceKind, read_dump_text};

/// One thing wrong with the source or the target, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file, etcd key or dump element concerned.
    pub at: String,
    /// What is wrong, in words an operator acts on.
    pub what: String,
}

impl Problem {
    /// A problem found at `at`.
    pub fn new(at: impl Into<String>, what: impl Into<String>) -> Problem {
        Problem {
            at: at.into(),
            what: what.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.what)
    }
}

/// How a command ends; the binary maps it to the exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Done (or a clean dry run): exit 0.
    Ok,
    /// Problems were found and printed; nothing was written: exit 1.
    Problems,
}
