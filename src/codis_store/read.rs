//! Reading a Codis product from its three possible homes. Every record is kept
//! with where it came from, and a record that does not decode becomes a
//! [`Problem`] rather than stopping the read, so one run names all of them.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::Problem;
use crate::model::{Group, Proxy, Sentinel, SlotMapping, TopomRecord};
use crate::store::{MetaStore, StoreError, keys};

/// Where the Codis product is read from.
#[derive(Debug, Clone)]
pub enum SourceKind {
    /// A codis-dashboard `coordinator_name = "filesystem"` root (it holds `data/`).
    Fs(PathBuf),
    /// A file printed by `codis-admin --config-dump`.
    Dump(PathBuf),
    /// An etcd v3 cluster holding Codis's key layout under `prefix`.
    Etcd {
        /// `host:port` endpoints.
        endpoints: Vec<String>,
        /// Prepended to every key (`""` for `/codis3/...` at the root).
        prefix: String,
    },
}

/// A record and where it lives.
#[derive(Debug, Clone)]
pub struct Located<T> {
    /// For messages: the file, the etcd key, or `FILE: slots[3]` in a dump.
    pub at: String,
    /// The store key it was read from (`None` in a dump, which has no paths).
    pub key: Option<String>,
    /// The record.
    pub value: T,
}

/// Everything read from a source, before any check.
#[derive(Debug, Clone, Default)]
pub struct Source {
    /// What was read, for the plan's first line.
    pub describe: String,
    /// Slot mappings as found (a store may hold fewer than 1024: missing = offline).
    pub slots: Vec<Located<SlotMapping>>,
    /// Groups as found.
    pub groups: Vec<Located<Group>>,
    /// Proxies as found.
    pub proxies: Vec<Located<Proxy>>,
    /// The sentinel record, if any (a dump has none).
    pub sentinel: Option<Located<Sentinel>>,
    /// The Codis dashboard's lock record (`/codis3/<product>/topom`), if present.
    pub owner: Option<Located<TopomRecord>>,
    /// Records that could not be read or decoded.
    pub problems: Vec<Problem>,
}

impl SourceKind {
    /// Reads product `product` from this source. `Err` only when the source
    /// cannot be opened at all (missing directory, etcd down, unreadable file).
    pub async fn read(&self, product: &str) -> Result<Source, Problem> {
        match self {
            SourceKind::Fs(root) => read_fs(root, product).await,
            SourceKind::Dump(file) => {
                let text = std::fs::read(file)
                    .map_err(|e| Problem::new(file.display().to_string(), e.to_string()))?;
                Ok(read_dump_text(&text, &file.display().to_string()))
            }
            SourceKind::Etcd { endpoints, prefix } => read_etcd(endpoints, prefix, product).await,
        }
    }
}

async fn read_fs(root: &Path, product: &str) -> Result<Source, Problem> {
    let at = root.display().to_string();
    let data = root.join("data");
    if !data.is_dir() {
        return Err(Problem::new(
            at,
            "not a Codis filesystem store: it has no data/ directory \
             (give the dashboard's coordinator_addr)",
        ));
    }
    let product_dir = data.join("codis3").join(product);
    if !product_dir.is_dir() {
        let found: Vec<String> = std::fs::read_dir(data.join("codis3"))
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        return Err(Problem::new(
            product_dir.display().to_string(),
            format!(
                "product {product:?} is not in this store (products found: {})",
                if found.is_empty() {
                    "none".to_owned()
                } else {
                    found.join(", ")
                }
            ),
        ));
    }
    // The directory exists, so opening it creates nothing but a temp/ beside data/,
    // which codis-dashboard uses the same way.
    let raw = crate::store::local::LocalStore::open(root)
        .map_err(|e| Problem::new(&at, e.to_string()))?;
    read_store(&raw, product, format!("Codis filesystem store {at}"))
        .await
        .map_err(|e| Problem::new(at, e.to_string()))
}

#[cfg(feature = "etcd")]
async fn read_etcd(endpoints: &[String], prefix: &str, product: &str) -> Result<Source, Problem> {
    use crate::store::etcd::{EtcdOptions, EtcdStore};
    let at = format!("etcd {}", endpoints.join(","));
    let raw = EtcdStore::connect(endpoints, prefix, EtcdOptions::default())
        .await
        .map_err(|e| Problem::new(&at, e.to_string()))?;
    read_store(&raw, product, format!("{at} (prefix {prefix:?})"))
        .await
        .map_err(|e| Problem::new(at, e.to_string()))
}

