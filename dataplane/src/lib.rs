//! flowgate-dataplane: everything a worker lcore does to packets.
//!
//! The data path reads top to bottom, as in [`worker`]: rx burst, parse
//! ([`parse`] over the typed views in [`wire`]), key ([`flow::FlowKey`]),
//! bulk lookup in the worker's own [`flow::FlowTable`], act (policy verdict,
//! mirror, reject), tx burst. Between bursts a worker polls its command ring
//! ([`command`]) and advances long jobs and the expiry sweep by bounded slices.
//!
//! This crate knows nothing of HTTP, JSON or TOML; it is driven by values the
//! control crate builds. It has no FFI: DPDK is reached through
//! `flowgate-sys`'s safe types.

#![warn(missing_docs)]
#![forbid(unsafe_code)]

pub mod command;
pub mod filter;
pub mod flow;
pub mod job;
pub mod mirror;
pub mod parse;
pub mod policy;
pub mod reject;
pub mod stats;
pub mod track;
pub mod wire;
pub mod worker;
