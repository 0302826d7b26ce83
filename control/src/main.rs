//! `flowgate`: the appliance binary.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};

use flowgate_control::appliance::{Appliance, BringUpError};
use flowgate_control::{api, cli, config, control, eal_args, say, say_err};

/// A DPDK bump-in-the-wire appliance with flow operations, mirroring and an
/// HTTP control API.
#[derive(Parser, Debug)]
#[command(name = "flowgate", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Run the appliance.
    Run {
        /// The configuration file.
        #[arg(long, short, default_value = "config/default.toml")]
        config: PathBuf,
        /// Load and validate the config, print the resolved setup, and exit.
        #[arg(long)]
        check_config: bool,
    },
    /// List the newest tracked flows of a running appliance, one line per
    /// direction (the F5 matching-flows API).
    Flows(cli::FlowsArgs),
    /// Show a running appliance's port and worker counters (from /metrics).
    Stats(cli::StatsArgs),
    /// List a running appliance's flow operations (Network Firewall
    /// ListFlowOperations).
    Ops(cli::OpsArgs),
}

/// Exit status for a configuration problem.
const EXIT_CONFIG: i32 = 2;

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Cmd::Run {
            config,
            check_config,
        } => run(&config, check_config),
        Cmd::Flows(a) => cli::exit_status(cli::flows(&a)),
        Cmd::Stats(a) => cli::exit_status(cli::stats(&a)),
        Cmd::Ops(a) => cli::exit_status(cli::ops(&a)),
    };
    std::process::exit(code);
}

/// Says how the API is protected: the credentials generated at first start
/// (printed this once), or a warning when it is open or exposed.
fn announce_auth(
    auth: &flowgate_control::auth::Authenticator,
    generated: Option<&flowgate_control::auth::Generated>,
    listen: std::net::SocketAddr,
) {
    // Only what is accepted: a key or token the config overrides would only
    // mislead, and printing a secret nobody uses leaks it for nothing.
    if let Some(g) = generated {
        let mut lines = String::new();
        if g.key_in_force {
            lines += &format!(
                "\n  access key id: {}\n  secret access key: {}",
                g.key_id, g.secret
            );
        }
        if g.token_in_force {
            lines += &format!("\n  F5 API token: {}", g.token);
        }
        if g.key_in_force {
            lines += &format!(
                "\n  aws CLI: AWS_SHARED_CREDENTIALS_FILE={} AWS_PROFILE={} aws --endpoint-url http://{listen} ...",
                g.path.display(),
                flowgate_control::auth::PROFILE
            );
        }
        say!(
            "flowgate: generated API credentials in {} (mode 0600; shown only now):{lines}",
            g.path.display(),
        );
    }
    if !auth.enabled() {
        say!(
            "flowgate: warning: API authentication is OFF ([auth] enabled = false): anyone who can reach {listen} can drive this appliance"
        );
    }
    if !listen.ip().is_loopback() {
        say!(
            "flowgate: warning: the API listens on {listen}, not on loopback: make sure only the management network reaches it"
        );
    }
}

