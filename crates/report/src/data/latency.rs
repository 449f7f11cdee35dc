//! The latency and rate phase: latency per (f, outcome) over time, point by point
//! up to [`MAX_RAW_POINTS`] completed ops and as per-bucket quantiles above, and
//! completions per second per outcome. Both need times: a history without them
//! has neither.

use super::{thousands, Axis, BUCKETS, MAX_RAW_POINTS};
use serde::Serialize;
use splitbrain_history::History;
use std::collections::HashMap;

#[derive(Debug, Serialize)]
pub struct Series {
    pub f: String,
    pub o: &'static str,
    /// Raw: `[t, ms]`; bucketed: `[t, p50, p95, max, count]`.
    pub points: Vec<Vec<f64>>,
}

#[derive(Debug, Serialize)]
pub struct Latency {
    pub raw: bool,
    /// The bucket width when not raw, in seconds.
    pub bucket_s: f64,
    pub series: Vec<Series>,
    pub points: usize,
}

#[derive(Debug, Serialize)]
pub struct Rate {
    pub bucket_s: f64,
    /// Per outcome: `[t, ops per second]`.
    pub series: Vec<(&'static str, Vec<[f64; 2]>)>,
}

/// A latency series: the op's `f` and its outcome.
type SeriesKey = (String, &'static str);

/// The width of a time bucket in seconds: [`BUCKETS`] of them span the history.
fn bucket_width(t_end: f64) -> f64 {
    (t_end / BUCKETS as f64).max(1e-3)
}

/// Latency per (f, outcome), sorted by f then outcome. `None` without times.
pub(super) fn latency(
    history: &History,
    axis: &Axis,
    t_end: f64,
    cuts: &mut Vec<String>,
) -> Option<Latency> {
    if !axis.seconds {
        return None;
    }
    let ops = history.ops();
    let mut by_series: Vec<(SeriesKey, Vec<[f64; 2]>)> = Vec::new();
    let mut index: HashMap<SeriesKey, usize> = HashMap::new();
    let mut points = 0;
    for p in history.pairs() {
        let Some(c) = p.completion else { continue };
        let inv = &ops[p.invoke];
        let s = axis.t(history, p.invoke);
        let ms = (axis.t(history, c) - s) * 1e3;
        let key = (inv.f.to_string(), ops[c].kind.as_str());
        let at = *index.entry(key.clone()).or_insert_with(|| {
            by_series.push((key, Vec::new()));
            by_series.len() - 1
        });
        by_series[at].1.push([s, ms]);
        points += 1;
    }
    by_series.sort_by(|a, b| a.0.cmp(&b.0));
    let raw = points <= MAX_RAW_POINTS;
    let width = bucket_width(t_end);
    let series = by_series
        .into_iter()
        .map(|((f, o), pts)| Series {
            f,
            o,
            points: if raw {
                pts.iter().map(|p| p.to_vec()).collect()
            } else {
                quantiles(&pts, width)
            },
        })
        .collect();
    if !raw {
        cuts.push(format!(
            "latency: {} ops drawn as median, 95th percentile and maximum per {:.2} s bucket",
            thousands(points),
            width
        ));
    }
    Some(Latency {
        raw,
        bucket_s: width,
        series,
        points,
    })
}

/// Completions per second per outcome (`ok`, `fail`, `info`; an outcome that never
/// happened has no series). `None` without times.
pub(super) fn rate(history: &History, axis: &Axis, t_end: f64) -> Option<Rate> {
    if !axis.seconds {
        return None;
    }
    let ops = history.ops();
    let width = bucket_width(t_end);
    let mut counts: Vec<(&'static str, Vec<f64>)> = ["ok", "fail", "info"]
        .into_iter()
        .map(|o| (o, vec![0.0; BUCKETS + 1]))
        .collect();
    for p in history.pairs() {
        let Some(c) = p.completion else { continue };
        let b = ((axis.t(history, c) / width) as usize).min(BUCKETS);
        if let Some(row) = counts.iter_mut().find(|(o, _)| *o == ops[c].kind.as_str()) {
            row.1[b] += 1.0;
        }
    }
    Some(Rate {
        bucket_s: width,
        series: counts
            .into_iter()
            .filter(|(_, c)| c.iter().any(|&n| n > 0.0))
            .map(|(o, c)| {
                let pts = c
                    .iter()
                    .enumerate()
                    .map(|(b, n)| [((b as f64 + 0.5) * width).min(t_end), n / width])
                    .collect();
                (o, pts)
            })
            .collect(),
    })
}

/// Per bucket of `width` seconds: `[t, p50, p95, max, count]`. At most
/// `BUCKETS + 1` points, whatever the times.
fn quantiles(pts: &[[f64; 2]], width: f64) -> Vec<Vec<f64>> {
    let mut buckets: Vec<Vec<f64>> = vec![Vec::new(); BUCKETS + 1];
    for p in pts {
        buckets[((p[0] / width) as usize).min(BUCKETS)].push(p[1]);
    }
    buckets
        .into_iter()
        .enumerate()
        .filter(|(_, v)| !v.is_empty())
        .map(|(b, mut v)| {
            v.sort_by(|a, b| a.total_cmp(b));
            let q = |f: f64| v[((v.len() - 1) as f64 * f).round() as usize];
            vec![
                (b as f64 + 0.5) * width,
                q(0.5),
                q(0.95),
                v[v.len() - 1],
                v.len() as f64,
            ]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::{tests::history, Axis, BUCKETS};
    use super::{latency, quantiles, rate};

    const TIMED: &str = r#"{"process":0,"type":"invoke","f":"write","value":1,"time":0}
{"process":0,"type":"ok","f":"write","value":1,"time":2000000}
{"process":1,"type":"invoke","f":"read","value":null,"time":1000000000}
{"process":1,"type":"fail","f":"read","value":null,"time":1005000000}
{"process":0,"type":"invoke","f":"read","value":null,"time":1500000000}
{"process":0,"type":"ok","f":"read","value":1,"time":1501000000}
{"process":2,"type":"invoke","f":"read","value":null,"time":2000000000}"#;

    #[test]
    fn latency_is_drawn_point_by_point_per_f_and_outcome() {
        let h = history(TIMED);
        let axis = Axis::of(&h);
        let mut cuts = Vec::new();
        let l = latency(&h, &axis, axis.end(&h), &mut cuts).expect("times");
        assert!(l.raw);
        // The pending read has no latency.
        assert_eq!(l.points, 3);
        let series: Vec<(&str, &str, usize)> = l
            .series
            .iter()
            .map(|s| (s.f.as_str(), s.o, s.points.len()))
            .collect();
        assert_eq!(
            series,
            [("read", "fail", 1), ("read", "ok", 1), ("write", "ok", 1)]
        );
        let p = &l.series[0].points[0];
        assert_eq!(p[0], 1.0);
        assert!((p[1] - 5.0).abs() < 1e-6, "{p:?}");
        assert!(cuts.is_empty());
    }

    #[test]
    fn rate_counts_completions_per_outcome_in_buckets() {
        let h = history(TIMED);
        let axis = Axis::of(&h);
        let r = rate(&h, &axis, axis.end(&h)).expect("times");
        let outcomes: Vec<&str> = r.series.iter().map(|(o, _)| *o).collect();
        // No info completed: no info series.
        assert_eq!(outcomes, ["ok", "fail"]);
        let ok: f64 = r.series[0].1.iter().map(|p| p[1] * r.bucket_s).sum();
        assert!((ok - 2.0).abs() < 1e-9, "{ok}");
        assert!(r.series.iter().all(|(_, pts)| pts.len() == BUCKETS + 1));
    }

    #[test]
    fn without_times_there_is_neither_latency_nor_rate() {
        let h = history(
            r#"{"process":0,"type":"invoke","f":"read","value":null}
{"process":0,"type":"ok","f":"read","value":1}"#,
        );
        let axis = Axis::of(&h);
        assert!(latency(&h, &axis, 1.0, &mut Vec::new()).is_none());
        assert!(rate(&h, &axis, 1.0).is_none());
    }

    #[test]
    fn quantiles_are_median_95th_max_and_count_per_bucket() {
        let pts: Vec<[f64; 2]> = (1..=100).map(|ms| [0.5, ms as f64]).collect();
        let q = quantiles(&pts, 1.0);
        assert_eq!(q, [vec![0.5, 51.0, 95.0, 100.0, 100.0]]);
        // Times past the last bucket land in it.
        let q = quantiles(&[[1e9, 1.0]], 1.0);
        assert_eq!(q.len(), 1);
        assert_eq!(q[0][0], (BUCKETS as f64 + 0.5));
    }
}
