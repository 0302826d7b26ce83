//! Ethdev ports and their queues.
//!
//! Invariants:
//! - a queue is polled by one thread at a time: [`RxQueue`] / [`TxQueue`]
//!   are handed out once per queue, are `Send` but not `Clone`, and take
//!   `&mut self` to move packets;
//! - a port is stopped or closed only when no queue handle is alive: every
//!   handle holds a token, and [`Port::stop`] refuses while any exists (DPDK
//!   forbids rx/tx on a stopped port);
//! - a port is configured once: [`Port::configure`] claims the port id
//!   until the [`Port`] is dropped and the port closed, so two sets of
//!   queue handles never exist for one port;
//! - the port's mempool outlives the port and every queue handle (the port
//!   and the handles' token each hold an `Arc`): the driver allocates rx
//!   buffers from it on every burst;
//! - counters and link state are read from other threads through a
//!   [`PortReader`], which answers `None` once the port is closed: the
//!   close waits for a read under way and no read starts after it.

use std::collections::BTreeSet;
use std::ffi::{CStr, CString};
use std::os::raw::c_char;
use std::sync::atomic::{fence, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use crate::eal::EalGuard;
use crate::{ffi, DpdkError, Eal, Mbuf, MbufBurst, Mempool};

/// A DPDK port id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortId(pub u16);

/// An Ethernet address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct MacAddr(pub [u8; 6]);

impl std::fmt::Display for MacAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// What a device can do, as `rte_eth_dev_info_get` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceInfo {
    /// The driver, e.g. `net_pcap`.
    pub driver: String,
    /// The ethdev name, e.g. `net_pcap0`.
    pub name: String,
    /// Maximum rx queues.
    pub max_rx_queues: u16,
    /// Maximum tx queues.
    pub max_tx_queues: u16,
    /// RSS hash functions the device offers (0: no RSS).
    pub rss_offloads: u64,
    /// RSS key size in bytes (0 when unknown).
    pub rss_key_size: u8,
    /// NUMA socket of the device (-1 unknown).
    pub socket: i32,
    /// The fastest link speed the device supports, Mb/s (0: the driver
    /// does not say, as virtual devices do not).
    pub max_speed_mbps: u32,
    /// The smallest MTU the device takes.
    pub min_mtu: u16,
    /// The largest MTU the device takes.
    pub max_mtu: u16,
    /// Whether it can receive a frame into a chain of mbufs (scatter).
    pub rx_scatter: bool,
    /// Whether it can send a chain of mbufs (multi-segment tx).
    pub tx_multi_segs: bool,
}

impl DeviceInfo {
    /// Why the device cannot take `mtu`, or `None` when it can.
    pub fn mtu_problem(&self, mtu: u16) -> Option<String> {
        (mtu < self.min_mtu || mtu > self.max_mtu).then(|| {
            format!(
                "{} takes an MTU of {} to {}, not {mtu}",
                self.name, self.min_mtu, self.max_mtu
            )
        })
    }
}

/// Every speed `rte_eth_dev_info.speed_capa` can name, slowest first.
const SPEEDS_MBPS: [u32; 13] = [
    ffi::RTE_ETH_SPEED_NUM_10M,
    ffi::RTE_ETH_SPEED_NUM_100M,
    ffi::RTE_ETH_SPEED_NUM_1G,
    ffi::RTE_ETH_SPEED_NUM_2_5G,
    ffi::RTE_ETH_SPEED_NUM_5G,
    ffi::RTE_ETH_SPEED_NUM_10G,
    ffi::RTE_ETH_SPEED_NUM_20G,
    ffi::RTE_ETH_SPEED_NUM_25G,
    ffi::RTE_ETH_SPEED_NUM_40G,
    ffi::RTE_ETH_SPEED_NUM_50G,
    ffi::RTE_ETH_SPEED_NUM_56G,
    ffi::RTE_ETH_SPEED_NUM_100G,
    ffi::RTE_ETH_SPEED_NUM_200G,
];

