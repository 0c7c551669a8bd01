//! The report: a matrix of scenario × adapter, printed as a table and written as JSON and
//! Markdown.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::scenario::Scenario;

/// Pass, fail or skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Everything matched.
    Pass,
    /// Something differed (see the differences).
    Fail,
    /// Not run (see the reason).
    Skip,
}

impl Status {
    fn label(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "FAIL",
            Status::Skip => "skip",
        }
    }
}

/// One scenario through one adapter.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CaseResult {
    /// The scenario's name.
    pub scenario: String,
    /// The credential it exercises.
    pub credential: String,
    /// What it shows.
    pub description: String,
    /// The adapter.
    pub adapter: String,
    /// The verdict.
    pub status: Status,
    /// Wall time, milliseconds.
    pub millis: u128,
    /// What differed (failures), or why it was skipped.
    pub differences: Vec<String>,
    /// The credential's error message, if it failed (expectedly or not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl CaseResult {
    fn new(scenario: &Scenario, adapter: &str, status: Status, millis: u128) -> Self {
        Self {
            scenario: scenario.name.clone(),
            credential: scenario.credential.clone(),
            description: scenario.description.clone(),
            adapter: adapter.to_string(),
            status,
            millis,
            differences: Vec::new(),
            message: None,
        }
    }

    /// A pass.
    pub fn passed(scenario: &Scenario, adapter: &str, millis: u128) -> Self {
        Self::new(scenario, adapter, Status::Pass, millis)
    }

    /// A failure and what differed.
    pub fn failed(
        scenario: &Scenario,
        adapter: &str,
        millis: u128,
        differences: Vec<String>,
    ) -> Self {
        let mut r = Self::new(scenario, adapter, Status::Fail, millis);
        r.differences = differences;
        r
    }

    /// A skip and why.
    pub fn skipped(scenario: &Scenario, adapter: &str, reason: String) -> Self {
        let mut r = Self::new(scenario, adapter, Status::Skip, 0);
        r.differences = vec![reason];
        r
    }
}

/// The whole run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Report {
    /// Adapters, in column order.
    pub adapters: Vec<String>,
    /// The emulator's URL.
    pub target: String,
    /// Every result.
    pub results: Vec<CaseResult>,
    /// Wall time of the run, milliseconds.
    pub total_millis: u128,
}

/// Counts per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Passed.
    pub pass: usize,
    /// Failed.
    pub fail: usize,
    /// Skipped.
    pub skip: usize,
}

