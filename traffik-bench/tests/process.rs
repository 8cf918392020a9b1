//! Servers the harness starts are real processes, stopped by PID when dropped; one that fails
//! to start is a clear error carrying the end of its log.

use std::ffi::OsString;
use std::path::Path;

use traffik_bench::BenchError;
use traffik_bench::process::{Launch, Readiness, ServerProcess, free_port};

fn serve(rate: &str) -> Launch {
    Launch {
        name: "traffik-extractor".to_owned(),
        program: env!("CARGO_BIN_EXE_traffik-bench").into(),
        args: ["serve", "--target", "traffik-extractor", "--rate", rate]
            .iter()
            .map(OsString::from)
            .collect(),
        envs: Vec::new(),
        core: None,
        readiness: Readiness::Http,
    }
}

fn with_port(mut launch: Launch, port: u16) -> Launch {
    launch.args.push("--port".into());
    launch.args.push(port.to_string().into());
    launch
}

#[tokio::test]
async fn a_started_server_answers_and_is_gone_once_dropped() {
    let logs = std::env::temp_dir().join(format!("traffik-bench-process-{}", std::process::id()));
    let port = free_port().expect("a port");
    let mut server = ServerProcess::start(&with_port(serve("5/s"), port), port, &logs)
        .await
        .expect("the server starts");
    let pid = server.pid();
    let proc_entry = format!("/proc/{pid}");
    assert!(Path::new(&proc_entry).exists());
    assert!(server.is_running());
    assert_eq!(server.address().port(), port);
    assert!(server.address().ip().is_loopback());
    drop(server);
    assert!(!Path::new(&proc_entry).exists(), "{pid} still runs");
    let _ = std::fs::remove_dir_all(&logs);
}

#[tokio::test]
async fn a_server_that_exits_at_start_is_a_clear_error() {
    let logs = std::env::temp_dir().join(format!("traffik-bench-bad-{}", std::process::id()));
    let port = free_port().expect("a port");
    let error = ServerProcess::start(&with_port(serve("5/fortnight"), port), port, &logs)
        .await
        .expect_err("a bad rate");
    let message = error.to_string();
    assert!(matches!(error, BenchError::ServerStart { .. }), "{message}");
    assert!(message.contains("exited"), "{message}");
    assert!(
        message.contains("fortnight"),
        "the log's end is shown: {message}"
    );
    let _ = std::fs::remove_dir_all(&logs);
}
