//! Promote (reference §4.4): a resumable, planned switchover of a group's master
//! to one of its replicas that loses no acknowledged write.
//!
//! none → preparing → prepared → finished → none, each state persisted (and the
//! table published) before the next step, so calling again resumes. Going beyond
//! Codis, in `prepared` topom waits until the replica has caught up, pausing writes
//! on the old master (`CLIENT PAUSE WRITE`, bounded) for the last bytes, then
//! promotes the replica, demotes the old master while writes are still paused,
//! and queues sync actions so the other replicas follow the new master.

use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::error::{not_found, precondition};
use super::events::{Event, EventKind};
use super::groups::{check_not_promoting, existing};
use super::{Change, Coordinator, Result, check_addr, check_group_id};
use crate::model::{Group, PromoteState, Promoting, SyncAction, SyncState};

/// What a promote did.
#[derive(Debug, Clone)]
pub struct PromoteOutcome {
    /// The group after the switchover.
    pub group: Group,
    /// How long writes were paused on the old master.
    pub write_pause: Duration,
}

/// How the catch-up ended.
enum CatchUp {
    /// Offsets are equal while writes are paused (since the returned instant).
    Paused(Instant),
    /// The old master cannot be reached: nothing to catch up with.
    MasterGone(String),
    /// The target already reports itself master (a resumed promote).
    AlreadySwitched,
}

impl Coordinator {
    /// Switches group `gid`'s master to `addr` (one of its replicas).
    pub async fn promote_server(&self, gid: u32, addr: &str) -> Result<PromoteOutcome> {
        let r = self.run_promote(gid, addr).await;
        self.metrics.promote(r.is_ok());
        r
    }

    async fn run_promote(&self, gid: u32, addr: &str) -> Result<PromoteOutcome> {
        check_group_id(gid)?;
        check_addr(addr)?;
        let _one_promote_at_a_time = self.ha.promote.lock().await;
        let started = Instant::now();

        // none → preparing → prepared: the group's slots become locked for proxies.
        for next in [PromoteState::Preparing, PromoteState::Prepared] {
            self.mutate(|d| {
                let g = existing(d, gid)?;
                let index = g.position(addr).ok_or_else(|| {
                    not_found(format!("group-{gid} does not have server {addr}"))
                })?;
                match g.promoting {
                    Some(p) if p.index as usize != index => {
                        return Err(precondition(format!(
                            "group-{gid} is already promoting {} (state {}); finish that first by promoting it again",
                            g.servers[p.index as usize].addr,
                            p.state.as_str()
                        )));
                    }
                    None if index == 0 => {
                        return Err(precondition(format!(
                            "{addr} is already the master of group-{gid}"
                        )));
                    }
                    _ => {}
                }
                let running = self.migrations_running();
                if running > 0 && g.promoting.is_none() {
                    return Err(precondition(format!(
                        "{running} slot migration batch(es) are running; promote when they finish"
                    )));
                }
                let current = g.promoting.map(|p| p.state);
                let advance = matches!(
                    (current, next),
                    (None, PromoteState::Preparing)
                        | (Some(PromoteState::Preparing), PromoteState::Prepared)
                );
                if !advance {
                    return Ok((Change::default(), ()));
                }
                let mut g = g.clone();
                g.promoting = Some(Promoting {
                    index: index as u32,
                    state: next,
                });
                Ok((
                    Change::of_groups(vec![g]),
                    (),
                ))
            })
            .await?;
        }

        // prepared → finished: catch up, switch, demote.
        let mut write_pause = Duration::ZERO;
        let mut detail = String::new();
        let g = self.group(gid)?;
        let old_master = g.master().to_owned();
        if g.promoting
            .is_some_and(|p| p.state == PromoteState::Prepared)
        {
            self.forget_in_sentinels(gid).await;
            let switched = match self.catch_up(&old_master, addr).await {
                Ok(c) => c,
                Err(e) => {
                    self.abort_promote(gid).await;
                    return Err(e);
                }
            };
            let paused_since = match &switched {
                CatchUp::Paused(t) => Some(*t),
                CatchUp::MasterGone(why) => {
                    detail = format!("old master unreachable ({why}): promoted without catch-up; ");
                    None
                }
                CatchUp::AlreadySwitched => None,
            };
            if !matches!(switched, CatchUp::AlreadySwitched)
                && let Err(e) = self.converge(addr, None).await
            {
                self.unpause(&old_master, paused_since).await;
                self.abort_promote(gid).await;
                return Err(precondition(format!(
                    "could not make {addr} master: {e}; the group is unchanged"
                )));
            }
            // Demote the old master while its writes are still paused: writes it
            // held then fail with READONLY instead of being acknowledged and lost.
            if matches!(switched, CatchUp::Paused(_))
                && let Err(e) = self
                    .backends
                    .ha
                    .set_master(&old_master, Some(addr), self.settings.ha.sync_timeout)
                    .await
            {
                tracing::warn!(old = %old_master, error = %e, "could not demote the old master; a sync action will retry");
            }
            write_pause = self.unpause(&old_master, paused_since).await;
            self.mutate(|d| {
                let g = existing(d, gid)?;
                let Some(p) = g.promoting.filter(|p| p.state == PromoteState::Prepared) else {
                    return Ok((Change::default(), ()));
                };
                let mut g = g.clone();
                let promoted = g.servers.remove(p.index as usize);
                let old = g.servers.remove(0);
                g.servers.insert(0, promoted);
                g.servers.push(old);
                let mut next = super::sync::next_index(d);
                for (i, s) in g.servers.iter_mut().enumerate() {
                    // The others follow the new master through sync actions (the
                    // old master too: it may already follow, then it is a no-op).
                    s.action = (i > 0).then(|| {
                        next += 1;
                        SyncAction {
                            index: next - 1,
                            state: SyncState::Pending,
                            error: String::new(),
                        }
                    });
                }
                g.promoting = Some(Promoting {
                    index: 0,
                    state: PromoteState::Finished,
                });
                Ok((Change::of_groups(vec![g]), ()))
            })
            .await?;
        }

        // finished → none: publish the new master, unlocked.
        let group = self
            .mutate(|d| {
                let g = existing(d, gid)?;
                if !g
                    .promoting
                    .is_some_and(|p| p.state == PromoteState::Finished)
                {
                    return Ok((Change::default(), g.clone()));
                }
                let mut g = g.clone();
                g.promoting = None;
                g.out_of_sync = false;
                Ok((Change::of_groups(vec![g.clone()]), g))
            })
            .await?;
        check_not_promoting(&group)?;
        if let Err(e) = self.monitor_in_sentinels(gid).await {
            tracing::warn!(group = gid, error = %e, "could not re-monitor the group in the sentinels");
            if let Err(e) = self.set_sentinel_out_of_sync(true).await {
                tracing::warn!(error = %e, "could not mark the sentinels out of sync");
            }
            detail.push_str(&format!("sentinel re-monitor failed: {e}; "));
        }
        detail.push_str(&format!(
            "write pause {:.1} ms, total {:.1} ms",
            write_pause.as_secs_f64() * 1e3,
            started.elapsed().as_secs_f64() * 1e3
        ));
        self.ha.events.push(Event {
            kind: EventKind::Promote,
            time: SystemTime::now(),
            group_id: gid,
            old_master,
            new_master: group.master().to_owned(),
            revision: self.table().revision,
            detail,
        });
        Ok(PromoteOutcome { group, write_pause })
    }

