//! The command line: `traffik-bench run` (the harness) and `traffik-bench serve` (one Rust
//! target, started by the harness as its own process).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::error::BenchError;
use crate::scenario::Scenario;
use crate::target::Target;

/// Whole-server benchmarks over loopback: traffik against bare axum, tower_governor and the
/// Python library Traffik, side by side in one run.
#[allow(clippy::doc_markdown)] // clap's `--help` text, shown as written
#[derive(Debug, Parser)]
#[command(name = "traffik-bench", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run scenarios against targets and write the results (Markdown, JSON, SVG).
    Run(RunArgs),
    /// Write results.md and results.svg again from a run's results.json.
    Render(RenderArgs),
    /// Serve one Rust target (the harness starts this itself).
    #[command(hide = true)]
    Serve(ServeArgs),
}

/// `traffik-bench run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Targets to measure, comma-separated [default: every Rust target, and the Python ones
    /// with --with-python].
    #[arg(short, long, value_delimiter = ',')]
    pub targets: Vec<Target>,
    /// Scenarios to run, comma-separated [default: all].
    #[arg(short, long, value_delimiter = ',')]
    pub scenarios: Vec<Scenario>,
    /// Measured iterations of each scenario per target.
    #[arg(short = 'n', long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub iterations: u32,
    /// Warm-up iterations before them, not reported.
    #[arg(short, long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=20))]
    pub warmup: u32,
    /// Connections at once in the concurrent and sustained HTTP scenarios.
    #[arg(short, long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub concurrency: u32,
    /// Seconds each sustained (pure overhead) scenario runs, e.g. 5 or 0.5.
    #[arg(short, long, default_value = "5", value_parser = parse_seconds)]
    pub duration: Duration,
    /// Also measure the Python library Traffik: creates a virtualenv (--python-venv) and installs
    /// FastAPI, uvicorn and traffik from PyPI into it when they are missing.
    #[allow(clippy::doc_markdown)] // clap's `--help` text, shown as written
    #[arg(long)]
    pub with_python: bool,
    /// Where the Python virtualenv lives.
    #[arg(long, default_value = "target/traffik-bench/venv")]
    pub python_venv: PathBuf,
    /// Directory for results.md, results.json, results.svg and the servers' logs.
    #[arg(short, long, default_value = "target/traffik-bench")]
    pub out: PathBuf,
    /// Do not pin the servers and the client to separate cores.
    #[arg(long)]
    pub no_pin: bool,
}

/// `traffik-bench render`.
#[derive(Debug, Args)]
pub struct RenderArgs {
    /// A results.json written by `traffik-bench run`.
    pub json: PathBuf,
    /// Where to write results.md and results.svg [default: beside the JSON].
    #[arg(short, long)]
    pub out: Option<PathBuf>,
}

/// `traffik-bench serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The Rust target to serve.
    #[arg(long)]
    pub target: Target,
    /// The limit, e.g. "100/min".
    #[arg(long)]
    pub rate: String,
    /// The loopback port to listen on.
    #[arg(long)]
    pub port: u16,
    /// Redis URL, for Redis targets.
    #[arg(long)]
    pub redis_url: Option<String>,
}

fn parse_seconds(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text
        .trim_end_matches('s')
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds (e.g. 5 or 0.5)"))?;
    if !(0.1..=600.0).contains(&seconds) {
        return Err(format!(
            "{seconds} s is out of range: between 0.1 and 600 seconds"
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// What a run will do, checked.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The targets, in report order.
    pub targets: Vec<Target>,
    /// The scenarios, in report order.
    pub scenarios: Vec<Scenario>,
}

impl RunArgs {
    /// Resolves the defaults and checks that the choices fit together.
    ///
    /// # Errors
    /// A Python target without `--with-python`, or targets and scenarios that have no pair in
    /// common (only WebSocket targets with only HTTP scenarios, say).
    pub fn plan(&self) -> Result<Plan, BenchError> {
        let mut targets: Vec<Target> = if self.targets.is_empty() {
            Target::ALL
                .into_iter()
                .filter(|t| self.with_python || !t.is_python())
                .collect()
        } else {
            self.targets.clone()
        };
        targets.sort();
        targets.dedup();
        if let Some(python) = targets.iter().find(|t| t.is_python())
            && !self.with_python
        {
            return Err(BenchError::Usage(format!(
                "target `{python}` needs --with-python (which installs FastAPI, uvicorn and \
                 traffik from PyPI into {})",
                self.python_venv.display()
            )));
        }
        let mut scenarios = if self.scenarios.is_empty() {
            Scenario::ALL.to_vec()
        } else {
            self.scenarios.clone()
        };
        scenarios.sort();
        scenarios.dedup();
        if !scenarios.iter().any(|s| targets.iter().any(|t| t.runs(*s))) {
            let targets: Vec<&str> = targets.iter().map(|t| t.name()).collect();
            let scenarios: Vec<&str> = scenarios.iter().map(|s| s.name()).collect();
            return Err(BenchError::Usage(format!(
                "none of the targets ({}) runs any of the scenarios ({}): HTTP targets run \
                 HTTP scenarios, ws-* targets ws-* scenarios, and axum, ws-axum, \
                 tower-governor and tower-rate-limit-redis only the sustained ones",
                targets.join(", "),
                scenarios.join(", ")
            )));
        }
        Ok(Plan { targets, scenarios })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_parse_with_or_without_unit() {
        assert_eq!(parse_seconds("5"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_seconds("0.5s"), Ok(Duration::from_millis(500)));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("five").is_err());
        assert!(parse_seconds("601").is_err());
    }
}
