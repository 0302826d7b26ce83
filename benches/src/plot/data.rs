//! From `results.json` to plottable series, without drawing anything.
//!
//! Every function here is pure: it reads a parsed [`Value`] and returns
//! either the series of one plot or, as `Err`, a one-line reason why that
//! plot has to be skipped (a key `run.py` did not write because the
//! scenario was not run, or a value of the wrong shape). Nothing here panics
//! on any JSON input.

use serde_json::Value;

/// A measured rate and its spread over the measurement windows (Mpps).
#[derive(Debug, Clone, PartialEq)]
pub struct Spread {
    /// Median of the windows.
    pub median: f64,
    /// Slowest window.
    pub min: f64,
    /// Fastest window.
    pub max: f64,
}

/// Reads a `run.py` summary (`{"median", "min", "max", "samples"}`): `None`
/// unless `median` is a number. A missing `min` or `max` is the median.
pub fn spread(v: &Value) -> Option<Spread> {
    let median = v.get("median")?.as_f64()?;
    let min = v.get("min").and_then(Value::as_f64).unwrap_or(median);
    let max = v.get("max").and_then(Value::as_f64).unwrap_or(median);
    Some(Spread {
        median,
        min: min.min(median),
        max: max.max(median),
    })
}

/// One line of the flow-count plot: a system's rate at each flow count it
/// was measured at, in increasing flow count.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowSeries {
    /// The key under `flows.<count>` (e.g. `testpmd 5tswap`, `flowgate track`).
    pub system: String,
    /// (flow count, rate), flow counts increasing.
    pub points: Vec<(u64, Spread)>,
}

/// The series of `flows.png`: one per system found under any flow count of
/// `flows` (every object entry with a numeric `median`; other entries such
/// as `bytes_per_flow` are ignored). Flow-count keys that are not integers
/// are ignored. Series are ordered by their rate at the smallest flow count
/// they have, fastest first (so the legend reads top to bottom like the
/// lines at the left edge), then by name.
pub fn flow_series(results: &Value) -> Result<Vec<FlowSeries>, String> {
    let flows = results
        .get("flows")
        .ok_or("no `flows` key (flow-count sweep not run)")?
        .as_object()
        .ok_or("`flows` is not an object")?;
    let mut counts: Vec<(u64, &serde_json::Map<String, Value>)> = flows
        .iter()
        .filter_map(|(k, v)| Some((k.parse::<u64>().ok().filter(|&n| n > 0)?, v.as_object()?)))
        .collect();
    counts.sort_by_key(|&(n, _)| n);
    let mut series: Vec<FlowSeries> = Vec::new();
    for (n, systems) in counts {
        for (name, v) in systems {
            let Some(s) = spread(v) else { continue };
            match series.iter_mut().find(|f| &f.system == name) {
                Some(f) => f.points.push((n, s)),
                None => series.push(FlowSeries {
                    system: name.clone(),
                    points: vec![(n, s)],
                }),
            }
        }
    }
    if series.is_empty() {
        return Err("`flows` has no flow count with a measured system".into());
    }
    series.sort_by(|a, b| {
        let first = |f: &FlowSeries| f.points.first().map_or(0.0, |p| p.1.median);
        first(b)
            .total_cmp(&first(a))
            .then_with(|| a.system.cmp(&b.system))
    });
    Ok(series)
}

/// The interval a flow operation ran, in the samples' clock (seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    /// When the operation was started.
    pub start: f64,
    /// When it was seen finished.
    pub end: f64,
    /// Where the bounds came from, for the legend.
    pub source: IntervalSource,
}

/// Which keys of `ops.<kind>` gave an [`Interval`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntervalSource {
    /// `started_at` and `ended_at`, both measured.
    StartedEnded,
    /// `start_at` (when `run.py` starts the operation, 1 s after sampling
    /// began) plus `seconds` (its measured completion time).
    StartPlusSeconds,
}

/// One flow operation (`ops.flush` or `ops.capture`): forwarding samples
/// over time and what to draw with them.
#[derive(Debug, Clone, PartialEq)]
pub struct OpSeries {
    /// `flush` or `capture`.
    pub kind: String,
    /// (seconds since sampling began, Mpps), as recorded; entries that are
    /// not a pair of numbers are dropped.
    pub samples: Vec<(f64, f64)>,
    /// `ops.baseline.median`: forwarding with no operation running.
    pub baseline: Option<f64>,
    /// When the operation ran, if the result says.
    pub interval: Option<Interval>,
    /// `ops.flows`: flows tracked while the operation ran.
    pub flows: Option<u64>,
    /// `ops.<kind>.status`, e.g. `COMPLETED`.
    pub status: Option<String>,
    /// `ops.<kind>.seconds`: completion time of the operation.
    pub seconds: Option<f64>,
}

