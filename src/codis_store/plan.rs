//! The text an import prints: what it would write, in the shape an operator
//! compares with `codis-admin --dashboard=... --slots-status` at a glance.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use crate::model::{SlotMapping, SlotState};
use crate::store::ProductData;

/// `0-511,600,700-701`: sorted slot ids compressed into ranges.
pub fn slot_ranges(ids: &[u32]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < ids.len() {
        let start = ids[i];
        while i + 1 < ids.len() && ids[i + 1] == ids[i] + 1 {
            i += 1;
        }
        if !out.is_empty() {
            out.push(',');
        }
        if start == ids[i] {
            let _ = write!(out, "{start}");
        } else {
            let _ = write!(out, "{start}-{}", ids[i]);
        }
        i += 1;
    }
    out
}

/// The plan: a summary line, then groups, slot actions, proxies and sentinels.
pub fn render_plan(product: &str, data: &ProductData) -> String {
    let mut out = String::new();
    let servers: usize = data.groups.values().map(|g| g.servers.len()).sum();
    let assigned = data.slots.iter().filter(|m| m.group_id != 0).count();
    let actions: Vec<&SlotMapping> = data.slots.iter().filter(|m| m.action.is_some()).collect();
    let _ = writeln!(
        out,
        "product {product}: {} groups, {servers} servers, {assigned} of 1024 slots assigned, \
         {} slot actions, {} proxies, {} sentinels",
        data.groups.len(),
        actions.len(),
        data.proxies.len(),
        data.sentinel.servers.len()
    );
    for g in data.groups.values() {
        let ids: Vec<u32> = owned_by(&data.slots, g.id);
        let members: Vec<String> = g
            .servers
            .iter()
            .enumerate()
            .map(|(i, s)| {
                let role = if i == 0 { "master" } else { "replica" };
                match &s.action {
                    Some(a) => format!("{} ({role}, sync action {})", s.addr, a.state.as_str()),
                    None => format!("{} ({role})", s.addr),
                }
            })
            .collect();
        let _ = writeln!(
            out,
            "group {}: {}; slots {} ({})",
            g.id,
            if members.is_empty() {
                "no servers".to_owned()
            } else {
                members.join(", ")
            },
            if ids.is_empty() {
                "none".to_owned()
            } else {
                slot_ranges(&ids)
            },
            ids.len()
        );
    }
    let offline = owned_by(&data.slots, 0);
    if !offline.is_empty() {
        let _ = writeln!(
            out,
            "offline: slots {} ({})",
            slot_ranges(&offline),
            offline.len()
        );
    }
    // One line per (source, target, state): a queued rebalance reads as a few lines.
    let mut moves: BTreeMap<(u32, u32, SlotState), Vec<u32>> = BTreeMap::new();
    for m in &actions {
        if let Some(a) = m.action {
            moves
                .entry((m.group_id, a.target_id, a.state))
                .or_default()
                .push(m.id);
        }
    }
    for ((from, to, state), ids) in moves {
        let _ = writeln!(
            out,
            "slot action: slots {} ({}) group {from} -> group {to}, {} (topom resumes it)",
            slot_ranges(&ids),
            ids.len(),
            state.as_str()
        );
    }
    for x in data.proxies.values() {
        let _ = writeln!(
            out,
            "proxy {}: admin {}, proxy {} (pid {})",
            x.token, x.admin_addr, x.proxy_addr, x.pid
        );
    }
    if !data.sentinel.servers.is_empty() {
        let _ = writeln!(out, "sentinels: {}", data.sentinel.servers.join(", "));
    }
    out
}

fn owned_by(slots: &[SlotMapping], gid: u32) -> Vec<u32> {
    slots
        .iter()
        .filter(|m| m.group_id == gid)
        .map(|m| m.id)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(slot_ranges(&[]), "");
        assert_eq!(slot_ranges(&[3]), "3");
        assert_eq!(slot_ranges(&[0, 1, 2, 5, 7, 8]), "0-2,5,7-8");
    }
}
