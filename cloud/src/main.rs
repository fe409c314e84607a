use clap::Parser;
use lastseen_cloud::config::{Cli, Config};
use lastseen_cloud::{bind, init_logs, run};
use lastseen_shared::service::shutdown_signal;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref(), &cli.overrides)?;
    init_logs(&config.log);
    let listener = bind(config.bind).await?;
    run(config, listener, shutdown_signal()).await?;
    Ok(())
}
