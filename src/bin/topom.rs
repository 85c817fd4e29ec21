//! `topom`: the coordinator service.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, Parser, Subcommand};
use tokio_util::sync::CancellationToken;
use tracing_subscriber::{EnvFilter, layer::SubscriberExt, reload, util::SubscriberInitExt};

use topom::config::{Backend, Config};

/// The topom coordinator: serves the slot table, groups, proxies and sentinels of
/// one product over gRPC. `topom import` / `topom export` move a product between
/// a Codis store and topom's (see README, "Moving from Codis").
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    #[command(subcommand)]
    command: Option<Cmd>,
    /// TOML config file (Codis dashboard.toml key names); every key has a default.
    #[arg(short, long, global = true)]
    config: Option<PathBuf>,
    /// gRPC listen address (overrides `admin_addr`), e.g. 127.0.0.1:0.
    #[arg(long)]
    listen: Option<String>,
    /// Use the embedded store in this directory (overrides the config's store).
    #[arg(long, conflicts_with = "etcd", global = true)]
    data_dir: Option<String>,
    /// Use etcd at these comma-separated endpoints (overrides the config's store).
    #[arg(long, global = true)]
    etcd: Option<String>,
    /// Product name (overrides `product_name`).
    #[arg(long, global = true)]
    product: Option<String>,
    /// Admin token for mutating RPCs (overrides `admin_token`; env TOPOM_ADMIN_TOKEN).
    #[arg(long, env = "TOPOM_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// Serve `/metrics` and `/healthz` over HTTP here (overrides `metrics_addr`),
    /// e.g. 127.0.0.1:18081; port 0 picks one, printed as `METRICS <addr>`.
    #[arg(long)]
    metrics_addr: Option<String>,
    /// Print the default configuration and exit.
    #[arg(long)]
    default_config: bool,
}

