//! `conformance`: runs the scenarios through the adapters against the emulator and prints the
//! matrix. Also the fake `az` / `azd` when invoked under those names (the harness puts links
//! to itself named so first on each scenario's `PATH`).
#![allow(clippy::disallowed_methods)] // A program reads its own environment and files.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;
use conformance::adapter::Adapter;
use conformance::driver::{RunSettings, run_all_on};
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
    /// How many embedded emulators run cases at once (each one case at a time); with
    /// `--target`, always 1.
    #[arg(long, default_value_t = 6)]
    jobs: usize,
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

fn adapter(spec: &str, python: &str, instances: usize) -> Result<Box<dyn Adapter>, String> {
    let workspace = Path::new(MANIFEST_DIR).join("..");
    Ok(match spec {
        "rust" => Box::new(RustAdapter),
        "python" => Box::new(
            ProcessAdapter::new(
                "python",
                vec![
                    python.to_string(),
                    Path::new(MANIFEST_DIR)
                        .join("adapters/python/adapter.py")
                        .display()
                        .to_string(),
                ],
                workspace,
            )
            .with_instances(instances),
        ),
        other => {
            let (name, command) = other.split_once('=').ok_or_else(|| {
                format!("unknown adapter '{other}'; use rust, python or NAME=COMMAND")
            })?;
            let command: Vec<String> = command.split_whitespace().map(str::to_string).collect();
            Box::new(ProcessAdapter::new(name, command, workspace).with_instances(instances))
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
    let targets = match &cli.target {
        Some(path) => vec![Target::from_ready_file(path).await?],
        None => {
            let starting = (0..cli.jobs_here()).map(|_| Target::embedded());
            futures::future::try_join_all(starting).await?
        }
    };
    let target = &targets[0];
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
    let progress = Progress::new((scenarios.len() * refs.len()) as u64);
    let results = run_all_on(&targets, &scenarios, &refs, &settings, &|case| {
        progress.case(case)
    })
    .await;
    progress.finish();
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
impl Cli {
    /// How many cases run at once: `--jobs`, or 1 against a running emulator.
    fn jobs_here(&self) -> usize {
        if self.target.is_some() {
            1
        } else {
            self.jobs.max(1)
        }
    }
}

fn adapters(cli: &Cli) -> Result<Adapters, String> {
    let specs = if cli.adapters.is_empty() {
        vec!["rust".to_string()]
    } else {
        cli.adapters.clone()
    };
    let adapters = specs
        .iter()
        .map(|s| adapter(s, &cli.python, cli.jobs_here()))
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
        "report: {}/report.json, {}/report.md, {}/report.html",
        out.display(),
        out.display(),
        out.display()
    );
    Ok(())
}

/// Progress while the matrix runs: a bar on a terminal, else a line at every tenth.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    total: u64,
    done: std::sync::atomic::AtomicU64,
    failed: std::sync::atomic::AtomicU64,
}

impl Progress {
    fn new(total: u64) -> Self {
        use std::io::IsTerminal;
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} cases, {elapsed} {msg}",
            ) {
                bar.set_style(style);
            }
            bar
        });
        Self {
            bar,
            total,
            done: Default::default(),
            failed: Default::default(),
        }
    }

    fn case(&self, case: &conformance::report::CaseResult) {
        use std::sync::atomic::Ordering::Relaxed;
        let done = self.done.fetch_add(1, Relaxed) + 1;
        let failed =
            self.failed.load(Relaxed) + u64::from(case.status == conformance::report::Status::Fail);
        if case.status == conformance::report::Status::Fail {
            self.failed.fetch_add(1, Relaxed);
        }
        match &self.bar {
            Some(bar) => {
                bar.set_position(done);
                if failed > 0 {
                    bar.set_message(format!("{failed} failed"));
                }
            }
            None => {
                let tenth = (self.total / 10).max(1);
                if done.is_multiple_of(tenth) || done == self.total {
                    eprintln!("conformance: {done}/{} cases, {failed} failed", self.total);
                }
            }
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
