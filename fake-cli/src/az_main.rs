//! A fake Azure CLI (`az`) backed by the Entra emulator. See the crate docs.
#![allow(clippy::disallowed_methods)] // A program reads its own environment and files.

use std::process::ExitCode;

use crate::{
    Account, CliError, DEFAULT_PASSWORD, DEFAULT_SUBSCRIPTION, DEFAULT_SUBSCRIPTION_NAME,
    DEFAULT_TENANT, DEFAULT_USER, Mode, Profile, config_dir, discover_endpoint,
};
use clap::{Args, Parser, Subcommand};
use serde_json::json;

const VERSION: &str = "2.67.0";
const NOT_LOGGED_IN: &str = "ERROR: Please run 'az login' to setup account.";

#[derive(Parser, Debug)]
#[command(name = "az", disable_version_flag = true)]
struct Cli {
    /// Print the version.
    #[arg(long)]
    version: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Args, Debug, Clone)]
struct Output {
    /// Output format (json only).
    #[arg(short = 'o', long = "output", global = true, default_value = "json")]
    output: String,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Sign in.
    Login(Login),
    /// Sign out.
    Logout,
    /// Subscriptions and tokens.
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// Print versions as JSON.
    Version,
}

#[derive(Args, Debug)]
struct Login {
    #[arg(long)]
    service_principal: bool,
    #[arg(short = 'u', long)]
    username: Option<String>,
    #[arg(short = 'p', long)]
    password: Option<String>,
    #[arg(long)]
    certificate: Option<std::path::PathBuf>,
    #[arg(short = 't', long)]
    tenant: Option<String>,
    #[arg(long)]
    identity: bool,
    #[arg(long)]
    federated_token: Option<String>,
    #[arg(long)]
    allow_no_subscriptions: bool,
    #[command(flatten)]
    output: Output,
}

#[derive(Subcommand, Debug)]
enum AccountCommand {
    /// The current subscription.
    Show(Output),
    /// All subscriptions.
    List(Output),
    /// Choose the subscription.
    Set {
        #[arg(short = 's', long)]
        subscription: String,
    },
    /// A token for a resource or scope.
    GetAccessToken(GetAccessToken),
}

#[derive(Args, Debug)]
struct GetAccessToken {
    #[arg(long)]
    resource: Option<String>,
    #[arg(long, num_args = 1..)]
    scope: Vec<String>,
    #[arg(short = 't', long)]
    tenant: Option<String>,
    #[arg(long)]
    subscription: Option<String>,
    #[command(flatten)]
    output: Output,
}

fn subscription_json(profile: &Profile) -> serde_json::Value {
    let (name, kind) = match &profile.account {
        Account::User { username, .. } => (username.clone(), "user"),
        Account::ServicePrincipalSecret { client_id, .. }
        | Account::ServicePrincipalCertificate { client_id, .. }
        | Account::Federated { client_id, .. } => (client_id.clone(), "servicePrincipal"),
        Account::ManagedIdentity { .. } => {
            ("systemAssignedIdentity".to_string(), "servicePrincipal")
        }
    };
    json!({
        "cloudName": "AzureCloud",
        "homeTenantId": profile.tenant,
        "id": profile.subscription,
        "isDefault": true,
        "managedByTenants": [],
        "name": DEFAULT_SUBSCRIPTION_NAME,
        "state": "Enabled",
        "tenantId": profile.tenant,
        "user": { "name": name, "type": kind },
    })
}

/// `expiresOn` as the Azure CLI prints it: naive local time with microseconds.
fn local_expires_on(epoch: i64) -> String {
    let utc = time::OffsetDateTime::from_unix_timestamp(epoch)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let local = time::UtcOffset::current_local_offset()
        .map(|o| utc.to_offset(o))
        .unwrap_or(utc);
    local
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute]:[second].[subsecond digits:6]"
        ))
        .unwrap_or_default()
}

async fn login(args: Login, dir: &std::path::Path) -> Result<(), CliError> {
    let endpoint = discover_endpoint()?;
    let tenant = args
        .tenant
        .clone()
        .unwrap_or_else(|| DEFAULT_TENANT.to_string());
    let account = if args.identity {
        Account::ManagedIdentity {
            client_id: args.username.clone(),
        }
    } else if let Some(token) = args.federated_token.clone() {
        let client_id = args.username.clone().ok_or_else(|| {
            CliError("ERROR: --username is required with --federated-token".into())
        })?;
        Account::Federated { client_id, token }
    } else if args.service_principal {
        let client_id = args.username.clone().ok_or_else(|| {
            CliError("ERROR: --username is required with --service-principal".into())
        })?;
        match (&args.certificate, &args.password) {
            (Some(path), _) => Account::ServicePrincipalCertificate {
                client_id,
                path: path.clone(),
            },
            (None, Some(secret)) => Account::ServicePrincipalSecret {
                client_id,
                secret: secret.clone(),
            },
            (None, None) => {
                return Err(CliError(
                    "ERROR: --password or --certificate is required with --service-principal"
                        .into(),
                ));
            }
        }
    } else {
        let username = args
            .username
            .clone()
            .unwrap_or_else(|| DEFAULT_USER.to_string());
        let password = args
            .password
            .clone()
            .unwrap_or_else(|| DEFAULT_PASSWORD.to_string());
        let refresh_token = crate::password_login(&endpoint, &tenant, &username, &password)
            .await
            .map_err(|e| CliError(format!("ERROR: {e}")))?;
        Account::User {
            username,
            refresh_token,
        }
    };
    let mut profile = Profile {
        endpoint,
        tenant,
        subscription: DEFAULT_SUBSCRIPTION.to_string(),
        account,
    };
    if !matches!(profile.account, Account::User { .. }) {
        // Validate service-principal and identity logins now, as the real CLI does.
        crate::token(
            &mut profile,
            dir,
            &["https://management.azure.com/.default".to_string()],
            None,
        )
        .await
        .map_err(|e| CliError(format!("ERROR: {e}")))?;
    }
    profile.save(dir)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&json!([subscription_json(&profile)]))?
    );
    Ok(())
}

