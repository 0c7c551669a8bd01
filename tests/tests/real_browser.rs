//! A real browser signs in: headless Chromium, driven over WebDriver (`chromedriver` and the
//! `fantoccini` crate), is `InteractiveBrowserCredential`'s browser. It types into the
//! emulator's sign-in page and presses its buttons; the page's `form_post` answer reaches the
//! credential's loopback listener through the browser itself. Covered: sign-in, a wrong
//! password (the page says AADSTS50126), cancel, and `prompt=none` without and with a session.
//!
//! Needs `chromium` and `chromedriver` (Debian: `chromium`, `chromium-driver`). Without them
//! the test says so and passes locally; under CI (`CI` set) it fails.

use std::future::Future;
use std::io::{BufRead, BufReader};
use std::pin::Pin;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use azure_core::credentials::TokenCredential;
use azure_identity::os::{Browser, Os, Sleep};
use azure_identity::{InteractiveBrowserCredential, InteractiveBrowserCredentialOptions};
use entra_emulator::{Emulator, well_known};
use fantoccini::{Client, ClientBuilder, Locator};

const ARM: &str = "https://management.azure.com/.default";

/// `chromedriver` on a port it chose, stopped on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find(program: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|dir| std::path::Path::new(dir).join(program))
        .find(|p| p.is_file())
}

/// Starts chromedriver, or explains why not (a failure under CI).
fn driver() -> Option<Driver> {
    let (Some(chromedriver), Some(_)) = (
        find("chromedriver"),
        find("chromium").or_else(|| find("google-chrome")),
    ) else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must install chromium and chromium-driver for the real-browser test"
        );
        eprintln!(
            "skipped: no chromium/chromedriver on PATH (Debian: apt-get install chromium chromium-driver)"
        );
        return None;
    };
    let mut child = Command::new(chromedriver)
        .arg("--port=0")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let stdout = child.stdout.take().expect("stdout");
    // "ChromeDriver was started successfully on port 34945."
    let port = BufReader::new(stdout)
        .lines()
        .take(20)
        .map_while(Result::ok)
        .find_map(|line| {
            line.strip_prefix("ChromeDriver was started successfully on port ")
                .map(|p| p.trim_end_matches('.').to_string())
        })
        .expect("chromedriver reports its port");
    Some(Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    })
}

async fn chromium(driver: &Driver) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert("acceptInsecureCerts".into(), serde_json::json!(true));
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

/// What the person at the browser does on the sign-in page.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Act {
    SignIn(&'static str),
    Cancel,
}

/// Chromium as the credential's browser: it opens the URL and acts on the page as a person
/// would; the page's own script delivers the answer.
#[derive(Debug)]
struct ChromiumBrowser {
    client: Client,
    act: Act,
    /// The page text after acting (for the wrong-password case), and the person giving up.
    page: Arc<Mutex<String>>,
    gave_up: Arc<tokio::sync::Notify>,
}

/// An element of the page, waited for (a loaded machine renders slowly), at most 30 s.
async fn element(
    client: &Client,
    id: &'static str,
) -> Result<fantoccini::elements::Element, fantoccini::error::CmdError> {
    client
        .wait()
        .at_most(Duration::from_secs(30))
        .for_element(Locator::Id(id))
        .await
}

