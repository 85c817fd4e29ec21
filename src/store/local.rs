//! The default backend: records are files in a directory, laid out like the
//! Codis filesystem store.
//!
//! ```text
//! <root>/data/codis3/<product>/slots/slot-0000   the record of /codis3/<product>/slots/slot-0000
//! <root>/temp/                                   files being written, renamed into data/
//! <root>/codis3.<product>.topom.lck              the OS lock behind /codis3/<product>/topom
//! ```
//!
//! Every write is atomic and durable: the value goes to a new file in `temp/`,
//! which is fsynced and renamed over the target, and then the target's directory
//! is fsynced (as are the parents of any directory created on the way). A reader
//! sees the old record or the new one, never a part of one, and a record that
//! `put` reported written survives a power cut.
//!
//! The ownership lock is an OS advisory lock (`flock`) on a `.lck` file, held by
//! an open file for as long as the lock handle lives. The kernel drops it when the
//! process dies, so a crashed owner never blocks the next one; its stale owner
//! record is simply overwritten.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tokio::sync::watch;

use super::memory::{check_key, locked};
use super::{LockState, MetaStore, OwnershipLock, StoreError, Write};

/// Temp files older than this are leftovers of a crash; the next lock holder
/// removes them. Far longer than any single write takes.
const STALE_TEMP_AGE: Duration = Duration::from_secs(60);

/// A [`MetaStore`] in a local directory. Cheap to clone; clones share the paths.
#[derive(Debug, Clone)]
pub struct LocalStore {
    paths: Arc<Paths>,
}

#[derive(Debug)]
struct Paths {
    root: PathBuf,
    /// `<root>/data`: one file per record.
    data: PathBuf,
    /// `<root>/temp`: on the same filesystem as `data`, so a rename is atomic.
    temp: PathBuf,
}

impl LocalStore {
    /// Opens (creating if needed) the store rooted at `root`.
    /// A relative `root` is resolved against the current directory once, here,
    /// so every path in an error names the real file.
    pub fn open(root: impl AsRef<Path>) -> Result<LocalStore, StoreError> {
        let root = std::path::absolute(root.as_ref()).map_err(|e| io_error(root.as_ref(), e))?;
        let paths = Paths {
            data: root.join("data"),
            temp: root.join("temp"),
            root,
        };
        let mut dirty = BTreeSet::new();
        create_dirs(&paths.data, &mut dirty)?;
        create_dirs(&paths.temp, &mut dirty)?;
        sync_dirs(&dirty)?;
        Ok(LocalStore {
            paths: Arc::new(paths),
        })
    }

    /// The root directory.
    pub fn root(&self) -> &Path {
        &self.paths.root
    }

    /// Runs blocking file I/O off the async workers.
    async fn blocking<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Paths) -> Result<T, StoreError> + Send + 'static,
    {
        let paths = self.paths.clone();
        tokio::task::spawn_blocking(move || f(&paths))
            .await
            .map_err(|e| StoreError::Io {
                path: self.paths.root.display().to_string(),
                source: io::Error::other(format!("store task failed: {e}")),
            })?
    }
}

