//! Runs the fake CLIs for the CLI credentials with an explicit environment (the process
//! environment is never changed).
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::path::PathBuf;
use std::sync::Arc;

use azure_identity::Executor;
use azure_identity::os::{MapEnv, Os};
use entra_emulator::Emulator;

/// An executor that gives the child `vars` on top of the inherited environment.
#[derive(Debug)]
pub struct EnvExecutor(pub BTreeMap<String, String>);

#[async_trait::async_trait]
impl Executor for EnvExecutor {
    async fn run(&self, program: &OsStr, args: &[&OsStr]) -> std::io::Result<std::process::Output> {
        tokio::process::Command::new(program)
            .args(args)
            .envs(&self.0)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
    }
}

/// The directory holding the fake `az` and `azd`.
pub fn bin_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_az"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The child environment for a ready-file profile, plus `extra`.
pub fn executor(emu: &Emulator, profile: &str, extra: &[(&str, &str)]) -> Arc<dyn Executor> {
    let mut vars = emu.ready_info().profile(profile).unwrap().clone();
    vars.remove("PATH");
    for (k, v) in extra {
        vars.insert((*k).to_string(), (*v).to_string());
    }
    Arc::new(EnvExecutor(vars))
}

/// An injected OS whose `PATH` finds the fake CLIs (or `path` if given).
pub fn os_with_path(path: Option<&str>) -> Os {
    let path = path.map_or_else(|| bin_dir().display().to_string(), str::to_string);
    Os {
        env: Arc::new(MapEnv::from([("PATH", path)])),
        ..Os::default()
    }
}
