//! The faults phase: intervals from the nemesis ops, at most [`MAX_FAULTS`].

use super::{short, Axis, MAX_FAULTS};
use serde::Serialize;
use splitbrain_history::{History, OpType};
use std::collections::{HashMap, VecDeque};

#[derive(Debug, Serialize)]
pub struct Fault {
    pub f: String,
    pub s: f64,
    pub e: f64,
    pub v: String,
}

/// Fault intervals from the nemesis ops: `start-X` to the next `stop-X`; a fault
/// never stopped lasts to the end; other nemesis ops are instants.
pub(super) fn faults(
    history: &History,
    axis: &Axis,
    t_end: f64,
    cuts: &mut Vec<String>,
) -> Vec<Fault> {
    let mut out: Vec<Fault> = Vec::new();
    // Several starts of one kind before its stops: each stop ends the oldest.
    let mut open: HashMap<String, VecDeque<usize>> = HashMap::new();
    let mut count = 0;
    for (i, op) in history.ops().iter().enumerate() {
        // Jepsen's nemesis records an invoke and then an info; the info is when the
        // fault took effect.
        if !op.is_nemesis() || op.kind == OpType::Invoke {
            continue;
        }
        let t = axis.t(history, i);
        let f = match &*op.f {
            "start" => "start-fault",
            "stop" => "stop-fault",
            f => f,
        };
        if let Some(name) = f.strip_prefix("start-") {
            count += 1;
            if out.len() < MAX_FAULTS {
                open.entry(name.to_string())
                    .or_default()
                    .push_back(out.len());
                out.push(Fault {
                    f: name.to_string(),
                    s: t,
                    e: t_end,
                    v: short(&op.value.json(), 200),
                });
            }
        } else if let Some(name) = f.strip_prefix("stop-") {
            if let Some(at) = open.get_mut(name).and_then(|q| q.pop_front()) {
                out[at].e = t;
            }
        } else {
            count += 1;
            if out.len() < MAX_FAULTS {
                out.push(Fault {
                    f: op.f.to_string(),
                    s: t,
                    e: t,
                    v: short(&op.value.json(), 200),
                });
            }
        }
    }
    if count > out.len() {
        cuts.push(format!(
            "the nemesis timeline draws {} of {count} faults",
            out.len()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{tests::history, Axis, MAX_FAULTS};
    use super::faults;

    #[test]
    fn a_start_lasts_to_its_stop_or_the_end_and_other_ops_are_instants() {
        let h = history(
            r#"{"process":"nemesis","type":"invoke","f":"start-partition","value":null,"time":0}
{"process":"nemesis","type":"info","f":"start-partition","value":"halves","time":1000000000}
{"process":"nemesis","type":"info","f":"start-partition","value":"ring","time":2000000000}
{"process":"nemesis","type":"info","f":"stop-partition","value":null,"time":3000000000}
{"process":"nemesis","type":"info","f":"start","value":null,"time":4000000000}
{"process":"nemesis","type":"info","f":"kill","value":"n1","time":5000000000}"#,
        );
        let axis = Axis::of(&h);
        let mut cuts = Vec::new();
        let got = faults(&h, &axis, 9.0, &mut cuts);
        let spans: Vec<(&str, f64, f64, &str)> = got
            .iter()
            .map(|f| (f.f.as_str(), f.s, f.e, f.v.as_str()))
            .collect();
        assert_eq!(
            spans,
            [
                // The oldest start ends at the first stop; the other never stops.
                ("partition", 1.0, 3.0, "halves"),
                ("partition", 2.0, 9.0, "ring"),
                ("fault", 4.0, 9.0, "null"),
                ("kill", 5.0, 5.0, "n1"),
            ]
        );
        assert!(cuts.is_empty());
    }

    #[test]
    fn faults_beyond_the_bound_are_counted_in_the_cuts() {
        let lines: Vec<String> = (0..MAX_FAULTS + 3)
            .map(|i| format!(r#"{{"process":"nemesis","type":"info","f":"kill","value":{i}}}"#))
            .collect();
        let h = history(&lines.join("\n"));
        let mut cuts = Vec::new();
        let got = faults(&h, &Axis::of(&h), 0.0, &mut cuts);
        assert_eq!(got.len(), MAX_FAULTS);
        assert_eq!(
            cuts,
            [format!(
                "the nemesis timeline draws {MAX_FAULTS} of {} faults",
                MAX_FAULTS + 3
            )]
        );
    }
}