#[async_trait]
impl MetaStore for LocalStore {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let file = self.paths.record(key)?;
        self.blocking(move |_| read_record(&file)).await
    }

    async fn put(&self, key: &str, value: &[u8]) -> Result<(), StoreError> {
        self.write_batch(vec![(key.to_owned(), Some(value.to_vec()))])
            .await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.write_batch(vec![(key.to_owned(), None)]).await
    }

    async fn write_batch(&self, writes: Vec<Write>) -> Result<(), StoreError> {
        // Resolve every key first so a bad key leaves the store untouched.
        let writes = writes
            .into_iter()
            .map(|(key, value)| Ok((self.paths.record(&key)?, value)))
            .collect::<Result<Vec<_>, StoreError>>()?;
        self.blocking(move |paths| paths.apply(writes)).await
    }

    async fn list(&self, dir: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let path = self.paths.record(dir)?;
        let dir = dir.to_owned();
        self.blocking(move |_| list_files(&dir, &path)).await
    }

    fn locate(&self, key: &str) -> String {
        match self.paths.record(key) {
            Ok(file) => file.display().to_string(),
            Err(_) => key.to_owned(),
        }
    }

    async fn lock(&self, key: &str, owner: &[u8]) -> Result<Box<dyn OwnershipLock>, StoreError> {
        let record = self.paths.record(key)?;
        let lock_path = self.paths.lock_file(key);
        let key_owned = key.to_owned();
        let owner = owner.to_vec();
        let file = self
            .blocking(move |paths| {
                let file = OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&lock_path)
                    .map_err(|e| io_error(&lock_path, e))?;
                match file.try_lock() {
                    Ok(()) => {}
                    Err(TryLockError::WouldBlock) => {
                        // The holder may not have written its record yet; say so
                        // rather than fail on the missing file.
                        let current = read_record(&record).ok().flatten();
                        return Err(locked(&key_owned, current.as_deref()));
                    }
                    Err(TryLockError::Error(e)) => return Err(io_error(&lock_path, e)),
                }
                // Only the lock holder writes, so no other writer can own these.
                paths.sweep_temp();
                // A failure here drops `file`, which releases the OS lock again.
                paths.apply(vec![(record, Some(owner))])?;
                Ok(file)
            })
            .await?;
        let (state, _) = watch::channel(LockState::Held);
        Ok(Box::new(LocalLock {
            store: self.clone(),
            key: key.to_owned(),
            file: Some(file),
            state,
        }))
    }

    fn describe(&self) -> String {
        format!("local:{}", self.paths.root.display())
    }
}

impl Paths {
    /// The file of record `key`, after checking the key cannot escape `data/`.
    fn record(&self, key: &str) -> Result<PathBuf, StoreError> {
        check_key(key)?;
        Ok(self.data.join(&key[1..]))
    }

    /// `<root>/<key with '/' replaced by '.'>.lck`, e.g. `codis3.demo.topom.lck`.
    fn lock_file(&self, key: &str) -> PathBuf {
        self.root.join(format!(
            "{}.lck",
            key.trim_start_matches('/').replace('/', ".")
        ))
    }

    /// Applies writes in order, each atomic, and makes them all durable before
    /// returning. Directory fsyncs are done once per directory at the end: a batch
    /// of 1024 slots then costs 1024 file fsyncs and one directory fsync.
    fn apply(&self, writes: Vec<(PathBuf, Option<Vec<u8>>)>) -> Result<(), StoreError> {
        let mut dirty = BTreeSet::new();
        // Stage every new record first (written and fsynced in parallel: one
        // fsync at a time would make a 100-slot step cost 100 disk flushes in a
        // row), then rename them in order: each rename still exposes only a
        // complete, durable file.
        let staged = self.stage(&writes)?;
        let mut result = Ok(());
        let mut staged = staged.into_iter();
        for (file, value) in &writes {
            result = match value {
                Some(_) => {
                    let tmp = staged.next().unwrap_or_default();
                    self.install(&tmp, file, &mut dirty)
                }
                None => remove(file, &mut dirty),
            };
            if result.is_err() {
                break;
            }
        }
        for tmp in staged {
            let _ = fs::remove_file(&tmp);
        }
        // The writes before a failure are already visible, so make them durable too.
        let synced = sync_dirs(&dirty);
        result.and(synced)
    }

