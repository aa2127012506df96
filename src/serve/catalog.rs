//! The runbooks the service may run: the `.toml` files of its runbooks directory, named by
//! their file name without `.toml` or by the runbook's own `name`. A request names a runbook,
//! never a path, so no file outside the directory can be run.

use super::error::ApiError;
use crate::diag::{did_you_mean, Diagnostic, Diagnostics};
use crate::runbook::Runbook;
use std::path::{Path, PathBuf};

/// One file of the directory, loaded (or why not).
pub struct Entry {
    pub file: PathBuf,
    /// The file name without `.toml`.
    pub stem: String,
    pub runbook: Result<Runbook, Diagnostics>,
}

#[derive(Clone)]
pub struct Catalog {
    pub dir: PathBuf,
}

impl Catalog {
    /// Every runbook file, by file name.
    pub fn entries(&self) -> Vec<Entry> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.dir)
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                    .collect()
            })
            .unwrap_or_default();
        files.sort();
        files
            .into_iter()
            .map(|file| Entry {
                stem: stem(&file),
                runbook: Runbook::load(&file),
                file,
            })
            .collect()
    }

    /// The file of the runbook `name` (file name or runbook name), or a 400 that lists them.
    pub fn resolve(&self, name: &str) -> Result<PathBuf, ApiError> {
        let entries = self.entries();
        let hit = entries.iter().find(|e| e.stem == name).or_else(|| {
            entries
                .iter()
                .find(|e| e.runbook.as_ref().is_ok_and(|r| r.name == name))
        });
        if let Some(e) = hit {
            return Ok(e.file.clone());
        }
        let known: Vec<&str> = entries.iter().map(|e| e.stem.as_str()).collect();
        let hint = match did_you_mean(name, known.iter().copied()) {
            Some(s) => format!("did you mean `{s}`? known runbooks: {}", known.join(", ")),
            None if known.is_empty() => format!(
                "the service's runbooks directory {} has no runbook (--runbooks DIR)",
                self.dir.display()
            ),
            None => format!("known runbooks: {} (GET /v1/runbooks)", known.join(", ")),
        };
        Err(ApiError::bad_request(Diagnostic {
            file: "request body".into(),
            line: 0,
            col: 0,
            message: format!(
                "runbook `{name}` is not in the service's runbooks directory {}",
                self.dir.display()
            ),
            hint: Some(hint),
        }))
    }
}

fn stem(p: &Path) -> String {
    p.file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_string()
}
