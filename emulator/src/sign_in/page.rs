//! The sign-in pages: plain HTML that works without JavaScript, with Entra's field names and
//! element ids (`loginfmt`/`i0116`, `passwd`/`i0118`, `otc`, the `idSIButton9` submit button
//! and the `idBtn_Back` cancel button), so browser automation written for Entra finds its way.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// Escapes text for HTML content and double-quoted attributes.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:'Segoe UI',sans-serif;background:#f2f2f2;margin:0}\
main{max-width:440px;margin:64px auto;background:#fff;padding:44px;box-shadow:0 2px 6px rgba(0,0,0,.2)}\
h1{font-size:24px;font-weight:600;margin:0 0 12px}input[type=email],input[type=password],input[type=text]\
{display:block;width:100%;box-sizing:border-box;margin:12px 0;padding:6px;font-size:15px}\
.error{color:#e81123;margin:8px 0}.buttons{text-align:right;margin-top:24px}\
input[type=submit]{padding:6px 20px;margin-left:8px;font-size:15px}.note{color:#666;font-size:13px}";

/// A complete page: title, heading and body HTML (already escaped), served with headers that
/// keep it out of frames and caches.
fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>{title}</title><style>{STYLE}</style></head>\
         <body><main>{body}<p class=\"note\">Entra Emulator: an offline test double. Seeded \
         passwords are public test values.</p></main></body></html>\n",
        title = escape(title),
    );
    let mut response = (status, Html(html)).into_response();
    let h = response.headers_mut();
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("frame-ancestors 'none'"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    response
}

fn error_block(error: Option<&str>, id: &str) -> String {
    error.map_or_else(String::new, |e| {
        format!(
            "<div id=\"{id}\" class=\"error\" role=\"alert\">{}</div>",
            escape(e)
        )
    })
}

/// What the user-name-and-password page shows.
#[derive(Debug)]
pub(crate) struct SignInPage<'a> {
    /// Where the form posts (`/{tenant}/login`).
    pub(crate) action: &'a str,
    pub(crate) flow_token: &'a str,
    /// The application's display name.
    pub(crate) app: &'a str,
    /// The user name to prefill (`login_hint`, or what was typed).
    pub(crate) username: &'a str,
    /// An AADSTS message to show (wrong password, unknown user).
    pub(crate) error: Option<&'a str>,
}

/// The sign-in page: user name, password, "Sign in" and "Cancel".
pub(crate) fn sign_in(p: &SignInPage<'_>) -> Response {
    let body = format!(
        "<h1 id=\"loginHeader\">Sign in</h1><p>to continue to <b>{app}</b></p>{error}\
         <form method=\"post\" action=\"{action}\" name=\"f1\" id=\"i0281\">\
         <label for=\"i0116\">Email, phone, or Skype</label>\
         <input type=\"email\" name=\"loginfmt\" id=\"i0116\" value=\"{username}\" autocomplete=\"username\" required>\
         <label for=\"i0118\">Password</label>\
         <input type=\"password\" name=\"passwd\" id=\"i0118\" autocomplete=\"current-password\">\
         <input type=\"hidden\" name=\"flowToken\" value=\"{flow}\">\
         <div class=\"buttons\"><input type=\"submit\" name=\"cancel\" id=\"idBtn_Back\" value=\"Cancel\" formnovalidate>\
         <input type=\"submit\" id=\"idSIButton9\" value=\"Sign in\"></div></form>",
        app = escape(p.app),
        error = error_block(p.error, "passwordError"),
        action = escape(p.action),
        username = escape(p.username),
        flow = escape(p.flow_token),
    );
    let status = if p.error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    page(status, "Sign in to your account", &body)
}

/// The second step for a user whose sign-in needs a verification code.
pub(crate) fn verification_code(
    action: &str,
    flow_token: &str,
    username: &str,
    error: Option<&str>,
) -> Response {
    let body = format!(
        "<h1>Enter code</h1><p>Enter the verification code for <b>{username}</b>.</p>{error}\
         <form method=\"post\" action=\"{action}\" name=\"f1\">\
         <input type=\"text\" name=\"otc\" id=\"idTxtBx_SAOTCC_OTC\" inputmode=\"numeric\" autocomplete=\"one-time-code\" required>\
         <input type=\"hidden\" name=\"flowToken\" value=\"{flow}\">\
         <div class=\"buttons\"><input type=\"submit\" name=\"cancel\" id=\"idBtn_Back\" value=\"Cancel\" formnovalidate>\
         <input type=\"submit\" id=\"idSubmit_SAOTCC_Continue\" value=\"Verify\"></div></form>",
        username = escape(username),
        error = error_block(error, "idSpan_SAOTCC_Error_OTC"),
        action = escape(action),
        flow = escape(flow_token),
    );
    page(StatusCode::OK, "Enter code", &body)
}

/// The device-login page: the code the device shows.
pub(crate) fn device_login(error: Option<&str>) -> Response {
    let body = format!(
        "<h1>Enter code</h1><p>Enter the code displayed on your app or device.</p>{error}\
         <form method=\"post\" action=\"/devicelogin\" name=\"f1\">\
         <input type=\"text\" name=\"otc\" id=\"otc\" autocomplete=\"off\" required>\
         <div class=\"buttons\"><input type=\"submit\" id=\"idSIButton9\" value=\"Next\"></div></form>",
        error = error_block(error, "error"),
    );
    let status = if error.is_some() {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::OK
    };
    page(status, "Enter code", &body)
}

/// After a device code was approved or declined on the page.
pub(crate) fn device_done(app: &str, approved: bool) -> Response {
    let text = if approved {
        format!(
            "You have signed in to the <b>{}</b> application on your device. You may now close this window.",
            escape(app)
        )
    } else {
        format!(
            "You have declined to sign in to the <b>{}</b> application on your device. You may now close this window.",
            escape(app)
        )
    };
    let heading = if approved {
        "Signed in"
    } else {
        "Sign-in declined"
    };
    page(
        StatusCode::OK,
        heading,
        &format!("<h1 id=\"done\">{heading}</h1><p id=\"message\">{text}</p>"),
    )
}

/// After sign-out.
pub(crate) fn signed_out() -> Response {
    page(
        StatusCode::OK,
        "Sign out",
        "<h1 id=\"done\">You signed out of your account</h1><p>It's a good idea to close all browser windows.</p>",
    )
}

/// An error Entra shows on its own page rather than sending back to the application.
pub(crate) fn error(message: &str) -> Response {
    let body = format!(
        "<h1>Sorry, but we're having trouble signing you in.</h1>\
         <p id=\"error\" class=\"error\">{}</p>",
        escape(message)
    );
    page(StatusCode::BAD_REQUEST, "Sign in to your account", &body)
}

/// The `form_post` answer: a form that posts `fields` to `action`, submitted by script, or by
/// the button when scripts are off.
pub(crate) fn form_post(action: &str, fields: &[(&str, &str)]) -> Response {
    let inputs: String = fields
        .iter()
        .map(|(name, value)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(name),
                escape(value)
            )
        })
        .collect();
    let html = format!(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Working...</title></head>\
         <body onload=\"document.forms[0].submit()\">\
         <form method=\"POST\" name=\"hiddenform\" action=\"{}\">{inputs}\
         <noscript><p>Script is disabled. Click Submit to continue.</p>\
         <input type=\"submit\" value=\"Submit\"></noscript></form></body></html>\n",
        escape(action)
    );
    let mut response = Html(html).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-store, no-cache"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_in_content_and_attributes() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    async fn html(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn the_sign_in_page_has_entras_fields_and_escapes_what_it_echoes() {
        let response = sign_in(&SignInPage {
            action: "/organizations/login",
            flow_token: "flow",
            app: "<app>",
            username: "\"><script>",
            error: Some("AADSTS50126: wrong"),
        });
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[header::X_FRAME_OPTIONS], "DENY");
        let html = html(response).await;
        for needle in [
            "name=\"loginfmt\"",
            "name=\"passwd\"",
            "name=\"flowToken\" value=\"flow\"",
            "id=\"idSIButton9\"",
            "name=\"cancel\"",
            "AADSTS50126: wrong",
            "&lt;app&gt;",
            "value=\"&quot;&gt;&lt;script&gt;\"",
        ] {
            assert!(html.contains(needle), "{needle} in {html}");
        }
        assert!(!html.contains("<script>"));
    }

    #[tokio::test]
    async fn form_post_carries_every_field() {
        let html = html(form_post(
            "http://localhost:8400/",
            &[("code", "c&1"), ("state", "s")],
        ))
        .await;
        assert!(html.contains("action=\"http://localhost:8400/\""));
        assert!(html.contains("name=\"code\" value=\"c&amp;1\""));
        assert!(html.contains("name=\"state\" value=\"s\""));
    }
}
