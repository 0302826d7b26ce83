//! flowgate-control: the `flowgate` binary's library: configuration, EAL and
//! port bring-up, the control thread, the HTTP API faces (Network Firewall,
//! EC2, F5), the operation and mirror stores, authentication, and the CLI
//! client. `main.rs` is a thin command line over it; the fuzz targets drive
//! the request decoders through it.

pub mod api;
pub mod appliance;
pub mod auth;
pub mod cli;
pub mod client;
pub mod config;
pub mod control;
pub mod dispatch;
pub mod eal_args;
pub mod filters;
pub mod mirror_store;
pub mod ops;
