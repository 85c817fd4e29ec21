//! The product's Sentinels (`/codis3/<product>/sentinel`).

use serde::{Deserialize, Serialize};

/// The configured Sentinels; a missing record reads as empty.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Sentinel {
    /// Sentinel addresses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub servers: Vec<String>,
    /// Monitoring may not match the groups; a resync is advised.
    #[serde(default)]
    pub out_of_sync: bool,
}
