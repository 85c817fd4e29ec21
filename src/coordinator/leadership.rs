//! Which instance leads a product shared by several topom processes: the role
//! of this one, the leader's address for clients to follow, taking over (a fresh
//! epoch, the product reloaded), following the store as a standby, resigning.

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime};

use tokio::time::Instant;

use super::events::{Event, EventKind};
use super::{Coordinator, Error, Result, SlotTable, new_epoch};
use crate::model::TopomRecord;
use crate::store::{Leadership, LockState};

/// How long a stream of a leader that stepped down waits to name the next one.
pub const STEP_DOWN_PATIENCE: Duration = Duration::from_secs(1);

/// The role of this instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Holds the ownership lock (it may be renewing it).
    Leader,
    /// Another instance holds it, or nobody does right now.
    Standby,
}

/// The leadership handle and this instance's leadership history.
#[derive(Default)]
pub(super) struct LeaderState {
    handle: OnceLock<Arc<dyn Leadership>>,
    /// When this instance last became leader.
    since: Mutex<Option<SystemTime>>,
    /// The last leader a standby saw, for the event of taking over from it.
    last_leader: Mutex<Option<String>>,
    /// Set once a term has begun (the product reloaded), cleared when it ends:
    /// a lock just taken does not yet make a cache fit to write from.
    ready: std::sync::atomic::AtomicBool,
}

impl Coordinator {
    /// Gives the core the handle of a lock shared by several instances (once,
    /// at start). Without one, this instance is the only one.
    pub fn attach_leadership(&self, handle: Arc<dyn Leadership>) {
        let _ = self.leader.handle.set(handle);
    }

    /// Leader or standby, from the lock's state.
    pub fn role(&self) -> Role {
        match *self.lock_state.borrow() {
            LockState::Held | LockState::Renewing => Role::Leader,
            LockState::Lost | LockState::Standby => Role::Standby,
        }
    }

    /// The owner record of the leader: this instance's own when it leads.
    pub fn leader_record(&self) -> Option<TopomRecord> {
        if self.role() == Role::Leader {
            return Some(self.owner.clone());
        }
        let handle = self.leader.handle.get()?;
        let bytes = handle.holder().borrow().clone()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The leader's gRPC address, when one leads.
    pub fn leader_addr(&self) -> Option<String> {
        self.leader_record().map(|r| r.admin_addr)
    }

    /// Every running instance with its role, the leader first. Without a
    /// shared lock, this instance alone.
    pub async fn instances(&self) -> Vec<(TopomRecord, Role)> {
        let mut records: Vec<TopomRecord> = match self.leader.handle.get() {
            Some(h) => match h.instances().await {
                Ok(list) => list
                    .iter()
                    .filter_map(|b| serde_json::from_slice(b).ok())
                    .collect(),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot list the instances");
                    Vec::new()
                }
            },
            None => Vec::new(),
        };
        let leader = self.leader_record();
        // Shown even when the list could not be read or lags behind.
        for known in leader.iter().chain([&self.owner]) {
            if !records.iter().any(|r| r.token == known.token) {
                records.push(known.clone());
            }
        }
        let leads = |r: &TopomRecord| leader.as_ref().is_some_and(|l| l.token == r.token);
        records.sort_by(|a, b| {
            (!leads(a), &a.start_time, &a.admin_addr).cmp(&(
                !leads(b),
                &b.start_time,
                &b.admin_addr,
            ))
        });
        records
            .into_iter()
            .map(|r| {
                let role = if leads(&r) {
                    Role::Leader
                } else {
                    Role::Standby
                };
                (r, role)
            })
            .collect()
    }

