//! `${name}` templates in step fields. `$${` writes a literal `${`.
//!
//! Variables: runbook parameters by name; `env.name`, `env.region`; `run.id`,
//! `run.initiator`, `run.mode`; `runbook.name`. In HTTP headers, `${secret:NAME}` reads the
//! process environment at call time and is never written to the journal or a plan.

use std::collections::BTreeMap;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Part {
    Lit(String),
    Var(String),
}

/// Split a template into literal text and variables.
pub fn parse(s: &str) -> Result<Vec<Part>, String> {
    let mut parts = vec![];
    let mut lit = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        lit.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(tail) = after.strip_prefix("$${") {
            lit.push_str("${");
            rest = tail;
        } else if let Some(body) = after.strip_prefix("${") {
            let Some(end) = body.find('}') else {
                return Err("`${` is not closed by `}`".into());
            };
            let name = body[..end].trim();
            if name.is_empty() {
                return Err("empty `${}`".into());
            }
            if !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_.-:".contains(c))
            {
                return Err(format!("`${{{name}}}` is not a valid variable name"));
            }
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(&mut lit)));
            }
            parts.push(Part::Var(name.to_string()));
            rest = &body[end + 1..];
        } else {
            lit.push('$');
            rest = &after[1..];
        }
    }
    lit.push_str(rest);
    if !lit.is_empty() {
        parts.push(Part::Lit(lit));
    }
    Ok(parts)
}

pub fn variables(s: &str) -> Result<Vec<String>, String> {
    Ok(parse(s)?
        .into_iter()
        .filter_map(|p| match p {
            Part::Var(v) => Some(v),
            Part::Lit(_) => None,
        })
        .collect())
}

/// Substitute variables; `secret:` variables are left as `${secret:NAME}` for the HTTP edge.
pub fn render(s: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    for p in parse(s)? {
        match p {
            Part::Lit(l) => out.push_str(&l),
            Part::Var(v) if v.starts_with("secret:") => {
                out.push_str("${");
                out.push_str(&v);
                out.push('}');
            }
            Part::Var(v) => match vars.get(&v) {
                Some(val) => out.push_str(val),
                None => return Err(format!("unknown variable `${{{v}}}`")),
            },
        }
    }
    Ok(out)
}

/// Like `render`, for fields that go through `resolve_secrets` later (HTTP url, headers,
/// body): an escaped `$${` stays escaped, so `$${secret:X}` is never resolved.
pub fn render_for_http(s: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::new();
    for p in parse(s)? {
        match p {
            Part::Lit(l) => out.push_str(&l.replace("${", "$${")),
            Part::Var(v) if v.starts_with("secret:") => {
                out.push_str("${");
                out.push_str(&v);
                out.push('}');
            }
            Part::Var(v) => match vars.get(&v) {
                Some(val) => out.push_str(&val.replace("${", "$${")),
                None => return Err(format!("unknown variable `${{{v}}}`")),
            },
        }
    }
    Ok(out)
}

/// Replace `${secret:NAME}` with the process environment's NAME (at call time only), and
/// turn escaped `$${` back into `${`.
pub fn resolve_secrets(s: &str) -> Result<String, String> {
    let mut out = String::new();
    for p in parse(s)? {
        match p {
            Part::Lit(l) => out.push_str(&l),
            Part::Var(v) => match v.strip_prefix("secret:") {
                Some(name) => match std::env::var(name) {
                    Ok(val) => out.push_str(&val),
                    Err(_) => return Err(format!("secret `{name}` is not set in the environment; export {name}=... before the run")),
                },
                None => {
                    out.push_str("${");
                    out.push_str(&v);
                    out.push('}');
                }
            },
        }
    }
    Ok(out)
}

/// The values of the `${secret:NAME}` references in `s` that are set (to scrub them from
/// anything written or printed).
pub fn secret_values(s: &str) -> Vec<String> {
    let Ok(parts) = parse(s) else {
        return vec![];
    };
    parts
        .into_iter()
        .filter_map(|p| match p {
            Part::Var(v) => v
                .strip_prefix("secret:")
                .and_then(|name| std::env::var(name).ok()),
            Part::Lit(_) => None,
        })
        .filter(|v| !v.is_empty())
        .collect()
}

/// `text` with every secret value (as is, and as it appears percent-encoded in a URL)
/// replaced by `<redacted>`.
pub fn scrub(text: &str, secrets: &[String]) -> String {
    let mut out = text.to_string();
    for s in secrets.iter().filter(|s| !s.is_empty()) {
        out = out.replace(s.as_str(), crate::cloud::REDACTED);
        let encoded = percent_encode(s);
        if encoded != *s {
            out = out.replace(&encoded, crate::cloud::REDACTED);
        }
    }
    out
}

fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Evaluate a `when` condition after substitution: `true`, `false`, `A == B`, `A != B`
/// (operands optionally quoted with ' or ").
pub fn eval_condition(expanded: &str) -> Result<bool, String> {
    let e = expanded.trim();
    let unq = |s: &str| -> String {
        let s = s.trim();
        if s.len() >= 2
            && ((s.starts_with('\'') && s.ends_with('\''))
                || (s.starts_with('"') && s.ends_with('"')))
        {
            s[1..s.len() - 1].to_string()
        } else {
            s.to_string()
        }
    };
    if let Some((a, b)) = e.split_once("!=") {
        return Ok(unq(a) != unq(b));
    }
    if let Some((a, b)) = e.split_once("==") {
        return Ok(unq(a) == unq(b));
    }
    match unq(e).to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" | "" => Ok(false),
        other => Err(format!(
            "`{other}` is not a condition: write `true`, `false`, `A == B` or `A != B`"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> BTreeMap<String, String> {
        [("failed_az".to_string(), "us-west-2a".to_string())]
            .into_iter()
            .collect()
    }

    #[test]
    fn renders_and_escapes() {
        assert_eq!(
            render("evacuate ${failed_az}!", &vars()).unwrap(),
            "evacuate us-west-2a!"
        );
        assert_eq!(render("$${literal} $5", &vars()).unwrap(), "${literal} $5");
        assert_eq!(
            render("${secret:TOKEN}", &vars()).unwrap(),
            "${secret:TOKEN}"
        );
        assert!(render("${nope}", &vars())
            .unwrap_err()
            .contains("unknown variable"));
        assert!(parse("${open").is_err());
    }

    #[test]
    fn escaped_secrets_are_never_resolved() {
        std::env::set_var("FAILOVER_TEST_TOKEN", "hunter2");
        let http = render_for_http(
            "a $${secret:FAILOVER_TEST_TOKEN} b ${secret:FAILOVER_TEST_TOKEN} ${failed_az}",
            &vars(),
        )
        .unwrap();
        assert_eq!(
            resolve_secrets(&http).unwrap(),
            "a ${secret:FAILOVER_TEST_TOKEN} b hunter2 us-west-2a"
        );
    }

    #[test]
    fn conditions() {
        assert!(eval_condition("us-west-2a == 'us-west-2a'").unwrap());
        assert!(!eval_condition("a != a").unwrap());
        assert!(eval_condition("true").unwrap());
        assert!(!eval_condition("false").unwrap());
        assert!(eval_condition("maybe").is_err());
    }
}
