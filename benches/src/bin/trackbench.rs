//! `flowgate-trackbench`: cycles per packet of the flow-tracking stage alone
//! (parse, key, staged lookup, update), without DPDK or a NIC.
//!
//! It feeds bursts of 32 frames from a capture (e.g. one made by
//! `flowgate-pcapgen flows`) to a `Tracker` over and over and reports the
//! TSC cycles per packet of the fastest of several windows, which filters
//! out the noise of a shared VM. Use it to compare code changes; use
//! `flowgate-bench` for throughput against testpmd.

use std::sync::Arc;

use clap::Parser;
use flowgate_dataplane::policy::Policy;
use flowgate_dataplane::stats::WorkerCounters;
use flowgate_dataplane::track::{BurstOut, TrackSettings, Tracker};
use flowgate_sys::cpu::tsc;
use flowgate_sys::BURST_SIZE;

#[derive(Parser)]
#[command(about = "cycles per packet of flow tracking, without DPDK")]
struct Args {
    /// Capture whose frames are fed in a loop.
    pcap: std::path::PathBuf,
    /// Flow table capacity.
    #[arg(long, default_value_t = 1 << 20)]
    capacity: u32,
    /// Measured windows.
    #[arg(long, default_value_t = 15)]
    windows: u32,
    /// Passes over the capture per window.
    #[arg(long, default_value_t = 20)]
    passes: u32,
}

fn tsc_hz() -> u64 {
    let t0 = tsc();
    let s = std::time::Instant::now();
    std::thread::sleep(std::time::Duration::from_millis(200));
    (tsc() - t0) as f64 as u64 * 1_000_000_000 / s.elapsed().as_nanos() as u64
}

fn main() {
    let a = Args::parse();
    let mut r =
        pcap_file::pcap::PcapReader::new(std::fs::File::open(&a.pcap).expect("open capture"))
            .expect("pcap");
    let mut frames = Vec::new();
    while let Some(p) = r.next_packet() {
        frames.push(p.expect("packet").data.into_owned());
    }
    let hz = tsc_hz();
    let settings = TrackSettings {
        capacity: a.capacity,
        ..TrackSettings::default()
    };
    let mut t = Tracker::new(settings, Arc::new(Policy::pass_all()), hz).expect("table");
    let mut c = WorkerCounters::default();
    let mut out = BurstOut::default();
    let mut run = |passes: u32| {
        for _ in 0..passes {
            let mut i = 0;
            while i < frames.len() {
                let n = BURST_SIZE.min(frames.len() - i);
                t.process(&frames[i..i + n], (0, 1), tsc(), &mut out, &mut c);
                i += n;
            }
        }
    };
    run(2); // warm-up: create every flow
    let mut best = f64::MAX;
    for _ in 0..a.windows {
        let t0 = tsc();
        run(a.passes);
        let per = (tsc() - t0) as f64 / (a.passes as f64 * frames.len() as f64);
        best = best.min(per);
    }
    println!(
        "{} frames, {} flows tracked: {:.1} cycles/packet (best of {} windows; TSC {:.2} GHz; {:.1} Mpps on one core for this stage alone)",
        frames.len(),
        c.flows_active.max(c.flows_created - c.flows_expired),
        best,
        a.windows,
        hz as f64 / 1e9,
        hz as f64 / best / 1e6
    );
}
