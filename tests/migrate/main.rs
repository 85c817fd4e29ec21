//! [`PlainMigrator`] against real `redis-server` processes: whole slots moved
//! with every value type, TTLs, several dbs and targets; conflicts settled in
//! the target's favour; big values moved alone; `AUTH`; dead targets.
//!
//! `whole_slots`: what a pass moves and what it leaves; `conflicts`: keys busy on
//! the target; `batches`: pacing and big values; `failures`: auth and dead
//! servers; `throttle`: keys/s and bytes/s limits.

#[path = "../common/mod.rs"]
mod common;

mod batches;
mod conflicts;
mod failures;
mod throttle;
mod whole_slots;

use std::collections::BTreeMap;
use std::time::Duration;

use common::redis::RedisServer;
pub(crate) use common::redis::{client, cmd, pipe};
use topom::redis::{MigrateOptions, Migrator, PlainMigrator, SlotPass, Throttle};

/// The deadline of commands where the test is not about deadlines.
const T: Duration = Duration::from_secs(5);

fn opts() -> MigrateOptions {
    MigrateOptions {
        batch_keys: 100,
        scan_count: 500,
        big_value_bytes: 1 << 20,
        timeout: T,
        interval: Duration::ZERO,
        throttle: Throttle::default(),
    }
}

/// Passes until one finds no key of any slot (at most `max`); every pass's
/// result, in order.
async fn move_all(
    m: &PlainMigrator,
    source: &str,
    moves: &BTreeMap<u32, String>,
    opts: &MigrateOptions,
    max: usize,
) -> Vec<BTreeMap<u32, SlotPass>> {
    let mut passes = Vec::new();
    for _ in 0..max {
        let pass = m
            .migrate_pass(source, moves, opts, &|_| {})
            .await
            .expect("pass");
        let found: u64 = pass.values().map(|p| p.found).sum();
        passes.push(pass);
        if found == 0 {
            return passes;
        }
    }
    panic!("slots still had keys after {max} passes: {passes:?}");
}

fn sum(pass: &BTreeMap<u32, SlotPass>, f: impl Fn(&SlotPass) -> u64) -> u64 {
    pass.values().map(f).sum()
}

fn signal(r: &RedisServer, sig: &str) {
    let pid = r.pid().expect("redis-server runs").to_string();
    let ok = std::process::Command::new("kill")
        .args([&format!("-{sig}"), &pid])
        .status()
        .is_ok_and(|s| s.success());
    assert!(ok, "kill -{sig} {pid}");
}
