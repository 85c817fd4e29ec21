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
//!
//! # Several instances
//!
//! [`MetaStore::campaign`] does not refuse a live holder: it returns a standby
//! lock ([`LockState::Standby`]) whose task waits for the key to go (an etcd
//! watch on it, re-read at least every second), takes it, and counts itself the
//! holder only after the new lease's first keep-alive. A holder that resigns
//! deletes its key and stays out for a hold-off, so a standby wins the race.
//! Lease + transaction rather than etcd's election API: the writes are already
//! fenced on the lock key's lease, and one lease per term keeps a single thing
//! to renew and to lose.
//!
//! The lock itself (taking, outlasting a dead holder, keep-alives, fencing state,
//! release) is in `etcd/lock.rs`, campaigning and resigning in `etcd/leader.rs`;
//! this file is the client, the guarded writes and the `MetaStore` operations.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{Client, Compare, CompareOp, ConnectOptions, GetOptions, Txn, TxnOp};
use tokio::time::timeout;

use super::memory::check_key;
use super::{LockState, MetaStore, OwnershipLock, StoreError, Write};

mod leader;
mod lock;

use lock::Fence;

/// etcd's default `--max-txn-ops`: the most operations one level of a transaction
/// may hold.
const MAX_TXN_OPS: usize = 128;

/// A batch larger than [`MAX_TXN_OPS`] is split into nested transactions of this
/// many operations inside one outer transaction. etcd checks each level against
/// `--max-txn-ops` minus the size of the level above, so 64 nested transactions
/// of 64 operations (4096 writes) fit in one atomic transaction.
const NESTED_OPS: usize = 64;

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
            lease_ttl: Duration::from_secs(5),
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
                    LockState::Standby => {
                        return Err(StoreError::LockLost(format!(
                            "{} is held by another instance; this one is a standby",
                            f.key
                        )));
                    }
                }
                Some((f.full_key.clone(), f.lease.load(Ordering::SeqCst)))
            }
            None => None,
        };
        let mut kv = self.inner.client.kv_client();
        let txns = transactions(ops, guard.as_ref());
        let count = txns.len();
        for (applied, txn) in txns.into_iter().enumerate() {
            let resp = self.call("write", kv.txn(txn)).await?;
            if let (false, Some(f), Some((_, lease))) = (resp.succeeded(), &fence, &guard) {
                f.report_lost(*lease);
                let lost = format!(
                    "{} is no longer bound to this process's lease {lease:x}",
                    f.key
                );
                // LockLost promises callers that nothing was written; only a
                // write of several transactions can break that promise.
                if applied == 0 {
                    return Err(StoreError::LockLost(lost));
                }
                return Err(StoreError::Unavailable(format!(
                    "{lost}, after {applied} of the write's {count} transactions were applied"
                )));
            }
        }
        Ok(())
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

    async fn campaign(
        &self,
        key: &str,
        owner: &[u8],
    ) -> Result<Box<dyn OwnershipLock>, StoreError> {
        self.take_campaign(key, owner).await
    }

    async fn changed(&self, dir: &str, since: u64) -> Result<u64, StoreError> {
        self.changed_under(dir, since).await
    }

    async fn lock(&self, key: &str, owner: &[u8]) -> Result<Box<dyn OwnershipLock>, StoreError> {
        self.take_lock(key, owner).await
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
        assert_eq!(opts.lease_ttl, Duration::from_secs(5));
        assert_eq!(opts.timeout, Duration::from_secs(2));
        assert!(opts.user.is_none());
    }
}
