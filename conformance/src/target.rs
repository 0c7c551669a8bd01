//! The emulator the scenarios run against: embedded (started in this process) or already
//! running (its ready file). The driver uses only its control plane, so both behave the same.

use std::path::{Path, PathBuf};
use std::time::Duration;

use entra_emulator::{Emulator, Fault, LoggedRequest, ReadyInfo, Seed};
use serde_json::Value;

/// An emulator and a client for its control plane.
#[derive(Debug)]
pub struct Target {
    /// Its ready information (URLs, CA, profiles).
    pub ready: ReadyInfo,
    /// Where Azure Arc challenge files go.
    pub arc_key_dir: PathBuf,
    http: reqwest::Client,
    _embedded: Option<(Emulator, tempfile::TempDir)>,
}

/// Where real Azure Arc agents keep challenge files (Python's client insists on it on Linux).
const ARC_TOKENS_DIR: &str = "/var/opt/azcmagent/tokens";

fn writable(dir: &Path) -> bool {
    if std::fs::create_dir_all(dir).is_err() {
        return false;
    }
    let probe = dir.join(".conformance-probe");
    let ok = std::fs::write(&probe, b"").is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

impl Target {
    /// Starts an emulator in this process on free loopback ports, with a fresh state folder.
    pub async fn embedded() -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let mut seed = Seed::default_seed();
        if writable(Path::new(ARC_TOKENS_DIR)) {
            seed.settings.arc_key_directory = Some(ARC_TOKENS_DIR.to_string());
        }
        let emulator = Emulator::builder()
            .state_dir(dir.path())
            .seed(seed)
            .start()
            .await
            .map_err(|e| format!("starting the embedded emulator: {e}"))?;
        let ready = emulator.ready_info();
        let mut target = Self::connect(ready)?;
        target._embedded = Some((emulator, dir));
        target.arc_key_dir = target.find_arc_key_dir().await?;
        Ok(target)
    }

    /// An emulator that is already running, from its ready file.
    pub async fn from_ready_file(path: &Path) -> Result<Self, String> {
        let ready = ReadyInfo::read(path)
            .map_err(|e| format!("reading the ready file {}: {e}", path.display()))?;
        let mut target = Self::connect(ready)?;
        target.control("GET", "/health", None).await.map_err(|e| {
            format!(
                "the emulator at {} does not answer: {e}",
                target.ready.https_url
            )
        })?;
        target.arc_key_dir = target.find_arc_key_dir().await?;
        Ok(target)
    }

    fn connect(ready: ReadyInfo) -> Result<Self, String> {
        let ca = std::fs::read(&ready.ca_cert_path)
            .map_err(|e| format!("reading {}: {e}", ready.ca_cert_path.display()))?;
        let http = reqwest::Client::builder()
            .tls_certs_only([reqwest::Certificate::from_pem(&ca).map_err(|e| e.to_string())?])
            .no_proxy()
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            arc_key_dir: ready.state_dir.join("arc-tokens"),
            ready,
            http,
            _embedded: None,
        })
    }

    async fn find_arc_key_dir(&self) -> Result<PathBuf, String> {
        let config = self.control("GET", "/config", None).await?;
        Ok(config["settings"]["arc_key_directory"]
            .as_str()
            .map_or_else(|| self.ready.state_dir.join("arc-tokens"), PathBuf::from))
    }

    /// Calls `/_emulator{path}`; returns the JSON answer.
    pub async fn control(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, String> {
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let url = format!("{}/_emulator{path}", self.ready.https_url);
        let is_post = method == reqwest::Method::POST;
        let mut request = self.http.request(method, &url);
        // The control plane takes POSTs as JSON only (a web page cannot send those).
        let empty = Value::Object(Default::default());
        match body {
            Some(body) => request = request.json(body),
            None if is_post => request = request.json(&empty),
            None => {}
        }
        if let Ok(token) = std::env::var("ENTRA_EMULATOR_CONTROL_TOKEN") {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.map_err(|e| format!("{url}: {e}"))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| e.to_string())?;
        if !status.is_success() {
            return Err(format!("{url}: {status}: {text}"));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `GET url` with `token` as a bearer token: the status, the `WWW-Authenticate` header and
    /// the body.
    pub async fn call_resource(
        &self,
        url: &str,
        token: &str,
    ) -> Result<(u16, Option<String>, String), String> {
        let response = self
            .http
            .get(url)
            .bearer_auth(token)
            .send()
            .await
            .map_err(|e| format!("{url}: {e}"))?;
        let status = response.status().as_u16();
        let challenge = response
            .headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response.text().await.map_err(|e| e.to_string())?;
        Ok((status, challenge, body))
    }

    /// Back to the starting seed; clears the request log, faults and clock offset.
    pub async fn reset(&self) -> Result<(), String> {
        self.control("POST", "/reset", None).await.map(drop)
    }

    /// Installs a fault.
    pub async fn add_fault(&self, fault: &Fault) -> Result<(), String> {
        let body = serde_json::to_value(fault).map_err(|e| e.to_string())?;
        self.control("POST", "/faults", Some(&body)).await.map(drop)
    }

    /// The request log.
    pub async fn requests(&self) -> Result<Vec<LoggedRequest>, String> {
        let value = self.control("GET", "/requests", None).await?;
        serde_json::from_value(value).map_err(|e| e.to_string())
    }
}
