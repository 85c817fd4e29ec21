//! `topom`: the coordinator service.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::{EnvFilter, layer::SubscriberExt, reload, util::SubscriberInitExt};

use topom::config::{Backend, Config};

/// The topom coordinator: serves the slot table, groups, proxies and sentinels of
/// one product over gRPC.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// TOML config file (Codis dashboard.toml key names); every key has a default.
    #[arg(short, long)]
    config: Option<PathBuf>,
    /// gRPC listen address (overrides `admin_addr`), e.g. 127.0.0.1:0.
    #[arg(long)]
    listen: Option<String>,
    /// Use the embedded store in this directory (overrides the config's store).
    #[arg(long, conflicts_with = "etcd")]
    data_dir: Option<String>,
    /// Use etcd at these comma-separated endpoints (overrides the config's store).
    #[arg(long)]
    etcd: Option<String>,
    /// Product name (overrides `product_name`).
    #[arg(long)]
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
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("topom: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
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
