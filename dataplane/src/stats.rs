//! Per-worker counters: kept by the worker in its own memory, copied to
//! control on request (a [`crate::command::Command::ReadCounters`]).

use crate::parse::Malformed;

/// Number of malformed-frame reasons.
pub const MALFORMED_REASONS: usize = Malformed::ALL.len();

/// What one worker has done since it started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkerCounters {
    /// Packets received from all its rx queues.
    pub rx_packets: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Packets handed to a driver for transmission.
    pub tx_packets: u64,
    /// Packets a driver refused (freed).
    pub tx_dropped: u64,
    /// Loop iterations.
    pub loops: u64,
    /// Loop iterations that received at least one packet.
    pub busy_loops: u64,
    /// Flows in the table when the snapshot was taken.
    pub flows_active: u64,
    /// Flows created.
    pub flows_created: u64,
    /// Flows removed by the idle-timeout sweep.
    pub flows_expired: u64,
    /// Flows evicted to make room for new ones.
    pub flows_evicted: u64,
    /// Flows removed by flush operations.
    pub flows_flushed: u64,
    /// TSC ticks spent on flow operations (capture, flush, queries) in
    /// loop iterations that also received packets: the forwarding time
    /// the operations took.
    pub job_busy_ticks: u64,
    /// TSC ticks of the loop iterations that received packets while a
    /// flow operation ran (packet work and operation work together).
    pub busy_ticks: u64,
    /// TSC ticks spent on flow operations in loop iterations that received
    /// nothing: spare time, which took nothing from forwarding.
    pub job_idle_ticks: u64,
    /// New flows refused because the table was full (their packets dropped).
    pub table_full_drops: u64,
    /// TCP packets of unknown flows without SYN (stream exception policy).
    pub midstream_packets: u64,
    /// Malformed frames, by reason ([`Malformed::index`]).
    pub malformed: [u64; MALFORMED_REASONS],
    /// Malformed frames dropped (the rest were passed untracked).
    pub malformed_dropped: u64,
    /// Frames that are not IP (ARP, LLDP, ...), forwarded untracked.
    pub not_ip: u64,
    /// Non-first fragments whose first fragment was not seen (untracked).
    pub fragments_untracked: u64,
    /// Of those, the ones dropped: the policy could drop them, given
    /// their ports ([`crate::policy::Policy::passes_whatever_ports`]).
    pub fragments_untracked_dropped: u64,
    /// TCP packets too far from their side's sequence number to move
    /// their flow's state (forwarded as the flow's verdict says).
    pub tcp_out_of_window: u64,
    /// ICMP errors about a tracked flow, given its verdict (untracked).
    pub icmp_related: u64,
    /// Fragment map entries overwritten while live (map full).
    pub fragment_map_overwrites: u64,
    /// New flows the policy passed.
    pub policy_pass: u64,
    /// New flows the policy dropped.
    pub policy_drop: u64,
    /// New flows the policy rejected.
    pub policy_reject: u64,
    /// Packets dropped because their flow's verdict is drop or reject.
    pub verdict_dropped: u64,
    /// TCP RSTs and ICMP unreachables sent.
    pub rejects_sent: u64,
    /// Rejects that could not be sent (no mbuf, or tx refused).
    pub rejects_failed: u64,
    /// Rejected packets not answered: over the answer rate limit (counted
    /// before knowing whether one was due).
    pub rejects_limited: u64,
    /// Mirror copies sent.
    pub mirror_copies: u64,
    /// Mirror copies lost (no mbuf, or tx refused).
    pub mirror_dropped: u64,
}

impl Default for WorkerCounters {
    fn default() -> Self {
        WorkerCounters {
            rx_packets: 0,
            rx_bytes: 0,
            tx_packets: 0,
            tx_dropped: 0,
            loops: 0,
            busy_loops: 0,
            flows_active: 0,
            flows_created: 0,
            flows_expired: 0,
            flows_evicted: 0,
            flows_flushed: 0,
            job_busy_ticks: 0,
            job_idle_ticks: 0,
            busy_ticks: 0,
            table_full_drops: 0,
            midstream_packets: 0,
            malformed: [0; MALFORMED_REASONS],
            malformed_dropped: 0,
            not_ip: 0,
            fragments_untracked: 0,
            fragments_untracked_dropped: 0,
            tcp_out_of_window: 0,
            icmp_related: 0,
            fragment_map_overwrites: 0,
            policy_pass: 0,
            policy_drop: 0,
            policy_reject: 0,
            verdict_dropped: 0,
            rejects_sent: 0,
            rejects_failed: 0,
            rejects_limited: 0,
            mirror_copies: 0,
            mirror_dropped: 0,
        }
    }
}

impl WorkerCounters {
    /// Adds another worker's counters (for totals).
    pub fn add(&mut self, o: &WorkerCounters) {
        self.rx_packets += o.rx_packets;
        self.rx_bytes += o.rx_bytes;
        self.tx_packets += o.tx_packets;
        self.tx_dropped += o.tx_dropped;
        self.loops += o.loops;
        self.busy_loops += o.busy_loops;
        self.flows_active += o.flows_active;
        self.flows_created += o.flows_created;
        self.flows_expired += o.flows_expired;
        self.flows_evicted += o.flows_evicted;
        self.flows_flushed += o.flows_flushed;
        self.job_busy_ticks += o.job_busy_ticks;
        self.job_idle_ticks += o.job_idle_ticks;
        self.busy_ticks += o.busy_ticks;
        self.table_full_drops += o.table_full_drops;
        self.midstream_packets += o.midstream_packets;
        for (a, b) in self.malformed.iter_mut().zip(o.malformed.iter()) {
            *a += b;
        }
        self.malformed_dropped += o.malformed_dropped;
        self.not_ip += o.not_ip;
        self.fragments_untracked += o.fragments_untracked;
        self.fragments_untracked_dropped += o.fragments_untracked_dropped;
        self.tcp_out_of_window += o.tcp_out_of_window;
        self.icmp_related += o.icmp_related;
        self.fragment_map_overwrites += o.fragment_map_overwrites;
        self.policy_pass += o.policy_pass;
        self.policy_drop += o.policy_drop;
        self.policy_reject += o.policy_reject;
        self.verdict_dropped += o.verdict_dropped;
        self.rejects_sent += o.rejects_sent;
        self.rejects_failed += o.rejects_failed;
        self.rejects_limited += o.rejects_limited;
        self.mirror_copies += o.mirror_copies;
        self.mirror_dropped += o.mirror_dropped;
    }

    /// Malformed frames of every reason.
    pub fn malformed_total(&self) -> u64 {
        self.malformed.iter().sum()
    }
}
