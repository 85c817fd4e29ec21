//! Output: aligned text tables for people, canonical proto3 JSON for scripts,
//! and the small formatters the tables share.
//!
//! JSON is produced by transcoding: the prost response is encoded to bytes and
//! decoded as a `prost_reflect::DynamicMessage` of the same full name, whose
//! serde impl follows the proto3 JSON mapping (enum names, RFC 3339
//! timestamps, `"1.5s"` durations, 64-bit integers as strings).

use std::io::Write;
use std::sync::OnceLock;

use prost::Message;
use prost_reflect::{DescriptorPool, DynamicMessage, SerializeOptions};

use super::error::CliError;
use crate::pb;

/// A prost message whose protobuf full name is known, so it can be transcoded.
pub trait ProtoName: Message + Sized {
    /// The message's full name, e.g. `topom.v1.ListSlotsResponse`.
    const FULL_NAME: &'static str;
}

/// Implements [`ProtoName`] for `pb` messages of package `topom.v1`.
macro_rules! proto_names {
    ($($t:ident),* $(,)?) => {
        $(impl ProtoName for pb::$t {
            const FULL_NAME: &'static str = concat!("topom.v1.", stringify!($t));
        })*
    };
}

proto_names!(
    GetOverviewResponse,
    GetModelResponse,
    ReloadResponse,
    ShutdownResponse,
    ResignResponse,
    SetLogLevelResponse,
    GetServerInfoResponse,
    GetSentinelInfoResponse,
    ListEventsResponse,
    GetStatsResponse,
    WatchStatsResponse,
    RefreshRedisStatsResponse,
    ListSlotsResponse,
    AssignSlotsResponse,
    AssignSlotsOfflineResponse,
    RebalanceSlotsResponse,
    CreateSlotActionResponse,
    CreateSlotActionRangeResponse,
    CreateSlotActionSomeResponse,
    RemoveSlotActionResponse,
    SetSlotActionIntervalResponse,
    SetSlotActionDisabledResponse,
    ProcessSlotActionResponse,
    ListGroupsResponse,
    GetGroupResponse,
    CreateGroupResponse,
    RemoveGroupResponse,
    AddGroupServerResponse,
    DeleteGroupServerResponse,
    PromoteServerResponse,
    ResyncGroupResponse,
    ResyncGroupAllResponse,
    SetReplicaGroupResponse,
    SetReplicaGroupAllResponse,
    CreateSyncActionResponse,
    RemoveSyncActionResponse,
    ProcessSyncActionResponse,
    ListSentinelsResponse,
    AddSentinelResponse,
    RemoveSentinelResponse,
    ResyncSentinelsResponse,
    ListProxiesResponse,
    AddCodisProxyResponse,
    RemoveProxyResponse,
    ReinitProxyResponse,
);

/// The descriptor pool of the public API, decoded once per process.
pub fn pool() -> Result<&'static DescriptorPool, CliError> {
    static POOL: OnceLock<Result<DescriptorPool, String>> = OnceLock::new();
    POOL.get_or_init(|| DescriptorPool::decode(pb::FILE_DESCRIPTOR_SET).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| CliError::Output(format!("bad embedded descriptor set: {e}")))
}

/// Transcodes `msg` to canonical proto3 JSON text, pretty or on one line.
///
/// Scalars and enums are printed even when zero (`"revision": "0"`, `"state":
/// "SLOT_ACTION_STATE_UNSPECIFIED"`), so scripts need no defaults; unset
/// message fields (an absent `action`) stay absent, as their absence means
/// something. Fields keep their .proto order (serializing straight to text
/// rather than through `serde_json::Value`, which would sort them).
pub fn to_json<M: ProtoName>(msg: &M, pretty: bool) -> Result<String, CliError> {
    let desc = pool()?
        .get_message_by_name(M::FULL_NAME)
        .ok_or_else(|| CliError::Output(format!("no descriptor for {}", M::FULL_NAME)))?;
    let dynamic = DynamicMessage::decode(desc, msg.encode_to_vec().as_slice())
        .map_err(|e| CliError::Output(format!("transcoding {}: {e}", M::FULL_NAME)))?;
    let options = SerializeOptions::new().skip_default_fields(false);
    let mut buf = Vec::new();
    let result = if pretty {
        let mut ser = serde_json::Serializer::pretty(&mut buf);
        dynamic.serialize_with_options(&mut ser, &options)
    } else {
        let mut ser = serde_json::Serializer::new(&mut buf);
        dynamic.serialize_with_options(&mut ser, &options)
    };
    result.map_err(|e| CliError::Output(format!("serializing {}: {e}", M::FULL_NAME)))?;
    String::from_utf8(buf).map_err(|e| CliError::Output(e.to_string()))
}

