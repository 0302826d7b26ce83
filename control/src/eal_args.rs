//! Turns the `[eal]` and `[dataplane]` sections into EAL's argument list.

use crate::config::{is_pci, ConfigError, HugepageMode, Loaded};

/// How EAL will get its memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Memory {
    /// Huge pages: this many free, of this size in KiB.
    Hugepages {
        /// Free pages at start.
        free: u64,
        /// Page size in KiB.
        size_kb: u64,
    },
    /// Ordinary memory (`--no-huge`), this many MiB.
    NoHuge {
        /// MiB reserved.
        mb: u32,
        /// Why huge pages are not used.
        why: String,
    },
}

impl std::fmt::Display for Memory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Memory::Hugepages { free, size_kb } => {
                write!(f, "huge pages ({free} free of {size_kb} kB)")
            }
            Memory::NoHuge { mb, why } => write!(f, "no huge pages (--no-huge, {mb} MiB; {why})"),
        }
    }
}

/// Free huge pages and their size in KiB, if any are reserved and
/// hugetlbfs is mounted where this process may create files (EAL maps its
/// pages through files there: as another user than the mount's owner it
/// cannot, and would fail after the ports were probed).
pub fn hugepages() -> Result<(u64, u64), String> {
    let meminfo = std::fs::read_to_string("/proc/meminfo")
        .map_err(|e| format!("cannot read /proc/meminfo: {e}"))?;
    let field = |name| crate::config::meminfo_field(&meminfo, name).unwrap_or(0);
    let free = field("HugePages_Free:");
    let size = field("Hugepagesize:");
    if free == 0 {
        return Err("none reserved".into());
    }
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let dirs: Vec<&str> = mounts
        .lines()
        .filter(|l| l.split_whitespace().nth(2) == Some("hugetlbfs"))
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    if dirs.is_empty() {
        return Err("no hugetlbfs mount".into());
    }
    let writable = |dir: &str| {
        let probe =
            std::path::Path::new(dir).join(format!(".flowgate-probe-{}", std::process::id()));
        let made = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&probe)
            .is_ok();
        let _ = std::fs::remove_file(&probe);
        made
    };
    if !dirs.iter().any(|d| writable(d)) {
        return Err(format!(
            "this user cannot create files in the hugetlbfs mount {}",
            dirs.join(", ")
        ));
    }
    Ok((free, size))
}

/// Whether an EAL option takes a value (getopt's `has_arg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Takes {
    Nothing,
    Value,
    /// Only attached (`--opt=value`); a separate word is not its value.
    MaybeValue,
}

/// DPDK 22.11's EAL options, as `eal_short_options` and
/// `eal_long_options` in `lib/eal/common/eal_common_options.c` list them
/// (the same in every 22.11 stable release): `extra_args` are checked
/// against them so that a mistyped option is a line naming its key, not
/// EAL's usage text and an exit status of 1 after the file was accepted.
const EAL_SHORT: [(char, Takes); 12] = [
    ('a', Takes::Value),
    ('b', Takes::Value),
    ('c', Takes::Value),
    ('s', Takes::Value),
    ('d', Takes::Value),
    ('h', Takes::Nothing),
    ('l', Takes::Value),
    ('S', Takes::Value),
    ('m', Takes::Value),
    ('n', Takes::Value),
    ('r', Takes::Value),
    ('v', Takes::Nothing),
];

/// See [`EAL_SHORT`].
const EAL_LONG: [(&str, Takes); 37] = [
    ("base-virtaddr", Takes::Value),
    ("create-uio-dev", Takes::Nothing),
    ("file-prefix", Takes::Value),
    ("help", Takes::Nothing),
    ("huge-dir", Takes::Value),
    ("huge-unlink", Takes::MaybeValue),
    ("iova-mode", Takes::Value),
    ("lcores", Takes::Value),
    ("log-level", Takes::Value),
    ("trace", Takes::Value),
    ("trace-dir", Takes::Value),
    ("trace-bufsz", Takes::Value),
    ("trace-mode", Takes::Value),
    ("main-lcore", Takes::Value),
    ("mbuf-pool-ops-name", Takes::Value),
    ("no-hpet", Takes::Nothing),
    ("no-huge", Takes::Nothing),
    ("no-pci", Takes::Nothing),
    ("no-shconf", Takes::Nothing),
    ("in-memory", Takes::Nothing),
    ("block", Takes::Value),
    ("allow", Takes::Value),
    ("proc-type", Takes::Value),
    ("socket-mem", Takes::Value),
    ("socket-limit", Takes::Value),
    ("syslog", Takes::Value),
    ("vdev", Takes::Value),
    ("vfio-intr", Takes::Value),
    ("vfio-vf-token", Takes::Value),
    ("vmware-tsc-map", Takes::Nothing),
    ("legacy-mem", Takes::Nothing),
    ("single-file-segments", Takes::Nothing),
    ("match-allocations", Takes::Nothing),
    ("telemetry", Takes::Nothing),
    ("no-telemetry", Takes::Nothing),
    ("force-max-simd-bitwidth", Takes::Value),
    ("huge-worker-stack", Takes::MaybeValue),
];

