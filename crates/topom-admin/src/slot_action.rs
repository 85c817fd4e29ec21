//! `slots action`: queue, remove, pace and step slot migrations.
//!
//! Checks spanning several arguments (`begin <= end`, `src != dst`) run in
//! `cli::validate` before connecting.

use clap::Subcommand;

use super::client::{Ctx, call};
use super::error::CliError;
use super::output::{Table, or_dash, slot_state};
use super::parse::{format_ids, parse_group_id, parse_slot};
use crate::pb;

/// Subcommands of `slots action`.
#[derive(Debug, Subcommand)]
pub enum SlotActionCmd {
    /// Queue the migration of one slot to a group.
    Create {
        /// The slot, 0..1023.
        #[arg(value_parser = parse_slot)]
        slot: u32,
        /// The target group.
        #[arg(value_parser = parse_group_id)]
        group: u32,
    },
    /// Queue the migration of every slot in BEGIN..=END to a group (all or nothing).
    CreateRange {
        /// First slot.
        #[arg(value_parser = parse_slot)]
        begin: u32,
        /// Last slot (inclusive).
        #[arg(value_parser = parse_slot)]
        end: u32,
        /// The target group.
        #[arg(value_parser = parse_group_id)]
        group: u32,
    },
    /// Queue the migration of up to COUNT idle slots from SRC to DST.
    CreateSome {
        /// The group to take slots from.
        #[arg(value_parser = parse_group_id)]
        src: u32,
        /// The group to move them to.
        #[arg(value_parser = parse_group_id)]
        dst: u32,
        /// At most this many slots.
        #[arg(value_parser = clap::value_parser!(u32).range(1..=1024))]
        count: u32,
    },
    /// Remove a queued (pending) slot action.
    Remove {
        /// The slot, 0..1023.
        #[arg(value_parser = parse_slot)]
        slot: u32,
    },
    /// Set the pause between migration batches, in microseconds (0..1000000).
    Interval {
        /// Microseconds.
        #[arg(value_parser = clap::value_parser!(u32).range(0..=1_000_000))]
        us: u32,
    },
    /// Stop starting new migrations (running ones finish).
    Disable,
    /// Resume starting migrations.
    Enable,
    /// Run one step of the slot-action engine now and show what moved.
    Process,
    /// Every slot with an action, with its progress (keys moved and left,
    /// rate, ETA, error); `--watch` redraws every second until none is left.
    List {
        /// Redraw every second until no action is left (Ctrl-C stops).
        #[arg(long)]
        watch: bool,
    },
}

/// Runs a `slots action` subcommand.
pub async fn run(ctx: &Ctx, cmd: SlotActionCmd) -> Result<(), CliError> {
    match cmd {
        SlotActionCmd::Create { slot, group } => {
            let req = pb::CreateSlotActionRequest {
                slot_id: slot,
                target_group_id: group,
            };
            let resp = call!(ctx, create_slot_action, req)?;
            ctx.out.emit(&resp, |r| match r.mapping.as_ref() {
                Some(m) => describe_mapping(m),
                None => format!("queued slot {slot} -> group {group}"),
            })
        }
        SlotActionCmd::CreateRange { begin, end, group } => {
            let req = pb::CreateSlotActionRangeRequest {
                begin,
                end,
                target_group_id: group,
            };
            let resp = call!(ctx, create_slot_action_range, req)?;
            ctx.out.emit(&resp, |r| queued(&r.slot_ids, group))
        }
        SlotActionCmd::CreateSome { src, dst, count } => {
            let req = pb::CreateSlotActionSomeRequest {
                source_group_id: src,
                target_group_id: dst,
                count,
            };
            let resp = call!(ctx, create_slot_action_some, req)?;
            ctx.out.emit(&resp, |r| queued(&r.slot_ids, dst))
        }
        SlotActionCmd::Remove { slot } => {
            let req = pb::RemoveSlotActionRequest { slot_id: slot };
            let resp = call!(ctx, remove_slot_action, req)?;
            ctx.out.emit(&resp, |_| {
                format!("removed the pending action of slot {slot}")
            })
        }
        SlotActionCmd::Interval { us } => {
            let req = pb::SetSlotActionIntervalRequest { interval_us: us };
            let resp = call!(ctx, set_slot_action_interval, req)?;
            ctx.out
                .emit(&resp, |_| format!("slot-action interval set to {us}us"))
        }
        SlotActionCmd::Disable => set_disabled(ctx, true).await,
        SlotActionCmd::Enable => set_disabled(ctx, false).await,
        SlotActionCmd::List { watch } => loop {
            let stats = call!(ctx, get_stats, pb::GetStatsRequest::default())?;
            let busy = stats
                .stats
                .as_ref()
                .is_some_and(|s| s.slots.iter().any(|m| m.action.is_some()));
            if watch && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
                print!("\x1b[2J\x1b[H");
            }
            ctx.out.emit(&stats, |r| {
                render_actions(r.stats.as_ref().unwrap_or(&pb::StatsSnapshot::default()))
            })?;
            if !watch || !busy {
                return Ok(());
            }
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        },
        SlotActionCmd::Process => {
            let resp = call!(ctx, process_slot_action, pb::ProcessSlotActionRequest {})?;
            ctx.out.emit(&resp, render_steps)
        }
    }
}

