//! The composition root: config → store → ownership lock → coordinator → gRPC,
//! and the leader terms that run the background tasks (`server/terms.rs`).
//!
//! Shutdown order (on SIGINT, SIGTERM or the Shutdown RPC): stop accepting, let
//! in-flight RPCs finish (bounded by `shutdown_grace`), end streams, then release
//! the ownership lock last, so no other topom can take over while this one might
//! still write.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::codis_proxy::HttpCodisProxies;
use crate::config::{Backend, Config};
use crate::coordinator::{Backends, Coordinator, Settings};
use crate::grpc::{self, Edge, LogFilterFn};
use crate::metrics::RpcMetrics;
use crate::model::ForwardMethod;
use crate::model::TopomRecord;
use crate::redis::{CodisMigrator, CodisMode, Connector, PlainMigrator, PooledHa, PooledProbe};
use crate::store::{LockState, MetaStore, Store, local::LocalStore};

mod terms;

use terms::Terms;

/// Per-target deadline of the periodic stats rounds (reference §5.2).
const STATS_TIMEOUT: Duration = Duration::from_secs(1);

/// What is bound once the service accepts connections.
#[derive(Debug, Clone, Copy)]
pub struct Ready {
    /// The gRPC address.
    pub addr: SocketAddr,
    /// The `/metrics` address, when `metrics_addr` is set.
    pub metrics_addr: Option<SocketAddr>,
}

/// Hooks the binary provides.
pub struct Hooks {
    /// Called once the service accepts connections, with the bound addresses.
    pub on_ready: Box<dyn FnOnce(Ready) + Send>,
    /// Applies a log filter at run time (SetLogLevel).
    pub set_log_filter: LogFilterFn,
}

/// Runs the service until `shutdown` is cancelled (or a signal arrives).
pub async fn run(config: Config, hooks: Hooks, shutdown: CancellationToken) -> anyhow::Result<()> {
    let raw_store = open_store(&config).await?;
    let store = Store::new(raw_store.clone(), config.product_name.clone());
    let listener = TcpListener::bind(&config.admin_addr)
        .await
        .with_context(|| format!("cannot listen on {} (admin_addr)", config.admin_addr))?;
    let addr = listener.local_addr()?;
    // Bound before the lock is taken: a bad address stops the start cleanly.
    let metrics_listener = match &config.metrics_addr {
        Some(a) => Some(
            TcpListener::bind(a)
                .await
                .with_context(|| format!("cannot listen on {a} (metrics_addr)"))?,
        ),
        None => None,
    };
    let owner = owner_record(&config, addr);
    // The local store serves one instance; on etcd any number may run, one
    // leading and the others standing by.
    let several = config.backend == Backend::Etcd;
    let taken = if several {
        store.campaign(&owner).await
    } else {
        store.acquire(&owner).await
    };
    let lock = taken.with_context(|| {
        format!(
            "cannot take ownership of product {:?} in {}",
            config.product_name,
            store.describe()
        )
    })?;
    if *lock.state().borrow() == LockState::Held {
        tracing::info!(product = %config.product_name, store = %store.describe(), %addr, "ownership lock held: leading");
    } else {
        tracing::info!(product = %config.product_name, store = %store.describe(), %addr, "another instance leads: standing by (serving reads)");
    }

    let redis = Arc::new(Connector::new(
        config.product_auth.clone(),
        Duration::from_secs(1),
    ));
    let settings = Settings::from(&config);
    // Idle connections live 5 s (as Codis's stats pool), longer than the 1 s
    // between rounds, so rounds reuse them.
    let probe = Arc::new(
        PooledProbe::new(&config.product_auth, Duration::from_secs(5))
            .with_sections(&config.stats_info_sections),
    );
    let ha = Arc::new(PooledHa::new(&config.product_auth));
    let backends = Backends {
        store,
        redis,
        probe,
        ha: ha.clone(),
        migrator: Arc::new(PlainMigrator::new(&config.product_auth)),
        codis_migrator: Arc::new(CodisMigrator::new(
            &config.product_auth,
            match config.migration_method {
                ForwardMethod::Sync => CodisMode::Sync,
                ForwardMethod::SemiAsync => CodisMode::SemiAsync {
                    maxbulks: config.migration_async_maxbulks,
                    maxbytes: config.migration_async_maxbytes,
                    numkeys: config.migration_async_numkeys,
                },
            },
        )),
        codis_proxies: Arc::new(HttpCodisProxies::default()),
    };
    let coordinator = match Coordinator::open(settings, backends, owner, lock.state()).await {
        Ok(c) => c,
        Err(e) => {
            release(lock).await;
            return Err(anyhow::Error::new(e).context("cannot load the product from the store"));
        }
    };

    if let Some(leadership) = lock.leadership() {
        coordinator.attach_leadership(leadership);
    }

    let tasks = tokio_util::task::TaskTracker::new();
    tasks.spawn(watch_signals(shutdown.clone()));
    let rpc_metrics = RpcMetrics::new();
    let metrics_addr = match metrics_listener {
        Some(l) => {
            let bound = l.local_addr()?;
            tasks.spawn(crate::metrics::http::serve(
                l,
                coordinator.clone(),
                rpc_metrics.clone(),
                shutdown.clone(),
            ));
            tracing::info!(addr = %bound, "serving /metrics and /healthz");
            Some(bound)
        }
        None => None,
    };
    tasks.close();
    // Nagle's algorithm would hold back the tail of every large response (the
    // slot table is ~70 KB) until the client's delayed ACK: ~40 ms per call.
    let incoming = tonic::transport::server::TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        .with_keepalive(Some(Duration::from_secs(60)));
    let (router, health) = grpc::router(Edge {
        coordinator: coordinator.clone(),
        config: &config,
        addr,
        shutdown: shutdown.clone(),
        set_log_filter: hooks.set_log_filter,
        rpc_metrics: rpc_metrics.clone(),
        tasks: tasks.clone(),
    })?;
    tasks.spawn(
        Terms {
            coordinator: coordinator.clone(),
            ha,
            stats_period: config.stats_refresh_period,
            stats_timeout: STATS_TIMEOUT,
            store: raw_store,
            product_dir: crate::store::keys::product_dir(&config.product_name),
        }
        .run(lock.state(), health, shutdown.clone()),
    );
    let drained = shutdown.clone();
    let server =
        router.serve_with_incoming_shutdown(incoming, async move { drained.cancelled().await });
    (hooks.on_ready)(Ready { addr, metrics_addr });
    let mut server = std::pin::pin!(server);
    let served = tokio::select! {
        r = &mut server => r,
        () = shutdown.cancelled() => {
            tracing::info!(grace = ?config.shutdown_grace, "shutting down: draining in-flight RPCs");
            match tokio::time::timeout(config.shutdown_grace, &mut server).await {
                Ok(r) => r,
                Err(_) => {
                    tracing::warn!("in-flight RPCs did not finish within shutdown_grace; closing them");
                    Ok(())
                }
            }
        }
    };
    tasks.wait().await;
    drop(coordinator);
    release(lock).await;
    served.context("gRPC server failed")?;
    tracing::info!("stopped");
    Ok(())
}

