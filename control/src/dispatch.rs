//! The control side of the worker rings.
//!
//! One task owns every worker's [`ControlEnd`]. API handlers and the stats
//! printer ask it for things through a channel and await the answer; it
//! posts commands, collects replies on a short timer, and answers when every
//! worker has replied or a deadline has passed. Nothing here spins or blocks
//! the HTTP thread, and nothing blocks a worker.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use flowgate_dataplane::command::{Command, ControlEnd, Reply};
use flowgate_dataplane::stats::WorkerCounters;
use tokio::sync::{mpsc, oneshot};

/// How often the reply rings are drained.
const POLL: Duration = Duration::from_millis(1);

enum Request {
    Counters {
        deadline: Duration,
        answer: oneshot::Sender<Vec<Option<WorkerCounters>>>,
    },
}

/// A handle for asking the workers things.
#[derive(Clone, Debug)]
pub struct Dispatcher {
    tx: mpsc::Sender<Request>,
    workers: usize,
}

struct PendingCounters {
    got: Vec<Option<WorkerCounters>>,
    deadline: Instant,
    answer: oneshot::Sender<Vec<Option<WorkerCounters>>>,
}

impl Dispatcher {
    /// Starts the pump task on the current runtime.
    pub fn spawn(rings: Vec<ControlEnd>) -> Dispatcher {
        let (tx, rx) = mpsc::channel(64);
        let workers = rings.len();
        tokio::task::spawn_local(pump(rings, rx));
        Dispatcher { tx, workers }
    }

    /// Every worker's counters; `None` for a worker that did not answer
    /// within `deadline`.
    pub async fn worker_counters(&self, deadline: Duration) -> Vec<Option<WorkerCounters>> {
        let (answer, rx) = oneshot::channel();
        if self
            .tx
            .send(Request::Counters { deadline, answer })
            .await
            .is_err()
        {
            return vec![None; self.workers];
        }
        rx.await.unwrap_or_else(|_| vec![None; self.workers])
    }
}

async fn pump(mut rings: Vec<ControlEnd>, mut rx: mpsc::Receiver<Request>) {
    let mut next_seq: u64 = 1;
    let mut pending: HashMap<u64, PendingCounters> = HashMap::new();
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            req = rx.recv() => {
                let Some(req) = req else { return };
                match req {
                    Request::Counters { deadline, answer } => {
                        let seq = next_seq;
                        next_seq += 1;
                        let mut got = vec![None; rings.len()];
                        for (w, ring) in rings.iter_mut().enumerate() {
                            if ring.post(Command::ReadCounters { seq }).is_err() {
                                // Ring full: that worker is not keeping up;
                                // it counts as not answering.
                                got[w] = None;
                            }
                        }
                        pending.insert(seq, PendingCounters { got, deadline: Instant::now() + deadline, answer });
                    }
                }
            }
            _ = tick.tick(), if !pending.is_empty() => {
                for (w, ring) in rings.iter_mut().enumerate() {
                    while let Some(reply) = ring.take_reply() {
                        match reply {
                            Reply::Counters { seq, counters } => {
                                if let Some(p) = pending.get_mut(&seq) {
                                    p.got[w] = Some(counters);
                                }
                            }
                        }
                    }
                }
                let now = Instant::now();
                let done: Vec<u64> = pending
                    .iter()
                    .filter(|(_, p)| p.got.iter().all(Option::is_some) || now >= p.deadline)
                    .map(|(&s, _)| s)
                    .collect();
                for s in done {
                    let p = pending.remove(&s).expect("present");
                    let _ = p.answer.send(p.got);
                }
            }
        }
    }
}
