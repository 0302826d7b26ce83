//! flowgate-sys: flowgate's own bindings to the system DPDK (22.11 LTS).
//!
//! `ffi` holds what bindgen generated from `shim/shim.h`; everything else in
//! this crate wraps it in safe types whose invariants are documented on each
//! type. This is the only crate in flowgate with FFI `unsafe`; the others
//! deny `unsafe_code` and build on:
//!
//! - [`Eal`]: the environment abstraction layer, initialised once per process;
//! - [`Mempool`] and [`Mbuf`] / [`MbufBurst`]: packet buffers, owned, freed on drop;
//! - [`Port`], [`RxQueue`], [`TxQueue`]: ethdev ports and their queues;
//! - [`lcore`]: launching work on worker lcores, the TSC, prefetch;
//! - [`HugeArray`]: pre-faulted, huge-page backed tables.

#![warn(missing_docs)]

pub mod cpu;
pub mod eal;
mod error;
pub mod lcore;
pub mod mbuf;
pub mod memory;
pub mod mempool;
pub mod port;

/// Raw bindgen output. Use the safe wrappers instead; this is public only so
/// that constants (e.g. `RTE_ETH_RSS_*`) can be read.
#[allow(
    non_camel_case_types,
    non_snake_case,
    non_upper_case_globals,
    dead_code,
    missing_docs,
    unsafe_op_in_unsafe_fn,
    clippy::all,
    clippy::undocumented_unsafe_blocks
)]
pub mod ffi {
    include!(concat!(env!("OUT_DIR"), "/bindings.rs"));
}

pub use eal::{Eal, EalInfo};
pub use error::DpdkError;
pub use mbuf::{Mbuf, MbufBurst, Segments, BURST_SIZE};
pub use memory::{HugeArray, HugeVec};
pub use mempool::Mempool;
pub use port::{
    DeviceInfo, LinkStatus, MacAddr, Port, PortId, PortReader, PortSetup, PortStats, RxQueue,
    TxQueue, ETHERNET_MTU,
};

/// The DPDK version this crate was built against, as pkg-config reported it.
pub const DPDK_VERSION: &str = env!("FLOWGATE_DPDK_VERSION");
