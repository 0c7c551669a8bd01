//! Gets a token with the credential the environment configures, as a real program would.
//!
//! ```sh
//! eval "$(entra-emulator env client_secret)"   # or client_certificate, workload_identity, imds, app_service
//! cargo run -p azure_identity --example get_token --features client_certificate -- https://management.azure.com/.default
//! ```
//!
//! It picks the credential from the variables present: `AZURE_CLIENT_SECRET`,
//! `AZURE_CLIENT_CERTIFICATE_PATH`, `AZURE_FEDERATED_TOKEN_FILE`, else managed identity.
#![allow(clippy::disallowed_methods)] // A program reads its own environment.

use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use azure_identity::{
    ClientCertificateCredential, ClientCertificateCredentialOptions, ClientSecretCredential,
    ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId,
    WorkloadIdentityCredential,
};

fn var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

fn credential() -> azure_core::Result<(String, Arc<dyn TokenCredential>)> {
    let tenant = var("AZURE_TENANT_ID").unwrap_or_default();
    let client = var("AZURE_CLIENT_ID").unwrap_or_default();
    if let Some(secret) = var("AZURE_CLIENT_SECRET") {
        let c = ClientSecretCredential::new(&tenant, client, secret.into(), None)?;
        return Ok(("ClientSecretCredential".into(), c));
    }
    if let Some(path) = var("AZURE_CLIENT_CERTIFICATE_PATH") {
        let bytes = std::fs::read(&path)?;
        let options = ClientCertificateCredentialOptions {
            password: var("AZURE_CLIENT_CERTIFICATE_PASSWORD").map(Into::into),
            ..Default::default()
        };
        let c = ClientCertificateCredential::new(tenant, client, bytes.into(), Some(options))?;
        return Ok(("ClientCertificateCredential".into(), c));
    }
    if var("AZURE_FEDERATED_TOKEN_FILE").is_some() {
        return Ok((
            "WorkloadIdentityCredential".into(),
            WorkloadIdentityCredential::new(None)?,
        ));
    }
    let options = ManagedIdentityCredentialOptions {
        user_assigned_id: var("AZURE_CLIENT_ID").map(UserAssignedId::ClientId),
        ..Default::default()
    };
    Ok((
        "ManagedIdentityCredential".into(),
        ManagedIdentityCredential::new(Some(options))?,
    ))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let scope = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "https://management.azure.com/.default".to_string());
    let (name, credential) = credential()?;
    let token = credential.get_token(&[&scope], None).await?;
    println!(
        "{name}: got a token for {scope} ({} bytes), expires {}",
        token.token.secret().len(),
        token.expires_on
    );
    Ok(())
}
