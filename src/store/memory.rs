//! An in-memory [`MetaStore`] for unit tests: a sorted map behind a mutex.
//!
//! It also holds the rules every backend shares ([`check_key`], [`locked`]), so
//! that all of them reject the same keys and describe a lock owner the same way.

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use tokio::sync::watch;

use super::{LockState, MetaStore, OwnershipLock, StoreError, Write};
use crate::model::TopomRecord;

/// A [`MetaStore`] kept in process memory. Clones share the same data, so two
/// clones behave like two processes using one store (handy for lock tests).
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    shared: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    data: BTreeMap<String, Vec<u8>>,
    /// Keys whose ownership lock has a live handle.
    locks: BTreeSet<String>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> MemoryStore {
        MemoryStore::default()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the maps consistent, so a panic elsewhere
        // while holding the guard cannot have left half an update behind.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl MetaStore for MemoryStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        check_key(key)?;
        Ok(self.state().data.get(key).cloned())
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        check_key(key)?;
        self.state().data.insert(key.to_owned(), value.to_vec());
        Ok(())
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        check_key(key)?;
        self.state().data.remove(key);
        Ok(())
    }

    async fn write_batch(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        // Validate everything first so a bad key leaves the store untouched.
        for (key, _) in &writes {
            check_key(key)?;
        }
        let mut state = self.state();
        for (key, value) in writes {
            match value {
                Some(v) => state.data.insert(key, v),
                None => state.data.remove(&key),
            };
        }
        Ok(())
    }

    async fn list(&self, dir: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        check_key(dir)?;
        let prefix = format!("{dir}/");
        let state = self.state();
        Ok(state
            .data
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(k, _)| !k[prefix.len()..].contains('/'))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    async fn lock(&self, key: &str, owner: &[u8]) -> Result<Box<dyn OwnershipLock>, StoreError> {
        check_key(key)?;
        let mut state = self.state();
        if state.locks.contains(key) {
            return Err(locked(key, state.data.get(key).map(Vec::as_slice)));
        }
        state.locks.insert(key.to_owned());
        state.data.insert(key.to_owned(), owner.to_vec());
        drop(state);
        let (state_tx, _) = watch::channel(LockState::Held);
        Ok(Box::new(MemoryLock {
            store: self.clone(),
            key: key.to_owned(),
            state: state_tx,
        }))
    }

    fn describe(&self) -> String {
        "memory".to_owned()
    }
}

/// A held lock of a [`MemoryStore`]; dropping it frees the lock but leaves the
/// owner record behind, like a process that died.
struct MemoryLock {
    store: MemoryStore,
    key: String,
    /// Never changes: nothing can take a memory lock away.
    state: watch::Sender<LockState>,
}

#[async_trait]
impl OwnershipLock for MemoryLock {
    fn state(&self) -> watch::Receiver<LockState> {
        self.state.subscribe()
    }

    async fn release(self: Box<Self>) -> Result<(), StoreError> {
        // The record goes first, then Drop frees the lock.
        self.store.state().data.remove(&self.key);
        Ok(())
    }
}

impl Drop for MemoryLock {
    fn drop(&mut self) {
        self.store.state().locks.remove(&self.key);
    }
}

/// Checks that `key` is an absolute `/`-separated path of non-empty segments,
/// none of them `.` or `..`, and without a NUL byte.
///
/// Every backend applies it: on the local backend a key is a file path, so a
/// `..` segment would escape the data directory; the others reject the same keys
/// so that a key accepted in tests is accepted everywhere.
pub(super) fn check_key(key: &str) -> Result<(), StoreError> {
    let problem = if !key.starts_with('/') {
        Some("it must start with '/'")
    } else if key.len() == 1 || key.ends_with('/') {
        Some("it must not end with '/'")
    } else if key.contains('\0') {
        Some("it contains a NUL byte")
    } else if key[1..]
        .split('/')
        .any(|seg| seg.is_empty() || seg == "." || seg == "..")
    {
        Some("it has an empty, '.' or '..' segment")
    } else {
        None
    };
    match problem {
        None => Ok(()),
        Some(why) => Err(StoreError::Io {
            path: key.to_owned(),
            source: io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid store key: {why}"),
            ),
        }),
    }
}

