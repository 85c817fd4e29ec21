//! `topom-admin`: the admin CLI of topom (see [`topom::cli`]).

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    topom::cli::run(topom::cli::Cli::parse()).await
}
