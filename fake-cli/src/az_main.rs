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
    let account = match app_account(&args)? {
        Some(account) => account,
        None => user_account(&args, &endpoint, &tenant).await?,
    };
    let mut profile = Profile {
        endpoint,
        tenant,
        subscription: DEFAULT_SUBSCRIPTION.to_string(),
        account,
    };
    if !matches!(profile.account, Account::User { .. }) {
        // Validate service-principal and identity logins now, as the real CLI does.
        let arm = ["https://management.azure.com/.default".to_string()];
        crate::token(&mut profile, dir, &arm, None)
            .await
            .map_err(|e| CliError(format!("ERROR: {e}")))?;
    }
    profile.save(dir)?;
    print_json(&json!([subscription_json(&profile)]))
}

/// A managed-identity, federated or service-principal login; `None` for a user login.
fn app_account(args: &Login) -> Result<Option<Account>, CliError> {
    let username = |flag: &str| {
        args.username
            .clone()
            .ok_or_else(|| CliError(format!("ERROR: --username is required with {flag}")))
    };
    if args.identity {
        let client_id = args.username.clone();
        return Ok(Some(Account::ManagedIdentity { client_id }));
    }
    if let Some(token) = args.federated_token.clone() {
        let client_id = username("--federated-token")?;
        return Ok(Some(Account::Federated { client_id, token }));
    }
    if !args.service_principal {
        return Ok(None);
    }
    let client_id = username("--service-principal")?;
    match (&args.certificate, &args.password) {
        (Some(path), _) => Ok(Some(Account::ServicePrincipalCertificate {
            client_id,
            path: path.clone(),
        })),
        (None, Some(secret)) => Ok(Some(Account::ServicePrincipalSecret {
            client_id,
            secret: secret.clone(),
        })),
        (None, None) => Err(CliError(
            "ERROR: --password or --certificate is required with --service-principal".into(),
        )),
    }
}

/// A user login through the password grant (the seeded user by default).
async fn user_account(
    args: &Login,
    endpoint: &crate::Endpoint,
    tenant: &str,
) -> Result<Account, CliError> {
    let username = args
        .username
        .clone()
        .unwrap_or_else(|| DEFAULT_USER.to_string());
    let password = args
        .password
        .clone()
        .unwrap_or_else(|| DEFAULT_PASSWORD.to_string());
    let refresh_token = crate::password_login(endpoint, tenant, &username, &password)
        .await
        .map_err(|e| CliError(format!("ERROR: {e}")))?;
    Ok(Account::User {
        username,
        refresh_token,
    })
}

fn print_json(value: &serde_json::Value) -> Result<(), CliError> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

/// The scopes `--scope` or `--resource` name (ARM by default).
fn requested_scopes(args: &GetAccessToken) -> Vec<String> {
    if !args.scope.is_empty() {
        args.scope.clone()
    } else if let Some(resource) = &args.resource {
        vec![format!("{}/.default", resource.trim_end_matches('/'))]
    } else {
        vec!["https://management.azure.com/.default".to_string()]
    }
}

/// `az account get-access-token`'s output; `old_cli` leaves out `expires_on`, as CLIs before
/// 2.54 do.
fn access_token_json(
    token: &crate::Token,
    subscription: String,
    tenant: String,
    old_cli: bool,
) -> serde_json::Value {
    let mut out = json!({
        "accessToken": token.token,
        "expiresOn": local_expires_on(token.expires_on),
        "expires_on": token.expires_on,
        "subscription": subscription,
        "tenant": tenant,
        "tokenType": "Bearer",
    });
    if old_cli && let Some(map) = out.as_object_mut() {
        map.remove("expires_on");
    }
    out
}

/// A token failure as az prints it; an expired or unusable sign-in asks for `az login`.
fn token_error(e: CliError) -> CliError {
    let relogin = if e.0.contains("AADSTS700082") || e.0.contains("AADSTS9002313") {
        "\nInteractive authentication is needed. Please run:\naz login"
    } else {
        ""
    };
    CliError(format!("ERROR: {e}{relogin}"))
}

async fn get_access_token(
    args: GetAccessToken,
    dir: &std::path::Path,
    mode: &Mode,
) -> Result<(), CliError> {
    let mut profile = Profile::load(dir).ok_or_else(|| CliError(NOT_LOGGED_IN.into()))?;
    let scopes = requested_scopes(&args);
    let token = crate::token(&mut profile, dir, &scopes, args.tenant.as_deref())
        .await
        .map_err(token_error)?;
    if *mode == Mode::Malformed {
        let prefix = &token.token[..8.min(token.token.len())];
        println!("{{\"accessToken\": \"{prefix}\", not json");
        return Ok(());
    }
    let subscription = args.subscription.unwrap_or(profile.subscription.clone());
    let tenant = args.tenant.unwrap_or(profile.tenant.clone());
    print_json(&access_token_json(
        &token,
        subscription,
        tenant,
        *mode == Mode::OldCli,
    ))
}

