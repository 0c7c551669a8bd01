//! The persistent token cache across languages: a user signed in by Python `azure-identity`
//! (`DeviceCodeCredential` with `TokenCachePersistenceOptions(allow_unencrypted_storage=True)`)
//! gets a token from this crate's credential, given the same cache name and the
//! `AuthenticationRecord`, with no further sign-in — the emulator sees a refresh-token grant
//! and no device code — and the other way round. Also: the file is MSAL's JSON, other entries
//! survive, and a corrupt file is a warning and an empty cache.
//!
//! The same with the cache encrypted: a private session bus with gnome-keyring's Secret Service
//! on it, Python keeping its cache there through msal-extensions' libsecret persistence and this
//! crate through its `secret_service` feature; CAE tokens in the `.cae` cache; writers in several
//! processes at once lose no entry; no Secret Service and no permission for a plain file is a
//! clear error.
//!
//! Needs Python with `azure-identity` (`ENTRA_TEST_PYTHON`, else `python3` if it imports it),
//! and for the encrypted cache Python with `azure-identity` and PyGObject's libsecret
//! (`ENTRA_TEST_KEYRING_PYTHON`) plus `dbus-daemon`, `dbus-send` and `gnome-keyring-daemon`.
//! Without them the tests say so and pass locally; under CI (`CI` set) they fail.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use azure_core::credentials::{TokenCredential, TokenRequestOptions};
use azure_identity::os::{MapEnv, Os};
use azure_identity::{
    AuthenticationRecord, ClientSecretCredential, ClientSecretCredentialOptions,
    DeviceCodeCredential, DeviceCodeCredentialOptions, DeviceCodeInfo,
    TokenCachePersistenceOptions, TokenRequestExtras,
};
use entra_emulator::{Emulator, Seed, well_known};

const ARM: &str = "https://management.azure.com/.default";
const VAULT: &str = "https://vault.azure.net/.default";
const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/real-clients/python/persistent_cache.py"
);

fn python() -> Option<String> {
    python_with("ENTRA_TEST_PYTHON", "import azure.identity, jwt")
}

/// Python that can keep its cache in the Secret Service (PyGObject with libsecret).
fn keyring_python() -> Option<String> {
    python_with(
        "ENTRA_TEST_KEYRING_PYTHON",
        "import azure.identity, jwt, msal_extensions.libsecret",
    )
}

fn python_with(variable: &str, imports: &str) -> Option<String> {
    let candidate = std::env::var(variable).unwrap_or_else(|_| "python3".into());
    let ok = Command::new(&candidate)
        .args(["-c", imports])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return Some(candidate);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must provide Python that runs `{imports}` ({variable})"
    );
    eprintln!("skipped: no Python that runs `{imports}` (set {variable})");
    None
}

async fn emulator() -> Emulator {
    let emu = Emulator::builder()
        .https_port(0)
        .http_port(0)
        .service_fabric_port(0)
        .start()
        .await
        .unwrap();
    let mut seed = Seed::default_seed();
    seed.sign_in.auto_approve_device_codes = Some(well_known::USER_PRINCIPAL_NAME.into());
    seed.sign_in.device_code_interval_secs = 0;
    emu.apply_seed(seed).unwrap();
    emu
}

/// A home directory for one test, and the Secret Service its session bus reaches, if any.
struct Home {
    dir: tempfile::TempDir,
    keyring: Option<SecretService>,
}

impl Home {
    /// A home whose caches are plain files.
    fn plain() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            keyring: None,
        }
    }

    /// A home with its own session bus and gnome-keyring: caches are encrypted.
    fn with_keyring() -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let keyring = SecretService::start(dir.path())?;
        Some(Self {
            dir,
            keyring: Some(keyring),
        })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The environment both languages' credentials see.
    fn env(&self) -> Vec<(&'static str, String)> {
        let mut env = vec![("HOME", self.path().display().to_string())];
        if let Some(keyring) = &self.keyring {
            env.push(("DBUS_SESSION_BUS_ADDRESS", keyring.address.clone()));
        }
        env
    }

    fn os(&self) -> Os {
        let env = self
            .env()
            .into_iter()
            .fold(MapEnv::new(), |env, (name, value)| env.with(name, value));
        Os {
            env: Arc::new(env),
            ..Os::default()
        }
    }
}

