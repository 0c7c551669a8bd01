//! A person at a browser, for tests: [`StandIn`] opens an authorization URL (or the device
//! login page), types the user name and password into the emulator's sign-in page (and the
//! verification code when asked), presses "Sign in" or "Cancel", and hands back what the page
//! then sends to the application — a redirect, or a `form_post` form — for the test to
//! deliver to its loopback listener, or to inspect.
//!
//! ```no_run
//! # async fn demo(emulator: &entra_emulator::Emulator, authorize_url: &str) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! use entra_emulator::stand_in::{Outcome, StandIn};
//! use entra_emulator::well_known;
//!
//! let person = StandIn::new(well_known::USER_PRINCIPAL_NAME, well_known::USER_PASSWORD);
//! let outcome = person.sign_in(&emulator.http_client(), authorize_url).await?;
//! if let Outcome::Redirect(location) = &outcome {
//!     println!("the code comes back at {location}");
//! }
//! person.deliver(&emulator.http_client(), &outcome).await?;
//! # Ok(()) }
//! ```

use std::sync::Mutex;

use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};

/// Where a walk through the sign-in pages ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A redirect to the application (`response_mode=query` or `fragment`).
    Redirect(String),
    /// The `form_post` page: the fields a browser's script posts to `action`.
    FormPost {
        /// The application's redirect URI.
        action: String,
        /// `code` and `state`, or `error`, `error_description` and `state`.
        fields: Vec<(String, String)>,
    },
    /// A page the walk stopped on (an error, a wrong password, the device login's result).
    Page {
        /// The HTTP status.
        status: u16,
        /// The page.
        html: String,
    },
}

/// A person who signs in on the emulator's pages. Keeps the emulator's session cookie between
/// walks, as a browser does (so `prompt=none` and single sign-on work).
#[derive(Debug)]
pub struct StandIn {
    username: String,
    password: String,
    verification_code: Option<String>,
    cancel: bool,
    cookie: Mutex<Option<String>>,
}

/// One HTML form: where it posts, its named inputs and its submit buttons (id → name, value).
#[derive(Debug, Default)]
struct Form {
    action: String,
    fields: Vec<(String, String)>,
    buttons: Vec<(String, Option<String>, String)>,
}

fn unescape(text: &str) -> String {
    text.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The value of `name="…"` in a tag's text.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

/// The first form of a page (the emulator's pages have one).
fn first_form(html: &str) -> Option<Form> {
    let start = html.find("<form")?;
    let end = html[start..]
        .find("</form>")
        .map_or(html.len(), |e| start + e);
    let body = &html[start..end];
    let head_end = body.find('>')?;
    let mut form = Form {
        action: attribute(&body[..head_end], "action").unwrap_or_default(),
        ..Form::default()
    };
    for tag in body.split("<input").skip(1) {
        let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
        let name = attribute(tag, "name");
        let value = attribute(tag, "value").unwrap_or_default();
        if attribute(tag, "type").as_deref() == Some("submit") {
            form.buttons
                .push((attribute(tag, "id").unwrap_or_default(), name, value));
        } else if let Some(name) = name {
            form.fields.push((name, value));
        }
    }
    Some(form)
}

/// Which page a form is: the user name and password, a verification code (MFA), the device
/// login's user code, or something else.
fn page_kind(form: &Form) -> &'static str {
    let code = has(&form.fields, "otc");
    match (
        has(&form.fields, "loginfmt"),
        code,
        has(&form.fields, "flowToken"),
    ) {
        (true, _, _) => "password",
        (_, true, true) => "verification code",
        (_, true, false) => "user code",
        _ => "other",
    }
}

fn set(fields: &mut [(String, String)], name: &str, value: &str) {
    if let Some(field) = fields.iter_mut().find(|(n, _)| n == name) {
        field.1 = value.to_string();
    }
}

fn has(fields: &[(String, String)], name: &str) -> bool {
    fields.iter().any(|(n, _)| n == name)
}

