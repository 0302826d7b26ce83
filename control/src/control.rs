//! The control thread: the HTTP API, signal handling, periodic statistics.
//!
//! It runs a single-threaded tokio runtime pinned to `dataplane.main_cpu`,
//! never on a worker's CPU. It starts before EAL so `/healthz` can answer
//! 503 while ports come up; the main thread hands it the worker rings once
//! the data plane runs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use flowgate_dataplane::stats::WorkerCounters;
use flowgate_sys::PortStats;
use tokio::sync::oneshot;

use crate::api::{self, ApiState};
use crate::appliance::{ControlHandles, PortView};
use crate::dispatch::Dispatcher;

/// Starts the control thread.
pub fn spawn(
    cpu: usize,
    listener: std::net::TcpListener,
    state: Arc<ApiState>,
    stats_period: u64,
    handoff: oneshot::Receiver<ControlHandles>,
    stop: std::sync::mpsc::Sender<&'static str>,
) -> std::thread::JoinHandle<()> {
    std::thread::Builder::new()
        .name("flowgate-control".into())
        .spawn(move || {
            core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("tokio runtime");
            let local = tokio::task::LocalSet::new();
            local.block_on(&rt, async move {
                tokio::task::spawn_local(api::serve(listener, state.clone()));
                tokio::task::spawn_local(watch_signals(stop));
                let Ok(handles) = handoff.await else { return };
                let dispatcher = Dispatcher::spawn(handles.rings);
                let _ = state.dispatcher.set(dispatcher.clone());
                state.mirror_installed(handles.mirror_generation);
                // EC2 changes saved while the ports came up were answered
                // but could not be installed: the workers run the store as
                // it was when they started.
                if state.mirror().state.generation != handles.mirror_generation {
                    api::ec2::install(&state);
                }
                // Ready only once the API can reach the workers.
                state
                    .ready
                    .store(true, std::sync::atomic::Ordering::Release);
                if stats_period > 0 {
                    print_stats(
                        &state,
                        handles.ports,
                        dispatcher,
                        Duration::from_secs(stats_period),
                    )
                    .await;
                } else {
                    std::future::pending::<()>().await;
                }
            });
        })
        .expect("spawn control thread")
}

async fn watch_signals(stop: std::sync::mpsc::Sender<&'static str>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let name = tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    };
    let _ = stop.send(name);
    // A clean stop waits for bring-up to end and for the workers; a second
    // signal is someone who will not wait.
    let again = tokio::select! {
        _ = int.recv() => "SIGINT",
        _ = term.recv() => "SIGTERM",
    };
    crate::say_err!("flowgate: {again} while stopping: exiting at once, without a clean stop");
    std::process::exit(1);
}

/// One testpmd-style line per port.
pub fn port_line(v: &PortView, s: &PortStats, rx_pps: u64, tx_pps: u64) -> String {
    format!(
        "  port {:<2} {:<10} {:<12} Rx-pps: {:>10}  Tx-pps: {:>10}  RX-packets: {:>12}  TX-packets: {:>12}  RX-missed: {}  RX-errors: {}  RX-nombuf: {}  TX-errors: {}",
        v.id.0, v.name, v.device, rx_pps, tx_pps, s.ipackets, s.opackets, s.imissed, s.ierrors, s.rx_nombuf, s.oerrors
    )
}

/// One line per worker: traffic, flows, and what was dropped why.
pub fn worker_line(w: usize, c: &WorkerCounters) -> String {
    format!(
        "  worker {w}  rx {}  tx {}  tx-dropped {}  busy {:.1}%  flows active {}  created {}  expired {}  evicted {}  table-full {}  midstream {}  malformed {}  not-ip {}  verdict-dropped {}  rejects {}  rejects-limited {}",
        c.rx_packets,
        c.tx_packets,
        c.tx_dropped,
        100.0 * c.busy_loops as f64 / c.loops.max(1) as f64,
        c.flows_active,
        c.flows_created,
        c.flows_expired,
        c.flows_evicted,
        c.table_full_drops,
        c.midstream_packets,
        c.malformed_total(),
        c.not_ip,
        c.verdict_dropped,
        c.rejects_sent,
        c.rejects_limited
    )
}

async fn print_stats(
    state: &ApiState,
    ports: Vec<PortView>,
    dispatcher: Dispatcher,
    period: Duration,
) {
    let mut last: Vec<PortStats> = ports
        .iter()
        .map(|p| state.port_stats(p).unwrap_or_default())
        .collect();
    let mut last_t = Instant::now();
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        tick.tick().await;
        let now = Instant::now();
        let dt = now.duration_since(last_t).as_secs_f64().max(1e-9);
        last_t = now;
        let mut out = format!("flowgate stats ({:.1} s)\n", dt);
        for (p, prev) in ports.iter().zip(last.iter_mut()) {
            let Some(s) = state.port_stats(p) else {
                return; // shutting down
            };
            let rx_pps = ((s.ipackets.saturating_sub(prev.ipackets)) as f64 / dt) as u64;
            let tx_pps = ((s.opackets.saturating_sub(prev.opackets)) as f64 / dt) as u64;
            out.push_str(&port_line(p, &s, rx_pps, tx_pps));
            out.push('\n');
            *prev = s;
        }
        let counters = dispatcher.worker_counters(Duration::from_millis(500)).await;
        for (w, c) in counters.iter().enumerate() {
            match c {
                Some(c) => {
                    out.push_str(&worker_line(w, c));
                    out.push('\n');
                }
                None => out.push_str(&format!("  worker {w}  (no answer on its ring)\n")),
            }
        }
        let _ = std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes());
    }
}
