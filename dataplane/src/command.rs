//! The command and reply rings between the control thread and one worker.
//!
//! Each worker has exactly one pair: control → worker carries [`Command`]s,
//! worker → control carries [`Reply`]s. Both are bounded, lock-free rings
//! (crossbeam's `ArrayQueue`, storing values inline, so pushing allocates
//! nothing). The ends are not `Clone`, which makes each ring single-producer,
//! single-consumer by construction. Neither side ever waits on the other: a
//! full ring is reported to the caller, which retries later.
//!
//! A job's results travel in chunks from a fixed pool that [`ring_pair`]
//! allocates and touches up front, as mbufs come from a mempool: the worker
//! takes an empty chunk from the pool's ring, fills it, and posts it in a
//! [`Reply::Flows`]; control reads it and gives it back. So the worker
//! never allocates, a reply stays small whatever a chunk holds, and a chunk
//! is copied once on each side instead of through every move of a reply.

use std::sync::atomic::AtomicBool;
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
        /// Where to write them, lent by control (the worker never
        /// allocates) and sent back in the reply.
        into: Box<WorkerCounters>,
    },
    /// Start a capture, flush or query over the worker's flow table.
    StartJob(Box<JobSpec>),
    /// Drop the job of this operation, if it still runs, and answer
    /// [`Reply::JobDone`] with what it did so far: control gave up waiting
    /// for it.
    CancelJob {
        /// The job's operation id.
        op: u64,
    },
    /// Use this mirror configuration from now on.
    InstallMirror(Arc<MirrorConfig>),
    /// Fault injection for tests: stop everything (forwarding and answering)
    /// for this many milliseconds, as a wedged worker would. Control only
    /// sends it when the operator enabled debug endpoints.
    Stall {
        /// How long, at most.
        millis: u32,
        /// Set by control to end the stall early, so a test can hold a
        /// worker exactly as long as its steps take instead of guessing a
        /// window. Control keeps a clone until the worker has dropped its
        /// own, so the worker never frees it.
        release: Arc<AtomicBool>,
    },
}

