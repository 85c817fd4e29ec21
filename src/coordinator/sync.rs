//! Sync actions (reference §4.3): make a server follow its group's master, or
//! become master when it is at index 0.
//!
//! pending → syncing → synced | synced_failed, lowest index first, never while the
//! group is promoting. Each step is persisted before the next starts, and the
//! SLAVEOF transaction runs outside every coordinator lock.

use std::time::Duration;

use tokio::time::Instant;

use super::error::not_found;
use super::groups::{check_not_promoting, existing, server_of};
use super::{Change, Coordinator, Result, check_addr, check_group_id};
use crate::model::{Group, SyncAction, SyncState};
use crate::redis::Persisted;
use crate::store::ProductData;

/// What one ProcessSyncAction step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncStep {
    /// The server acted on.
    pub addr: String,
    /// Its group.
    pub group_id: u32,
    /// The state reached.
    pub state: SyncState,
    /// Why it failed (SyncedFailed).
    pub error: String,
    /// The master it now follows; empty when it became master.
    pub master: String,
}

impl Coordinator {
    /// Runs the lowest-index pending sync action, if any.
    pub async fn process_sync_action(&self) -> Result<Option<SyncStep>> {
        // Prepare (under the write mutex): pending → syncing.
        let picked = self
            .mutate(|d| {
                let Some((gid, index)) = next_pending(d) else {
                    return Ok((Change::default(), None));
                };
                let mut g = d.groups[&gid].clone();
                if g.promoting.is_some() {
                    return Ok((Change::default(), None));
                }
                let master = (index > 0).then(|| g.master().to_owned());
                let addr = g.servers[index].addr.clone();
                g.servers[index].action = Some(SyncAction {
                    index: 0,
                    state: SyncState::Syncing,
                    error: String::new(),
                });
                Ok((Change::of_groups(vec![g]), Some((gid, addr, master))))
            })
            .await?;
        let Some((gid, addr, master)) = picked else {
            return Ok(None);
        };

        // Run (no lock held).
        let outcome = self.converge(&addr, master.as_deref()).await;
        self.metrics.sync_action(outcome.is_ok());
        // A working replica is synced even when its config file could not be
        // rewritten; `error` then carries that second fact.
        let (state, error) = match &outcome {
            Ok(note) => (SyncState::Synced, note.clone().unwrap_or_default()),
            Err(e) => (SyncState::SyncedFailed, e.clone()),
        };
        if let Ok(Some(note)) = &outcome {
            tracing::warn!(server = %addr, group = gid, "{note}");
        }
        if let Err(e) = &outcome {
            tracing::warn!(server = %addr, group = gid, error = %e, "sync action failed");
        }

        // Complete (under the write mutex), unless the world moved on meanwhile.
        let err = error.clone();
        self.mutate(|d| {
            let Some(mut g) = d.groups.get(&gid).cloned() else {
                return Ok((Change::default(), ()));
            };
            let Some(i) = g.position(&addr) else {
                return Ok((Change::default(), ()));
            };
            let syncing = g.servers[i]
                .action
                .as_ref()
                .is_some_and(|a| a.state == SyncState::Syncing);
            if g.promoting.is_some() || !syncing {
                return Ok((Change::default(), ()));
            }
            g.servers[i].action = Some(SyncAction {
                index: 0,
                state,
                error: err,
            });
            Ok((Change::of_groups(vec![g]), ()))
        })
        .await?;
        Ok(Some(SyncStep {
            addr,
            group_id: gid,
            state,
            error,
            master: master.unwrap_or_default(),
        }))
    }

    /// Queues sync actions for every server of group `id`, so the whole group
    /// converges on its master, and republishes the group's slots.
    pub async fn resync_group(&self, id: u32) -> Result<u64> {
        check_group_id(id)?;
        self.mutate(|d| {
            let g = existing(d, id)?;
            check_not_promoting(g)?;
            let mut next = next_index(d);
            Ok((
                Change {
                    groups: vec![queue_all(g, &mut next)],
                    bump: true,
                    ..Change::default()
                },
                (),
            ))
        })
        .await?;
        Ok(self.table().revision)
    }

    /// [`Coordinator::resync_group`] for every non-empty group (none may be
    /// promoting), in one write.
    pub async fn resync_group_all(&self) -> Result<u64> {
        self.mutate(|d| {
            let mut next = next_index(d);
            let mut groups = Vec::new();
            for g in d.groups.values().filter(|g| !g.servers.is_empty()) {
                check_not_promoting(g)?;
                groups.push(queue_all(g, &mut next));
            }
            Ok((
                Change {
                    groups,
                    bump: true,
                    ..Change::default()
                },
                (),
            ))
        })
        .await?;
        Ok(self.table().revision)
    }

    /// Queues a sync action for a group server (reference §3.3).
    pub async fn create_sync_action(&self, addr: &str) -> Result<SyncAction> {
        check_addr(addr)?;
        self.mutate(|d| {
            let (mut g, index) = server_of(d, addr)?;
            check_not_promoting(&g)?;
            if let Some(a) = &g.servers[index].action
                && a.state == SyncState::Pending
            {
                return Err(super::error::exists(format!(
                    "server {addr} already has a pending sync action"
                )));
            }
            let action = SyncAction {
                index: next_index(d),
                state: SyncState::Pending,
                error: String::new(),
            };
            g.servers[index].action = Some(action.clone());
            Ok((Change::of_groups(vec![g]), action))
        })
        .await
    }

