//! The admin CLI, `topom-admin`: one subcommand per RPC of `topom.v1.Topom`,
//! grouped by noun and named after the Codis operations (`slots action
//! create-range`, `group promote`, ...). It talks to topom over gRPC only and
//! links only the API crate (`topom-proto`), not the service.
//!
//! # Layout
//!
//! | file                | holds                                                      |
//! |---------------------|------------------------------------------------------------|
//! | `lib.rs`            | global flags, the command tree, validation, dispatch       |
//! | `error.rs`          | `CliError`: the message and exit code of a failure         |
//! | `client.rs`         | connections, bearer token, deadlines, the call loop        |
//! | `follow.rs`         | which endpoint next: leader redirects, what is retried     |
//! | `parse.rs`          | value parsers: slot ranges, group ids, on/off, addresses   |
//! | `output.rs`         | text tables, proto3 JSON transcoding, formatters           |
//! | `admin.rs`          | overview, model, reload, shutdown, resign, log-level, info, events |
//! | `stats.rs`          | stats, stats --watch, stats refresh                        |
//! | `slots.rs`          | slots list/assign/offline/rebalance                        |
//! | `slot_action.rs`    | slots action ...                                           |
//! | `group.rs`          | group ...                                                  |
//! | `sync.rs`, `sentinel.rs`, `proxy.rs` | the remaining nouns                       |
//!
//! Durations and the API's limits come from `topom_proto::{units, limits}`, the
//! ones the service uses.
//!
//! Dependencies run one way: every command → `client`, `output` → `error`.
//!
//! Exit codes: 0 success, 1 an error from topom (or no connection), 2 a usage
//! error. Errors print as `error: <GRPC_CODE>: <message>` on stderr.

mod admin;
mod client;
mod error;
mod follow;
mod group;
mod output;
mod parse;
mod proxy;
mod sentinel;
mod slot_action;
mod slots;
mod stats;
mod sync;

use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

use topom_proto as pb;
use topom_proto::units;

use self::client::{Ctx, Target};
use self::error::CliError;
use self::output::{Output, note};

/// Command line of `topom-admin`.
#[derive(Debug, Parser)]
#[command(
    name = "topom-admin",
    version,
    about = "Administer a topom (Codis-style dashboard) over gRPC",
    after_help = "Exit codes: 0 ok, 1 error from topom or no connection, 2 usage error."
)]
pub struct Cli {
    /// topom's gRPC endpoints, `host:port` or URLs (`http://` is added),
    /// comma-separated: every instance of the product (leader and standbys).
    /// Calls follow the leader a standby names and skip endpoints that are
    /// down; a mutation whose outcome is unknown is never re-sent.
    #[arg(
        long,
        global = true,
        value_name = "ADDR[,ADDR...]",
        env = "TOPOM_ADDR",
        value_delimiter = ',',
        default_value = parse::DEFAULT_ADDR,
        value_parser = parse::normalize_addr
    )]
    pub addr: Vec<String>,
    /// Admin token, sent as `authorization: Bearer <token>` on every call.
    #[arg(
        long,
        global = true,
        value_name = "TOKEN",
        env = "TOPOM_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// Print responses as canonical proto3 JSON (for scripts).
    #[arg(long, global = true)]
    pub json: bool,
    /// Deadline of the connection and of each call, e.g. 500ms, 10s, 1m.
    /// Give it before the subcommand (`stats refresh` has its own --timeout).
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = units::parse_duration)]
    pub timeout: Duration,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands of `topom-admin`.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Version, configuration, owner record and summary counts.
    Overview,
    /// This instance as recorded in the store (Codis `/topom/model`): address, pid, host, start time
    Model,
    /// Reload the product from the store (after editing the store by hand).
    Reload,
    /// Stop topom gracefully.
    Shutdown,
    /// Hand leadership to a standby (planned restart); prints the new leader
    /// and how long the takeover took.
    Resign {
        /// How long topom waits for a standby to take over.
        #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = units::parse_duration)]
        wait: Duration,
    },
    /// Change topom's log level at run time.
    LogLevel {
        /// The new level.
        #[arg(value_enum)]
        level: admin::Level,
    },
    /// INFO of any Redis server, with its master and maxmemory.
    ServerInfo {
        /// The server, `host:port`.
        #[arg(value_name = "ADDR")]
        server: String,
    },
    /// INFO of a Sentinel.
    SentinelInfo {
        /// The sentinel, `host:port`.
        #[arg(value_name = "ADDR")]
        sentinel: String,
        /// Also show the masters and replicas it monitors for this product.
        #[arg(long)]
        monitored: bool,
    },
    /// Recent events: master switches and promotes.
    Events,
    /// Every server's role, memory, ops/s, lag and health (see also --watch, refresh).
    Stats(stats::StatsArgs),
    /// The slot table, direct assignment, rebalance and migrations.
    #[command(subcommand)]
    Slots(slots::SlotsCmd),
    /// Groups and their servers.
    #[command(subcommand)]
    Group(group::GroupCmd),
    /// Replication (sync) actions.
    #[command(subcommand)]
    Sync(sync::SyncCmd),
    /// Redis Sentinels.
    #[command(subcommand)]
    Sentinel(sentinel::SentinelCmd),
    /// Registered proxies.
    #[command(subcommand)]
    Proxy(proxy::ProxyCmd),
}

