//! Transparent mode on the wire: through the proxy port, Azure's own host names reach the
//! emulator (Entra's public authority, Resource Manager, a seeded vault, IMDS over plain HTTP),
//! under certificates from a CA that may sign for nothing else; every other host is refused and
//! never contacted.

mod common;

use std::io::{Read, Write};

use entra_emulator::{Emulator, well_known};
use serde_json::Value;
use x509_parser::prelude::{FromDer, GeneralName, X509Certificate};

const LOGIN: &str = "https://login.microsoftonline.com";

/// Sends `request`; its JSON answer.
async fn json(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

/// Asks IMDS for a token through the proxy: plain HTTP in absolute form to the real address,
/// answered by the emulator (nothing is sent to that address); the status, once the body is
/// read (the connection then stays idle in the client's pool).
async fn imds_status(client: &reqwest::Client) -> u16 {
    let response = client
        .get("http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com")
        .header("Metadata", "true")
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    response.text().await.unwrap();
    status
}

async fn client_token(client: &reqwest::Client, scope: &str) -> String {
    let url = format!("{LOGIN}/{}/oauth2/v2.0/token", well_known::TENANT_ID);
    let form = common::secret_form(well_known::CLIENT_SECRET, scope);
    let body = json(client.post(url).form(&form)).await;
    body["access_token"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn azure_hosts_are_answered_through_the_proxy() {
    let emu = common::emulator().await;
    let client = emu.transparent_http_client();
    let discovery = json(client.get(format!(
        "{LOGIN}/{}/v2.0/.well-known/openid-configuration",
        well_known::TENANT_ID
    )))
    .await;
    assert_eq!(
        discovery["token_endpoint"],
        format!("{LOGIN}/{}/oauth2/v2.0/token", well_known::TENANT_ID)
    );
    let vault_token = client_token(&client, "https://vault.azure.net/.default").await;
    assert_eq!(
        common::claims_of(&vault_token)["iss"],
        format!("https://sts.windows.net/{}/", well_known::TENANT_ID)
    );

    // The vault under its Azure name: the challenge names the public authority, so an SDK's
    // challenge-resource check passes unmodified.
    let vault = "https://emulator-vault.vault.azure.net/secrets?api-version=7.5";
    let challenge = client.get(vault).send().await.unwrap();
    assert_eq!(challenge.status(), 401);
    let header = challenge.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        header.contains(&format!(
            "authorization=\"{LOGIN}/{}\"",
            well_known::TENANT_ID
        )) && header.contains("resource=\"https://vault.azure.net\""),
        "{header}"
    );
    let listed = client
        .get(vault)
        .bearer_auth(&vault_token)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), 200);

    let arm_token = client_token(&client, "https://management.azure.com/.default").await;
    let subscriptions = json(
        client
            .get("https://management.azure.com/subscriptions?api-version=2022-12-01")
            .bearer_auth(&arm_token),
    )
    .await;
    assert!(!subscriptions["value"].as_array().unwrap().is_empty());
    let metadata =
        json(client.get("https://management.azure.com/metadata/endpoints?api-version=2022-09-01"))
            .await;
    assert_eq!(
        metadata["authentication"]["loginEndpoint"].as_str(),
        Some(format!("{LOGIN}/").as_str()),
        "{metadata}"
    );

    // IMDS: plain HTTP in absolute form, answered here (never sent to the address).
    assert_eq!(imds_status(&client).await, 200);
}

/// Sends `request` to the proxy port as raw bytes; the status line and body it answered.
fn raw(address: &str, request: &str) -> (String, String) {
    let mut stream = std::net::TcpStream::connect(address).unwrap();
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    // The refusals close nothing: read until the body's end (Content-Length) arrives.
    loop {
        let n = stream.read(&mut buffer).unwrap();
        answer.extend_from_slice(&buffer[..n]);
        let text = String::from_utf8_lossy(&answer).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_string)
                })
                .and_then(|l| l.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if body.len() >= length || n == 0 {
                return (head.lines().next().unwrap().to_string(), body.to_string());
            }
        }
        assert!(n > 0, "the proxy closed without an answer");
    }
}

