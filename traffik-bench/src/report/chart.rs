//! The report as an SVG chart: throughput per scenario, one bar per target, on a log scale
//! (the Python library and traffik differ by orders of magnitude).

use std::path::Path;

use plotters::prelude::*;

use super::Report;
use crate::error::BenchError;
use crate::scenario::Scenario;
use crate::target::Target;

const PALETTE: [RGBColor; 11] = [
    RGBColor(120, 120, 120), // axum
    RGBColor(214, 39, 40),   // traffik extractor
    RGBColor(255, 127, 14),  // traffik layer
    RGBColor(140, 86, 75),   // traffik on Redis
    RGBColor(44, 160, 44),   // tower_governor
    RGBColor(31, 119, 180),  // Python
    RGBColor(23, 190, 207),  // Python middleware
    RGBColor(148, 103, 189), // Python on Redis
    RGBColor(190, 190, 190), // ws axum
    RGBColor(255, 152, 150), // ws traffik
    RGBColor(174, 199, 232), // ws Python
];

fn color(target: Target) -> RGBColor {
    let index = Target::ALL.iter().position(|t| *t == target).unwrap_or(0);
    PALETTE[index]
}

fn per_second(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.0}M", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.0}k", value / 1e3)
    } else {
        format!("{value:.0}")
    }
}

fn chart_error(error: impl std::fmt::Display) -> BenchError {
    BenchError::Chart(error.to_string())
}

/// Draws `report`'s median throughputs to an SVG file at `path`.
///
/// # Errors
/// When there is nothing to draw or the file cannot be written.
#[allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)] // chart coordinates: a handful of rows; a label index is rounded and checked >= 0 first
pub fn draw(report: &Report, path: &Path) -> Result<(), BenchError> {
    let mut scenarios: Vec<Scenario> = Vec::new();
    let mut targets: Vec<Target> = Vec::new();
    let mut rates = Vec::new();
    for row in &report.rows {
        if let Some(rate) = row
            .summary
            .per_second
            .map(|s| s.median)
            .filter(|r| *r > 0.0)
        {
            if !scenarios.contains(&row.scenario) {
                scenarios.push(row.scenario);
            }
            if !targets.contains(&row.target) {
                targets.push(row.target);
            }
            rates.push((row.scenario, row.target, rate));
        }
    }
    if rates.is_empty() {
        return Err(chart_error("no throughput to draw"));
    }
    targets.sort();
    let slots = |scenario: Scenario| -> Vec<Target> {
        targets
            .iter()
            .copied()
            .filter(|t| rates.iter().any(|(s, rt, _)| *s == scenario && rt == t))
            .collect()
    };
    let widest = scenarios.iter().map(|s| slots(*s).len()).max().unwrap_or(1);
    let n = scenarios.len();
    let height = u32::try_from(120 + n * (widest * 12 + 14)).unwrap_or(4000);
    let low = rates.iter().map(|r| r.2).fold(f64::INFINITY, f64::min) / 2.0;
    // Room on the right for the legend.
    let high = rates.iter().map(|r| r.2).fold(0.0, f64::max) * 12.0;

    let root = SVGBackend::new(path, (1000, height)).into_drawing_area();
    root.fill(&WHITE).map_err(chart_error)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "traffik-bench: requests (messages) per second, median",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(150)
        .build_cartesian_2d((low.max(1.0)..high).log_scale(), -0.5f64..(n as f64 - 0.5))
        .map_err(chart_error)?;
    let name_at = |y: &f64| {
        let index = y.round();
        if (y - index).abs() > 0.01 || index < 0.0 {
            return String::new();
        }
        let index = index as usize;
        scenarios
            .get(n.wrapping_sub(1).wrapping_sub(index))
            .map(|s| s.name().to_owned())
            .unwrap_or_default()
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n)
        .y_label_formatter(&name_at)
        .x_label_formatter(&|x| per_second(*x))
        .x_desc("per second, log scale (median of the iterations)")
        .draw()
        .map_err(chart_error)?;
    for target in &targets {
        let fill = color(*target);
        let bars: Vec<Rectangle<(f64, f64)>> = rates
            .iter()
            .filter(|(_, t, _)| t == target)
            .map(|(scenario, _, rate)| {
                let index = scenarios.iter().position(|s| s == scenario).unwrap_or(0);
                let group = slots(*scenario);
                let slot = group.iter().position(|t| t == target).unwrap_or(0);
                let width = 0.8 / group.len() as f64;
                let center = (n - 1 - index) as f64;
                let top = (slot as f64).mul_add(-width, center + 0.4);
                Rectangle::new(
                    [(low.max(1.0), top), (*rate, top - width * 0.85)],
                    fill.filled(),
                )
            })
            .collect();
        chart
            .draw_series(bars)
            .map_err(chart_error)?
            .label(target.name())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], fill.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(chart_error)?;
    root.present().map_err(chart_error)?;
    Ok(())
}
