//! The etcd ownership lock: a key bound to a lease, created only if absent; a
//! start that finds it held waits out a dead holder's lease; a keep-alive task
//! renews it every TTL/3, reports `Renewing`/`Lost`, and takes the lock back when
//! it can. The [`Fence`] it shares with the store's writes is what guards them.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{
    Compare, CompareOp, LeaseKeepAliveStream, LeaseKeeper, PutOptions, Txn, TxnOp, TxnOpResponse,
};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until, timeout};

use super::EtcdStore;
use crate::store::memory::{check_key, locked};
use crate::store::{LockState, OwnershipLock, StoreError};

/// First and largest pause between retries of keep-alives and re-acquisition.
const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(1);

/// The holder as [`StoreError::Locked`] describes it.
fn owner_of(key: &str, record: &[u8]) -> String {
    match locked(key, Some(record)) {
        StoreError::Locked { owner, .. } => owner,
        other => other.to_string(),
    }
}

/// How often a start waiting on a dead holder's lease looks at it again.
const LEASE_POLL: Duration = Duration::from_millis(250);

/// The lock key as found when taking it failed: bound to `lease`, holding the
/// holder's owner record.
pub(super) struct Held {
    lease: i64,
    pub(super) record: Vec<u8>,
}

/// What a held lock shares between its handle, its keep-alive task and the writes.
pub(super) struct Fence {
    /// Tells this lock from a later one of the same store.
    pub(super) id: u64,
    /// The lock's store key, for messages.
    pub(super) key: String,
    /// The lock's etcd key (prefix included).
    pub(super) full_key: String,
    /// The lease the key is bound to; changes when the lock is taken back.
    pub(super) lease: AtomicI64,
    pub(super) state: watch::Sender<LockState>,
    /// Wakes the keep-alive task when a write found the key no longer ours.
    pub(super) lost: Notify,
    /// Wakes the keep-alive task to renew at once when a store call failed.
    pub(super) suspect: Notify,
    /// The current holder's owner record (this process's own while held).
    pub(super) holder: watch::Sender<Option<Vec<u8>>>,
    /// Wakes the keep-alive task to give the lock up (Resign).
    pub(super) resign: Notify,
    /// Until when the lock is not taken again after a resign.
    pub(super) hold_off_until: std::sync::Mutex<Option<Instant>>,
}

impl Fence {
    /// A fence for `key` in `state`, bound to `lease` (0: none yet).
    pub(super) fn new(id: u64, key: &str, full_key: String, lease: i64, state: LockState) -> Fence {
        Fence {
            id,
            key: key.to_owned(),
            full_key,
            lease: AtomicI64::new(lease),
            state: watch::channel(state).0,
            lost: Notify::new(),
            suspect: Notify::new(),
            holder: watch::channel(None).0,
            resign: Notify::new(),
            hold_off_until: std::sync::Mutex::new(None),
        }
    }

    /// The hold-off a resign set, if it has not run out.
    pub(super) fn holding_off(&self) -> Option<Instant> {
        let until = *self
            .hold_off_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        until.filter(|u| *u > Instant::now())
    }

    /// Records who holds the key now, if that changed.
    pub(super) fn set_holder(&self, record: Option<&[u8]>) {
        self.holder
            .send_if_modified(|h| match (h.as_deref(), record) {
                (a, b) if a == b => false,
                _ => {
                    *h = record.map(<[u8]>::to_vec);
                    true
                }
            });
    }

    /// Called when a write guarded by `lease` failed its guard.
    pub(super) fn report_lost(&self, lease: i64) {
        // A stale lease means the task already took the lock back: nothing new.
        if self.lease.load(Ordering::SeqCst) == lease && *self.state.borrow() == LockState::Held {
            self.state.send_replace(LockState::Lost);
            self.lost.notify_one();
        }
    }

    /// Called when a store call got no answer: the lease may be running out
    /// unrenewed, so stop claiming it until a keep-alive proves otherwise.
    pub(super) fn report_unanswered(&self) {
        self.state.send_if_modified(|s| {
            let held = *s == LockState::Held;
            if held {
                *s = LockState::Renewing;
            }
            held
        });
        self.suspect.notify_one();
    }

