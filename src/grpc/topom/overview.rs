//! The RPCs that describe this instance: its overview (configuration, model,
//! counts, role, peers), the model alone, and the history of master changes.

use super::TopomService;
use crate::coordinator::Coordinator;
use crate::grpc::convert;
use crate::pb;

pub(super) async fn get_overview(s: &TopomService) -> pb::GetOverviewResponse {
    let c = &s.coordinator;
    let instances = c.instances().await;
    let groups = c.groups();
    pb::GetOverviewResponse {
        version: env!("CARGO_PKG_VERSION").into(),
        config: Some(s.control.config.clone()),
        model: Some(convert::topom_model(c.owner())),
        group_count: groups.len() as u32,
        server_count: groups.values().map(|g| g.servers.len() as u32).sum(),
        proxy_count: c.proxies().len() as u32,
        slots_per_group: c.slots_per_group().into_iter().collect(),
        revision: c.table().revision,
        role: convert::role(c.role()) as i32,
        leader_addr: c.leader_addr().unwrap_or_default(),
        instances: convert::instances(c, instances),
    }
}

pub(super) fn get_model(c: &Coordinator) -> pb::GetModelResponse {
    pb::GetModelResponse {
        model: Some(convert::topom_model(c.owner())),
    }
}

pub(super) fn list_events(c: &Coordinator) -> pb::ListEventsResponse {
    pb::ListEventsResponse {
        events: c.events().iter().map(convert::event).collect(),
    }
}
