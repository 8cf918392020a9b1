//! The harness: starts the servers, drives every scenario against every target that takes
//! part in it, round by round, and collects a [`Report`].

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::{Plan, RunArgs};
use crate::error::BenchError;
use crate::load::{self, LoadOptions};
use crate::machine::Machine;
use crate::process::{Launch, Readiness, ServerProcess, free_port};
use crate::python::PythonEnv;
use crate::report::{Measurement, Report, Row, Settings};
use crate::scenario::Scenario;
use crate::target::Target;

/// Everything a run needs besides the plan: prepared before the async runtime starts.
#[derive(Debug)]
pub struct Prepared {
    python: Option<PythonEnv>,
    server_core: Option<usize>,
    log_dir: PathBuf,
}

/// Installs what the plan needs (the Python virtualenv, `redis-server`) before anything is
/// measured.
///
/// # Errors
/// When something the plan needs cannot be installed.
pub fn prepare(plan: &Plan, args: &RunArgs, machine: &Machine) -> Result<Prepared, BenchError> {
    let python = if plan.targets.iter().any(|t| t.is_python()) {
        eprintln!(
            "preparing the Python virtualenv in {}",
            args.python_venv.display()
        );
        Some(PythonEnv::prepare(&args.python_venv)?)
    } else {
        None
    };
    if plan.targets.iter().any(|t| t.uses_redis()) {
        crate::install::ensure("redis-server", "redis-server")?;
    }
    Ok(Prepared {
        python,
        server_core: machine.pinning.map(|p| p.server_core),
        log_dir: args.out.join("logs"),
    })
}

fn rust_launch(
    target: Target,
    scenario: Scenario,
    port: u16,
    redis_url: Option<&str>,
    core: Option<usize>,
) -> Result<Launch, BenchError> {
    let program = std::env::current_exe()
        .map_err(|error| BenchError::io("the traffik-bench executable", error))?;
    let mut args: Vec<OsString> = [
        "serve",
        "--target",
        target.name(),
        "--rate",
        scenario.rate(),
    ]
    .iter()
    .map(OsString::from)
    .collect();
    args.push("--port".into());
    args.push(port.to_string().into());
    if let (true, Some(url)) = (target.uses_redis(), redis_url) {
        args.push("--redis-url".into());
        args.push(url.into());
    }
    Ok(Launch {
        name: target.name().to_owned(),
        program: program.into_os_string(),
        args,
        envs: Vec::new(),
        core,
        readiness: Readiness::Http,
    })
}

async fn start_redis(prepared: &Prepared) -> Result<ServerProcess, BenchError> {
    let port = free_port()?;
    let launch = Launch {
        name: "redis-server".to_owned(),
        program: "redis-server".into(),
        args: [
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--port",
        ]
        .iter()
        .map(OsString::from)
        .chain([OsString::from(port.to_string())])
        .collect(),
        envs: Vec::new(),
        core: prepared.server_core,
        readiness: Readiness::Redis,
    };
    ServerProcess::start(&launch, port, &prepared.log_dir).await
}

async fn start_target(
    target: Target,
    scenario: Scenario,
    prepared: &Prepared,
    redis_url: Option<&str>,
) -> Result<ServerProcess, BenchError> {
    let port = free_port()?;
    let launch = if target.is_python() {
        let python = prepared
            .python
            .as_ref()
            .ok_or_else(|| BenchError::Usage(format!("target `{target}` needs --with-python")))?;
        python.launch(
            target,
            scenario.rate(),
            port,
            redis_url,
            prepared.server_core,
        )
    } else {
        rust_launch(target, scenario, port, redis_url, prepared.server_core)?
    };
    ServerProcess::start(&launch, port, &prepared.log_dir).await
}

fn run_id() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis())
}