/// The bit `speed_capa` uses for `mbps` at full duplex. The bits are
/// `RTE_BIT32` macros bindgen cannot evaluate; DPDK's own function maps
/// them, so no bit position is written down here.
fn speed_bit(mbps: u32) -> u32 {
    // SAFETY: a pure function of its arguments; it needs no EAL.
    unsafe { ffi::rte_eth_speed_bitflag(mbps, ffi::RTE_ETH_LINK_FULL_DUPLEX as i32) }
}

/// The fastest speed (Mb/s) in a `speed_capa` mask; 0 when it names none.
pub fn max_speed_mbps(speed_capa: u32) -> u32 {
    SPEEDS_MBPS
        .iter()
        .rev()
        .copied()
        .find(|&s| speed_capa & speed_bit(s) != 0)
        .unwrap_or(0)
}

/// Link state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkStatus {
    /// Link up.
    pub up: bool,
    /// Speed in Mb/s (0 unknown; DPDK's `RTE_ETH_SPEED_NUM_UNKNOWN`
    /// is reported as 0 too).
    pub speed_mbps: u32,
    /// Full duplex.
    pub full_duplex: bool,
}

/// Basic port counters (`rte_eth_stats`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PortStats {
    /// Packets received.
    pub ipackets: u64,
    /// Packets sent.
    pub opackets: u64,
    /// Bytes received.
    pub ibytes: u64,
    /// Bytes sent.
    pub obytes: u64,
    /// Packets the hardware dropped because rx queues were full.
    pub imissed: u64,
    /// Receive errors.
    pub ierrors: u64,
    /// Transmit errors.
    pub oerrors: u64,
    /// Rx mbuf allocation failures.
    pub rx_nombuf: u64,
}

/// How to bring a port up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSetup {
    /// Rx queues (one per worker that polls this port).
    pub rx_queues: u16,
    /// Tx queues (one per worker, so no two threads share one).
    pub tx_queues: u16,
    /// Rx descriptors per queue.
    pub rx_desc: u16,
    /// Tx descriptors per queue.
    pub tx_desc: u16,
    /// Spread flows over rx queues with a symmetric RSS key when the device
    /// offers RSS and there is more than one rx queue.
    pub symmetric_rss: bool,
    /// Receive every frame, whatever its destination MAC.
    pub promiscuous: bool,
    /// The MTU to set (`None`: the device's default, 1500 on Ethernet).
    pub mtu: Option<u16>,
}

impl Default for PortSetup {
    fn default() -> Self {
        Self {
            rx_queues: 1,
            tx_queues: 1,
            rx_desc: 1024,
            tx_desc: 1024,
            symmetric_rss: true,
            promiscuous: true,
            mtu: None,
        }
    }
}

/// The 40-byte Toeplitz key made of one repeated 16-bit pattern: with it the
/// hash of (src, dst, sport, dport) equals that of (dst, src, dport, sport),
/// so both directions of a flow reach the same queue (Woo and Park, 2012).
pub const SYMMETRIC_RSS_KEY: [u8; 40] = {
    let mut k = [0u8; 40];
    let mut i = 0;
    while i < 40 {
        k[i] = if i % 2 == 0 { 0x6d } else { 0x5a };
        i += 1;
    }
    k
};

/// Ethernet's default MTU.
pub const ETHERNET_MTU: u16 = 1500;

/// Shared by a port's queue handles: while one exists the port is not
/// closed, its mempool not freed, and EAL (whose memory the queues use) not
/// cleaned up.
#[derive(Debug)]
struct QueueToken {
    _pool: Arc<Mempool>,
    _eal: Arc<EalGuard>,
}

/// Port ids with a live [`Port`]. Configure and close only: never on a
/// packet path.
static CLAIMED: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// A port id claimed by one [`Port`]; released on drop.
#[derive(Debug)]
struct Claim(u16);

impl Claim {
    fn take(id: PortId) -> Option<Claim> {
        let mut claimed = CLAIMED.lock().unwrap_or_else(|e| e.into_inner());
        // Lazily: a Claim made and dropped here would release the id (and
        // lock the set again) when the id was already taken.
        claimed.insert(id.0).then(|| Claim(id.0))
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        CLAIMED
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.0);
    }
}

