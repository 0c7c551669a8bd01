//! The files the emulator keeps for clients: the workload identity token file (re-minted on
//! a timer) and the fake CLIs' signed-in profiles.

use super::*;

/// How often the workload identity token file is re-minted. Kubernetes rotates projected
/// tokens at 80 % of their one-hour lifetime; ten minutes keeps the file comfortably valid.
const TOKEN_FILE_REFRESH: Duration = Duration::from_secs(600);

pub(super) async fn refresh_token_file(
    shared: Arc<Shared>,
    path: PathBuf,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(TOKEN_FILE_REFRESH) => {}
            _ = shutdown.changed() => return,
        }
        if let Err(e) = write_workload_token(&shared, &path) {
            tracing::warn!(error = %e, "could not refresh the federated token file");
        }
    }
}

pub(super) fn write_workload_token(shared: &Shared, path: &Path) -> std::io::Result<()> {
    let seed = shared.directory().seed.clone();
    let Some(request) = ready::workload_subject(&seed)
        .as_deref()
        .and_then(KubernetesTokenRequest::from_subject)
    else {
        return Ok(());
    };
    let token = shared.mint_kubernetes_token(&request);
    crate::pki::write_atomic(path, token.as_bytes(), true)
}

impl Emulator {
    /// Writes the fake CLIs' signed-in profile (the `fake-cli` crate's documented format) into
    /// both config directories.
    pub(super) fn write_cli_profiles(&self) -> std::io::Result<()> {
        let directory = self.shared.directory();
        let Some(user) = directory.seed.users.first() else {
            return Ok(());
        };
        let now = self.shared.now().unix_timestamp();
        let signed_in = crate::grants::user::SignedIn {
            user,
            tenant_id: &user.tenant,
            generation: self.shared.sign_in.generation(&user.object_id),
        };
        let refresh_token = crate::grants::user::mint_refresh_token(
            &self.shared,
            signed_in,
            crate::tokens::AZURE_CLI_CLIENT_ID,
            now,
        );
        let profile = Profile {
            endpoint: CliEndpoint {
                authority: self.https_url(),
                ca_cert_path: Some(self.ca_path.clone()),
            },
            tenant: user.tenant.clone(),
            subscription: crate::config::well_known::SUBSCRIPTION_ID.to_string(),
            account: Account::User {
                username: user.user_principal_name.clone(),
                refresh_token,
            },
        };
        let (az, azd) = self.cli_config_dirs();
        for dir in [az, azd] {
            profile.save(&dir)?;
        }
        Ok(())
    }
}
