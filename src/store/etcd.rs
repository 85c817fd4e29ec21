//! The etcd backend (v3 API), for running several topom processes against one
//! cluster with at most one owner per product.
//!
//! Record `/codis3/demo/slots/slot-0000` is the etcd key `<prefix>/codis3/demo/slots/slot-0000`.
//! Every request is bounded by [`EtcdOptions::timeout`].
//!
//! # Ownership lock and fencing
//!
//! The lock key is bound to a lease of [`EtcdOptions::lease_ttl`], created only if
//! absent, and kept alive by a background task every TTL/3. A holder that dies
//! stops renewing, so its key vanishes after the TTL and another process can take
//! over.
//!
//! Because a holder can be partitioned away and lose its lease without noticing at
//! once, every write made through an [`EtcdStore`] that holds a lock is a
//! transaction guarded by "the lock key is still bound to my lease". A write from a
//! holder that lost the lock therefore fails with [`StoreError::LockLost`] instead
//! of overwriting the new owner's records. The lock state turns
//! [`LockState::Lost`] as soon as the lease may have expired (no successful
//! keep-alive for a TTL, or etcd reporting it gone); the task then keeps trying to
//! take the lock back and turns [`LockState::Held`] again when it has.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{
    Client, Compare, CompareOp, ConnectOptions, GetOptions, LeaseKeepAliveStream, LeaseKeeper,
    PutOptions, Txn, TxnOp, TxnOpResponse,
};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::{Instant, sleep, sleep_until, timeout};

use super::memory::{check_key, locked};
use super::{LockState, MetaStore, OwnershipLock, StoreError, Write};

/// etcd's default `--max-txn-ops`: the most operations one level of a transaction
/// may hold.
const MAX_TXN_OPS: usize = 128;

/// A batch larger than [`MAX_TXN_OPS`] is split into nested transactions of this
/// many operations inside one outer transaction. etcd checks each level against
/// `--max-txn-ops` minus the size of the level above, so 64 nested transactions
/// of 64 operations (4096 writes) fit in one atomic transaction.
const NESTED_OPS: usize = 64;

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
struct Held {
    lease: i64,
    record: Vec<u8>,
}

/// HTTP/2 ping interval on the connection, so a dead peer is noticed even while
/// only the keep-alive stream is open. etcd rejects pings more frequent than 5 s.
const PING_INTERVAL: Duration = Duration::from_secs(10);

/// Settings of an [`EtcdStore`].
#[derive(Clone)]
pub struct EtcdOptions {
    /// TTL of the ownership lease: how long a crashed owner blocks the product, and
    /// how long a partitioned owner may go unnoticed. Rounded up to whole seconds;
    /// etcd may raise it to its minimum (2 s with default election settings).
    pub lease_ttl: Duration,
    /// Bound on every request.
    pub timeout: Duration,
    /// User name and password, when etcd authentication is on.
    pub user: Option<(String, String)>,
}

impl Default for EtcdOptions {
    fn default() -> Self {
        EtcdOptions {
            lease_ttl: Duration::from_secs(10),
            timeout: Duration::from_secs(2),
            user: None,
        }
    }
}

impl fmt::Debug for EtcdOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the password.
        f.debug_struct("EtcdOptions")
            .field("lease_ttl", &self.lease_ttl)
            .field("timeout", &self.timeout)
            .field("user", &self.user.as_ref().map(|(name, _)| name))
            .finish()
    }
}

/// A [`MetaStore`] in etcd. Cheap to clone; clones share the connection and the
/// fencing of a held lock.
#[derive(Clone)]
pub struct EtcdStore {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    /// The endpoints as configured, for messages.
    endpoints: String,
    /// Prepended to every key; empty or starting with `/`, no trailing `/`.
    prefix: String,
    opts: EtcdOptions,
    /// The lock that guards this store's writes, once one was taken.
    fence: Mutex<Option<Arc<Fence>>>,
    next_fence_id: AtomicU64,
    /// Revokes of unused leases, joined when the lock is released.
    background: tokio_util::task::TaskTracker,
}

