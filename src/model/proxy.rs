//! Registered proxies (`/codis3/<product>/proxy/proxy-<token>`).

use serde::{Deserialize, Serialize};

/// A proxy as it registered itself (Codis `Proxy`, plus `version`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Proxy {
    /// Assigned by topom: 1 + the highest id in use.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub id: u32,
    /// The proxy's stable identity.
    pub token: String,
    /// When the proxy started (RFC 3339).
    #[serde(default)]
    pub start_time: String,
    /// Admin address.
    #[serde(default)]
    pub admin_addr: String,
    /// Client listener protocol, e.g. `tcp4`.
    #[serde(default)]
    pub proto_type: String,
    /// Client listener address.
    #[serde(default)]
    pub proxy_addr: String,
    /// Jodis registration path (Codis only).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub jodis_path: String,
    /// Product served.
    #[serde(default)]
    pub product_name: String,
    /// Process id.
    #[serde(default)]
    pub pid: u32,
    /// Working directory.
    #[serde(default)]
    pub pwd: String,
    /// `uname -a`.
    #[serde(default)]
    pub sys: String,
    /// Hostname.
    #[serde(default)]
    pub hostname: String,
    /// Datacenter label.
    #[serde(default)]
    pub datacenter: String,
    /// Proxy software version (not in Codis).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// How topom reaches it (not in Codis; absent for topom's own proxies, so
    /// their records keep Codis's bytes).
    #[serde(default, skip_serializing_if = "ProxyKind::is_topom")]
    pub kind: ProxyKind,
}

/// How a proxy follows the slot table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProxyKind {
    /// A topom proxy: registers over gRPC, follows WatchSlots, holds a lease
    /// and fences itself when it runs out.
    #[default]
    Topom,
    /// An unmodified codis-proxy: topom drives it over its HTTP admin API
    /// (`fillslots`); it has no lease and cannot fence itself.
    Codis,
}

impl ProxyKind {
    /// Whether this is a topom proxy (serde's skip test).
    pub fn is_topom(&self) -> bool {
        *self == ProxyKind::Topom
    }
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_codis_proxy_carries_its_kind() {
        let topom = Proxy {
            token: "t".into(),
            ..Proxy::default()
        };
        let json = serde_json::to_string(&topom).unwrap();
        assert!(!json.contains("kind"), "{json}");
        let codis = Proxy {
            kind: ProxyKind::Codis,
            ..topom
        };
        let json = serde_json::to_string(&codis).unwrap();
        assert!(json.ends_with(r#","kind":"codis"}"#), "{json}");
        assert_eq!(serde_json::from_str::<Proxy>(&json).unwrap(), codis);
        // A record Codis wrote has no kind: read as topom's, unless imported.
        let codis_written = r#"{"token":"t","start_time":"","admin_addr":"h:1"}"#;
        assert_eq!(
            serde_json::from_str::<Proxy>(codis_written).unwrap().kind,
            ProxyKind::Topom
        );
    }
}