/// A configured ethdev port. Stops and closes itself on drop.
#[derive(Debug)]
pub struct Port {
    id: PortId,
    name: String,
    started: bool,
    rss_enabled: bool,
    queues: Arc<QueueToken>,
    _mempool: Arc<Mempool>,
    _eal: Arc<EalGuard>,
    /// True until the port is closed; written only by `Drop`.
    open: Arc<RwLock<bool>>,
    // Fields drop after `Drop::drop` has closed the port: only then is the
    // id free again.
    claim: Option<Claim>,
}

/// Receive side of queue `queue` of a port; owned by one worker.
#[derive(Debug)]
pub struct RxQueue {
    port: u16,
    queue: u16,
    descriptors: u16,
    _token: Arc<QueueToken>,
}

/// Transmit side of queue `queue` of a port; owned by one worker.
#[derive(Debug)]
pub struct TxQueue {
    port: u16,
    queue: u16,
    _token: Arc<QueueToken>,
}

pub(crate) fn probe(devargs: &str) -> Result<PortId, DpdkError> {
    let c = CString::new(devargs)
        .map_err(|_| DpdkError::other("rte_dev_probe", "devargs contain NUL"))?;
    // SAFETY: c is a valid C string; EAL is initialised (only reachable via Eal).
    let ret = unsafe { ffi::rte_dev_probe(c.as_ptr()) };
    if ret < 0 {
        return Err(DpdkError::from_ret(
            format!("rte_dev_probe({devargs})"),
            ret,
        ));
    }
    let name = devargs.split(',').next().unwrap_or(devargs);
    Port::id_by_name(name).ok_or_else(|| {
        DpdkError::other(
            format!("rte_dev_probe({devargs})"),
            format!("device probed but no ethdev port named {name} appeared"),
        )
    })
}

impl Port {
    /// The port id of an ethdev named `name` (e.g. `net_pcap0`, `0000:03:00.0`).
    pub fn id_by_name(name: &str) -> Option<PortId> {
        let c = CString::new(name).ok()?;
        let mut id = 0u16;
        // SAFETY: c is a valid C string and id a valid out pointer.
        let ret = unsafe { ffi::rte_eth_dev_get_port_by_name(c.as_ptr(), &mut id) };
        (ret == 0).then_some(PortId(id))
    }

    /// What the device behind `id` can do.
    pub fn device_info(id: PortId) -> Result<DeviceInfo, DpdkError> {
        let mut info = ffi::rte_eth_dev_info::default();
        // SAFETY: info is a valid out struct; invalid ids return an error.
        let ret = unsafe { ffi::rte_eth_dev_info_get(id.0, &mut info) };
        if ret != 0 {
            return Err(DpdkError::from_ret("rte_eth_dev_info_get", ret));
        }
        let mut name = [0 as c_char; 64];
        // SAFETY: name is a buffer of the size RTE_ETH_NAME_MAX_LEN (64) needs.
        let ret = unsafe { ffi::rte_eth_dev_get_name_by_port(id.0, name.as_mut_ptr()) };
        if ret != 0 {
            return Err(DpdkError::from_ret("rte_eth_dev_get_name_by_port", ret));
        }
        let driver = if info.driver_name.is_null() {
            String::new()
        } else {
            // SAFETY: driver_name points to the driver's static name.
            unsafe { CStr::from_ptr(info.driver_name) }
                .to_string_lossy()
                .into_owned()
        };
        // SAFETY: rte_eth_dev_get_name_by_port NUL-terminated the buffer.
        let name = unsafe { CStr::from_ptr(name.as_ptr()) }
            .to_string_lossy()
            .into_owned();
        // SAFETY: plain query on a valid port id.
        let socket = unsafe { ffi::rte_eth_dev_socket_id(id.0) };
        Ok(DeviceInfo {
            driver,
            name,
            max_rx_queues: info.max_rx_queues,
            max_tx_queues: info.max_tx_queues,
            rss_offloads: info.flow_type_rss_offloads,
            rss_key_size: info.hash_key_size,
            socket,
            max_speed_mbps: max_speed_mbps(info.speed_capa),
            min_mtu: info.min_mtu,
            max_mtu: info.max_mtu,
            // SAFETY: immutable constants defined in the shim.
            rx_scatter: info.rx_offload_capa & unsafe { ffi::fg_rx_offload_scatter } != 0,
            // SAFETY: as above.
            tx_multi_segs: info.tx_offload_capa & unsafe { ffi::fg_tx_offload_multi_segs } != 0,
        })
    }

