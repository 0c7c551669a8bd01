//! `entra-emulator`: the emulator as a process. A thin wrapper over the library.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use entra_emulator::{Emulator, ReadyInfo, Seed};

/// Default HTTPS port (Entra authority, Pipelines OIDC).
const DEFAULT_HTTPS_PORT: u16 = 8443;
/// Default HTTP port (managed identity endpoints).
const DEFAULT_HTTP_PORT: u16 = 8080;
/// Default Service Fabric managed-identity port (HTTPS, self-signed certificate).
const DEFAULT_SERVICE_FABRIC_PORT: u16 = 8444;
/// Where real Azure Arc clients insist the challenge files live.
const ARC_TOKENS_DIR: &str = "/var/opt/azcmagent/tokens";

#[derive(Parser, Debug)]
#[command(
    name = "entra-emulator",
    version,
    about = "An offline emulator of Microsoft Entra ID's token side"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(clap::Args, Debug, Clone)]
struct RunArgs {
    /// HTTPS port; 0 picks a free one.
    #[arg(long, global = true, default_value_t = DEFAULT_HTTPS_PORT)]
    https_port: u16,
    /// HTTP port; 0 picks a free one.
    #[arg(long, global = true, default_value_t = DEFAULT_HTTP_PORT)]
    http_port: u16,
    /// Service Fabric managed-identity port (HTTPS with its own certificate); 0 picks a free one.
    #[arg(long, global = true, default_value_t = DEFAULT_SERVICE_FABRIC_PORT)]
    service_fabric_port: u16,
    /// Azure Resource Manager port (HTTPS); 0, the default, picks a free one (the ready file's
    /// `arm_url` says which).
    #[arg(long, global = true, default_value_t = 0)]
    arm_port: u16,
    /// Transparent mode's proxy port (HTTP proxy answering as Azure's hosts); 0, the default,
    /// picks a free one (the ready file's `proxy_url` says which).
    #[arg(long, global = true, default_value_t = 0)]
    proxy_port: u16,
    /// Where the Azure Arc endpoint writes challenge files
    /// [default: /var/opt/azcmagent/tokens when writable, else STATE_DIR/arc-tokens].
    #[arg(long, global = true)]
    arc_key_dir: Option<PathBuf>,
    /// Where the CA, keys and generated certificates persist
    /// [default: $XDG_STATE_HOME/entra-emulator or ~/.local/state/entra-emulator].
    #[arg(long, global = true)]
    state_dir: Option<PathBuf>,
    /// A seed file (TOML) replacing the built-in seed.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Write the ready file here (atomically, once listening). It is also written to
    /// STATE_DIR/ready.json.
    #[arg(long, global = true)]
    ready_file: Option<PathBuf>,
    /// Reject unknown form fields and resources the seed does not define (Entra-strict).
    #[arg(long, global = true)]
    strict: bool,
    /// Close an HTTP/1 connection that sends no complete request head for this long (slow
    /// clients and idle keep-alive connections).
    #[arg(long, global = true, default_value_t = 30)]
    idle_timeout_secs: u64,
    /// The most connections served at once [default: the open-files limit less 64].
    #[arg(long, global = true)]
    max_connections: Option<usize>,
    /// On SIGTERM or Ctrl-C, how long requests in flight may take to finish.
    #[arg(long, global = true, default_value_t = 10)]
    drain_secs: u64,
    /// The address to listen on. Anything but loopback requires --control-token.
    #[arg(long, global = true, default_value = "127.0.0.1")]
    bind: std::net::IpAddr,
    /// A token every control-plane call (`/_emulator/*`) must present as
    /// `Authorization: Bearer <token>`; required with a non-loopback --bind.
    #[arg(
        long,
        global = true,
        env = "ENTRA_EMULATOR_CONTROL_TOKEN",
        hide_env_values = true
    )]
    control_token: Option<String>,
    /// Inject a fault (repeatable): `ACTION@ENDPOINT[,key=value...]` or a JSON object, e.g.
    /// `throttle@token,retry_after=5,times=2`, `status@imds,status=503`, `hang@app_service`,
    /// `latency@*,ms=200,probability=0.5,seed=7`. See the README's fault table.
    #[arg(long = "fault", global = true, value_name = "SPEC")]
    faults: Vec<String>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start the emulator (the default).
    Run,
    /// Print a profile of a running emulator as `export` lines for a shell.
    Env {
        /// The profile, e.g. client_secret, client_certificate, workload_identity.
        profile: String,
    },
    /// Print the effective configuration (the seed) as TOML.
    PrintConfig,
    /// Rotate the token-signing key of a stopped emulator's state directory (a running one
    /// rotates through `POST /_emulator/keys/rotate`).
    RotateKey,
}

fn default_state_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_STATE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir).join("entra-emulator");
    }
    match std::env::var_os("HOME") {
        Some(home) => PathBuf::from(home).join(".local/state/entra-emulator"),
        None => std::env::temp_dir().join("entra-emulator"),
    }
}

