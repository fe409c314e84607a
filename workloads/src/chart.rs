//! `chart.svg`: frames acked per second (top) and capture-to-visible
//! latency p50/p99 per second (bottom), over the run. Plain SVG, written by
//! hand: two line charts need no plotting library.

use std::fmt::Write;

use crate::stats::Second;

const WIDTH: f64 = 900.0;
const PANEL: f64 = 220.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const GAP: f64 = 60.0;

/// The chart of `seconds` as an SVG document.
pub fn svg(title: &str, seconds: &[Second]) -> String {
    let height = TOP + 2.0 * PANEL + GAP + 40.0;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(out, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="20" font-size="14">lastseen-workloads: {}</text>"#,
        escape(title)
    );
    let last_t = seconds.last().map_or(1, |s| s.t.max(1)) as f64;
    let acked: Vec<(f64, f64)> = seconds
        .iter()
        .map(|s| (s.t as f64, s.acked as f64))
        .collect();
    panel(
        &mut out,
        TOP,
        "frames acked per second",
        last_t,
        &[("#1f77b4", "acked/s", &acked)],
    );
    // Seconds without an acked frame have no latency: leave them out of the lines.
    let with_frames = seconds.iter().filter(|s| s.acked > 0);
    let p50: Vec<(f64, f64)> = with_frames
        .clone()
        .map(|s| (s.t as f64, s.latency_p50_ms))
        .collect();
    let p99: Vec<(f64, f64)> = with_frames
        .map(|s| (s.t as f64, s.latency_p99_ms))
        .collect();
    panel(
        &mut out,
        TOP + PANEL + GAP,
        "capture-to-visible latency (ms)",
        last_t,
        &[("#2ca02c", "p50", &p50), ("#d62728", "p99", &p99)],
    );
    let _ = writeln!(
        out,
        r#"<text x="{}" y="{}" text-anchor="middle">seconds since start</text>"#,
        LEFT + (WIDTH - LEFT - RIGHT) / 2.0,
        height - 8.0
    );
    out.push_str("</svg>\n");
    out
}

type Series<'a> = (&'a str, &'a str, &'a [(f64, f64)]);

fn panel(out: &mut String, top: f64, title: &str, last_t: f64, series: &[Series<'_>]) {
    let plot_width = WIDTH - LEFT - RIGHT;
    let max_y = series
        .iter()
        .flat_map(|(_, _, points)| points.iter().map(|(_, y)| *y))
        .fold(0.0_f64, f64::max);
    let max_y = nice_ceiling(max_y);
    let x = |t: f64| LEFT + t / last_t * plot_width;
    let y = |v: f64| top + PANEL - v / max_y * PANEL;
    let _ = writeln!(
        out,
        r#"<text x="{LEFT}" y="{}">{}</text>"#,
        top - 8.0,
        escape(title)
    );
    let _ = writeln!(
        out,
        r##"<rect x="{LEFT}" y="{top}" width="{plot_width}" height="{PANEL}" fill="none" stroke="#888"/>"##
    );
    for step in 0..=4 {
        let value = max_y * f64::from(step) / 4.0;
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}" stroke="#eee"/><text x="{}" y="{:.1}" text-anchor="end">{}</text>"##,
            LEFT + plot_width,
            LEFT - 6.0,
            y(value) + 4.0,
            format_value(value),
            y = y(value),
        );
    }
    for step in 0..=5 {
        let t = last_t * f64::from(step) / 5.0;
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{:.0}</text>"#,
            x(t),
            top + PANEL + 16.0,
            t
        );
    }
    for (index, (colour, name, points)) in series.iter().enumerate() {
        if !points.is_empty() {
            let path: Vec<String> = points
                .iter()
                .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
                .collect();
            let _ = writeln!(
                out,
                r#"<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{}"/>"#,
                path.join(" ")
            );
        }
        let legend_x = LEFT + plot_width - 80.0 * (series.len() - index) as f64;
        let _ = writeln!(
            out,
            r#"<rect x="{legend_x}" y="{}" width="12" height="3" fill="{colour}"/><text x="{}" y="{}">{}</text>"#,
            top - 12.0,
            legend_x + 16.0,
            top - 8.0,
            escape(name)
        );
    }
}

/// 1, 2 or 5 times a power of ten, at least `value` (and at least 1).
fn nice_ceiling(value: f64) -> f64 {
    if value <= 1.0 {
        return 1.0;
    }
    let magnitude = 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|candidate| *candidate >= value)
        .unwrap_or(10.0 * magnitude)
}

fn format_value(value: f64) -> String {
    if value >= 10.0 || value == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.1}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_on_round_numbers() {
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.2), 5.0);
        assert_eq!(nice_ceiling(17.0), 20.0);
        assert_eq!(nice_ceiling(480.0), 500.0);
        assert_eq!(nice_ceiling(1000.0), 1000.0);
    }

    #[test]
    fn the_chart_draws_one_line_per_series_and_escapes_the_title() {
        let seconds: Vec<Second> = (0..10)
            .map(|t| Second {
                t,
                acked: t * 2,
                latency_p50_ms: 40.0,
                latency_p99_ms: 90.0 + t as f64,
                ..Second::default()
            })
            .collect();
        let svg = svg("a<b", &seconds);
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("<polyline").count(), 3);
        assert!(svg.contains("a&lt;b"));
        // An empty run still makes a valid, empty chart.
        let empty = super::svg("empty", &[]);
        assert_eq!(empty.matches("<polyline").count(), 0);
        assert!(empty.trim_end().ends_with("</svg>"));
    }
}
