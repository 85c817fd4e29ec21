//! The persisted key layout (Codis 3 paths). Golden-tested: changing a path breaks
//! compatibility with existing stores.

/// Root of a product: `/codis3/<product>`.
pub fn product_dir(product: &str) -> String {
    format!("/codis3/{product}")
}

/// The ownership lock / owner record.
pub fn topom(product: &str) -> String {
    format!("/codis3/{product}/topom")
}

/// The directory of slot mappings.
pub fn slots_dir(product: &str) -> String {
    format!("/codis3/{product}/slots")
}

/// One slot mapping: `/codis3/<product>/slots/slot-0042`.
pub fn slot(product: &str, id: u32) -> String {
    format!("/codis3/{product}/slots/slot-{id:04}")
}

/// The directory of groups.
pub fn groups_dir(product: &str) -> String {
    format!("/codis3/{product}/group")
}

/// One group: `/codis3/<product>/group/group-0001`.
pub fn group(product: &str, id: u32) -> String {
    format!("/codis3/{product}/group/group-{id:04}")
}

/// The directory of proxies.
pub fn proxies_dir(product: &str) -> String {
    format!("/codis3/{product}/proxy")
}

/// One proxy: `/codis3/<product>/proxy/proxy-<token>`.
pub fn proxy(product: &str, token: &str) -> String {
    format!("/codis3/{product}/proxy/proxy-{token}")
}

/// The sentinel list.
pub fn sentinel(product: &str) -> String {
    format!("/codis3/{product}/sentinel")
}

/// Slot-action engine settings (topom only; Codis keeps them in memory).
pub fn slot_action_config(product: &str) -> String {
    format!("/codis3/{product}/slot-action")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_paths() {
        assert_eq!(topom("demo"), "/codis3/demo/topom");
        assert_eq!(slot("demo", 0), "/codis3/demo/slots/slot-0000");
        assert_eq!(slot("demo", 1023), "/codis3/demo/slots/slot-1023");
        assert_eq!(group("demo", 1), "/codis3/demo/group/group-0001");
        assert_eq!(group("demo", 9999), "/codis3/demo/group/group-9999");
        assert_eq!(proxy("demo", "abc"), "/codis3/demo/proxy/proxy-abc");
        assert_eq!(sentinel("demo"), "/codis3/demo/sentinel");
        assert_eq!(slots_dir("demo"), "/codis3/demo/slots");
        assert_eq!(groups_dir("demo"), "/codis3/demo/group");
        assert_eq!(proxies_dir("demo"), "/codis3/demo/proxy");
    }
}
