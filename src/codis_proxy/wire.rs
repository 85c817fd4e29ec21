//! codis-proxy's JSON shapes and its xauth: pure, no I/O.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::CodisProxyStats;
use crate::model::{ForwardMethod, SlotView};

/// The token a codis-proxy expects in every admin path: the first 16 bytes of
/// SHA-256 over `Codis-XAuth-[product]-[auth]-[token]`, in hex (Codis
/// `rpc.NewXAuth(product, product_auth, token)`).
pub fn xauth(product: &str, product_auth: &str, token: &str) -> String {
    xauth_of(&[product, product_auth, token])
}

/// Codis `rpc.NewXAuth(segs...)`: a dashboard's own xauth is that of the
/// product name alone (what `codis-proxy --dashboard` sends).
pub fn xauth_of(segs: &[&str]) -> String {
    let mut h = Sha256::new();
    h.update("Codis-XAuth");
    for s in segs {
        h.update(format!("-[{s}]"));
    }
    h.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// One slot as `fillslots` takes it (Codis `models.Slot`): the same fields as
/// [`SlotView`], but the forward method is Codis's integer.
#[derive(Debug, Serialize)]
pub(super) struct Slot<'a> {
    id: u32,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    locked: bool,
    #[serde(skip_serializing_if = "str::is_empty")]
    backend_addr: &'a str,
    #[serde(skip_serializing_if = "is_zero")]
    backend_addr_group_id: u32,
    #[serde(skip_serializing_if = "str::is_empty")]
    migrate_from: &'a str,
    #[serde(skip_serializing_if = "is_zero")]
    migrate_from_group_id: u32,
    #[serde(skip_serializing_if = "is_zero_u8")]
    forward_method: u8,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    replica_groups: &'a [Vec<String>],
}

impl<'a> From<&'a SlotView> for Slot<'a> {
    fn from(v: &'a SlotView) -> Self {
        Slot {
            id: v.id,
            locked: v.locked,
            backend_addr: &v.backend_addr,
            backend_addr_group_id: v.backend_addr_group_id,
            migrate_from: &v.migrate_from,
            migrate_from_group_id: v.migrate_from_group_id,
            // Codis: ForwardSync = 0, ForwardSemiAsync = 1.
            forward_method: match v.forward_method {
                None | Some(ForwardMethod::Sync) => 0,
                Some(ForwardMethod::SemiAsync) => 1,
            },
            replica_groups: &v.replica_groups,
        }
    }
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

fn is_zero_u8(v: &u8) -> bool {
    *v == 0
}

/// Codis's error body (HTTP 800).
#[derive(Debug, Deserialize)]
pub(super) struct RemoteError {
    #[serde(rename = "Cause", default)]
    pub(super) cause: String,
}

/// The part of Codis `proxy.Stats` topom shows.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(super) struct Stats {
    online: bool,
    closed: bool,
    ops: Ops,
    sessions: Sessions,
    rusage: Rusage,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Ops {
    total: i64,
    fails: i64,
    redis: RedisOps,
    qps: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RedisOps {
    errors: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Sessions {
    total: i64,
    alive: i64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Rusage {
    cpu: f64,
    mem: i64,
}

impl From<Stats> for CodisProxyStats {
    fn from(s: Stats) -> Self {
        CodisProxyStats {
            online: s.online,
            closed: s.closed,
            ops_total: s.ops.total,
            ops_fails: s.ops.fails,
            redis_errors: s.ops.redis.errors,
            ops_qps: s.ops.qps,
            sessions_total: s.sessions.total,
            sessions_alive: s.sessions.alive,
            rss_bytes: s.rusage.mem,
            cpu: s.rusage.cpu,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xauth_is_what_codis_computes() {
        // A real codis-proxy 3.2 (product "demo", no auth, this token) answered
        // xping with exactly this xauth: 200 OK.
        assert_eq!(
            xauth("demo", "", "a949fbd693175dfe147ca6042afa2a40"),
            "28fdbf1a299c455a0c922557b97db6c7"
        );
        assert_ne!(
            xauth("demo", "pw", "a949fbd693175dfe147ca6042afa2a40"),
            "28fdbf1a299c455a0c922557b97db6c7"
        );
    }

    #[test]
    fn a_slot_has_codis_field_names_and_an_integer_method() {
        let v = SlotView {
            id: 5,
            locked: true,
            backend_addr: "127.0.0.1:2".into(),
            backend_addr_group_id: 2,
            migrate_from: "127.0.0.1:1".into(),
            migrate_from_group_id: 1,
            forward_method: Some(ForwardMethod::SemiAsync),
            replica_groups: vec![],
        };
        assert_eq!(
            serde_json::to_string(&Slot::from(&v)).unwrap(),
            r#"{"id":5,"locked":true,"backend_addr":"127.0.0.1:2","backend_addr_group_id":2,"migrate_from":"127.0.0.1:1","migrate_from_group_id":1,"forward_method":1}"#
        );
        let idle = SlotView {
            id: 6,
            backend_addr: "127.0.0.1:1".into(),
            backend_addr_group_id: 1,
            forward_method: Some(ForwardMethod::Sync),
            replica_groups: vec![vec!["127.0.0.1:3".into()]],
            ..SlotView::default()
        };
        assert_eq!(
            serde_json::to_string(&Slot::from(&idle)).unwrap(),
            r#"{"id":6,"backend_addr":"127.0.0.1:1","backend_addr_group_id":1,"replica_groups":[["127.0.0.1:3"]]}"#
        );
    }
}
