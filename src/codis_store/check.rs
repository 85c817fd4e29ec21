//! The checks of an import: those `codis-admin --config-restore` makes, and
//! more. Pure functions of what was read; every problem is reported, so one dry
//! run shows all there is to fix.

use std::collections::{BTreeMap, BTreeSet};

use super::{Problem, Source};
use crate::model::{
    Group, MAX_GROUP_ID, MAX_SLOTS, ServerKind, SlotMapping, validate_addr, validate_product_name,
};
use crate::store::{ProductData, keys};

/// The product as it would be written, and what stops it.
#[derive(Debug, Clone)]
pub struct Checked {
    /// What the import writes (only meaningful when `problems` is empty).
    pub data: ProductData,
    /// Everything wrong, in source order.
    pub problems: Vec<Problem>,
}

/// Checks `src` as product `product` and builds the records to write.
pub fn check(src: &Source, product: &str) -> Checked {
    let mut problems = src.problems.clone();
    if let Err(e) = validate_product_name(product) {
        problems.push(Problem::new("product", e));
    }
    let groups = check_groups(src, product, &mut problems);
    let slots = check_slots(src, product, &groups, &mut problems);
    let proxies = check_proxies(src, product, &mut problems);
    let mut sentinel = src
        .sentinel
        .as_ref()
        .map(|s| s.value.clone())
        .unwrap_or_default();
    if let Some(s) = &src.sentinel {
        let mut seen = BTreeSet::new();
        for addr in &s.value.servers {
            if let Err(e) = validate_addr(addr) {
                problems.push(Problem::new(&s.at, format!("sentinel {addr:?}: {e}")));
            } else if !seen.insert(addr.as_str()) {
                problems.push(Problem::new(
                    &s.at,
                    format!("sentinel {addr} is listed twice"),
                ));
            }
        }
        // Whether Codis's sentinels match its groups is unknown here: topom resyncs.
        sentinel.out_of_sync = sentinel.out_of_sync || !sentinel.servers.is_empty();
    }
    if groups.is_empty() && slots.iter().all(|m| m.group_id == 0) && problems.is_empty() {
        problems.push(Problem::new(
            &src.describe,
            format!("nothing to import: product {product:?} has no groups and no assigned slots"),
        ));
    }
    Checked {
        data: ProductData {
            slots,
            groups,
            proxies,
            sentinel,
            slot_action: Default::default(),
        },
        problems,
    }
}

fn check_groups(src: &Source, product: &str, problems: &mut Vec<Problem>) -> BTreeMap<u32, Group> {
    let mut groups = BTreeMap::new();
    // Server address → the group that has it, to find one server in two groups.
    let mut owner: BTreeMap<String, u32> = BTreeMap::new();
    for rec in &src.groups {
        let g = &rec.value;
        let at = &rec.at;
        if g.id == 0 || g.id > MAX_GROUP_ID {
            problems.push(Problem::new(
                at,
                format!("group id {} is out of range 1..{MAX_GROUP_ID}", g.id),
            ));
            continue;
        }
        if let Some(key) = &rec.key
            && *key != keys::group(product, g.id)
        {
            problems.push(Problem::new(
                at,
                format!(
                    "the record says group {} but is stored under another name",
                    g.id
                ),
            ));
        }
        if groups.contains_key(&g.id) {
            problems.push(Problem::new(at, format!("group {} is listed twice", g.id)));
            continue;
        }
        if let Some(p) = g.promoting {
            problems.push(Problem::new(
                at,
                format!(
                    "group {} is promoting server {} ({}): finish it on the codis-dashboard first",
                    g.id,
                    p.index,
                    p.state.as_str()
                ),
            ));
        }
        let mut group = g.clone();
        for s in &mut group.servers {
            if let Err(e) = validate_addr(&s.addr) {
                problems.push(Problem::new(
                    at,
                    format!("group {} server {:?}: {e}", g.id, s.addr),
                ));
            }
            match owner.insert(s.addr.clone(), g.id) {
                Some(other) if other == g.id => problems.push(Problem::new(
                    at,
                    format!("server {} is listed twice in group {}", s.addr, g.id),
                )),
                Some(other) => problems.push(Problem::new(
                    at,
                    format!(
                        "server {} is in group {other} and in group {}",
                        s.addr, g.id
                    ),
                )),
                None => {}
            }
            // codis-dashboard admits a server only if it answers SLOTSINFO, so every
            // server in a Codis store is a codis-server: topom migrates with the
            // slot commands.
            if s.kind == ServerKind::Unknown {
                s.kind = ServerKind::CodisServer;
            }
        }
        groups.insert(g.id, group);
    }
    groups
}

