//! Several instances of one product: a standby lock that takes over when the
//! holder goes, resigning (handing over on purpose), and following the
//! product's records so a standby's reads stay current.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use etcd_client::{Compare, CompareOp, GetOptions, PutOptions, Txn, TxnOp, WatchOptions};
use tokio::sync::watch;
use tokio::time::{Instant, timeout};

use super::EtcdStore;
use super::lock::{EtcdLock, Fence};
use crate::store::memory::check_key;
use crate::store::{Leadership, LockState, OwnershipLock, StoreError};

impl EtcdStore {
    /// Takes the lock `key` if it is free; otherwise returns it as a standby
    /// lock whose task takes it once the holder is gone.
    pub(super) async fn take_campaign(
        &self,
        key: &str,
        owner: &[u8],
    ) -> Result<Box<dyn OwnershipLock>, StoreError> {
        check_key(key)?;
        let full_key = self.full(key);
        let id = self.inner.next_fence_id.fetch_add(1, Ordering::Relaxed);
        let (fence, term) = match self.take(key, &full_key, owner).await? {
            Ok((lease, ttl, valid_until)) => {
                let fence = Fence::new(id, key, full_key, lease, LockState::Held);
                fence.set_holder(Some(owner));
                (fence, Some((ttl, valid_until)))
            }
            Err(held) => {
                let fence = Fence::new(id, key, full_key, 0, LockState::Standby);
                if !held.record.is_empty() {
                    fence.set_holder(Some(&held.record));
                }
                (fence, None)
            }
        };
        let mut lock = self.start_keeping(Arc::new(fence), owner, term);
        lock.presence = Some(self.announce(format!("{}-instances", self.full(key)), owner));
        Ok(Box::new(lock))
    }

    /// Keeps this instance's record under `dir` (bound to a lease of its own,
    /// so a killed instance drops out of the list within the TTL).
    fn announce(&self, dir: String, owner: &[u8]) -> Presence {
        let lease = Arc::new(AtomicI64::new(0));
        let task = tokio::spawn(self.clone().stay_present(
            dir.clone(),
            owner.to_vec(),
            lease.clone(),
        ));
        Presence { dir, lease, task }
    }

