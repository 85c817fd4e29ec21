//! `group`: list, create and remove groups; add, remove and promote servers;
//! resync; replica-group (read) flags.

use clap::{ArgAction, ArgGroup, Subcommand};

use super::client::{Ctx, call};
use super::error::CliError;
use super::output::{Table, enum_label, fmt_pb_duration, or_dash, sync_state};
use super::parse::{parse_group_id, parse_switch};
use crate::pb;

/// Subcommands of `group`.
#[derive(Debug, Subcommand)]
pub enum GroupCmd {
    /// Every group with its servers.
    List,
    /// One group with its servers.
    Show {
        /// The group, 1..9999.
        #[arg(value_parser = parse_group_id)]
        gid: u32,
    },
    /// Create an empty group.
    Create {
        /// The new group's id, 1..9999.
        #[arg(value_parser = parse_group_id)]
        gid: u32,
    },
    /// Remove an empty group.
    Remove {
        /// The group, 1..9999.
        #[arg(value_parser = parse_group_id)]
        gid: u32,
    },
    /// Add a server to a group (master if the group is empty, else a replica).
    ///
    /// The server is probed first (it must be Redis >= 6.2 or codis-server, and
    /// not a server some group already has under another address). A server
    /// added as a replica gets a pending sync action at once: within about a
    /// second topom makes it replicate from the group's master (SLAVEOF, and
    /// CONFIG REWRITE when it has a config file). Watch it with `group list` or
    /// `stats`; pass --no-sync to leave the server alone and run `group resync`
    /// later.
    AddServer {
        /// The group, 1..9999.
        #[arg(value_parser = parse_group_id)]
        gid: u32,
        /// The server, `host:port`.
        #[arg(value_name = "ADDR")]
        server: String,
        /// Datacenter label, used to pick replicas close to a proxy.
        #[arg(long, value_name = "DC")]
        datacenter: Option<String>,
        /// Do not queue the replica's sync action.
        #[arg(long)]
        no_sync: bool,
    },
    /// Remove a server from its group.
    DelServer {
        /// The group, 1..9999.
        #[arg(value_parser = parse_group_id)]
        gid: u32,
        /// The server, `host:port`.
        #[arg(value_name = "ADDR")]
        server: String,
    },
    /// Make a replica the group's master (switchover without losing writes).
    Promote {
        /// The group, 1..9999.
        #[arg(value_parser = parse_group_id)]
        gid: u32,
        /// The replica to promote, `host:port`.
        #[arg(value_name = "ADDR")]
        server: String,
    },
    /// Republish a group's slots to the proxies (or every group's with --all).
    #[command(group(ArgGroup::new("target").required(true).args(["gid", "all"])))]
    Resync {
        /// The group, 1..9999.
        #[arg(value_parser = parse_group_id)]
        gid: Option<u32>,
        /// Resync every group.
        #[arg(long)]
        all: bool,
    },
    /// Let a server serve reads for proxies (on) or stop it (off).
    ReplicaGroup {
        /// The group, 1..9999.
        #[arg(value_parser = parse_group_id)]
        gid: u32,
        /// The server, `host:port`.
        #[arg(value_name = "ADDR")]
        server: String,
        /// `on` or `off`.
        #[arg(value_name = "on|off", value_parser = parse_switch, action = ArgAction::Set)]
        enabled: bool,
    },
    /// Set the read flag of every server of every group.
    ReplicaGroupAll {
        /// `on` or `off`.
        #[arg(value_name = "on|off", value_parser = parse_switch, action = ArgAction::Set)]
        enabled: bool,
    },
}

/// Runs a `group` subcommand.
pub async fn run(ctx: &Ctx, cmd: GroupCmd) -> Result<(), CliError> {
    match cmd {
        GroupCmd::List => {
            let resp = call!(ctx, list_groups, pb::ListGroupsRequest {})?;
            ctx.out.emit(&resp, |r| {
                if r.groups.is_empty() {
                    "no groups".to_string()
                } else {
                    render_groups(&r.groups)
                }
            })
        }
        GroupCmd::Show { gid } => {
            let resp = call!(ctx, get_group, pb::GetGroupRequest { group_id: gid })?;
            ctx.out.emit(&resp, |r| render_groups(r.group.as_slice()))
        }
        GroupCmd::Create { gid } => {
            let resp = call!(ctx, create_group, pb::CreateGroupRequest { group_id: gid })?;
            ctx.out.emit(&resp, |_| format!("created group {gid}"))
        }
        GroupCmd::Remove { gid } => {
            let resp = call!(ctx, remove_group, pb::RemoveGroupRequest { group_id: gid })?;
            ctx.out.emit(&resp, |_| format!("removed group {gid}"))
        }
        GroupCmd::AddServer {
            gid,
            server: addr,
            datacenter,
            no_sync,
        } => {
            let req = pb::AddGroupServerRequest {
                group_id: gid,
                addr: addr.clone(),
                datacenter: datacenter.unwrap_or_default(),
                no_sync,
            };
            let resp = call!(ctx, add_group_server, req)?;
            ctx.out.emit(&resp, |r| {
                with_group(format!("added {addr} to group {gid}"), r.group.as_ref())
            })
        }
        GroupCmd::DelServer { gid, server: addr } => {
            let req = pb::DeleteGroupServerRequest {
                group_id: gid,
                addr: addr.clone(),
            };
            let resp = call!(ctx, delete_group_server, req)?;
            ctx.out.emit(&resp, |r| {
                with_group(format!("removed {addr} from group {gid}"), r.group.as_ref())
            })
        }
        GroupCmd::Promote { gid, server: addr } => {
            let req = pb::PromoteServerRequest {
                group_id: gid,
                addr: addr.clone(),
            };
            let resp = call!(ctx, promote_server, req)?;
            ctx.out.emit(&resp, |r| {
                let head = format!(
                    "promoted {addr} to master of group {gid} (writes paused {})",
                    fmt_pb_duration(r.write_pause.as_ref())
                );
                with_group(head, r.group.as_ref())
            })
        }
        GroupCmd::Resync { gid: Some(gid), .. } => {
            let resp = call!(ctx, resync_group, pb::ResyncGroupRequest { group_id: gid })?;
            ctx.out.emit(&resp, |r| {
                format!("resynced group {gid}; revision {}", r.revision)
            })
        }
        GroupCmd::Resync { gid: None, .. } => {
            let resp = call!(ctx, resync_group_all, pb::ResyncGroupAllRequest {})?;
            ctx.out.emit(&resp, |r| {
                format!("resynced every group; revision {}", r.revision)
            })
        }
        GroupCmd::ReplicaGroup {
            gid,
            server: addr,
            enabled,
        } => {
            let req = pb::SetReplicaGroupRequest {
                group_id: gid,
                addr: addr.clone(),
                enabled,
            };
            let resp = call!(ctx, set_replica_group, req)?;
            ctx.out.emit(&resp, |r| {
                let head = format!("reads from {addr}: {}", on_off(enabled));
                with_group(head, r.group.as_ref())
            })
        }
        GroupCmd::ReplicaGroupAll { enabled } => {
            let req = pb::SetReplicaGroupAllRequest { enabled };
            let resp = call!(ctx, set_replica_group_all, req)?;
            ctx.out.emit(&resp, |_| {
                format!("reads from every server: {}", on_off(enabled))
            })
        }
    }
}

