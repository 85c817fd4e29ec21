//! `slots`: list the slot table, assign slots directly, take them offline,
//! rebalance, and (in [`super::slot_action`]) queue migrations.

use std::collections::HashMap;

use clap::Subcommand;

use super::client::{Ctx, call};
use super::error::CliError;
use super::output::{Table, or_dash, slot_state};
use super::parse::{SlotRange, format_ids, parse_assignments, parse_slot_range};
use super::slot_action::SlotActionCmd;
use crate::pb;

/// Subcommands of `slots`.
#[derive(Debug, Subcommand)]
pub enum SlotsCmd {
    /// Show the slot table: runs of slots served alike on one line, slots with
    /// an action on their own line.
    List {
        /// One line per slot instead of collapsed ranges.
        #[arg(long)]
        all: bool,
    },
    /// Assign slots to groups without migrating data (new cluster or restore).
    ///
    /// Either `RANGE GROUP` (`slots assign 0-511 1`) or any number of
    /// `RANGE:GROUP` (`slots assign 0-511:1 512-1023:2`). A RANGE is a slot
    /// (`7`) or an inclusive range (`0-511`).
    Assign {
        /// `RANGE GROUP`, or one or more `RANGE:GROUP`.
        #[arg(required = true, value_name = "RANGE:GROUP")]
        specs: Vec<String>,
    },
    /// Take slots offline (group 0): proxies answer "slot is not ready".
    Offline {
        /// Slots or inclusive ranges, e.g. `7` or `0-511`.
        #[arg(required = true, value_name = "RANGE", value_parser = parse_slot_range)]
        ranges: Vec<SlotRange>,
    },
    /// Plan an even spread of the slots over the non-empty groups; with
    /// --confirm, queue the migrations.
    Rebalance {
        /// Queue the planned migrations (without it, only print the plan).
        #[arg(long)]
        confirm: bool,
    },
    /// Slot migrations (actions).
    #[command(subcommand)]
    Action(SlotActionCmd),
}

/// Runs a `slots` subcommand.
pub async fn run(ctx: &Ctx, cmd: SlotsCmd) -> Result<(), CliError> {
    match cmd {
        SlotsCmd::List { all } => list(ctx, all).await,
        SlotsCmd::Assign { specs } => assign(ctx, &specs).await,
        SlotsCmd::Offline { ranges } => offline(ctx, &ranges).await,
        SlotsCmd::Rebalance { confirm } => rebalance(ctx, confirm).await,
        SlotsCmd::Action(cmd) => super::slot_action::run(ctx, cmd).await,
    }
}

async fn list(ctx: &Ctx, all: bool) -> Result<(), CliError> {
    let resp = call!(ctx, list_slots, pb::ListSlotsRequest {})?;
    ctx.out.emit(&resp, |r| render_slots(r, !all))
}

/// One output line of `slots list`: a run of slots served alike.
#[derive(Debug, Clone, PartialEq)]
pub struct SlotRow<'a> {
    /// The slots of the run.
    pub range: SlotRange,
    /// The stored mapping of the run's first slot (the others match it).
    pub mapping: &'a pb::SlotMapping,
    /// The proxy view of the run's first slot, if the server sent one.
    pub view: Option<&'a pb::Slot>,
}

/// Groups the slots into rows. With `collapse`, consecutive slots with the
/// same group, no action and the same proxy view share a row; a slot with an
/// action always gets its own row, as each migrates on its own.
pub fn slot_rows(resp: &pb::ListSlotsResponse, collapse: bool) -> Vec<SlotRow<'_>> {
    // Join by id rather than position, so a short or unordered answer still
    // lines up.
    let views: HashMap<u32, &pb::Slot> = resp.slots.iter().map(|s| (s.id, s)).collect();
    let mut mappings: Vec<&pb::SlotMapping> = resp.mappings.iter().collect();
    mappings.sort_by_key(|m| m.id);
    let mut rows: Vec<SlotRow<'_>> = Vec::new();
    for mapping in mappings {
        let view = views.get(&mapping.id).copied();
        if collapse
            && let Some(last) = rows.last_mut()
            && last.range.end.checked_add(1) == Some(mapping.id)
            && mergeable(last, mapping, view)
        {
            last.range.end = mapping.id;
            continue;
        }
        rows.push(SlotRow {
            range: SlotRange::single(mapping.id),
            mapping,
            view,
        });
    }
    rows
}

fn mergeable(last: &SlotRow<'_>, mapping: &pb::SlotMapping, view: Option<&pb::Slot>) -> bool {
    last.mapping.action.is_none()
        && mapping.action.is_none()
        && last.mapping.group_id == mapping.group_id
        && match (last.view, view) {
            (Some(a), Some(b)) => same_view(a, b),
            (None, None) => true,
            _ => false,
        }
}

