//! Group operations (reference §3.3): create, remove, add and delete servers,
//! replica-group flags, sync-action queueing, resync.

use super::error::{exists, not_found, precondition};
use super::sync::next_index as next_sync_index;
use super::{Change, Coordinator, Result, check_addr, check_group_id};
use crate::model::{Group, GroupServer, ProbeOutcome, SlotMapping, SyncAction, SyncState};
use crate::redis::ServerIdentity;
use crate::store::ProductData;

impl Coordinator {
    /// One group.
    pub fn group(&self, id: u32) -> Result<Group> {
        check_group_id(id)?;
        self.cache()
            .groups
            .get(&id)
            .cloned()
            .ok_or_else(|| not_found(format!("group-{id} does not exist")))
    }

    /// Creates an empty group.
    pub async fn create_group(&self, id: u32) -> Result<Group> {
        check_group_id(id)?;
        self.mutate(|d| {
            if d.groups.contains_key(&id) {
                return Err(exists(format!("group-{id} already exists")));
            }
            let g = Group::new(id);
            Ok((Change::of_groups(vec![g.clone()]), g))
        })
        .await
    }

    /// Removes an empty group that no slot refers to.
    pub async fn remove_group(&self, id: u32) -> Result<()> {
        check_group_id(id)?;
        self.mutate(|d| {
            let g = existing(d, id)?;
            if !g.servers.is_empty() {
                return Err(precondition(format!(
                    "group-{id} is not empty ({} servers): delete its servers first",
                    g.servers.len()
                )));
            }
            if let Some(m) = d.slots.iter().find(|m| refers_to(m, id)) {
                return Err(precondition(format!(
                    "group-{id} is still used by slot-{}",
                    m.id
                )));
            }
            Ok((
                Change {
                    removed_groups: vec![id],
                    ..Change::default()
                },
                (),
            ))
        })
        .await
    }

    /// Adds a server to a group: as master if the group is empty, else as a
    /// replica that gets a pending sync action unless `no_sync` (so it starts
    /// following the master without a separate resync). The server is probed
    /// first (outside every lock), and refused when it is a server some group
    /// already has under another spelling of its address.
    pub async fn add_group_server(
        &self,
        id: u32,
        addr: &str,
        datacenter: &str,
        no_sync: bool,
    ) -> Result<Group> {
        check_group_id(id)?;
        check_addr(addr)?;
        // Cheap checks first so that bad requests do not wait on a probe.
        let known: Vec<(u32, String)> = {
            let d = self.cache();
            existing(&d, id)?;
            check_addr_unused(&d, addr)?;
            d.groups
                .values()
                .flat_map(|g| g.servers.iter().map(|s| (g.id, s.addr.clone())))
                .collect()
        };
        let identity = self.backends.redis.probe(addr).await?;
        self.check_same_server(addr, &identity, &known).await?;
        self.mutate(|d| {
            let mut g = existing(d, id)?.clone();
            check_addr_unused(d, addr)?;
            check_not_promoting(&g)?;
            let mut server = GroupServer::new(addr, datacenter, identity.kind);
            if !g.servers.is_empty() && !no_sync {
                server.action = Some(SyncAction {
                    index: next_sync_index(d),
                    state: SyncState::Pending,
                    error: String::new(),
                });
            }
            g.servers.push(server);
            let mut change = Change::of_groups(vec![g.clone()]);
            mark_sentinels_stale(d, &mut change);
            Ok((change, g))
        })
        .await
    }

    /// Refuses `addr` when the server that answered there is one of `known`
    /// under another address: the same `run_id` in the latest stats round, or
    /// the same socket address once both names are resolved.
    async fn check_same_server(
        &self,
        addr: &str,
        identity: &ServerIdentity,
        known: &[(u32, String)],
    ) -> Result<()> {
        let same = |gid: u32, other: &str, how: String| {
            exists(format!(
                "{addr} is the same Redis server as {other}, already in group-{gid} ({how}); \
                 add each server once, under one address"
            ))
        };
        if !identity.run_id.is_empty() {
            let round = self.stats();
            for s in &round.servers {
                if let ProbeOutcome::Ok(info) = &s.probe.outcome
                    && info.get("run_id") == Some(identity.run_id.as_str())
                    && s.addr != addr
                {
                    return Err(same(
                        s.group_id,
                        &s.addr,
                        format!("run_id {}", identity.run_id),
                    ));
                }
            }
        }
        if identity.resolved.is_empty() {
            return Ok(());
        }
        let resolved = futures::future::join_all(
            known
                .iter()
                .map(|(_, other)| self.backends.redis.resolve(other)),
        )
        .await;
        for ((gid, other), found) in known.iter().zip(resolved) {
            if let Some(shared) = found.iter().find(|a| identity.resolved.contains(a)) {
                return Err(same(*gid, other, format!("both resolve to {shared}")));
            }
        }
        Ok(())
    }

