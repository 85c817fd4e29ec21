//! GetStats narrowed to groups, servers and fields; unknown groups NOT_FOUND.

use tonic::Code;
use topom::pb;

use crate::{common, two_groups};

async fn get_stats(
    c: &mut common::topom::Client,
    r: pb::GetStatsRequest,
) -> Result<pb::StatsSnapshot, tonic::Status> {
    c.get_stats(r).await.map(|r| r.into_inner().stats.unwrap())
}

#[tokio::test]
async fn get_stats_filters_groups_servers_and_fields() {
    let (a, b, t) = two_groups("1h").await;
    let mut c = t.client().await;
    c.refresh_redis_stats(pb::RefreshRedisStatsRequest::default())
        .await
        .unwrap();

    let whole = get_stats(&mut c, pb::GetStatsRequest::default())
        .await
        .unwrap();
    assert_eq!(whole.groups.len(), 2);
    let fields = &whole.groups[1].servers[0].stats.as_ref().unwrap().fields;
    assert!(fields.contains_key("redis_version"), "{fields:?}");

    let narrow = get_stats(
        &mut c,
        pb::GetStatsRequest {
            group_ids: vec![2],
            addrs: vec![],
            fields: vec!["used_memory".into()],
        },
    )
    .await
    .unwrap();
    assert_eq!(narrow.round, whole.round);
    assert_eq!(narrow.slots.len(), 1024, "the slots stay whole");
    assert_eq!(narrow.groups.len(), 1);
    let s = &narrow.groups[0].servers[0];
    assert_eq!(s.addr, b.addr());
    let st = s.stats.as_ref().unwrap();
    assert_eq!(st.fields.keys().collect::<Vec<_>>(), ["used_memory"]);
    assert!(st.summary.as_ref().unwrap().used_memory > 0);

    let by_addr = get_stats(
        &mut c,
        pb::GetStatsRequest {
            addrs: vec![a.addr()],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let addrs: Vec<&str> = by_addr
        .groups
        .iter()
        .flat_map(|g| g.servers.iter().map(|s| s.addr.as_str()))
        .collect();
    assert_eq!(addrs, [a.addr()]);

    let e = get_stats(
        &mut c,
        pb::GetStatsRequest {
            group_ids: vec![9],
            ..Default::default()
        },
    )
    .await
    .unwrap_err();
    assert_eq!(e.code(), Code::NotFound);
    assert!(e.message().contains("group-9"), "{}", e.message());
}