#[tokio::test]
async fn other_hosts_are_refused_and_never_forwarded() {
    let emu = common::emulator().await;
    let address = emu.proxy_url().trim_start_matches("http://").to_string();
    let ask = |request: String| {
        let address = address.clone();
        async move {
            tokio::task::spawn_blocking(move || raw(&address, &request))
                .await
                .unwrap()
        }
    };
    for host in ["example.com:443", "login.microsoftonline.com.evil.test:443"] {
        let (status, body) = ask(format!("CONNECT {host} HTTP/1.1\r\nHost: {host}\r\n\r\n")).await;
        assert!(status.contains("403"), "{host}: {status}");
        assert!(body.contains("never forwards"), "{body}");
    }
    let (status, body) = ask(
        "CONNECT nosuch.vault.azure.net:443 HTTP/1.1\r\nHost: nosuch.vault.azure.net:443\r\n\r\n"
            .into(),
    )
    .await;
    assert!(
        status.contains("403") && body.contains("No Key Vault named 'nosuch'"),
        "{body}"
    );
    let (status, _) = ask(
        "CONNECT login.microsoftonline.com:8443 HTTP/1.1\r\nHost: login.microsoftonline.com:8443\r\n\r\n"
            .into(),
    )
    .await;
    assert!(status.contains("403"), "{status}");
    let (status, body) =
        ask("GET http://example.com/ HTTP/1.1\r\nHost: example.com\r\n\r\n".into()).await;
    assert!(
        status.contains("403") && body.contains("never forwards"),
        "{body}"
    );
    // A web page reaching the port sends origin-form requests: not a proxy request.
    let (status, body) = ask("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".into()).await;
    assert!(
        status.contains("400") && body.contains("HTTPS_PROXY"),
        "{body}"
    );
}

/// The permitted DNS names of a CA certificate's name constraints.
fn permitted_names(pem: &str) -> Vec<String> {
    let der = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>();
    let der = base64_decode(&der);
    let (_, cert) = X509Certificate::from_der(&der).unwrap();
    let constraints = cert.name_constraints().unwrap().unwrap().value;
    constraints
        .permitted_subtrees
        .as_ref()
        .unwrap()
        .iter()
        .filter_map(|subtree| match &subtree.base {
            GeneralName::DNSName(name) => Some(name.to_string()),
            _ => None,
        })
        .collect()
}

fn base64_decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .unwrap()
}

#[tokio::test]
async fn the_transparent_ca_may_sign_only_for_the_hosts_it_answers_and_is_kept() {
    let state = tempfile::tempdir().unwrap();
    let start = || {
        Emulator::builder()
            .state_dir(state.path())
            .https_port(0)
            .http_port(0)
            .service_fabric_port(0)
            .start()
    };
    let emu = start().await.unwrap();
    let pem = std::fs::read_to_string(emu.transparent_ca_path()).unwrap();
    let mut names = permitted_names(&pem);
    names.sort();
    assert_eq!(
        names,
        [
            "login.microsoft.com",
            "login.microsoftonline.com",
            "login.windows.net",
            "management.azure.com",
            "management.core.windows.net",
            "sts.windows.net",
            "vault.azure.net"
        ]
    );
    let key = std::fs::read(state.path().join("transparent-ca-key.pem")).unwrap();
    let bundle = std::fs::read_to_string(emu.transparent_ca_bundle_path()).unwrap();
    assert!(bundle.contains(&pem) && bundle.contains(emu.ca_cert_pem()));
    drop(emu);
    // A restart keeps the key a user may already trust.
    let again = start().await.unwrap();
    assert_eq!(
        std::fs::read(state.path().join("transparent-ca-key.pem")).unwrap(),
        key
    );
    assert_eq!(
        std::fs::read_to_string(again.transparent_ca_path()).unwrap(),
        pem
    );
}

#[tokio::test]
async fn a_stop_closes_idle_proxy_connections_without_cutting_them() {
    let emu = common::emulator().await;
    let client = emu.transparent_http_client();
    // A keep-alive client connection to the proxy (absolute-form, IMDS) and a tunnel (Entra).
    assert_eq!(imds_status(&client).await, 200);
    client_token(&client, "https://vault.azure.net/.default").await;
    // Both idle connections close at once on stop: none is left for the deadline to cut.
    assert_eq!(
        emu.shutdown_within(std::time::Duration::from_secs(30))
            .await,
        0
    );
}