    /// Writes and fsyncs a temp file for every put of `writes`, in order.
    fn stage(&self, writes: &[(PathBuf, Option<Vec<u8>>)]) -> Result<Vec<PathBuf>, StoreError> {
        let puts: Vec<(PathBuf, &[u8])> = writes
            .iter()
            .filter_map(|(_, v)| v.as_deref())
            .map(|bytes| (self.temp.join(temp_name()), bytes))
            .collect();
        let write_one = |(tmp, bytes): &(PathBuf, &[u8])| -> Result<(), StoreError> {
            let written = (|| {
                let mut f = OpenOptions::new().write(true).create_new(true).open(tmp)?;
                f.write_all(bytes)?;
                f.sync_all()
            })();
            written.map_err(|e| io_error(tmp, e))
        };
        let threads = puts.len().clamp(1, 8);
        let chunk = puts.len().div_ceil(threads).max(1);
        let results: Vec<Result<(), StoreError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = puts
                .chunks(chunk)
                .map(|c| scope.spawn(move || c.iter().try_for_each(write_one)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(io_error(
                            &self.temp,
                            std::io::Error::other("writer thread panicked"),
                        ))
                    })
                })
                .collect()
        });
        let tmps: Vec<PathBuf> = puts.into_iter().map(|(t, _)| t).collect();
        if let Some(e) = results.into_iter().find_map(Result::err) {
            for t in &tmps {
                let _ = fs::remove_file(t);
            }
            return Err(e);
        }
        Ok(tmps)
    }

    /// Renames a staged temp file over `file`.
    fn install(
        &self,
        tmp: &Path,
        file: &Path,
        dirty: &mut BTreeSet<PathBuf>,
    ) -> Result<(), StoreError> {
        let parent = parent_of(file)?;
        create_dirs(parent, dirty)?;
        if let Err(e) = fs::rename(tmp, file) {
            let _ = fs::remove_file(tmp);
            return Err(io_error(file, e));
        }
        dirty.insert(parent.to_path_buf());
        Ok(())
    }

    /// Removes temp files left by a process that crashed mid-write. Best effort:
    /// a leftover only wastes space.
    fn sweep_temp(&self) {
        let Ok(entries) = fs::read_dir(&self.temp) else {
            return;
        };
        let now = SystemTime::now();
        for entry in entries.flatten() {
            let old = entry
                .metadata()
                .and_then(|m| m.modified())
                .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > STALE_TEMP_AGE);
            if old && let Err(e) = fs::remove_file(entry.path()) {
                tracing::warn!(path = %entry.path().display(), error = %e, "cannot remove stale temp file");
            }
        }
    }
}

/// A held lock of a [`LocalStore`]: the open `.lck` file carries the OS lock.
struct LocalLock {
    store: LocalStore,
    key: String,
    /// `None` once released.
    file: Option<File>,
    /// Never changes: a local lock cannot be lost while the process lives.
    state: watch::Sender<LockState>,
}

#[async_trait]
impl OwnershipLock for LocalLock {
    fn state(&self) -> watch::Receiver<LockState> {
        self.state.subscribe()
    }

    async fn release(mut self: Box<Self>) -> Result<(), StoreError> {
        let record = self.store.paths.record(&self.key)?;
        let file = self.file.take();
        // The record goes while we still hold the lock, so no new owner's record
        // can be deleted by mistake; then the lock.
        self.store
            .blocking(move |paths| {
                let removed = paths.apply(vec![(record, None)]);
                if let Some(file) = file {
                    // Closing the file would release it too; unlocking first makes
                    // the order explicit.
                    let _ = file.unlock();
                }
                removed
            })
            .await
    }
}

/// The name of a new temp file: unique across processes (pid) and within one
/// (a counter), and opened with `create_new` so a clash fails rather than shares.
fn temp_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{}.{n}.tmp", std::process::id())
}

/// Reads a record; a missing file, or a directory, is no record.
fn read_record(file: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    match fs::read(file) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if is_absent(&e) => Ok(None),
        Err(e) => Err(io_error(file, e)),
    }
}