/// Offline commands on the store of the configured product (no service runs).
#[derive(Subcommand, Debug)]
enum Cmd {
    /// Adopt a product from a Codis store: a dry run unless --confirm. Exit 0 ok,
    /// 1 problems found (all printed; nothing written), 2 usage.
    #[command(group(ArgGroup::new("source").required(true).args(["from_fs", "from_dump", "from_etcd"])))]
    Import {
        /// A codis-dashboard filesystem store root (its `coordinator_addr`).
        #[arg(long, value_name = "DIR")]
        from_fs: Option<PathBuf>,
        /// A file printed by `codis-admin --config-dump`.
        #[arg(long, value_name = "FILE")]
        from_dump: Option<PathBuf>,
        /// Comma-separated etcd v3 endpoints holding Codis's key layout.
        #[arg(long, value_name = "ENDPOINTS")]
        from_etcd: Option<String>,
        /// Prefix of the Codis keys on etcd (before `/codis3/<product>`).
        #[arg(long, default_value = "", requires = "from_etcd")]
        from_etcd_prefix: String,
        /// Write it (one store batch); without it nothing is written.
        #[arg(long)]
        confirm: bool,
        /// Import although the codis-dashboard holding the product still answers.
        #[arg(long)]
        force: bool,
        /// Overwrite the product if topom's store already holds it.
        #[arg(long)]
        replace: bool,
        /// Start topom with slot actions disabled (Codis's flag is not in its store).
        #[arg(long)]
        disable_slot_actions: bool,
    },
    /// Write topom's product back as a Codis store (roll back). Exit codes as import.
    #[command(group(ArgGroup::new("target").required(true).args(["to_fs", "to_dump"])))]
    Export {
        /// A new Codis filesystem store root for codis-dashboard.
        #[arg(long, value_name = "DIR")]
        to_fs: Option<PathBuf>,
        /// A file for `codis-admin --config-restore`.
        #[arg(long, value_name = "FILE")]
        to_dump: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.default_config {
        print!("{}", include_str!("../../topom.toml"));
        return ExitCode::SUCCESS;
    }
    let config = match load_config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("topom: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(cmd) = args.command {
        return offline(cmd, config);
    }
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&config.log_level));
    let (filter, handle) = reload::Layer::new(filter);
    tracing_subscriber::registry()
        .with(filter)
        // Logs go to stderr: stdout carries only the LISTENING (and METRICS) lines scripts parse.
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())),
        )
        .init();
    let Some(runtime) = runtime(&mut tokio::runtime::Builder::new_multi_thread()) else {
        return ExitCode::FAILURE;
    };
    let hooks = topom::server::Hooks {
        on_ready: Box::new(|ready| {
            println!("LISTENING {}", ready.addr);
            if let Some(m) = ready.metrics_addr {
                println!("METRICS {m}");
            }
        }),
        set_log_filter: Box::new(move |f| {
            let filter = EnvFilter::try_new(f).map_err(|e| e.to_string())?;
            handle.reload(filter).map_err(|e| e.to_string())
        }),
    };
    match runtime.block_on(topom::server::run(config, hooks, CancellationToken::new())) {
        Ok(()) => ExitCode::SUCCESS,
        // Printed once, whatever `log_level` says: the reason the process exits.
        Err(e) => {
            eprintln!("topom: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `import` or `export`: output on stdout, warnings of the store on stderr.
fn offline(cmd: Cmd, config: Config) -> ExitCode {
    use topom::codis_store::{self as cs, Outcome, SourceKind};
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(EnvFilter::new("warn"))
        .init();
    // One thread: the commands do a few store calls in sequence.
    let Some(runtime) = runtime(&mut tokio::runtime::Builder::new_current_thread()) else {
        return ExitCode::FAILURE;
    };
    let outcome = match cmd {
        Cmd::Import {
            from_fs,
            from_dump,
            from_etcd,
            from_etcd_prefix,
            confirm,
            force,
            replace,
            disable_slot_actions,
        } => {
            let source = match (from_fs, from_dump, from_etcd) {
                (Some(dir), _, _) => SourceKind::Fs(dir),
                (_, Some(file), _) => SourceKind::Dump(file),
                (_, _, Some(e)) => SourceKind::Etcd {
                    endpoints: e.split(',').map(|s| s.trim().to_owned()).collect(),
                    prefix: from_etcd_prefix,
                },
                // clap's required group makes this unreachable; say so anyway.
                _ => {
                    eprintln!("topom import: give --from-fs, --from-dump or --from-etcd");
                    return ExitCode::from(2);
                }
            };
            let opts = cs::ImportOptions {
                config,
                source,
                confirm,
                force,
                replace,
                disable_slot_actions,
            };
            runtime.block_on(cs::run_import(&opts))
        }
        Cmd::Export { to_fs, to_dump } => {
            let target = match (to_fs, to_dump) {
                (Some(dir), _) => cs::ExportTarget::Fs(dir),
                (_, Some(file)) => cs::ExportTarget::Dump(file),
                _ => {
                    eprintln!("topom export: give --to-fs or --to-dump");
                    return ExitCode::from(2);
                }
            };
            runtime.block_on(cs::run_export(&cs::ExportOptions { config, target }))
        }
    };
    match outcome {
        Outcome::Ok => ExitCode::SUCCESS,
        Outcome::Problems => ExitCode::from(1),
    }
}

/// Builds the runtime, or says why not.
fn runtime(builder: &mut tokio::runtime::Builder) -> Option<tokio::runtime::Runtime> {
    builder
        .enable_all()
        .build()
        .map_err(|e| eprintln!("topom: cannot start the runtime: {e}"))
        .ok()
}

fn load_config(args: &Args) -> Result<Config, String> {
    let mut config = match &args.config {
        Some(path) => Config::from_file(path).map_err(|e| e.to_string())?,
        None => Config::default(),
    };
    if let Some(l) = &args.listen {
        l.parse::<std::net::SocketAddr>()
            .map_err(|e| format!("--listen {l:?}: {e}"))?;
        config.admin_addr = l.clone();
    }
    if let Some(d) = &args.data_dir {
        config.backend = Backend::Local;
        config.coordinator_addr = d.clone();
    }
    if let Some(e) = &args.etcd {
        config.backend = Backend::Etcd;
        config.coordinator_addr = e.clone();
    }
    if let Some(p) = &args.product {
        topom::model::validate_product_name(p).map_err(|e| format!("--product: {e}"))?;
        config.product_name = p.clone();
    }
    if let Some(m) = &args.metrics_addr {
        m.parse::<std::net::SocketAddr>()
            .map_err(|e| format!("--metrics-addr {m:?}: {e}"))?;
        config.metrics_addr = Some(m.clone());
    }
    if let Some(t) = &args.admin_token {
        config.admin_token = t.clone();
    }
    Ok(config)
}