    async fn stay_present(self, dir: String, owner: Vec<u8>, current: Arc<AtomicI64>) {
        let mut failing = false;
        loop {
            let error = self.present_once(&dir, &owner, &current).await;
            if !failing {
                tracing::warn!(%error, "cannot keep this instance's record in etcd; retrying");
                failing = true;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// Puts the record under a fresh lease and renews it until that fails.
    async fn present_once(&self, dir: &str, owner: &[u8], current: &AtomicI64) -> String {
        let ttl = self.inner.opts.lease_ttl.max(Duration::from_secs(1));
        let mut leases = self.inner.client.lease_client();
        let grant = match self
            .call(
                "grant lease",
                leases.grant(ttl.as_secs().try_into().unwrap_or(5), None),
            )
            .await
        {
            Ok(g) => g,
            Err(e) => return e.to_string(),
        };
        let lease = grant.id();
        current.store(lease, Ordering::SeqCst);
        let mut kv = self.inner.client.kv_client();
        let put = kv.put(
            format!("{dir}/{lease:x}"),
            owner.to_vec(),
            Some(PutOptions::new().with_lease(lease)),
        );
        if let Err(e) = self.call("announce instance", put).await {
            self.revoke_in_background(lease);
            return e.to_string();
        }
        let mut channel = None;
        loop {
            tokio::time::sleep(ttl / 3).await;
            match timeout(
                self.inner.opts.timeout,
                self.keep_alive(&mut channel, lease, ttl),
            )
            .await
            {
                Ok(Ok(Some(_))) => {}
                Ok(Ok(None)) => return "the instance lease expired".into(),
                Ok(Err(e)) => return e.to_string(),
                Err(_) => return "keep-alive of the instance lease timed out".into(),
            }
        }
    }
}

/// This instance's record among the product's instances.
pub(super) struct Presence {
    /// The etcd directory of the instance records.
    pub(super) dir: String,
    lease: Arc<AtomicI64>,
    pub(super) task: tokio::task::JoinHandle<()>,
}

impl Presence {
    /// Stops renewing and removes the record now.
    pub(super) async fn end(self, store: &EtcdStore) {
        self.task.abort();
        let _ = self.task.await;
        let lease = self.lease.load(Ordering::SeqCst);
        if lease != 0
            && let Err(e) = store.revoke(lease).await
        {
            tracing::debug!(error = %e, "cannot revoke the instance lease; it expires by itself");
        }
    }
}

impl EtcdStore {
    /// The records of every running instance under `dir`.
    async fn instance_records(&self, dir: &str) -> Result<Vec<Vec<u8>>, StoreError> {
        let mut kv = self.inner.client.kv_client();
        let resp = self
            .call(
                "list instances",
                kv.get(format!("{dir}/"), Some(GetOptions::new().with_prefix())),
            )
            .await?;
        Ok(resp.kvs().iter().map(|kv| kv.value().to_vec()).collect())
    }

    /// Makes `fence` guard this store's writes and starts its keep-alive task.
    pub(super) fn start_keeping(
        &self,
        fence: Arc<Fence>,
        owner: &[u8],
        term: Option<(Duration, Instant)>,
    ) -> EtcdLock {
        *self.fence_slot() = Some(fence.clone());
        let task = tokio::spawn(self.clone().keep(fence.clone(), owner.to_vec(), term));
        EtcdLock {
            store: self.clone(),
            fence,
            task,
            presence: None,
        }
    }

    /// Resigns: stops claiming the lock first (writes are refused from here
    /// on), then deletes the key if it is still bound to `lease`.
    pub(super) async fn give_up(&self, fence: &Fence, lease: i64) {
        // Nobody holds it from here: a reader of the state must not find this
        // instance named as the leader.
        fence.set_holder(None);
        fence.state.send_replace(LockState::Standby);
        if let Err(e) = self.drop_key(fence, lease).await {
            // The lease then runs out by itself within its TTL.
            tracing::warn!(key = %fence.key, error = %e, "cannot delete the lock key on resign");
        }
    }

    /// Deletes the lock key if it is still bound to `lease`, and revokes the lease.
    pub(super) async fn drop_key(&self, fence: &Fence, lease: i64) -> Result<(), StoreError> {
        let full_key = fence.full_key.as_str();
        // Only if still ours: another owner may hold it now.
        let txn = Txn::new()
            .when([Compare::lease(full_key, CompareOp::Equal, lease)])
            .and_then([TxnOp::delete(full_key, None)]);
        let mut kv = self.inner.client.kv_client();
        let deleted = self.call("release lock", kv.txn(txn)).await.map(|_| ());
        let revoked = self.revoke(lease).await;
        deleted.and(revoked)
    }

    /// The value at `full_key` (if any) and the store revision it was read at.
    pub(super) async fn read_key(
        &self,
        full_key: &str,
    ) -> Result<(Option<Vec<u8>>, i64), StoreError> {
        let mut kv = self.inner.client.kv_client();
        let resp = self.call("read lock", kv.get(full_key, None)).await?;
        let revision = resp.header().map_or(0, |h| h.revision());
        Ok((resp.kvs().first().map(|kv| kv.value().to_vec()), revision))
    }

    /// Returns when `full_key` changes after store revision `after` (0: from
    /// now), or after `max`, or when the watch fails (the caller re-reads).
    pub(super) async fn key_changed(&self, full_key: &str, after: i64, max: Duration) {
        let options = (after > 0).then(|| WatchOptions::new().with_start_revision(after + 1));
        let _ = timeout(max, self.next_event(full_key.to_owned(), options)).await;
    }

    /// The store revision of the first event the watch sees.
    async fn next_event(
        &self,
        key: String,
        options: Option<WatchOptions>,
    ) -> Result<i64, etcd_client::Error> {
        let mut watches = self.inner.client.watch_client();
        let mut stream = watches.watch(key, options).await?;
        loop {
            let Some(resp) = stream.message().await? else {
                return Err(etcd_client::Error::WatchError("watch closed".into()));
            };
            // Compacted past `after`: something changed; the caller re-reads.
            if resp.compact_revision() > 0 || resp.canceled() {
                return Ok(resp.compact_revision());
            }
            if !resp.events().is_empty() {
                return Ok(resp.header().map_or(0, |h| h.revision()));
            }
        }
    }

    /// See [`crate::store::MetaStore::changed`]: the revision of the first
    /// change under `dir` after `since`; with `since` 0, the current revision.
    pub(super) async fn changed_under(&self, dir: &str, since: u64) -> Result<u64, StoreError> {
        check_key(dir)?;
        let prefix = format!("{}/", self.full(dir));
        if since == 0 {
            let mut kv = self.inner.client.kv_client();
            let options = GetOptions::new()
                .with_prefix()
                .with_keys_only()
                .with_limit(1);
            let resp = self
                .call("read revision", kv.get(prefix, Some(options)))
                .await?;
            return Ok(resp.header().map_or(0, |h| h.revision()).max(1) as u64);
        }
        let options = WatchOptions::new()
            .with_prefix()
            .with_start_revision(i64::try_from(since).unwrap_or(i64::MAX) + 1);
        // No timeout: a quiet product may not change for hours. A broken
        // connection ends the watch with an error.
        let revision = self.next_event(prefix, Some(options)).await.map_err(|e| {
            StoreError::Unavailable(format!("etcd {}: watch: {e}", self.inner.endpoints))
        })?;
        Ok(if revision > 0 {
            revision as u64
        } else {
            since + 1
        })
    }
}

/// The [`Leadership`] handle of an etcd lock.
pub(super) struct EtcdLeadership {
    pub(super) store: EtcdStore,
    pub(super) fence: Arc<Fence>,
    /// The etcd directory of the instance records.
    pub(super) instances: String,
}

#[async_trait]
impl Leadership for EtcdLeadership {
    fn holder(&self) -> watch::Receiver<Option<Vec<u8>>> {
        self.fence.holder.subscribe()
    }

    async fn instances(&self) -> Result<Vec<Vec<u8>>, StoreError> {
        self.store.instance_records(&self.instances).await
    }

    async fn resign(&self, hold_off: Duration) -> Result<(), StoreError> {
        *self
            .fence
            .hold_off_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now() + hold_off);
        self.fence.resign.notify_one();
        Ok(())
    }
}
