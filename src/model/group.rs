//! Groups: a master (index 0) and its replicas.

use serde::{Deserialize, Serialize};

/// Where a server's replication action stands (Codis sync action states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SyncState {
    /// Queued.
    Pending,
    /// The SLAVEOF transaction is running.
    Syncing,
    /// Done.
    Synced,
    /// Failed; see the action's error.
    SyncedFailed,
}

impl SyncState {
    /// The Codis JSON string.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncState::Pending => "pending",
            SyncState::Syncing => "syncing",
            SyncState::Synced => "synced",
            SyncState::SyncedFailed => "synced_failed",
        }
    }

    /// Parses the Codis JSON string.
    pub fn parse(s: &str) -> Option<SyncState> {
        Some(match s {
            "pending" => SyncState::Pending,
            "syncing" => SyncState::Syncing,
            "synced" => SyncState::Synced,
            "synced_failed" => SyncState::SyncedFailed,
            _ => return None,
        })
    }
}

/// A replication action on one server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncAction {
    /// Queue position among pending servers.
    pub index: u32,
    /// Where it stands.
    pub state: SyncState,
    /// The failure text (SyncedFailed only). Not in Codis; ignored by it.
    pub error: String,
}

/// Where a switchover stands (Codis promoting states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PromoteState {
    /// Starting; proxies are about to lock the group's slots.
    Preparing,
    /// Proxies locked the group's slots.
    Prepared,
    /// The new master is at index 0 and is being published.
    Finished,
}

impl PromoteState {
    /// The Codis JSON string.
    pub fn as_str(self) -> &'static str {
        match self {
            PromoteState::Preparing => "preparing",
            PromoteState::Prepared => "prepared",
            PromoteState::Finished => "finished",
        }
    }

    /// Parses the Codis JSON string.
    pub fn parse(s: &str) -> Option<PromoteState> {
        Some(match s {
            "preparing" => PromoteState::Preparing,
            "prepared" => PromoteState::Prepared,
            "finished" => PromoteState::Finished,
            _ => return None,
        })
    }
}

/// A switchover in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Promoting {
    /// Index of the server being promoted.
    pub index: u32,
    /// Where it stands.
    pub state: PromoteState,
}

/// What a group member is, as detected when it was added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerKind {
    /// Not probed (a record written by Codis).
    #[default]
    Unknown,
    /// Plain Redis.
    Redis,
    /// codis-server (answers SLOTSINFO).
    CodisServer,
}

/// One member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupServer {
    /// `host:port` (Codis JSON name `server`).
    pub addr: String,
    /// Datacenter label.
    pub datacenter: String,
    /// Replication action; `None` when idle.
    pub action: Option<SyncAction>,
    /// May serve reads.
    pub replica_group: bool,
    /// Plain Redis or codis-server.
    pub kind: ServerKind,
}

impl GroupServer {
    /// A new member with no action.
    pub fn new(addr: impl Into<String>, datacenter: impl Into<String>, kind: ServerKind) -> Self {
        GroupServer {
            addr: addr.into(),
            datacenter: datacenter.into(),
            action: None,
            replica_group: false,
            kind,
        }
    }
}

/// A group (`/codis3/<product>/group/group-NNNN`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawGroup", into = "RawGroup")]
pub struct Group {
    /// 1..=9999.
    pub id: u32,
    /// Members; index 0 is the master.
    pub servers: Vec<GroupServer>,
    /// The switchover in progress.
    pub promoting: Option<Promoting>,
    /// Proxies may be stale for this group; a resync is advised.
    pub out_of_sync: bool,
}

impl Group {
    /// An empty group.
    pub fn new(id: u32) -> Group {
        Group {
            id,
            servers: Vec::new(),
            promoting: None,
            out_of_sync: false,
        }
    }

    /// The master's address, or "" for an empty group.
    pub fn master(&self) -> &str {
        self.servers.first().map_or("", |s| s.addr.as_str())
    }

    /// The index of `addr` in this group.
    pub fn position(&self, addr: &str) -> Option<usize> {
        self.servers.iter().position(|s| s.addr == addr)
    }
}

