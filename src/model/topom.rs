//! The owner record (`/codis3/<product>/topom`): who holds the product.

use serde::{Deserialize, Serialize};

/// Identifies the topom instance that owns a product (Codis `Topom`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TopomRecord {
    /// Instance identity.
    pub token: String,
    /// Start time (RFC 3339).
    pub start_time: String,
    /// Advertised gRPC address.
    pub admin_addr: String,
    /// Product.
    pub product_name: String,
    /// Process id.
    pub pid: u32,
    /// Working directory.
    pub pwd: String,
    /// `uname -a`-like description of the host.
    pub sys: String,
    /// Hostname (not in Codis).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub hostname: String,
}

impl TopomRecord {
    /// A one-line description for "already owned by ..." messages.
    pub fn describe(&self) -> String {
        format!(
            "{} (pid {} on {}, started {})",
            self.admin_addr,
            self.pid,
            if self.hostname.is_empty() {
                "?"
            } else {
                &self.hostname
            },
            self.start_time
        )
    }
}
