//! Flows: keys, per-worker tables, per-flow state.

pub mod key;

pub use key::{AddrFamily, FlowKey, Side, Tuple};
