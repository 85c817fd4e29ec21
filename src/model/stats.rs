//! What a stats round learns about servers and sentinels.

use std::collections::BTreeMap;
use std::time::SystemTime;

/// INFO fields of one server (`key -> value`, all sections).
pub type InfoMap = BTreeMap<String, String>;

/// One master a Sentinel monitors for the product, with its replicas
/// (the entries of `SENTINEL masters` and `SENTINEL replicas <name>`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SentinelGroup {
    /// The `SENTINEL masters` entry (name, ip, port, flags, config-epoch, ...).
    pub master: BTreeMap<String, String>,
    /// The `SENTINEL replicas <name>` entries.
    pub replicas: Vec<BTreeMap<String, String>>,
}

/// What probing one Sentinel found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SentinelReport {
    /// Its INFO.
    pub info: InfoMap,
    /// This product's monitored groups, keyed by monitoring name (`<product>-<gid>`).
    pub monitored: BTreeMap<String, SentinelGroup>,
}

/// The outcome of probing one target in one round.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome<T> {
    /// The target answered.
    Ok(T),
    /// It failed (connect, auth, garbage, ...): the error text.
    Error(String),
    /// It did not answer within the deadline.
    Timeout,
}

/// One target's result with the time it was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe<T> {
    /// What happened.
    pub outcome: ProbeOutcome<T>,
    /// When the probe finished or gave up.
    pub time: SystemTime,
}