async fn act(client: &Client, url: &str, act: Act) -> Result<String, fantoccini::error::CmdError> {
    client.goto(url).await?;
    match act {
        Act::Cancel => element(client, "idBtn_Back").await?.click().await?,
        Act::SignIn(password) => {
            element(client, "i0116")
                .await?
                .send_keys(well_known::USER_PRINCIPAL_NAME)
                .await?;
            element(client, "i0118").await?.send_keys(password).await?;
            element(client, "idSIButton9").await?.click().await?;
        }
    }
    if act == Act::SignIn("not-the-password") {
        // The answer is the same page with the error: give it time to be drawn.
        for _ in 0..300 {
            let source = client.source().await?;
            if source.contains("passwordError") {
                return Ok(source);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    client.source().await
}

impl Browser for ChromiumBrowser {
    fn open(&self, url: &str) -> std::io::Result<()> {
        let (client, url, step) = (self.client.clone(), url.to_string(), self.act);
        let (page, gave_up) = (self.page.clone(), self.gave_up.clone());
        tokio::spawn(async move {
            let outcome = act(&client, &url, step).await;
            let failed = outcome.is_err();
            let source = outcome.unwrap_or_else(|e| format!("the browser failed: {e}"));
            // The person gives up on the error page, or when the browser itself failed (so the
            // test ends with what happened instead of waiting out the credential).
            if failed || source.contains("passwordError") {
                *page.lock().unwrap() = source;
                gave_up.notify_one();
            }
        });
        Ok(())
    }
}

/// The credential's wait ends when the person gives up, not after real time.
#[derive(Debug)]
struct UntilGivenUp(Arc<tokio::sync::Notify>);

impl Sleep for UntilGivenUp {
    fn sleep(&self, _: time::Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let notify = self.0.clone();
        Box::pin(async move { notify.notified().await })
    }
}

fn credential(
    emu: &Emulator,
    client: &Client,
    step: Act,
) -> (Arc<InteractiveBrowserCredential>, Arc<Mutex<String>>) {
    let page = Arc::new(Mutex::new(String::new()));
    let gave_up = Arc::new(tokio::sync::Notify::new());
    let browser = ChromiumBrowser {
        client: client.clone(),
        act: step,
        page: page.clone(),
        gave_up: gave_up.clone(),
    };
    let credential = InteractiveBrowserCredential::new(Some(InteractiveBrowserCredentialOptions {
        client_options: emu.client_options(),
        timeout: Some(Duration::from_secs(60)),
        os: Os {
            browser: Arc::new(browser),
            sleep: Arc::new(UntilGivenUp(gave_up)),
            ..Os::default()
        },
        ..Default::default()
    }))
    .unwrap();
    (credential, page)
}

/// Where a `prompt=none` request ends up: the redirect URI with a code or an error.
async fn silent(emu: &Emulator, client: &Client) -> String {
    let url = format!(
        "{}/organizations/oauth2/v2.0/authorize?client_id={}&response_type=code&redirect_uri=http://localhost:9/&scope=openid&state=quiet&prompt=none",
        emu.https_url(),
        well_known::DEVELOPER_CLIENT_ID
    );
    // Nothing listens on port 9: the browser stops there with the answer in its address bar.
    let _ = client.goto(&url).await;
    client.current_url().await.unwrap().to_string()
}

#[tokio::test]
async fn chromium_signs_in_on_the_emulators_page() {
    let Some(driver) = driver() else { return };
    let emu = Emulator::builder()
        .https_port(0)
        .http_port(0)
        .service_fabric_port(0)
        .start()
        .await
        .unwrap();
    let client = chromium(&driver).await;

    // No session yet: prompt=none comes back with login_required.
    let answer = silent(&emu, &client).await;
    assert!(
        answer.contains("error=login_required") && answer.contains("state=quiet"),
        "{answer}"
    );

    // A wrong password: the page says why and stays.
    let (wrong, page) = credential(&emu, &client, Act::SignIn("not-the-password"));
    let text = wrong.get_token(&[ARM], None).await.unwrap_err().to_string();
    let shown = page.lock().unwrap().clone();
    assert!(text.contains("timed out"), "{text}; the page: {shown}");
    assert!(shown.contains("AADSTS50126"), "{shown}");

    // Cancel: access_denied back to the credential.
    let (cancelled, _) = credential(&emu, &client, Act::Cancel);
    let text = cancelled
        .get_token(&[ARM], None)
        .await
        .unwrap_err()
        .to_string();
    assert!(text.contains("access_denied"), "{text}");

    // Sign in: a token, and a session cookie in the browser.
    let (signed_in, _) = credential(&emu, &client, Act::SignIn(well_known::USER_PASSWORD));
    let token = signed_in.get_token(&[ARM], None).await.unwrap();
    assert!(!token.token.secret().is_empty());
    let record = signed_in.authentication_record().unwrap();
    assert_eq!(record.username, well_known::USER_PRINCIPAL_NAME);

    // With the session, prompt=none answers with a code.
    let answer = silent(&emu, &client).await;
    assert!(
        answer.contains("code=") && answer.contains("state=quiet"),
        "{answer}"
    );

    client.close().await.unwrap();
    emu.shutdown().await;
}
