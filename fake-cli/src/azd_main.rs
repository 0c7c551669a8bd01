//! A fake Azure Developer CLI (`azd`) backed by the Entra emulator. See the crate docs.
#![allow(clippy::disallowed_methods)] // A program reads its own environment and files.

use std::process::ExitCode;

use crate::{
    Account, CliError, DEFAULT_PASSWORD, DEFAULT_SUBSCRIPTION, DEFAULT_TENANT, DEFAULT_USER, Mode,
    Profile, config_dir, discover_endpoint,
};
use clap::{Args, Parser, Subcommand};
use serde_json::json;

const VERSION: &str = "1.18.2";
const NOT_LOGGED_IN: &str = "\nERROR: not logged in, run `azd auth login` to login\n";

#[derive(Parser, Debug)]
#[command(name = "azd", disable_version_flag = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Output format.
    #[arg(short = 'o', long = "output", global = true)]
    output: Option<String>,
    /// Never prompt.
    #[arg(long, global = true)]
    no_prompt: bool,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Authentication.
    Auth {
        #[command(subcommand)]
        command: AuthCommand,
    },
    /// Print the version.
    Version,
}

#[derive(Subcommand, Debug)]
enum AuthCommand {
    /// Sign in.
    Login(Login),
    /// Sign out.
    Logout,
    /// A token for scopes.
    Token(Token),
}

#[derive(Args, Debug)]
struct Login {
    #[arg(long)]
    client_id: Option<String>,
    #[arg(long)]
    client_secret: Option<String>,
    #[arg(long)]
    client_certificate: Option<std::path::PathBuf>,
    #[arg(long)]
    tenant_id: Option<String>,
}

#[derive(Args, Debug)]
struct Token {
    #[arg(long)]
    scope: Vec<String>,
    #[arg(long)]
    tenant_id: Option<String>,
    #[arg(long)]
    claims: Option<String>,
}

/// With `-o json`, azd reports errors as a JSON console message on stderr.
fn report(message: &str, json_output: bool) {
    if json_output {
        let line = json!({
            "type": "consoleMessage",
            "timestamp": time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            "data": { "message": message },
        });
        eprintln!("{line}");
    } else {
        eprintln!("{}", message.trim());
    }
}

async fn login(args: Login, dir: &std::path::Path) -> Result<(), CliError> {
    let endpoint = discover_endpoint()?;
    let tenant = args.tenant_id.unwrap_or_else(|| DEFAULT_TENANT.to_string());
    let account = match (args.client_id, args.client_secret, args.client_certificate) {
        (Some(client_id), Some(secret), _) => Account::ServicePrincipalSecret { client_id, secret },
        (Some(client_id), None, Some(path)) => {
            Account::ServicePrincipalCertificate { client_id, path }
        }
        (Some(_), None, None) => {
            return Err(CliError(
                "\nERROR: --client-secret or --client-certificate is required with --client-id\n"
                    .into(),
            ));
        }
        (None, _, _) => {
            let refresh_token =
                crate::password_login(&endpoint, &tenant, DEFAULT_USER, DEFAULT_PASSWORD)
                    .await
                    .map_err(|e| CliError(format!("\nERROR: logging in: {e}\n")))?;
            Account::User {
                username: DEFAULT_USER.to_string(),
                refresh_token,
            }
        }
    };
    let profile = Profile {
        endpoint,
        tenant,
        subscription: DEFAULT_SUBSCRIPTION.to_string(),
        account,
    };
    profile.save(dir)?;
    println!("Logged in to Azure.");
    Ok(())
}

async fn token(args: Token, dir: &std::path::Path, mode: &Mode) -> Result<(), CliError> {
    if *mode == Mode::NotLoggedIn {
        return Err(CliError(NOT_LOGGED_IN.into()));
    }
    let mut profile = Profile::load(dir).ok_or_else(|| CliError(NOT_LOGGED_IN.into()))?;
    let scopes = if args.scope.is_empty() {
        vec!["https://management.azure.com//.default".to_string()]
    } else {
        args.scope
    };
    let token = crate::token(&mut profile, dir, &scopes, args.tenant_id.as_deref())
        .await
        .map_err(|e| CliError(format!("\nERROR: fetching token: {e}\n")))?;
    if *mode == Mode::Malformed {
        println!("token: not json");
        return Ok(());
    }
    let expires_on = time::OffsetDateTime::from_unix_timestamp(token.expires_on)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .format(time::macros::format_description!(
            "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
        ))
        .unwrap_or_default();
    println!(
        "{}",
        json!({ "token": token.token, "expiresOn": expires_on })
    );
    Ok(())
}

async fn run(cli: Cli, mode: &Mode) -> Result<(), CliError> {
    let dir = config_dir("AZD_CONFIG_DIR", ".azd");
    match cli.command {
        Command::Version => {
            if cli.output.as_deref() == Some("json") {
                println!(
                    "{}",
                    json!({"azd": {"version": VERSION, "commit": "0000000000000000000000000000000000000000"}})
                );
            } else {
                println!("azd version {VERSION} (commit 0000000000000000000000000000000000000000)");
            }
            Ok(())
        }
        Command::Auth { command } => match command {
            AuthCommand::Login(args) => login(args, &dir).await,
            AuthCommand::Logout => {
                Profile::remove(&dir);
                println!("Logged out of Azure.");
                Ok(())
            }
            AuthCommand::Token(args) => token(args, &dir, mode).await,
        },
    }
}

/// The program's entry point: parses `std::env::args` and runs the command.
pub fn main() -> ExitCode {
    let mode = Mode::from_env("FAKE_AZD_MODE");
    if let Some(code) = mode.before() {
        return ExitCode::from(code.clamp(0, 255) as u8);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("ERROR: {e}");
            return ExitCode::from(1);
        }
    };
    let json_output = cli.output.as_deref() == Some("json");
    match crate::block_on(run(cli, &mode)) {
        Err(e) => {
            eprintln!("ERROR: {e}");
            ExitCode::FAILURE
        }
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            report(&e.0, json_output);
            ExitCode::FAILURE
        }
    }
}