    /// Configures port `id` with `setup` and sets up its queues on `mempool`.
    /// Returns the port (not yet started) and one handle per rx and tx queue.
    pub fn configure(
        eal: &Eal,
        id: PortId,
        setup: &PortSetup,
        mempool: Arc<Mempool>,
    ) -> Result<(Port, Vec<RxQueue>, Vec<TxQueue>), DpdkError> {
        let info = Self::device_info(id)?;
        // Released on any error below: the port is then not in use.
        let claim = Claim::take(id).ok_or_else(|| {
            DpdkError::other(
                "rte_eth_dev_configure",
                format!("{} is already configured", info.name),
            )
        })?;
        if setup.rx_queues == 0 || setup.rx_queues > info.max_rx_queues {
            return Err(DpdkError::other(
                "rte_eth_dev_configure",
                format!(
                    "{} offers {} rx queues, {} asked",
                    info.name, info.max_rx_queues, setup.rx_queues
                ),
            ));
        }
        if setup.tx_queues == 0 || setup.tx_queues > info.max_tx_queues {
            return Err(DpdkError::other(
                "rte_eth_dev_configure",
                format!(
                    "{} offers {} tx queues, {} asked",
                    info.name, info.max_tx_queues, setup.tx_queues
                ),
            ));
        }
        let mut conf = ffi::rte_eth_conf::default();
        // SAFETY: fg_rss_hf_flows is an immutable constant defined in the shim.
        let rss_hf = info.rss_offloads & unsafe { ffi::fg_rss_hf_flows };
        let use_rss = setup.symmetric_rss && setup.rx_queues > 1 && rss_hf != 0;
        // The key must live until rte_eth_dev_configure returns (DPDK copies it).
        let mut key = SYMMETRIC_RSS_KEY;
        if use_rss {
            conf.rxmode.mq_mode = ffi::rte_eth_rx_mq_mode_RTE_ETH_MQ_RX_RSS;
            conf.rx_adv_conf.rss_conf.rss_hf = rss_hf;
            if info.rss_key_size as usize == key.len() {
                conf.rx_adv_conf.rss_conf.rss_key = key.as_mut_ptr();
                conf.rx_adv_conf.rss_conf.rss_key_len = key.len() as u8;
            }
        }
        if let Some(mtu) = setup.mtu {
            if let Some(problem) = info.mtu_problem(mtu) {
                return Err(DpdkError::other("rte_eth_dev_configure", problem));
            }
            conf.rxmode.mtu = u32::from(mtu);
        }
        // A frame of the MTU with two VLAN tags that does not fit one mbuf
        // arrives as a chain, and a chain must be sent as one: ask for both
        // where the device says it can (drivers that chain without saying
        // so, as net_pcap, do it anyway).
        let largest = usize::from(setup.mtu.unwrap_or(ETHERNET_MTU)) + 14 + 8;
        if largest > usize::from(mempool.segment_room()) {
            if info.rx_scatter {
                // SAFETY: immutable constant defined in the shim.
                conf.rxmode.offloads |= unsafe { ffi::fg_rx_offload_scatter };
            }
            if info.tx_multi_segs {
                // SAFETY: as above.
                conf.txmode.offloads |= unsafe { ffi::fg_tx_offload_multi_segs };
            }
        }
        // SAFETY: conf is fully initialised and key outlives the call.
        let ret =
            unsafe { ffi::rte_eth_dev_configure(id.0, setup.rx_queues, setup.tx_queues, &conf) };
        if ret != 0 {
            return Err(DpdkError::from_ret(
                format!("rte_eth_dev_configure({})", info.name),
                ret,
            ));
        }
        let mut rx_desc = setup.rx_desc;
        let mut tx_desc = setup.tx_desc;
        // SAFETY: valid port id and out pointers.
        let ret =
            unsafe { ffi::rte_eth_dev_adjust_nb_rx_tx_desc(id.0, &mut rx_desc, &mut tx_desc) };
        if ret != 0 {
            return Err(DpdkError::from_ret("rte_eth_dev_adjust_nb_rx_tx_desc", ret));
        }
        let socket = info.socket.max(0) as u32;
        for q in 0..setup.rx_queues {
            // SAFETY: the port is configured with rx_queues queues; a null
            // rxconf means the driver's defaults; the mempool outlives the
            // port (held in _mempool below).
            let ret = unsafe {
                ffi::rte_eth_rx_queue_setup(
                    id.0,
                    q,
                    rx_desc,
                    socket,
                    std::ptr::null(),
                    mempool.as_ptr(),
                )
            };
            if ret != 0 {
                return Err(DpdkError::from_ret(
                    format!("rte_eth_rx_queue_setup({}, {q})", info.name),
                    ret,
                ));
            }
        }
        for q in 0..setup.tx_queues {
            // SAFETY: as above, for tx; null txconf means driver defaults.
            let ret =
                unsafe { ffi::rte_eth_tx_queue_setup(id.0, q, tx_desc, socket, std::ptr::null()) };
            if ret != 0 {
                return Err(DpdkError::from_ret(
                    format!("rte_eth_tx_queue_setup({}, {q})", info.name),
                    ret,
                ));
            }
        }
        if setup.promiscuous {
            // SAFETY: valid configured port. Some virtual devices do not
            // support it; that is not an error for a bump in the wire.
            unsafe { ffi::rte_eth_promiscuous_enable(id.0) };
        }
        let token = Arc::new(QueueToken {
            _pool: mempool.clone(),
            _eal: eal.guard.clone(),
        });
        let rxq = (0..setup.rx_queues)
            .map(|q| RxQueue {
                port: id.0,
                queue: q,
                descriptors: rx_desc,
                _token: token.clone(),
            })
            .collect();
        let txq = (0..setup.tx_queues)
            .map(|q| TxQueue {
                port: id.0,
                queue: q,
                _token: token.clone(),
            })
            .collect();
        Ok((
            Port {
                id,
                name: info.name,
                started: false,
                rss_enabled: use_rss,
                queues: token,
                _mempool: mempool,
                _eal: eal.guard.clone(),
                open: Arc::new(RwLock::new(true)),
                claim: Some(claim),
            },
            rxq,
            txq,
        ))
    }