impl StandIn {
    /// A person who signs in as `username` with `password`.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            username: username.into(),
            password: password.into(),
            verification_code: None,
            cancel: false,
            cookie: Mutex::new(None),
        }
    }

    /// Types `code` when the page asks for a verification code.
    pub fn with_verification_code(mut self, code: impl Into<String>) -> Self {
        self.verification_code = Some(code.into());
        self
    }

    /// Presses "Cancel" instead of signing in.
    pub fn cancelling(mut self) -> Self {
        self.cancel = true;
        self
    }

    /// Forgets the session (a fresh browser profile).
    pub fn forget_session(&self) {
        *self.cookie.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The `ESTSAUTH=…` cookie the emulator gave this person, if any.
    pub fn cookie(&self) -> Option<String> {
        self.cookie
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Whether the emulator has given this person a session.
    pub fn has_session(&self) -> bool {
        self.cookie
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    fn remember_cookie(&self, response: &reqwest::Response) {
        for value in response.headers().get_all(SET_COOKIE) {
            let Ok(text) = value.to_str() else { continue };
            let pair = text.split(';').next().unwrap_or_default();
            if let Some(value) = pair.strip_prefix("ESTSAUTH=") {
                let mut cookie = self.cookie.lock().unwrap_or_else(|e| e.into_inner());
                *cookie = (!value.is_empty()).then(|| pair.to_string());
            }
        }
    }

    fn with_cookie(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self
            .cookie
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        {
            Some(cookie) => request.header(COOKIE, cookie),
            None => request,
        }
    }

    /// Opens `url` (an authorization URL) and signs in; returns what the page sends back to
    /// the application, or the page the walk stopped on.
    ///
    /// # Errors
    /// A request to the emulator failed.
    pub async fn sign_in(&self, http: &reqwest::Client, url: &str) -> reqwest::Result<Outcome> {
        let response = self.with_cookie(http.get(url)).send().await?;
        self.walk(http, response, None).await
    }

    /// Opens the device login page at `verification_uri`, types `user_code`, and signs in.
    ///
    /// # Errors
    /// A request to the emulator failed.
    pub async fn approve_device_code(
        &self,
        http: &reqwest::Client,
        verification_uri: &str,
        user_code: &str,
    ) -> reqwest::Result<Outcome> {
        let response = self.with_cookie(http.get(verification_uri)).send().await?;
        self.walk(http, response, Some(user_code)).await
    }

    /// Follows the emulator's pages from `response`, filling each form, until an answer leaves
    /// for the application or a page has nothing left to fill.
    async fn walk(
        &self,
        http: &reqwest::Client,
        mut response: reqwest::Response,
        mut user_code: Option<&str>,
    ) -> reqwest::Result<Outcome> {
        let origin = response.url().origin().ascii_serialization();
        // A person types each answer once: when a page they filled comes back (a wrong
        // password or code), they stop there.
        let mut filled: Vec<&str> = Vec::new();
        for _ in 0..8 {
            self.remember_cookie(&response);
            let status = response.status().as_u16();
            if response.status().is_redirection() {
                let location = response
                    .headers()
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok());
                return Ok(Outcome::Redirect(location.unwrap_or_default().to_string()));
            }
            let page_url = response.url().clone();
            let html = response.text().await?;
            let Some(mut form) = first_form(&html) else {
                return Ok(Outcome::Page { status, html });
            };
            let target = page_url
                .join(&form.action)
                .map_or(form.action.clone(), |u| u.to_string());
            if !target.starts_with(&origin) {
                return Ok(Outcome::FormPost {
                    action: target,
                    fields: form.fields,
                });
            }
            let kind = page_kind(&form);
            if filled.contains(&kind) || !self.fill(&mut form, kind, &mut user_code) {
                return Ok(Outcome::Page { status, html });
            }
            filled.push(kind);
            response = self
                .with_cookie(http.post(&target).form(&form.fields))
                .send()
                .await?;
        }
        Ok(Outcome::Page {
            status: 508,
            html: "the sign-in pages went round in circles".to_string(),
        })
    }

    /// Fills a form as this person would; `false` when they have nothing to type there.
    fn fill(&self, form: &mut Form, kind: &str, user_code: &mut Option<&str>) -> bool {
        if self.cancel && form.buttons.iter().any(|(id, _, _)| id == "idBtn_Back") {
            form.fields
                .push(("cancel".to_string(), "Cancel".to_string()));
            return true;
        }
        let answer = match kind {
            "password" => {
                set(&mut form.fields, "loginfmt", &self.username);
                Some(self.password.as_str())
            }
            "verification code" => self.verification_code.as_deref(),
            "user code" => user_code.take(),
            _ => None,
        };
        let field = if kind == "password" { "passwd" } else { "otc" };
        match answer {
            Some(value) => {
                set(&mut form.fields, field, value);
                true
            }
            None => false,
        }
    }

    /// Delivers an answer to the application as a browser would: follows the redirect, or
    /// posts the form.
    ///
    /// # Errors
    /// The application did not answer; or `outcome` is a page, which goes nowhere.
    pub async fn deliver(
        &self,
        http: &reqwest::Client,
        outcome: &Outcome,
    ) -> Result<reqwest::Response, Box<dyn std::error::Error + Send + Sync>> {
        match outcome {
            Outcome::Redirect(location) => Ok(http.get(location).send().await?),
            Outcome::FormPost { action, fields } => {
                Ok(http.post(action).form(fields).send().await?)
            }
            Outcome::Page { status, .. } => Err(format!(
                "the sign-in stopped on a page (status {status}); nothing to deliver"
            )
            .into()),
        }
    }
}

impl Outcome {
    /// A parameter of the answer (`code`, `state`, `error`, ...), from the redirect's query
    /// or fragment, or the form.
    pub fn param(&self, name: &str) -> Option<String> {
        match self {
            Outcome::Redirect(location) => {
                let url = url::Url::parse(location).ok()?;
                let fragment = url.fragment().unwrap_or_default().to_string();
                url.query_pairs()
                    .chain(url::form_urlencoded::parse(fragment.as_bytes()))
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.into_owned())
            }
            Outcome::FormPost { fields, .. } => fields
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone()),
            Outcome::Page { .. } => None,
        }
    }

    /// The page's text, when the walk stopped on a page.
    pub fn page(&self) -> Option<&str> {
        match self {
            Outcome::Page { html, .. } => Some(html),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_read_as_the_pages_write_them() {
        let html = r#"<form method="post" action="/t/login" name="f1"><input type="email" name="loginfmt" id="i0116" value="a&amp;b" required><input type="hidden" name="flowToken" value="f"><input type="submit" name="cancel" id="idBtn_Back" value="Cancel" formnovalidate><input type="submit" id="idSIButton9" value="Sign in"></form>"#;
        let form = first_form(html).unwrap();
        assert_eq!(form.action, "/t/login");
        assert_eq!(
            form.fields,
            vec![
                ("loginfmt".into(), "a&b".into()),
                ("flowToken".into(), "f".into())
            ]
        );
        assert_eq!(form.buttons.len(), 2);
        assert!(first_form("<p>no form</p>").is_none());
    }

    #[test]
    fn outcome_params_come_from_query_fragment_or_form() {
        let q = Outcome::Redirect("http://localhost:1/cb?code=c&state=s".into());
        assert_eq!(q.param("code").as_deref(), Some("c"));
        let f = Outcome::Redirect("http://localhost:1/cb#code=d&state=s".into());
        assert_eq!(f.param("code").as_deref(), Some("d"));
        let p = Outcome::FormPost {
            action: "x".into(),
            fields: vec![("error".into(), "access_denied".into())],
        };
        assert_eq!(p.param("error").as_deref(), Some("access_denied"));
    }
}
