//! Bringing the data plane up and down: EAL, the mempool, ports, workers.
//!
//! Order matters and is the reverse on the way down: EAL, pool, ports
//! configured and started, workers launched; then workers stopped and
//! joined (they release their queues), ports stopped and closed, the pool
//! checked for leaked mbufs, EAL cleaned up.

use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use flowgate_dataplane::command::{ring_pair, ControlEnd};
use flowgate_dataplane::stats::WorkerCounters;
use flowgate_dataplane::track::Tracker;
use flowgate_dataplane::worker::{idle_slice_nanos, Processing, RxPath, Worker};
use flowgate_sys::lcore::{self, LcoreTask};
use flowgate_sys::{Eal, Mempool, Port, PortId, PortReader, PortSetup};

use crate::config::{self, is_pci, ConfigError, Loaded, Mode};
use crate::eal_args;
use crate::mirror_store::{MirrorPort, ETHERNET_MTU};

/// Why bring-up failed.
#[derive(Debug, thiserror::Error)]
pub enum BringUpError {
    /// The config asks for something this machine or DPDK cannot do.
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// DPDK failed for another reason.
    #[error("{0}")]
    Dpdk(String),
}

/// A port as control sees it.
#[derive(Debug, Clone)]
pub struct PortView {
    /// Configured name.
    pub name: String,
    /// DPDK port id.
    pub id: PortId,
    /// DPDK device name.
    pub device: String,
    /// Driver name.
    pub driver: String,
    /// The port's MAC address.
    pub mac: [u8; 6],
    /// Its MTU.
    pub mtu: u16,
    /// Reads its counters and link state (nothing once it is closed).
    pub reader: PortReader,
}

/// The ports as mirroring sees them, in port order: each one's interface
/// id, and its MAC and MTU once it is up (`views`, empty before).
pub fn mirror_ports(ports: &[crate::config::PortConfig], views: &[PortView]) -> Vec<MirrorPort> {
    ports
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let view = views.get(i);
            MirrorPort {
                eni: p.eni(),
                mac: view.map_or([0; 6], |v| v.mac),
                mtu: view.map_or(ETHERNET_MTU, |v| v.mtu),
            }
        })
        .collect()
}

/// What control gets once the data plane runs.
#[derive(Debug)]
pub struct ControlHandles {
    /// Ports, in config order.
    pub ports: Vec<PortView>,
    /// One ring end per worker, in worker order.
    pub rings: Vec<ControlEnd>,
    /// Generation of the mirror store the workers started with: the API
    /// serves while they come up, and a change saved meanwhile must be
    /// installed once they can be reached.
    pub mirror_generation: u32,
}

const RUNNING: u8 = 1;
const FAILED: u8 = 2;

/// How a worker's start went (it allocates its own flow table).
#[derive(Default)]
struct Startup {
    /// 0 starting, then RUNNING or FAILED.
    state: AtomicU8,
    error: Mutex<String>,
    table: Mutex<String>,
}

/// The running data plane.
pub struct Appliance {
    ports: Vec<Port>,
    views: Vec<PortView>,
    tasks: Vec<LcoreTask>,
    finals: Vec<Arc<OnceLock<WorkerCounters>>>,
    stop: Arc<AtomicBool>,
    pool: Arc<Mempool>,
    eal: Eal,
}

/// What was left at the end.
#[derive(Debug)]
pub struct Shutdown {
    /// Each worker's final counters.
    pub workers: Vec<WorkerCounters>,
    /// Each port's final counters, in config order.
    pub ports: Vec<(PortView, flowgate_sys::PortStats)>,
    /// Mbufs still out of the pool after every port closed (0 = no leak).
    pub mbufs_in_use: u32,
}