fn check_slots(
    src: &Source,
    product: &str,
    groups: &BTreeMap<u32, Group>,
    problems: &mut Vec<Problem>,
) -> Vec<SlotMapping> {
    let mut slots: Vec<SlotMapping> = (0..MAX_SLOTS as u32).map(SlotMapping::offline).collect();
    let mut seen = BTreeSet::new();
    let usable =
        |gid: u32, what: &str, at: &str, problems: &mut Vec<Problem>| match groups.get(&gid) {
            None => problems.push(Problem::new(
                at,
                format!("{what} group {gid}, which does not exist"),
            )),
            Some(g) if g.servers.is_empty() => problems.push(Problem::new(
                at,
                format!("{what} group {gid}, which has no servers"),
            )),
            Some(_) => {}
        };
    for rec in &src.slots {
        let m = &rec.value;
        let at = &rec.at;
        if m.id as usize >= MAX_SLOTS {
            problems.push(Problem::new(
                at,
                format!("slot id {} is out of range 0..{}", m.id, MAX_SLOTS - 1),
            ));
            continue;
        }
        if let Some(key) = &rec.key
            && *key != keys::slot(product, m.id)
        {
            problems.push(Problem::new(
                at,
                format!(
                    "the record says slot {} but is stored under another name",
                    m.id
                ),
            ));
        }
        if !seen.insert(m.id) {
            problems.push(Problem::new(at, format!("slot {} is listed twice", m.id)));
            continue;
        }
        if m.group_id != 0 {
            usable(
                m.group_id,
                &format!("slot {} belongs to", m.id),
                at,
                problems,
            );
        }
        if let Some(a) = m.action {
            if a.target_id == m.group_id {
                problems.push(Problem::new(
                    at,
                    format!(
                        "slot {} has an action toward group {}, which it is already in",
                        m.id, a.target_id
                    ),
                ));
            } else {
                usable(
                    a.target_id,
                    &format!("slot {} has an action toward", m.id),
                    at,
                    problems,
                );
            }
        }
        slots[m.id as usize] = m.clone();
    }
    slots
}

