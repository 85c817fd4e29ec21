//! `sentinel`: the Redis Sentinels that watch the product's masters.

use clap::Subcommand;

use super::client::{Ctx, call};
use super::error::CliError;
use super::output::Table;
use crate::pb;

/// Subcommands of `sentinel`.
#[derive(Debug, Subcommand)]
pub enum SentinelCmd {
    /// The configured sentinels.
    List,
    /// Add a sentinel (it monitors nothing until `sentinel resync`).
    Add {
        /// The sentinel, `host:port`.
        #[arg(value_name = "ADDR")]
        sentinel: String,
    },
    /// Remove a sentinel, first removing this product's masters from it.
    Remove {
        /// The sentinel, `host:port`.
        #[arg(value_name = "ADDR")]
        sentinel: String,
        /// Remove it even if it cannot be cleaned up (e.g. it is down).
        #[arg(long)]
        force: bool,
    },
    /// Make every sentinel monitor exactly this product's non-empty groups.
    Resync,
}

/// Runs a `sentinel` subcommand.
pub async fn run(ctx: &Ctx, cmd: SentinelCmd) -> Result<(), CliError> {
    match cmd {
        SentinelCmd::List => {
            let resp = call!(ctx, list_sentinels, pb::ListSentinelsRequest {})?;
            ctx.out
                .emit(&resp, |r| render_sentinels(r.sentinel.as_ref()))
        }
        SentinelCmd::Add { sentinel: addr } => {
            let resp = call!(
                ctx,
                add_sentinel,
                pb::AddSentinelRequest { addr: addr.clone() }
            )?;
            ctx.out.emit(&resp, |r| {
                format!(
                    "added sentinel {addr}; run `topom-admin sentinel resync` to start monitoring\n{}",
                    render_sentinels(r.sentinel.as_ref())
                )
            })
        }
        SentinelCmd::Remove {
            sentinel: addr,
            force,
        } => {
            let req = pb::RemoveSentinelRequest {
                addr: addr.clone(),
                force,
            };
            let resp = call!(ctx, remove_sentinel, req)?;
            ctx.out.emit(&resp, |r| {
                format!(
                    "removed sentinel {addr}\n{}",
                    render_sentinels(r.sentinel.as_ref())
                )
            })
        }
        SentinelCmd::Resync => {
            let resp = call!(ctx, resync_sentinels, pb::ResyncSentinelsRequest {})?;
            ctx.out.emit(&resp, |r| {
                format!(
                    "sentinels resynced\n{}",
                    render_sentinels(r.sentinel.as_ref())
                )
            })
        }
    }
}

/// The sentinel list, with a hint when a resync is advised.
fn render_sentinels(s: Option<&pb::Sentinel>) -> String {
    let Some(s) = s.filter(|s| !s.servers.is_empty()) else {
        return "no sentinels".to_string();
    };
    let mut table = Table::new(&["SENTINEL"]);
    for addr in &s.servers {
        table.row([addr.as_str()]);
    }
    let mut text = table.render();
    if s.out_of_sync {
        text.push_str("out of sync: run `topom-admin sentinel resync`\n");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_text() {
        assert_eq!(render_sentinels(None), "no sentinels");
        let s = pb::Sentinel {
            servers: vec!["h:26379".into()],
            out_of_sync: true,
        };
        assert_eq!(
            render_sentinels(Some(&s)),
            "SENTINEL\nh:26379\nout of sync: run `topom-admin sentinel resync`\n"
        );
    }
}
