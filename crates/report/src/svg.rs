//! `latency.svg` and `rate.svg`, drawn with plotters' SVG backend from the same
//! bounded data as the page (so they are bounded too), faults shaded.

use crate::data::ReportData;
use plotters::prelude::*;

const SIZE: (u32, u32) = (1200, 480);
const FAULT: RGBColor = RGBColor(138, 127, 214);

fn palette(outcome: &str, n: usize) -> RGBColor {
    let list: &[RGBColor] = match outcome {
        "ok" => &[
            RGBColor(47, 158, 91),
            RGBColor(31, 111, 235),
            RGBColor(124, 58, 237),
            RGBColor(14, 116, 144),
        ],
        "info" => &[
            RGBColor(227, 155, 45),
            RGBColor(194, 65, 12),
            RGBColor(180, 83, 9),
        ],
        _ => &[
            RGBColor(154, 163, 173),
            RGBColor(100, 116, 139),
            RGBColor(107, 114, 128),
        ],
    };
    list[n % list.len()]
}

fn placeholder(title: &str, why: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"80\"><text x=\"10\" y=\"30\" font-family=\"sans-serif\" font-size=\"18\">{}</text><text x=\"10\" y=\"60\" font-family=\"sans-serif\" font-size=\"14\">{}</text></svg>\n",
        crate::html::escape(title),
        crate::html::escape(why),
        w = SIZE.0
    )
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// The end of both charts: the legend at the top right, then the SVG written out.
fn finish<'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, CT>,
    root: &DrawingArea<SVGBackend<'a>, plotters::coord::Shift>,
) -> DrawResult {
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .draw()?;
    root.present()?;
    Ok(())
}

/// The chart drawn into `buf`, or a placeholder that says why it could not be.
fn drawn_or_placeholder(buf: String, drawn: DrawResult, title: &str) -> String {
    match drawn {
        Ok(()) => buf,
        Err(e) => placeholder(title, &format!("could not draw: {e}")),
    }
}

/// Latency over time per operation and outcome (log scale); every op up to
/// [`crate::data::MAX_RAW_POINTS`], per-bucket median, 95th percentile and maximum
/// above.
pub fn latency(data: &ReportData) -> String {
    let Some(lat) = data.latency.as_ref().filter(|l| !l.series.is_empty()) else {
        return placeholder("Latency", "no completed ops with times in this history");
    };
    let mut buf = String::new();
    let drawn: DrawResult =
        (|| {
            let root = SVGBackend::with_string(&mut buf, SIZE).into_drawing_area();
            root.fill(&WHITE)?;
            let (mut lo, mut hi) = (f64::INFINITY, 0f64);
            for s in &lat.series {
                for p in &s.points {
                    let (a, b) = if lat.raw { (p[1], p[1]) } else { (p[1], p[3]) };
                    if a > 0.0 {
                        lo = lo.min(a);
                    }
                    hi = hi.max(b);
                }
            }
            let lo = lo.clamp(0.01, 1.0);
            let hi = hi.max(lo * 10.0);
            let t_end = data.meta.t_end.max(1e-3);
            let caption = if lat.raw {
                "Latency of every op".to_string()
            } else {
                format!(
                    "Latency of {} ops: median (line), 95th percentile, max (dots)",
                    lat.points
                )
            };
            let mut chart = ChartBuilder::on(&root)
                .caption(caption, ("sans-serif", 18))
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(64)
                .build_cartesian_2d(0f64..t_end, (lo..hi).log_scale())?;
            chart
                .configure_mesh()
                .x_desc("time (s)")
                .y_desc("latency (ms)")
                .light_line_style(WHITE)
                .draw()?;
            chart.draw_series(data.faults.iter().map(|f| {
                Rectangle::new([(f.s, lo), (f.e.max(f.s), hi)], FAULT.mix(0.15).filled())
            }))?;
            let mut nth: std::collections::HashMap<&str, usize> = Default::default();
            for s in &lat.series {
                let n = nth.entry(s.o).or_default();
                let color = palette(s.o, *n);
                *n += 1;
                let label = format!("{} {}", s.f, s.o);
                if lat.raw {
                    chart
                        .draw_series(s.points.iter().map(|p| {
                            Circle::new((p[0], p[1].max(lo)), 2, color.mix(0.7).filled())
                        }))?
                        .label(label)
                        .legend(move |(x, y)| {
                            Rectangle::new([(x, y - 4), (x + 10, y + 4)], color.filled())
                        });
                } else {
                    // No line across buckets without ops (a partition, a dead node).
                    for run in s
                        .points
                        .chunk_by(|a, b| b[0] - a[0] <= 1.5 * lat.bucket_s)
                        .filter(|r| r.len() > 1)
                    {
                        chart.draw_series(LineSeries::new(
                            run.iter().map(|p| (p[0], p[1].max(lo))),
                            color.stroke_width(2),
                        ))?;
                        chart.draw_series(LineSeries::new(
                            run.iter().map(|p| (p[0], p[2].max(lo))),
                            color.mix(0.6).stroke_width(1),
                        ))?;
                    }
                    chart
                        .draw_series(
                            s.points
                                .iter()
                                .map(|p| Circle::new((p[0], p[3].max(lo)), 2, color.filled())),
                        )?
                        .label(label)
                        .legend(move |(x, y)| {
                            Rectangle::new([(x, y - 4), (x + 10, y + 4)], color.filled())
                        });
                }
            }
            finish(&mut chart, &root)
        })();
    drawn_or_placeholder(buf, drawn, "Latency")
}

/// Completions per second by outcome, faults shaded.
pub fn rate(data: &ReportData) -> String {
    let Some(rate) = data.rate.as_ref().filter(|r| !r.series.is_empty()) else {
        return placeholder("Throughput", "no completed ops with times in this history");
    };
    let mut buf = String::new();
    let drawn: DrawResult =
        (|| {
            let root = SVGBackend::with_string(&mut buf, SIZE).into_drawing_area();
            root.fill(&WHITE)?;
            let hi = rate
                .series
                .iter()
                .flat_map(|(_, pts)| pts.iter().map(|p| p[1]))
                .fold(0f64, f64::max)
                .max(1.0)
                * 1.05;
            let t_end = data.meta.t_end.max(1e-3);
            let mut chart = ChartBuilder::on(&root)
                .caption(
                    format!(
                        "Throughput: completions per second ({:.2} s buckets)",
                        rate.bucket_s
                    ),
                    ("sans-serif", 18),
                )
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(64)
                .build_cartesian_2d(0f64..t_end, 0f64..hi)?;
            chart
                .configure_mesh()
                .x_desc("time (s)")
                .y_desc("ops/s")
                .light_line_style(WHITE)
                .draw()?;
            chart.draw_series(data.faults.iter().map(|f| {
                Rectangle::new([(f.s, 0.0), (f.e.max(f.s), hi)], FAULT.mix(0.15).filled())
            }))?;
            for (o, pts) in &rate.series {
                let color = palette(o, 0);
                chart
                    .draw_series(LineSeries::new(
                        pts.iter().map(|p| (p[0], p[1])),
                        color.stroke_width(2),
                    ))?
                    .label(*o)
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 4), (x + 10, y + 4)], color.filled())
                    });
            }
            finish(&mut chart, &root)
        })();
    drawn_or_placeholder(buf, drawn, "Throughput")
}
