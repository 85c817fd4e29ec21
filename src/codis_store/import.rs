//! `topom import`: read, check, print the plan; with `--confirm`, write it into
//! topom's store in one batch while holding the product's ownership lock.

use std::fmt::Write as _;
use std::sync::Arc;

use super::owner::{Holder, probe};
use super::read::read_store;
use super::{Outcome, Problem, SourceKind, check, render_plan};
use crate::config::Config;
use crate::model::{MAX_SLOTS, TopomRecord};
use crate::store::{MetaStore, ProductData, Store, StoreBatch};

/// What `topom import` was asked to do.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The service's config: the target store and the product.
    pub config: Config,
    /// Where the Codis product is read from.
    pub source: SourceKind,
    /// Write (otherwise a dry run).
    pub confirm: bool,
    /// Import even though the Codis dashboard holding the product answers.
    pub force: bool,
    /// Overwrite a topom store that already holds the product.
    pub replace: bool,
    /// Write the slot-action engine as disabled, so a started topom migrates
    /// nothing until an operator enables it (Codis's flag lives in memory only,
    /// so the store cannot say whether it was set).
    pub disable_slot_actions: bool,
}

/// Runs an import, printing the plan and every problem to stdout.
pub async fn run_import(opts: &ImportOptions) -> Outcome {
    let (text, outcome) = import(opts).await;
    print!("{text}");
    outcome
}

async fn import(opts: &ImportOptions) -> (String, Outcome) {
    let product = opts.config.product_name.as_str();
    let mut out = String::new();
    let src = match opts.source.read(product).await {
        Ok(s) => s,
        Err(p) => return (finish(out, &[p], "nothing written"), Outcome::Problems),
    };
    let _ = writeln!(out, "source: {}", src.describe);
    let mut checked = check(&src, product);
    if let Some(rec) = &src.owner {
        match probe(&rec.value).await {
            Holder::Live(who) if !opts.force => checked.problems.push(Problem::new(
                &rec.at,
                format!(
                    "{who}: it still holds product {product:?}; stop it \
                     (codis-admin --dashboard={} --shutdown) or pass --force",
                    rec.value.admin_addr
                ),
            )),
            Holder::Live(who) => {
                let _ = writeln!(out, "note: --force: importing although {who}");
            }
            Holder::Stale(who) => {
                let _ = writeln!(
                    out,
                    "note: lock record of a stopped dashboard ignored: {who}"
                );
            }
        }
    }
    checked.data.slot_action.disabled = opts.disable_slot_actions;
    out.push_str(&render_plan(product, &checked.data));
    if opts.disable_slot_actions {
        let _ = writeln!(
            out,
            "slot actions: disabled when topom starts (topom-admin slots action enable to resume them)"
        );
    }

    let raw = match crate::server::open_store(&opts.config).await {
        Ok(r) => r,
        Err(e) => {
            checked
                .problems
                .push(Problem::new("target", format!("{e:#}")));
            return (
                finish(out, &checked.problems, "nothing written"),
                Outcome::Problems,
            );
        }
    };
    let store = Store::new(raw.clone(), product);
    let target = format!("topom store {}", store.describe());
    let lock = match store.acquire(&importer(product)).await {
        Ok(l) => l,
        Err(e) => {
            checked.problems.push(Problem::new(&target, e.to_string()));
            return (
                finish(out, &checked.problems, "nothing written"),
                Outcome::Problems,
            );
        }
    };
    let result = write_locked(opts, &raw, &store, &target, checked).await;
    if let Err(e) = lock.release().await {
        let _ = writeln!(out, "warning: could not release the ownership lock: {e}");
    }
    let (more, outcome) = result;
    out.push_str(&more);
    (out, outcome)
}

