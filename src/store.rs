//! Metadata storage in two layers.
//!
//! * [`MetaStore`]: a raw key → bytes store with an ownership lock. Backends:
//!   [`local`] (the default: a directory), [`etcd`] (v3 API, behind the `etcd`
//!   feature) and [`memory`] (unit tests only). Keys are absolute paths such as
//!   `/codis3/demo/slots/slot-0000`.
//! * [`Store`]: the typed facade that owns the key layout ([`keys`]) and the JSON
//!   encoding (Codis field names), so nothing else in the crate builds a path.
//!
//! Every backend passes the same conformance suite (`tests/store_conformance/`).

#[cfg(feature = "etcd")]
pub mod etcd;
pub mod keys;
pub mod local;
pub mod memory;
mod typed;

use std::fmt;

use async_trait::async_trait;
use tokio::sync::watch;

pub(crate) use typed::encode;
pub use typed::{ProductData, Store, StoreBatch};

/// Errors of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be reached or answered with an error.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A record exists but cannot be decoded.
    #[error("corrupt record at {path}: {reason}")]
    Corrupt {
        /// The record's key.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Another process holds the product's ownership lock.
    #[error("product {product:?} is owned by another topom: {owner}")]
    Locked {
        /// The product.
        product: String,
        /// A description of the current owner (address, pid, start time), or why
        /// it could not be read.
        owner: String,
    },
    /// This process no longer holds the ownership lock (etcd lease lost), so it must
    /// not write. Nothing of the refused write was applied, so a client may send it
    /// again to the next leader.
    #[error("ownership lock lost: {0}")]
    LockLost(String),
    /// A local I/O error.
    #[error("store I/O error on {path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// One write of a batch: `Some(bytes)` puts, `None` deletes.
pub type Write = (String, Option<Vec<u8>>);

/// A raw key → bytes store. Keys are `/`-separated absolute paths; values are
/// opaque. Implementations are cheap to share (`Arc<dyn MetaStore>`).
#[async_trait]
pub trait MetaStore: Send + Sync + fmt::Debug {
    /// The value at `key`, or `None` when absent.
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Creates or replaces `key`. On the local backend the write is atomic and
    /// durable (temp file, fsync, rename, fsync dir).
    async fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError>;
    /// Deletes `key`; a missing key is not an error.
    async fn delete(&self, key: &str) -> Result<(), StoreError>;
    /// Applies several writes. etcd applies them in one transaction; the local
    /// backend applies them in order, each atomic.
    async fn write_batch(&self, writes: Vec<Write>) -> Result<(), StoreError>;
    /// The direct children of directory `dir` (no trailing `/`), as
    /// `(key, value)` pairs sorted by key. A missing directory is empty.
    async fn list(&self, dir: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// Takes the ownership lock stored at `key` with `owner` as its content.
    ///
    /// Fails with [`StoreError::Locked`] while another live process holds it. A
    /// holder that died does not block: on the local backend the OS lock dies with
    /// the process; on etcd the key is bound to a lease that expires after its TTL.
    async fn lock(&self, key: &str, owner: &[u8]) -> Result<Box<dyn OwnershipLock>, StoreError>;
    /// Like [`MetaStore::lock`], for a store that several instances share: a lock
    /// held by a live process is not an error but a standby lock
    /// ([`LockState::Standby`]) that takes over when the holder goes. Backends
    /// for a single instance refuse as `lock` does.
    async fn campaign(
        &self,
        key: &str,
        owner: &[u8],
    ) -> Result<Box<dyn OwnershipLock>, StoreError> {
        self.lock(key, owner).await
    }
    /// Returns once a record under `dir` changed after store revision `since`,
    /// with the revision that changed it (so a standby's cache can follow the
    /// leader's writes). Backends no other process writes never return.
    async fn changed(&self, dir: &str, since: u64) -> Result<u64, StoreError> {
        let _ = (dir, since);
        std::future::pending().await
    }
    /// A short description for logs, e.g. `local:/var/lib/topom`.
    fn describe(&self) -> String;
    /// Where the record at `key` lives, for messages an operator acts on: the
    /// file of the local store, the key (with prefix) on etcd.
    fn locate(&self, key: &str) -> String {
        key.to_owned()
    }
}

/// Whether this process holds its ownership lock right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockState {
    /// Held: writes are allowed.
    Held,
    /// Held, but the last keep-alive or store call failed, so the lease may run
    /// out unnoticed (etcd frozen or cut off). Writes are refused and health is
    /// NOT_SERVING until a keep-alive succeeds again (back to `Held`) or the lease
    /// is given up (`Lost`).
    Renewing,
    /// Lost (e.g. the etcd lease expired during a partition). The holder keeps
    /// trying to take it back and switches to `Held` when it has.
    Lost,
    /// Another instance holds it; this one serves reads and takes the lock when
    /// it becomes free (etcd, several instances of one product).
    Standby,
}

/// A held ownership lock. Dropping it without [`OwnershipLock::release`] leaves
/// the release to the OS (local) or the lease TTL (etcd).
#[async_trait]
pub trait OwnershipLock: Send + Sync {
    /// Follows the lock's state.
    fn state(&self) -> watch::Receiver<LockState>;
    /// The handle of a lock that campaigns (hands over, names the holder);
    /// `None` for a single-instance lock.
    fn leadership(&self) -> Option<std::sync::Arc<dyn Leadership>> {
        None
    }
    /// Releases the lock now.
    async fn release(self: Box<Self>) -> Result<(), StoreError>;
}

/// What a lock shared by several instances offers besides its state.
#[async_trait]
pub trait Leadership: Send + Sync {
    /// The owner record of the current holder (this instance's own while it
    /// holds the lock); `None` while nobody holds it or it is not known yet.
    fn holder(&self) -> watch::Receiver<Option<Vec<u8>>>;
    /// The owner records of every running instance (leader and standbys).
    async fn instances(&self) -> Result<Vec<Vec<u8>>, StoreError>;
    /// Gives the lock up now (if held) and does not take it again for
    /// `hold_off`, so that another instance can.
    async fn resign(&self, hold_off: std::time::Duration) -> Result<(), StoreError>;
}