/// `az --version`'s text.
fn version_text(dir: &std::path::Path) -> String {
    format!(
        "azure-cli                         {VERSION}\n\ncore                              {VERSION}\ntelemetry                          1.1.0\n\nPython location '/usr/bin/python3'\nConfig directory '{}'\n\nYour CLI is up-to-date.",
        dir.display()
    )
}

async fn run(cli: Cli, mode: &Mode) -> Result<(), CliError> {
    let dir = config_dir("AZURE_CONFIG_DIR", ".azure");
    if cli.version {
        println!("{}", version_text(&dir));
        return Ok(());
    }
    match cli.command {
        None => Err(CliError(
            "ERROR: the following arguments are required: command".into(),
        )),
        Some(Command::Version) => print_json(
            &json!({"azure-cli": VERSION, "azure-cli-core": VERSION, "azure-cli-telemetry": "1.1.0", "extensions": {}}),
        ),
        Some(Command::Login(args)) => login(args, &dir).await,
        Some(Command::Logout) => {
            Profile::remove(&dir);
            Ok(())
        }
        Some(Command::Account { command }) => account(command, &dir, mode).await,
    }
}

/// The profile in `dir`, or the CLI's "not logged in" error.
fn logged_in(dir: &std::path::Path, mode: &Mode) -> Result<Profile, CliError> {
    if *mode == Mode::NotLoggedIn {
        return Err(CliError(NOT_LOGGED_IN.into()));
    }
    Profile::load(dir).ok_or_else(|| CliError(NOT_LOGGED_IN.into()))
}

async fn account(
    command: AccountCommand,
    dir: &std::path::Path,
    mode: &Mode,
) -> Result<(), CliError> {
    match command {
        AccountCommand::Show(_) => print_json(&subscription_json(&logged_in(dir, mode)?)),
        AccountCommand::List(_) => print_json(&json!([subscription_json(&logged_in(dir, mode)?)])),
        AccountCommand::Set { subscription } => {
            let mut profile = logged_in(dir, mode)?;
            if subscription != DEFAULT_SUBSCRIPTION && subscription != DEFAULT_SUBSCRIPTION_NAME {
                return Err(CliError(format!(
                    "ERROR: The subscription of '{subscription}' doesn't exist in cloud 'AzureCloud'."
                )));
            }
            profile.subscription = DEFAULT_SUBSCRIPTION.to_string();
            profile.save(dir).map_err(CliError::from)
        }
        AccountCommand::GetAccessToken(args) => {
            logged_in(dir, mode)?;
            get_access_token(args, dir, mode).await
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(account: Account) -> Profile {
        Profile {
            endpoint: crate::Endpoint {
                authority: "https://127.0.0.1:8443".into(),
                ca_cert_path: None,
            },
            tenant: DEFAULT_TENANT.into(),
            subscription: DEFAULT_SUBSCRIPTION.into(),
            account,
        }
    }

    /// `az account show` for each kind of sign-in, as SDKs parse it.
    #[test]
    fn account_show_output() {
        let accounts = [
            (
                "user",
                Account::User {
                    username: DEFAULT_USER.into(),
                    refresh_token: "rt".into(),
                },
            ),
            (
                "service_principal",
                Account::ServicePrincipalSecret {
                    client_id: "22222222-2222-2222-2222-222222222222".into(),
                    secret: "s".into(),
                },
            ),
            (
                "managed_identity",
                Account::ManagedIdentity { client_id: None },
            ),
        ];
        for (name, account) in accounts {
            insta::assert_json_snapshot!(
                format!("account_show_{name}"),
                subscription_json(&profile(account))
            );
        }
    }

    /// `az account get-access-token`, current and pre-2.54 (no `expires_on`).
    #[test]
    fn get_access_token_output() {
        let token = crate::Token {
            token: "<token>".into(),
            expires_on: 1_800_000_000,
        };
        for (name, old_cli) in [("current", false), ("old_cli", true)] {
            let out = access_token_json(
                &token,
                DEFAULT_SUBSCRIPTION.into(),
                DEFAULT_TENANT.into(),
                old_cli,
            );
            insta::assert_json_snapshot!(format!("get_access_token_{name}"), out, {
                ".expiresOn" => "[local time]"
            });
        }
    }

    #[test]
    fn version_output() {
        insta::assert_snapshot!(version_text(std::path::Path::new("/home/me/.azure")));
    }
}