/// `/var/opt/azcmagent/tokens` if this process can write there.
fn default_arc_dir() -> Option<PathBuf> {
    let dir = PathBuf::from(ARC_TOKENS_DIR);
    std::fs::create_dir_all(&dir).ok()?;
    let probe = dir.join(".entra-emulator-probe");
    std::fs::write(&probe, b"").ok()?;
    let _ = std::fs::remove_file(&probe);
    Some(dir)
}

fn load_seed(config: Option<&Path>) -> Result<Seed, String> {
    match config {
        None => Ok(Seed::default_seed()),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            Seed::from_toml(&text).map_err(|e| format!("{}: {e}", path.display()))
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("ENTRA_EMULATOR_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let state_dir = cli.run.state_dir.clone().unwrap_or_else(default_state_dir);
    let result = match cli.command.unwrap_or(Command::Run) {
        Command::Run => run(cli.run, state_dir).await,
        Command::Env { profile } => env(&cli.run, &state_dir, &profile),
        Command::PrintConfig => {
            load_seed(cli.run.config.as_deref()).map(|s| print!("{}", s.to_toml()))
        }
        Command::RotateKey => rotate(state_dir, cli.run.config.as_deref()).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("entra-emulator: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn start(args: &RunArgs, state_dir: PathBuf) -> Result<Emulator, String> {
    let mut seed = load_seed(args.config.as_deref())?;
    seed.settings.strict |= args.strict;
    for spec in &args.faults {
        seed.faults
            .push(entra_emulator::Fault::parse_flag(spec).map_err(|e| e.to_string())?);
    }
    if seed.settings.arc_key_directory.is_none() {
        seed.settings.arc_key_directory = args
            .arc_key_dir
            .clone()
            .or_else(default_arc_dir)
            .map(|d| d.display().to_string());
    }
    let mut builder =
        Emulator::builder()
            .bind(args.bind)
            .idle_timeout(std::time::Duration::from_secs(
                args.idle_timeout_secs.max(1),
            ));
    if let Some(max) = args.max_connections {
        builder = builder.max_connections(max);
    }
    if let Some(token) = &args.control_token {
        builder = builder.control_token(token.clone());
    }
    builder
        .state_dir(state_dir)
        .seed(seed)
        .https_port(args.https_port)
        .http_port(args.http_port)
        .service_fabric_port(args.service_fabric_port)
        .arm_port(args.arm_port)
        .proxy_port(args.proxy_port)
        .start()
        .await
        .map_err(|e| e.to_string())
}

async fn run(args: RunArgs, state_dir: PathBuf) -> Result<(), String> {
    let emulator = start(&args, state_dir.clone()).await?;
    let ready = emulator.ready_info();
    ready
        .write(&state_dir.join("ready.json"))
        .map_err(|e| format!("writing the ready file: {e}"))?;
    if let Some(path) = &args.ready_file {
        ready
            .write(path)
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
    }
    eprintln!("entra-emulator listening");
    eprintln!("  https: {}", ready.https_url);
    eprintln!("  http:  {}", ready.http_url);
    eprintln!(
        "  service fabric: {} (thumbprint {})",
        ready.service_fabric_url, ready.service_fabric_thumbprint
    );
    eprintln!("  CA:    {}", ready.ca_cert_path.display());
    eprintln!("  state: {}", state_dir.display());
    wait_for_signal().await;
    eprintln!(
        "entra-emulator stopping: finishing requests in flight (up to {} s)",
        args.drain_secs
    );
    // The ready files would name ports nobody listens on any more.
    let _ = std::fs::remove_file(state_dir.join("ready.json"));
    if let Some(path) = &args.ready_file {
        let _ = std::fs::remove_file(path);
    }
    let cut = emulator
        .shutdown_within(std::time::Duration::from_secs(args.drain_secs))
        .await;
    if cut > 0 {
        eprintln!("entra-emulator: {cut} connection(s) still open at the deadline were closed");
    }
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn env(args: &RunArgs, state_dir: &Path, profile: &str) -> Result<(), String> {
    let path = args
        .ready_file
        .clone()
        .unwrap_or_else(|| state_dir.join("ready.json"));
    let ready = ReadyInfo::read(&path).map_err(|e| {
        format!(
            "cannot read the ready file {}: {e}. Start the emulator first (with the same --state-dir or --ready-file).",
            path.display()
        )
    })?;
    match ready.export_lines(profile) {
        Some(lines) => {
            print!("{lines}");
            Ok(())
        }
        None => Err(format!(
            "unknown profile '{profile}'; this emulator has: {}",
            ready
                .profiles
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

async fn rotate(state_dir: PathBuf, config: Option<&Path>) -> Result<(), String> {
    let seed = load_seed(config)?;
    let emulator = Emulator::builder()
        .state_dir(state_dir)
        .seed(seed)
        .start()
        .await
        .map_err(|e| e.to_string())?;
    let kid = emulator.rotate_signing_key().map_err(|e| e.to_string())?;
    println!("{kid}");
    emulator.shutdown().await;
    Ok(())
}
