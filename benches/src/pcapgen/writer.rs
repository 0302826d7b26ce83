//! The pcap output side: a classic pcap file (little-endian, microsecond
//! timestamps, LINKTYPE_ETHERNET, snaplen 65535) written through a
//! `BufWriter`, with a fixed clock so that output is byte-identical on every
//! run and every machine.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use pcap_file::pcap::{PcapHeader, PcapPacket, PcapWriter};
use pcap_file::{DataLink, Endianness, TsResolution};

use super::Result;

/// 2024-01-01 00:00:00 UTC, the timestamp of every capture's first frame.
pub const EPOCH_2024: Duration = Duration::from_secs(1_704_067_200);

/// Streams frames into a pcap file with timestamps `start + n * step`.
pub struct PcapOut {
    writer: PcapWriter<BufWriter<File>>,
    next_ts: Duration,
    step: Duration,
    frames: u64,
}

impl PcapOut {
    /// Creates (truncates) `path` and writes the pcap global header. Frame
    /// `n` (from 0) will carry timestamp `start + n * step`.
    pub fn create(path: &Path, start: Duration, step: Duration) -> Result<Self> {
        let file =
            File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        let header = PcapHeader {
            version_major: 2,
            version_minor: 4,
            ts_correction: 0,
            ts_accuracy: 0,
            snaplen: 65535,
            datalink: DataLink::ETHERNET,
            ts_resolution: TsResolution::MicroSecond,
            // Fixed, not native, so the bytes do not depend on the machine.
            endianness: Endianness::Little,
        };
        let writer = PcapWriter::with_header(BufWriter::with_capacity(1 << 20, file), header)?;
        Ok(PcapOut {
            writer,
            next_ts: start,
            step,
            frames: 0,
        })
    }

    /// Appends one frame (without FCS) at the next timestamp.
    pub fn push(&mut self, frame: &[u8]) -> Result<()> {
        let len = u32::try_from(frame.len()).map_err(|_| "frame too long")?;
        self.writer
            .write_packet(&PcapPacket::new(self.next_ts, len, frame))?;
        self.next_ts += self.step;
        self.frames += 1;
        Ok(())
    }

    /// Flushes the file; returns how many frames were written.
    pub fn finish(self) -> Result<u64> {
        self.writer.into_writer().flush()?;
        Ok(self.frames)
    }
}
