//! `lastseen-workloads [SCENARIO.toml] [--set key=value]... [--out DIR]`:
//! runs the scenario, prints the summary, writes `report.json` and
//! `chart.svg`, and exits 1 when the ledger fails (2 on any other error).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use lastseen_workloads::scenario::Scenario;

#[derive(Parser)]
#[command(
    version,
    about = "simulated lastseen devices and users against a cloud, with a ledger"
)]
struct Cli {
    /// A scenario file (e.g. workloads/scenarios/steady.toml); defaults otherwise.
    scenario: Option<PathBuf>,
    /// Overrides one field, e.g. `--set fleet.devices=50 --set fleet.transport=mqtt`.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Where report.json and chart.svg go [default: target/workloads/<scenario name>].
    #[arg(long)]
    out: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let scenario = match Scenario::load(cli.scenario.as_deref(), &cli.overrides) {
        Ok(scenario) => scenario,
        Err(error) => {
            eprintln!("{error}");
            return ExitCode::from(2);
        }
    };
    lastseen_cloud::init_logs(&scenario.cloud.log);
    let out = cli
        .out
        .unwrap_or_else(|| PathBuf::from("target/workloads").join(&scenario.name));
    let report = match lastseen_workloads::run(scenario).await {
        Ok(report) => report,
        Err(error) => {
            eprintln!("lastseen-workloads: {error}");
            return ExitCode::from(2);
        }
    };
    print!("{}", report.summary());
    match report.write(&out) {
        Ok((json, chart)) => println!("report: {}\nchart: {}", json.display(), chart.display()),
        Err(error) => {
            eprintln!("cannot write the report to {}: {error}", out.display());
            return ExitCode::from(2);
        }
    }
    ExitCode::from(lastseen_workloads::exit_code(&report))
}
