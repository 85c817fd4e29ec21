//! One behaviour for every `MetaStore` backend.
//!
//! Each case in `cases` is an `async fn(Backend)`; `conformance!` runs it against
//! the memory, local and etcd backends (`memory::case`, `local::case`,
//! `etcd::case`). Every etcd case gets its own etcd server. Tests that only make
//! sense for one backend (files on disk, leases) are in `local_backend` and
//! `etcd_backend`; `harness` checks the fixtures of tests/common.

#[path = "../common/mod.rs"]
mod common;

mod cases;
#[cfg(feature = "etcd")]
mod etcd_backend;
mod harness;
mod local_backend;
mod support;

use std::sync::Arc;

use topom::store::MetaStore;
use topom::store::local::LocalStore;
use topom::store::memory::MemoryStore;

const PRODUCT: &str = "demo";

/// A backend under test. [`Backend::open`] gives a new client of the same
/// storage each time, as a second process would have.
enum Backend {
    Memory(MemoryStore),
    Local(tempfile::TempDir),
    #[cfg(feature = "etcd")]
    Etcd(common::etcd::EtcdServer),
}

impl Backend {
    fn memory() -> Backend {
        Backend::Memory(MemoryStore::new())
    }

    fn local() -> Backend {
        Backend::Local(tempfile::tempdir().unwrap())
    }

    #[cfg(feature = "etcd")]
    async fn etcd() -> Backend {
        Backend::Etcd(common::etcd::EtcdServer::start().await)
    }

    async fn open(&self) -> Arc<dyn MetaStore> {
        match self {
            Backend::Memory(m) => Arc::new(m.clone()),
            Backend::Local(dir) => Arc::new(LocalStore::open(dir.path()).unwrap()),
            #[cfg(feature = "etcd")]
            Backend::Etcd(server) => Arc::new(
                topom::store::etcd::EtcdStore::connect(
                    &server.endpoints(),
                    "",
                    topom::store::etcd::EtcdOptions::default(),
                )
                .await
                .unwrap(),
            ),
        }
    }
}

macro_rules! conformance {
    ($($case:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test]
            async fn $case() {
                super::cases::$case(super::Backend::memory()).await;
            })*
        }
        mod local {
            $(#[tokio::test]
            async fn $case() {
                super::cases::$case(super::Backend::local()).await;
            })*
        }
        #[cfg(feature = "etcd")]
        mod etcd {
            $(#[tokio::test]
            async fn $case() {
                super::cases::$case(super::Backend::etcd().await).await;
            })*
        }
    };
}

conformance!(
    get_missing_is_none,
    put_get_round_trip,
    put_overwrites,
    delete_is_idempotent,
    list_returns_direct_children_sorted,
    write_batch_applies_in_order,
    write_batch_large,
    deep_paths,
    invalid_keys_are_rejected,
    lock_refused_while_held,
    release_then_relock,
    typed_store_round_trip,
    typed_store_load_reports_corrupt_record,
);