    /// Waits until `replica` has everything `master` acknowledged: first without
    /// pausing (bounded by the catch-up timeout), then with writes paused for the
    /// last bytes (bounded by the maximum write pause).
    async fn catch_up(&self, master: &str, replica: &str) -> Result<CatchUp> {
        let ha = &self.settings.ha;
        let probe = Duration::from_millis(500);
        let r = self.backends.ha.replication(replica, probe).await?;
        if r.get("role").map(String::as_str) == Some("master") {
            return Ok(CatchUp::AlreadySwitched);
        }
        if let Err(e) = self.backends.ha.replication(master, probe).await {
            return Ok(CatchUp::MasterGone(e.to_string()));
        }
        // Phase 1: no pause; wait until the replica is linked and close behind.
        let deadline = Instant::now() + ha.promote_catchup_timeout;
        let mut lag = i64::MAX;
        while Instant::now() < deadline {
            lag = self.lag(master, replica, probe).await?;
            if (0..=NEAR).contains(&lag) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if !(0..=NEAR).contains(&lag) {
            return Err(precondition(format!(
                "{replica} did not catch up with {master} within {:?} (last lag: {}); nothing was switched",
                ha.promote_catchup_timeout,
                if lag == i64::MAX {
                    "replica not linked".to_owned()
                } else {
                    format!("{lag} bytes")
                }
            )));
        }
        // Phase 2: pause writes (Redis lifts the pause by itself if we vanish) and
        // wait for the offsets to meet.
        let paused = Instant::now();
        self.backends
            .ha
            .pause_writes(master, ha.promote_max_write_pause, probe)
            .await?;
        let deadline = paused + ha.promote_max_write_pause;
        loop {
            let lag = self.lag(master, replica, probe).await?;
            if lag == 0 {
                return Ok(CatchUp::Paused(paused));
            }
            if Instant::now() >= deadline {
                self.unpause(master, Some(paused)).await;
                return Err(precondition(format!(
                    "{replica} was still {lag} bytes behind {master} after pausing writes for {:?}; nothing was switched",
                    ha.promote_max_write_pause
                )));
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Bytes the replica is behind the master (`i64::MAX` when not linked).
    async fn lag(&self, master: &str, replica: &str, timeout: Duration) -> Result<i64> {
        let (m, r) = tokio::join!(
            self.backends.ha.replication(master, timeout),
            self.backends.ha.replication(replica, timeout)
        );
        let (m, r) = (m?, r?);
        let int = |i: &crate::model::InfoMap, k: &str| i.get(k).and_then(|v| v.parse::<i64>().ok());
        if r.get("master_link_status").map(String::as_str) != Some("up") {
            return Ok(i64::MAX);
        }
        match (int(&m, "master_repl_offset"), int(&r, "slave_repl_offset")) {
            (Some(mo), Some(ro)) => Ok(mo - ro),
            _ => Ok(i64::MAX),
        }
    }

    /// Lifts the write pause; how long it lasted.
    async fn unpause(&self, master: &str, since: Option<Instant>) -> Duration {
        let Some(since) = since else {
            return Duration::ZERO;
        };
        if let Err(e) = self
            .backends
            .ha
            .unpause(master, Duration::from_millis(500))
            .await
        {
            // CLIENT PAUSE has its own timeout, so the server unpauses anyway.
            tracing::warn!(master, error = %e, "could not unpause writes; the pause expires by itself");
        }
        since.elapsed()
    }

    /// A failed switchover: back to no promote, slots unlocked.
    async fn abort_promote(&self, gid: u32) {
        let r = self
            .mutate(|d| {
                let mut g = existing(d, gid)?.clone();
                g.promoting = None;
                Ok((Change::of_groups(vec![g]), ()))
            })
            .await;
        if let Err(e) = r {
            tracing::error!(group = gid, error = %e, "could not roll back the promote; call PromoteServer again to resume");
        }
    }
}

/// Lag (bytes) below which the replica counts as close enough to pause writes.
const NEAR: i64 = 1 << 20;