    /// A keep-alive failed (`ok == false`) or succeeded.
    fn renewed(&self, ok: bool) {
        let (from, to) = if ok {
            (LockState::Renewing, LockState::Held)
        } else {
            (LockState::Held, LockState::Renewing)
        };
        self.state.send_if_modified(|s| {
            let change = *s == from;
            if change {
                *s = to;
            }
            change
        });
    }
}

impl EtcdStore {
    /// Grants a lease and creates the lock key bound to it, if absent. Returns the
    /// lease, its TTL and until when it is surely alive.
    pub(super) async fn take(
        &self,
        key: &str,
        full_key: &str,
        owner: &[u8],
    ) -> Result<Result<(i64, Duration, Instant), Held>, StoreError> {
        let ttl = self.inner.opts.lease_ttl;
        let secs = (ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0)).max(1);
        let mut leases = self.inner.client.lease_client();
        // The lease lives at least TTL from when it was asked for.
        let sent = Instant::now();
        let grant = self
            .call(
                "grant lease",
                leases.grant(i64::try_from(secs).unwrap_or(i64::MAX), None),
            )
            .await?;
        let lease = grant.id();
        let ttl = Duration::from_secs(u64::try_from(grant.ttl()).unwrap_or(secs).max(1));
        let txn = Txn::new()
            .when([Compare::create_revision(full_key, CompareOp::Equal, 0)])
            .and_then([TxnOp::put(
                full_key,
                owner.to_vec(),
                Some(PutOptions::new().with_lease(lease)),
            )])
            .or_else([TxnOp::get(full_key, None)]);
        let mut kv = self.inner.client.kv_client();
        let resp = match self.call("take lock", kv.txn(txn)).await {
            Ok(resp) => resp,
            Err(e) => {
                // The put may have happened anyway; revoking undoes it.
                self.revoke_in_background(lease);
                return Err(e);
            }
        };
        if resp.succeeded() {
            return Ok(Ok((lease, ttl, sent + ttl)));
        }
        self.revoke_in_background(lease);
        let holder = resp.op_responses().into_iter().find_map(|r| match r {
            TxnOpResponse::Get(get) => get
                .kvs()
                .first()
                .map(|kv| (kv.lease(), kv.value().to_vec())),
            _ => None,
        });
        match holder {
            // Bound to a lease: held until that lease ends; see `outlast`.
            Some((lease, record)) if lease != 0 => Ok(Err(Held { lease, record })),
            // Deleted meanwhile: try again at once.
            None => Ok(Err(Held {
                lease: 0,
                record: Vec::new(),
            })),
            // No lease (written by hand or by another tool): never expires.
            Some((_, record)) => Err(locked(key, Some(&record))),
        }
    }

    /// Waits while the lock at `key` is held under `held.lease` by a holder that
    /// has stopped renewing it, as one killed by kill -9 has: such a lease runs out
    /// within its TTL and etcd deletes the key. A live holder renews every TTL/3;
    /// a renewal seen here (the remaining TTL rising) refuses the start, naming the
    /// holder. Returns `Ok` once the lease is gone (the caller tries again).
    async fn outlast(&self, key: &str, held: &Held) -> Result<(), StoreError> {
        if held.lease == 0 {
            return Ok(());
        }
        let mut leases = self.inner.client.lease_client();
        let mut last: Option<i64> = None;
        loop {
            let lease = self
                .call(
                    "read the holder's lease",
                    leases.time_to_live(held.lease, None),
                )
                .await?;
            // -1 (or 0 in its last second rounded down): expired or revoked.
            let remaining = lease.ttl();
            if remaining < 0 {
                return Ok(());
            }
            match last {
                Some(prev) if remaining > prev => return Err(locked(key, Some(&held.record))),
                Some(_) => {}
                None => tracing::warn!(
                    lock = key,
                    lease = format_args!("{:x}", held.lease),
                    owner = %owner_of(key, &held.record),
                    "the ownership lock is held by another topom; waiting until its lease \
                     expires in at most {}s (a holder killed without a clean stop leaves it until \
                     then; a live holder renews it within {}s, and then this start is refused)",
                    remaining + 1,
                    (lease.granted_ttl() / 3).max(1),
                ),
            }
            last = Some(remaining);
            sleep(LEASE_POLL).await;
        }
    }

    /// Revokes `lease` (deleting the keys bound to it); a lease already gone is fine.
    pub(super) async fn revoke(&self, lease: i64) -> Result<(), StoreError> {
        let mut leases = self.inner.client.lease_client();
        let request = async {
            match leases.revoke(lease).await {
                Ok(_) => Ok(()),
                Err(etcd_client::Error::GRpcStatus(s)) if s.code() == tonic::Code::NotFound => {
                    Ok(())
                }
                Err(e) => Err(e),
            }
        };
        self.call("revoke lease", request).await
    }

    /// Revokes an unused lease without waiting; if that fails it expires anyway.
    pub(super) fn revoke_in_background(&self, lease: i64) {
        let store = self.clone();
        self.inner.background.spawn(async move {
            if let Err(e) = store.revoke(lease).await {
                tracing::debug!(lease, error = %e, "cannot revoke an unused lease; it will expire");
            }
        });
    }

    /// Keeps `fence`'s lock alive while held (`term` says until when the current
    /// lease is surely alive), gives it up on a resign, and takes it (back)
    /// whenever it is free. Runs until aborted by the lock handle.
    pub(super) async fn keep(
        self,
        fence: Arc<Fence>,
        owner: Vec<u8>,
        term: Option<(Duration, Instant)>,
    ) {
        let mut term = term;
        let mut old = None;
        loop {
            if let Some((ttl, valid_until)) = term {
                let lease = fence.lease.load(Ordering::SeqCst);
                match self.hold(&fence, lease, ttl, valid_until).await {
                    Ended::Resigned => {
                        self.give_up(&fence, lease).await;
                        tracing::info!(key = %fence.key, lease, "ownership lock given up (resign)");
                    }
                    Ended::Lost(why) => {
                        fence.state.send_replace(LockState::Lost);
                        tracing::warn!(key = %fence.key, lease, reason = %why, "ownership lock lost; taking it back");
                        old = Some(lease);
                    }
                }
            }
            let taken = self.retake(&fence, &owner, old.take()).await;
            tracing::info!(
                key = %fence.key,
                lease = fence.lease.load(Ordering::SeqCst),
                "ownership lock taken"
            );
            // Held first: in between, a reader must not see a standby that
            // names itself as the leader.
            fence.state.send_replace(LockState::Held);
            fence.set_holder(Some(&owner));
            term = Some(taken);
        }
    }

    /// Renews `lease` every TTL/3 until it may have expired or is given up.
    async fn hold(
        &self,
        fence: &Fence,
        lease: i64,
        ttl: Duration,
        mut valid_until: Instant,
    ) -> Ended {
        let every = ttl / 3;
        let mut channel = None;
        let mut next = Instant::now() + every;
        let mut backoff = RETRY_MIN;
        loop {
            tokio::select! {
                () = sleep_until(next.min(valid_until)) => {}
                () = fence.suspect.notified() => {}
                () = fence.lost.notified() => {
                    return Ended::Lost("a write found the lock key deleted or re-created".into());
                }
                // Always armed: a guard is read when the select starts, so a
                // resign during the sleep would wait for the next renewal. A
                // stale permit (a resign that found the lock not held) only
                // brings that renewal forward.
                () = fence.resign.notified() => {}
            }
            if fence.holding_off().is_some() {
                return Ended::Resigned;
            }
            let sent = Instant::now();
            if sent >= valid_until {
                return Ended::Lost(format!(
                    "no successful keep-alive for {ttl:?}; the lease may have expired"
                ));
            }
            let budget = self.inner.opts.timeout.min(valid_until - sent);
            let outcome = timeout(budget, self.keep_alive(&mut channel, lease, ttl)).await;
            match outcome {
                Ok(Ok(Some(renewed))) => {
                    valid_until = sent + renewed;
                    next = sent + every;
                    backoff = RETRY_MIN;
                    fence.renewed(true);
                }
                Ok(Ok(None)) => return Ended::Lost("etcd reports the lease expired".into()),
                failed => {
                    let error = match failed {
                        Ok(Err(e)) => e.to_string(),
                        _ => format!("no answer within {budget:?}"),
                    };
                    tracing::warn!(key = %fence.key, lease, %error, "keep-alive failed; refusing writes and retrying");
                    fence.renewed(false);
                    // The stream may be broken; open a new one next time.
                    channel = None;
                    next = sent + backoff;
                    backoff = (backoff * 2).min(RETRY_MAX);
                }
            }
        }
    }

    /// One keep-alive round trip: the renewed TTL, or `None` if the lease is gone.
    pub(super) async fn keep_alive(
        &self,
        channel: &mut Option<(LeaseKeeper, LeaseKeepAliveStream)>,
        lease: i64,
        ttl: Duration,
    ) -> Result<Option<Duration>, etcd_client::Error> {
        let Some((keeper, stream)) = channel else {
            // Opening the stream is itself a keep-alive round trip; the client turns
            // a TTL of 0 (lease not found) into this error.
            return match self.inner.client.lease_client().keep_alive(lease).await {
                Ok(opened) => {
                    *channel = Some(opened);
                    Ok(Some(ttl))
                }
                Err(etcd_client::Error::LeaseKeepAliveError(_)) => Ok(None),
                Err(e) => Err(e),
            };
        };
        keeper.keep_alive().await?;
        match stream.message().await? {
            Some(resp) if resp.ttl() > 0 => Ok(Some(Duration::from_secs(
                u64::try_from(resp.ttl()).unwrap_or(1),
            ))),
            Some(_) => Ok(None),
            None => Err(etcd_client::Error::LeaseKeepAliveError(
                "keep-alive stream closed".into(),
            )),
        }
    }

    /// Takes a free lock, retrying until it succeeds: at once when the key goes
    /// (watched), with backoff when etcd fails. Returns the new lease's TTL and
    /// until when it is surely alive.
    async fn retake(&self, fence: &Fence, owner: &[u8], old: Option<i64>) -> (Duration, Instant) {
        let mut old = old;
        let mut backoff = RETRY_MIN;
        let mut last_error = String::new();
        loop {
            match self.retake_once(fence, owner, &mut old).await {
                Ok(taken) => return taken,
                Err(Retry::Held(revision)) => {
                    backoff = RETRY_MIN;
                    self.key_changed(&fence.full_key, revision, RETRY_MAX).await;
                }
                Err(Retry::HoldingOff(until, revision)) => {
                    // Woken early when the key appears (a standby took it);
                    // watched from the read, so a standby quicker than this
                    // watch is not missed (Resign waits for its record).
                    let left = until.saturating_duration_since(Instant::now());
                    self.key_changed(&fence.full_key, revision, left).await;
                }
                Err(Retry::Failed(e)) => {
                    let error = e.to_string();
                    // Say it once, not every second while etcd is away.
                    if error != last_error {
                        tracing::warn!(key = %fence.key, %error, "cannot take the ownership lock yet");
                        last_error = error;
                    }
                    sleep(backoff).await;
                    backoff = (backoff * 2).min(RETRY_MAX);
                }
            }
        }
    }

    async fn retake_once(
        &self,
        fence: &Fence,
        owner: &[u8],
        old: &mut Option<i64>,
    ) -> Result<(Duration, Instant), Retry> {
        if let Some(lease) = *old {
            // The old lease may still be alive (given up early, or renewed by an etcd
            // restart) and still carry the key. Revoke it, so the key is re-created
            // under a lease this task actually keeps alive.
            self.revoke(lease).await.map_err(Retry::Failed)?;
            *old = None;
        }
        // One cheap read per change of the key while another process holds it.
        let (current, revision) = self
            .read_key(&fence.full_key)
            .await
            .map_err(Retry::Failed)?;
        if let Some(record) = current {
            fence.set_holder(Some(&record));
            fence.state.send_if_modified(|s| {
                let changed = *s != LockState::Standby;
                *s = LockState::Standby;
                changed
            });
            return Err(Retry::Held(revision));
        }
        fence.set_holder(None);
        if let Some(until) = fence.holding_off() {
            return Err(Retry::HoldingOff(until, revision));
        }
        let (lease, ttl, valid_until) = self
            .take(&fence.key, &fence.full_key, owner)
            .await
            .map_err(Retry::Failed)?
            .map_err(|_| Retry::Held(0))?;
        // A holder counts only from its first keep-alive: the lease is then
        // known to be renewable, not just granted.
        let first = timeout(
            self.inner.opts.timeout,
            self.keep_alive(&mut None, lease, ttl),
        )
        .await;
        if !matches!(first, Ok(Ok(Some(_)))) {
            self.revoke_in_background(lease);
            return Err(Retry::Failed(StoreError::Unavailable(format!(
                "the first keep-alive of lease {lease:x} failed"
            ))));
        }
        fence.lease.store(lease, Ordering::SeqCst);
        Ok((ttl, valid_until))
    }

    /// Takes the lock `key` for `owner`, waiting out a dead holder's lease.
    pub(super) async fn take_lock(
        &self,
        key: &str,
        owner: &[u8],
    ) -> Result<Box<dyn OwnershipLock>, StoreError> {
        check_key(key)?;
        let full_key = self.full(key);
        let (lease, ttl, valid_until) = loop {
            match self.take(key, &full_key, owner).await? {
                Ok(taken) => break taken,
                Err(held) => self.outlast(key, &held).await?,
            }
        };
        let fence = Arc::new(Fence::new(
            self.inner.next_fence_id.fetch_add(1, Ordering::Relaxed),
            key,
            full_key,
            lease,
            LockState::Held,
        ));
        fence.set_holder(Some(owner));
        Ok(Box::new(self.start_keeping(
            fence,
            owner,
            Some((ttl, valid_until)),
        )))
    }
}

