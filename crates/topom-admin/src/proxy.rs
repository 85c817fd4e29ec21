//! `proxy`: the registered proxies and their slot-table streams.

use clap::Subcommand;

use super::client::{Ctx, call};
use super::error::CliError;
use super::output::{Table, enum_label, fmt_time, or_dash};
use crate::pb;

/// Subcommands of `proxy`.
#[derive(Debug, Subcommand)]
pub enum ProxyCmd {
    /// Every registered proxy with its stream status.
    List,
    /// Add an unmodified codis-proxy by its admin address; topom then drives it.
    #[command(name = "add-codis")]
    AddCodis {
        /// The codis-proxy's admin address (its `admin_addr`), host:port.
        #[arg(value_name = "ADMIN_ADDR")]
        admin_addr: String,
    },
    /// Unregister a proxy.
    Remove {
        /// The proxy's token.
        #[arg(value_name = "TOKEN")]
        proxy: String,
        /// Remove it even if it is connected and cannot be told to stop.
        #[arg(long)]
        force: bool,
    },
    /// Send a proxy a full slot-table snapshot.
    Reinit {
        /// The proxy's token.
        #[arg(value_name = "TOKEN")]
        proxy: String,
    },
}

/// Runs a `proxy` subcommand.
pub async fn run(ctx: &Ctx, cmd: ProxyCmd) -> Result<(), CliError> {
    match cmd {
        ProxyCmd::List => {
            let resp = call!(ctx, list_proxies, pb::ListProxiesRequest {})?;
            ctx.out.emit(&resp, |r| render_proxies(&r.proxies))
        }
        ProxyCmd::AddCodis { admin_addr } => {
            let req = pb::AddCodisProxyRequest {
                admin_addr: admin_addr.clone(),
            };
            let resp = call!(ctx, add_codis_proxy, req)?;
            ctx.out.emit(&resp, |r| {
                let p = r.proxy.clone().unwrap_or_default();
                format!(
                    "added codis-proxy {} (id {}, clients at {}, admin {admin_addr})",
                    p.token, p.id, p.proxy_addr
                )
            })
        }
        ProxyCmd::Remove {
            proxy: token,
            force,
        } => {
            let req = pb::RemoveProxyRequest {
                token: token.clone(),
                force,
            };
            let resp = call!(ctx, remove_proxy, req)?;
            ctx.out.emit(&resp, |_| format!("removed proxy {token}"))
        }
        ProxyCmd::Reinit { proxy: token } => {
            let req = pb::ReinitProxyRequest {
                token: token.clone(),
            };
            let resp = call!(ctx, reinit_proxy, req)?;
            ctx.out.emit(&resp, |r| {
                format!(
                    "sent proxy {token} a full slot table (revision {})",
                    r.revision
                )
            })
        }
    }
}

/// Proxies as a table.
fn render_proxies(proxies: &[pb::Proxy]) -> String {
    if proxies.is_empty() {
        return "no proxies".to_string();
    }
    let mut table = Table::new(&[
        "ID",
        "TOKEN",
        "PROXY",
        "ADMIN",
        "DC",
        "LEASE",
        "STREAM",
        "APPLIED",
        "HEARTBEAT",
        "LAST NACK",
    ])
    .right_align(&[0, 7]);
    for p in proxies {
        let status = p.status.clone().unwrap_or_default();
        let lease = pb::LeaseState::try_from(status.lease_state).map_or_else(
            |_| status.lease_state.to_string(),
            |l| match l {
                pb::LeaseState::Unspecified => "-".to_string(),
                l => enum_label(l.as_str_name(), "LEASE_STATE_"),
            },
        );
        table.row([
            p.id.to_string(),
            p.token.clone(),
            or_dash(&p.proxy_addr),
            or_dash(&p.admin_addr),
            or_dash(&p.datacenter),
            lease,
            stream(p, &status),
            status.applied_revision.to_string(),
            fmt_time(status.last_heartbeat.as_ref()),
            or_dash(if status.last_nack.is_empty() {
                &status.last_error
            } else {
                &status.last_nack
            }),
        ]);
    }
    table.render()
}

/// A topom proxy's stream, or what topom's driver sees of a codis-proxy.
fn stream(p: &pb::Proxy, status: &pb::ProxyStatus) -> String {
    if p.kind == pb::ProxyKind::Codis as i32 {
        let state = pb::CodisProxyState::try_from(status.codis_state).map_or("?", |s| match s {
            pb::CodisProxyState::Unspecified => "-",
            pb::CodisProxyState::Online => "online",
            pb::CodisProxyState::Offline => "offline",
            pb::CodisProxyState::Unreachable => "unreachable",
        });
        return format!("codis:{state}");
    }
    if status.connected { "connected" } else { "-" }.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxies_table() {
        let p = pb::Proxy {
            id: 1,
            token: "t1".into(),
            proxy_addr: "h:19000".into(),
            status: Some(pb::ProxyStatus {
                lease_state: pb::LeaseState::Live as i32,
                applied_revision: 12,
                connected: true,
                ..Default::default()
            }),
            ..Default::default()
        };
        let text = render_proxies(&[p]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[1],
            " 1  t1     h:19000  -      -   live   connected       12  -          -"
        );
        assert_eq!(render_proxies(&[]), "no proxies");
    }
}