    /// The port id.
    pub fn id(&self) -> PortId {
        self.id
    }

    /// The ethdev name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether symmetric RSS was switched on.
    pub fn rss_enabled(&self) -> bool {
        self.rss_enabled
    }

    /// Starts the port.
    pub fn start(&mut self) -> Result<(), DpdkError> {
        // SAFETY: the port is configured with all its queues set up.
        let ret = unsafe { ffi::rte_eth_dev_start(self.id.0) };
        if ret != 0 {
            return Err(DpdkError::from_ret(
                format!("rte_eth_dev_start({})", self.name),
                ret,
            ));
        }
        self.started = true;
        Ok(())
    }

    /// Whether queue handles are still alive (workers still own them).
    pub fn queues_in_use(&self) -> bool {
        if Arc::strong_count(&self.queues) > 1 {
            return true;
        }
        // The count is read relaxed. The fence pairs with the release in
        // the last handle's drop (as Arc's own drop does), so whatever the
        // thread that polled the queue did happens before the stop or
        // close that follows.
        fence(Ordering::Acquire);
        false
    }

    /// Stops the port. Fails while any queue handle is alive.
    pub fn stop(&mut self) -> Result<(), DpdkError> {
        if self.queues_in_use() {
            return Err(DpdkError::other(
                format!("rte_eth_dev_stop({})", self.name),
                "queues are still owned by workers",
            ));
        }
        if self.started {
            // SAFETY: no queue handle exists, so no thread is in rx/tx on it.
            let ret = unsafe { ffi::rte_eth_dev_stop(self.id.0) };
            if ret != 0 {
                return Err(DpdkError::from_ret(
                    format!("rte_eth_dev_stop({})", self.name),
                    ret,
                ));
            }
            self.started = false;
        }
        Ok(())
    }