async fn get_access_token(
    args: GetAccessToken,
    dir: &std::path::Path,
    mode: &Mode,
) -> Result<(), CliError> {
    let mut profile = Profile::load(dir).ok_or_else(|| CliError(NOT_LOGGED_IN.into()))?;
    let scopes: Vec<String> = if !args.scope.is_empty() {
        args.scope.clone()
    } else if let Some(resource) = &args.resource {
        vec![format!("{}/.default", resource.trim_end_matches('/'))]
    } else {
        vec!["https://management.azure.com/.default".to_string()]
    };
    let token = crate::token(&mut profile, dir, &scopes, args.tenant.as_deref())
        .await
        .map_err(|e| {
            let relogin = if e.0.contains("AADSTS700082") || e.0.contains("AADSTS9002313") {
                "\nInteractive authentication is needed. Please run:\naz login"
            } else {
                ""
            };
            CliError(format!("ERROR: {e}{relogin}"))
        })?;
    if *mode == Mode::Malformed {
        println!(
            "{{\"accessToken\": \"{}\", not json",
            &token.token[..8.min(token.token.len())]
        );
        return Ok(());
    }
    let mut out = json!({
        "accessToken": token.token,
        "expiresOn": local_expires_on(token.expires_on),
        "expires_on": token.expires_on,
        "subscription": args.subscription.unwrap_or(profile.subscription.clone()),
        "tenant": args.tenant.unwrap_or(profile.tenant.clone()),
        "tokenType": "Bearer",
    });
    if *mode == Mode::OldCli
        && let Some(map) = out.as_object_mut()
    {
        map.remove("expires_on");
    }
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(())
}

async fn run(cli: Cli, mode: &Mode) -> Result<(), CliError> {
    let dir = config_dir("AZURE_CONFIG_DIR", ".azure");
    if cli.version {
        println!(
            "azure-cli                         {VERSION}\n\ncore                              {VERSION}\ntelemetry                          1.1.0\n\nPython location '/usr/bin/python3'\nConfig directory '{}'\n\nYour CLI is up-to-date.",
            dir.display()
        );
        return Ok(());
    }
    let logged_in = || -> Result<Profile, CliError> {
        if *mode == Mode::NotLoggedIn {
            return Err(CliError(NOT_LOGGED_IN.into()));
        }
        Profile::load(&dir).ok_or_else(|| CliError(NOT_LOGGED_IN.into()))
    };
    match cli.command {
        None => Err(CliError(
            "ERROR: the following arguments are required: command".into(),
        )),
        Some(Command::Version) => {
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &json!({"azure-cli": VERSION, "azure-cli-core": VERSION, "azure-cli-telemetry": "1.1.0", "extensions": {}})
                )?
            );
            Ok(())
        }
        Some(Command::Login(args)) => login(args, &dir).await,
        Some(Command::Logout) => {
            Profile::remove(&dir);
            Ok(())
        }
        Some(Command::Account { command }) => match command {
            AccountCommand::Show(_) => {
                let profile = logged_in()?;
                println!(
                    "{}",
                    serde_json::to_string_pretty(&subscription_json(&profile))?
                );
                Ok(())
            }
            AccountCommand::List(_) => {
                let profile = logged_in()?;
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!([subscription_json(&profile)]))?
                );
                Ok(())
            }
            AccountCommand::Set { subscription } => {
                let mut profile = logged_in()?;
                if subscription != DEFAULT_SUBSCRIPTION && subscription != DEFAULT_SUBSCRIPTION_NAME
                {
                    return Err(CliError(format!(
                        "ERROR: The subscription of '{subscription}' doesn't exist in cloud 'AzureCloud'."
                    )));
                }
                profile.subscription = DEFAULT_SUBSCRIPTION.to_string();
                profile.save(&dir).map_err(CliError::from)
            }
            AccountCommand::GetAccessToken(args) => {
                logged_in()?;
                get_access_token(args, &dir, mode).await
            }
        },
    }
}

/// The program's entry point: parses `std::env::args` and runs the command.
pub fn main() -> ExitCode {
    let mode = Mode::from_env("FAKE_AZ_MODE");
    if let Some(code) = mode.before() {
        return ExitCode::from(code.clamp(0, 255) as u8);
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            eprintln!("ERROR: {e}");
            return ExitCode::from(2);
        }
    };
    match crate::block_on(run(cli, &mode)) {
        Err(e) => {
            eprintln!("ERROR: {e}");
            ExitCode::FAILURE
        }
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(e)) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
