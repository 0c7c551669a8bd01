//! The `--fault` flag's short form: `ACTION@ENDPOINT[,key=value...]`.

use serde_json::{Map, Value};

use super::{Fault, FaultError};

impl Fault {
    /// Parses the `--fault` flag: a JSON object, or the short form
    /// `ACTION@ENDPOINT[,key=value...]`, e.g. `status@imds,status=503,times=2`,
    /// `throttle@token,retry_after=5`, `latency@token,ms=200,probability=0.5,seed=7`,
    /// `hang@imds`. Keys `tenant`, `client_id` and `resource` narrow the match; `times`,
    /// `probability`, `seed` and `name` set how often; `header.NAME=VALUE` adds a header to a
    /// status; the rest are the action's fields. `throttle` is a 429 with `Retry-After`
    /// (`retry_after`, default 1). The endpoint may be `*` (any).
    ///
    /// # Errors
    /// [`FaultError::Syntax`] when the text does not parse, or the errors of
    /// [`Fault::validate`].
    pub fn parse_flag(text: &str) -> Result<Self, FaultError> {
        let text = text.trim();
        let syntax = |reason: String| FaultError::Syntax {
            text: text.to_string(),
            reason,
        };
        let fault: Fault = if text.starts_with('{') {
            serde_json::from_str(text).map_err(|e| syntax(e.to_string()))?
        } else {
            let value = ShortForm::parse(text).map_err(syntax)?.into_value();
            serde_json::from_value(value).map_err(|e| syntax(e.to_string()))?
        };
        fault.validate()?;
        Ok(fault)
    }
}

/// The short form, sorted into the JSON form's objects.
#[derive(Default)]
struct ShortForm {
    action: Map<String, Value>,
    matcher: Map<String, Value>,
    top: Map<String, Value>,
    headers: Map<String, Value>,
}

impl ShortForm {
    fn parse(text: &str) -> Result<Self, String> {
        let mut form = ShortForm::default();
        let mut parts = text.split(',');
        let head = parts.next().unwrap_or_default();
        let (kind, endpoint) = head.split_once('@').unwrap_or((head, "*"));
        form.set_kind(kind.trim());
        if endpoint.trim() != "*" {
            form.matcher
                .insert("endpoint".into(), endpoint.trim().into());
        }
        for part in parts.filter(|p| !p.trim().is_empty()) {
            let (key, value) = part
                .split_once('=')
                .ok_or_else(|| format!("'{part}' is not key=value"))?;
            form.set(key.trim(), value.trim());
        }
        Ok(form)
    }

    /// The action's kind; `throttle` is a 429 with a one-second `Retry-After`.
    fn set_kind(&mut self, kind: &str) {
        let kind = if kind == "throttle" {
            self.action.insert("status".into(), 429.into());
            self.action.insert("retry_after".into(), 1.into());
            "status"
        } else {
            kind
        };
        self.action.insert("kind".into(), kind.into());
    }

    fn set(&mut self, key: &str, raw: &str) {
        if let Some(name) = key.strip_prefix("header.") {
            self.headers.insert(name.to_string(), raw.into());
            return;
        }
        let target = match key {
            "tenant" | "client_id" | "resource" => &mut self.matcher,
            "times" | "probability" | "seed" | "name" => &mut self.top,
            _ => &mut self.action,
        };
        let value = match key {
            "tenant" | "client_id" | "resource" | "name" | "body" | "location" => raw.into(),
            "fields" => raw.split('+').map(|f| Value::from(f.trim())).collect(),
            _ => flag_value(raw),
        };
        target.insert(key.to_string(), value);
    }

    fn into_value(mut self) -> Value {
        if !self.headers.is_empty() {
            self.action.insert("headers".into(), self.headers.into());
        }
        self.top.insert("action".into(), self.action.into());
        self.top.insert("match".into(), self.matcher.into());
        self.top.into()
    }
}

/// A number where the text is one, else the text.
fn flag_value(raw: &str) -> Value {
    if let Ok(n) = raw.parse::<i64>() {
        return n.into();
    }
    if let Ok(x) = raw.parse::<f64>() {
        return x.into();
    }
    raw.into()
}
