//! The loopback listener that receives the authorization endpoint's answer: the browser is
//! redirected to `http://localhost:PORT/...` with `code` and `state` in the query, or posts
//! them there as a form (`response_mode=form_post`). It listens on `127.0.0.1` only, answers
//! each request with a small page, ignores requests that are not the answer (a favicon, a
//! wrong `state`), and returns the first real answer.

use std::time::Duration;

use azure_core::error::{Error, ErrorKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::errors::credential_error;
use crate::os::Os;

/// The largest request the listener reads (headers and form body).
const MAX_REQUEST: usize = 64 * 1024;
/// How long one connection may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What the authorization endpoint sent back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// The authorization code.
    Code(String),
    /// An OAuth error (`access_denied`, `login_required`, ...) and its description.
    Error { error: String, description: String },
}

/// A listener for one sign-in.
#[derive(Debug)]
pub(crate) struct Loopback {
    listener: TcpListener,
    /// The redirect URI to send the authorization endpoint.
    pub(crate) redirect_uri: String,
    path: String,
}

fn listen_error(e: std::io::Error, what: &str) -> Error {
    Error::with_error(
        ErrorKind::Io,
        e,
        format!("could not listen for the sign-in answer on {what}"),
    )
}

impl Loopback {
    /// Listens on `127.0.0.1`: on the port of `redirect_uri` when given (which must be a
    /// loopback `http` URI), else on a free port with `http://localhost:PORT` as the redirect URI.
    pub(crate) async fn bind(redirect_uri: Option<&str>) -> azure_core::Result<Self> {
        let Some(uri) = redirect_uri else {
            let listener = TcpListener::bind(("127.0.0.1", 0))
                .await
                .map_err(|e| listen_error(e, "127.0.0.1"))?;
            let port = listener
                .local_addr()
                .map_err(|e| listen_error(e, "127.0.0.1"))?
                .port();
            return Ok(Self {
                listener,
                redirect_uri: format!("http://localhost:{port}"),
                path: "/".to_string(),
            });
        };
        let url = url::Url::parse(uri)
            .map_err(|e| credential_error(format!("redirect URI {uri} is not a URL: {e}")))?;
        let loopback = matches!(url.host_str(), Some("localhost" | "127.0.0.1"));
        if url.scheme() != "http" || !loopback {
            return Err(credential_error(format!(
                "redirect URI {uri} is not a loopback address: use http://localhost:PORT or http://127.0.0.1:PORT"
            )));
        }
        let port = url.port().unwrap_or(0);
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(|e| listen_error(e, &format!("127.0.0.1:{port}")))?;
        let bound = listener
            .local_addr()
            .map_err(|e| listen_error(e, uri))?
            .port();
        let mut redirect = url.clone();
        let _ = redirect.set_port(Some(bound));
        let text = redirect.to_string();
        // `Url` adds a trailing slash to a bare origin; keep the URI as the caller wrote it.
        let redirect_uri = if uri.ends_with('/') || url.path() != "/" {
            text
        } else {
            text.trim_end_matches('/').to_string()
        };
        Ok(Self {
            listener,
            redirect_uri,
            path: url.path().to_string(),
        })
    }

    /// Waits for the answer carrying `state`, for at most `timeout` (through `os.sleep`).
    pub(crate) async fn wait(
        &self,
        state: &str,
        timeout: Duration,
        os: &Os,
    ) -> azure_core::Result<Answer> {
        let limit = time::Duration::try_from(timeout).unwrap_or(time::Duration::MAX);
        tokio::select! {
            answer = self.serve(state) => answer,
            () = os.sleep.sleep(limit) => Err(credential_error(format!(
                "timed out after {} seconds waiting for the user to sign in in the browser; \
                 sign in sooner or raise the credential's timeout",
                timeout.as_secs()
            ))),
        }
    }

