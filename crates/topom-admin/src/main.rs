//! `topom-admin`: the admin CLI of topom (see the [`topom_admin`] crate).

use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    topom_admin::run(topom_admin::Cli::parse()).await
}
