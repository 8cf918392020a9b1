//! `traffik-bench`: see `traffik-bench run --help` and `docs/benchmarks.md`.

use std::process::ExitCode;

use clap::Parser;
use tokio::net::TcpListener;
use traffik_bench::cli::{Cli, Command, RenderArgs, RunArgs, ServeArgs};
use traffik_bench::machine::Machine;
use traffik_bench::server::{self, ServerConfig};
use traffik_bench::{BenchError, run};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => measure(&args),
        Command::Render(args) => render(&args),
        Command::Serve(args) => serve(args),
    };
    match result {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(if matches!(error, BenchError::Usage(_)) {
                2
            } else {
                1
            })
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, BenchError> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| BenchError::Load(format!("starting the async runtime: {error}")))
}

fn measure(args: &RunArgs) -> Result<ExitCode, BenchError> {
    let plan = args.plan()?;
    let mut machine = Machine::describe();
    if !args.no_pin {
        machine.pin_client();
    }
    let prepared = run::prepare(&plan, args, &machine)?;
    let command = std::iter::once("traffik-bench".to_owned())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ");
    eprintln!("{}", machine.summary());
    let report = runtime()?.block_on(run::run(&plan, args, &prepared, machine, command))?;
    run::write(&report, &args.out)?;
    println!("{}", report.markdown());
    eprintln!(
        "wrote {0}/results.md, {0}/results.json and {0}/results.svg",
        args.out.display()
    );
    if !report.all_exact() {
        eprintln!("note: some limiters did not answer exactly as expected (marked ✗)");
    }
    Ok(ExitCode::SUCCESS)
}

fn render(args: &RenderArgs) -> Result<ExitCode, BenchError> {
    let report = run::read(&args.json)?;
    let dir = match &args.out {
        Some(dir) => dir.clone(),
        None => args
            .json
            .parent()
            .map_or_else(|| ".".into(), std::path::Path::to_path_buf),
    };
    run::write_views(&report, &dir)?;
    println!("{}", report.markdown());
    Ok(ExitCode::SUCCESS)
}

fn serve(args: ServeArgs) -> Result<ExitCode, BenchError> {
    let config = ServerConfig {
        target: args.target,
        rate: args.rate,
        redis_url: args.redis_url,
    };
    runtime()?.block_on(async {
        let listener = TcpListener::bind(("127.0.0.1", args.port))
            .await
            .map_err(|error| BenchError::ServerStart {
                name: config.target.name().to_owned(),
                reason: format!("binding 127.0.0.1:{}: {error}", args.port),
            })?;
        server::serve(&config, listener).await
    })?;
    Ok(ExitCode::SUCCESS)
}