async fn set_disabled(ctx: &Ctx, disabled: bool) -> Result<(), CliError> {
    let req = pb::SetSlotActionDisabledRequest { disabled };
    let resp = call!(ctx, set_slot_action_disabled, req)?;
    ctx.out.emit(&resp, |_| {
        if disabled {
            "slot actions disabled: no new migration will start".to_string()
        } else {
            "slot actions enabled".to_string()
        }
    })
}

/// `slot 5: pending #3 -> group 2`.
/// The actions table: one row per slot with an action, joined with its progress.
fn render_actions(s: &pb::StatsSnapshot) -> String {
    let progress: std::collections::BTreeMap<u32, &pb::SlotProgress> = s
        .slot_action
        .iter()
        .flat_map(|a| &a.progress)
        .map(|p| (p.slot_id, p))
        .collect();
    let mut t = Table::new(&[
        "SLOT", "FROM", "TO", "STATE", "#", "MOVED", "LEFT", "KEYS/S", "ETA", "ERROR",
    ]);
    let mut n = 0;
    for m in &s.slots {
        let Some(a) = &m.action else { continue };
        n += 1;
        let p = progress.get(&m.id);
        t.row(vec![
            m.id.to_string(),
            m.group_id.to_string(),
            a.target_group_id.to_string(),
            slot_state(a.state).to_owned(),
            a.index.to_string(),
            p.map_or("-".into(), |p| p.keys_moved.to_string()),
            p.map_or("-".into(), |p| p.keys_left.to_string()),
            p.map_or("-".into(), |p| format!("{:.0}", p.keys_per_sec)),
            p.map_or("-".into(), |p| {
                if p.eta_seconds < 0.0 {
                    "?".into()
                } else {
                    format!("{:.0}s", p.eta_seconds)
                }
            }),
            or_dash(p.map_or("", |p| p.error.as_str())),
        ]);
    }
    let head = match &s.slot_action {
        Some(a) => format!(
            "{n} slot action(s); engine {}, interval {}us, {} pass(es) running; {}\n",
            if a.disabled { "disabled" } else { "enabled" },
            a.interval_us,
            a.executor,
            if a.status.is_empty() {
                "idle"
            } else {
                a.status.as_str()
            }
        ),
        None => format!("{n} slot action(s)\n"),
    };
    head + &t.render()
}

fn describe_mapping(m: &pb::SlotMapping) -> String {
    match &m.action {
        Some(a) => format!(
            "slot {}: {} #{} -> group {}",
            m.id,
            slot_state(a.state),
            a.index,
            a.target_group_id
        ),
        None => format!("slot {}: group {}, no action", m.id, m.group_id),
    }
}

/// `queued 3 slots for group 2: 0-1,5`.
fn queued(slot_ids: &[u32], group: u32) -> String {
    if slot_ids.is_empty() {
        return format!("no slot to move to group {group}");
    }
    let mut ids = slot_ids.to_vec();
    ids.sort_unstable();
    format!(
        "queued {} slot(s) for group {group}: {}",
        ids.len(),
        format_ids(&ids)
    )
}

/// The steps of ProcessSlotAction as a table.
fn render_steps(r: &pb::ProcessSlotActionResponse) -> String {
    if r.steps.is_empty() {
        return "nothing to do".to_string();
    }
    let mut table = Table::new(&["SLOT", "STATE", "ERROR"]);
    for step in &r.steps {
        // UNSPECIFIED means the action completed and was cleared.
        let state = if step.state == pb::SlotActionState::Unspecified as i32 {
            "done".to_string()
        } else {
            slot_state(step.state)
        };
        table.row([step.slot_id.to_string(), state, or_dash(&step.error)]);
    }
    table.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queued_lists_ranges() {
        assert_eq!(queued(&[5, 0, 1], 2), "queued 3 slot(s) for group 2: 0-1,5");
        assert_eq!(queued(&[], 2), "no slot to move to group 2");
    }

    #[test]
    fn steps_table() {
        let r = pb::ProcessSlotActionResponse {
            steps: vec![
                pb::SlotStep {
                    slot_id: 3,
                    state: pb::SlotActionState::Prepared as i32,
                    error: String::new(),
                },
                pb::SlotStep {
                    slot_id: 4,
                    state: 0,
                    error: "boom".into(),
                },
            ],
        };
        assert_eq!(
            render_steps(&r),
            "SLOT  STATE     ERROR\n3     prepared  -\n4     done      boom\n"
        );
    }
}
