//! The proxy view of a slot (reference §4.1 and §4.5).
//!
//! Pure functions of a snapshot: no I/O, no async. Name resolution is the caller's job
//! (it passes a `resolve` closure backed by its own per-snapshot cache), so this module
//! stays deterministic and testable.

use std::collections::BTreeMap;
use std::net::IpAddr;

use crate::model::{
    ForwardMethod, Group, GroupServer, PromoteState, ReplicaGroups, SlotMapping, SlotState,
    SlotView,
};

/// Where a proxy sits, for ordering replica groups (§4.5).
///
/// Passing no `ProxyPlace` at all means "no proxy given": every replica then lands in
/// the last bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProxyPlace<'a> {
    /// The proxy's datacenter label.
    pub datacenter: &'a str,
    /// The IP of the proxy's admin host; `None` when it did not resolve.
    pub host_ip: Option<IpAddr>,
}

/// Computes how a proxy must serve slot `m` (§4.1 table + §4.5 replica groups).
///
/// `groups` is keyed by group id. `resolve` maps the host part of a server's
/// `host:port` (see [`addr_host`]) to an IP; it is only called for servers that could
/// fall into bucket 0 (same datacenter as a proxy whose own host resolved).
pub fn slot_view(
    m: &SlotMapping,
    groups: &BTreeMap<u32, Group>,
    method: ForwardMethod,
    proxy: Option<&ProxyPlace<'_>>,
    resolve: &dyn Fn(&str) -> Option<IpAddr>,
) -> SlotView {
    let locked = |gid: u32| is_group_locked(groups, gid);
    let mut view = SlotView {
        id: m.id,
        // Codis sends the configured method for every slot, not only migrating ones.
        forward_method: Some(method),
        ..SlotView::default()
    };
    match m.action {
        None => {
            serve_from_owner(&mut view, m.group_id, groups, proxy, resolve);
            view.locked = locked(m.group_id);
        }
        Some(a) => match a.state {
            SlotState::Pending => {
                serve_from_owner(&mut view, m.group_id, groups, proxy, resolve);
                view.locked = locked(m.group_id);
            }
            SlotState::Preparing => {
                // Proxies are not locked yet; replicas are withdrawn because the slot
                // is about to move and a replica read could see half-moved data.
                set_backend(&mut view, groups, m.group_id);
                view.locked = locked(m.group_id);
            }
            SlotState::Prepared => {
                set_backend(&mut view, groups, a.target_id);
                set_migrate_from(&mut view, groups, m.group_id);
                // The barrier: every proxy holds the slot until it sees `migrating`.
                view.locked = true;
            }
            SlotState::Migrating => {
                set_backend(&mut view, groups, a.target_id);
                set_migrate_from(&mut view, groups, m.group_id);
                view.locked = locked(m.group_id) || locked(a.target_id);
            }
            SlotState::Finished => {
                set_backend(&mut view, groups, a.target_id);
                view.locked = locked(a.target_id);
            }
        },
    }
    view
}

/// The views of every slot in `slots`, in the same order (see [`slot_view`]).
pub fn slot_views(
    slots: &[SlotMapping],
    groups: &BTreeMap<u32, Group>,
    method: ForwardMethod,
    proxy: Option<&ProxyPlace<'_>>,
    resolve: &dyn Fn(&str) -> Option<IpAddr>,
) -> Vec<SlotView> {
    slots
        .iter()
        .map(|m| slot_view(m, groups, method, proxy, resolve))
        .collect()
}

/// The host part of a `host:port` address, without IPv6 brackets
/// (`"[::1]:6379"` → `"::1"`). An address without a port is returned whole.
///
/// This is the string [`slot_view`] hands to its `resolve` closure, so callers can
/// pre-resolve or cache by it.
pub fn addr_host(addr: &str) -> &str {
    crate::model::Addr::split(addr).map_or(addr, |(host, _port)| host)
}

/// master(g): index 0 of group g, or "" when the group is missing or empty.
fn master(groups: &BTreeMap<u32, Group>, gid: u32) -> String {
    groups
        .get(&gid)
        .map_or_else(String::new, |g| g.master().to_owned())
}

