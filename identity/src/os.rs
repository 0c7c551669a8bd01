//! The operating system, injected.
//!
//! Credentials read environment variables, files and the time only through an [`Os`] value,
//! which every options struct carries (field `os`, defaulting to the real process environment,
//! file system and clock). Tests substitute [`MapEnv`], [`ManualClock`] or their own
//! implementations instead of mutating process-wide state.
//!
//! ```
//! use azure_identity::os::{MapEnv, Os};
//! use std::sync::Arc;
//!
//! let os = Os {
//!     env: Arc::new(MapEnv::from([("AZURE_TENANT_ID", "11111111-1111-1111-1111-111111111111")])),
//!     ..Os::default()
//! };
//! assert_eq!(os.env.var("AZURE_TENANT_ID").as_deref(), Some("11111111-1111-1111-1111-111111111111"));
//! ```

use std::collections::HashMap;
use std::fmt::Debug;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use time::OffsetDateTime;

/// A source of environment variables.
pub trait Env: Send + Sync + Debug {
    /// The value of `name`, or `None` when it is unset or not Unicode.
    fn var(&self, name: &str) -> Option<String>;
}

/// A source of file contents.
pub trait FileSystem: Send + Sync + Debug {
    /// Reads the whole file.
    ///
    /// # Errors
    /// The I/O error.
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>>;

    /// Whether `path` is an existing file (used to find programs on `PATH`).
    fn is_file(&self, path: &Path) -> bool {
        self.read(path).is_ok()
    }

    /// Replaces `path` with `contents` atomically (a temporary file in the same folder, then a
    /// rename), creating the folder; the file is readable by its owner only. Used by the
    /// persistent token cache. The default refuses: a read-only file system.
    ///
    /// # Errors
    /// The I/O error.
    fn write_atomic(&self, path: &Path, contents: &[u8]) -> std::io::Result<()> {
        let _ = (path, contents);
        Err(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "this file system is read-only",
        ))
    }

    /// Tries to take the cross-process lock file `path` (created exclusively, as
    /// msal-extensions does): `Ok(None)` when another process holds it. The default has no
    /// locks and always succeeds.
    ///
    /// # Errors
    /// The I/O error.
    fn try_lock(&self, path: &Path) -> std::io::Result<Option<FileLock>> {
        let _ = path;
        Ok(Some(FileLock { path: None }))
    }
}

/// A held lock file; dropping it removes the file.
#[derive(Debug)]
pub struct FileLock {
    path: Option<std::path::PathBuf>,
}

