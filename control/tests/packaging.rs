//! The VM appliance's pieces: the Vagrantfile validates, the systemd units
//! verify, and the config the units start flowgate on is accepted by
//! `flowgate run --check-config`.

mod common;

use std::process::Command;

use common::*;

fn have(tool: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {tool}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

#[test]
fn vagrantfile_validates() {
    assert!(
        have("vagrant"),
        "vagrant is not installed (make test installs Debian's vagrant package)"
    );
    let out = Command::new("vagrant")
        .args(["validate", "--ignore-provider"])
        .current_dir(repo())
        .env("VAGRANT_CHECKPOINT_DISABLE", "1")
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && text.contains("validated successfully"),
        "{text}"
    );
}

#[test]
fn systemd_units_verify_and_start_flowgate_on_a_config_it_accepts() {
    let unit = std::fs::read_to_string(repo().join("deploy/flowgate.service")).unwrap();
    let exec: Vec<&str> = unit
        .lines()
        .filter(|l| l.starts_with("ExecStart"))
        .collect();
    assert!(exec.iter().any(|l| l.starts_with("ExecStartPre=/usr/local/bin/flowgate run --check-config --config /etc/flowgate/flowgate.toml")), "{unit}");
    assert!(
        exec.iter().any(|l| l.starts_with(
            "ExecStart=/usr/local/bin/flowgate run --config /etc/flowgate/flowgate.toml"
        )),
        "{unit}"
    );

    // The provisioning script installs config/vagrant.toml as that file.
    let provision = std::fs::read_to_string(repo().join("scripts/vagrant-provision.sh")).unwrap();
    assert!(provision.contains("config/vagrant.toml > /etc/flowgate/flowgate.toml"));
    let out = run_to_exit(
        Command::new(bin())
            .args(["run", "--check-config", "--config", "config/vagrant.toml"])
            .current_dir(repo()),
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("config config/vagrant.toml: ok"),
        "{stdout}"
    );
    assert!(
        stdout.contains("-a 0000:00:09.0 -a 0000:00:0a.0"),
        "PCI data NICs, no --no-pci: {stdout}"
    );
    assert!(
        stdout.contains("api: http://192.168.56.10:8080"),
        "{stdout}"
    );

    // systemd itself accepts both units (binaries pointed at this checkout).
    assert!(
        have("systemd-analyze"),
        "systemd-analyze is needed (Debian's systemd package)"
    );
    let dir = TempDir::new("units");
    for name in ["flowgate.service", "flowgate-bind.service"] {
        let text = std::fs::read_to_string(repo().join("deploy").join(name))
            .unwrap()
            .replace("/usr/local/bin/flowgate", &bin().display().to_string())
            .replace(
                "/usr/local/sbin/flowgate-bind",
                &repo().join("scripts/flowgate-bind").display().to_string(),
            );
        std::fs::write(dir.path(name), text).unwrap();
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", "flowgate-bind.service", "flowgate.service"])
        .current_dir(&dir.0)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn check_config_still_rejects_a_bad_file() {
    let dir = TempDir::new("chk");
    std::fs::write(dir.path("bad.toml"), "[dataplane]\nworker_cpus = [1]\nbogus = 1\n[[ports]]\nname = \"a\"\ndevice = \"net_null0\"\n").unwrap();
    let out = run_to_exit(
        Command::new(bin())
            .args(["run", "--check-config", "--config"])
            .arg(dir.path("bad.toml")),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("dataplane.bogus"));
}
