use clap::Parser;
use lastseen_cloud::config::{Cli, Config};
use lastseen_cloud::{bind, run, shutdown_signal, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref(), &cli.overrides)?;
    telemetry::init(&config.log);
    let listener = bind(config.bind).await?;
    run(config, listener, shutdown_signal()).await?;
    Ok(())
}
