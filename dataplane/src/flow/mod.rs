//! Flows: keys, per-worker tables, per-flow state.

pub mod entry;
pub mod expiry;
pub mod frag;
pub mod key;
pub mod scan;
pub mod table;
pub mod tcp;

pub use entry::{DropReason, FlowEntry, TcpState, Verdict};
pub use expiry::{TimeoutSecs, Timeouts};
pub use key::{AddrFamily, FlowKey, Side, Tuple};
pub use scan::{ScanKey, Scanned, V4Tuple};
pub use table::{FlowTable, FullPolicy, Insert};
