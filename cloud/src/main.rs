use clap::Parser;
use lastseen_cloud::admin::run_command;
use lastseen_cloud::config::{Cli, Config};
use lastseen_cloud::{bind, init_logs, run};
use lastseen_shared::service::shutdown_signal;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let config = Config::load(cli.config.as_deref(), &cli.overrides)?;
    init_logs(&config.log);
    if let Some(command) = &cli.command {
        let mut input = std::io::stdin().lock();
        let mut output = std::io::stdout().lock();
        run_command(&config, command, &mut input, &mut output).await?;
        return Ok(());
    }
    let listener = bind(config.bind).await?;
    run(config, listener, shutdown_signal()).await?;
    Ok(())
}
