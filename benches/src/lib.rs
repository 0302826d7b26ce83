//! flowgate-bench: benchmark and test tooling for flowgate that does not
//! need DPDK. [`pcapgen`] owns the capture generator behind the
//! `flowgate-pcapgen` binary.

pub mod pcapgen;