impl Drop for FileLock {
    fn drop(&mut self) {
        if let Some(path) = &self.path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// A source of the current time.
pub trait Clock: Send + Sync + Debug {
    /// The current time (UTC).
    fn now(&self) -> OffsetDateTime;

    /// The current time as nanoseconds since the Unix epoch. The token cache's hit path uses
    /// this; implementations may override it with something cheaper than a calendar date.
    fn unix_timestamp_nanos(&self) -> i128 {
        self.now().unix_timestamp_nanos()
    }
}

/// A way to wait. Retry loops wait through it, so tests can make waits instant.
pub trait Sleep: Send + Sync + Debug {
    /// Waits for `duration`.
    fn sleep(&self, duration: time::Duration) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// Waits with azure_core's async runtime (tokio when enabled, else a standard-library timer).
#[derive(Debug, Default, Clone, Copy)]
pub struct RuntimeSleep;

impl Sleep for RuntimeSleep {
    fn sleep(&self, duration: time::Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        azure_core::async_runtime::get_async_runtime().sleep(duration)
    }
}

/// Sleeping on a manual clock moves it forward at once: retry back-offs take no real time.
impl Sleep for ManualClock {
    fn sleep(&self, duration: time::Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        self.advance(duration);
        Box::pin(std::future::ready(()))
    }
}

/// The real process environment.
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    #[allow(clippy::disallowed_methods)] // The one real implementation.
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

/// The real file system.
#[derive(Debug, Default, Clone, Copy)]
pub struct RealFileSystem;

impl FileSystem for RealFileSystem {
    #[allow(clippy::disallowed_methods)] // The one real implementation.
    fn read(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn is_file(&self, path: &Path) -> bool {
        path.is_file()
    }

    fn write_atomic(&self, path: &Path, contents: &[u8]) -> std::io::Result<()> {
        use std::io::Write;
        let dir = path.parent().unwrap_or_else(|| Path::new("."));
        std::fs::create_dir_all(dir)?;
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
        let temporary = dir.join(format!(".{name}.{}.tmp", std::process::id()));
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&temporary)?;
        file.write_all(contents)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    }

    fn try_lock(&self, path: &Path) -> std::io::Result<Option<FileLock>> {
        use std::io::Write;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
        {
            Ok(mut file) => {
                let _ = write!(file, "{} azure_identity", std::process::id());
                Ok(Some(FileLock {
                    path: Some(path.to_path_buf()),
                }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // The one real implementation.
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    fn unix_timestamp_nanos(&self) -> i128 {
        coarse_wall::unix_nanos()
    }
}

/// A fast, coarse wall clock for the token cache's hit path.
///
/// `clock_gettime(CLOCK_REALTIME)` costs tens of nanoseconds on virtual machines, which would
/// dominate a cache hit. This reads the kernel's coarse monotonic clock (a few nanoseconds,
/// millisecond resolution) and adds an offset to wall time that is re-measured at most once a
/// second, so it follows clock adjustments within a second. A few milliseconds of error is
/// irrelevant to a cache whose decisions have minutes of margin.
mod coarse_wall {
    use std::sync::OnceLock;
    use std::sync::atomic::{AtomicI64, Ordering};

    const REANCHOR_NANOS: i64 = 1_000_000_000;

    static ORIGIN: OnceLock<coarsetime::Instant> = OnceLock::new();
    /// Wall-clock nanoseconds minus monotonic nanoseconds since `ORIGIN`.
    static OFFSET: AtomicI64 = AtomicI64::new(0);
    /// Monotonic nanoseconds at the last anchoring; `i64::MIN` before the first.
    static ANCHORED: AtomicI64 = AtomicI64::new(i64::MIN);

    fn monotonic_nanos() -> i64 {
        let origin = *ORIGIN.get_or_init(coarsetime::Instant::now_without_cache_update);
        coarsetime::Instant::now_without_cache_update()
            .duration_since(origin)
            .as_nanos() as i64
    }

    #[allow(clippy::disallowed_methods)] // The one real wall-clock read.
    fn wall_nanos() -> i64 {
        match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
            Ok(since) => since.as_nanos() as i64,
            Err(before) => -(before.duration().as_nanos() as i64),
        }
    }

    pub(super) fn unix_nanos() -> i128 {
        let mono = monotonic_nanos();
        let anchored = ANCHORED.load(Ordering::Relaxed);
        if anchored == i64::MIN || mono.saturating_sub(anchored) >= REANCHOR_NANOS {
            OFFSET.store(wall_nanos() - mono, Ordering::Relaxed);
            ANCHORED.store(mono, Ordering::Relaxed);
        }
        i128::from(mono + OFFSET.load(Ordering::Relaxed))
    }

    #[cfg(test)]
    mod tests {
        #[test]
        fn tracks_the_wall_clock_within_milliseconds() {
            for _ in 0..3 {
                let fast = super::unix_nanos();
                let wall = i128::from(super::wall_nanos());
                assert!((fast - wall).abs() < 50_000_000, "fast {fast} wall {wall}");
            }
        }
    }
}

/// An environment held in a map: for tests and for configuring credentials explicitly.
/// Its `Debug` shows the variables' names, never their values (they hold secrets).
#[derive(Default, Clone)]
pub struct MapEnv {
    vars: HashMap<String, String>,
}

impl Debug for MapEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&str> = self.vars.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_struct("MapEnv").field("names", &names).finish()
    }
}

impl MapEnv {
    /// An empty environment.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a variable.
    pub fn with(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.vars.insert(name.into(), value.into());
        self
    }
}

impl<K: Into<String>, V: Into<String>, const N: usize> From<[(K, V); N]> for MapEnv {
    fn from(pairs: [(K, V); N]) -> Self {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for MapEnv {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Self {
            vars: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

impl Env for MapEnv {
    fn var(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<OffsetDateTime>,
}

impl ManualClock {
    /// A clock stopped at `now`.
    pub fn new(now: OffsetDateTime) -> Self {
        Self {
            now: Mutex::new(now),
        }
    }

    /// Sets the time.
    pub fn set(&self, now: OffsetDateTime) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) = now;
    }

    /// Moves the time by `by` (negative to go back).
    pub fn advance(&self, by: time::Duration) {
        *self.now.lock().unwrap_or_else(|e| e.into_inner()) += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A way to show the user a web page: `InteractiveBrowserCredential` opens the
/// sign-in page through it, so tests supply their own (a headless browser, or a stand-in that
/// fills the form).
pub trait Browser: Send + Sync + Debug {
    /// Opens `url`. Returns once the browser was started, not when the page is done.
    fn open(&self, url: &str) -> std::io::Result<()>;
}

/// The platform's opener, started directly (never through a shell, so the URL is one
/// argument whatever it contains): `xdg-open` on Linux and the BSDs, `open` on macOS,
/// `rundll32 url.dll,FileProtocolHandler` on Windows.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemBrowser;

impl Browser for SystemBrowser {
    fn open(&self, url: &str) -> std::io::Result<()> {
        let (program, leading): (&str, &[&str]) = if cfg!(target_os = "windows") {
            ("rundll32", &["url.dll,FileProtocolHandler"])
        } else if cfg!(target_os = "macos") {
            ("open", &[])
        } else {
            ("xdg-open", &[])
        };
        let mut child = std::process::Command::new(program)
            .args(leading)
            .arg(url)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("could not start {program} to open the sign-in page: {e}"),
                )
            })?;
        // The opener exits at once; reap it in the background so it leaves no zombie.
        std::thread::spawn(move || child.wait());
        Ok(())
    }
}

/// The operating-system services a credential uses.
#[derive(Debug, Clone)]
pub struct Os {
    /// Environment variables.
    pub env: Arc<dyn Env>,
    /// Files.
    pub fs: Arc<dyn FileSystem>,
    /// The time.
    pub clock: Arc<dyn Clock>,
    /// Waiting (retry back-offs, device-code polling).
    pub sleep: Arc<dyn Sleep>,
    /// Showing the user a web page (interactive sign-in).
    pub browser: Arc<dyn Browser>,
}

impl Default for Os {
    fn default() -> Self {
        Self {
            env: Arc::new(ProcessEnv),
            fs: Arc::new(RealFileSystem),
            clock: Arc::new(SystemClock),
            sleep: Arc::new(RuntimeSleep),
            browser: Arc::new(SystemBrowser),
        }
    }
}

impl Os {
    /// Real environment and files, with `clock` for both the time and waiting: tests pass a
    /// [`ManualClock`] and every back-off advances it instead of taking real time.
    pub fn with_manual_clock(clock: Arc<ManualClock>) -> Self {
        Self {
            clock: clock.clone(),
            sleep: clock,
            ..Self::default()
        }
    }

    /// The value of an environment variable, treating an empty value as unset.
    pub(crate) fn var(&self, name: &str) -> Option<String> {
        self.env.var(name).filter(|v| !v.is_empty())
    }

    /// The current time.
    pub(crate) fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn map_env_debug_shows_names_not_values() {
        let env = MapEnv::from([("AZURE_CLIENT_SECRET", "hunter2-secret-value")]);
        let debug = format!("{env:?}");
        assert!(debug.contains("AZURE_CLIENT_SECRET"), "{debug}");
        assert!(!debug.contains("hunter2"), "{debug}");
    }
}
