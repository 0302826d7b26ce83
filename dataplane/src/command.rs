//! The command and reply rings between the control thread and one worker.
//!
//! Each worker has exactly one pair: control → worker carries [`Command`]s,
//! worker → control carries [`Reply`]s. Both are bounded, lock-free rings
//! (crossbeam's `ArrayQueue`, storing values inline, so pushing allocates
//! nothing). The ends are not `Clone`, which makes each ring single-producer,
//! single-consumer by construction. Neither side ever waits on the other: a
//! full ring is reported to the caller, which retries later.

use std::sync::Arc;

use crossbeam::queue::ArrayQueue;

use crate::job::{JobResults, JobSpec, JobSummary};
use crate::mirror::MirrorConfig;
use crate::stats::WorkerCounters;

/// A request from control to a worker.
#[derive(Debug)]
pub enum Command {
    /// Send back a snapshot of the worker's counters.
    ReadCounters {
        /// Echoed in the reply, to pair it with the request.
        seq: u64,
    },
    /// Start a capture, flush or query over the worker's flow table.
    StartJob(Box<JobSpec>),
    /// Use this mirror configuration from now on.
    InstallMirror(Arc<MirrorConfig>),
    /// Fault injection for tests: stop everything (forwarding and answering)
    /// for this many milliseconds, as a wedged worker would. Control only
    /// sends it when the operator enabled debug endpoints.
    Stall {
        /// How long.
        millis: u32,
    },
}

/// A worker's answer.
///
/// Result chunks travel inline (a few KiB) rather than boxed: the ring's
/// slots are allocated once by control, and the worker never allocates.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
pub enum Reply {
    /// Counters as of the moment the command was handled.
    Counters {
        /// The request's sequence number.
        seq: u64,
        /// The snapshot.
        counters: WorkerCounters,
    },
    /// Some results of a job.
    Flows {
        /// The job's operation id.
        op: u64,
        /// The results.
        chunk: JobResults,
    },
    /// A job finished; its spec comes back so control frees it.
    JobDone {
        /// The job's operation id.
        op: u64,
        /// What it did.
        summary: JobSummary,
        /// The spec control posted.
        spec: Box<JobSpec>,
    },
    /// A mirror configuration is in use; the one it replaced comes back
    /// so control frees it.
    MirrorInstalled {
        /// The generation now in use.
        generation: u32,
        /// The configuration replaced.
        old: Arc<MirrorConfig>,
    },
    /// The worker runs too many jobs already; the spec comes back unused.
    JobRefused {
        /// The job's operation id.
        op: u64,
        /// The spec control posted.
        spec: Box<JobSpec>,
    },
}

struct Rings {
    commands: ArrayQueue<Command>,
    replies: ArrayQueue<Reply>,
}

/// Control's end: posts commands, collects replies.
pub struct ControlEnd {
    rings: Arc<Rings>,
}

/// The worker's end: takes commands, posts replies.
pub struct WorkerEnd {
    rings: Arc<Rings>,
}

impl std::fmt::Debug for ControlEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlEnd").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for WorkerEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerEnd").finish_non_exhaustive()
    }
}

/// Makes a ring pair holding up to `commands` commands and `replies` replies.
pub fn ring_pair(commands: usize, replies: usize) -> (ControlEnd, WorkerEnd) {
    let rings = Arc::new(Rings {
        commands: ArrayQueue::new(commands.max(1)),
        replies: ArrayQueue::new(replies.max(1)),
    });
    (
        ControlEnd {
            rings: rings.clone(),
        },
        WorkerEnd { rings },
    )
}

impl ControlEnd {
    /// Posts a command; gives it back if the ring is full.
    pub fn post(&mut self, c: Command) -> Result<(), Command> {
        self.rings.commands.push(c)
    }

    /// Takes the next reply, if any.
    pub fn take_reply(&mut self) -> Option<Reply> {
        self.rings.replies.pop()
    }

    /// Whether the worker has dropped its end (it has stopped).
    pub fn worker_gone(&self) -> bool {
        Arc::strong_count(&self.rings) == 1
    }
}

impl WorkerEnd {
    /// Takes the next command, if any.
    #[inline]
    pub fn take_command(&mut self) -> Option<Command> {
        self.rings.commands.pop()
    }

    /// Posts a reply; gives it back if the ring is full.
    #[inline]
    #[allow(clippy::result_large_err)]
    pub fn post(&mut self, r: Reply) -> Result<(), Reply> {
        self.rings.replies.push(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_rings_give_values_back() {
        let (mut c, mut w) = ring_pair(2, 1);
        assert!(c.post(Command::ReadCounters { seq: 1 }).is_ok());
        assert!(c.post(Command::ReadCounters { seq: 2 }).is_ok());
        assert!(c.post(Command::ReadCounters { seq: 3 }).is_err());
        assert!(matches!(
            w.take_command(),
            Some(Command::ReadCounters { seq: 1 })
        ));
        let r = Reply::Counters {
            seq: 1,
            counters: WorkerCounters::default(),
        };
        assert!(w.post(r).is_ok());
        let r = Reply::Counters {
            seq: 2,
            counters: WorkerCounters::default(),
        };
        assert!(w.post(r).is_err());
        assert!(matches!(
            c.take_reply(),
            Some(Reply::Counters { seq: 1, .. })
        ));
        assert!(!c.worker_gone());
        drop(w);
        assert!(c.worker_gone());
    }

    #[test]
    fn rings_cross_threads_in_order() {
        let (mut c, mut w) = ring_pair(64, 64);
        let t = std::thread::spawn(move || {
            let mut next = 0;
            while next < 10_000 {
                if let Some(Command::ReadCounters { seq }) = w.take_command() {
                    assert_eq!(seq, next);
                    let mut r = Reply::Counters {
                        seq,
                        counters: WorkerCounters::default(),
                    };
                    while let Err(back) = w.post(r) {
                        r = back;
                        std::hint::spin_loop();
                    }
                    next += 1;
                }
            }
        });
        let mut sent = 0;
        let mut got = 0;
        while got < 10_000 {
            if sent < 10_000 && c.post(Command::ReadCounters { seq: sent }).is_ok() {
                sent += 1;
            }
            if let Some(Reply::Counters { seq, .. }) = c.take_reply() {
                assert_eq!(seq, got);
                got += 1;
            }
        }
        t.join().unwrap();
    }
}