#[derive(Serialize, Deserialize)]
struct RawGroup {
    id: u32,
    #[serde(default)]
    servers: Vec<RawGroupServer>,
    #[serde(default)]
    promoting: RawPromoting,
    #[serde(default)]
    out_of_sync: bool,
}

#[derive(Default, Serialize, Deserialize)]
struct RawPromoting {
    #[serde(default, skip_serializing_if = "is_zero")]
    index: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    state: String,
}

#[derive(Serialize, Deserialize)]
struct RawGroupServer {
    server: String,
    #[serde(default)]
    datacenter: String,
    #[serde(default)]
    action: RawSyncAction,
    #[serde(default)]
    replica_group: bool,
    #[serde(default, skip_serializing_if = "is_unknown")]
    kind: ServerKind,
}

#[derive(Default, Serialize, Deserialize)]
struct RawSyncAction {
    #[serde(default, skip_serializing_if = "is_zero")]
    index: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    state: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    error: String,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

fn is_unknown(k: &ServerKind) -> bool {
    *k == ServerKind::Unknown
}

impl TryFrom<RawGroup> for Group {
    type Error = String;

    fn try_from(raw: RawGroup) -> Result<Self, String> {
        let promoting = if raw.promoting.state.is_empty() {
            None
        } else {
            let state = PromoteState::parse(&raw.promoting.state)
                .ok_or_else(|| format!("unknown promoting state {:?}", raw.promoting.state))?;
            Some(Promoting {
                index: raw.promoting.index,
                state,
            })
        };
        let servers = raw
            .servers
            .into_iter()
            .map(|s| {
                let action = if s.action.state.is_empty() {
                    None
                } else {
                    let state = SyncState::parse(&s.action.state).ok_or_else(|| {
                        format!(
                            "server {}: unknown sync action state {:?}",
                            s.server, s.action.state
                        )
                    })?;
                    Some(SyncAction {
                        index: s.action.index,
                        state,
                        error: s.action.error,
                    })
                };
                Ok(GroupServer {
                    addr: s.server,
                    datacenter: s.datacenter,
                    action,
                    replica_group: s.replica_group,
                    kind: s.kind,
                })
            })
            .collect::<Result<_, String>>()?;
        Ok(Group {
            id: raw.id,
            servers,
            promoting,
            out_of_sync: raw.out_of_sync,
        })
    }
}

impl From<Group> for RawGroup {
    fn from(g: Group) -> Self {
        RawGroup {
            id: g.id,
            servers: g
                .servers
                .into_iter()
                .map(|s| RawGroupServer {
                    server: s.addr,
                    datacenter: s.datacenter,
                    action: s
                        .action
                        .map(|a| RawSyncAction {
                            index: a.index,
                            state: a.state.as_str().to_owned(),
                            error: a.error,
                        })
                        .unwrap_or_default(),
                    replica_group: s.replica_group,
                    kind: s.kind,
                })
                .collect(),
            promoting: g
                .promoting
                .map(|p| RawPromoting {
                    index: p.index,
                    state: p.state.as_str().to_owned(),
                })
                .unwrap_or_default(),
            out_of_sync: g.out_of_sync,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_codis_json() {
        let codis = r#"{
            "id": 1,
            "servers": [
                {"server": "127.0.0.1:6379", "datacenter": "", "action": {}, "replica_group": false},
                {"server": "127.0.0.1:6380", "datacenter": "dc2",
                 "action": {"index": 2, "state": "pending"}, "replica_group": true}
            ],
            "promoting": {},
            "out_of_sync": false
        }"#;
        let g: Group = serde_json::from_str(codis).unwrap();
        assert_eq!(g.master(), "127.0.0.1:6379");
        assert_eq!(
            g.servers[1].action.as_ref().unwrap().state,
            SyncState::Pending
        );
        assert!(g.servers[1].replica_group);
        assert_eq!(g.servers[0].kind, ServerKind::Unknown);
        let back: Group = serde_json::from_str(&serde_json::to_string(&g).unwrap()).unwrap();
        assert_eq!(back, g);
    }
}