/// True when two slots look the same to a proxy (every field but the id).
fn same_view(a: &pb::Slot, b: &pb::Slot) -> bool {
    // Destructured so that a field added to `Slot` must be considered here.
    let pb::Slot {
        id: _,
        locked,
        backend_addr,
        backend_group_id,
        migrate_from,
        migrate_from_group_id,
        forward_method,
        replica_groups,
    } = a;
    *locked == b.locked
        && *backend_addr == b.backend_addr
        && *backend_group_id == b.backend_group_id
        && *migrate_from == b.migrate_from
        && *migrate_from_group_id == b.migrate_from_group_id
        && *forward_method == b.forward_method
        && *replica_groups == b.replica_groups
}

/// The text of `slots list`.
pub fn render_slots(resp: &pb::ListSlotsResponse, collapse: bool) -> String {
    let offline = resp.mappings.iter().filter(|m| m.group_id == 0).count();
    let actions = resp.mappings.iter().filter(|m| m.action.is_some()).count();
    let mut table = Table::new(&["SLOTS", "COUNT", "GROUP", "MASTER", "ACTION"]).right_align(&[1]);
    for row in slot_rows(resp, collapse) {
        let group = match row.mapping.group_id {
            0 => "offline".to_string(),
            g => g.to_string(),
        };
        let master = row.view.map_or("", |v| v.backend_addr.as_str());
        table.row([
            row.range.to_string(),
            row.range.count().to_string(),
            group,
            or_dash(master),
            action_text(row.mapping, row.view),
        ]);
    }
    format!(
        "revision {}  epoch {}  {} slots: {} offline, {} with actions\n{}",
        resp.revision,
        or_dash(&resp.epoch),
        resp.mappings.len(),
        offline,
        actions,
        table.render()
    )
}

/// `pending #3 -> group 2`, `migrating #1 -> group 2 from h:1, locked`, or
/// just `locked` (a switchover in progress).
fn action_text(mapping: &pb::SlotMapping, view: Option<&pb::Slot>) -> String {
    let mut text = match &mapping.action {
        Some(a) => format!(
            "{} #{} -> group {}",
            slot_state(a.state),
            a.index,
            a.target_group_id
        ),
        None => String::new(),
    };
    if let Some(v) = view {
        if !v.migrate_from.is_empty() {
            text.push_str(&format!(" from {}", v.migrate_from));
        }
        if v.locked {
            if !text.is_empty() {
                text.push_str(", ");
            }
            text.push_str("locked");
        }
    }
    text.trim_start().to_string()
}

async fn assign(ctx: &Ctx, specs: &[String]) -> Result<(), CliError> {
    let pairs = parse_assignments(specs).map_err(CliError::Usage)?;
    let mappings = pairs
        .iter()
        .flat_map(|(range, gid)| {
            range.ids().map(|id| pb::SlotMapping {
                id,
                group_id: *gid,
                action: None,
            })
        })
        .collect();
    let resp = call!(ctx, assign_slots, pb::AssignSlotsRequest { mappings })?;
    ctx.out.emit(&resp, |r| {
        let what = pairs
            .iter()
            .map(|(range, gid)| format!("{range} to group {gid}"))
            .collect::<Vec<_>>()
            .join(", ");
        format!("assigned {what}; revision {}", r.revision)
    })
}

async fn offline(ctx: &Ctx, ranges: &[SlotRange]) -> Result<(), CliError> {
    let mut slot_ids: Vec<u32> = ranges.iter().flat_map(SlotRange::ids).collect();
    slot_ids.sort_unstable();
    slot_ids.dedup();
    let req = pb::AssignSlotsOfflineRequest {
        slot_ids: slot_ids.clone(),
    };
    let resp = call!(ctx, assign_slots_offline, req)?;
    ctx.out.emit(&resp, |r| {
        format!(
            "took slots {} offline; revision {}",
            format_ids(&slot_ids),
            r.revision
        )
    })
}

async fn rebalance(ctx: &Ctx, confirm: bool) -> Result<(), CliError> {
    let resp = call!(ctx, rebalance_slots, pb::RebalanceSlotsRequest { confirm })?;
    ctx.out.emit(&resp, render_plan)
}