fn run(path: &std::path::Path, check_only: bool) -> i32 {
    let loaded = if check_only {
        config::load_file(path)
    } else {
        config::load(path)
    };
    let loaded = match loaded {
        Ok(l) => l,
        Err(e) => {
            say_err!("flowgate: {e}");
            return EXIT_CONFIG;
        }
    };
    let c = &loaded.config;
    if check_only {
        // The file may be meant for another machine (a VM, a bigger host):
        // what this one lacks is a warning here, an error at `run`.
        if let Err(e) = config::check_machine(&loaded, &config::available_cpus()) {
            say!("warning: on this machine: {e}");
        }
        if let Err(e) = config::check_memory(&loaded, config::available_memory()) {
            say!("warning: on this machine: {e}");
        }
        if let Err(e) = eal_args::build(&loaded) {
            say!("warning: on this machine: {e}");
        }
        return match eal_args::build_for(&loaded, false) {
            Ok((args, memory)) => {
                say!("config {}: ok", path.display());
                say!("eal: {}", args.join(" "));
                say!("memory: {memory}");
                say!(
                    "control: CPU {}; workers: CPUs {:?}",
                    c.dataplane.main_cpu,
                    c.dataplane.worker_cpus
                );
                for (i, p) in c.ports.iter().enumerate() {
                    say!("port {i} {}: {}", p.name, p.device);
                }
                for [a, b] in &c.dataplane.pairs {
                    say!("pair: {a} <-> {b}");
                }
                say!("api: http://{}", c.api.listen);
                0
            }
            Err(e) => {
                say_err!("flowgate: {e}");
                EXIT_CONFIG
            }
        };
    }
    let listener = match std::net::TcpListener::bind(c.api.listen) {
        Ok(l) => l,
        Err(e) => {
            say_err!(
                "flowgate: {}",
                loaded.error(
                    "api.listen",
                    format!("cannot listen on {}: {e}", c.api.listen)
                )
            );
            return EXIT_CONFIG;
        }
    };
    let mut cpus = c.dataplane.worker_cpus.clone();
    cpus.sort_unstable();
    cpus.dedup();
    if cpus.len() < c.dataplane.worker_cpus.len() {
        say!("flowgate: warning: [dataplane] worker_cpus names a CPU twice: workers sharing a CPU take turns and forward at a fraction of the rate (for tests only)");
    }
    if c.dataplane.pairs.is_empty() {
        say!("flowgate: warning: [dataplane] pairs is empty: no worker polls a port, so nothing is forwarded");
    }
    // Port 0 in the config takes any free port: say which one.
    let listen = listener.local_addr().unwrap_or(c.api.listen);
    let (auth, generated) = match flowgate_control::auth::Authenticator::from_config(&loaded) {
        Ok(x) => x,
        Err(e) => {
            say_err!("flowgate: {e}");
            return EXIT_CONFIG;
        }
    };
    let mirror = match flowgate_control::mirror_store::MirrorStore::open(&c.mirror.state_file) {
        Ok(m) => m,
        Err(e) => {
            say_err!(
                "flowgate: {}",
                loaded.error("mirror.state_file", e.to_string())
            );
            return EXIT_CONFIG;
        }
    };
    if !mirror.state.sessions.is_empty() {
        say!(
            "flowgate: restored {} traffic mirror session(s) from {}",
            mirror.state.sessions.len(),
            c.mirror.state_file.display()
        );
    }
    announce_auth(&auth, generated.as_ref(), listen);
    let state =
        Arc::new(api::ApiState::with_auth(Arc::new(c.clone()), auth).with_mirror_store(mirror));
    let (handoff_tx, handoff_rx) = tokio::sync::oneshot::channel();
    let (stop_tx, stop_rx) = std::sync::mpsc::channel();
    let _control = control::spawn(
        c.dataplane.main_cpu,
        listener,
        state.clone(),
        c.dataplane.stats_period,
        handoff_rx,
        stop_tx,
    );

    // A statement of its own: a guard taken inside the `match` below would
    // hold the store's lock through the whole bring-up, and the control
    // thread, serving the API meanwhile, would block on its first EC2
    // request until the ports were up.
    let restored = state.mirror().snapshot();
    let (app, handles) = match Appliance::start(&loaded, &restored) {
        Ok(x) => x,
        Err(BringUpError::Config(e)) => {
            say_err!("flowgate: {e}");
            return EXIT_CONFIG;
        }
        Err(BringUpError::Dpdk(e)) => {
            say_err!("flowgate: {e}");
            return 1;
        }
    };
    state.ports_opened(handles.ports.clone());
    let _ = handoff_tx.send(handles);
    say!("flowgate: API on http://{listen} (GET /healthz); stop with Ctrl-C or SIGTERM");

    let reason = stop_rx.recv().unwrap_or("control thread ended");
    say!("flowgate: {reason}: stopping");
    let s = state.close_ports(|| app.shutdown());
    say!("flowgate: final counters");
    for (v, st) in &s.ports {
        say!(
            "  port {:<2} {:<10} {:<12} RX-packets: {}  RX-bytes: {}  TX-packets: {}  TX-bytes: {}  RX-missed: {}  RX-errors: {}  RX-nombuf: {}  TX-errors: {}",
            v.id.0, v.name, v.device, st.ipackets, st.ibytes, st.opackets, st.obytes, st.imissed, st.ierrors, st.rx_nombuf, st.oerrors
        );
    }
    for (w, wc) in s.workers.iter().enumerate() {
        say!("{}", control::worker_line(w, wc));
        let reasons: Vec<String> = flowgate_dataplane::parse::Malformed::ALL
            .iter()
            .filter(|m| wc.malformed[m.index()] > 0)
            .map(|m| format!("{} {}", m.name(), wc.malformed[m.index()]))
            .collect();
        if !reasons.is_empty() {
            say!("  worker {w}  malformed: {}", reasons.join("  "));
        }
    }
    say!(
        "  mbufs in use after close: {}{}",
        s.mbufs_in_use,
        if s.mbufs_in_use == 0 {
            " (no leak)"
        } else {
            " (LEAK)"
        }
    );
    if s.mbufs_in_use != 0 {
        return 1;
    }
    0
}