/// The series of `<kind>.png` from `ops.<kind>`: `Err` when `ops`,
/// `ops.<kind>` or its samples are missing, or no sample is a
/// `[seconds, mpps]` pair of numbers. The baseline, the interval and the
/// labels are optional.
pub fn op_series(results: &Value, kind: &str) -> Result<OpSeries, String> {
    let ops = results
        .get("ops")
        .ok_or("no `ops` key (flow-operation scenario not run)")?;
    let op = ops
        .get(kind)
        .ok_or_else(|| format!("no `ops.{kind}` key"))?;
    let raw = op
        .get("samples")
        .ok_or_else(|| format!("no `ops.{kind}.samples` key"))?
        .as_array()
        .ok_or_else(|| format!("`ops.{kind}.samples` is not a list"))?;
    let samples: Vec<(f64, f64)> = raw
        .iter()
        .filter_map(|s| {
            let pair = s.as_array()?;
            match pair.as_slice() {
                [t, x] => Some((t.as_f64()?, x.as_f64()?)),
                _ => None,
            }
        })
        .filter(|(t, x)| t.is_finite() && x.is_finite())
        .collect();
    if samples.is_empty() {
        return Err(format!("`ops.{kind}.samples` has no [seconds, mpps] pair"));
    }
    let num = |k: &str| op.get(k).and_then(Value::as_f64).filter(|x| x.is_finite());
    let seconds = num("seconds");
    let interval = match (num("started_at"), num("ended_at"), num("start_at"), seconds) {
        (Some(start), Some(end), _, _) if end >= start => Some(Interval {
            start,
            end,
            source: IntervalSource::StartedEnded,
        }),
        (_, _, Some(start), Some(s)) if s >= 0.0 => Some(Interval {
            start,
            end: start + s,
            source: IntervalSource::StartPlusSeconds,
        }),
        _ => None,
    };
    Ok(OpSeries {
        kind: kind.to_string(),
        samples,
        baseline: ops.get("baseline").and_then(spread).map(|s| s.median),
        interval,
        flows: ops.get("flows").and_then(Value::as_u64),
        status: op.get("status").and_then(Value::as_str).map(str::to_string),
        seconds,
    })
}

/// A flow count as an axis label: `1K`, `64K`, `1M`, `4M`, or the plain
/// number when it is not a whole number of Ki or Mi.
pub fn flows_label(n: u64) -> String {
    const K: u64 = 1 << 10;
    const M: u64 = 1 << 20;
    if n >= M && n & (M - 1) == 0 {
        format!("{}M", n / M)
    } else if n >= K && n & (K - 1) == 0 {
        format!("{}K", n / K)
    } else {
        n.to_string()
    }
}

