//! The command line: bad arguments are refused with a message that says what is wrong, before
//! anything starts; a small real run writes its three result files.

use std::process::{Command, Output};

fn bench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_traffik-bench"))
        .args(args)
        .output()
        .expect("traffik-bench runs")
}

fn refused(args: &[&str], message: &[&str]) {
    let output = bench(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{args:?}: {stderr}");
    for part in message {
        assert!(
            stderr.contains(part),
            "{args:?}: expected {part:?} in {stderr}"
        );
    }
    assert!(output.stdout.is_empty(), "{args:?} printed results");
}

#[test]
fn bad_arguments_are_refused_with_a_clear_message() {
    refused(
        &["run", "--targets", "nginx"],
        &["invalid value 'nginx'", "traffik-extractor"],
    );
    refused(
        &["run", "--scenarios", "below-limit,fastest"],
        &["invalid value 'fastest'", "hot-key"],
    );
    refused(&["run", "--iterations", "0"], &["--iterations", "0"]);
    refused(
        &["run", "--concurrency", "5000"],
        &["--concurrency", "5000"],
    );
    refused(&["run", "--duration", "0"], &["out of range"]);
    refused(&["run", "--duration", "soon"], &["not a number of seconds"]);
    refused(&["run", "--warmup", "21"], &["--warmup", "21"]);
    refused(&["launch"], &["unrecognized subcommand 'launch'"]);
}

#[test]
fn choices_that_do_not_fit_together_are_refused() {
    refused(
        &["run", "--targets", "python", "--no-pin"],
        &["target `python` needs --with-python"],
    );
    refused(
        &[
            "run",
            "--targets",
            "ws-axum,axum",
            "--scenarios",
            "hot-key,ws-burst",
            "--no-pin",
        ],
        &["none of the targets (axum, ws-axum) runs any of the scenarios"],
    );
}

#[test]
fn a_small_run_writes_markdown_json_and_svg() {
    let out = std::env::temp_dir().join(format!("traffik-bench-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let output = bench(&[
        "run",
        "--targets",
        "traffik-extractor,axum",
        "--scenarios",
        "over-limit",
        "--iterations",
        "2",
        "--warmup",
        "0",
        "--no-pin",
        "--out",
        out.to_str().expect("a UTF-8 temp dir"),
    ]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("| over-limit | traffik-extractor |"),
        "{stdout}"
    );
    assert!(stdout.contains("50/50 ✓"), "{stdout}");

    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("results.json")).expect("results.json"),
    )
    .expect("valid JSON");
    let rows = json["rows"].as_array().expect("rows");
    // axum takes part only in the never-refusing scenarios.
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["target"], "traffik-extractor");
    assert_eq!(rows[0]["summary"]["exact"], true);
    let measurements = rows[0]["measurements"].as_array().expect("measurements");
    assert_eq!(measurements.len(), 2);
    for m in measurements {
        assert_eq!(
            (m["allowed"].as_u64(), m["throttled"].as_u64()),
            (Some(50), Some(150))
        );
        assert!(
            m["server_cpu_us"].as_f64().is_some_and(|cpu| cpu > 0.0),
            "{m}"
        );
    }
    let svg = std::fs::read_to_string(out.join("results.svg")).expect("results.svg");
    assert!(svg.starts_with("<svg"), "{}", &svg[..svg.len().min(80)]);
    assert!(svg.contains("over-limit") && svg.contains("traffik-extractor"));
    assert_eq!(
        std::fs::read_to_string(out.join("results.md")).expect("results.md"),
        format!("{}\n", stdout.trim_end())
    );

    // `render` writes the same views again from the JSON.
    std::fs::remove_file(out.join("results.md")).expect("remove results.md");
    let rendered = bench(&["render", out.join("results.json").to_str().expect("UTF-8")]);
    assert!(
        rendered.status.success(),
        "{}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    assert_eq!(rendered.stdout, output.stdout);
    assert!(out.join("results.md").exists());
    let _ = std::fs::remove_dir_all(&out);
}

#[test]
fn render_refuses_a_file_that_is_not_a_report() {
    let bogus =
        std::env::temp_dir().join(format!("traffik-bench-bogus-{}.json", std::process::id()));
    std::fs::write(&bogus, "{\"rows\": 3}").expect("write");
    let output = bench(&["render", bogus.to_str().expect("UTF-8")]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("traffik-bench-bogus"), "{stderr}");
    let _ = std::fs::remove_file(&bogus);
}