/// locked(g): only `prepared` locks; `preparing` has not reached the proxies yet and
/// `finished` already published the new master.
fn is_group_locked(groups: &BTreeMap<u32, Group>, gid: u32) -> bool {
    groups
        .get(&gid)
        .and_then(|g| g.promoting)
        .is_some_and(|p| p.state == PromoteState::Prepared)
}

fn set_backend(view: &mut SlotView, groups: &BTreeMap<u32, Group>, gid: u32) {
    // The group id is set even when the address is empty, so a proxy can tell which
    // group an unserved slot belongs to.
    view.backend_addr = master(groups, gid);
    view.backend_addr_group_id = gid;
}

fn set_migrate_from(view: &mut SlotView, groups: &BTreeMap<u32, Group>, gid: u32) {
    view.migrate_from = master(groups, gid);
    view.migrate_from_group_id = gid;
}

/// The idle (or merely queued) case: the owner serves, and its replicas may serve reads.
fn serve_from_owner(
    view: &mut SlotView,
    gid: u32,
    groups: &BTreeMap<u32, Group>,
    proxy: Option<&ProxyPlace<'_>>,
    resolve: &dyn Fn(&str) -> Option<IpAddr>,
) {
    set_backend(view, groups, gid);
    view.replica_groups = replica_groups(groups.get(&gid), proxy, resolve);
}

/// §4.5: the read replicas of a group, bucketed by closeness to the proxy.
fn replica_groups(
    group: Option<&Group>,
    proxy: Option<&ProxyPlace<'_>>,
    resolve: &dyn Fn(&str) -> Option<IpAddr>,
) -> ReplicaGroups {
    let Some(group) = group else {
        return ReplicaGroups::new();
    };
    // A promoting group's membership is about to change, and a lone master has no
    // replicas worth listing (the proxy falls back to the master anyway).
    if group.promoting.is_some() || group.servers.len() <= 1 {
        return ReplicaGroups::new();
    }
    let mut buckets: [Vec<String>; 3] = Default::default();
    for server in group.servers.iter().filter(|s| s.replica_group) {
        buckets[bucket_of(server, proxy, resolve)].push(server.addr.clone());
    }
    buckets.into_iter().filter(|b| !b.is_empty()).collect()
}

