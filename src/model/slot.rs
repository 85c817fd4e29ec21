//! Slots: the stored mapping, its migration action, and the proxy view.

use serde::{Deserialize, Serialize};

/// Number of slots in a product; slot ids are `0..MAX_SLOTS`.
pub const MAX_SLOTS: usize = topom_proto::limits::MAX_SLOTS as usize;

/// Where a slot's migration stands (Codis action states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SlotState {
    /// Queued; proxies see nothing yet.
    Pending,
    /// Picked; proxies are about to lock the slot.
    Preparing,
    /// Every proxy locked the slot and points it at the target.
    Prepared,
    /// Keys are moving; proxies forward touched keys first.
    Migrating,
    /// The source is empty; the final mapping is being published.
    Finished,
}

impl SlotState {
    /// The Codis JSON string.
    pub fn as_str(self) -> &'static str {
        match self {
            SlotState::Pending => "pending",
            SlotState::Preparing => "preparing",
            SlotState::Prepared => "prepared",
            SlotState::Migrating => "migrating",
            SlotState::Finished => "finished",
        }
    }

    /// Parses the Codis JSON string.
    pub fn parse(s: &str) -> Option<SlotState> {
        Some(match s {
            "pending" => SlotState::Pending,
            "preparing" => SlotState::Preparing,
            "prepared" => SlotState::Prepared,
            "migrating" => SlotState::Migrating,
            "finished" => SlotState::Finished,
            _ => return None,
        })
    }
}

/// A queued or running migration of one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlotAction {
    /// Queue position (lower first).
    pub index: u32,
    /// Where it stands.
    pub state: SlotState,
    /// The group the slot moves to.
    pub target_id: u32,
}

/// The stored assignment of one slot (`/codis3/<product>/slots/slot-NNNN`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "RawSlotMapping", into = "RawSlotMapping")]
pub struct SlotMapping {
    /// Slot id.
    pub id: u32,
    /// Owning group; 0 = offline.
    pub group_id: u32,
    /// The migration queued or running; `None` when idle.
    pub action: Option<SlotAction>,
}

impl SlotMapping {
    /// An offline, idle slot: what a missing record means.
    pub fn offline(id: u32) -> SlotMapping {
        SlotMapping {
            id,
            group_id: 0,
            action: None,
        }
    }

    /// The action's state, if any.
    pub fn state(&self) -> Option<SlotState> {
        self.action.map(|a| a.state)
    }
}

/// Codis's JSON shape: `action` is always an object whose fields are omitted when empty.
#[derive(Serialize, Deserialize)]
struct RawSlotMapping {
    id: u32,
    #[serde(default)]
    group_id: u32,
    #[serde(default)]
    action: RawSlotAction,
}

#[derive(Default, Serialize, Deserialize)]
struct RawSlotAction {
    #[serde(default, skip_serializing_if = "is_zero")]
    index: u32,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    state: String,
    #[serde(default, skip_serializing_if = "is_zero")]
    target_id: u32,
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl TryFrom<RawSlotMapping> for SlotMapping {
    type Error = String;

    fn try_from(raw: RawSlotMapping) -> Result<Self, String> {
        let action = if raw.action.state.is_empty() {
            None
        } else {
            let state = SlotState::parse(&raw.action.state)
                .ok_or_else(|| format!("unknown slot action state {:?}", raw.action.state))?;
            Some(SlotAction {
                index: raw.action.index,
                state,
                target_id: raw.action.target_id,
            })
        };
        Ok(SlotMapping {
            id: raw.id,
            group_id: raw.group_id,
            action,
        })
    }
}

impl From<SlotMapping> for RawSlotMapping {
    fn from(m: SlotMapping) -> Self {
        RawSlotMapping {
            id: m.id,
            group_id: m.group_id,
            action: m
                .action
                .map(|a| RawSlotAction {
                    index: a.index,
                    state: a.state.as_str().to_owned(),
                    target_id: a.target_id,
                })
                .unwrap_or_default(),
        }
    }
}

/// How a proxy serves a key of a migrating slot (Codis `migration_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ForwardMethod {
    /// Move the key first, then serve it from the target.
    Sync,
    /// codis-server: wrap the command on the source (`SLOTSMGRT-EXEC-WRAPPER`).
    #[default]
    SemiAsync,
}

/// Replica buckets for reads, best first (Codis `replica_groups`).
pub type ReplicaGroups = Vec<Vec<String>>;

/// How a proxy must serve one slot now (Codis `Slot`); derived, never stored.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SlotView {
    /// Slot id.
    pub id: u32,
    /// Hold requests until unlocked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub locked: bool,
    /// The master serving the slot; empty when offline.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub backend_addr: String,
    /// The group of `backend_addr`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub backend_addr_group_id: u32,
    /// The source master while migrating.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub migrate_from: String,
    /// The group of `migrate_from`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub migrate_from_group_id: u32,
    /// How to move keys while migrating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forward_method: Option<ForwardMethod>,
    /// Read replicas, best bucket first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replica_groups: ReplicaGroups,
}

/// Slot-action engine settings; persisted (Codis keeps them in memory only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SlotActionConfig {
    /// Pause between migration batches, microseconds (0..=1_000_000).
    #[serde(default)]
    pub interval_us: u32,
    /// When true no new migration starts.
    #[serde(default)]
    pub disabled: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codis_json_round_trip() {
        let idle = SlotMapping {
            id: 7,
            group_id: 2,
            action: None,
        };
        assert_eq!(
            serde_json::to_string(&idle).unwrap(),
            r#"{"id":7,"group_id":2,"action":{}}"#
        );
        let moving = SlotMapping {
            id: 8,
            group_id: 1,
            action: Some(SlotAction {
                index: 3,
                state: SlotState::Migrating,
                target_id: 2,
            }),
        };
        let json = serde_json::to_string(&moving).unwrap();
        assert_eq!(
            json,
            r#"{"id":8,"group_id":1,"action":{"index":3,"state":"migrating","target_id":2}}"#
        );
        assert_eq!(serde_json::from_str::<SlotMapping>(&json).unwrap(), moving);
        let bad = r#"{"id":8,"action":{"state":"flying"}}"#;
        assert!(
            serde_json::from_str::<SlotMapping>(bad)
                .unwrap_err()
                .to_string()
                .contains("flying")
        );
    }
}