/// The plan as codis-admin prints it: `[0000,0511] => 1` per run of
/// consecutive slots going to the same group.
pub fn render_plan(resp: &pb::RebalanceSlotsResponse) -> String {
    if resp.moves.is_empty() {
        return "nothing changes".to_string();
    }
    let mut moves: Vec<&pb::PlannedMove> = resp.moves.iter().collect();
    moves.sort_by_key(|m| m.slot_id);
    let mut runs: Vec<(SlotRange, u32)> = Vec::new();
    for m in moves {
        match runs.last_mut() {
            Some((range, gid))
                if *gid == m.to_group_id && range.end.checked_add(1) == Some(m.slot_id) =>
            {
                range.end = m.slot_id;
            }
            _ => runs.push((SlotRange::single(m.slot_id), m.to_group_id)),
        }
    }
    let mut text: String = runs
        .iter()
        .map(|(r, gid)| format!("[{:04},{:04}] => {gid}\n", r.begin, r.end))
        .collect();
    if resp.confirmed {
        text.push_str(&format!(
            "done: queued {} slot migrations",
            resp.moves.len()
        ));
    } else {
        text.push_str(&format!(
            "plan only: {} slots would move; re-run with --confirm to queue them",
            resp.moves.len()
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(id: u32, group_id: u32) -> pb::SlotMapping {
        pb::SlotMapping {
            id,
            group_id,
            action: None,
        }
    }

    fn view(id: u32, group: u32, addr: &str) -> pb::Slot {
        pb::Slot {
            id,
            backend_addr: addr.into(),
            backend_group_id: group,
            ..Default::default()
        }
    }

    /// 1024 slots: 0-511 in group 1, 512-1023 in group 2, except slot 600
    /// which is migrating to group 1 and slots 1000-1023 which are offline.
    fn sample() -> pb::ListSlotsResponse {
        let mut resp = pb::ListSlotsResponse {
            revision: 7,
            epoch: "e".into(),
            ..Default::default()
        };
        for id in 0..1024 {
            let (gid, addr) = match id {
                0..512 => (1, "127.0.0.1:6379"),
                1000.. => (0, ""),
                _ => (2, "127.0.0.1:6380"),
            };
            let mut m = mapping(id, gid);
            let mut v = view(id, gid, addr);
            if id == 600 {
                m.action = Some(pb::SlotAction {
                    index: 1,
                    state: pb::SlotActionState::Migrating as i32,
                    target_group_id: 1,
                });
                v.backend_addr = "127.0.0.1:6379".into();
                v.backend_group_id = 1;
                v.migrate_from = "127.0.0.1:6380".into();
                v.migrate_from_group_id = 2;
            }
            resp.mappings.push(m);
            resp.slots.push(v);
        }
        resp
    }

    #[test]
    fn collapses_runs_and_isolates_actions() {
        let resp = sample();
        let rows = slot_rows(&resp, true);
        let ranges: Vec<String> = rows.iter().map(|r| r.range.to_string()).collect();
        assert_eq!(ranges, ["0-511", "512-599", "600", "601-999", "1000-1023"]);
        assert_eq!(slot_rows(&resp, false).len(), 1024);
    }

    #[test]
    fn adjacent_actions_stay_separate() {
        let mut resp = pb::ListSlotsResponse::default();
        for id in 0..3 {
            let mut m = mapping(id, 1);
            m.action = Some(pb::SlotAction {
                index: id + 1,
                state: pb::SlotActionState::Pending as i32,
                target_group_id: 2,
            });
            resp.mappings.push(m);
        }
        assert_eq!(slot_rows(&resp, true).len(), 3);
    }

    #[test]
    fn view_differences_split_runs() {
        let mut resp = pb::ListSlotsResponse::default();
        for id in 0..4 {
            resp.mappings.push(mapping(id, 1));
            let mut v = view(id, 1, "h:1");
            // Slots 2-3 are locked (a switchover in progress).
            v.locked = id >= 2;
            resp.slots.push(v);
        }
        let rows = slot_rows(&resp, true);
        let ranges: Vec<String> = rows.iter().map(|r| r.range.to_string()).collect();
        assert_eq!(ranges, ["0-1", "2-3"]);
    }

    #[test]
    fn renders_table() {
        let text = render_slots(&sample(), true);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "revision 7  epoch e  1024 slots: 24 offline, 1 with actions"
        );
        assert_eq!(
            lines[1],
            "SLOTS      COUNT  GROUP    MASTER          ACTION"
        );
        assert_eq!(lines[2], "0-511        512  1        127.0.0.1:6379");
        assert_eq!(
            lines[4],
            "600            1  2        127.0.0.1:6379  migrating #1 -> group 1 from 127.0.0.1:6380"
        );
        assert_eq!(lines[6], "1000-1023     24  offline  -");
    }

    #[test]
    fn plan_ranges_like_codis_admin() {
        let mut resp = pb::RebalanceSlotsResponse::default();
        for id in (512..1024).rev() {
            resp.moves.push(pb::PlannedMove {
                slot_id: id,
                from_group_id: 1,
                to_group_id: if id < 768 { 2 } else { 3 },
            });
        }
        resp.moves.push(pb::PlannedMove {
            slot_id: 5,
            from_group_id: 0,
            to_group_id: 2,
        });
        let text = render_plan(&resp);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "[0005,0005] => 2",
                "[0512,0767] => 2",
                "[0768,1023] => 3",
                "plan only: 513 slots would move; re-run with --confirm to queue them",
            ]
        );
        assert_eq!(
            render_plan(&pb::RebalanceSlotsResponse::default()),
            "nothing changes"
        );
    }
}