/// The direct children of `path` that are files, as `(dir/name, bytes)` sorted.
fn list_files(dir: &str, path: &Path) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let entries = match fs::read_dir(path) {
        Ok(entries) => entries,
        Err(e) if is_absent(&e) => return Ok(Vec::new()),
        Err(e) => return Err(io_error(path, e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| io_error(path, e))?;
        let file_type = entry.file_type().map_err(|e| io_error(&entry.path(), e))?;
        if !file_type.is_file() {
            continue;
        }
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            tracing::warn!(path = %entry.path().display(), "skipping a file whose name is not UTF-8");
            continue;
        };
        // The file may be deleted between listing and reading: then it is gone.
        if let Some(bytes) = read_record(&entry.path())? {
            out.push((format!("{dir}/{name}"), bytes));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out)
}

/// Deletes a record, or a whole directory like the Codis filesystem store; a
/// missing one is fine.
fn remove(file: &Path, dirty: &mut BTreeSet<PathBuf>) -> Result<(), StoreError> {
    let removed = match fs::symlink_metadata(file) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(file),
        Ok(_) => fs::remove_file(file),
        Err(e) => Err(e),
    };
    match removed {
        Ok(()) => {
            dirty.insert(parent_of(file)?.to_path_buf());
            Ok(())
        }
        Err(e) if is_absent(&e) => Ok(()),
        Err(e) => Err(io_error(file, e)),
    }
}

/// Creates `dir` and its missing ancestors, recording the parent of each new
/// directory in `dirty` so its entry is fsynced too.
fn create_dirs(dir: &Path, dirty: &mut BTreeSet<PathBuf>) -> Result<(), StoreError> {
    if dir.is_dir() {
        return Ok(());
    }
    // A relative path's last ancestor is "", which is no directory to create.
    let missing: Vec<&Path> = dir
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && !d.is_dir())
        .collect();
    for d in missing.into_iter().rev() {
        match fs::create_dir(d) {
            Ok(()) => {}
            // Another writer created it meanwhile.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && d.is_dir() => continue,
            Err(e) => return Err(io_error(d, e)),
        }
        if let Some(parent) = d.parent().filter(|p| !p.as_os_str().is_empty()) {
            dirty.insert(parent.to_path_buf());
        }
    }
    Ok(())
}

/// Fsyncs directories so renames, removals and new entries in them are durable.
fn sync_dirs(dirs: &BTreeSet<PathBuf>) -> Result<(), StoreError> {
    for dir in dirs {
        match File::open(dir).and_then(|d| d.sync_all()) {
            Ok(()) => {}
            // Removed meanwhile (a recursive delete of an ancestor): nothing to sync.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error(dir, e)),
        }
    }
    Ok(())
}

fn parent_of(file: &Path) -> Result<&Path, StoreError> {
    file.parent().ok_or_else(|| {
        io_error(
            file,
            io::Error::new(io::ErrorKind::InvalidInput, "record path has no parent"),
        )
    })
}

/// A missing path, or one through or at something of the wrong kind.
fn is_absent(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory | io::ErrorKind::IsADirectory
    )
}

fn io_error(path: &Path, source: io::Error) -> StoreError {
    StoreError::Io {
        path: path.display().to_string(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_file_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        assert_eq!(
            store.paths.lock_file("/codis3/demo/topom"),
            dir.path().join("codis3.demo.topom.lck")
        );
        assert_eq!(
            store.paths.record("/codis3/demo/slots/slot-0001").unwrap(),
            dir.path().join("data/codis3/demo/slots/slot-0001")
        );
        assert!(store.paths.record("/codis3/../../etc/passwd").is_err());
    }

    #[test]
    fn sweep_removes_only_old_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let old = store.paths.temp.join("1.1.tmp");
        let fresh = store.paths.temp.join("1.2.tmp");
        fs::write(&old, b"x").unwrap();
        fs::write(&fresh, b"y").unwrap();
        File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(SystemTime::now() - 2 * STALE_TEMP_AGE)
            .unwrap();
        store.paths.sweep_temp();
        assert!(!old.exists());
        assert!(fresh.exists());
    }
}