impl Report {
    /// Counts by status.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        for r in &self.results {
            match r.status {
                Status::Pass => t.pass += 1,
                Status::Fail => t.fail += 1,
                Status::Skip => t.skip += 1,
            }
        }
        t
    }

    fn rows(&self) -> Vec<(&str, BTreeMap<&str, &CaseResult>)> {
        let mut rows: Vec<(&str, BTreeMap<&str, &CaseResult>)> = Vec::new();
        for r in &self.results {
            match rows.last_mut() {
                Some((name, cells)) if *name == r.scenario => {
                    cells.insert(&r.adapter, r);
                }
                _ => rows.push((&r.scenario, BTreeMap::from([(r.adapter.as_str(), r)]))),
            }
        }
        rows
    }

    fn cell(r: Option<&&CaseResult>) -> String {
        match r {
            None => "-".into(),
            Some(r) if r.status == Status::Skip => "skip".into(),
            Some(r) => format!("{} {:>4} ms", r.status.label(), r.millis),
        }
    }

    /// The matrix as a plain-text table, then each failure with what differed.
    pub fn table(&self) -> String {
        let rows = self.rows();
        let width = rows.iter().map(|(n, _)| n.len()).max().unwrap_or(8).max(8);
        let mut out = String::new();
        let _ = write!(out, "{:width$}", "scenario");
        for a in &self.adapters {
            let _ = write!(out, "  {a:<13}");
        }
        out.push('\n');
        for (name, cells) in &rows {
            let _ = write!(out, "{name:width$}");
            for a in &self.adapters {
                let _ = write!(out, "  {:<13}", Self::cell(cells.get(a.as_str())));
            }
            out.push('\n');
        }
        out.push_str(&self.failures_text());
        out.push_str(&self.summary());
        out.push('\n');
        out
    }

    fn failures_text(&self) -> String {
        let mut out = String::new();
        for r in self.results.iter().filter(|r| r.status == Status::Fail) {
            let _ = writeln!(
                out,
                "\nFAIL {} [{}] — {}",
                r.scenario, r.adapter, r.description
            );
            for d in &r.differences {
                let _ = writeln!(out, "  - {d}");
            }
        }
        out
    }

    /// `N passed, M failed, K skipped in S s`.
    pub fn summary(&self) -> String {
        let t = self.totals();
        format!(
            "\n{} scenarios × {} adapter(s): {} passed, {} failed, {} skipped in {:.1} s",
            self.rows().len(),
            self.adapters.len(),
            t.pass,
            t.fail,
            t.skip,
            self.total_millis as f64 / 1000.0
        )
    }

    /// The matrix as Markdown.
    pub fn markdown(&self) -> String {
        let mut out = String::from("# Conformance matrix\n\n");
        let _ = writeln!(out, "Target: `{}`\n", self.target);
        self.markdown_table(&mut out);
        self.markdown_failures(&mut out);
        self.markdown_skips(&mut out);
        let _ = writeln!(out, "{}", self.summary());
        out
    }

    fn with_status(&self, status: Status) -> Vec<&CaseResult> {
        self.results.iter().filter(|r| r.status == status).collect()
    }

    fn markdown_table(&self, out: &mut String) {
        out.push_str("| Scenario | Credential |");
        for a in &self.adapters {
            let _ = write!(out, " {a} |");
        }
        out.push_str("\n|---|---|");
        for _ in &self.adapters {
            out.push_str("---|");
        }
        out.push('\n');
        for (name, cells) in self.rows() {
            let credential = cells.values().next().map_or("", |r| r.credential.as_str());
            let _ = write!(out, "| `{name}` | {credential} |");
            for a in &self.adapters {
                let _ = write!(out, " {} |", Self::cell(cells.get(a.as_str())).trim());
            }
            out.push('\n');
        }
    }

    fn markdown_failures(&self, out: &mut String) {
        let failures = self.with_status(Status::Fail);
        if failures.is_empty() {
            return;
        }
        out.push_str("\n## Failures\n");
        for r in failures {
            let _ = writeln!(
                out,
                "\n### `{}` ({})\n\n{}\n",
                r.scenario, r.adapter, r.description
            );
            for d in &r.differences {
                let _ = writeln!(out, "- {}", d.replace('|', "\\|"));
            }
        }
    }

    fn markdown_skips(&self, out: &mut String) {
        let skips = self.with_status(Status::Skip);
        if skips.is_empty() {
            return;
        }
        out.push_str("\n## Skipped\n\n");
        for r in skips {
            let reason = r.differences.join("; ");
            let _ = writeln!(out, "- `{}` ({}): {reason}", r.scenario, r.adapter);
        }
    }

    /// Writes `report.json`, `report.md` and `report.html` into `dir`.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        std::fs::write(
            dir.join("report.json"),
            serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?,
        )?;
        std::fs::write(dir.join("report.md"), self.markdown())?;
        std::fs::write(dir.join("report.html"), self.html())
    }

    /// The matrix as one self-contained HTML page: a coloured table whose failed cells open
    /// (a click) to what differed; skipped cells show their reason on hover and click.
    pub fn html(&self) -> String {
        let t = self.totals();
        let mut out = String::from(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>Conformance matrix</title><style>\n\
             body{font:14px system-ui,sans-serif;margin:1.5em}table{border-collapse:collapse}\n\
             th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}\n\
             td.pass{background:#e3f6e5}td.fail{background:#fbe0e0}td.skip{background:#f1f1f1;color:#666}\n\
             details summary{cursor:pointer}pre{white-space:pre-wrap;max-width:60em;margin:.3em 0}\n\
             </style></head><body>\n",
        );
        let _ = writeln!(
            out,
            "<h1>Conformance matrix</h1>\n<p id=\"totals\">{} passed, {} failed, {} skipped in {:.1} s against {}</p>",
            t.pass,
            t.fail,
            t.skip,
            self.total_millis as f64 / 1000.0,
            escape(&self.target)
        );
        out.push_str("<table>\n<tr><th>scenario</th>");
        for a in &self.adapters {
            let _ = write!(out, "<th>{}</th>", escape(a));
        }
        out.push_str("</tr>\n");
        for (name, cells) in self.rows() {
            let _ = write!(out, "<tr><td>{}</td>", escape(name));
            for a in &self.adapters {
                out.push_str(&html_cell(cells.get(a.as_str())));
            }
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n</body></html>\n");
        out
    }
}

/// One cell of the HTML matrix.
fn html_cell(case: Option<&&CaseResult>) -> String {
    let Some(case) = case else {
        return "<td>-</td>".into();
    };
    let details = case.differences.join("\n");
    match case.status {
        Status::Pass => format!("<td class=\"pass\">pass {} ms</td>", case.millis),
        Status::Skip => format!(
            "<td class=\"skip\" title=\"{}\"><details><summary>skip</summary>{}</details></td>",
            escape(&details),
            escape(&details)
        ),
        Status::Fail => format!(
            "<td class=\"fail\"><details><summary>FAIL {} ms</summary><pre>{}</pre></details></td>",
            case.millis,
            escape(&details)
        ),
    }
}

/// Text made safe for HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod html_tests {
    use super::*;

    fn case(scenario: &str, adapter: &str, status: Status, differences: &[&str]) -> CaseResult {
        CaseResult {
            scenario: scenario.into(),
            credential: "client_secret".into(),
            description: "d".into(),
            adapter: adapter.into(),
            status,
            millis: 12,
            differences: differences.iter().map(|d| d.to_string()).collect(),
            message: None,
        }
    }

    #[test]
    fn the_html_report_colours_cells_and_escapes_what_differed() {
        let report = Report {
            adapters: vec!["rust".into(), "python".into()],
            target: "https://127.0.0.1:1".into(),
            results: vec![
                case("a/one", "rust", Status::Pass, &[]),
                case(
                    "a/one",
                    "python",
                    Status::Fail,
                    &["expected <token> & got \"error\""],
                ),
                case("b/two", "rust", Status::Skip, &["not <here>"]),
            ],
            total_millis: 1500,
        };
        let html = report.html();
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains(r#"<p id="totals">1 passed, 1 failed, 1 skipped in 1.5 s"#));
        assert!(html.contains(r#"<td class="pass">pass 12 ms</td>"#));
        assert!(html.contains("<summary>FAIL 12 ms</summary><pre>expected &lt;token&gt; &amp; got &quot;error&quot;</pre>"));
        assert!(html.contains(r#"<td class="skip" title="not &lt;here&gt;">"#));
        assert!(html.contains("<td>-</td>"), "b/two has no python cell");
        assert!(!html.contains("<token>"));
    }
}
