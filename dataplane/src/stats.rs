//! Per-worker counters: kept by the worker in its own memory, copied to
//! control on request (a [`crate::command::Command::ReadCounters`]).

/// What one worker has done since it started.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerCounters {
    /// Packets received from all its rx queues.
    pub rx_packets: u64,
    /// Packets handed to a driver for transmission.
    pub tx_packets: u64,
    /// Packets a driver refused (freed).
    pub tx_dropped: u64,
    /// Loop iterations.
    pub loops: u64,
    /// Loop iterations that received at least one packet.
    pub busy_loops: u64,
}

impl WorkerCounters {
    /// Adds another worker's counters (for totals).
    pub fn add(&mut self, o: &WorkerCounters) {
        self.rx_packets += o.rx_packets;
        self.tx_packets += o.tx_packets;
        self.tx_dropped += o.tx_dropped;
        self.loops += o.loops;
        self.busy_loops += o.busy_loops;
    }
}