/// How a term of holding the lock ended.
pub(super) enum Ended {
    /// The lease may have run out, or the key is no longer bound to it.
    Lost(String),
    /// Given up on purpose (resign).
    Resigned,
}

/// Why taking the lock has to wait.
pub(super) enum Retry {
    /// Another process holds it; the key was read at this store revision.
    Held(i64),
    /// This process resigned and stays out until then; the key was read
    /// (absent) at this store revision.
    HoldingOff(Instant, i64),
    /// etcd failed.
    Failed(StoreError),
}

/// A held etcd lock. Dropping it stops the keep-alives without revoking, as a
/// crash would: the key then expires after the TTL. The store's writes stay
/// guarded by the abandoned lease, so once it has expired they fail with
/// [`StoreError::LockLost`] rather than silently becoming unguarded.
pub(super) struct EtcdLock {
    pub(super) store: EtcdStore,
    pub(super) fence: Arc<Fence>,
    pub(super) task: JoinHandle<()>,
    /// The instance record of a campaigning lock (see `leader.rs`).
    pub(super) presence: Option<super::leader::Presence>,
}

#[async_trait]
impl OwnershipLock for EtcdLock {
    fn state(&self) -> watch::Receiver<LockState> {
        self.fence.state.subscribe()
    }

    fn leadership(&self) -> Option<Arc<dyn crate::store::Leadership>> {
        let instances = self.presence.as_ref()?.dir.clone();
        Some(Arc::new(super::leader::EtcdLeadership {
            store: self.store.clone(),
            fence: self.fence.clone(),
            instances,
        }))
    }

    async fn release(mut self: Box<Self>) -> Result<(), StoreError> {
        if let Some(presence) = self.presence.take() {
            presence.end(&self.store).await;
        }
        self.task.abort();
        // Wait until the task is gone, so it cannot re-create the key behind us.
        let _ = (&mut self.task).await;
        {
            let mut slot = self.store.fence_slot();
            if slot.as_ref().is_some_and(|f| f.id == self.fence.id) {
                *slot = None;
            }
        }
        let lease = self.fence.lease.load(Ordering::SeqCst);
        // A standby that never held it has nothing to give up.
        let given_up = if lease == 0 {
            Ok(())
        } else {
            self.store.drop_key(&self.fence, lease).await
        };
        // Unused leases still being revoked: each call is bounded, and nothing
        // of this store may outlive the release.
        self.store.inner.background.close();
        self.store.inner.background.wait().await;
        given_up
    }
}

impl Drop for EtcdLock {
    fn drop(&mut self) {
        self.task.abort();
        if let Some(p) = &self.presence {
            p.task.abort();
        }
    }
}
