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
            if status.connected { "connected" } else { "-" }.to_string(),
            status.applied_revision.to_string(),
            fmt_time(status.last_heartbeat.as_ref()),
            or_dash(&status.last_nack),
        ]);
    }
    table.render()
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