/// A count with thousands separators (`1,048,576`), for titles.
pub fn thousands(n: u64) -> String {
    let mut groups = Vec::new();
    let mut rest = n;
    while rest >= 1000 {
        groups.push(format!("{:03}", rest % 1000));
        rest /= 1000;
    }
    groups.push(rest.to_string());
    groups.reverse();
    groups.join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sp(median: f64, min: f64, max: f64) -> Spread {
        Spread { median, min, max }
    }

    #[test]
    fn flow_series_collects_every_system_with_a_median() {
        let r = json!({"flows": {
            "65536": {
                "testpmd io": {"median": 48.0, "min": 47.0, "max": 49.0, "samples": [47.0, 48.0, 49.0]},
                "flowgate track": {"median": 13.0, "min": 12.5, "max": 13.5},
                "ovs conntrack": {"median": 2.0},
                "bytes_per_flow": 148.0,
                "capacity": 1048576
            },
            "1024": {
                "testpmd io": {"median": 51.0, "min": 50.0, "max": 52.0},
                "flowgate track": {"median": 19.0, "min": 18.0, "max": 20.0},
                "note": {"text": "no median here"}
            },
            "not a count": {"testpmd io": {"median": 1.0}}
        }});
        let s = flow_series(&r).unwrap();
        let names: Vec<&str> = s.iter().map(|f| f.system.as_str()).collect();
        // Fastest at its first flow count first; ovs starts at 64K only.
        assert_eq!(names, ["testpmd io", "flowgate track", "ovs conntrack"]);
        assert_eq!(
            s[0].points,
            vec![(1024, sp(51.0, 50.0, 52.0)), (65536, sp(48.0, 47.0, 49.0))]
        );
        assert_eq!(
            s[1].points,
            vec![(1024, sp(19.0, 18.0, 20.0)), (65536, sp(13.0, 12.5, 13.5))]
        );
        // min and max default to the median.
        assert_eq!(s[2].points, vec![(65536, sp(2.0, 2.0, 2.0))]);
    }

    #[test]
    fn flow_series_skips_when_missing_or_empty() {
        assert!(flow_series(&json!({})).unwrap_err().contains("no `flows`"));
        assert!(flow_series(&json!({"flows": [1, 2]})).is_err());
        assert!(flow_series(&json!({"flows": {"1024": {"capacity": 1}}})).is_err());
        assert!(flow_series(&json!({"flows": {"1024": {"x": {"median": "fast"}}}})).is_err());
    }

    #[test]
    fn op_series_reads_samples_baseline_and_start_plus_seconds() {
        let r = json!({"ops": {
            "flows": 1048576,
            "baseline": {"median": 12.5, "min": 12.0, "max": 13.0},
            "flush": {
                "seconds": 0.5, "status": "COMPLETED", "message": null, "start_at": 1.0,
                "samples": [[0.1, 12.4], [0.2, "x"], [0.3], [1.2, 3.0], [1.3, 12.6]]
            }
        }});
        let s = op_series(&r, "flush").unwrap();
        assert_eq!(s.kind, "flush");
        assert_eq!(s.samples, vec![(0.1, 12.4), (1.2, 3.0), (1.3, 12.6)]);
        assert_eq!(s.baseline, Some(12.5));
        assert_eq!(
            s.interval,
            Some(Interval {
                start: 1.0,
                end: 1.5,
                source: IntervalSource::StartPlusSeconds
            })
        );
        assert_eq!(s.flows, Some(1048576));
        assert_eq!(s.status.as_deref(), Some("COMPLETED"));
        assert_eq!(s.seconds, Some(0.5));
    }

    #[test]
    fn op_series_prefers_started_ended_and_tolerates_their_absence() {
        let r = json!({"ops": {"capture": {
            "samples": [[0.1, 5.0]], "started_at": 1.1, "ended_at": 1.9, "start_at": 1.0, "seconds": 9.0
        }}});
        let s = op_series(&r, "capture").unwrap();
        assert_eq!(
            s.interval,
            Some(Interval {
                start: 1.1,
                end: 1.9,
                source: IntervalSource::StartedEnded
            })
        );
        assert_eq!(s.baseline, None);
        assert_eq!(s.flows, None);
        let r = json!({"ops": {"capture": {"samples": [[0.1, 5.0]], "started_at": 1.1}}});
        assert_eq!(op_series(&r, "capture").unwrap().interval, None);
        // An end before the start is not an interval.
        let r = json!({"ops": {"capture": {"samples": [[0.1, 5.0]], "started_at": 2.0, "ended_at": 1.0}}});
        assert_eq!(op_series(&r, "capture").unwrap().interval, None);
    }

    #[test]
    fn op_series_skips_when_missing() {
        assert!(op_series(&json!({}), "flush")
            .unwrap_err()
            .contains("no `ops`"));
        let r = json!({"ops": {"flush": {"samples": [[0.1, 1.0]]}}});
        assert!(op_series(&r, "capture")
            .unwrap_err()
            .contains("ops.capture"));
        assert!(op_series(&json!({"ops": {"flush": {}}}), "flush").is_err());
        assert!(op_series(&json!({"ops": {"flush": {"samples": 3}}}), "flush").is_err());
        assert!(op_series(&json!({"ops": {"flush": {"samples": []}}}), "flush").is_err());
        assert!(op_series(&json!({"ops": {"flush": {"samples": [["a", 1]]}}}), "flush").is_err());
    }

    #[test]
    fn labels() {
        assert_eq!(flows_label(1024), "1K");
        assert_eq!(flows_label(65536), "64K");
        assert_eq!(flows_label(1 << 20), "1M");
        assert_eq!(flows_label(4 << 20), "4M");
        assert_eq!(flows_label(1000), "1000");
        assert_eq!(flows_label(1536), "1536");
        assert_eq!(flows_label(3 << 19), "1536K");
        assert_eq!(thousands(1048576), "1,048,576");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(4194304), "4,194,304");
        assert_eq!(thousands(0), "0");
    }
}
