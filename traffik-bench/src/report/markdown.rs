//! The report as Markdown: what `docs/benchmarks.md` shows.

use std::fmt::Write;

use super::{Report, Row};
use crate::stats::Spread;

fn rate(spread: Option<Spread>) -> String {
    spread.map_or_else(
        || "–".to_owned(),
        |s| {
            format!(
                "{} ({}–{})",
                thousands(s.median),
                thousands(s.min),
                thousands(s.max)
            )
        },
    )
}

// Report figures: `as` saturates, negatives to 0.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn thousands(value: f64) -> String {
    let whole = value.round() as u64;
    let digits = whole.to_string();
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

fn micros(spread: Option<Spread>) -> String {
    spread.map_or_else(|| "–".to_owned(), |s| format_micros(s.median))
}

fn format_micros(value: f64) -> String {
    if value >= 100.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

/// A share of the unlimited server's throughput.
fn percent(value: Option<f64>) -> String {
    value.map_or_else(String::new, |r| format!("{:.1} %", r * 100.0))
}

/// A multiple of the Python library's throughput.
fn times(value: Option<f64>) -> String {
    match value {
        Some(r) if r >= 10.0 => format!("{r:.0}×"),
        Some(r) => format!("{r:.1}×"),
        None => String::new(),
    }
}

fn correctness(row: &Row) -> String {
    let Some(last) = row.measurements.last() else {
        return "no data".to_owned();
    };
    let verdict = if row.summary.exact { "✓" } else { "✗" };
    if row.scenario.never_refuses() {
        let refused: u64 = row.measurements.iter().map(|m| m.throttled).sum();
        let errors: u64 = row.measurements.iter().map(|m| m.errors).sum();
        return format!("{refused} refused, {errors} errors {verdict}");
    }
    let expected = row.scenario.expected(last.sent);
    if row.summary.exact {
        format!("{}/{} {verdict}", last.allowed, expected.allowed)
    } else {
        let seen: Vec<String> = row
            .measurements
            .iter()
            .map(|m| {
                if m.errors > 0 {
                    format!("{} (+{} errors)", m.allowed, m.errors)
                } else {
                    m.allowed.to_string()
                }
            })
            .collect();
        format!("{}/{} {verdict}", seen.join(", "), expected.allowed)
    }
}

pub(super) fn render(report: &Report) -> String {
    let mut out = String::new();
    let settings = report.settings;
    let _ = writeln!(out, "Machine: {}.", report.machine.summary());
    let _ = writeln!(out);
    let _ = writeln!(out, "Command: `{}`", report.command);
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{} iterations after {} warm-up; {} connections in the concurrent and sustained HTTP \
         scenarios; sustained scenarios run {} s. Figures are medians over the iterations, \
         throughput with min–max; ratios are of medians from this run.",
        settings.iterations, settings.warmup, settings.concurrency, settings.duration_s
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "| scenario | target | req/s or msg/s (min–max) | vs unlimited | vs Python | p50 µs | p95 µs | p99 µs | server CPU µs/req | allowed/expected |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---|");
    for row in &report.rows {
        let s = &row.summary;
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.scenario,
            row.target,
            rate(s.per_second),
            percent(s.vs_unlimited),
            times(s.vs_python),
            micros(s.p50_us),
            micros(s.p95_us),
            micros(s.p99_us),
            micros(s.server_cpu_us),
            correctness(row),
        );
    }
    let failures: Vec<String> = report
        .rows
        .iter()
        .filter(|row| !row.summary.exact)
        .filter_map(|row| {
            let error = row
                .measurements
                .iter()
                .find_map(|m| m.first_error.clone())?;
            Some(format!("- {} / {}: {error}", row.scenario, row.target))
        })
        .collect();
    if !failures.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "Errors:");
        for failure in failures {
            let _ = writeln!(out, "{failure}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(1_234_567.4), "1,234,567");
        assert_eq!(thousands(999.0), "999");
        assert_eq!(percent(Some(0.953)), "95.3 %");
        assert_eq!(percent(None), "");
        assert_eq!(times(Some(1.48)), "1.5×");
        assert_eq!(times(Some(42.4)), "42×");
        assert_eq!(format_micros(12.34), "12.3");
        assert_eq!(format_micros(1234.6), "1235");
    }
}