#[cfg(not(feature = "etcd"))]
async fn read_etcd(endpoints: &[String], _: &str, _: &str) -> Result<Source, Problem> {
    Err(Problem::new(
        endpoints.join(","),
        "this topom was built without the `etcd` feature",
    ))
}

/// Reads every record of `product` in Codis's key layout from `raw`.
pub(crate) async fn read_store(
    raw: &dyn MetaStore,
    product: &str,
    describe: String,
) -> Result<Source, StoreError> {
    let mut src = Source {
        describe,
        ..Source::default()
    };
    for (key, bytes) in raw.list(&keys::slots_dir(product)).await? {
        push(&mut src.slots, &mut src.problems, raw, key, &bytes);
    }
    for (key, bytes) in raw.list(&keys::groups_dir(product)).await? {
        push(&mut src.groups, &mut src.problems, raw, key, &bytes);
    }
    for (key, bytes) in raw.list(&keys::proxies_dir(product)).await? {
        push(&mut src.proxies, &mut src.problems, raw, key, &bytes);
    }
    if let Some(bytes) = raw.get(&keys::sentinel(product)).await? {
        let mut one = Vec::new();
        push(
            &mut one,
            &mut src.problems,
            raw,
            keys::sentinel(product),
            &bytes,
        );
        src.sentinel = one.pop();
    }
    if let Some(bytes) = raw.get(&keys::topom(product)).await? {
        let mut one = Vec::new();
        push(
            &mut one,
            &mut src.problems,
            raw,
            keys::topom(product),
            &bytes,
        );
        src.owner = one.pop();
    }
    Ok(src)
}

fn push<T: DeserializeOwned>(
    into: &mut Vec<Located<T>>,
    problems: &mut Vec<Problem>,
    raw: &dyn MetaStore,
    key: String,
    bytes: &[u8],
) {
    let at = raw.locate(&key);
    match serde_json::from_slice(bytes) {
        Ok(value) => into.push(Located {
            at,
            key: Some(key),
            value,
        }),
        Err(e) => problems.push(Problem::new(at, format!("not a valid record: {e}"))),
    }
}

/// Reads the text of a `codis-admin --config-dump` (`{"slots": [...], "group":
/// [...], "proxy": [...]}`; empty lists are omitted by Codis). `file` names it
/// in messages.
pub fn read_dump_text(text: &[u8], file: &str) -> Source {
    let mut src = Source {
        describe: format!("codis-admin --config-dump file {file}"),
        ..Source::default()
    };
    let top: serde_json::Value = match serde_json::from_slice(text) {
        Ok(v) => v,
        Err(e) => {
            src.problems
                .push(Problem::new(file, format!("not valid JSON: {e}")));
            return src;
        }
    };
    let Some(top) = top.as_object() else {
        src.problems.push(Problem::new(
            file,
            "expected a JSON object with \"slots\", \"group\" and \"proxy\" (codis-admin --config-dump)",
        ));
        return src;
    };
    for (name, value) in top {
        let at = format!("{file}: {name}");
        let Some(items) = value.as_array() else {
            src.problems.push(Problem::new(at, "expected a JSON array"));
            continue;
        };
        match name.as_str() {
            "slots" => elements(&mut src.slots, &mut src.problems, &at, items),
            "group" => elements(&mut src.groups, &mut src.problems, &at, items),
            "proxy" => elements(&mut src.proxies, &mut src.problems, &at, items),
            _ => src.problems.push(Problem::new(
                at,
                "unknown key (a Codis 3 --config-dump has slots, group and proxy; \
                 a v1 dump, made with -1, must be converted with codis-admin --config-convert first)",
            )),
        }
    }
    src
}

fn elements<T: DeserializeOwned>(
    into: &mut Vec<Located<T>>,
    problems: &mut Vec<Problem>,
    at: &str,
    items: &[serde_json::Value],
) {
    for (i, item) in items.iter().enumerate() {
        let at = format!("{at}[{i}]");
        match T::deserialize(item) {
            Ok(value) => into.push(Located {
                at,
                key: None,
                value,
            }),
            Err(e) => problems.push(Problem::new(at, format!("not a valid record: {e}"))),
        }
    }
}