/// How results are printed: text tables (the default) or JSON (`--json`).
#[derive(Debug, Clone, Copy)]
pub struct Output {
    /// Print canonical proto3 JSON instead of text.
    pub json: bool,
}

impl Output {
    /// Prints `msg` as pretty JSON in JSON mode, else the text `human` renders.
    pub fn emit<M: ProtoName>(
        &self,
        msg: &M,
        human: impl FnOnce(&M) -> String,
    ) -> Result<(), CliError> {
        if self.json {
            print(&to_json(msg, true)?)
        } else {
            print(&human(msg))
        }
    }
}

/// Writes `text` and a newline to stdout.
///
/// `println!` would panic on a closed pipe (`topom-admin slots list --all |
/// head`); this returns [`CliError::BrokenPipe`], which ends quietly.
pub fn print(text: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    let text = text.trim_end_matches('\n');
    writeln!(out, "{text}")
        .and_then(|()| out.flush())
        .map_err(CliError::from_io)
}

/// Writes a line to stderr, ignoring failure (`eprintln!` would panic).
pub fn note(text: &str) {
    let _ = writeln!(std::io::stderr().lock(), "{text}");
}

/// A text table: columns padded to their widest cell, two spaces apart.
#[derive(Debug, Default)]
pub struct Table {
    header: Option<Vec<String>>,
    rows: Vec<Vec<String>>,
    right: Vec<usize>,
}

