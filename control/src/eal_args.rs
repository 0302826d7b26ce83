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
    let field = |name: &str| -> u64 {
        meminfo
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
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