    /// Clears a server's sync action, whatever its state.
    pub async fn remove_sync_action(&self, addr: &str) -> Result<()> {
        check_addr(addr)?;
        self.mutate(|d| {
            let (mut g, index) = server_of(d, addr)?;
            check_not_promoting(&g)?;
            if g.servers[index].action.take().is_none() {
                return Err(not_found(format!("server {addr} has no sync action")));
            }
            Ok((Change::of_groups(vec![g]), ()))
        })
        .await
    }

    /// Points `addr` at `master` (or makes it master) and, for a replica, waits
    /// (bounded) for its link to come up, so a replica that cannot reach its
    /// master fails instead of reporting success. `Ok(Some(note))`: it works,
    /// but the change is not in its config file (see [`Persisted`]).
    pub(super) async fn converge(
        &self,
        addr: &str,
        master: Option<&str>,
    ) -> std::result::Result<Option<String>, String> {
        let ha = &self.settings.ha;
        let persisted = self
            .backends
            .ha
            .set_master(addr, master, ha.sync_timeout)
            .await
            .map_err(|e| e.to_string())?;
        let note = match persisted {
            Persisted::Yes => None,
            Persisted::No(why) => Some(format!(
                "replicating as asked, but not persisted (lost at its next restart): {why}"
            )),
        };
        let Some(master) = master else {
            return Ok(note);
        };
        let deadline = Instant::now() + ha.sync_link_timeout;
        let mut last = String::new();
        while Instant::now() < deadline {
            match self
                .backends
                .ha
                .replication(addr, Duration::from_secs(1))
                .await
            {
                // Up, or connected and receiving the initial copy (which may
                // wait for repl-diskless-sync-delay and take long on big data).
                Ok(info)
                    if info.get("master_link_status").map(String::as_str) == Some("up")
                        || info.get("master_sync_in_progress").map(String::as_str) == Some("1") =>
                {
                    return Ok(note);
                }
                Ok(info) => {
                    // The master may hold the initial copy back for
                    // repl-diskless-sync-delay (5 s by default): a replica it
                    // already lists has reached it, which is what matters here.
                    if self.master_lists(master, addr).await {
                        return Ok(note);
                    }
                    last = format!(
                        "master_link_status:{}",
                        info.get("master_link_status").map_or("?", String::as_str)
                    );
                }
                Err(e) => last = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Say why the link is down when we can see it ourselves.
        let reach = match self
            .backends
            .ha
            .replication(master, Duration::from_secs(1))
            .await
        {
            Ok(_) => String::new(),
            Err(e) => format!("; {e}"),
        };
        Err(format!(
            "{addr} follows {master} but its link did not come up within {:?} ({last}){reach}",
            ha.sync_link_timeout
        ))
    }
}

impl Coordinator {
    /// Whether `master`'s `INFO replication` lists `replica` (by port, and by
    /// host unless the master sees it through another address).
    async fn master_lists(&self, master: &str, replica: &str) -> bool {
        let Ok((host, port)) = crate::model::Addr::split(replica) else {
            return false;
        };
        let port = port.to_string();
        let Ok(info) = self
            .backends
            .ha
            .replication(master, Duration::from_secs(1))
            .await
        else {
            return false;
        };
        info.iter()
            .filter(|(k, _)| k.starts_with("slave") && k[5..].parse::<u32>().is_ok())
            .any(|(_, v)| {
                let field = |name: &str| {
                    v.split(',')
                        .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
                };
                field("port") == Some(port.as_str())
                    && (field("ip") == Some(host) || host == "localhost")
            })
    }
}

/// The server with the lowest pending index: (group id, server index).
fn next_pending(d: &ProductData) -> Option<(u32, usize)> {
    d.groups
        .values()
        .flat_map(|g| {
            g.servers.iter().enumerate().filter_map(move |(i, s)| {
                let a = s.action.as_ref()?;
                (a.state == SyncState::Pending).then_some((a.index, g.id, i))
            })
        })
        .min()
        .map(|(_, g, i)| (g, i))
}

/// 1 + the highest pending index.
pub(super) fn next_index(d: &ProductData) -> u32 {
    d.groups
        .values()
        .flat_map(|g| &g.servers)
        .filter_map(|s| s.action.as_ref())
        .filter(|a| a.state == SyncState::Pending)
        .map(|a| a.index)
        .max()
        .unwrap_or(0)
        + 1
}

/// `g` with a pending action on every server, numbered from `next`, and its
/// out-of-sync flag cleared.
fn queue_all(g: &Group, next: &mut u32) -> Group {
    let mut g = g.clone();
    for s in &mut g.servers {
        s.action = Some(SyncAction {
            index: *next,
            state: SyncState::Pending,
            error: String::new(),
        });
        *next += 1;
    }
    g.out_of_sync = false;
    g
}