/// Opens the store `config` names (the one place that picks a backend), for the
/// service and for the offline `import`/`export` commands.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn MetaStore>> {
    Ok(match config.backend {
        Backend::Local => {
            Arc::new(LocalStore::open(&config.coordinator_addr).with_context(|| {
                format!("cannot open the local store at {}", config.coordinator_addr)
            })?)
        }
        Backend::Etcd => open_etcd(config).await?,
    })
}

#[cfg(feature = "etcd")]
async fn open_etcd(config: &Config) -> anyhow::Result<Arc<dyn MetaStore>> {
    use crate::store::etcd::{EtcdOptions, EtcdStore};
    let user = match config.coordinator_auth.split_once(':') {
        Some((u, p)) => Some((u.to_owned(), p.to_owned())),
        None if config.coordinator_auth.is_empty() => None,
        None => anyhow::bail!("invalid config key `coordinator_auth`: expected user:password"),
    };
    let opts = EtcdOptions {
        lease_ttl: config.etcd_lease_ttl,
        // Well inside the lease: a frozen etcd fails a call (and marks the lock
        // Renewing) long before the lease could run out.
        timeout: (config.etcd_lease_ttl / 4).clamp(Duration::from_secs(1), Duration::from_secs(2)),
        user,
    };
    let endpoints = config.etcd_endpoints();
    let store = EtcdStore::connect(&endpoints, &config.etcd_prefix, opts)
        .await
        .with_context(|| format!("cannot connect to etcd at {}", endpoints.join(",")))?;
    Ok(Arc::new(store))
}

#[cfg(not(feature = "etcd"))]
async fn open_etcd(_: &Config) -> anyhow::Result<Arc<dyn MetaStore>> {
    anyhow::bail!("this topom was built without the `etcd` feature")
}

async fn release(lock: Box<dyn crate::store::OwnershipLock>) {
    match lock.release().await {
        Ok(()) => tracing::info!("ownership lock released"),
        // Not fatal: the OS (local) or the lease TTL (etcd) frees it anyway.
        Err(e) => tracing::warn!(error = %e, "could not release the ownership lock"),
    }
}

async fn watch_signals(shutdown: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; use the Shutdown RPC to stop");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM received"),
        _ = int.recv() => tracing::info!("SIGINT received"),
        // Stopped another way (the Shutdown RPC): nothing left to watch.
        () = shutdown.cancelled() => return,
    }
    shutdown.cancel();
}

fn owner_record(config: &Config, addr: SocketAddr) -> TopomRecord {
    let hostname = std::fs::read_to_string("/etc/hostname")
        .map(|s| s.trim().to_owned())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default();
    let started = std::time::SystemTime::now();
    let pid = std::process::id();
    TopomRecord {
        token: token_of(&[
            &hostname,
            &config.product_name,
            &addr.to_string(),
            &pid.to_string(),
            &format!("{started:?}"),
        ]),
        start_time: crate::model::format_rfc3339(started),
        admin_addr: addr.to_string(),
        product_name: config.product_name.clone(),
        pid,
        pwd: std::env::current_dir()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        sys: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        hostname,
    }
}

/// A stable-length identity from a few facts (not a secret).
fn token_of(parts: &[&str]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut g: u32 = 0;
    for p in parts {
        for b in p.bytes().chain([0]) {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        g = crc32fast::hash(&[&g.to_le_bytes()[..], p.as_bytes()].concat());
    }
    format!("{h:016x}{g:08x}")
}