/// Runs a parsed command line and returns the process exit code; errors are
/// printed to stderr as `error: ...`.
pub async fn run(cli: Cli) -> ExitCode {
    match execute(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(message) = e.message() {
                note(&format!("error: {message}"));
            }
            ExitCode::from(e.exit_code())
        }
    }
}

async fn execute(cli: Cli) -> Result<(), CliError> {
    // Usage errors first, so they do not wait for (or hide behind) a connection.
    validate(&cli.command).map_err(CliError::Usage)?;
    // An empty TOPOM_TOKEN means "no token", not an empty bearer.
    let token = cli.token.filter(|t| !t.is_empty());
    let target = Target {
        addrs: cli.addr,
        token,
        timeout: cli.timeout,
    };
    let ctx = Ctx::new(&target, Output { json: cli.json })?;
    dispatch(&ctx, cli.command).await
}

/// Checks that span several arguments, which clap's per-value parsers cannot.
fn validate(cmd: &Command) -> Result<(), String> {
    match cmd {
        Command::Slots(slots::SlotsCmd::Assign { specs }) => {
            parse::parse_assignments(specs).map(|_| ())
        }
        Command::Slots(slots::SlotsCmd::Action(slot_action::SlotActionCmd::CreateRange {
            begin,
            end,
            ..
        })) => parse::check_range(*begin, *end).map(|_| ()),
        Command::Slots(slots::SlotsCmd::Action(slot_action::SlotActionCmd::CreateSome {
            src,
            dst,
            ..
        })) if src == dst => Err(format!("source and target are both group {src}")),
        _ => Ok(()),
    }
}

