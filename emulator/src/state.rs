//! The emulator's shared state: directory, key rings, clock and request log.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use time::{Duration, OffsetDateTime};

use crate::clock::Clock;
use crate::config::Seed;
use crate::crypto::SigningKey;
use crate::directory::Directory;
use crate::error::EmulatorError;
use crate::faults::FaultSet;
use crate::pki::KeyRing;
use crate::request_log::RequestLog;

/// Which key ring.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ring {
    /// Signs access tokens (published in JWKS).
    Tokens,
    /// Signs the Kubernetes issuer's service-account tokens.
    Kubernetes,
    /// Signs Azure Pipelines OIDC tokens.
    Pipelines,
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) state_dir: PathBuf,
    directory: RwLock<Arc<Directory>>,
    base_seed: Seed,
    tokens: RwLock<KeyRing>,
    kubernetes: RwLock<KeyRing>,
    pipelines: RwLock<KeyRing>,
    clock: Arc<dyn Clock>,
    clock_offset_secs: AtomicI64,
    pub(crate) log: RequestLog,
    /// `https://127.0.0.1:PORT`, set once the HTTPS listener is bound (for tokens issued on the
    /// HTTP listener, whose v2 issuer must match the HTTPS discovery document).
    pub(crate) https_origin: std::sync::OnceLock<String>,
    /// Secrets the Azure Arc endpoint has written to challenge files and will accept.
    pub(crate) arc_secrets: ArcSecrets,
    /// The faults in effect.
    pub(crate) faults: FaultSet,
    /// The token every control-plane call must present, when configured.
    pub(crate) control_token: Option<String>,
    /// User sign-in: flows, codes, device codes, sessions.
    pub(crate) sign_in: crate::sign_in::SignInStore,
    /// Principals revoked for continuous access evaluation.
    pub(crate) revocations: crate::resources::cae::Revocations,
    /// Bearer tokens whose signature a resource verified recently.
    pub(crate) verified: crate::resources::access::VerifiedTokens,
    /// The Key Vaults' secrets.
    pub(crate) vaults: crate::resources::key_vault::Vaults,
    /// The Resource Manager listener's URL, set once it is bound.
    pub(crate) arm_url: std::sync::OnceLock<String>,
    /// Vault name → URL, set once the vaults' listeners are bound.
    pub(crate) key_vault_urls: std::sync::OnceLock<std::collections::BTreeMap<String, String>>,
}

tokio::task_local! {
    /// Clock skew (seconds) of the request being served, set by a `clock_skew` fault.
    pub(crate) static REQUEST_SKEW_SECS: i64;
}

/// The Azure Arc challenge secrets currently accepted (bounded; never shown by `Debug`).
#[derive(Default)]
pub(crate) struct ArcSecrets(std::sync::Mutex<std::collections::VecDeque<String>>);

impl std::fmt::Debug for ArcSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ArcSecrets(<redacted>)")
    }
}

impl ArcSecrets {
    /// How many outstanding challenges are remembered.
    const CAPACITY: usize = 64;

    pub(crate) fn issue(&self, secret: String) {
        let mut secrets = self.0.lock().unwrap_or_else(|e| e.into_inner());
        secrets.push_back(secret);
        while secrets.len() > Self::CAPACITY {
            secrets.pop_front();
        }
    }