fn on_off(v: bool) -> &'static str {
    if v { "on" } else { "off" }
}

/// A result line followed by the group's table, when the server sent it.
fn with_group(head: String, group: Option<&pb::Group>) -> String {
    match group {
        Some(g) => format!("{head}\n{}", render_groups(std::slice::from_ref(g))),
        None => head,
    }
}

/// Groups as one table, one row per server (an empty group gets one row).
pub fn render_groups(groups: &[pb::Group]) -> String {
    let mut table = Table::new(&[
        "GROUP", "ADDR", "ROLE", "DC", "KIND", "READS", "SYNC", "FLAGS",
    ]);
    for g in groups {
        let mut flags = Vec::new();
        if let Some(p) = &g.promoting {
            let state = pb::PromoteState::try_from(p.state).map_or_else(
                |_| p.state.to_string(),
                |s| enum_label(s.as_str_name(), "PROMOTE_STATE_"),
            );
            flags.push(format!("promoting [{}] {state}", p.index));
        }
        if g.out_of_sync {
            flags.push("out-of-sync".to_string());
        }
        let flags = flags.join(", ");
        if g.servers.is_empty() {
            table.row([
                g.id.to_string(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                if flags.is_empty() {
                    "empty".into()
                } else {
                    flags
                },
            ]);
            continue;
        }
        for (i, s) in g.servers.iter().enumerate() {
            table.row([
                g.id.to_string(),
                s.addr.clone(),
                if i == 0 { "master" } else { "replica" }.to_string(),
                or_dash(&s.datacenter),
                server_kind(s.kind),
                on_off(s.replica_group).to_string(),
                sync_text(s.action.as_ref()),
                // Group flags go on the master's row only, to keep rows short.
                if i == 0 { flags.clone() } else { String::new() },
            ]);
        }
    }
    table.render()
}

fn server_kind(kind: i32) -> String {
    match pb::ServerKind::try_from(kind) {
        Ok(pb::ServerKind::Redis) => "redis".into(),
        Ok(pb::ServerKind::CodisServer) => "codis-server".into(),
        Ok(pb::ServerKind::Unspecified) => "-".into(),
        Err(_) => format!("unknown({kind})"),
    }
}

/// `pending #2`, `synced`, `synced_failed: <error>`, or `-`.
fn sync_text(action: Option<&pb::SyncAction>) -> String {
    let Some(a) = action else {
        return "-".to_string();
    };
    let mut text = sync_state(a.state);
    if a.state == pb::SyncActionState::Pending as i32 {
        text.push_str(&format!(" #{}", a.index));
    }
    if !a.error.is_empty() {
        text.push_str(&format!(": {}", a.error));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_table() {
        let groups = vec![
            pb::Group {
                id: 1,
                servers: vec![
                    pb::GroupServer {
                        addr: "h:1".into(),
                        kind: pb::ServerKind::Redis as i32,
                        ..Default::default()
                    },
                    pb::GroupServer {
                        addr: "h:2".into(),
                        datacenter: "dc1".into(),
                        replica_group: true,
                        kind: pb::ServerKind::CodisServer as i32,
                        action: Some(pb::SyncAction {
                            index: 2,
                            state: pb::SyncActionState::Pending as i32,
                            error: String::new(),
                        }),
                    },
                ],
                out_of_sync: true,
                promoting: None,
            },
            pb::Group {
                id: 2,
                ..Default::default()
            },
        ];
        let text = render_groups(&groups);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "GROUP  ADDR  ROLE     DC   KIND          READS  SYNC        FLAGS",
                "1      h:1   master   -    redis         off    -           out-of-sync",
                "1      h:2   replica  dc1  codis-server  on     pending #2",
                "2      -     -        -    -             -      -           empty",
            ]
        );
    }

    #[test]
    fn sync_failures_show_the_error() {
        let a = pb::SyncAction {
            index: 0,
            state: pb::SyncActionState::SyncedFailed as i32,
            error: "LOADING".into(),
        };
        assert_eq!(sync_text(Some(&a)), "synced_failed: LOADING");
    }
}