    /// Port counters. Safe to call while workers poll the port.
    pub fn stats(&self) -> PortStats {
        stats_of(self.id)
    }

    /// A handle for other threads to read the counters and link state.
    pub fn reader(&self) -> PortReader {
        PortReader {
            id: self.id,
            open: self.open.clone(),
        }
    }

    /// The port's MAC address.
    pub fn mac(&self) -> MacAddr {
        let mut a = ffi::rte_ether_addr::default();
        // SAFETY: a is a valid out struct.
        unsafe { ffi::rte_eth_macaddr_get(self.id.0, &mut a) };
        MacAddr(a.addr_bytes)
    }

    /// The MTU: the largest IP packet the port sends ([`ETHERNET_MTU`]
    /// when the driver cannot say).
    pub fn mtu(&self) -> u16 {
        let mut mtu = 0u16;
        // SAFETY: mtu is a valid out value; the port id is valid (self).
        let ret = unsafe { ffi::rte_eth_dev_get_mtu(self.id.0, &mut mtu) };
        if ret != 0 || mtu == 0 {
            ETHERNET_MTU
        } else {
            mtu
        }
    }

    /// Link state, without waiting.
    pub fn link(&self) -> LinkStatus {
        link_of(self.id)
    }
}

/// Counters of a port id (zeroes if the id is invalid). The caller holds
/// the port open (a [`Port`] or a [`PortReader`]'s read lock).
fn stats_of(id: PortId) -> PortStats {
    let mut s = ffi::rte_eth_stats::default();
    // SAFETY: s is a valid out struct; the call only reads counters.
    let ret = unsafe { ffi::rte_eth_stats_get(id.0, &mut s) };
    if ret != 0 {
        return PortStats::default();
    }
    PortStats {
        ipackets: s.ipackets,
        opackets: s.opackets,
        ibytes: s.ibytes,
        obytes: s.obytes,
        imissed: s.imissed,
        ierrors: s.ierrors,
        oerrors: s.oerrors,
        rx_nombuf: s.rx_nombuf,
    }
}

/// Link state of a port id, without waiting (down if the id is invalid).
/// The caller holds the port open, as for [`stats_of`].
fn link_of(id: PortId) -> LinkStatus {
    let mut l = ffi::rte_eth_link::default();
    // SAFETY: l is a valid out struct; an invalid id is an error return.
    let ret = unsafe { ffi::rte_eth_link_get_nowait(id.0, &mut l) };
    if ret != 0 {
        return LinkStatus {
            up: false,
            speed_mbps: 0,
            full_duplex: false,
        };
    }
    LinkStatus {
        up: l.link_status() != 0,
        speed_mbps: if l.link_speed == ffi::RTE_ETH_SPEED_NUM_UNKNOWN {
            0
        } else {
            l.link_speed
        },
        full_duplex: l.link_duplex() != 0,
    }
}

/// Reads a port's counters and link state from any thread (control, the
/// metrics scrape) while workers poll it; `None` once the port is closed.
#[derive(Debug, Clone)]
pub struct PortReader {
    id: PortId,
    open: Arc<RwLock<bool>>,
}

impl PortReader {
    /// The port id.
    pub fn id(&self) -> PortId {
        self.id
    }

    /// The port's counters, or `None` once it is closed.
    pub fn stats(&self) -> Option<PortStats> {
        let open = self.open.read().unwrap_or_else(|e| e.into_inner());
        (*open).then(|| stats_of(self.id))
    }

    /// The link state, without waiting, or `None` once the port is closed.
    pub fn link(&self) -> Option<LinkStatus> {
        let open = self.open.read().unwrap_or_else(|e| e.into_inner());
        (*open).then(|| link_of(self.id))
    }
}

impl Drop for Port {
    fn drop(&mut self) {
        if self.queues_in_use() {
            // A worker still holds a queue: closing would pull the queue out
            // from under it. Leave the port as it is.
            eprintln!(
                "flowgate-sys: port {} dropped while queues are in use; not closing",
                self.name
            );
            // The port stays configured: its id stays claimed.
            std::mem::forget(self.claim.take());
            return;
        }
        let _ = self.stop();
        // Readers wait for the close, and read nothing after it.
        let mut open = self.open.write().unwrap_or_else(|e| e.into_inner());
        *open = false;
        // SAFETY: the port is stopped, no queue handle exists, and no
        // reader reads it (the lock is held).
        unsafe { ffi::rte_eth_dev_close(self.id.0) };
    }
}

