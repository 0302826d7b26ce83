//! `flowgate-plot`: the command line that turns `benches/results.json`
//! (written by `benches/run.py`) into PNG plots: `flows.png` (Mpps against
//! flow count), `flush.png` and `capture.png` (Mpps over time during a flow
//! operation). The work is done in `flowgate_bench::plot`; a plot whose data
//! is missing is skipped with a note on stderr.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Parser;
use flowgate_bench::plot::data::{flow_series, op_series};
use flowgate_bench::plot::render::{draw_flows, draw_op, load_font, FONT_PACKAGE, FONT_PATH};
use flowgate_bench::plot::Result;

/// Writes PNG plots of flowgate benchmark results.
#[derive(Parser)]
#[command(name = "flowgate-plot", version)]
struct Cli {
    /// Results written by benches/run.py.
    #[arg(long, default_value = "benches/results.json")]
    results: PathBuf,
    /// Folder the PNG files are written to.
    #[arg(long, default_value = "benches")]
    out_dir: PathBuf,
}

fn run(cli: &Cli) -> Result<()> {
    let text = std::fs::read_to_string(&cli.results)
        .map_err(|e| format!("{}: {e}", cli.results.display()))?;
    let results: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", cli.results.display()))?;
    std::fs::create_dir_all(&cli.out_dir).map_err(|e| format!("{}: {e}", cli.out_dir.display()))?;
    let out = |name: &str| cli.out_dir.join(name);

    match flow_series(&results) {
        Ok(series) => written(&out("flows.png"), draw_flows(&series, &out("flows.png")))?,
        Err(why) => eprintln!("flowgate-plot: skipped flows.png: {why}"),
    }
    for kind in ["flush", "capture"] {
        let name = format!("{kind}.png");
        match op_series(&results, kind) {
            Ok(op) => written(&out(&name), draw_op(&op, &out(&name)))?,
            Err(why) => eprintln!("flowgate-plot: skipped {name}: {why}"),
        }
    }
    Ok(())
}

/// Prints the path of a file drawn, or names it in the error.
fn written(path: &Path, drawn: Result<()>) -> Result<()> {
    drawn.map_err(|e| format!("{}: {e}", path.display()))?;
    println!("{}", path.display());
    Ok(())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if !Path::new(FONT_PATH).is_file() {
        eprintln!(
            "flowgate-plot: {FONT_PATH} not found: install the Debian package {FONT_PACKAGE}"
        );
        return ExitCode::from(2);
    }
    if let Err(e) = load_font(Path::new(FONT_PATH)).and_then(|()| run(&cli)) {
        eprintln!("flowgate-plot: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
