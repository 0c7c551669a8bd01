//! The control plane is out of a web page's reach: a rebound `Host`, a cross-site `Origin` or
//! `Sec-Fetch-Site`, and "simple" (preflight-free) requests are refused; a control token can
//! be required; files are written only under the state directory; extreme values are refused.

mod common;

use common::*;
use entra_emulator::{Emulator, StartError, well_known};
use serde_json::{Value, json};

/// A plain HTTP/1.1 client for the HTTP listener, so a `Host` header goes out as written.
fn plain() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn status_and_body(request: reqwest::RequestBuilder) -> (u16, Value) {
    let response = request.send().await.expect("the emulator answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_rebound_host_cannot_read_or_change_anything() {
    let emu = emulator().await;
    let url = format!("{}/_emulator/config", emu.http_url());
    let (status, body) = status_and_body(plain().get(&url).header("host", "evil.example")).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("loopback"),
        "{body}"
    );
    assert!(!body.to_string().contains(well_known::CLIENT_SECRET));
    for host in ["localhost", "127.0.0.1:1234", "[::1]:8080"] {
        let (status, _) = status_and_body(plain().get(&url).header("host", host)).await;
        assert_eq!(status, 200, "Host: {host}");
    }
    let reset = plain()
        .post(format!("{}/_emulator/reset", emu.http_url()))
        .header("host", "attacker.example:80")
        .json(&json!({}));
    assert_eq!(status_and_body(reset).await.0, 403);
}

#[tokio::test]
async fn cross_site_and_simple_requests_install_nothing() {
    let emu = emulator().await;
    let url = format!("{}/_emulator/faults", emu.http_url());
    let spec = "hang@token";
    let attempts = [
        plain()
            .post(&url)
            .header("content-type", "text/plain")
            .header("origin", "http://evil.example")
            .body(spec),
        plain()
            .post(&url)
            .header("content-type", "text/plain")
            .body(spec),
        plain()
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("spec=hang%40token"),
        plain().post(&url).body(spec),
        plain()
            .post(&url)
            .header("origin", "http://evil.example")
            .json(&json!({"spec": spec})),
        plain()
            .post(&url)
            .header("sec-fetch-site", "cross-site")
            .json(&json!({"spec": spec})),
        plain()
            .post(&url)
            .header("sec-fetch-site", "same-site")
            .json(&json!({"spec": spec})),
    ];
    for (i, attempt) in attempts.into_iter().enumerate() {
        let (status, body) = status_and_body(attempt).await;
        assert!(
            status == 403 || status == 415,
            "attempt {i}: {status} {body}"
        );
        assert!(
            body["message"].is_string(),
            "attempt {i}: the refusal says why: {body}"
        );
    }
    assert!(emu.faults().is_empty(), "no attempt installed a fault");
    // The same call from a local tool goes through.
    let (status, body) = status_and_body(plain().post(&url).json(&json!({"spec": spec}))).await;
    assert_eq!((status, body["id"].as_u64()), (200, Some(1)));
}

#[tokio::test]
async fn entra_and_imds_routes_answer_on_any_host() {
    let emu = emulator().await;
    let imds = format!(
        "{}/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com",
        emu.http_url()
    );
    let response = plain()
        .get(&imds)
        .header("host", "169.254.169.254")
        .header("metadata", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (status, body) = token(
        &emu,
        well_known::TENANT_ID,
        &secret_form(well_known::CLIENT_SECRET, ARM),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_control_token_is_required_when_configured() {
    let emu = Emulator::builder()
        .control_token("s3cret-control")
        .start()
        .await
        .unwrap();
    let url = format!("{}/_emulator/requests", emu.http_url());
    let (status, body) = status_and_body(plain().get(&url)).await;
    assert_eq!(status, 401);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("--control-token"),
        "{body}"
    );
    let (status, _) = status_and_body(plain().get(&url).bearer_auth("wrong")).await;
    assert_eq!(status, 401);
    let (status, _) = status_and_body(plain().get(&url).bearer_auth("s3cret-control")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn listening_beyond_loopback_needs_a_control_token() {
    // 192.0.2.1 is a documentation address: the check refuses before anything is bound.
    let result = Emulator::builder()
        .bind("192.0.2.1".parse().unwrap())
        .start()
        .await;
    let Err(error) = result else {
        panic!("started without a control token on a non-loopback address");
    };
    assert!(matches!(error, StartError::Unprotected { .. }), "{error}");
    assert!(error.to_string().contains("--control-token"), "{error}");
}

#[tokio::test]
async fn files_are_written_only_inside_the_state_directory() {
    let emu = emulator().await;
    let url = format!("{}/_emulator/tokens/kubernetes", emu.http_url());
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("bashrc");
    for file in [target.display().to_string(), "../escape.jwt".to_string()] {
        let body = json!({"namespace": "ns", "service_account": "sa", "file": file});
        let (status, answer) = status_and_body(plain().post(&url).json(&body)).await;
        assert_eq!(status, 400, "{file}: {answer}");
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains("state directory"),
            "{answer}"
        );
    }
    assert!(!target.exists());
    assert!(
        !emu.state_dir()
            .parent()
            .unwrap()
            .join("escape.jwt")
            .exists()
    );
    let body = json!({"namespace": "ns", "service_account": "sa", "file": "sa.jwt"});
    let (status, answer) = status_and_body(plain().post(&url).json(&body)).await;
    assert_eq!(status, 200, "{answer}");
    assert!(emu.state_dir().join("sa.jwt").is_file());
}

#[tokio::test]
async fn extreme_values_are_refused_and_cannot_break_token_requests() {
    let emu = emulator().await;
    let base = format!("{}/_emulator", emu.http_url());
    for offset in [i64::MAX, i64::MIN, 4_000_000_000] {
        let request = plain()
            .put(format!("{base}/clock"))
            .json(&json!({"offset_secs": offset}));
        let (status, body) = status_and_body(request).await;
        assert_eq!(status, 400, "{offset}: {body}");
    }
    for lifetime in [i64::MAX, 0, -5] {
        let body = json!({"namespace": "ns", "service_account": "sa", "lifetime_secs": lifetime});
        let (status, _) = status_and_body(
            plain()
                .post(format!("{base}/tokens/kubernetes"))
                .json(&body),
        )
        .await;
        assert_eq!(status, 400, "lifetime {lifetime}");
    }
    // Through the library, an offset past the calendar is ignored rather than fatal.
    emu.set_clock_offset(i64::MAX);
    let (status, body) = token(
        &emu,
        well_known::TENANT_ID,
        &secret_form(well_known::CLIENT_SECRET, ARM),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}
