//! Helpers of the conformance cases: owner records, byte values, and a product
//! with every kind of record to round-trip.

use topom::model::{
    Group, GroupServer, PromoteState, Promoting, Proxy, Sentinel, ServerKind, SlotAction,
    SlotActionConfig, SlotMapping, SlotState, SyncAction, SyncState, TopomRecord,
};
use topom::store::{ProductData, StoreError};

use crate::PRODUCT;

pub fn owner(admin_addr: &str, pid: u32) -> TopomRecord {
    TopomRecord {
        token: format!("token-{pid}"),
        start_time: "2026-11-26T12:00:00Z".into(),
        admin_addr: admin_addr.into(),
        product_name: PRODUCT.into(),
        pid,
        pwd: "/srv/topom".into(),
        sys: "Linux test".into(),
        hostname: "host-a".into(),
    }
}

pub fn bytes(s: &str) -> Option<Vec<u8>> {
    Some(s.as_bytes().to_vec())
}

pub fn names(entries: &[(String, Vec<u8>)]) -> Vec<&str> {
    entries.iter().map(|(k, _)| k.as_str()).collect()
}

#[track_caller]
pub fn assert_locked(result: Result<impl Sized, StoreError>, admin_addr: &str, pid: u32) {
    match result {
        Err(e @ StoreError::Locked { .. }) => {
            let text = e.to_string();
            let StoreError::Locked { product, owner } = e else {
                unreachable!()
            };
            assert_eq!(product, PRODUCT);
            assert!(
                owner.contains(admin_addr),
                "owner {owner:?} lacks {admin_addr}"
            );
            assert!(
                owner.contains(&pid.to_string()),
                "owner {owner:?} lacks pid {pid}"
            );
            assert!(text.contains(admin_addr), "{text}");
        }
        Err(e) => panic!("expected Locked, got {e}"),
        Ok(_) => panic!("expected Locked, but the lock was granted"),
    }
}

/// A product with every kind of record and every optional part filled in.
pub fn sample_product() -> ProductData {
    let mut slots: Vec<SlotMapping> = (0..1024u32)
        .map(|id| SlotMapping {
            id,
            group_id: if id < 512 { 1 } else { 2 },
            action: None,
        })
        .collect();
    slots[3].action = Some(SlotAction {
        index: 1,
        state: SlotState::Pending,
        target_id: 2,
    });
    slots[4].action = Some(SlotAction {
        index: 2,
        state: SlotState::Migrating,
        target_id: 2,
    });
    slots[600].action = Some(SlotAction {
        index: 3,
        state: SlotState::Prepared,
        target_id: 1,
    });
    slots[1000] = SlotMapping::offline(1000);

    let mut replica = GroupServer::new("127.0.0.1:6380", "dc2", ServerKind::CodisServer);
    replica.replica_group = true;
    replica.action = Some(SyncAction {
        index: 7,
        state: SyncState::SyncedFailed,
        error: "MASTER aborted".into(),
    });
    let mut g1 = Group::new(1);
    g1.servers = vec![
        GroupServer::new("127.0.0.1:6379", "dc1", ServerKind::Redis),
        replica,
    ];
    let mut g2 = Group::new(2);
    let mut pending = GroupServer::new("127.0.0.1:6382", "", ServerKind::Unknown);
    pending.action = Some(SyncAction {
        index: 1,
        state: SyncState::Pending,
        error: String::new(),
    });
    g2.servers = vec![
        GroupServer::new("127.0.0.1:6381", "", ServerKind::Redis),
        pending,
    ];
    g2.promoting = Some(Promoting {
        index: 1,
        state: PromoteState::Prepared,
    });
    g2.out_of_sync = true;

    let proxy = |id: u32, token: &str| Proxy {
        id,
        token: token.into(),
        start_time: "2026-11-26T12:00:00Z".into(),
        admin_addr: format!("10.0.0.{id}:11080"),
        proto_type: "tcp4".into(),
        proxy_addr: format!("10.0.0.{id}:19000"),
        jodis_path: String::new(),
        product_name: PRODUCT.into(),
        pid: 1000 + id,
        pwd: "/srv/proxy".into(),
        sys: "Linux".into(),
        hostname: format!("proxy-{id}"),
        datacenter: "dc1".into(),
        version: "0.1.0".into(),
        kind: topom::model::ProxyKind::Topom,
    };
    ProductData {
        slots,
        groups: [(1, g1), (2, g2)].into(),
        proxies: [
            ("aaa".to_owned(), proxy(1, "aaa")),
            ("bbb".to_owned(), proxy(2, "bbb")),
        ]
        .into(),
        sentinel: Sentinel {
            servers: vec!["127.0.0.1:26379".into(), "127.0.0.1:26380".into()],
            out_of_sync: true,
        },
        slot_action: SlotActionConfig {
            interval_us: 1500,
            disabled: true,
        },
    }
}

#[track_caller]
pub fn assert_same_product(got: &ProductData, want: &ProductData) {
    assert_eq!(got.slots.len(), want.slots.len());
    for (g, w) in got.slots.iter().zip(&want.slots) {
        assert_eq!(g, w);
    }
    assert_eq!(got.groups, want.groups);
    assert_eq!(got.proxies, want.proxies);
    assert_eq!(got.sentinel, want.sentinel);
    assert_eq!(got.slot_action, want.slot_action);
}
