//! flowgate-bench: benchmark and test tooling for flowgate that does not
//! need DPDK. [`pcapgen`] owns the capture generator behind the
//! `flowgate-pcapgen` binary, [`plot`] the PNG plots of benchmark results
//! behind `flowgate-plot`.

pub mod pcapgen;
pub mod plot;
