//! What a flow operation costs the worker per table entry, outside DPDK
//! and without packets: a 1M-flow table (UDP to port 7), a capture or
//! flush run in slices of a given size, its chunks taken by a second
//! thread as control takes them (from the same pool of 1024 chunks as in
//! the appliance). Each match-all case runs a second time with its chunks
//! kept on the worker instead ("kept", one chunk overwritten), which splits
//! the cost of reading and reporting a flow from the cost of handing its
//! record to another core. A tool for looking at the scan, not a
//! benchmark of record (that is `benches/run.py ops`, on the real binary).
//!
//! `cargo run --release -p flowgate-dataplane --example job_cost`

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use flowgate_dataplane::command::{ring_pair, Reply};
use flowgate_dataplane::filter::{Cidr, PortRange, ProtoSet, Rule, RuleSet};
use flowgate_dataplane::flow::key::v4_bits;
use flowgate_dataplane::flow::{AddrFamily, FlowEntry, FlowTable, FullPolicy, Tuple};
use flowgate_dataplane::job::{Job, JobKind, JobResults, JobSpec, PortScope, Slice, Step};
use flowgate_dataplane::track::SWEEP_MAX;

const FLOWS: u32 = 1 << 20;

fn table() -> FlowTable {
    let mut t = FlowTable::new(2 * FLOWS, FullPolicy::DropNew).expect("table");
    for i in 0..FLOWS {
        let tu = Tuple {
            src: v4_bits([10, (i >> 16) as u8, (i >> 8) as u8, i as u8]),
            dst: v4_bits([192, 0, 2, 1]),
            sport: 1024 + (i % 5000) as u16,
            dport: 7,
            proto: 17,
            family: AddrFamily::V4,
            vlan: 0,
        };
        let (k, s) = tu.canonical();
        t.insert(FlowEntry::new(k, s, i as u64), k.hash());
    }
    t
}

/// Where a job's chunks go: to a second thread over the reply ring, as in
/// the appliance, or nowhere (each moved into one chunk kept on the
/// worker, overwritten by the next).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Chunks {
    HandedOver,
    Kept,
}

/// Runs one job to the end in slices of `slice` entries; (seconds, flows
/// reported).
fn run(t: &mut FlowTable, kind: JobKind, rule: Rule, slice: u32, to: Chunks) -> (f64, u64) {
    let (mut control, mut worker) = ring_pair(64, 4096, 1024);
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = stop.clone();
    let taker = std::thread::spawn(move || {
        let mut got = 0u64;
        loop {
            match control.take_reply() {
                Some(Reply::Flows { chunk, .. }) => {
                    got += chunk.len() as u64;
                    control.give_back(chunk);
                }
                Some(_) => {}
                None if stopped.load(Ordering::Relaxed) => return got,
                None => std::hint::spin_loop(),
            }
        }
    });
    let mut job = Job::new(Box::new(JobSpec {
        op: 1,
        kind,
        filters: Arc::new(RuleSet::compile(&[rule])),
        min_age: 0,
        max_age: u64::MAX,
        result_cap: u64::MAX,
        newest: 0,
        buffer: Vec::new(),
        busy_share: 100,
        in_ports: PortScope::Any,
    }));
    let mut dropped = 0u64;
    let mut kept = JobResults::Taken(Default::default());
    let t0 = Instant::now();
    'job: loop {
        let mut s = Slice::entries(slice);
        loop {
            match job.step(t, &mut s, 1 << 40) {
                Step::Continue => break,
                Step::Emit if to == Chunks::Kept => {
                    job.take_chunk(&mut kept);
                    dropped += kept.len() as u64;
                    std::hint::black_box(&kept);
                }
                Step::Emit => {
                    let Some(mut chunk) = worker.spare_chunk() else {
                        std::hint::spin_loop();
                        continue;
                    };
                    job.take_chunk(&mut chunk);
                    let mut r = Reply::Flows { op: 1, chunk };
                    while let Err(back) = worker.post(r) {
                        r = back;
                        std::hint::spin_loop();
                    }
                }
                Step::Done => break 'job,
            }
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    (secs, dropped + taker.join().expect("taker"))
}

fn main() {
    let port7 = Rule {
        dport: PortRange::single(7),
        protos: ProtoSet::of(&[17]),
        ..Rule::ANY
    };
    let one_in_256 = Rule {
        src: Cidr::v4([10, 0, 0, 0], 20),
        ..port7
    };
    use Chunks::{HandedOver, Kept};
    let some = "capture, 1 in 256";
    for (label, kind, rule, slice, to) in [
        (some, JobKind::Capture, one_in_256, 4096, HandedOver),
        (some, JobKind::Capture, one_in_256, 64, HandedOver),
        ("capture, all", JobKind::Capture, port7, 4096, HandedOver),
        ("capture, all", JobKind::Capture, port7, 64, HandedOver),
        ("capture, all", JobKind::Capture, port7, 4096, Kept),
        ("flush, all", JobKind::Flush, port7, 4096, HandedOver),
        ("flush, all", JobKind::Flush, port7, 4096, Kept),
    ] {
        // Every case starts from a table just built, as a flush empties
        // the one it runs on.
        let mut t = table();
        let (secs, got) = run(&mut t, kind, rule, slice, to);
        let how = match to {
            HandedOver => "handed over",
            Kept => "kept",
        };
        println!(
            "{label:18} slices of {slice:4}: {:6.1} ms, {:5.1} ns per entry, {got} flows {how}",
            secs * 1e3,
            secs * 1e9 / FLOWS as f64,
        );
    }
    // A mass expiry: the sweep removing every flow, in index order as it
    // meets them, one at a time or a sweep call's worth together.
    for together in [false, true] {
        let mut t = table();
        let all: Vec<u32> = (0..FLOWS).collect();
        let t0 = Instant::now();
        if together {
            for some in all.chunks(SWEEP_MAX as usize) {
                t.remove_all(some);
            }
        } else {
            for &i in &all {
                t.remove(i);
            }
        }
        let secs = t0.elapsed().as_secs_f64();
        assert!(t.is_empty());
        println!(
            "removing all, {:11}:       {:6.1} ms, {:5.1} ns per flow",
            if together {
                format!("{SWEEP_MAX} at once")
            } else {
                "one by one".to_string()
            },
            secs * 1e3,
            secs * 1e9 / FLOWS as f64,
        );
    }
}