/// The part that runs under the lock: refuse a non-empty target, then write.
async fn write_locked(
    opts: &ImportOptions,
    raw: &Arc<dyn MetaStore>,
    store: &Store,
    target: &str,
    mut checked: super::Checked,
) -> (String, Outcome) {
    let product = store.product();
    let existing = match read_store(raw.as_ref(), product, target.to_owned()).await {
        Ok(e) => e,
        Err(e) => {
            checked.problems.push(Problem::new(target, e.to_string()));
            return (
                finish(String::new(), &checked.problems, "nothing written"),
                Outcome::Problems,
            );
        }
    };
    let held = existing.groups.len() + existing.slots.len() + existing.proxies.len();
    let mut out = String::new();
    if held > 0 || existing.sentinel.is_some() {
        let what = format!(
            "it already holds product {product:?} ({} groups, {} slot records, {} proxies)",
            existing.groups.len(),
            existing.slots.len(),
            existing.proxies.len()
        );
        if opts.replace {
            let _ = writeln!(
                out,
                "note: --replace: {target}: {what}; all of it is replaced"
            );
        } else {
            checked.problems.push(Problem::new(
                target,
                format!("{what}; pass --replace to overwrite it"),
            ));
        }
    }
    if !checked.problems.is_empty() {
        return (
            finish(out, &checked.problems, "nothing written"),
            Outcome::Problems,
        );
    }
    if !opts.confirm {
        let _ = writeln!(
            out,
            "dry run: nothing written; run again with --confirm to write it into {target}"
        );
        return (out, Outcome::Ok);
    }
    let batch = import_batch(&checked.data, &existing);
    match store.commit(batch).await {
        Ok(()) => {
            let _ = writeln!(
                out,
                "written into {target}: {} groups, {MAX_SLOTS} slots, {} proxies; start topom on it",
                checked.data.groups.len(),
                checked.data.proxies.len()
            );
            (out, Outcome::Ok)
        }
        Err(e) => {
            let p = [Problem::new(target, format!("write failed: {e}"))];
            (
                finish(
                    out,
                    &p,
                    "the store may hold part of it; run again with --replace",
                ),
                Outcome::Problems,
            )
        }
    }
}

/// Every record of `data`, and the deletion of what `existing` has beyond it.
pub(super) fn batch(data: &ProductData, existing: &super::Source) -> StoreBatch {
    let mut b = StoreBatch::default();
    for rec in &existing.groups {
        if !data.groups.contains_key(&rec.value.id) {
            b.delete_group(rec.value.id);
        }
    }
    for rec in &existing.proxies {
        if !data.proxies.contains_key(&rec.value.token) {
            b.delete_proxy(&rec.value.token);
        }
    }
    for g in data.groups.values() {
        b.put_group(g);
    }
    for m in &data.slots {
        b.put_slot(m);
    }
    for x in data.proxies.values() {
        b.put_proxy(x);
    }
    b.put_sentinel(&data.sentinel);
    b
}

/// [`batch`], plus the slot-action settings: topom's own record, so an import
/// writes it and an export (to Codis) does not.
fn import_batch(data: &ProductData, existing: &super::Source) -> StoreBatch {
    let mut b = batch(data, existing);
    b.put_slot_action_config(&data.slot_action);
    b
}

fn finish(mut out: String, problems: &[Problem], consequence: &str) -> String {
    for p in problems {
        let _ = writeln!(out, "problem: {p}");
    }
    let _ = writeln!(out, "{} problems found; {consequence}", problems.len());
    out
}

/// The owner record while an import or export holds the lock, so a topom that
/// tries to start meanwhile says who has the product.
pub(super) fn importer(product: &str) -> TopomRecord {
    let pid = std::process::id();
    TopomRecord {
        token: format!("topom-import-{pid}"),
        start_time: crate::model::format_rfc3339(std::time::SystemTime::now()),
        admin_addr: "(topom import/export, not serving)".into(),
        product_name: product.to_owned(),
        pid,
        pwd: std::env::current_dir()
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
        sys: format!("{} {}", std::env::consts::OS, std::env::consts::ARCH),
        hostname: String::new(),
    }
}
