use clap::Parser;
use lastseen_agent::Agent;
use lastseen_agent::cli::Cli;
use lastseen_agent::config::Config;
use lastseen_shared::service::{init_logs, shutdown_signal};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref(), cli.overrides.figment())?;
    init_logs(&config.log);
    let agent = Agent::build(config).await?;
    agent.run(shutdown_signal()).await?;
    Ok(())
}