async fn dispatch(ctx: &Ctx, cmd: Command) -> Result<(), CliError> {
    match cmd {
        Command::Overview => admin::overview(ctx).await,
        Command::Model => admin::model(ctx).await,
        Command::Reload => admin::reload(ctx).await,
        Command::Shutdown => admin::shutdown(ctx).await,
        Command::Resign { wait } => admin::resign(ctx, wait).await,
        Command::LogLevel { level } => admin::log_level(ctx, level).await,
        Command::ServerInfo { server } => admin::server_info(ctx, server).await,
        Command::SentinelInfo {
            sentinel,
            monitored,
        } => admin::sentinel_info(ctx, sentinel, monitored).await,
        Command::Events => admin::events(ctx).await,
        Command::Stats(args) => stats::run(ctx, args).await,
        Command::Slots(cmd) => slots::run(ctx, cmd).await,
        Command::Group(cmd) => group::run(ctx, cmd).await,
        Command::Sync(cmd) => sync::run(ctx, cmd).await,
        Command::Sentinel(cmd) => sentinel::run(ctx, cmd).await,
        Command::Proxy(cmd) => proxy::run(ctx, cmd).await,
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use clap::error::ErrorKind;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("topom-admin").chain(args.iter().copied()))
    }

    #[test]
    fn command_tree_is_consistent() {
        // Catches duplicate ids (e.g. a positional named like a global flag).
        Cli::command().debug_assert();
    }

    #[test]
    fn global_flags_anywhere() {
        let cli = parse(&["slots", "list", "--json", "--addr", "h:1", "--token", "s"]).unwrap();
        assert!(cli.json);
        assert_eq!(cli.addr, ["http://h:1"]);
        assert_eq!(cli.token.as_deref(), Some("s"));
        assert_eq!(cli.timeout, Duration::from_secs(10));
        let cli = parse(&["--timeout", "500ms", "overview"]).unwrap();
        assert_eq!(cli.timeout, Duration::from_millis(500));
        if std::env::var_os("TOPOM_ADDR").is_none() {
            assert_eq!(cli.addr, [parse::DEFAULT_ADDR]);
        }
        assert!(parse(&["--addr", "bad host", "overview"]).is_err());
    }

    #[test]
    fn stats_forms() {
        let cli = parse(&["stats", "--watch", "--group", "2"]).unwrap();
        let Command::Stats(args) = cli.command else {
            panic!("not stats");
        };
        assert!(args.watch && args.command.is_none());
        assert_eq!(args.groups, [2]);
        let cli = parse(&["stats", "refresh", "--timeout", "2s"]).unwrap();
        let Command::Stats(args) = cli.command else {
            panic!("not stats");
        };
        assert!(matches!(
            args.command,
            Some(stats::StatsCmd::Refresh { timeout }) if timeout == Duration::from_secs(2)
        ));
        // Filters only make sense when watching.
        assert!(parse(&["stats", "--group", "2"]).is_err());
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for args in [
            &["slots", "offline", "0-1024"][..],
            &["slots", "offline", "600-500"],
            &["slots", "action", "create", "1024", "1"],
            &["group", "create", "0"],
            &["group", "replica-group", "1", "h:1", "maybe"],
            &["--timeout", "10", "overview"],
        ] {
            let err = parse(args)
                .err()
                .unwrap_or_else(|| panic!("{args:?} parsed"));
            assert_eq!(err.kind(), ErrorKind::ValueValidation, "{args:?}: {err}");
            assert_eq!(err.exit_code(), 2);
        }
        let err = parse(&["log-level", "loud"]).err().unwrap();
        assert_eq!(err.kind(), ErrorKind::InvalidValue);
        assert_eq!(err.exit_code(), 2);
        let err = parse(&["group", "resync"]).err().unwrap();
        assert_eq!(err.kind(), ErrorKind::MissingRequiredArgument);
        assert!(parse(&["group", "resync", "1", "--all"]).is_err());
    }

    #[test]
    fn cross_argument_checks() {
        let check = |args: &[&str]| validate(&parse(args).unwrap().command);
        assert!(check(&["slots", "assign", "0-511", "1"]).is_ok());
        assert!(check(&["slots", "assign", "0-511:1", "512-1023:2"]).is_ok());
        assert!(check(&["slots", "assign", "0-10:1", "5:2"]).is_err());
        assert!(check(&["slots", "assign", "0-511"]).is_err());
        let err = check(&["slots", "action", "create-range", "9", "3", "1"]).unwrap_err();
        assert!(err.contains("begin is greater than end"), "{err}");
        assert!(check(&["slots", "action", "create-some", "1", "1", "5"]).is_err());
        assert!(check(&["slots", "action", "create-some", "1", "2", "5"]).is_ok());
    }

    /// The command that calls each RPC of `topom.v1.Topom`.
    const RPC_COMMANDS: &[(&str, &[&str])] = &[
        ("GetOverview", &["overview"]),
        ("GetModel", &["model"]),
        ("Reload", &["reload"]),
        ("Shutdown", &["shutdown"]),
        ("Resign", &["resign", "--wait", "3s"]),
        ("SetLogLevel", &["log-level", "debug"]),
        ("GetServerInfo", &["server-info", "h:6379"]),
        (
            "GetSentinelInfo",
            &["sentinel-info", "h:26379", "--monitored"],
        ),
        ("ListEvents", &["events"]),
        ("GetStats", &["stats"]),
        ("WatchStats", &["stats", "--watch"]),
        (
            "RefreshRedisStats",
            &["stats", "refresh", "--timeout", "1s"],
        ),
        ("ListSlots", &["slots", "list", "--all"]),
        ("AssignSlots", &["slots", "assign", "0-511:1", "512-1023:2"]),
        ("AssignSlotsOffline", &["slots", "offline", "0-9", "12"]),
        ("RebalanceSlots", &["slots", "rebalance", "--confirm"]),
        ("CreateSlotAction", &["slots", "action", "create", "5", "2"]),
        (
            "CreateSlotActionRange",
            &["slots", "action", "create-range", "0", "9", "2"],
        ),
        (
            "CreateSlotActionSome",
            &["slots", "action", "create-some", "1", "2", "10"],
        ),
        ("RemoveSlotAction", &["slots", "action", "remove", "5"]),
        (
            "SetSlotActionInterval",
            &["slots", "action", "interval", "100"],
        ),
        ("SetSlotActionDisabled", &["slots", "action", "disable"]),
        ("ProcessSlotAction", &["slots", "action", "process"]),
        ("ListGroups", &["group", "list"]),
        ("GetGroup", &["group", "show", "1"]),
        ("CreateGroup", &["group", "create", "1"]),
        ("RemoveGroup", &["group", "remove", "1"]),
        (
            "AddGroupServer",
            &["group", "add-server", "1", "h:1", "--datacenter", "dc1"],
        ),
        ("DeleteGroupServer", &["group", "del-server", "1", "h:1"]),
        ("PromoteServer", &["group", "promote", "1", "h:2"]),
        ("ResyncGroup", &["group", "resync", "1"]),
        ("ResyncGroupAll", &["group", "resync", "--all"]),
        (
            "SetReplicaGroup",
            &["group", "replica-group", "1", "h:2", "on"],
        ),
        ("SetReplicaGroupAll", &["group", "replica-group-all", "off"]),
        ("CreateSyncAction", &["sync", "create", "h:2"]),
        ("RemoveSyncAction", &["sync", "remove", "h:2"]),
        ("ProcessSyncAction", &["sync", "process"]),
        ("ListSentinels", &["sentinel", "list"]),
        ("AddSentinel", &["sentinel", "add", "h:26379"]),
        (
            "RemoveSentinel",
            &["sentinel", "remove", "h:26379", "--force"],
        ),
        ("ResyncSentinels", &["sentinel", "resync"]),
        ("ListProxies", &["proxy", "list"]),
        ("AddCodisProxy", &["proxy", "add-codis", "h:11080"]),
        ("RemoveProxy", &["proxy", "remove", "t1", "--force"]),
        ("ReinitProxy", &["proxy", "reinit", "t1"]),
    ];

    #[test]
    fn every_rpc_has_a_command() {
        let service = output::pool()
            .unwrap()
            .get_service_by_name("topom.v1.Topom")
            .unwrap();
        let mut rpcs: Vec<String> = service.methods().map(|m| m.name().to_string()).collect();
        rpcs.sort();
        let mut covered: Vec<String> = RPC_COMMANDS.iter().map(|(r, _)| r.to_string()).collect();
        covered.sort();
        assert_eq!(rpcs, covered, "an RPC was added or removed: update the CLI");
        for (rpc, args) in RPC_COMMANDS {
            let cli = parse(args).unwrap_or_else(|e| panic!("{rpc}: {args:?}: {e}"));
            validate(&cli.command).unwrap_or_else(|e| panic!("{rpc}: {args:?}: {e}"));
        }
    }
}