/// The error for a lock at `key` held by someone else, whose record (if any)
/// reads `record`.
///
/// The product is the second path segment of a Codis key
/// (`/codis3/<product>/topom`), else the whole key. The owner is described from
/// its [`TopomRecord`] (address, pid, start time), or shown raw when the record is
/// not one.
pub(super) fn locked(key: &str, record: Option<&[u8]>) -> StoreError {
    let product = key
        .strip_prefix("/codis3/")
        .and_then(|rest| rest.split('/').next())
        .filter(|p| !p.is_empty())
        .unwrap_or(key)
        .to_owned();
    let owner = match record {
        None => "unknown (the holder has not written its owner record yet)".to_owned(),
        Some(bytes) => match serde_json::from_slice::<TopomRecord>(bytes) {
            Ok(rec) => rec.describe(),
            Err(_) => {
                let text = String::from_utf8_lossy(bytes);
                let text = text.trim();
                // A huge or binary record must not flood the message.
                match text.char_indices().nth(200) {
                    Some((cut, _)) => format!("{}...", &text[..cut]),
                    None => text.to_owned(),
                }
            }
        },
    };
    StoreError::Locked { product, owner }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_rules() {
        for good in ["/a", "/codis3/demo/slots/slot-0001", "/a.b/c-d_e"] {
            assert!(check_key(good).is_ok(), "{good}");
        }
        for bad in [
            "", "/", "a/b", "/a/", "//a", "/a//b", "/a/../b", "/..", "/a/.", "/a\0b",
        ] {
            let err = check_key(bad).unwrap_err();
            assert!(
                matches!(&err, StoreError::Io { source, .. } if source.kind() == io::ErrorKind::InvalidInput),
                "{bad:?}: {err}"
            );
        }
    }

    #[test]
    fn locked_describes_owner() {
        let rec = TopomRecord {
            admin_addr: "10.0.0.1:18080".into(),
            pid: 4242,
            start_time: "2026-01-01T00:00:00Z".into(),
            ..TopomRecord::default()
        };
        let json = serde_json::to_vec(&rec).unwrap();
        match locked("/codis3/demo/topom", Some(&json)) {
            StoreError::Locked { product, owner } => {
                assert_eq!(product, "demo");
                assert!(
                    owner.contains("10.0.0.1:18080") && owner.contains("4242"),
                    "{owner}"
                );
            }
            other => panic!("{other:?}"),
        }
        match locked("/other/lock", Some(b"  not json \n")) {
            StoreError::Locked { product, owner } => {
                assert_eq!(product, "/other/lock");
                assert_eq!(owner, "not json");
            }
            other => panic!("{other:?}"),
        }
        let long = vec![b'x'; 1000];
        match locked("/codis3/demo/topom", Some(&long)) {
            StoreError::Locked { owner, .. } => assert_eq!(owner.len(), 203),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn clones_share_data_and_locks() {
        let a = MemoryStore::new();
        let b = a.clone();
        a.put("/x/y", b"1").await.unwrap();
        assert_eq!(b.get("/x/y").await.unwrap().as_deref(), Some(&b"1"[..]));

        let held = a.lock("/x/lock", b"me").await.unwrap();
        assert!(matches!(
            b.lock("/x/lock", b"you").await,
            Err(StoreError::Locked { .. })
        ));
        drop(held);
        // A dropped handle frees the lock but leaves the record, like a crash.
        assert_eq!(b.get("/x/lock").await.unwrap().as_deref(), Some(&b"me"[..]));
        let again = b.lock("/x/lock", b"you").await.unwrap();
        assert_eq!(
            b.get("/x/lock").await.unwrap().as_deref(),
            Some(&b"you"[..])
        );
        again.release().await.unwrap();
        assert_eq!(a.get("/x/lock").await.unwrap(), None);
    }
}