    pub(crate) fn accepts(&self, secret: &str) -> bool {
        let secrets = self.0.lock().unwrap_or_else(|e| e.into_inner());
        secrets.iter().any(|s| s == secret)
    }
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(crate) fn new(
        state_dir: &Path,
        seed: Seed,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, EmulatorError> {
        let keys = state_dir.join("keys");
        let ring = |file: &str, cn: &str| {
            KeyRing::load_or_create(keys.join(file), cn, clock.now().unix_timestamp())
                .map(RwLock::new)
                .map_err(|e| EmulatorError::Keys {
                    file: file.to_string(),
                    message: e.to_string(),
                })
        };
        let directory =
            Directory::build(seed.clone(), state_dir).map_err(EmulatorError::Directory)?;
        let faults = FaultSet::default();
        faults.replace(&seed.faults)?;
        let vault_names: Vec<String> = seed.key_vaults.iter().map(|v| v.name.clone()).collect();
        let vaults = crate::resources::key_vault::Vaults::load(
            Some(state_dir.join("key-vaults")),
            &vault_names,
        )
        .map_err(EmulatorError::Directory)?;
        Ok(Self {
            state_dir: state_dir.to_path_buf(),
            log: RequestLog::new(directory.settings().request_log_capacity),
            directory: RwLock::new(Arc::new(directory)),
            base_seed: seed,
            tokens: ring("token-signing.json", "Entra Emulator token signing")?,
            kubernetes: ring("kubernetes-issuer.json", "Entra Emulator Kubernetes issuer")?,
            pipelines: ring("pipelines-issuer.json", "Entra Emulator Pipelines issuer")?,
            clock,
            clock_offset_secs: AtomicI64::new(0),
            https_origin: std::sync::OnceLock::new(),
            arc_secrets: ArcSecrets::default(),
            faults,
            control_token: None,
            sign_in: crate::sign_in::SignInStore::default(),
            revocations: Default::default(),
            verified: Default::default(),
            vaults,
            key_vault_urls: std::sync::OnceLock::new(),
            arm_url: std::sync::OnceLock::new(),
        })
    }

    /// Where Azure Arc challenge files go.
    pub(crate) fn arc_key_directory(&self) -> PathBuf {
        match &self.directory().settings().arc_key_directory {
            Some(dir) => PathBuf::from(dir),
            None => self.state_dir.join("arc-tokens"),
        }
    }

    /// The current directory (cheap to clone, immutable).
    pub(crate) fn directory(&self) -> Arc<Directory> {
        read(&self.directory).clone()
    }

    /// Replaces the directory with one built from `seed`, and the faults with its faults.
    pub(crate) fn apply_seed(&self, seed: Seed) -> Result<(), EmulatorError> {
        let faults = seed.faults.clone();
        self.install(seed)?;
        Ok(self.faults.replace(&faults)?)
    }

    /// Replaces the directory with one built from `seed` (faults untouched).
    fn install(&self, seed: Seed) -> Result<(), EmulatorError> {
        let directory =
            Directory::build(seed, &self.state_dir).map_err(EmulatorError::Directory)?;
        self.log
            .set_capacity(directory.settings().request_log_capacity);
        *write(&self.directory) = Arc::new(directory);
        Ok(())
    }

    /// Edits a copy of the current seed and applies it.
    pub(crate) fn edit_seed(
        &self,
        edit: impl FnOnce(&mut Seed) -> Result<(), EmulatorError>,
    ) -> Result<(), EmulatorError> {
        let mut seed = self.directory().seed.clone();
        edit(&mut seed)?;
        self.install(seed)
    }

    /// Back to the seed the emulator started with (and its faults); clears the log and the
    /// clock offset.
    pub(crate) fn reset(&self) -> Result<(), EmulatorError> {
        self.apply_seed(self.base_seed.clone())?;
        self.log.clear();
        self.sign_in.clear();
        self.revocations.clear();
        self.verified.clear();
        self.clock_offset_secs.store(0, Ordering::Relaxed);
        Ok(())
    }

    /// The emulator's time: the injected clock plus the control-plane offset, plus the skew of
    /// a `clock_skew` fault on the request being served.
    pub(crate) fn now(&self) -> OffsetDateTime {
        let skew = REQUEST_SKEW_SECS.try_with(|s| *s).unwrap_or(0);
        let offset = self
            .clock_offset_secs
            .load(Ordering::Relaxed)
            .saturating_add(skew);
        let now = self.clock.now();
        // An offset beyond the calendar's range is ignored rather than allowed to panic.
        now.checked_add(Duration::seconds(offset)).unwrap_or(now)
    }

    pub(crate) fn set_clock_offset(&self, secs: i64) {
        self.clock_offset_secs.store(secs, Ordering::Relaxed);
    }

    pub(crate) fn clock_offset(&self) -> i64 {
        self.clock_offset_secs.load(Ordering::Relaxed)
    }

    fn ring(&self, ring: Ring) -> &RwLock<KeyRing> {
        match ring {
            Ring::Tokens => &self.tokens,
            Ring::Kubernetes => &self.kubernetes,
            Ring::Pipelines => &self.pipelines,
        }
    }

    /// The key that signs new tokens of `ring`.
    pub(crate) fn signing_key(&self, ring: Ring) -> SigningKey {
        read(self.ring(ring)).current().clone()
    }

    /// Keys of `ring` that verify at the current time (current plus those in their grace period).
    pub(crate) fn published_keys(&self, ring: Ring) -> Vec<SigningKey> {
        let grace = self.directory().settings().key_grace_secs;
        read(self.ring(ring)).published(self.now().unix_timestamp(), grace)
    }

    /// Rotates `ring`; returns the new key id.
    pub(crate) fn rotate(&self, ring: Ring) -> Result<String, EmulatorError> {
        let now = self.now().unix_timestamp();
        let mut guard = write(self.ring(ring));
        guard.rotate(now).map_err(|e| EmulatorError::Keys {
            file: format!("{ring:?}"),
            message: e.to_string(),
        })?;
        self.verified.clear();
        Ok(guard.current().kid().to_string())
    }
}
