//! flowgate-control: the `flowgate` binary's library: configuration, EAL and
//! port bring-up, the control thread, the HTTP API faces (Network Firewall,
//! EC2, F5), the operation and mirror stores, authentication, and the CLI
//! client. `main.rs` is a thin command line over it; the fuzz targets drive
//! the request decoders through it.

// Every FFI call goes through flowgate-sys's safe types.
#![forbid(unsafe_code)]

/// `println!` that never panics. Rust ignores SIGPIPE, so printing to a
/// closed pipe (`flowgate run | tee log` after tee is gone) is an error, and
/// `println!` panics on it, which in a release build aborts the appliance
/// before its ports close. The line is lost instead.
#[macro_export]
macro_rules! say {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}

/// `eprintln!` that never panics (see [`say!`]).
#[macro_export]
macro_rules! say_err {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

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
