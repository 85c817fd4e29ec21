//! `topom export`: topom's product back in Codis's shapes, so the original
//! codis-dashboard can take over again (the roll back).
//!
//! Records drop what only topom knows (a server's `kind`, a sync failure's text,
//! a proxy's `version` and `kind`, the slot engine's persisted settings); Codis would ignore
//! them, but a rolled-back store then reads exactly as Codis writes it.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::import::{batch, importer};
use super::read::read_store;
use super::{Outcome, Problem};
use crate::config::Config;
use crate::model::{Group, Proxy, ServerKind, SlotMapping};
use crate::store::{ProductData, Store, local::LocalStore};

/// Where `topom export` writes.
#[derive(Debug, Clone)]
pub enum ExportTarget {
    /// A new Codis filesystem store root (codis-dashboard `coordinator_addr`).
    Fs(PathBuf),
    /// A `codis-admin --config-restore` file.
    Dump(PathBuf),
}

/// What `topom export` was asked to do.
#[derive(Debug, Clone)]
pub struct ExportOptions {
    /// The service's config: the store and the product.
    pub config: Config,
    /// Where to write.
    pub target: ExportTarget,
}

/// Runs an export, printing what was written, or every problem, to stdout.
pub async fn run_export(opts: &ExportOptions) -> Outcome {
    let (text, outcome) = match load(&opts.config).await {
        Ok(data) => match &opts.target {
            ExportTarget::Fs(dir) => {
                to_fs(&opts.config.product_name, &codis_shape(data), dir).await
            }
            ExportTarget::Dump(file) => to_dump(&codis_shape(data), file),
        },
        Err(p) => (
            format!("problem: {p}\nnothing written\n"),
            Outcome::Problems,
        ),
    };
    print!("{text}");
    outcome
}

/// Reads the product under its ownership lock, so no topom is changing it.
async fn load(config: &Config) -> Result<ProductData, Problem> {
    let raw = crate::server::open_store(config)
        .await
        .map_err(|e| Problem::new("topom store", format!("{e:#}")))?;
    let store = Store::new(raw, config.product_name.clone());
    let at = format!("topom store {}", store.describe());
    let lock = store
        .acquire(&importer(&config.product_name))
        .await
        .map_err(|e| {
            Problem::new(
                &at,
                format!("{e} (stop it first: the export must not race its writes)"),
            )
        })?;
    let data = store
        .load()
        .await
        .map_err(|e| Problem::new(&at, e.to_string()));
    // Not fatal: the OS (local) or the lease TTL (etcd) frees it anyway.
    let _ = lock.release().await;
    data
}

fn codis_shape(mut data: ProductData) -> ProductData {
    for g in data.groups.values_mut() {
        for s in &mut g.servers {
            s.kind = ServerKind::Unknown;
            if let Some(a) = &mut s.action {
                a.error.clear();
            }
        }
    }
    for x in data.proxies.values_mut() {
        x.version.clear();
        x.kind = crate::model::ProxyKind::Topom;
    }
    data
}

async fn to_fs(product: &str, data: &ProductData, dir: &Path) -> (String, Outcome) {
    let at = dir.display().to_string();
    let fail = |what: String| {
        (
            format!("problem: {at}: {what}\nnothing written\n"),
            Outcome::Problems,
        )
    };
    let raw = match LocalStore::open(dir) {
        Ok(r) => r,
        Err(e) => return fail(e.to_string()),
    };
    match read_store(&raw, product, at.clone()).await {
        Ok(s)
            if s.groups.is_empty()
                && s.slots.is_empty()
                && s.proxies.is_empty()
                && s.sentinel.is_none()
                && s.owner.is_none() => {}
        Ok(_) => {
            return fail(format!(
                "product {product:?} already exists there; export into an empty directory"
            ));
        }
        Err(e) => return fail(e.to_string()),
    }
    // An empty directory: nothing to delete beside the records.
    let b = batch(data, &Default::default());
    if let Err(e) = Store::new(std::sync::Arc::new(raw), product)
        .commit(b)
        .await
    {
        return fail(format!("write failed: {e}"));
    }
    let mut out = String::new();
    let _ = writeln!(
        out,
        "written Codis filesystem store {at}: product {product}, {} groups, 1024 slots, {} proxies, {} sentinels",
        data.groups.len(),
        data.proxies.len(),
        data.sentinel.servers.len()
    );
    let _ = writeln!(
        out,
        "start the dashboard on it: codis-dashboard with coordinator_name = \"filesystem\", coordinator_addr = \"{at}\""
    );
    (out, Outcome::Ok)
}

/// The `--config-dump` shape (Codis omits empty lists).
#[derive(Serialize)]
struct Dump<'a> {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    slots: Vec<&'a SlotMapping>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    group: Vec<&'a Group>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    proxy: Vec<&'a Proxy>,
}

fn to_dump(data: &ProductData, file: &Path) -> (String, Outcome) {
    let at = file.display().to_string();
    // codis-admin --config-restore refuses both; say so before writing a file it rejects.
    let mut problems = Vec::new();
    for m in &data.slots {
        if let Some(a) = m.action {
            problems.push(format!(
                "slot {} has a {} action toward group {}",
                m.id,
                a.state.as_str(),
                a.target_id
            ));
        }
    }
    for g in data.groups.values() {
        if let Some(p) = g.promoting {
            problems.push(format!(
                "group {} is promoting ({})",
                g.id,
                p.state.as_str()
            ));
        }
    }
    if !problems.is_empty() {
        let mut out = String::new();
        for p in &problems {
            let _ = writeln!(out, "problem: {p}");
        }
        let _ = writeln!(
            out,
            "{} problems found; nothing written: codis-admin --config-restore refuses slot actions and \
             promoting groups; let them finish (topom-admin slots list), or use --to-fs, which keeps them",
            problems.len()
        );
        return (out, Outcome::Problems);
    }
    let dump = Dump {
        slots: data.slots.iter().collect(),
        group: data.groups.values().collect(),
        proxy: data.proxies.values().collect(),
    };
    let written = crate::store::encode(&dump)
        .map_err(|e| e.to_string())
        .and_then(|bytes| std::fs::write(file, bytes).map_err(|e| e.to_string()));
    if let Err(e) = written {
        return (
            format!("problem: {at}: {e}\nnothing written\n"),
            Outcome::Problems,
        );
    }
    let mut out = format!(
        "written {at}: {} groups, 1024 slots, {} proxies\n",
        data.groups.len(),
        data.proxies.len()
    );
    if !data.sentinel.servers.is_empty() {
        let _ = writeln!(
            out,
            "note: a --config-dump has no sentinels; add them again with codis-admin --sentinel-add: {}",
            data.sentinel.servers.join(", ")
        );
    }
    let _ = writeln!(
        out,
        "restore it into an empty store: codis-admin --config-restore={at} --product=NAME --filesystem=ROOT --confirm"
    );
    (out, Outcome::Ok)
}
