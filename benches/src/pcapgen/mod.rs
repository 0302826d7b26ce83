//! `flowgate-pcapgen`'s library side: capture generation for tests and
//! benchmarks. [`sample`] owns the small deterministic capture committed as
//! `config/sample.pcap`, [`flows`] the many-flow streams for table-scaling
//! benchmarks, [`info`] the summary used by tests, [`frame`] the shared
//! frame-building helpers and [`writer`] the pcap output.

pub mod flows;
pub mod frame;
pub mod hostile;
pub mod info;
pub mod sample;
pub mod writer;

/// Error type of the generators: anything printable.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// Result type of the generators.
pub type Result<T> = std::result::Result<T, Error>;
