//! The proxy RPCs: the registered proxies with their lease status, adding an
//! unmodified codis-proxy, removing a proxy, and sending one a full snapshot of
//! the table next (ReinitProxy).

use tonic::Status;

use crate::coordinator::Coordinator;
use crate::grpc::convert;
use crate::pb;

pub(super) fn list_proxies(c: &Coordinator) -> pb::ListProxiesResponse {
    let mut proxies: Vec<pb::Proxy> = c
        .proxies()
        .values()
        .map(|p| convert::proxy_with_status(p, &c.proxy_status(&p.token)))
        .collect();
    proxies.sort_by_key(|p| p.id);
    pb::ListProxiesResponse { proxies }
}

pub(super) async fn add_codis_proxy(
    c: &Coordinator,
    r: pb::AddCodisProxyRequest,
) -> Result<pb::AddCodisProxyResponse, Status> {
    let p = c.add_codis_proxy(&r.admin_addr).await?;
    let st = c.proxy_status(&p.token);
    Ok(pb::AddCodisProxyResponse {
        proxy: Some(convert::proxy_with_status(&p, &st)),
    })
}

pub(super) async fn remove_proxy(
    c: &Coordinator,
    r: pb::RemoveProxyRequest,
) -> Result<pb::RemoveProxyResponse, Status> {
    c.remove_proxy(&r.token, r.force).await?;
    Ok(pb::RemoveProxyResponse {})
}

pub(super) fn reinit_proxy(
    c: &Coordinator,
    r: pb::ReinitProxyRequest,
) -> Result<pb::ReinitProxyResponse, Status> {
    let revision = c.reinit_proxy(&r.token)?;
    Ok(pb::ReinitProxyResponse { revision })
}
