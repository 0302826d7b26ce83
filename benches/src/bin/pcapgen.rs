//! `flowgate-pcapgen`: the command line of the capture generator (`sample`,
//! `flows`, `info`); the work is done in `flowgate_bench::pcapgen`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use flowgate_bench::pcapgen::flows::{self, FlowsConfig, Proto};
use flowgate_bench::pcapgen::{hostile, info, sample, Result};

/// Generates pcap captures for flowgate's tests and benchmarks.
#[derive(Parser)]
#[command(name = "flowgate-pcapgen", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Writes the small deterministic sample capture (TCP/UDP/ICMP over
    /// IPv4 and IPv6, VLAN and QinQ, SCTP, IPv4 fragments, ARP).
    Sample {
        /// Output pcap file.
        #[arg(long)]
        out: PathBuf,
    },
    /// Writes N distinct IPv4 flows, one frame each (plus one reply frame
    /// each with --reply), in shuffled order.
    ///
    /// Every pcap record is FRAME_SIZE - 4 bytes: the FCS is not captured,
    /// but testpmd and NIC counters include it, so --frame-size 64 gives
    /// 60-byte records that go on the wire as 64-byte frames.
    Flows {
        /// Number of distinct flows.
        #[arg(long)]
        count: u64,
        /// Output pcap file.
        #[arg(long)]
        out: PathBuf,
        /// Transport protocol (tcp: SYN, reply SYN+ACK).
        #[arg(long, value_enum, default_value_t = Proto::Udp)]
        proto: Proto,
        /// Frame size on the wire including the 4-byte FCS (64..=9216).
        #[arg(long, default_value_t = 64)]
        frame_size: usize,
        /// Follow each flow's frame with a reply frame.
        #[arg(long)]
        reply: bool,
        /// Permutation seed: changes the order, not the set of flows.
        #[arg(long, default_value_t = 0)]
        seed: u64,
        /// Tag every frame with this 802.1Q VLAN id.
        #[arg(long)]
        vlan: Option<u16>,
        /// Server port (default: 9 for UDP, the protocol's default for TCP).
        #[arg(long)]
        dport: Option<u16>,
    },
    /// Writes frames built to break a parser (random bytes, every
    /// truncation of valid frames, IPv6 header chains at and past the limit,
    /// overlapping and tiny fragments, lying lengths), with a valid UDP
    /// frame after every ten.
    Hostile {
        /// Output pcap file.
        #[arg(long)]
        out: PathBuf,
        /// Seed of the random frames.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Number of random-bytes frames.
        #[arg(long, default_value_t = 5000)]
        random: usize,
    },
    /// Prints frame count, distinct canonical 5-tuples and flows of a pcap.
    Info {
        /// Input pcap file.
        path: PathBuf,
        /// Also list every flow with its packet counts each way.
        #[arg(long)]
        list: bool,
    },
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Hostile { out, seed, random } => {
            let (n, valid) = hostile::write_hostile(&out, seed, random)?;
            eprintln!("wrote {n} frames ({valid} valid) to {}", out.display());
        }
        Command::Sample { out } => {
            let n = sample::write_sample(&out)?;
            eprintln!("wrote {n} frames to {}", out.display());
        }
        Command::Flows {
            count,
            out,
            proto,
            frame_size,
            reply,
            seed,
            vlan,
            dport,
        } => {
            let cfg = FlowsConfig {
                count,
                proto,
                frame_size,
                reply,
                seed,
                vlan,
                dport,
            };
            let n = flows::write_flows(&out, &cfg)?;
            eprintln!("wrote {n} frames to {}", out.display());
        }
        Command::Info { path, list } => {
            let s = info::summarize(&path)?;
            print!("{s}");
            if list {
                for line in info::flow_lines(&s) {
                    println!("{line}");
                }
            }
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flowgate-pcapgen: {e}");
            ExitCode::FAILURE
        }
    }
}