/// Runs the plan and returns the report. Every server is stopped when this returns, also on
/// an error.
///
/// # Errors
/// When a server does not start or dies, or cannot be reached at all.
pub async fn run(
    plan: &Plan,
    args: &RunArgs,
    prepared: &Prepared,
    machine: Machine,
    command: String,
) -> Result<Report, BenchError> {
    let redis = if plan.targets.iter().any(|t| t.uses_redis()) {
        Some(start_redis(prepared).await?)
    } else {
        None
    };
    let redis_url = redis
        .as_ref()
        .map(|server| format!("redis://{}/", server.address()));
    let rounds = args.warmup + args.iterations;
    let steps: u64 = plan
        .scenarios
        .iter()
        .map(|s| plan.targets.iter().filter(|t| t.runs(*s)).count() as u64)
        .sum::<u64>()
        * u64::from(rounds);
    let progress = ProgressBar::new(steps);
    progress.set_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let id = run_id();
    let mut rows = Vec::new();
    for &scenario in &plan.scenarios {
        let targets: Vec<Target> = plan
            .targets
            .iter()
            .copied()
            .filter(|t| t.runs(scenario))
            .collect();
        if targets.is_empty() {
            continue;
        }
        progress.set_message(format!("{scenario}: starting servers"));
        let mut servers = Vec::with_capacity(targets.len());
        for &target in &targets {
            servers.push(start_target(target, scenario, prepared, redis_url.as_deref()).await?);
        }
        let mut measurements: Vec<Vec<Measurement>> = vec![Vec::new(); targets.len()];
        for round in 0..rounds {
            // Rotate the order each round, so no target always runs first.
            for offset in 0..targets.len() {
                let slot = (offset + round as usize) % targets.len();
                let (target, server) = (targets[slot], &mut servers[slot]);
                progress.set_message(format!("{scenario} / {target} (round {})", round + 1));
                let options = LoadOptions {
                    concurrency: args.concurrency as usize,
                    duration: args.duration,
                    identity_prefix: format!("{id}-{scenario}-{round}-{target}"),
                };
                let cpu = || {
                    server.cpu_time()
                        + match (&redis, target.uses_redis()) {
                            (Some(redis), true) => redis.cpu_time(),
                            _ => Duration::ZERO,
                        }
                };
                let before = cpu();
                let tally = load::run(scenario, server.address(), &options).await?;
                let used = cpu().saturating_sub(before);
                if !server.is_running() {
                    return Err(BenchError::ServerStart {
                        name: target.name().to_owned(),
                        reason: format!("it exited during {scenario}"),
                    });
                }
                if round >= args.warmup {
                    measurements[slot].push(Measurement::new(tally, used));
                }
                progress.inc(1);
            }
        }
        drop(servers);
        for (target, measured) in targets.into_iter().zip(measurements) {
            rows.push(Row::new(scenario, target, measured));
        }
    }
    progress.finish_and_clear();
    let settings = Settings {
        iterations: args.iterations,
        warmup: args.warmup,
        concurrency: args.concurrency,
        duration_s: args.duration.as_secs_f64(),
    };
    Ok(Report::new(machine, command, settings, rows))
}

/// Writes `results.md`, `results.json` and `results.svg` into `dir`.
///
/// # Errors
/// When a file cannot be written or the chart cannot be drawn.
pub fn write(report: &Report, dir: &Path) -> Result<(), BenchError> {
    std::fs::create_dir_all(dir).map_err(|e| BenchError::io(dir, e))?;
    let json = dir.join("results.json");
    let text = serde_json::to_string_pretty(report)
        .map_err(|e| BenchError::io(&json, std::io::Error::other(e)))?;
    std::fs::write(&json, text).map_err(|e| BenchError::io(&json, e))?;
    write_views(report, dir)
}

/// Writes `results.md` and `results.svg` into `dir`.
///
/// # Errors
/// When a file cannot be written or the chart cannot be drawn.
pub fn write_views(report: &Report, dir: &Path) -> Result<(), BenchError> {
    std::fs::create_dir_all(dir).map_err(|e| BenchError::io(dir, e))?;
    let markdown = dir.join("results.md");
    std::fs::write(&markdown, report.markdown()).map_err(|e| BenchError::io(&markdown, e))?;
    crate::report::chart::draw(report, &dir.join("results.svg"))
}

/// Reads a report from a `results.json`.
///
/// # Errors
/// When the file cannot be read or is not a report.
pub fn read(json: &Path) -> Result<Report, BenchError> {
    let text = std::fs::read_to_string(json).map_err(|e| BenchError::io(json, e))?;
    serde_json::from_str(&text).map_err(|e| {
        BenchError::io(
            json,
            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })
}
