//! `sync`: replication (sync) actions that make a server follow its group's master.

use clap::Subcommand;

use super::client::{Ctx, call};
use super::error::CliError;
use super::output::sync_state;
use crate::pb;

/// Subcommands of `sync`.
#[derive(Debug, Subcommand)]
pub enum SyncCmd {
    /// Queue a sync action: the server will follow its group's master (or
    /// become master if it is first in its group).
    Create {
        /// The group server, `host:port`.
        #[arg(value_name = "ADDR")]
        server: String,
    },
    /// Clear a server's sync action (any state).
    Remove {
        /// The group server, `host:port`.
        #[arg(value_name = "ADDR")]
        server: String,
    },
    /// Run the next pending sync action now and show the result.
    Process,
}

/// Runs a `sync` subcommand.
pub async fn run(ctx: &Ctx, cmd: SyncCmd) -> Result<(), CliError> {
    match cmd {
        SyncCmd::Create { server: addr } => {
            let req = pb::CreateSyncActionRequest { addr: addr.clone() };
            let resp = call!(ctx, create_sync_action, req)?;
            ctx.out.emit(&resp, |r| match &r.action {
                Some(a) => format!(
                    "sync action for {addr}: {} #{}",
                    sync_state(a.state),
                    a.index
                ),
                None => format!("sync action queued for {addr}"),
            })
        }
        SyncCmd::Remove { server: addr } => {
            let req = pb::RemoveSyncActionRequest { addr: addr.clone() };
            let resp = call!(ctx, remove_sync_action, req)?;
            ctx.out
                .emit(&resp, |_| format!("removed the sync action of {addr}"))
        }
        SyncCmd::Process => {
            let resp = call!(ctx, process_sync_action, pb::ProcessSyncActionRequest {})?;
            ctx.out.emit(&resp, render_process)
        }
    }
}

/// One line: what the processed sync action did.
fn render_process(r: &pb::ProcessSyncActionResponse) -> String {
    if !r.processed {
        return "nothing to do".to_string();
    }
    let mut text = format!("{} (group {}): {}", r.addr, r.group_id, sync_state(r.state));
    if !r.error.is_empty() {
        text.push_str(&format!(": {}", r.error));
    } else if r.master_addr.is_empty() {
        text.push_str(", now master");
    } else {
        text.push_str(&format!(", following {}", r.master_addr));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_lines() {
        assert_eq!(
            render_process(&pb::ProcessSyncActionResponse::default()),
            "nothing to do"
        );
        let ok = pb::ProcessSyncActionResponse {
            processed: true,
            addr: "h:2".into(),
            group_id: 1,
            state: pb::SyncActionState::Synced as i32,
            master_addr: "h:1".into(),
            ..Default::default()
        };
        assert_eq!(render_process(&ok), "h:2 (group 1): synced, following h:1");
        let failed = pb::ProcessSyncActionResponse {
            state: pb::SyncActionState::SyncedFailed as i32,
            error: "ERR no".into(),
            ..ok
        };
        assert_eq!(
            render_process(&failed),
            "h:2 (group 1): synced_failed: ERR no"
        );
    }
}
