//! The worker lcore's loop: run to completion, one burst at a time.
//!
//! A worker owns queue k of every port it serves (rx and tx), its command
//! ring end, and (with flow tracking) its flow table. Nothing it touches per
//! packet is shared: it never locks, allocates or waits on control.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use flowgate_sys::{MbufBurst, RxQueue, TxQueue};

use crate::command::{Command, Reply, WorkerEnd};
use crate::stats::WorkerCounters;

/// Loop iterations between two looks at the command ring (a power of two).
const COMMAND_POLL_EVERY: u64 = 64;

/// An rx queue and where its packets go.
#[derive(Debug)]
pub struct RxPath {
    /// The queue to poll.
    pub queue: RxQueue,
    /// Index (into the worker's tx queues) of the port its packets leave by.
    pub out: usize,
}

/// Everything one worker owns.
#[derive(Debug)]
pub struct Worker {
    /// The worker's number (0-based), also its queue id on every port.
    pub id: usize,
    rx: Vec<RxPath>,
    tx: Vec<TxQueue>,
    ring: WorkerEnd,
    stop: Arc<AtomicBool>,
    counters: WorkerCounters,
    pending_reply: Option<Reply>,
}

impl Worker {
    /// A worker polling `rx`, sending through `tx` (indexed by port), and
    /// answering control on `ring`. It runs until `stop` is set.
    pub fn new(
        id: usize,
        rx: Vec<RxPath>,
        tx: Vec<TxQueue>,
        ring: WorkerEnd,
        stop: Arc<AtomicBool>,
    ) -> Self {
        Self {
            id,
            rx,
            tx,
            ring,
            stop,
            counters: WorkerCounters::default(),
            pending_reply: None,
        }
    }

    /// Runs the loop until told to stop; returns the final counters. The
    /// queues are released when this returns (self is consumed).
    pub fn run(mut self) -> WorkerCounters {
        let mut burst = MbufBurst::<{ flowgate_sys::BURST_SIZE }>::new();
        while !self.stop.load(Ordering::Relaxed) {
            let mut busy = false;
            for path in self.rx.iter_mut() {
                let n = path.queue.rx_burst(&mut burst);
                if n == 0 {
                    continue;
                }
                busy = true;
                self.counters.rx_packets += n as u64;
                let r = self.tx[path.out].tx_burst(&mut burst);
                self.counters.tx_packets += r.sent as u64;
                self.counters.tx_dropped += r.dropped as u64;
            }
            self.counters.loops += 1;
            self.counters.busy_loops += busy as u64;
            if self.counters.loops & (COMMAND_POLL_EVERY - 1) == 0 {
                self.serve_commands();
            }
        }
        // A last look so a counters request racing with stop is answered.
        self.serve_commands();
        self.counters
    }

    /// Handles the commands waiting on the ring, bounded per call.
    fn serve_commands(&mut self) {
        if let Some(r) = self.pending_reply.take() {
            if let Err(r) = self.ring.post(r) {
                self.pending_reply = Some(r);
                return;
            }
        }
        for _ in 0..8 {
            let Some(cmd) = self.ring.take_command() else {
                break;
            };
            let reply = match cmd {
                Command::ReadCounters { seq } => Reply::Counters {
                    seq,
                    counters: self.counters,
                },
            };
            if let Err(r) = self.ring.post(reply) {
                // Control is slow to collect: keep the reply, stop taking
                // commands until it is delivered.
                self.pending_reply = Some(r);
                break;
            }
        }
    }
}