impl Appliance {
    /// Brings everything up and starts forwarding.
    /// `mirror` holds the mirror sessions restored from the state file: the
    /// workers start with them, so mirroring resumes with the first packet.
    pub fn start(
        l: &Loaded,
        mirror: &crate::mirror_store::MirrorStore,
    ) -> Result<(Appliance, ControlHandles), BringUpError> {
        let c = &l.config;
        let dp = &c.dataplane;
        let (args, memory) = eal_args::build(l)?;
        let eal = Eal::init(&args).map_err(|e| {
            // EAL refuses only its arguments with EINVAL, and flowgate's
            // own were checked: what it refused came from the file.
            if e.is_invalid_argument() && !c.eal.extra_args.is_empty() {
                return l
                    .error(
                        "eal.extra_args",
                        format!("DPDK's EAL refused them: {}", e.message),
                    )
                    .into();
            }
            BringUpError::Dpdk(format!(
                "EAL init failed: {e} (arguments: {})",
                args.join(" ")
            ))
        })?;
        let info = eal.info();
        say!(
            "flowgate: {} on {}; runtime dir {}",
            info.version,
            memory,
            info.runtime_dir
        );

        // A probe failure is reported once, by us, as a config error naming
        // the port, with what DPDK logged about it.
        let mut ids = Vec::new();
        for (i, p) in c.ports.iter().enumerate() {
            let id = if is_pci(&p.device) {
                let given = crate::config::split_devargs(&p.device).0;
                let name = crate::config::pci_canonical(given).unwrap_or_else(|| given.to_string());
                Port::id_by_name(&name).ok_or_else(|| l.error(format!("ports[{i}].device"), format!("PCI device {name} was not probed (is it bound to vfio-pci or uio_pci_generic?)")))
            } else {
                eal.probe_port(&p.device).map_err(|e| {
                    l.error(
                        format!("ports[{i}].device"),
                        format!("DPDK cannot probe {:?}: {}", p.device, e.message),
                    )
                })
            };
            ids.push(id?);
        }

        let workers = dp.worker_cpus.len();
        let pool = Mempool::new(
            &eal,
            "flowgate_pkts",
            dp.mbufs,
            dp.mbuf_cache,
            dp.mbuf_data_room,
            -1,
        )
        .map_err(|e| {
            BringUpError::Dpdk(format!(
                "cannot create the packet pool of {} mbufs: {e} (dataplane.mbufs / eal.memory_mb)",
                dp.mbufs
            ))
        })?;

        let port_index = |name: &str| c.ports.iter().position(|p| p.name == name);
        let mut peer: Vec<Option<usize>> = vec![None; c.ports.len()];
        for [a, b] in &dp.pairs {
            let (a, b) = (
                port_index(a).expect("validated"),
                port_index(b).expect("validated"),
            );
            peer[a] = Some(b);
            peer[b] = Some(a);
        }

        let mut ports = Vec::new();
        let mut views = Vec::new();
        // rx[w] / tx[w]: what worker w polls and sends through.
        let mut rx: Vec<Vec<RxPath>> = (0..workers).map(|_| Vec::new()).collect();
        let mut tx: Vec<Vec<flowgate_sys::TxQueue>> = (0..workers).map(|_| Vec::new()).collect();
        let mut pending_rx: Vec<Vec<(usize, flowgate_sys::RxQueue)>> =
            (0..workers).map(|_| Vec::new()).collect();
        let mut max_speed = Vec::new();
        for (i, (p, &id)) in c.ports.iter().zip(&ids).enumerate() {
            let dev = Port::device_info(id).map_err(|e| BringUpError::Dpdk(e.to_string()))?;
            max_speed.push(dev.max_speed_mbps);
            if (dev.max_tx_queues as usize) < workers {
                return Err(l
                    .error(
                        format!("ports[{i}].device"),
                        format!(
                            "{} offers {} tx queues but {} workers need one each",
                            dev.name, dev.max_tx_queues, workers
                        ),
                    )
                    .into());
            }
            let rx_queues = workers.min(dev.max_rx_queues as usize).max(1) as u16;
            if (rx_queues as usize) < workers && peer[i].is_some() {
                say!("flowgate: warning: port {} ({}) has {} rx queue(s) for {} workers; only the first {} poll it", p.name, dev.name, rx_queues, workers, rx_queues);
            }
            // Checked here too, to name the key (configure would say
            // ports[i].device).
            if let Some(problem) = p.mtu.and_then(|mtu| dev.mtu_problem(mtu)) {
                return Err(l.error(format!("ports[{i}].mtu"), problem).into());
            }
            let setup = PortSetup {
                rx_queues,
                tx_queues: workers as u16,
                rx_desc: dp.rx_desc,
                tx_desc: dp.tx_desc,
                symmetric_rss: true,
                promiscuous: true,
                mtu: p.mtu,
            };
            let (port, rxq, txq) =
                Port::configure(&eal, id, &setup, pool.clone()).map_err(|e| {
                    l.error(
                        format!("ports[{i}].device"),
                        format!("cannot configure {}: {e}", dev.name),
                    )
                })?;
            for (w, q) in txq.into_iter().enumerate() {
                tx[w].push(q);
            }
            if peer[i].is_some() {
                for (w, q) in rxq.into_iter().enumerate() {
                    pending_rx[w].push((i, q));
                }
            }
            views.push(PortView {
                name: p.name.clone(),
                id,
                device: dev.name.clone(),
                driver: dev.driver.clone(),
                mac: port.mac().0,
                mtu: port.mtu(),
                reader: port.reader(),
            });
            ports.push(port);
        }
        for (port, v) in ports.iter_mut().zip(&views) {
            port.start()
                .map_err(|e| BringUpError::Dpdk(format!("port {}: {e}", v.name)))?;
            say!(
                "flowgate: port {} {} ({}, {}) mac {} {}",
                v.id.0,
                v.name,
                v.device,
                v.driver,
                port.mac(),
                if port.rss_enabled() {
                    "symmetric RSS"
                } else {
                    "single queue"
                }
            );
        }
        // What fills an rx ring fastest: the device's top speed, or the
        // link's when the device names none (virtual devices report a
        // link once started).
        let line_rate: Vec<u32> = ports
            .iter()
            .zip(&max_speed)
            .map(|(port, &capa)| {
                let link = port.link();
                capa.max(if link.up { link.speed_mbps } else { 0 })
            })
            .collect();
        for (w, list) in pending_rx.into_iter().enumerate() {
            for (i, q) in list {
                rx[w].push(RxPath {
                    in_port: i,
                    queue: q,
                    out: peer[i].expect("only paired ports are polled"),
                    line_rate_mbps: line_rate[i],
                });
            }
            let slice = idle_slice_nanos(rx[w].iter().map(RxPath::ring));
            say!(
                "flowgate: worker {w} gives flow operations at most {:.1} µs per idle loop",
                slice as f64 / 1000.0
            );
        }

        let enis = mirror_ports(&c.ports, &views);
        let tunnel = crate::mirror_store::TunnelConfig::from_config(&c.mirror);
        for left in mirror.left_out(&enis) {
            say!("flowgate: {left}");
        }
        if let Some(idle) = mirror.idle_in(dp.mode) {
            say!("flowgate: {idle}");
        }
        let initial_mirror = match mirror.compile(&enis, &tunnel) {
            Ok(m) => Arc::new(m),
            Err(e) => {
                say_err!("flowgate: restored mirror sessions not installed: {e}");
                Arc::new(flowgate_dataplane::mirror::MirrorConfig::empty(enis.len()))
            }
        };
        let policy = Arc::new(config::compile_policy(l)?);
        let settings = config::track_settings(c);
        let tsc_hz = flowgate_sys::cpu::tsc_hz();
        let stop = Arc::new(AtomicBool::new(false));
        let lcores = lcore::workers(&eal);
        let mut tasks = Vec::new();
        let mut finals = Vec::new();
        let mut rings = Vec::new();
        let mut startups = Vec::new();
        for (w, (rxp, txq)) in rx.into_iter().zip(tx).enumerate() {
            // Control drains the replies every millisecond; a pool of 1024
            // result chunks (114,688 flows, 9 MB) keeps a worker scanning
            // from idle time (40,000 flows a millisecond here) from waiting
            // on control between two drains.
            let (control_end, worker_end) = ring_pair(256, 4096, 1024);
            let slot = Arc::new(OnceLock::new());
            let slot_w = slot.clone();
            let startup = Arc::new(Startup::default());
            let startup_w = startup.clone();
            let (mode, settings, policy, pool, stop_w, mirror) = (
                dp.mode,
                settings.clone(),
                policy.clone(),
                pool.clone(),
                stop.clone(),
                initial_mirror.clone(),
            );
            let task = lcore::launch(&eal, lcores[w], move || {
                // The table is allocated (and first touched) here, on the
                // worker's own CPU, so its memory is local to it.
                let processing = match mode {
                    Mode::Forward => Processing::Forward,
                    Mode::Track => match Tracker::new(settings, policy, tsc_hz) {
                        Ok(mut t) => {
                            t.set_mirror(mirror);
                            *startup_w.table.lock().unwrap() = format!(
                                "{} flows, {} MiB ({:.0} bytes per flow)",
                                t.table().capacity(),
                                t.table().mapped_bytes() >> 20,
                                t.table().bytes_per_flow()
                            );
                            Processing::Track(Box::new(t))
                        }
                        Err(e) => {
                            *startup_w.error.lock().unwrap() = e.to_string();
                            startup_w.state.store(FAILED, Ordering::Release);
                            return 1;
                        }
                    },
                };
                let worker = Worker::new(w, rxp, txq, pool, worker_end, stop_w, processing);
                startup_w.state.store(RUNNING, Ordering::Release);
                let counters = worker.run();
                let _ = slot_w.set(counters);
                0
            })
            .map_err(|e| {
                // The workers launched so far run until told to stop, and
                // dropping their tasks on the way out waits for them.
                stop.store(true, Ordering::Release);
                BringUpError::Dpdk(e.to_string())
            })?;
            tasks.push(task);
            finals.push(slot);
            rings.push(control_end);
            startups.push(startup);
        }
        let app = Appliance {
            ports,
            views: views.clone(),
            tasks,
            finals,
            stop,
            pool,
            eal,
        };
        // Ready when every worker has its table; a failure stops the others.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let states: Vec<u8> = startups
                .iter()
                .map(|s| s.state.load(Ordering::Acquire))
                .collect();
            if let Some(w) = states.iter().position(|&s| s == FAILED) {
                let e = startups[w].error.lock().unwrap().clone();
                app.shutdown();
                return Err(l
                    .error(
                        "flows.capacity",
                        format!(
                            "worker {w} cannot allocate a table of {} flows: {e}",
                            c.flows.capacity
                        ),
                    )
                    .into());
            }
            if states.iter().all(|&s| s == RUNNING) {
                break;
            }
            if Instant::now() > deadline {
                app.shutdown();
                return Err(BringUpError::Dpdk(
                    "workers did not start within 120 s".into(),
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        say!(
            "flowgate: {} worker(s) on lcores {:?} (CPUs {:?}), control on CPU {}; mode {:?}",
            workers,
            lcores,
            dp.worker_cpus,
            dp.main_cpu,
            dp.mode
        );
        if dp.mode == Mode::Track {
            say!(
                "flowgate: flow table per worker: {}; policy: {} rule(s) and a default",
                startups[0].table.lock().unwrap(),
                policy.len()
            );
        }
        let handles = ControlHandles {
            ports: views,
            rings,
            // What the workers run: 0, none, when the restored sessions
            // did not compile, so that the metrics do not call them installed.
            mirror_generation: initial_mirror.generation,
        };
        Ok((app, handles))
    }

    /// Stops workers (each finishes its burst), then ports; reports what is left.
    pub fn shutdown(mut self) -> Shutdown {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks.drain(..) {
            t.join();
        }
        let workers = self
            .finals
            .iter()
            .map(|f| f.get().copied().unwrap_or_default())
            .collect();
        let mut port_stats = Vec::new();
        for (mut port, v) in self.ports.drain(..).zip(self.views.iter().cloned()) {
            let stats = port.stats();
            if let Err(e) = port.stop() {
                say_err!("flowgate: stopping port {}: {e}", v.name);
            }
            drop(port);
            port_stats.push((v, stats));
        }
        let mbufs_in_use = self.pool.in_use_count();
        drop(self.pool);
        drop(self.eal);
        Shutdown {
            workers,
            ports: port_stats,
            mbufs_in_use,
        }
    }
}