fn check_proxies(
    src: &Source,
    product: &str,
    problems: &mut Vec<Problem>,
) -> BTreeMap<String, crate::model::Proxy> {
    let mut proxies = BTreeMap::new();
    let mut ids = BTreeMap::new();
    for rec in &src.proxies {
        let x = &rec.value;
        let at = &rec.at;
        if x.token.is_empty() || x.token.contains('/') {
            problems.push(Problem::new(
                at,
                format!("proxy token {:?} is not usable as a key", x.token),
            ));
            continue;
        }
        if let Some(key) = &rec.key
            && *key != keys::proxy(product, &x.token)
        {
            problems.push(Problem::new(
                at,
                format!("the record's token {} does not match its name", x.token),
            ));
        }
        if !x.product_name.is_empty() && x.product_name != product {
            problems.push(Problem::new(
                at,
                format!(
                    "proxy {} serves product {:?}, not {product:?}",
                    x.token, x.product_name
                ),
            ));
        }
        if let Err(e) = validate_addr(&x.admin_addr) {
            problems.push(Problem::new(
                at,
                format!("proxy {} admin_addr: {e}", x.token),
            ));
        }
        if x.id != 0
            && let Some(other) = ids.insert(x.id, x.token.clone())
        {
            problems.push(Problem::new(
                at,
                format!(
                    "proxy id {} is used by proxy {other} and proxy {}",
                    x.id, x.token
                ),
            ));
        }
        // Every proxy in a Codis store is a codis-proxy: topom drives it over
        // its admin API from the first term on.
        let driven = crate::model::Proxy {
            kind: crate::model::ProxyKind::Codis,
            ..x.clone()
        };
        if proxies.insert(x.token.clone(), driven).is_some() {
            problems.push(Problem::new(
                at,
                format!("proxy {} is listed twice", x.token),
            ));
        }
    }
    proxies
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codis_store::read_dump_text;

    fn dump(json: &str) -> Checked {
        check(&read_dump_text(json.as_bytes(), "d.json"), "demo")
    }

    const GROUPS: &str = r#""group": [
        {"id": 1, "servers": [{"server": "127.0.0.1:7001"}, {"server": "127.0.0.1:7002"}]},
        {"id": 2, "servers": [{"server": "127.0.0.1:7003"}]}
    ]"#;

    #[test]
    fn a_good_dump_builds_1024_slots_and_codis_servers() {
        let c = dump(&format!(
            r#"{{"slots": [{{"id": 0, "group_id": 1, "action": {{}}}},
                          {{"id": 5, "group_id": 1, "action": {{"index": 1, "state": "pending", "target_id": 2}}}}],
                {GROUPS}}}"#
        ));
        assert_eq!(c.problems, []);
        assert_eq!(c.data.slots.len(), MAX_SLOTS);
        assert_eq!(c.data.slots[5].action.unwrap().target_id, 2);
        assert_eq!(c.data.slots[6].group_id, 0);
        assert_eq!(c.data.groups[&1].servers[1].kind, ServerKind::CodisServer);
    }

    #[test]
    fn every_problem_is_named() {
        let c = dump(
            r#"{"slots": [
                {"id": 0, "group_id": 7, "action": {}},
                {"id": 1024, "group_id": 1, "action": {}},
                {"id": 2, "group_id": 1, "action": {"index": 1, "state": "pending", "target_id": 9}},
                {"id": 3, "group_id": 1, "action": {"index": 1, "state": "pending", "target_id": 1}},
                {"id": 4, "group_id": 3, "action": {}},
                {"id": 2, "group_id": 1, "action": {}},
                {"id": -1}
            ],
            "group": [
                {"id": 1, "servers": [{"server": "127.0.0.1:7001"}]},
                {"id": 2, "servers": [{"server": "127.0.0.1:7001"}, {"server": "nonsense"}]},
                {"id": 3, "servers": []},
                {"id": 10000, "servers": []},
                {"id": 4, "servers": [], "promoting": {"index": 1, "state": "preparing"}}
            ],
            "proxy": [{"token": "t1", "product_name": "other", "admin_addr": "127.0.0.1:1"}]
        }"#,
        );
        let text: Vec<String> = c.problems.iter().map(ToString::to_string).collect();
        let want = [
            "d.json: slots[6]: not a valid record",
            "d.json: group[1]: server 127.0.0.1:7001 is in group 1 and in group 2",
            "d.json: group[1]: group 2 server \"nonsense\"",
            "d.json: group[3]: group id 10000 is out of range 1..9999",
            "d.json: group[4]: group 4 is promoting server 1 (preparing)",
            "d.json: slots[0]: slot 0 belongs to group 7, which does not exist",
            "d.json: slots[1]: slot id 1024 is out of range 0..1023",
            "d.json: slots[2]: slot 2 has an action toward group 9, which does not exist",
            "d.json: slots[3]: slot 3 has an action toward group 1, which it is already in",
            "d.json: slots[4]: slot 4 belongs to group 3, which has no servers",
            "d.json: slots[5]: slot 2 is listed twice",
            "d.json: proxy[0]: proxy t1 serves product \"other\", not \"demo\"",
        ];
        for w in want {
            assert!(
                text.iter().any(|t| t.starts_with(w)),
                "missing {w:?} in {text:#?}"
            );
        }
        assert_eq!(text.len(), want.len(), "{text:#?}");
    }

    #[test]
    fn bad_json_and_wrong_shapes() {
        let c = dump("{\"slots\": [");
        assert_eq!(c.problems.len(), 1);
        assert!(
            c.problems[0]
                .to_string()
                .starts_with("d.json: not valid JSON"),
            "{:?}",
            c.problems
        );
        let c = dump(r#"{"slots": {}, "sentinels": []}"#);
        let text: Vec<String> = c.problems.iter().map(ToString::to_string).collect();
        assert!(
            text.iter()
                .any(|t| t.starts_with("d.json: slots: expected a JSON array")),
            "{text:?}"
        );
        assert!(
            text.iter()
                .any(|t| t.starts_with("d.json: sentinels: unknown key")),
            "{text:?}"
        );
    }

    #[tokio::test]
    async fn records_must_match_their_paths() {
        use crate::store::{MetaStore, memory::MemoryStore};
        let raw = MemoryStore::new();
        for (key, text) in [
            (
                "/codis3/demo/group/group-0001",
                r#"{"id": 2, "servers": [{"server": "127.0.0.1:7001"}]}"#,
            ),
            (
                "/codis3/demo/slots/slot-0004",
                r#"{"id": 5, "group_id": 2, "action": {}}"#,
            ),
            (
                "/codis3/demo/proxy/proxy-aaa",
                r#"{"token": "bbb", "admin_addr": "127.0.0.1:1"}"#,
            ),
        ] {
            raw.put(key, text.as_bytes()).await.unwrap();
        }
        let src = crate::codis_store::read::read_store(&raw, "demo", "m".into())
            .await
            .unwrap();
        let text: Vec<String> = check(&src, "demo")
            .problems
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            text,
            [
                "/codis3/demo/group/group-0001: the record says group 2 but is stored under another name",
                "/codis3/demo/slots/slot-0004: the record says slot 5 but is stored under another name",
                "/codis3/demo/proxy/proxy-aaa: the record's token bbb does not match its name",
            ]
        );
    }

    #[test]
    fn an_empty_product_is_refused() {
        let c = dump("{}");
        assert!(
            c.problems[0].what.contains("nothing to import"),
            "{:?}",
            c.problems
        );
    }

    #[test]
    fn sentinels_are_checked() {
        let mut src = read_dump_text(format!("{{{GROUPS}}}").as_bytes(), "d.json");
        src.sentinel = Some(crate::codis_store::Located {
            at: "s".into(),
            key: None,
            value: crate::model::Sentinel {
                servers: vec![
                    "127.0.0.1:26379".into(),
                    "127.0.0.1:26379".into(),
                    "x".into(),
                ],
                out_of_sync: false,
            },
        });
        let c = check(&src, "demo");
        let text: Vec<String> = c.problems.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(text[0].contains("listed twice"), "{text:?}");
        assert!(text[1].contains("sentinel \"x\""), "{text:?}");
        assert!(c.data.sentinel.out_of_sync);
    }
}
