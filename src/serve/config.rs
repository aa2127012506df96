//! The service's configuration file (`<config-dir>/serve/serve.toml`, or `--serve-config`):
//! where it listens, where its runbooks are, and who may call it: bearer tokens, stored as
//! their SHA-256 (never the token itself), each naming the person or system the journal records
//! and its roles. Read through the spanned TOML reader: every problem at once, file:line:col.
//!
//! ```toml
//! listen = "127.0.0.1:8080"
//! runbooks = "runbooks"
//!
//! [[tokens]]
//! name = "alice"
//! roles = ["operator"]
//! sha256 = "…"   # failover token hash < alice.token
//!
//! readiness_interval = "5m"   # continuous readiness (1s to 24h; default 5m)
//! readiness_notify = "chat"   # the endpoint of each environment told when a check turns red
//! ```

use crate::diag::{Diagnostics, SourceFile};
use crate::tomlx::{parse_document, SKind, TableReader};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a token may do. Every role may read; `operator` starts, aborts, resumes and rolls back
/// runs; `approver` approves and rejects approval gates.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Operator,
    Approver,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Approver];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Approver => "approver",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// One caller of the API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Token {
    /// The person or system: the initiator or approver the journal records.
    pub name: String,
    pub roles: Vec<Role>,
    /// SHA-256 of the token, lowercase hex.
    #[serde(skip)]
    pub sha256: String,
}

/// The service's settings read from its file (flags and environment variables override them).
#[derive(Clone, Debug, Default)]
pub struct ServeConfig {
    /// Where the file was (None: no file; the service then refuses every token).
    pub path: Option<PathBuf>,
    pub listen: Option<String>,
    pub runbooks: Option<PathBuf>,
    pub tokens: Vec<Token>,
    /// How often readiness is checked (`readiness_interval`, 1s to 24h).
    pub readiness_interval: Option<Duration>,
    /// The endpoint (of each environment) told when a readiness check turns red.
    pub readiness_notify: Option<String>,
}

/// The shortest and longest interval between two rounds of readiness checks.
pub const MIN_READINESS_INTERVAL: Duration = Duration::from_secs(1);
pub const MAX_READINESS_INTERVAL: Duration = Duration::from_secs(24 * 3600);
/// The interval when none is configured.
pub const DEFAULT_READINESS_INTERVAL: Duration = Duration::from_secs(300);

/// A readiness interval within its bounds, or what is wrong with it.
pub fn check_readiness_interval(d: Duration) -> Result<Duration, String> {
    if !(MIN_READINESS_INTERVAL..=MAX_READINESS_INTERVAL).contains(&d) {
        return Err(format!(
            "`readiness_interval` must be between {} and {}, found {}; every check is a dry run of read-only calls against the cloud",
            humantime::format_duration(MIN_READINESS_INTERVAL),
            humantime::format_duration(MAX_READINESS_INTERVAL),
            humantime::format_duration(d)
        ));
    }
    Ok(d)
}

/// The default place of the file: `<config-dir>/serve/serve.toml`.
pub fn default_path(config_dir: &Path) -> PathBuf {
    config_dir.join("serve").join("serve.toml")
}

/// SHA-256 of a token as the configuration stores it (surrounding whitespace ignored).
pub fn hash_token(token: &str) -> String {
    crate::journal::sha256_hex(token.trim().as_bytes())
}

/// A new random token (32 bytes from the OS's CSPRNG, hex), prefixed so it is recognisable in
/// a leaked-secret scan.
pub fn new_token() -> Result<String, String> {
    let mut b = [0u8; 32];
    getrandom::fill(&mut b).map_err(|e| format!("the OS's random source failed: {e}"))?;
    Ok(format!(
        "fov1_{}",
        b.iter().map(|x| format!("{x:02x}")).collect::<String>()
    ))
}

impl ServeConfig {
    /// Read `path`; a missing file is an empty configuration when `required` is false.
    pub fn load(path: &Path, required: bool) -> Result<ServeConfig, Diagnostics> {
        if !required && !path.exists() {
            return Ok(ServeConfig::default());
        }
        let src = SourceFile::read(path)?;
        let mut c = Self::parse(&src)?;
        c.path = Some(path.to_path_buf());
        Ok(c)
    }

    /// Parse the file's text, every problem at once.
    pub fn parse(src: &SourceFile) -> Result<ServeConfig, Diagnostics> {
        let doc = parse_document(src)?;
        let mut d = Diagnostics::default();
        let mut c = ServeConfig::default();
        if let Some(mut t) = TableReader::new(src, &doc, "the service configuration", &mut d) {
            c.listen = t.str("listen", &mut d).map(|s| s.value);
            c.runbooks = t.str("runbooks", &mut d).map(|s| PathBuf::from(s.value));
            if let Some(v) = t.get("tokens") {
                c.tokens = tokens(src, v, &mut d);
            }
            if let Some(i) = t.duration("readiness_interval", &mut d) {
                match check_readiness_interval(i.value) {
                    Ok(v) => c.readiness_interval = Some(v),
                    Err(e) => d.push(src.diag(i.span.clone(), e, None)),
                }
            }
            c.readiness_notify = t.str("readiness_notify", &mut d).map(|s| s.value);
            t.finish(
                &[
                    "listen",
                    "runbooks",
                    "tokens",
                    "readiness_interval",
                    "readiness_notify",
                ],
                &mut d,
            );
        }
        if d.is_empty() {
            Ok(c)
        } else {
            Err(d.sorted())
        }
    }