impl RxQueue {
    /// Port id and queue id.
    pub fn ids(&self) -> (PortId, u16) {
        (PortId(self.port), self.queue)
    }

    /// The queue's ring size, as the driver adjusted it.
    pub fn descriptors(&self) -> u16 {
        self.descriptors
    }

    /// Receives up to `burst.room()` packets, appended to `burst`.
    #[inline(always)]
    pub fn rx_burst<const N: usize>(&mut self, burst: &mut MbufBurst<N>) -> usize {
        let room = burst.room();
        if room == 0 {
            return 0;
        }
        let len = burst.len();
        // SAFETY: the queue is set up (handles exist only for configured
        // queues); before the port starts, ethdev's placeholder burst
        // function returns 0, and the port cannot be closed while a handle
        // lives (QueueToken). Only this thread polls it (&mut self, not
        // Clone); the slots from len on have room for `room` pointers.
        let n = unsafe {
            ffi::fg_eth_rx_burst(
                self.port,
                self.queue,
                burst.raw_slots().add(len),
                room as u16,
            )
        };
        // SAFETY: the driver wrote n owned mbufs after the first len slots.
        unsafe { burst.grow(n as usize) };
        n as usize
    }
}

/// What one [`TxQueue::tx_burst`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TxResult {
    /// Packets the driver accepted.
    pub sent: usize,
    /// Packets it refused, which were freed.
    pub dropped: usize,
}

impl TxQueue {
    /// Port id and queue id.
    pub fn ids(&self) -> (PortId, u16) {
        (PortId(self.port), self.queue)
    }

    /// Sends every packet of `burst`. The sender owns the packets even when
    /// the driver refuses them: whatever was not sent is freed. The burst is
    /// empty afterwards.
    #[inline(always)]
    pub fn tx_burst<const N: usize>(&mut self, burst: &mut MbufBurst<N>) -> TxResult {
        let n = burst.len();
        if n == 0 {
            return TxResult::default();
        }
        // SAFETY: only this thread uses the queue; the first n slots hold
        // owned mbufs; on return the driver owns the first `sent`.
        let sent =
            unsafe { ffi::fg_eth_tx_burst(self.port, self.queue, burst.raw_slots(), n as u16) }
                as usize;
        // SAFETY: the driver took exactly the first `sent` mbufs.
        unsafe { burst.consume_front(sent) };
        let dropped = burst.len();
        burst.clear();
        TxResult { sent, dropped }
    }

    /// Sends one packet; frees it if the driver refuses. Returns whether it was sent.
    pub fn tx_one(&mut self, m: Mbuf) -> bool {
        let mut b = MbufBurst::<1>::new();
        let _ = b.push(m);
        self.tx_burst(&mut b).sent == 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_speed_has_its_own_bit() {
        let bits: Vec<u32> = SPEEDS_MBPS.iter().map(|&s| speed_bit(s)).collect();
        for (i, b) in bits.iter().enumerate() {
            assert_eq!(b.count_ones(), 1, "{} Mb/s", SPEEDS_MBPS[i]);
            assert!(
                !bits[..i].contains(b),
                "{} Mb/s shares a bit",
                SPEEDS_MBPS[i]
            );
        }
    }

    #[test]
    fn the_fastest_speed_a_mask_names_wins() {
        assert_eq!(max_speed_mbps(0), 0);
        // Bit 0 is RTE_ETH_LINK_SPEED_FIXED, a mode, not a speed.
        assert_eq!(max_speed_mbps(1), 0);
        for &s in &SPEEDS_MBPS {
            assert_eq!(max_speed_mbps(speed_bit(s) | 1), s);
        }
        let nic = speed_bit(1000) | speed_bit(10_000) | speed_bit(25_000);
        assert_eq!(max_speed_mbps(nic), 25_000);
    }
}
