//! Cloud Shell: `POST {MSI_ENDPOINT}` with `Metadata: true` and a form `resource`; the tokens
//! are the signed-in user's.

use azure_core::http::{Method, Request, Url};

/// The Cloud Shell source.
#[derive(Debug)]
pub(super) struct CloudShell {
    pub(super) endpoint: Url,
}

impl CloudShell {
    pub(super) fn request(&self, resource: &str) -> Request {
        let mut request = Request::new(self.endpoint.clone(), Method::Post);
        request.insert_header("metadata", "true");
        request.insert_header("content-type", "application/x-www-form-urlencoded");
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("resource", resource)
            .finish();
        request.set_body(body);
        request
    }
}