    async fn serve(&self, state: &str) -> azure_core::Result<Answer> {
        loop {
            let (mut stream, _) = self
                .listener
                .accept()
                .await
                .map_err(|e| listen_error(e, &self.redirect_uri))?;
            let request = tokio::time::timeout(READ_TIMEOUT, read_request(&mut stream)).await;
            let Ok(Some((path, params))) = request else {
                let _ = respond(&mut stream, 400, "The request could not be read.").await;
                continue;
            };
            if path.trim_end_matches('/') != self.path.trim_end_matches('/') {
                let _ = respond(&mut stream, 404, "Not found.").await;
                continue;
            }
            let get = |name: &str| {
                params
                    .iter()
                    .find(|(k, _)| k == name)
                    .map(|(_, v)| v.clone())
            };
            if get("state").as_deref() != Some(state) {
                let _ = respond(
                    &mut stream,
                    400,
                    "This answer is not for the sign-in in progress.",
                )
                .await;
                continue;
            }
            if let Some(code) = get("code") {
                let _ = respond(
                    &mut stream,
                    200,
                    "Authentication complete. You can close this window.",
                )
                .await;
                return Ok(Answer::Code(code));
            }
            if let Some(error) = get("error") {
                let _ = respond(
                    &mut stream,
                    200,
                    "Sign-in failed. You can close this window.",
                )
                .await;
                return Ok(Answer::Error {
                    error,
                    description: get("error_description").unwrap_or_default(),
                });
            }
            let _ = respond(
                &mut stream,
                400,
                "The answer has neither a code nor an error.",
            )
            .await;
        }
    }
}

/// Reads one HTTP/1.1 request: its path and its parameters (query, and a form body).
async fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<(String, String)>)> {
    let mut buffer = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if buffer.len() > MAX_REQUEST {
            return None;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buffer[..head_end]).ok()?.to_string();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next()?.split(' ');
    let (method, target) = (request_line.next()?, request_line.next()?);
    let length: usize = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    if length > MAX_REQUEST {
        return None;
    }
    while buffer.len() < head_end + length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut params: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    if method.eq_ignore_ascii_case("POST") {
        let body = &buffer[head_end..head_end + length];
        params.extend(url::form_urlencoded::parse(body).into_owned());
    }
    Some((path.to_string(), params))
}

async fn respond(stream: &mut TcpStream, status: u16, text: &str) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Bad Request",
    };
    let body = format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Sign-in</title></head><body><p>{text}</p></body></html>"
    );
    let response = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\nCache-Control: no-store\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn send(port: u16, request: &str) -> String {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).await.unwrap();
        answer
    }

    fn port(loopback: &Loopback) -> u16 {
        loopback.listener.local_addr().unwrap().port()
    }

    #[tokio::test]
    async fn a_query_answer_after_noise() {
        let loopback = Loopback::bind(None).await.unwrap();
        assert!(loopback.redirect_uri.starts_with("http://localhost:"));
        let p = port(&loopback);
        let client = tokio::spawn(async move {
            let favicon = send(p, "GET /favicon.ico HTTP/1.1\r\nHost: x\r\n\r\n").await;
            assert!(favicon.starts_with("HTTP/1.1 404"));
            let forged = send(p, "GET /?code=evil&state=other HTTP/1.1\r\n\r\n").await;
            assert!(forged.starts_with("HTTP/1.1 400"));
            send(p, "GET /?code=the-code&state=s1 HTTP/1.1\r\n\r\n").await
        });
        let answer = loopback.serve("s1").await.unwrap();
        assert_eq!(answer, Answer::Code("the-code".into()));
        assert!(client.await.unwrap().contains("Authentication complete"));
    }

    #[tokio::test]
    async fn a_form_post_answer_and_an_error_answer() {
        let loopback = Loopback::bind(Some("http://127.0.0.1:0/cb")).await.unwrap();
        assert!(
            loopback.redirect_uri.starts_with("http://127.0.0.1:")
                && loopback.redirect_uri.ends_with("/cb")
        );
        let p = port(&loopback);
        let body = "code=c%2B1&state=s";
        let post = format!(
            "POST /cb HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        tokio::spawn(async move { send(p, &post).await });
        assert_eq!(
            loopback.serve("s").await.unwrap(),
            Answer::Code("c+1".into())
        );
        tokio::spawn(async move {
            send(p, "GET /cb?error=access_denied&error_description=AADSTS65004&state=t HTTP/1.1\r\n\r\n").await
        });
        assert_eq!(
            loopback.serve("t").await.unwrap(),
            Answer::Error {
                error: "access_denied".into(),
                description: "AADSTS65004".into()
            }
        );
    }

    #[tokio::test]
    async fn only_loopback_http_redirects_are_accepted() {
        for uri in ["https://localhost:1/", "http://example.com/", "not a url"] {
            assert!(Loopback::bind(Some(uri)).await.is_err(), "{uri}");
        }
    }
}