    /// Removes a server from its group. The master may go only when it is the
    /// last server and no slot refers to the group.
    pub async fn delete_group_server(&self, id: u32, addr: &str) -> Result<Group> {
        check_group_id(id)?;
        check_addr(addr)?;
        self.mutate(|d| {
            let mut g = existing(d, id)?.clone();
            let index = g
                .position(addr)
                .ok_or_else(|| not_found(format!("group-{id} does not have server {addr}")))?;
            check_not_promoting(&g)?;
            if index == 0 {
                if g.servers.len() > 1 {
                    return Err(precondition(format!(
                        "cannot remove {addr}: it is the master of group-{id} and the group still has {} replicas; remove them or promote one first",
                        g.servers.len() - 1
                    )));
                }
                if let Some(m) = d.slots.iter().find(|m| refers_to(m, id)) {
                    return Err(precondition(format!(
                        "cannot remove {addr}: it is the master of group-{id}, which still owns slot-{} (move the slots away first)",
                        m.id
                    )));
                }
            }
            g.servers.remove(index);
            if g.servers.is_empty() {
                g.out_of_sync = false;
            }
            let mut change = Change::of_groups(vec![g.clone()]);
            mark_sentinels_stale(d, &mut change);
            Ok((change, g))
        })
        .await
    }

    /// Lets a server serve reads (or stops it). The change reaches proxies through
    /// the next table revision.
    pub async fn set_replica_group(&self, id: u32, addr: &str, enabled: bool) -> Result<Group> {
        check_group_id(id)?;
        check_addr(addr)?;
        self.mutate(|d| {
            let mut g = existing(d, id)?.clone();
            let index = g
                .position(addr)
                .ok_or_else(|| not_found(format!("group-{id} does not have server {addr}")))?;
            check_not_promoting(&g)?;
            g.servers[index].replica_group = enabled;
            Ok((Change::of_groups(vec![g.clone()]), g))
        })
        .await
    }

    /// Sets the replica-group flag of every server of every group. Refused as a
    /// whole (nothing written) if any group is promoting.
    pub async fn set_replica_group_all(&self, enabled: bool) -> Result<()> {
        self.mutate(|d| {
            let mut groups = Vec::new();
            for g in d.groups.values() {
                check_not_promoting(g)?;
                if g.servers.iter().any(|s| s.replica_group != enabled) {
                    let mut g = g.clone();
                    for s in &mut g.servers {
                        s.replica_group = enabled;
                    }
                    groups.push(g);
                }
            }
            Ok((Change::of_groups(groups), ()))
        })
        .await
    }
}

pub(super) fn existing(d: &ProductData, id: u32) -> Result<&Group> {
    d.groups
        .get(&id)
        .ok_or_else(|| not_found(format!("group-{id} does not exist")))
}

/// The group holding `addr` and its index there.
pub(super) fn server_of(d: &ProductData, addr: &str) -> Result<(Group, usize)> {
    d.groups
        .values()
        .find_map(|g| g.position(addr).map(|i| (g.clone(), i)))
        .ok_or_else(|| not_found(format!("server {addr} is not in any group")))
}

fn check_addr_unused(d: &ProductData, addr: &str) -> Result<()> {
    match d.groups.values().find(|g| g.position(addr).is_some()) {
        Some(g) => Err(exists(format!(
            "server {addr} already belongs to group-{}",
            g.id
        ))),
        None => Ok(()),
    }
}

pub(super) fn check_not_promoting(g: &Group) -> Result<()> {
    match g.promoting {
        Some(p) => Err(precondition(format!(
            "group-{} is promoting server index {} (state {}); wait for the switchover to finish",
            g.id,
            p.index,
            p.state.as_str()
        ))),
        None => Ok(()),
    }
}

/// Whether slot `m` belongs to, or is moving to, group `id`.
pub(super) fn refers_to(m: &SlotMapping, id: u32) -> bool {
    m.group_id == id || m.action.is_some_and(|a| a.target_id == id)
}

/// Group membership changed: the sentinels' monitoring may no longer match.
pub(super) fn mark_sentinels_stale(d: &ProductData, change: &mut Change) {
    if !d.sentinel.servers.is_empty() && !d.sentinel.out_of_sync {
        change.sentinel = Some(crate::model::Sentinel {
            out_of_sync: true,
            ..d.sentinel.clone()
        });
    }
}