/// A private D-Bus session bus (no service activation) with gnome-keyring's Secret Service on
/// it, its login keyring created and unlocked; both stop when this is dropped.
struct SecretService {
    address: String,
    bus: Child,
    daemon: Child,
}

impl SecretService {
    /// `None` (skipped) where the programs are missing, except under CI.
    fn start(home: &Path) -> Option<Self> {
        // On PATH (dbus-send has no --version to ask).
        let path = std::env::var_os("PATH").unwrap_or_default();
        let present =
            |program: &str| std::env::split_paths(&path).any(|dir| dir.join(program).is_file());
        if !["dbus-daemon", "gnome-keyring-daemon", "dbus-send"]
            .iter()
            .all(|p| present(p))
        {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must install dbus-daemon, dbus-bin and gnome-keyring"
            );
            eprintln!("skipped: no dbus-daemon and gnome-keyring-daemon");
            return None;
        }
        let runtime = home.join("run");
        std::fs::create_dir_all(&runtime).unwrap();
        let config = home.join("bus.conf");
        std::fs::write(
            &config,
            format!(
                "<!DOCTYPE busconfig PUBLIC \"-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN\" \
                 \"http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd\">\n\
                 <busconfig><type>session</type><listen>unix:path={}/bus</listen>\
                 <auth>EXTERNAL</auth><policy context=\"default\">\
                 <allow send_destination=\"*\" eavesdrop=\"true\"/><allow eavesdrop=\"true\"/>\
                 <allow own=\"*\"/></policy></busconfig>",
                runtime.display()
            ),
        )
        .unwrap();
        let mut bus = Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address=1"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("dbus-daemon starts");
        let mut address = String::new();
        BufReader::new(bus.stdout.take().unwrap())
            .read_line(&mut address)
            .unwrap();
        let address = address.trim().to_string();
        assert!(!address.is_empty(), "dbus-daemon printed no address");
        let mut daemon = Command::new("gnome-keyring-daemon")
            .args(["--foreground", "--components=secrets", "--unlock"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", home)
            .env("XDG_DATA_HOME", home.join("data"))
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("DBUS_SESSION_BUS_ADDRESS", &address)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("gnome-keyring-daemon starts");
        // The login keyring's password, then end of input.
        daemon
            .stdin
            .take()
            .unwrap()
            .write_all(b"test-password")
            .unwrap();
        let service = Self {
            address,
            bus,
            daemon,
        };
        service.wait_until_served();
        Some(service)
    }

    /// Polls the bus (at most 10 s) until the Secret Service's name has an owner.
    fn wait_until_served(&self) {
        for _ in 0..200 {
            let answer = Command::new("dbus-send")
                .arg(format!("--bus={}", self.address))
                .args([
                    "--print-reply",
                    "--dest=org.freedesktop.DBus",
                    "/org/freedesktop/DBus",
                    "org.freedesktop.DBus.NameHasOwner",
                    "string:org.freedesktop.secrets",
                ])
                .output()
                .expect("dbus-send runs");
            if String::from_utf8_lossy(&answer.stdout).contains("boolean true") {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("gnome-keyring-daemon did not take org.freedesktop.secrets within 10 s");
    }
}

impl Drop for SecretService {
    fn drop(&mut self) {
        for child in [&mut self.daemon, &mut self.bus] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs the Python side to completion, off the runtime's thread (the emulator answers it).
async fn run_python(python: &str, emu: &Emulator, home: &Home, args: &[&str]) -> String {
    let mut command = Command::new(python);
    command
        .arg(SCRIPT)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .envs(home.env())
        .env("REQUESTS_CA_BUNDLE", emu.ca_cert_path())
        .env("SSL_CERT_FILE", emu.ca_cert_path())
        .env("NO_PROXY", "127.0.0.1,localhost");
    if home.keyring.is_some() {
        command.env("ENTRA_TEST_CACHE_ENCRYPTED", "1");
    }
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .unwrap()
        .expect("python runs");
    assert!(
        output.status.success(),
        "python {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Python's `silent` mode for `record` (written to `home`), the request log cleared first:
/// Python's output. `extra` is the mode's last argument (`cae`, `retry`).
async fn python_silently(
    python: &str,
    emu: &Emulator,
    home: &Home,
    name: &str,
    record: &AuthenticationRecord,
    extra: &[&str],
) -> String {
    let file = home.path().join("record.json");
    std::fs::write(&file, record.serialize()).unwrap();
    emu.clear_requests();
    let (url, file) = (emu.https_url(), file.display().to_string());
    let mut args = vec!["silent", &url, name, &file, well_known::MIDDLE_TIER_SCOPE];
    args.extend_from_slice(extra);
    run_python(python, emu, home, &args).await
}

/// A device-code credential persisting to `home`'s cache `name`: encrypted when `home` has a
/// keyring (plain files refused), else a plain file.
fn credential(
    emu: &Emulator,
    home: &Home,
    record: Option<AuthenticationRecord>,
    name: &str,
) -> Arc<DeviceCodeCredential> {
    DeviceCodeCredential::new(Some(DeviceCodeCredentialOptions {
        authentication_record: record.clone(),
        disable_automatic_authentication: record.is_some(),
        user_prompt: Some(Arc::new(|_: &DeviceCodeInfo| {})),
        token_cache_persistence_options: Some(TokenCachePersistenceOptions {
            name: name.into(),
            allow_unencrypted_storage: home.keyring.is_none(),
        }),
        client_options: emu.client_options(),
        os: home.os(),
        ..Default::default()
    }))
    .unwrap()
}

fn grant_types(emu: &Emulator) -> Vec<String> {
    emu.requests()
        .iter()
        .filter_map(|r| r.form_field("grant_type").map(str::to_string))
        .collect()
}

#[tokio::test]
async fn a_python_sign_in_is_used_silently_here() {
    let Some(python) = python() else { return };
    let emu = emulator().await;
    let home = Home::plain();
    let record = run_python(
        &python,
        &emu,
        &home,
        &["sign-in", &emu.https_url(), "py-to-rust"],
    )
    .await;
    let record = AuthenticationRecord::deserialize(record.trim()).unwrap();
    assert_eq!(record.username, well_known::USER_PRINCIPAL_NAME);
    emu.clear_requests();
    let token = credential(&emu, &home, Some(record), "py-to-rust")
        .get_token(&[well_known::MIDDLE_TIER_SCOPE], None)
        .await
        .unwrap();
    assert!(!token.token.secret().is_empty());
    assert_eq!(
        grant_types(&emu),
        ["refresh_token"],
        "silent: a refresh, no device code"
    );
}

#[tokio::test]
async fn a_sign_in_here_is_used_silently_by_python() {
    let Some(python) = python() else { return };
    let emu = emulator().await;
    let home = Home::plain();
    let signed_in = credential(&emu, &home, None, "rust-to-py");
    let record = signed_in.authenticate(&[ARM], None).await.unwrap();
    let out = python_silently(&python, &emu, &home, "rust-to-py", &record, &[]).await;
    assert!(out.contains(well_known::USER_PRINCIPAL_NAME), "{out}");
    assert!(
        grant_types(&emu).iter().all(|g| g == "refresh_token"),
        "{:?}",
        grant_types(&emu)
    );
}

#[tokio::test]
async fn the_file_is_msal_json_keeps_other_entries_and_survives_corruption() {
    let emu = emulator().await;
    let home = Home::plain();
    let path = home.path().join(".IdentityService/shape.nocae");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    // Corrupt: a warning and an empty cache, then a sign-in works and rewrites it.
    std::fs::write(&path, "{ not json").unwrap();
    let first = credential(&emu, &home, None, "shape");
    first.get_token(&[ARM], None).await.unwrap();
    let cache: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for section in [
        "AccessToken",
        "RefreshToken",
        "IdToken",
        "Account",
        "AppMetadata",
    ] {
        assert!(
            cache[section].as_object().is_some_and(|m| !m.is_empty()),
            "{section}: {cache}"
        );
    }
    let record = first.authentication_record().unwrap();
    // MSAL's key: home account, host without port, type, client, no realm, sorted scopes.
    let host = record.authority.split(':').next().unwrap();
    let rt_key = format!(
        "{}-{host}-refreshtoken-{}--https://management.azure.com/.default offline_access openid profile",
        record.home_account_id, record.client_id
    );
    assert!(
        cache["RefreshToken"].get(&rt_key).is_some(),
        "{rt_key} in {}",
        cache["RefreshToken"]
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
    // Another program's entry survives this credential's next write.
    let mut edited = cache.clone();
    edited["AppMetadata"]["appmetadata-elsewhere-someone"] =
        serde_json::json!({"client_id": "someone", "environment": "elsewhere"});
    std::fs::write(&path, serde_json::to_vec(&edited).unwrap()).unwrap();
    first
        .get_token(&[well_known::MIDDLE_TIER_SCOPE], None)
        .await
        .unwrap();
    let after: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert!(
        after["AppMetadata"]
            .get("appmetadata-elsewhere-someone")
            .is_some()
    );
    assert!(
        !home
            .path()
            .join(".IdentityService/shape.nocae.lockfile")
            .exists(),
        "the lock is released"
    );
}

#[tokio::test]
async fn without_a_secret_service_a_plain_file_needs_permission() {
    let emu = emulator().await;
    let home = Home::plain();
    // A session bus nobody listens on.
    let bus = format!("unix:path={}/no-bus", home.path().display());
    let credential = |allow_unencrypted_storage| {
        DeviceCodeCredential::new(Some(DeviceCodeCredentialOptions {
            user_prompt: Some(Arc::new(|_: &DeviceCodeInfo| {})),
            token_cache_persistence_options: Some(TokenCachePersistenceOptions {
                name: "refused".into(),
                allow_unencrypted_storage,
            }),
            client_options: emu.client_options(),
            os: Os {
                env: Arc::new(
                    MapEnv::from([("HOME", home.path().display().to_string())])
                        .with("DBUS_SESSION_BUS_ADDRESS", bus.clone()),
                ),
                ..Os::default()
            },
            ..Default::default()
        }))
        .unwrap()
    };
    let refused = credential(false)
        .get_token(&[ARM], None)
        .await
        .unwrap_err()
        .to_string();
    assert!(
        refused.contains("Cache encryption is impossible")
            && refused.contains("D-Bus session bus")
            && refused.contains("allow_unencrypted_storage"),
        "{refused}"
    );
    assert!(
        emu.requests()
            .iter()
            .all(|r| r.form_field("grant_type").is_none()),
        "nobody was asked to sign in"
    );
    // Allowed: the plain file.
    credential(true).get_token(&[ARM], None).await.unwrap();
    let file = std::fs::read(home.path().join(".IdentityService/refused.nocae")).unwrap();
    assert!(String::from_utf8_lossy(&file).contains("RefreshToken"));
}

/// What msal-extensions reads from `home`'s cache `name{suffix}`: (persistence class, cache).
async fn python_dump(
    python: &str,
    emu: &Emulator,
    home: &Home,
    name: &str,
    suffix: &str,
) -> (String, serde_json::Value) {
    let out = run_python(python, emu, home, &["dump", name, suffix]).await;
    let mut dump: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    (
        dump["persistence"].as_str().unwrap().to_string(),
        dump["cache"].take(),
    )
}

/// Every file under `dir`, as text.
fn files_text(dir: &Path) -> String {
    let mut text = String::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        text.push_str(&String::from_utf8_lossy(
            &std::fs::read(entry.path()).unwrap_or_default(),
        ));
    }
    text
}

#[tokio::test]
async fn an_encrypted_sign_in_here_is_used_silently_by_python() {
    let (Some(python), Some(home)) = (keyring_python(), Home::with_keyring()) else {
        return;
    };
    let emu = emulator().await;
    let signed_in = credential(&emu, &home, None, "enc-rust-to-py");
    let record = signed_in.authenticate(&[ARM], None).await.unwrap();
    // On disk: only the empty signal file; the tokens are in the keyring.
    let dir = home.path().join(".IdentityService");
    assert_eq!(
        std::fs::read(dir.join("enc-rust-to-py.nocae")).unwrap(),
        b""
    );
    assert!(!files_text(&dir).contains("RefreshToken"));
    let (persistence, cache) = python_dump(&python, &emu, &home, "enc-rust-to-py", ".nocae").await;
    assert_eq!(persistence, "LibsecretPersistence");
    assert_eq!(
        cache["RefreshToken"].as_object().map(|m| m.len()),
        Some(1),
        "{cache}"
    );
    let out = python_silently(&python, &emu, &home, "enc-rust-to-py", &record, &[]).await;
    assert!(out.contains(well_known::USER_PRINCIPAL_NAME), "{out}");
    assert_eq!(grant_types(&emu), ["refresh_token"]);
}

#[tokio::test]
async fn an_encrypted_python_sign_in_is_used_silently_here() {
    let (Some(python), Some(home)) = (keyring_python(), Home::with_keyring()) else {
        return;
    };
    let emu = emulator().await;
    let record = run_python(
        &python,
        &emu,
        &home,
        &["sign-in", &emu.https_url(), "enc-py-to-rust"],
    )
    .await;
    let record = AuthenticationRecord::deserialize(record.trim()).unwrap();
    emu.clear_requests();
    credential(&emu, &home, Some(record), "enc-py-to-rust")
        .get_token(&[well_known::MIDDLE_TIER_SCOPE], None)
        .await
        .unwrap();
    assert_eq!(
        grant_types(&emu),
        ["refresh_token"],
        "silent: a refresh, no device code"
    );
}

#[tokio::test]
async fn cae_tokens_live_in_the_cae_cache() {
    let (Some(python), Some(home)) = (keyring_python(), Home::with_keyring()) else {
        return;
    };
    let emu = emulator().await;
    let rust = credential(&emu, &home, None, "cae");
    let mut options = TokenRequestOptions::default();
    options.method_options.context.insert(TokenRequestExtras {
        enable_cae: true,
        ..Default::default()
    });
    rust.get_token(&[ARM], Some(options)).await.unwrap();
    let (_, cae) = python_dump(&python, &emu, &home, "cae", ".cae").await;
    let (_, plain) = python_dump(&python, &emu, &home, "cae", ".nocae").await;
    assert_eq!(
        cae["RefreshToken"].as_object().map(|m| m.len()),
        Some(1),
        "{cae}"
    );
    assert!(plain.get("RefreshToken").is_none(), "{plain}");
    // Python's CAE request finds it silently.
    let record = rust.authentication_record().unwrap();
    python_silently(&python, &emu, &home, "cae", &record, &["cae"]).await;
    assert_eq!(grant_types(&emu), ["refresh_token"]);
}

/// An application's token cached by Python `ClientSecretCredential` is used here with no
/// token request, and one cached here by Python: in `home`'s cache (plain or encrypted).
async fn app_tokens_are_shared(python: &str, home: &Home) {
    let emu = emulator().await;
    let secret_credential = || {
        ClientSecretCredential::new(
            well_known::TENANT_ID,
            well_known::SECRET_APP_CLIENT_ID.into(),
            well_known::CLIENT_SECRET.into(),
            Some(ClientSecretCredentialOptions {
                token_cache_persistence_options: Some(TokenCachePersistenceOptions {
                    name: "app".into(),
                    allow_unencrypted_storage: home.keyring.is_none(),
                }),
                client_options: emu.client_options(),
                os: home.os(),
                ..Default::default()
            }),
        )
        .unwrap()
    };
    let python_token = |scope: &'static str| {
        let url = emu.https_url();
        let emu = &emu;
        async move {
            let args = [
                "app",
                &url,
                "app",
                well_known::TENANT_ID,
                well_known::SECRET_APP_CLIENT_ID,
                well_known::CLIENT_SECRET,
                scope,
            ];
            run_python(python, emu, home, &args)
                .await
                .trim()
                .to_string()
        }
    };
    let token_requests = |emu: &Emulator| {
        emu.requests()
            .iter()
            .filter(|r| r.form_field("grant_type").is_some())
            .count()
    };
    // Python first: this crate's credential finds its token.
    let from_python = python_token(VAULT).await;
    emu.clear_requests();
    let here = secret_credential().get_token(&[VAULT], None).await.unwrap();
    assert_eq!(here.token.secret(), from_python);
    assert_eq!(token_requests(&emu), 0, "no token request");
    // This crate first: Python finds its token.
    let from_rust = secret_credential().get_token(&[ARM], None).await.unwrap();
    emu.clear_requests();
    assert_eq!(python_token(ARM).await, from_rust.token.secret());
    assert_eq!(token_requests(&emu), 0, "no token request");
}

#[tokio::test]
async fn app_tokens_are_shared_in_a_file() {
    let Some(python) = python() else { return };
    app_tokens_are_shared(&python, &Home::plain()).await;
}

#[tokio::test]
async fn app_tokens_are_shared_in_the_keyring() {
    let (Some(python), Some(home)) = (keyring_python(), Home::with_keyring()) else {
        return;
    };
    app_tokens_are_shared(&python, &home).await;
}

/// Three Python processes and three credentials here write one cache at once, each its own
/// scope: every scope's access token is in the cache afterwards.
async fn concurrent_writers_lose_no_entry(python: &str, home: &Home) {
    let emu = emulator().await;
    let name = "together";
    let record = credential(&emu, home, None, name)
        .authenticate(&[ARM], None)
        .await
        .unwrap();
    let file = home.path().join("record.json");
    std::fs::write(&file, record.serialize()).unwrap();
    let file = file.display().to_string();
    let url = emu.https_url();
    let emu = &emu;
    let scopes: Vec<String> = (0..6)
        .map(|i| format!("api://writer-{i}/.default"))
        .collect();
    let mut writers = Vec::new();
    for scope in &scopes[..3] {
        // msal-extensions reads the file without its lock, so a Python process can see another
        // one's truncated file (FilePersistence truncates, then writes) as an empty cache: it
        // tries once more. Writes here replace the file atomically.
        let args = ["silent", &url, name, &file, scope, "retry"];
        writers.push(Box::pin(async move {
            run_python(python, emu, home, &args).await;
        })
            as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + '_>>);
    }
    for scope in &scopes[3..] {
        let rust = credential(emu, home, Some(record.clone()), name);
        writers.push(Box::pin(async move {
            rust.get_token(&[scope.as_str()], None).await.unwrap();
        }));
    }
    futures::future::join_all(writers).await;
    let (_, cache) = python_dump(python, emu, home, name, ".nocae").await;
    let targets: Vec<&str> = cache["AccessToken"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|t| t["target"].as_str())
        .collect();
    for scope in &scopes {
        let resource = scope.trim_end_matches("/.default");
        assert!(
            targets.iter().any(|t| t.contains(resource)),
            "{scope} lost: {targets:?}"
        );
    }
}

#[tokio::test]
async fn concurrent_writers_lose_no_entry_in_a_file() {
    let Some(python) = python() else { return };
    concurrent_writers_lose_no_entry(&python, &Home::plain()).await;
}

#[tokio::test]
async fn concurrent_writers_lose_no_entry_in_the_keyring() {
    let (Some(python), Some(home)) = (keyring_python(), Home::with_keyring()) else {
        return;
    };
    concurrent_writers_lose_no_entry(&python, &home).await;
}
