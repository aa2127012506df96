//! Diagnostics for bad input: what is wrong, where (file:line:col) and what to do next.
//!
//! Validation collects every problem it can find and reports them together, so an SRE fixes a
//! runbook in one pass rather than one error at a time.

use serde::Serialize;
use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// A source file kept in memory so byte spans can be turned into line and column.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> Self {
        let text = text.into();
        let mut line_starts = vec![0];
        for (i, b) in text.bytes().enumerate() {
            if b == b'\n' {
                line_starts.push(i + 1);
            }
        }
        Self {
            path: path.into(),
            text,
            line_starts,
        }
    }

    pub fn read(path: &Path) -> Result<Self, Diagnostic> {
        match std::fs::read_to_string(path) {
            Ok(text) => Ok(Self::new(path, text)),
            Err(e) => Err(Diagnostic {
                file: path.display().to_string(),
                line: 0,
                col: 0,
                message: format!("cannot read file: {e}"),
                hint: Some(
                    "check the path; runbooks live in runbooks/, environments in config/".into(),
                ),
            }),
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(l) => l,
            Err(l) => l - 1,
        };
        let start = self.line_starts[line];
        let col = self.text[start..offset].chars().count();
        (line + 1, col + 1)
    }

    pub fn diag(
        &self,
        span: Range<usize>,
        message: impl Into<String>,
        hint: Option<String>,
    ) -> Diagnostic {
        let (line, col) = self.line_col(span.start);
        Diagnostic {
            file: self.path.display().to_string(),
            line,
            col,
            message: message.into(),
            hint,
        }
    }

    /// Where a span is, kept for a check made later (e.g. against another file).
    pub fn place(&self, span: Range<usize>) -> Place {
        let (line, col) = self.line_col(span.start);
        Place {
            file: self.path.display().to_string(),
            line,
            col,
        }
    }

    /// A diagnostic about the file as a whole (points at line 1, column 1).
    pub fn diag_file(&self, message: impl Into<String>, hint: Option<String>) -> Diagnostic {
        Diagnostic {
            file: self.path.display().to_string(),
            line: 1,
            col: 1,
            message: message.into(),
            hint,
        }
    }
}

/// A position in an input file, for a problem found after the file was parsed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Place {
    pub file: String,
    pub line: usize,
    pub col: usize,
}

impl Place {
    pub fn diag(&self, message: impl Into<String>, hint: Option<String>) -> Diagnostic {
        Diagnostic {
            file: self.file.clone(),
            line: self.line,
            col: self.col,
            message: message.into(),
            hint,
        }
    }
}

/// One problem in an input file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Diagnostic {
    pub file: String,
    /// 1-based; 0 when the problem is not tied to a position (e.g. the file is missing).
    pub line: usize,
    pub col: usize,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line > 0 {
            write!(
                f,
                "{}:{}:{}: error: {}",
                self.file, self.line, self.col, self.message
            )?;
        } else {
            write!(f, "{}: error: {}", self.file, self.message)?;
        }
        if let Some(h) = &self.hint {
            write!(f, "\n  hint: {h}")?;
        }
        Ok(())
    }
}

/// Every problem found in one or more files.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, thiserror::Error)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    pub fn push(&mut self, d: Diagnostic) {
        self.0.push(d)
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0)
    }
    /// Sorted by file, then position, as a compiler would print them.
    pub fn sorted(mut self) -> Self {
        self.0
            .sort_by(|a, b| (&a.file, a.line, a.col).cmp(&(&b.file, b.line, b.col)));
        self.0.dedup();
        self
    }
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

impl From<Diagnostic> for Diagnostics {
    fn from(d: Diagnostic) -> Self {
        Diagnostics(vec![d])
    }
}

/// Closest candidate by edit distance, for "did you mean" hints.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let mut best: Option<(&str, usize)> = None;
    for c in candidates {
        let d = levenshtein(word, c);
        let limit = (word.len().max(c.len()) / 3).max(2);
        if d <= limit && best.is_none_or(|(_, bd)| d < bd) {
            best = Some((c, d));
        }
    }
    best.map(|(c, _)| c)
}

/// The hint for an unknown key among `known`: the closest by edit distance when it is a typo
/// (two edits at most); otherwise, when the key's first words name a family of keys
/// (`cloudwatch_rate` among `cloudwatch_burst` and `cloudwatch_per_s`), that family, as
/// "did you mean `a` or `b`?"; otherwise the closest within reach; `None` when nothing is near.
pub fn did_you_mean_key(key: &str, known: &[&str]) -> Option<String> {
    let best = did_you_mean(key, known.iter().copied());
    if let Some(b) = best.filter(|b| levenshtein(key, b) <= 2) {
        return Some(format!("did you mean `{b}`?"));
    }
    let family: Vec<&str> = key
        .rsplit_once('_')
        .map(|(head, _)| {
            known
                .iter()
                .copied()
                .filter(|c| c.strip_prefix(head).is_some_and(|t| t.starts_with('_')))
                .collect()
        })
        .unwrap_or_default();
    if (2..=4).contains(&family.len()) {
        let (last, first) = family.split_last()?;
        let first: Vec<String> = first.iter().map(|c| format!("`{c}`")).collect();
        return Some(format!("did you mean {} or `{last}`?", first.join(", ")));
    }
    best.map(|b| format!("did you mean `{b}`?"))
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = if ca == *cb { 0 } else { 1 };
            cur.push((prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let f = SourceFile::new("x.toml", "a = 1\nbé = 2\n");
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(6), (2, 1));
        assert_eq!(f.line_col(10), (2, 4));
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            did_you_mean("aftr", ["after", "when", "timeout"]),
            Some("after")
        );
        assert_eq!(did_you_mean("zzzzzz", ["after", "when"]), None);
    }

    #[test]
    fn an_unknown_key_is_matched_to_a_typo_or_to_its_family() {
        let quotas = [
            "rds_burst",
            "rds_per_s",
            "cloudwatch_burst",
            "cloudwatch_per_s",
        ];
        assert_eq!(
            did_you_mean_key("rds_burts", &quotas).as_deref(),
            Some("did you mean `rds_burst`?")
        );
        assert_eq!(
            did_you_mean_key("cloudwatch_rate", &quotas).as_deref(),
            Some("did you mean `cloudwatch_burst` or `cloudwatch_per_s`?")
        );
        assert_eq!(
            did_you_mean_key("timout", &["timeout", "retries"]).as_deref(),
            Some("did you mean `timeout`?")
        );
        assert_eq!(did_you_mean_key("zzzzzz", &quotas), None);
    }
}