/// What a held lock shares between its handle, its keep-alive task and the writes.
struct Fence {
    /// Tells this lock from a later one of the same store.
    id: u64,
    /// The lock's store key, for messages.
    key: String,
    /// The lock's etcd key (prefix included).
    full_key: String,
    /// The lease the key is bound to; changes when the lock is taken back.
    lease: AtomicI64,
    state: watch::Sender<LockState>,
    /// Wakes the keep-alive task when a write found the key no longer ours.
    lost: Notify,
    /// Wakes the keep-alive task to renew at once when a store call failed.
    suspect: Notify,
}

impl Fence {
    /// Called when a write guarded by `lease` failed its guard.
    fn report_lost(&self, lease: i64) {
        // A stale lease means the task already took the lock back: nothing new.
        if self.lease.load(Ordering::SeqCst) == lease && *self.state.borrow() == LockState::Held {
            self.state.send_replace(LockState::Lost);
            self.lost.notify_one();
        }
    }

    /// Called when a store call got no answer: the lease may be running out
    /// unrenewed, so stop claiming it until a keep-alive proves otherwise.
    fn report_unanswered(&self) {
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
    /// Connects to etcd at `endpoints` (`host:port` or `http://host:port`) and checks
    /// that it answers. `prefix` (may be empty) is prepended to every key, so several
    /// deployments can share a cluster.
    pub async fn connect(
        endpoints: &[String],
        prefix: &str,
        opts: EtcdOptions,
    ) -> Result<EtcdStore, StoreError> {
        let joined = endpoints.join(",");
        if endpoints.is_empty() {
            return Err(StoreError::Unavailable(
                "etcd: no endpoints configured".into(),
            ));
        }
        let prefix = prefix.trim_end_matches('/');
        if !prefix.is_empty() && !prefix.starts_with('/') {
            return Err(StoreError::Unavailable(format!(
                "etcd {joined}: key prefix {prefix:?} must start with '/'"
            )));
        }
        let mut connect = ConnectOptions::new()
            .with_connect_timeout(opts.timeout)
            .with_keep_alive(PING_INTERVAL, opts.timeout)
            // A member cut off from its leader must not accept lease renewals or
            // serve stale answers.
            .with_require_leader(true);
        if let Some((user, password)) = &opts.user {
            connect = connect
                .with_user(user.clone(), password.clone())
                .with_auto_token_refresh(true);
        }
        let client = bounded(
            &joined,
            "connect",
            opts.timeout,
            Client::connect(endpoints, Some(connect)),
        )
        .await?;
        let store = EtcdStore {
            inner: Arc::new(Inner {
                client,
                endpoints: joined,
                prefix: prefix.to_owned(),
                opts,
                fence: Mutex::new(None),
                next_fence_id: AtomicU64::new(1),
                background: tokio_util::task::TaskTracker::new(),
            }),
        };
        // The connection is lazy: ask something now so a wrong address fails here,
        // with the address in the message, not at the first read.
        let mut maintenance = store.inner.client.maintenance_client();
        store.call("status", maintenance.status()).await?;
        Ok(store)
    }

    fn full(&self, key: &str) -> String {
        format!("{}{key}", self.inner.prefix)
    }

    /// Runs one request within the configured timeout. A failure makes the held
    /// lock (if any) doubt its lease until the next keep-alive.
    async fn call<T>(
        &self,
        what: &str,
        request: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, StoreError> {
        let result = bounded(
            &self.inner.endpoints,
            what,
            self.inner.opts.timeout,
            request,
        )
        .await;
        if result.is_err()
            && let Some(fence) = self.fence()
        {
            fence.report_unanswered();
        }
        result
    }

    fn fence(&self) -> Option<Arc<Fence>> {
        self.fence_slot().clone()
    }

    fn fence_slot(&self) -> std::sync::MutexGuard<'_, Option<Arc<Fence>>> {
        // The slot is a single assignment, never left half-done.
        self.inner
            .fence
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Applies `writes` (in order: the last write of a key wins), guarded by the
    /// held lock if there is one.
    async fn write(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        for (key, _) in &writes {
            check_key(key)?;
        }
        // etcd refuses a transaction that touches a key twice; applying in order
        // means only the last write of each key matters.
        let mut seen = std::collections::HashSet::new();
        let mut ops: Vec<TxnOp> = writes
            .into_iter()
            .rev()
            .filter(|(key, _)| seen.insert(key.clone()))
            .map(|(key, value)| match value {
                Some(v) => TxnOp::put(self.full(&key), v, None),
                None => TxnOp::delete(self.full(&key), None),
            })
            .collect();
        ops.reverse();
        if ops.is_empty() {
            return Ok(());
        }
        let fence = self.fence();
        let guard = match &fence {
            Some(f) => {
                match *f.state.borrow() {
                    LockState::Held => {}
                    LockState::Renewing => {
                        return Err(StoreError::Unavailable(format!(
                            "etcd {}: not answering; {} cannot be renewed, so no write is sent until it is",
                            self.inner.endpoints, f.key
                        )));
                    }
                    LockState::Lost => {
                        return Err(StoreError::LockLost(format!(
                            "{} is not held right now (the lease expired; retaking it)",
                            f.key
                        )));
                    }
                }
                Some((f.full_key.clone(), f.lease.load(Ordering::SeqCst)))
            }
            None => None,
        };
        let mut kv = self.inner.client.kv_client();
        for txn in transactions(ops, guard.as_ref()) {
            let resp = self.call("write", kv.txn(txn)).await?;
            if let (false, Some(f), Some((_, lease))) = (resp.succeeded(), &fence, &guard) {
                f.report_lost(*lease);
                return Err(StoreError::LockLost(format!(
                    "{} is no longer bound to this process's lease {lease:x}",
                    f.key
                )));
            }
        }
        Ok(())
    }

    /// Grants a lease and creates the lock key bound to it, if absent. Returns the
    /// lease, its TTL and until when it is surely alive.
    async fn take(
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
    async fn revoke(&self, lease: i64) -> Result<(), StoreError> {
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
    fn revoke_in_background(&self, lease: i64) {
        let store = self.clone();
        self.inner.background.spawn(async move {
            if let Err(e) = store.revoke(lease).await {
                tracing::debug!(lease, error = %e, "cannot revoke an unused lease; it will expire");
            }
        });
    }

    /// Keeps `fence`'s lock alive, and takes it back whenever it is lost. Runs
    /// until aborted by the lock handle.
    async fn keep(self, fence: Arc<Fence>, owner: Vec<u8>, ttl: Duration, valid_until: Instant) {
        let (mut ttl, mut valid_until) = (ttl, valid_until);
        loop {
            let lease = fence.lease.load(Ordering::SeqCst);
            let why = self.hold(&fence, lease, ttl, valid_until).await;
            fence.state.send_replace(LockState::Lost);
            tracing::warn!(key = %fence.key, lease, reason = %why, "ownership lock lost; taking it back");
            (ttl, valid_until) = self.retake(&fence, &owner, lease).await;
            tracing::info!(
                key = %fence.key,
                lease = fence.lease.load(Ordering::SeqCst),
                "ownership lock taken back"
            );
            fence.state.send_replace(LockState::Held);
        }
    }

    /// Renews `lease` every TTL/3 until it may have expired; returns why it is
    /// considered lost.
    async fn hold(
        &self,
        fence: &Fence,
        lease: i64,
        ttl: Duration,
        mut valid_until: Instant,
    ) -> String {
        let every = ttl / 3;
        let mut channel = None;
        let mut next = Instant::now() + every;
        let mut backoff = RETRY_MIN;
        loop {
            tokio::select! {
                () = sleep_until(next.min(valid_until)) => {}
                () = fence.suspect.notified() => {}
                () = fence.lost.notified() => {
                    return "a write found the lock key deleted or re-created".into();
                }
            }
            let sent = Instant::now();
            if sent >= valid_until {
                return format!("no successful keep-alive for {ttl:?}; the lease may have expired");
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
                Ok(Ok(None)) => return "etcd reports the lease expired".into(),
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
    async fn keep_alive(
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

    /// Takes a lost lock back, retrying with backoff until it succeeds. Returns
    /// the new lease's TTL and until when it is surely alive.
    async fn retake(&self, fence: &Fence, owner: &[u8], old: i64) -> (Duration, Instant) {
        let mut old = Some(old);
        let mut backoff = RETRY_MIN;
        let mut last_error = String::new();
        loop {
            match self.retake_once(fence, owner, &mut old).await {
                Ok(taken) => return taken,
                Err(e) => {
                    let error = e.to_string();
                    // Say it once, not every second while another process holds it.
                    if error != last_error {
                        tracing::warn!(key = %fence.key, %error, "cannot take the ownership lock back yet");
                        last_error = error;
                    }
                }
            }
            sleep(backoff).await;
            backoff = (backoff * 2).min(RETRY_MAX);
        }
    }

    async fn retake_once(
        &self,
        fence: &Fence,
        owner: &[u8],
        old: &mut Option<i64>,
    ) -> Result<(Duration, Instant), StoreError> {
        if let Some(lease) = *old {
            // The old lease may still be alive (given up early, or renewed by an etcd
            // restart) and still carry the key. Revoke it, so the key is re-created
            // under a lease this task actually keeps alive.
            self.revoke(lease).await?;
            *old = None;
        }
        // One cheap read per retry while another process holds the lock.
        if let Some(current) = self.get(&fence.key).await? {
            return Err(locked(&fence.key, Some(&current)));
        }
        let (lease, ttl, valid_until) = self
            .take(&fence.key, &fence.full_key, owner)
            .await?
            .map_err(|held| locked(&fence.key, Some(&held.record)))?;
        fence.lease.store(lease, Ordering::SeqCst);
        Ok((ttl, valid_until))
    }
}

impl fmt::Debug for EtcdStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdStore")
            .field("endpoints", &self.inner.endpoints)
            .field("prefix", &self.inner.prefix)
            .field("opts", &self.inner.opts)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl MetaStore for EtcdStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_key(key)?;
        let mut kv = self.inner.client.kv_client();
        let resp = self.call("get", kv.get(self.full(key), None)).await?;
        Ok(resp.kvs().first().map(|kv| kv.value().to_vec()))
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.write(vec![(key.to_owned(), Some(value.to_vec()))])
            .await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.write(vec![(key.to_owned(), None)]).await
    }

    async fn write_batch(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        self.write(writes).await
    }

    async fn list(&self, dir: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        check_key(dir)?;
        let start = format!("{}/", self.full(dir));
        let mut kv = self.inner.client.kv_client();
        let resp = self
            .call(
                "list",
                kv.get(start.clone(), Some(GetOptions::new().with_prefix())),
            )
            .await?;
        let mut out = Vec::new();
        for item in resp.kvs() {
            let Ok(full) = item.key_str() else {
                tracing::warn!(dir, "skipping an etcd key that is not UTF-8");
                continue;
            };
            // Keep direct children only: the prefix read returns the whole subtree.
            match full.strip_prefix(&start) {
                Some(name) if !name.is_empty() && !name.contains('/') => {
                    out.push((format!("{dir}/{name}"), item.value().to_vec()));
                }
                _ => {}
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    async fn lock(&self, key: &str, owner: &[u8]) -> Result<Box<dyn OwnershipLock>, StoreError> {
        check_key(key)?;
        let full_key = self.full(key);
        let (lease, ttl, valid_until) = loop {
            match self.take(key, &full_key, owner).await? {
                Ok(taken) => break taken,
                Err(held) => self.outlast(key, &held).await?,
            }
        };
        let (state, _) = watch::channel(LockState::Held);
        let fence = Arc::new(Fence {
            id: self.inner.next_fence_id.fetch_add(1, Ordering::Relaxed),
            key: key.to_owned(),
            full_key,
            lease: AtomicI64::new(lease),
            state,
            lost: Notify::new(),
            suspect: Notify::new(),
        });
        *self.fence_slot() = Some(fence.clone());
        let task = tokio::spawn(
            self.clone()
                .keep(fence.clone(), owner.to_vec(), ttl, valid_until),
        );
        Ok(Box::new(EtcdLock {
            store: self.clone(),
            fence,
            task,
        }))
    }

    fn locate(&self, key: &str) -> String {
        self.full(key)
    }

    fn describe(&self) -> String {
        if self.inner.prefix.is_empty() {
            format!("etcd:{}", self.inner.endpoints)
        } else {
            format!("etcd:{} prefix {}", self.inner.endpoints, self.inner.prefix)
        }
    }
}

/// A held etcd lock. Dropping it stops the keep-alives without revoking, as a
/// crash would: the key then expires after the TTL. The store's writes stay
/// guarded by the abandoned lease, so once it has expired they fail with
/// [`StoreError::LockLost`] rather than silently becoming unguarded.
struct EtcdLock {
    store: EtcdStore,
    fence: Arc<Fence>,
    task: JoinHandle<()>,
}

#[async_trait]
impl OwnershipLock for EtcdLock {
    fn state(&self) -> watch::Receiver<LockState> {
        self.fence.state.subscribe()
    }

    async fn release(mut self: Box<Self>) -> Result<(), StoreError> {
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
        let full_key = self.fence.full_key.as_str();
        // Delete the key only if it is still ours: another owner may hold it now.
        let txn = Txn::new()
            .when([Compare::lease(full_key, CompareOp::Equal, lease)])
            .and_then([TxnOp::delete(full_key, None)]);
        let mut kv = self.store.inner.client.kv_client();
        let deleted = self
            .store
            .call("release lock", kv.txn(txn))
            .await
            .map(|_| ());
        let revoked = self.store.revoke(lease).await;
        // Unused leases still being revoked: each call is bounded, and nothing
        // of this store may outlive the release.
        self.store.inner.background.close();
        self.store.inner.background.wait().await;
        deleted.and(revoked)
    }
}

impl Drop for EtcdLock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Runs `request` within `limit`, turning failures into [`StoreError::Unavailable`]
/// naming the endpoints and the cause.
async fn bounded<T>(
    endpoints: &str,
    what: &str,
    limit: Duration,
    request: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, StoreError> {
    match timeout(limit, request).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(StoreError::Unavailable(format!(
            "etcd {endpoints}: {what}: {e}"
        ))),
        Err(_) => Err(StoreError::Unavailable(format!(
            "etcd {endpoints}: {what}: no answer within {limit:?}"
        ))),
    }
}

/// The transactions applying `ops`, each guarded by `key` being bound to `lease`
/// when given. Up to 4096 operations make one transaction (nested when over
/// [`MAX_TXN_OPS`]); beyond that each 4096 is atomic on its own.
fn transactions(ops: Vec<TxnOp>, guard: Option<&(String, i64)>) -> Vec<Txn> {
    // The client panics if `when` comes after `and_then`: compare first.
    let guarded = |ops: Vec<TxnOp>| {
        let txn = match guard {
            Some((key, lease)) => {
                Txn::new().when([Compare::lease(key.as_str(), CompareOp::Equal, *lease)])
            }
            None => Txn::new(),
        };
        txn.and_then(ops)
    };
    if ops.len() <= MAX_TXN_OPS {
        return vec![guarded(ops)];
    }
    let nested: Vec<TxnOp> = ops
        .chunks(NESTED_OPS)
        .map(|chunk| TxnOp::txn(Txn::new().and_then(chunk.to_vec())))
        .collect();
    nested
        .chunks(NESTED_OPS)
        .map(|outer| guarded(outer.to_vec()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_never_print_the_password() {
        let opts = EtcdOptions {
            user: Some(("root".into(), "s3cret".into())),
            ..EtcdOptions::default()
        };
        let shown = format!("{opts:?}");
        assert!(shown.contains("root"), "{shown}");
        assert!(!shown.contains("s3cret"), "{shown}");
    }

    #[test]
    fn defaults() {
        let opts = EtcdOptions::default();
        assert_eq!(opts.lease_ttl, Duration::from_secs(10));
        assert_eq!(opts.timeout, Duration::from_secs(2));
        assert!(opts.user.is_none());
    }
}