impl Table {
    /// A table with a header row.
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: Some(header.iter().map(|h| h.to_string()).collect()),
            ..Self::default()
        }
    }

    /// A table without a header (for `key  value` listings).
    pub fn headless() -> Self {
        Self::default()
    }

    /// Right-aligns the given columns (numbers read better that way).
    pub fn right_align(mut self, columns: &[usize]) -> Self {
        self.right = columns.to_vec();
        self
    }

    /// Appends a row.
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    /// Renders the table; lines carry no trailing spaces.
    pub fn render(&self) -> String {
        let lines: Vec<&Vec<String>> = self.header.iter().chain(self.rows.iter()).collect();
        let columns = lines.iter().map(|l| l.len()).max().unwrap_or(0);
        let mut widths = vec![0usize; columns];
        for line in &lines {
            for (i, cell) in line.iter().enumerate() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for line in lines {
            let mut text = String::new();
            for (i, cell) in line.iter().enumerate() {
                if i > 0 {
                    text.push_str("  ");
                }
                let pad = widths[i].saturating_sub(cell.chars().count());
                if self.right.contains(&i) {
                    text.extend(std::iter::repeat_n(' ', pad));
                    text.push_str(cell);
                } else {
                    text.push_str(cell);
                    text.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Renders `key  value` lines, keys padded to the same width.
pub fn key_values(pairs: &[(&str, String)]) -> String {
    let mut table = Table::headless();
    for (k, v) in pairs {
        table.row([k.to_string(), v.clone()]);
    }
    table.render()
}

/// `"-"` for an empty string, the string otherwise.
pub fn or_dash(s: &str) -> String {
    if s.is_empty() {
        "-".to_string()
    } else {
        s.to_string()
    }
}

/// Human-readable bytes with binary units: `512B`, `1.5K`, `3.2G`.
pub fn fmt_bytes(n: i64) -> String {
    const UNITS: [&str; 6] = ["B", "K", "M", "G", "T", "P"];
    let mut value = n.unsigned_abs() as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    let sign = if n < 0 { "-" } else { "" };
    if unit == 0 {
        format!("{sign}{value}{}", UNITS[unit])
    } else {
        format!("{sign}{value:.1}{}", UNITS[unit])
    }
}

/// RFC 3339 time to the second (`2024-05-01T12:00:00Z`), or `-` when unset.
pub fn fmt_time(ts: Option<&prost_types::Timestamp>) -> String {
    match ts {
        Some(ts) => prost_types::Timestamp {
            seconds: ts.seconds,
            nanos: 0,
        }
        .to_string(),
        None => "-".to_string(),
    }
}

/// A protobuf duration as `1.5s`, or `-` when unset.
pub fn fmt_pb_duration(d: Option<&prost_types::Duration>) -> String {
    d.map_or_else(|| "-".to_string(), ToString::to_string)
}

/// `SLOT_ACTION_STATE_PENDING` → `pending`: an enum value name without its
/// type prefix, lower case, for tables.
pub fn enum_label(full_name: &str, prefix: &str) -> String {
    full_name
        .strip_prefix(prefix)
        .unwrap_or(full_name)
        .to_ascii_lowercase()
}

/// The label of a slot action state (`pending`, `migrating`, ...).
pub fn slot_state(value: i32) -> String {
    pb::SlotActionState::try_from(value).map_or_else(
        |_| format!("unknown({value})"),
        |s| enum_label(s.as_str_name(), "SLOT_ACTION_STATE_"),
    )
}

/// The label of a sync action state (`pending`, `synced_failed`, ...).
pub fn sync_state(value: i32) -> String {
    pb::SyncActionState::try_from(value).map_or_else(
        |_| format!("unknown({value})"),
        |s| enum_label(s.as_str_name(), "SYNC_ACTION_STATE_"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let mut t = Table::new(&["GROUP", "ADDR", "OPS/S"]).right_align(&[2]);
        t.row(["1", "127.0.0.1:6379", "12"]);
        t.row(["10", "h:1", "3456"]);
        assert_eq!(
            t.render(),
            "GROUP  ADDR            OPS/S\n\
             1      127.0.0.1:6379     12\n\
             10     h:1              3456\n"
        );
    }

    #[test]
    fn table_trims_trailing_space_and_short_rows() {
        let mut t = Table::new(&["A", "B"]);
        t.row(["x", ""]);
        t.row(["longer"]);
        assert_eq!(t.render(), "A       B\nx\nlonger\n");
        assert!(Table::headless().render().is_empty());
    }

    #[test]
    fn key_value_lines() {
        let text = key_values(&[("version", "1".into()), ("product", "demo".into())]);
        assert_eq!(text, "version  1\nproduct  demo\n");
    }

    #[test]
    fn bytes_and_times() {
        assert_eq!(fmt_bytes(0), "0B");
        assert_eq!(fmt_bytes(512), "512B");
        assert_eq!(fmt_bytes(1536), "1.5K");
        assert_eq!(fmt_bytes(3 * 1024 * 1024 * 1024), "3.0G");
        assert_eq!(fmt_bytes(-2048), "-2.0K");
        let ts = prost_types::Timestamp {
            seconds: 1_700_000_000,
            nanos: 5,
        };
        assert_eq!(fmt_time(Some(&ts)), "2023-11-14T22:13:20Z");
        assert_eq!(fmt_time(None), "-");
        let d = prost_types::Duration {
            seconds: 1,
            nanos: 500_000_000,
        };
        assert_eq!(fmt_pb_duration(Some(&d)), "1.500s");
    }

    #[test]
    fn enum_labels() {
        assert_eq!(slot_state(1), "pending");
        assert_eq!(slot_state(4), "migrating");
        assert_eq!(slot_state(99), "unknown(99)");
        assert_eq!(sync_state(4), "synced_failed");
    }

    #[test]
    fn json_of_list_slots() {
        let resp = pb::ListSlotsResponse {
            revision: 42,
            epoch: "e1".into(),
            mappings: vec![
                pb::SlotMapping {
                    id: 0,
                    group_id: 1,
                    action: None,
                },
                pb::SlotMapping {
                    id: 1,
                    group_id: 1,
                    action: Some(pb::SlotAction {
                        index: 3,
                        state: pb::SlotActionState::Migrating as i32,
                        target_group_id: 2,
                    }),
                },
            ],
            slots: vec![pb::Slot {
                id: 0,
                backend_addr: "127.0.0.1:6379".into(),
                backend_group_id: 1,
                ..Default::default()
            }],
        };
        let text = to_json(&resp, true).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        // Canonical mapping: uint64 as a string, lowerCamelCase names.
        assert_eq!(v["revision"], "42");
        assert_eq!(v["epoch"], "e1");
        assert_eq!(v["mappings"][0]["groupId"], 1);
        // An absent action stays absent; a present one names its enum value.
        assert!(v["mappings"][0].get("action").is_none());
        assert_eq!(
            v["mappings"][1]["action"]["state"],
            "SLOT_ACTION_STATE_MIGRATING"
        );
        assert_eq!(v["mappings"][1]["action"]["targetGroupId"], 2);
        // Zero values are printed.
        assert_eq!(v["slots"][0]["locked"], false);
        assert_eq!(v["slots"][0]["migrateFrom"], "");
        assert_eq!(v["slots"][0]["forwardMethod"], "FORWARD_METHOD_UNSPECIFIED");
        assert_eq!(v["slots"][0]["replicaGroups"], serde_json::json!([]));
        // Fields keep their .proto order; one-line output is the same value.
        assert!(text.find("\"revision\"") < text.find("\"mappings\""));
        let line = to_json(&resp, false).unwrap();
        assert!(!line.contains('\n'));
        assert_eq!(serde_json::from_str::<serde_json::Value>(&line).unwrap(), v);
    }

    #[test]
    fn json_of_stats() {
        let resp = pb::GetStatsResponse {
            stats: Some(pb::StatsSnapshot {
                round: 7,
                groups: vec![pb::GroupEntry {
                    group: Some(pb::Group {
                        id: 1,
                        servers: vec![pb::GroupServer {
                            addr: "h:1".into(),
                            kind: pb::ServerKind::Redis as i32,
                            ..Default::default()
                        }],
                        ..Default::default()
                    }),
                    servers: vec![pb::ServerStats {
                        addr: "h:1".into(),
                        group_id: 1,
                        index: 0,
                        stats: Some(pb::RedisStats {
                            fields: [("role".to_string(), "master".to_string())].into(),
                            time: Some(prost_types::Timestamp {
                                seconds: 1_700_000_000,
                                nanos: 0,
                            }),
                            summary: Some(pb::ServerSummary {
                                role: "master".into(),
                                used_memory: 1 << 20,
                                keys_per_db: [(0, 5)].into(),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }),
                    }],
                }],
                ..Default::default()
            }),
        };
        let text = to_json(&resp, true).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        let stats = &v["stats"];
        assert_eq!(stats["round"], "7");
        assert_eq!(stats["closed"], false);
        assert_eq!(
            stats["groups"][0]["group"]["servers"][0]["kind"],
            "SERVER_KIND_REDIS"
        );
        let redis = &stats["groups"][0]["servers"][0]["stats"];
        assert_eq!(redis["fields"]["role"], "master");
        assert_eq!(redis["time"], "2023-11-14T22:13:20Z");
        assert_eq!(redis["summary"]["usedMemory"], "1048576");
        // Map keys are strings in proto3 JSON, whatever their proto type.
        assert_eq!(redis["summary"]["keysPerDb"]["0"], "5");
        // Unset sub-messages are omitted rather than printed as null.
        assert!(stats.get("slotAction").is_none());
    }
}
