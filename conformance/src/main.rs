//! `conformance`: runs the scenarios through the adapters against the emulator and prints the
//! matrix. Also the fake `az` / `azd` when invoked under those names (the harness puts links
//! to itself named so first on each scenario's `PATH`).
#![allow(clippy::disallowed_methods)] // A program reads its own environment and files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use conformance::adapter::Adapter;
use conformance::driver::{RunSettings, run_all};
use conformance::process_adapter::ProcessAdapter;
use conformance::report::Report;
use conformance::rust_adapter::RustAdapter;
use conformance::scenario::load_dir;
use conformance::target::Target;

const MANIFEST_DIR: &str = env!("CARGO_MANIFEST_DIR");

/// Runs every credential scenario against the Entra emulator and prints a matrix of
/// scenario × adapter.
#[derive(Parser, Debug)]
#[command(name = "conformance", version)]
struct Cli {
    /// Run against an emulator that is already running (its ready file) instead of starting one.
    #[arg(long, value_name = "READY_FILE")]
    target: Option<PathBuf>,
    /// Adapters to run: `rust`, `python`, or NAME=COMMAND for any program that speaks the
    /// JSON-lines protocol (see conformance/README.md). Repeatable. [default: rust]
    #[arg(long = "adapter", value_name = "ADAPTER")]
    adapters: Vec<String>,
    /// The scenarios folder.
    #[arg(long, value_name = "DIR")]
    scenarios: Option<PathBuf>,
    /// Only scenarios whose name contains this.
    #[arg(long)]
    filter: Option<String>,
    /// Where report.json and report.md go.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// How long one adapter may take on one scenario, in milliseconds.
    #[arg(long, default_value_t = 60_000)]
    timeout_ms: u64,
    /// The Python interpreter for the python adapter.
    #[arg(long, env = "CONFORMANCE_PYTHON", default_value = "python3")]
    python: String,
}

fn main() -> ExitCode {
    let invoked_as = std::env::args_os()
        .next()
        .map(PathBuf::from)
        .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    match invoked_as.as_deref() {
        Some("az") => return fake_cli::az_main::main(),
        Some("azd") => return fake_cli::azd_main::main(),
        _ => {}
    }
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("conformance: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("conformance: {e}");
            ExitCode::from(2)
        }
    }
}

/// Links named `az` and `azd` to this executable, in a fresh folder.
fn fake_cli_links(dir: &Path) -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).map_err(|e| e.to_string())?;
    for name in ["az", "azd"] {
        #[cfg(unix)]
        std::os::unix::fs::symlink(&exe, bin.join(name))
            .map_err(|e| format!("linking {name}: {e}"))?;
        #[cfg(not(unix))]
        std::fs::copy(&exe, bin.join(format!("{name}.exe")))
            .map(drop)
            .map_err(|e| format!("copying {name}: {e}"))?;
    }
    Ok(bin)
}

fn adapter(spec: &str, python: &str) -> Result<Box<dyn Adapter>, String> {
    let workspace = Path::new(MANIFEST_DIR).join("..");
    Ok(match spec {
        "rust" => Box::new(RustAdapter),
        "python" => Box::new(ProcessAdapter::new(
            "python",
            vec![
                python.to_string(),
                Path::new(MANIFEST_DIR)
                    .join("adapters/python/adapter.py")
                    .display()
                    .to_string(),
            ],
            workspace,
        )),
        other => {
            let (name, command) = other.split_once('=').ok_or_else(|| {
                format!("unknown adapter '{other}'; use rust, python or NAME=COMMAND")
            })?;
            let command: Vec<String> = command.split_whitespace().map(str::to_string).collect();
            Box::new(ProcessAdapter::new(name, command, workspace))
        }
    })
}

async fn run(cli: Cli) -> Result<bool, String> {
    let started = Instant::now();
    let dir = cli
        .scenarios
        .clone()
        .unwrap_or_else(|| Path::new(MANIFEST_DIR).join("scenarios"));
    let mut scenarios = load_dir(&dir).map_err(|e| e.to_string())?;
    if let Some(filter) = &cli.filter {
        scenarios.retain(|s| s.name.contains(filter.as_str()));
    }
    let (specs, adapters) = adapters(&cli)?;
    let target = match &cli.target {
        Some(path) => Target::from_ready_file(path).await?,
        None => Target::embedded().await?,
    };
    let scratch = tempfile::tempdir().map_err(|e| e.to_string())?;
    let settings = RunSettings {
        bin_dir: Some(fake_cli_links(scratch.path())?),
        timeout_ms: cli.timeout_ms,
    };
    eprintln!(
        "conformance: {} scenarios from {}, adapters {}, emulator {}",
        scenarios.len(),
        dir.display(),
        specs.join(", "),
        target.ready.https_url
    );
    let refs: Vec<&dyn Adapter> = adapters.iter().map(AsRef::as_ref).collect();
    let results = run_all(&target, &scenarios, &refs, &settings).await;
    let report = Report {
        adapters: refs.iter().map(|a| a.name().to_string()).collect(),
        target: target.ready.https_url.clone(),
        results,
        total_millis: started.elapsed().as_millis(),
    };
    print!("{}", report.table());
    write_report(&report, cli.out)?;
    Ok(report.totals().fail == 0)
}

/// The adapters' names as given, and the adapters.
type Adapters = (Vec<String>, Vec<Box<dyn Adapter>>);

/// The adapters named on the command line (the Rust adapter when none is).
fn adapters(cli: &Cli) -> Result<Adapters, String> {
    let specs = if cli.adapters.is_empty() {
        vec!["rust".to_string()]
    } else {
        cli.adapters.clone()
    };
    let adapters = specs
        .iter()
        .map(|s| adapter(s, &cli.python))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((specs, adapters))
}

/// Writes `report.json` and `report.md` into `out` (default `target/conformance`).
fn write_report(report: &Report, out: Option<std::path::PathBuf>) -> Result<(), String> {
    let out = out.unwrap_or_else(|| Path::new(MANIFEST_DIR).join("../target/conformance"));
    report
        .write(&out)
        .map_err(|e| format!("writing the report to {}: {e}", out.display()))?;
    println!(
        "report: {}/report.json, {}/report.md",
        out.display(),
        out.display()
    );
    Ok(())
}