/// A worker's answer.
#[derive(Debug)]
pub enum Reply {
    /// Counters as of the moment the command was handled.
    Counters {
        /// The request's sequence number.
        seq: u64,
        /// The snapshot (boxed: every reply is as large as its largest
        /// variant, and a reply per result chunk copied 368 bytes of
        /// counters' room across cores).
        counters: Box<WorkerCounters>,
    },
    /// Some results of a job.
    Flows {
        /// The job's operation id.
        op: u64,
        /// The results, in a chunk of the pool: control gives it back with
        /// [`ControlEnd::give_back`].
        chunk: Box<JobResults>,
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

// A reply is posted per result chunk: it stays within a cache line
// (anything large travels boxed).
const _: () = assert!(std::mem::size_of::<Reply>() <= 64);

struct Rings {
    commands: ArrayQueue<Command>,
    replies: ArrayQueue<Reply>,
    /// The empty result chunks (control → worker).
    spare: ArrayQueue<Box<JobResults>>,
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

/// Makes a ring pair holding up to `commands` commands and `replies`
/// replies, with a pool of `chunks` result chunks (at least one).
pub fn ring_pair(commands: usize, replies: usize, chunks: usize) -> (ControlEnd, WorkerEnd) {
    let spare = ArrayQueue::new(chunks.max(1));
    while !spare.is_full() {
        // Built whole here, on control, so that the worker's first use of
        // a chunk takes no page fault.
        let _ = spare.push(Box::new(JobResults::Taken(Default::default())));
    }
    let rings = Arc::new(Rings {
        commands: ArrayQueue::new(commands.max(1)),
        replies: ArrayQueue::new(replies.max(1)),
        spare,
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

    /// Whether a command posted now would find room. Control is the ring's
    /// only producer, so room seen here is still there when it posts.
    pub fn has_room(&self) -> bool {
        !self.rings.commands.is_full()
    }

    /// Takes the next reply, if any.
    pub fn take_reply(&mut self) -> Option<Reply> {
        self.rings.replies.pop()
    }

    /// Returns a chunk from a [`Reply::Flows`] to the pool.
    pub fn give_back(&mut self, chunk: Box<JobResults>) {
        // Every chunk came from the pool, so there is room for it; were
        // there none, the chunk would be freed here, on control.
        let _ = self.rings.spare.push(chunk);
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
    pub fn post(&mut self, r: Reply) -> Result<(), Reply> {
        self.rings.replies.push(r)
    }

    /// Posts `r`, or keeps it in `held` when the ring is full (the caller
    /// posts nothing more until [`WorkerEnd::post_held`] has sent it);
    /// false if it was kept.
    #[inline]
    pub fn post_or_hold(&mut self, r: Reply, held: &mut Option<Reply>) -> bool {
        debug_assert!(held.is_none());
        match self.post(r) {
            Ok(()) => true,
            Err(r) => {
                *held = Some(r);
                false
            }
        }
    }

    /// Posts `held`, the reply the ring last refused, if any; false while
    /// the ring still has no room for it.
    #[inline]
    pub fn post_held(&mut self, held: &mut Option<Reply>) -> bool {
        held.take().is_none_or(|r| self.post_or_hold(r, held))
    }

    /// An empty result chunk from the pool, if control has given one back
    /// (none: control is behind on reading results; try again later).
    #[inline]
    pub fn spare_chunk(&mut self) -> Option<Box<JobResults>> {
        self.rings.spare.pop()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(seq: u64) -> Command {
        Command::ReadCounters {
            seq,
            into: Box::default(),
        }
    }

    #[test]
    fn full_rings_give_values_back() {
        let (mut c, mut w) = ring_pair(2, 1, 1);
        assert!(c.post(read(1)).is_ok());
        assert!(c.post(read(2)).is_ok());
        assert!(c.post(read(3)).is_err());
        assert!(matches!(
            w.take_command(),
            Some(Command::ReadCounters { seq: 1, .. })
        ));
        let r = Reply::Counters {
            seq: 1,
            counters: Box::default(),
        };
        assert!(w.post(r).is_ok());
        let r = Reply::Counters {
            seq: 2,
            counters: Box::default(),
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
        let (mut c, mut w) = ring_pair(64, 64, 1);
        let t = std::thread::spawn(move || {
            let mut next = 0;
            while next < 10_000 {
                if let Some(Command::ReadCounters { seq, into }) = w.take_command() {
                    assert_eq!(seq, next);
                    let mut r = Reply::Counters {
                        seq,
                        counters: into,
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
            if sent < 10_000 && c.post(read(sent)).is_ok() {
                sent += 1;
            }
            if let Some(Reply::Counters { seq, .. }) = c.take_reply() {
                assert_eq!(seq, got);
                got += 1;
            }
        }
        t.join().unwrap();
    }

    #[test]
    fn result_chunks_come_from_a_fixed_pool_and_go_back_to_it() {
        let (mut c, mut w) = ring_pair(1, 8, 2);
        let a = w.spare_chunk().expect("first chunk");
        let b = w.spare_chunk().expect("second chunk");
        assert!(w.spare_chunk().is_none(), "the pool holds two");
        let (pa, pb) = (&*a as *const JobResults, &*b as *const JobResults);
        assert!(w.post(Reply::Flows { op: 7, chunk: a }).is_ok());
        assert!(w.post(Reply::Flows { op: 7, chunk: b }).is_ok());
        for _ in 0..2 {
            let Some(Reply::Flows { op: 7, chunk }) = c.take_reply() else {
                panic!("expected a chunk");
            };
            c.give_back(chunk);
        }
        // The same two chunks again: nothing was allocated or freed.
        let mut again =
            [w.spare_chunk().unwrap(), w.spare_chunk().unwrap()].map(|x| &*x as *const JobResults);
        again.sort();
        let mut first = [pa, pb];
        first.sort();
        assert_eq!(again, first);
    }
}