/// Why an EAL option may not be given in `extra_args`, if it may not:
/// flowgate sets it from another key (given twice, DPDK would take one or
/// refuse both, naming neither key), or it ends the process.
fn refused(opt: &str) -> Option<String> {
    let from = match opt {
        "-l" | "-c" | "--lcores" | "--main-lcore" => "dataplane.main_cpu and dataplane.worker_cpus",
        "--file-prefix" => "eal.file_prefix",
        "--no-huge" => "eal.hugepages and eal.memory_mb",
        "-a" | "--allow" | "-b" | "--block" | "--no-pci" => "the [[ports]] devices",
        "-h" | "--help" => return Some(format!("{opt} prints EAL's usage and ends the process")),
        _ => return None,
    };
    Some(format!("flowgate sets {opt} itself, from {from}"))
}

/// The long option `name` names, as getopt_long reads it: exactly, or as
/// the start of just one option's name.
fn long_option(name: &str) -> Result<(&'static str, Takes), String> {
    if let Some(&(full, takes)) = EAL_LONG.iter().find(|(n, _)| *n == name) {
        return Ok((full, takes));
    }
    let starting: Vec<_> = EAL_LONG
        .iter()
        .filter(|(n, _)| n.starts_with(name))
        .collect();
    match starting.as_slice() {
        [&(full, takes)] => Ok((full, takes)),
        [] => Err(format!("DPDK 22.11's EAL has no option --{name}")),
        many => Err(format!(
            "--{name} is ambiguous: it starts {}",
            many.iter()
                .map(|(n, _)| format!("--{n}"))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Checks `[eal] extra_args` as EAL's getopt_long will read them after
/// flowgate's own arguments: every word an option DPDK 22.11 knows, or
/// the value of the option before it, and none that flowgate sets itself.
/// The error is the index of the word at fault and the problem. The
/// values themselves are left to DPDK.
pub fn check_extra_args(args: &[String]) -> Result<(), (usize, String)> {
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let at = |problem: String| (i, format!("{a:?}: {problem}"));
        // A word that the option in it must take as its value.
        let mut needs_next = false;
        if let Some(long) = a.strip_prefix("--") {
            if long.is_empty() {
                return Err(at(
                    "ends EAL's options: what follows would never reach EAL".into()
                ));
            }
            let (name, value) = match long.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (long, None),
            };
            let (full, takes) = long_option(name).map_err(at)?;
            let opt = format!("--{full}");
            if let Some(why) = refused(&opt) {
                return Err(at(why));
            }
            match (takes, value) {
                (Takes::Nothing, Some(_)) => return Err(at(format!("{opt} takes no value"))),
                (Takes::Value, None) => needs_next = true,
                _ => {}
            }
        } else if let Some(shorts) = a.strip_prefix('-').filter(|s| !s.is_empty()) {
            for (pos, c) in shorts.char_indices() {
                let Some(&(_, takes)) = EAL_SHORT.iter().find(|(s, _)| *s == c) else {
                    return Err(at(format!("DPDK 22.11's EAL has no option -{c}")));
                };
                if let Some(why) = refused(&format!("-{c}")) {
                    return Err(at(why));
                }
                if takes == Takes::Value {
                    // The rest of the word is the value (`-n4`), or else
                    // the next word is.
                    needs_next = pos + c.len_utf8() == shorts.len();
                    break;
                }
            }
        } else {
            return Err(at(
                "is not an option, nor the value of the option before it: EAL would ignore it"
                    .into(),
            ));
        }
        if needs_next {
            if i + 1 == args.len() {
                return Err(at("needs a value, and nothing follows it".into()));
            }
            i += 1;
        }
        i += 1;
    }
    Ok(())
}

/// The EAL arguments for a config, and how memory will be provided here.
pub fn build(l: &Loaded) -> Result<(Vec<String>, Memory), ConfigError> {
    build_for(l, true)
}

/// Memory (MiB) DPDK needs beside the packet pool without huge pages:
/// its own structures, the rings and the ports' queues. Measured: the
/// default pool (32767 mbufs of 2176 bytes) and config/default.toml's
/// ports came up with 130 MiB and not with 125.
const NO_HUGE_EXTRA_MB: u64 = 48;

/// Bytes an mbuf takes in its pool beside its data room: the mbuf header
/// and the pool's own per-object header, cache-line aligned.
const MBUF_OVERHEAD: u64 = 192;

/// [`build`], for a config that may be meant for another machine: when
/// `here` is false, huge pages that this machine lacks are not an error.
pub fn build_for(l: &Loaded, here: bool) -> Result<(Vec<String>, Memory), ConfigError> {
    let c = &l.config;
    let dp = &c.dataplane;
    let mut args = Vec::new();
    // lcore 0 is the main lcore (control); workers are lcores 1..=n, each
    // mapped to its configured CPU.
    let mut lcores = format!("0@{}", dp.main_cpu);
    for (i, cpu) in dp.worker_cpus.iter().enumerate() {
        lcores.push_str(&format!(",{}@{}", i + 1, cpu));
    }
    args.push(format!("--lcores={lcores}"));
    args.push("--main-lcore=0".into());
    args.push(format!("--file-prefix={}", c.eal.file_prefix));
    let level = crate::config::log_level_number(&c.eal.log_level).unwrap_or(6);
    args.push(format!("--log-level={level}"));
    // A floor, not an estimate: less fails when the pool is made, after
    // the ports were probed, with a DPDK error instead of a line here.
    let pool = u64::from(dp.mbufs) * (u64::from(dp.mbuf_data_room) + MBUF_OVERHEAD);
    let least = pool.div_ceil(1 << 20) + NO_HUGE_EXTRA_MB;
    let huge = hugepages().and_then(|(free, size_kb)| {
        let mb = free * size_kb / 1024;
        if mb < least {
            Err(format!(
                "{mb} MiB of huge pages free, under the {least} MiB the packet pool needs"
            ))
        } else {
            Ok((free, size_kb))
        }
    });
    let memory = match (c.eal.hugepages, huge) {
        (HugepageMode::Off, _) => Memory::NoHuge {
            mb: c.eal.memory_mb,
            why: "eal.hugepages = \"off\"".into(),
        },
        (_, Ok((free, size_kb))) => Memory::Hugepages { free, size_kb },
        (HugepageMode::On, Err(_)) if !here => Memory::Hugepages {
            free: 0,
            size_kb: 0,
        },
        (HugepageMode::On, Err(why)) => {
            return Err(l.error(
                "eal.hugepages",
                format!(
                    "\"on\" but huge pages cannot be used ({why}); reserve some or set \"auto\""
                ),
            ))
        }
        (HugepageMode::Auto, Err(why)) => Memory::NoHuge {
            mb: c.eal.memory_mb,
            why,
        },
    };
    if let Memory::NoHuge { mb, why } = &memory {
        if u64::from(*mb) < least {
            return Err(l.error(
                "eal.memory_mb",
                format!(
                    "{mb} MiB cannot hold the packet pool without huge pages ({why}): {} mbufs of {} bytes need over {least} MiB",
                    dp.mbufs, dp.mbuf_data_room
                ),
            ));
        }
        // EAL fills --no-huge memory page by page before it fails (minutes
        // at terabytes, with the machine swapping), so more than the
        // machine has is refused here.
        let available = if here {
            crate::config::available_memory()
        } else {
            None
        };
        if let Some(available) = available.map(|b| b >> 20) {
            if u64::from(*mb) > available {
                return Err(l.error(
                    "eal.memory_mb",
                    format!(
                        "{mb} MiB without huge pages ({why}) is more than the {available} MiB this machine has available"
                    ),
                ));
            }
        }
        args.push("--no-huge".into());
        args.push("-m".into());
        args.push(mb.to_string());
    }
    let pci: Vec<&str> = c
        .ports
        .iter()
        .filter(|p| is_pci(&p.device))
        .map(|p| p.device.as_str())
        .collect();
    if pci.is_empty() {
        args.push("--no-pci".into());
    } else {
        for d in pci {
            args.push("-a".into());
            args.push(d.to_string());
        }
    }
    args.extend(c.eal.extra_args.iter().cloned());
    Ok((args, memory))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(eal: &str) -> Loaded {
        let text = format!(
            "[eal]\n{eal}\n[dataplane]\nworker_cpus = [1]\npairs = [[\"a\", \"b\"]]\n\
             [[ports]]\nname = \"a\"\ndevice = \"net_null0\"\n\
             [[ports]]\nname = \"b\"\ndevice = \"net_null1\"\n"
        );
        Loaded {
            path: "t.toml".into(),
            config: crate::config::parse(&text).unwrap(),
        }
    }

    fn extra(args: &[&str]) -> Result<(), (usize, String)> {
        check_extra_args(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn extra_args_are_options_eal_knows_with_their_values() {
        for ok in [
            &[][..],
            &[
                "--log-level=pmd.net.*:debug",
                "--iova-mode=va",
                "--in-memory",
            ],
            &[
                "--vdev",
                "net_null9",
                "-n4",
                "-n",
                "4",
                "-d",
                "/usr/lib/x.so",
            ],
            &[
                "--base-virtaddr=0x100000000",
                "--huge-unlink",
                "--huge-unlink=never",
            ],
            // Abbreviated, as getopt_long reads them.
            &["--iova=pa", "--in-mem", "-v"],
            // A value that looks like an option is still a value.
            &["--vdev", "--in-memory"],
            &["-m", "512"],
        ] {
            assert_eq!(extra(ok), Ok(()), "{ok:?}");
        }
        for (bad, at, says) in [
            (
                &["--in-memory", "--lcores=0-3"][..],
                1,
                "flowgate sets --lcores itself",
            ),
            (&["-l0-1"], 0, "flowgate sets -l itself"),
            (&["-vl", "0-1"], 0, "flowgate sets -l itself"),
            (
                &["--allow", "0000:03:00.0"],
                0,
                "from the [[ports]] devices",
            ),
            // An abbreviation of an option flowgate sets.
            (&["--file=x"], 0, "flowgate sets --file-prefix itself"),
            (&["--no-hu"], 0, "flowgate sets --no-huge itself"),
            (&["--help"], 0, "ends the process"),
            (&["-h"], 0, "ends the process"),
            (&["--in-memroy"], 0, "has no option --in-memroy"),
            (&["--vdev", "net_null9", "-x"], 2, "has no option -x"),
            (&["--no-h"], 0, "ambiguous: it starts --no-hpet, --no-huge"),
            (&["--in-memory=yes"], 0, "takes no value"),
            (&["--vdev"], 0, "needs a value, and nothing follows"),
            (&["-n"], 0, "needs a value"),
            (&["--in-memory", "net_null9"], 1, "is not an option"),
            (&["--huge-unlink", "never"], 1, "is not an option"),
            (&["--", "x"], 0, "ends EAL's options"),
        ] {
            let (i, problem) = extra(bad).unwrap_err();
            assert_eq!(i, at, "{bad:?}: {problem}");
            assert!(problem.contains(says), "{bad:?}: {problem}");
            assert!(
                problem.starts_with(&format!("{:?}: ", bad[at])),
                "{problem}"
            );
        }
    }

    #[test]
    fn without_huge_pages_the_memory_must_hold_the_packet_pool() {
        // The default pool: 32767 mbufs of 2176 bytes, 74 MiB in the pool.
        let e = build_for(&loaded("hugepages = \"off\"\nmemory_mb = 64"), false).unwrap_err();
        assert_eq!(e.key, "eal.memory_mb");
        assert!(e.problem.contains("need over 122 MiB"), "{e}");
        let (args, memory) =
            build_for(&loaded("hugepages = \"off\"\nmemory_mb = 130"), false).unwrap();
        assert!(matches!(memory, Memory::NoHuge { mb: 130, .. }));
        assert!(args.windows(2).any(|w| w == ["-m", "130"]), "{args:?}");
    }

    #[test]
    fn without_huge_pages_the_memory_must_be_the_machines() {
        // 4 PiB: no machine this runs on has it; a config for another
        // machine is not judged by this one's memory.
        let l = loaded(&format!("hugepages = \"off\"\nmemory_mb = {}", u32::MAX));
        let e = build_for(&l, true).unwrap_err();
        assert_eq!(e.key, "eal.memory_mb");
        assert!(e.problem.contains("MiB this machine has available"), "{e}");
        assert!(build_for(&l, false).is_ok());
    }

    #[test]
    fn huge_pages_too_few_for_the_pool_are_not_used() {
        // 100M mbufs (230 GB): more than any machine here has reserved, so
        // "auto" falls back to --no-huge, whose memory cannot hold it
        // either, and the one line says why both ways.
        let mut l = loaded("hugepages = \"auto\"");
        l.config.dataplane.mbufs = 100_000_000;
        l.config.dataplane.mbuf_cache = 0;
        let e = build_for(&l, true).unwrap_err();
        assert_eq!(e.key, "eal.memory_mb");
        assert!(e.problem.contains("without huge pages ("), "{e}");
        if hugepages().is_ok() {
            assert!(
                e.problem.contains("MiB of huge pages free, under the"),
                "{e}"
            );
        }
    }
}