/// 0 = same datacenter and same host IP as the proxy, 1 = same datacenter, 2 = the rest.
fn bucket_of(
    server: &GroupServer,
    proxy: Option<&ProxyPlace<'_>>,
    resolve: &dyn Fn(&str) -> Option<IpAddr>,
) -> usize {
    let Some(proxy) = proxy else { return 2 };
    if proxy.datacenter != server.datacenter {
        return 2;
    }
    // As in Codis, a proxy whose own host did not resolve cannot rank by locality at
    // all, so even same-datacenter replicas go last.
    let Some(proxy_ip) = proxy.host_ip else {
        return 2;
    };
    // Canonical form so that 1.2.3.4 and ::ffff:1.2.3.4 count as the same host.
    match resolve(addr_host(&server.addr)) {
        Some(ip) if ip.to_canonical() == proxy_ip.to_canonical() => 0,
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Promoting, ServerKind, SlotAction};
    use std::net::Ipv4Addr;

    const SRC: u32 = 1;
    const DST: u32 = 2;
    const SRC_MASTER: &str = "10.0.0.1:6379";
    const DST_MASTER: &str = "10.0.0.2:6379";

    fn server(addr: &str, dc: &str, replica: bool) -> GroupServer {
        let mut s = GroupServer::new(addr, dc, ServerKind::CodisServer);
        s.replica_group = replica;
        s
    }

    fn group(id: u32, servers: Vec<GroupServer>, promote: Option<PromoteState>) -> Group {
        let mut g = Group::new(id);
        g.servers = servers;
        g.promoting = promote.map(|state| Promoting { index: 1, state });
        g
    }

    fn mapping(id: u32, group_id: u32, action: Option<(SlotState, u32)>) -> SlotMapping {
        SlotMapping {
            id,
            group_id,
            action: action.map(|(state, target_id)| SlotAction {
                index: 1,
                state,
                target_id,
            }),
        }
    }

    fn no_dns(_: &str) -> Option<IpAddr> {
        None
    }

    fn ip(a: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, 0, 0, a))
    }

    /// Resolves "10.0.0.N" literally, like a resolver would for IP hosts.
    fn literal_dns(host: &str) -> Option<IpAddr> {
        host.parse().ok()
    }

    fn view(
        m: &SlotMapping,
        groups: &BTreeMap<u32, Group>,
        proxy: Option<&ProxyPlace<'_>>,
    ) -> SlotView {
        slot_view(m, groups, ForwardMethod::SemiAsync, proxy, &literal_dns)
    }

    /// Codis TestSlotState: 6 slot states × 4 source × 4 target promote states.
    #[test]
    fn slot_state_table_is_exhaustive() {
        let slot_states = [
            None,
            Some(SlotState::Pending),
            Some(SlotState::Preparing),
            Some(SlotState::Prepared),
            Some(SlotState::Migrating),
            Some(SlotState::Finished),
        ];
        let promotes = [
            None,
            Some(PromoteState::Preparing),
            Some(PromoteState::Prepared),
            Some(PromoteState::Finished),
        ];
        let mut cases = 0;
        for state in slot_states {
            for src_promote in promotes {
                for dst_promote in promotes {
                    let groups = BTreeMap::from([
                        (
                            SRC,
                            group(
                                SRC,
                                vec![
                                    server(SRC_MASTER, "", true),
                                    server("10.0.0.11:6379", "", true),
                                ],
                                src_promote,
                            ),
                        ),
                        (
                            DST,
                            group(
                                DST,
                                vec![
                                    server(DST_MASTER, "", true),
                                    server("10.0.0.12:6379", "", true),
                                ],
                                dst_promote,
                            ),
                        ),
                    ]);
                    let m = mapping(7, SRC, state.map(|s| (s, DST)));
                    let got = view(&m, &groups, None);

                    // The §4.1 table, restated independently of the implementation.
                    let src_locked = src_promote == Some(PromoteState::Prepared);
                    let dst_locked = dst_promote == Some(PromoteState::Prepared);
                    let src = (SRC_MASTER, SRC);
                    let dst = (DST_MASTER, DST);
                    let none = ("", 0);
                    let (locked, backend, from, replicas) = match state {
                        None | Some(SlotState::Pending) => {
                            (src_locked, src, none, src_promote.is_none())
                        }
                        Some(SlotState::Preparing) => (src_locked, src, none, false),
                        Some(SlotState::Prepared) => (true, dst, src, false),
                        Some(SlotState::Migrating) => (src_locked || dst_locked, dst, src, false),
                        Some(SlotState::Finished) => (dst_locked, dst, none, false),
                    };
                    let ctx = format!("{state:?} src={src_promote:?} dst={dst_promote:?}");
                    assert_eq!(got.id, 7, "{ctx}");
                    assert_eq!(got.locked, locked, "locked {ctx}");
                    assert_eq!(
                        (got.backend_addr.as_str(), got.backend_addr_group_id),
                        backend,
                        "backend {ctx}"
                    );
                    assert_eq!(
                        (got.migrate_from.as_str(), got.migrate_from_group_id),
                        from,
                        "migrate_from {ctx}"
                    );
                    assert_eq!(got.forward_method, Some(ForwardMethod::SemiAsync), "{ctx}");
                    assert_eq!(!got.replica_groups.is_empty(), replicas, "replicas {ctx}");
                    cases += 1;
                }
            }
        }
        assert_eq!(cases, 6 * 4 * 4);
    }

    #[test]
    fn forward_method_is_the_configured_one_for_every_slot() {
        let groups = BTreeMap::from([(1, group(1, vec![server(SRC_MASTER, "", false)], None))]);
        let slots = [mapping(0, 1, None), mapping(1, 0, None)];
        let views = slot_views(&slots, &groups, ForwardMethod::Sync, None, &no_dns);
        assert_eq!(views.len(), 2);
        assert!(
            views
                .iter()
                .all(|v| v.forward_method == Some(ForwardMethod::Sync))
        );
        assert_eq!(views[1].id, 1);
    }

    fn three_server_group(promote: Option<PromoteState>) -> BTreeMap<u32, Group> {
        BTreeMap::from([(
            1,
            group(
                1,
                vec![
                    server("10.0.0.1:6379", "dc1", true),
                    server("10.0.0.2:6379", "dc1", true),
                    server("10.0.0.3:6379", "dc2", true),
                    server("10.0.0.4:6379", "dc1", false),
                ],
                promote,
            ),
        )])
    }

    fn strings(buckets: &[&[&str]]) -> ReplicaGroups {
        buckets
            .iter()
            .map(|b| b.iter().map(|s| s.to_string()).collect())
            .collect()
    }

    #[test]
    fn no_proxy_puts_every_flagged_server_in_the_last_bucket() {
        let groups = three_server_group(None);
        let v = view(&mapping(0, 1, None), &groups, None);
        assert_eq!(
            v.replica_groups,
            strings(&[&["10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"]])
        );
    }

    #[test]
    fn same_datacenter_same_ip_first_then_same_datacenter_then_the_rest() {
        let groups = three_server_group(None);
        let proxy = ProxyPlace {
            datacenter: "dc1",
            host_ip: Some(ip(2)),
        };
        let v = view(&mapping(0, 1, None), &groups, Some(&proxy));
        assert_eq!(
            v.replica_groups,
            strings(&[&["10.0.0.2:6379"], &["10.0.0.1:6379"], &["10.0.0.3:6379"]])
        );
        // A pending slot is still served by its owner, so it keeps its replicas.
        let pending = view(
            &mapping(0, 1, Some((SlotState::Pending, 2))),
            &groups,
            Some(&proxy),
        );
        assert_eq!(pending.replica_groups, v.replica_groups);
    }

    #[test]
    fn ipv4_mapped_ipv6_counts_as_the_same_host() {
        let groups = three_server_group(None);
        let proxy = ProxyPlace {
            datacenter: "dc1",
            host_ip: Some("::ffff:10.0.0.1".parse().unwrap()),
        };
        let v = view(&mapping(0, 1, None), &groups, Some(&proxy));
        assert_eq!(v.replica_groups[0], vec!["10.0.0.1:6379".to_string()]);
    }

    #[test]
    fn same_datacenter_other_or_unresolvable_ip_is_bucket_one() {
        let groups = three_server_group(None);
        let proxy = ProxyPlace {
            datacenter: "dc1",
            host_ip: Some(ip(9)),
        };
        let v = view(&mapping(0, 1, None), &groups, Some(&proxy));
        assert_eq!(
            v.replica_groups,
            strings(&[&["10.0.0.1:6379", "10.0.0.2:6379"], &["10.0.0.3:6379"]])
        );
        // Servers that do not resolve cannot be "the same host": bucket 1, not 0.
        let v = slot_view(
            &mapping(0, 1, None),
            &groups,
            ForwardMethod::Sync,
            Some(&proxy),
            &no_dns,
        );
        assert_eq!(
            v.replica_groups,
            strings(&[&["10.0.0.1:6379", "10.0.0.2:6379"], &["10.0.0.3:6379"]])
        );
    }

    #[test]
    fn unresolved_proxy_host_ranks_nothing() {
        let groups = three_server_group(None);
        let proxy = ProxyPlace {
            datacenter: "dc1",
            host_ip: None,
        };
        let v = view(&mapping(0, 1, None), &groups, Some(&proxy));
        assert_eq!(
            v.replica_groups,
            strings(&[&["10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"]])
        );
    }

    #[test]
    fn other_datacenter_is_bucket_two_and_empty_buckets_are_dropped() {
        let groups = three_server_group(None);
        let proxy = ProxyPlace {
            datacenter: "dc2",
            host_ip: Some(ip(3)),
        };
        let v = view(&mapping(0, 1, None), &groups, Some(&proxy));
        // Bucket 1 (dc2, other IP) is empty and must not appear as `[]`.
        assert_eq!(
            v.replica_groups,
            strings(&[&["10.0.0.3:6379"], &["10.0.0.1:6379", "10.0.0.2:6379"]])
        );
    }

    #[test]
    fn promoting_group_has_no_replicas() {
        for state in [
            PromoteState::Preparing,
            PromoteState::Prepared,
            PromoteState::Finished,
        ] {
            let groups = three_server_group(Some(state));
            let v = view(&mapping(0, 1, None), &groups, None);
            assert!(v.replica_groups.is_empty(), "{state:?}");
        }
    }

    #[test]
    fn single_server_group_has_no_replicas() {
        let groups = BTreeMap::from([(1, group(1, vec![server(SRC_MASTER, "", true)], None))]);
        let v = view(&mapping(0, 1, None), &groups, None);
        assert_eq!(v.backend_addr, SRC_MASTER);
        assert!(v.replica_groups.is_empty());
    }

    #[test]
    fn missing_target_group_gives_an_empty_backend_but_keeps_the_id() {
        let groups = three_server_group(None);
        for state in [
            SlotState::Prepared,
            SlotState::Migrating,
            SlotState::Finished,
        ] {
            let v = view(&mapping(0, 1, Some((state, 42))), &groups, None);
            assert_eq!(v.backend_addr, "", "{state:?}");
            assert_eq!(v.backend_addr_group_id, 42, "{state:?}");
        }
        let v = view(
            &mapping(0, 1, Some((SlotState::Migrating, 42))),
            &groups,
            None,
        );
        assert_eq!(
            (v.migrate_from.as_str(), v.migrate_from_group_id),
            ("10.0.0.1:6379", 1)
        );
    }

    #[test]
    fn offline_slot_has_an_empty_backend() {
        let groups = three_server_group(None);
        let v = view(&mapping(5, 0, None), &groups, None);
        assert_eq!(v.backend_addr, "");
        assert_eq!(v.backend_addr_group_id, 0);
        assert!(v.replica_groups.is_empty());
        assert!(!v.locked);
        // A slot migrating out of "offline" has nothing to migrate from.
        let v = view(
            &mapping(5, 0, Some((SlotState::Migrating, 1))),
            &groups,
            None,
        );
        assert_eq!((v.migrate_from.as_str(), v.migrate_from_group_id), ("", 0));
        assert_eq!(v.backend_addr, "10.0.0.1:6379");
    }

    #[test]
    fn empty_group_has_an_empty_backend() {
        let groups = BTreeMap::from([(3, Group::new(3))]);
        let v = view(&mapping(0, 3, None), &groups, None);
        assert_eq!((v.backend_addr.as_str(), v.backend_addr_group_id), ("", 3));
    }

    #[test]
    fn addr_host_strips_port_and_brackets() {
        assert_eq!(addr_host("10.0.0.1:6379"), "10.0.0.1");
        assert_eq!(addr_host("redis-1:6379"), "redis-1");
        assert_eq!(addr_host("[::1]:6379"), "::1");
        assert_eq!(addr_host("redis-1"), "redis-1");
    }

    #[test]
    fn resolve_is_asked_for_the_host_part_only() {
        let groups = three_server_group(None);
        let proxy = ProxyPlace {
            datacenter: "dc1",
            host_ip: Some(ip(1)),
        };
        let asked = std::cell::RefCell::new(Vec::new());
        let resolve = |host: &str| {
            asked.borrow_mut().push(host.to_owned());
            literal_dns(host)
        };
        slot_view(
            &mapping(0, 1, None),
            &groups,
            ForwardMethod::Sync,
            Some(&proxy),
            &resolve,
        );
        // Only flagged same-datacenter servers need resolving; dc2 and unflagged do not.
        assert_eq!(*asked.borrow(), vec!["10.0.0.1", "10.0.0.2"]);
    }
}