    /// Since when this instance leads (`None` while it does not).
    pub fn leader_since(&self) -> Option<SystemTime> {
        if self.role() != Role::Leader {
            return None;
        }
        *self.leader.since.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Returns once this instance no longer holds its lock (at once if it does
    /// not): streams a leader serves end then, so clients go to the new one.
    pub async fn until_not_leader(&self) {
        let mut state = self.lock_state.clone();
        let _ = state.wait_for(|s| *s != LockState::Held).await;
    }

    /// The error for a client of a leader that just stepped down: it names the
    /// next leader if one takes over within [`STEP_DOWN_PATIENCE`], so the
    /// client goes straight there.
    pub async fn stepped_down(&self) -> Error {
        if let Some(handle) = self.leader.handle.get() {
            let mut holder = handle.holder();
            let own = self.owner.token.clone();
            let _ = tokio::time::timeout(
                STEP_DOWN_PATIENCE,
                holder.wait_for(|h| {
                    h.as_deref()
                        .and_then(|b| serde_json::from_slice::<TopomRecord>(b).ok())
                        .is_some_and(|r| r.token != own)
                }),
            )
            .await;
        }
        match self.check_leader() {
            Err(e) => e,
            Ok(()) => Error::NotOnline("this topom stepped down".into()),
        }
    }

    /// Refuses on a standby what only the leader serves (its stats rounds).
    pub fn check_not_standby(&self) -> Result<()> {
        match self.role() {
            Role::Leader => Ok(()),
            Role::Standby => Err(self.not_leader()),
        }
    }

    /// Records the start (`true`) or end of a term of this instance's
    /// leadership, as an event.
    pub fn record_leadership(&self, leading: bool) {
        self.leader
            .ready
            .store(leading, std::sync::atomic::Ordering::SeqCst);
        let me = self.owner.admin_addr.clone();
        let previous = {
            let mut since = self.leader.since.lock().unwrap_or_else(|p| p.into_inner());
            let previous = self
                .leader
                .last_leader
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            *since = leading.then(SystemTime::now);
            previous
        };
        let (kind, old, new, detail) = if leading {
            (
                EventKind::LeaderElected,
                previous.unwrap_or_default(),
                me,
                String::new(),
            )
        } else {
            let state = *self.lock_state.borrow();
            let next = self.leader_addr().filter(|l| *l != me).unwrap_or_default();
            (
                EventKind::SteppedDown,
                me,
                next,
                format!("ownership lock {state:?}"),
            )
        };
        self.ha.events.push(Event {
            kind,
            time: SystemTime::now(),
            group_id: 0,
            old_master: old,
            new_master: new,
            revision: self.table().revision,
            detail,
        });
    }

    /// Whether a shared lock's term is under way (always, without one).
    pub(super) fn term_ready(&self) -> bool {
        self.leader.handle.get().is_none()
            || self.leader.ready.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The error a standby answers with.
    pub(super) fn not_leader(&self) -> Error {
        Error::NotLeader {
            leader: self.leader_addr(),
        }
    }

    /// Called when this instance has just become leader: reloads the product
    /// (another leader wrote it meanwhile) and starts a fresh epoch, so every
    /// proxy resets to this leader's table.
    pub async fn take_leadership(&self) -> Result<Arc<SlotTable>> {
        let _w = self.writes.lock().await;
        let data = self.backends.store.load().await?;
        let epoch: Arc<str> = new_epoch(&self.owner).into();
        let table = SlotTable::initial(epoch, &data.slots, &data.groups, self.settings.method);
        self.leases.new_term(data.proxies.keys());
        self.engine.new_term();
        *self.cache() = data;
        self.published.restart(table);
        Ok(self.table())
    }

    /// A standby's refresh after the leader changed the store: the cache and
    /// table follow the store (no epoch change: a standby serves no proxies).
    pub async fn follow_store(&self) -> Result<()> {
        if self.role() == Role::Leader {
            return Ok(());
        }
        *self
            .leader
            .last_leader
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = self.leader_addr();
        let _w = self.writes.lock().await;
        self.reload_locked().await
    }

    /// Hands leadership over: gives the lock up, stays out for `wait`, and
    /// returns the new leader's address and how long the takeover took.
    pub async fn resign(&self, wait: Duration) -> Result<(String, Duration)> {
        let Some(handle) = self.leader.handle.get() else {
            return Err(super::error::precondition(
                "Resign needs several topom instances on the etcd store; this one uses a single-instance store",
            ));
        };
        if *self.lock_state.borrow() != LockState::Held {
            return Err(super::error::precondition(match self.leader_addr() {
                Some(l) if self.role() == Role::Standby => {
                    format!("this topom is a standby; resign the leader at {l}")
                }
                _ => "this topom does not hold leadership right now".into(),
            }));
        }
        let mut holder = handle.holder();
        let started = Instant::now();
        handle.resign(wait).await?;
        let own = self.owner.admin_addr.clone();
        let next = tokio::time::timeout(
            wait,
            holder.wait_for(|h| {
                h.as_deref()
                    .and_then(|b| serde_json::from_slice::<TopomRecord>(b).ok())
                    .is_some_and(|r| r.admin_addr != own)
            }),
        )
        .await;
        match next {
            Ok(Ok(_)) => {
                let took = started.elapsed();
                let leader = self.leader_addr().unwrap_or_default();
                tracing::info!(new_leader = %leader, ?took, "leadership handed over");
                Ok((leader, took))
            }
            _ => Err(Error::DeadlineExceeded(format!(
                "no standby took leadership within {wait:?}; this instance campaigns again"
            ))),
        }
    }
}