    /// The caller a token names, if any.
    pub fn caller(&self, token: &str) -> Option<&Token> {
        let h = hash_token(token);
        self.tokens.iter().find(|t| t.sha256 == h)
    }
}

fn tokens(src: &SourceFile, v: &crate::tomlx::SVal, d: &mut Diagnostics) -> Vec<Token> {
    let SKind::Array(items) = &v.kind else {
        d.push(src.diag(
            v.span.clone(),
            "`tokens` must be an array of tables ([[tokens]])",
            None,
        ));
        return vec![];
    };
    let mut out: Vec<Token> = vec![];
    for item in items {
        let Some(mut t) = TableReader::new(src, item, "a [[tokens]] entry", d) else {
            continue;
        };
        let name = t.req_str("name", "the person or system the journal records", d);
        let sha = t.req_str("sha256", "the token's hash: `failover token hash`", d);
        let roles = t.str_list("roles", d).unwrap_or_default();
        if roles.is_empty() {
            d.push(src.diag(
                item.span.clone(),
                "a [[tokens]] entry needs `roles`",
                Some("roles = [\"viewer\"], [\"operator\"] and/or [\"approver\"]".into()),
            ));
        }
        let mut parsed = vec![];
        for r in &roles {
            match Role::parse(&r.value) {
                Some(role) => parsed.push(role),
                None => d.push(src.diag(
                    r.span.clone(),
                    format!("unknown role `{}`", r.value),
                    Some("roles: viewer, operator, approver".into()),
                )),
            }
        }
        t.finish(&["name", "sha256", "roles"], d);
        let (Some(name), Some(sha)) = (name, sha) else {
            continue;
        };
        let hash = sha.value.trim().to_ascii_lowercase();
        if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
            d.push(src.diag(
                sha.span.clone(),
                "`sha256` must be 64 hex digits: the token's SHA-256, never the token itself",
                Some("`failover token hash` prints it (the token on standard input)".into()),
            ));
            continue;
        }
        if name.value.trim().is_empty() {
            d.push(src.diag(name.span.clone(), "`name` must not be empty", None));
            continue;
        }
        if out.iter().any(|o| o.sha256 == hash) {
            d.push(src.diag(
                sha.span.clone(),
                format!(
                    "this token is already given to another entry (`{}` reuses it)",
                    name.value
                ),
                Some("every person or system gets its own token: `failover token new`".into()),
            ));
            continue;
        }
        parsed.sort();
        parsed.dedup();
        out.push(Token {
            name: name.value.trim().to_string(),
            roles: parsed,
            sha256: hash,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tokens_and_reports_every_problem_with_its_position() {
        let h = hash_token("secret");
        let ok = format!(
            "listen = \"127.0.0.1:9\"\n[[tokens]]\nname = \"alice\"\nroles = [\"operator\", \"viewer\"]\nsha256 = \"{h}\"\n"
        );
        let c = ServeConfig::parse(&SourceFile::new("s.toml", ok)).unwrap();
        assert_eq!(c.listen.as_deref(), Some("127.0.0.1:9"));
        assert_eq!(c.caller(" secret\n").unwrap().name, "alice");
        assert_eq!(c.tokens[0].roles, vec![Role::Viewer, Role::Operator]);
        assert!(c.caller("other").is_none());

        let bad =
            "[[tokens]]\nname = \"bob\"\nroles = [\"admin\"]\nsha256 = \"secret\"\nextra = 1\n";
        let d = ServeConfig::parse(&SourceFile::new("s.toml", bad)).unwrap_err();
        let text = d.to_string();
        assert!(
            text.contains("s.toml:3:10: error: unknown role `admin`"),
            "{text}"
        );
        assert!(
            text.contains("s.toml:4:10: error: `sha256` must be 64 hex digits"),
            "{text}"
        );
        assert!(
            text.contains("s.toml:5:1: error: unknown key `extra`"),
            "{text}"
        );
    }

    #[test]
    fn readiness_settings_are_read_and_bounded() {
        let ok = "readiness_interval = \"2m\"\nreadiness_notify = \"chat\"\n";
        let c = ServeConfig::parse(&SourceFile::new("s.toml", ok)).unwrap();
        assert_eq!(c.readiness_interval, Some(Duration::from_secs(120)));
        assert_eq!(c.readiness_notify.as_deref(), Some("chat"));
        let bad = "readiness_interval = \"500ms\"\n";
        let text = ServeConfig::parse(&SourceFile::new("s.toml", bad))
            .unwrap_err()
            .to_string();
        assert!(
            text.contains(
                "s.toml:1:22: error: `readiness_interval` must be between 1s and 1day, found 500ms"
            ),
            "{text}"
        );
        assert!(check_readiness_interval(Duration::from_secs(25 * 3600)).is_err());
    }

    #[test]
    fn new_tokens_are_random_and_hash_to_64_hex_digits() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_ne!(a, b);
        assert!(a.starts_with("fov1_") && a.len() == 69, "{a}");
        assert_eq!(hash_token(&a).len(), 64);
    }
}
