//! The architecture, checked mechanically (as rust-analyzer's `tidy.rs` does): the layers and
//! the import rules ARCHITECTURE.md states, no import cycle between source files, which crates
//! each layer may use, docs that name every step action and every command, a `//!` on every
//! module, and functions short enough to read on one screen.
//!
//! It reads the sources; nothing is built or run. A failure names the file and the rule.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One source file: its module path (`cloud::sim::world`; `main`, `cli::args` for the binary)
/// and its text without comments and without its `#[cfg(test)]` module.
struct Source {
    path: PathBuf,
    module: String,
    /// In the binary crate (main.rs and cli/).
    bin: bool,
    text: String,
    code: String,
}

fn sources() -> Vec<Source> {
    let mut out = vec![];
    let src = repo().join("src");
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                let rel = p.strip_prefix(&src).unwrap().with_extension("");
                let mut parts: Vec<String> = rel
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy().to_string())
                    .collect();
                if parts.last().is_some_and(|l| l == "mod") {
                    parts.pop();
                }
                let module = parts.join("::");
                let bin = module == "main" || module == "cli" || module.starts_with("cli::");
                let text = std::fs::read_to_string(&p).unwrap();
                let code = strip(&text);
                out.push(Source {
                    path: p,
                    module,
                    bin,
                    text,
                    code,
                });
            }
        }
    }
    out.sort_by(|a, b| a.module.cmp(&b.module));
    out
}

/// The code without line comments, without the trailing `#[cfg(test)] mod tests`, and
/// without re-exports (`pub use`: a facade that hands names on does not depend on them).
fn strip(text: &str) -> String {
    let body = match text.find("#[cfg(test)]\nmod tests") {
        Some(i) => &text[..i],
        None => text,
    };
    let mut out = vec![];
    let mut in_reexport = false;
    for l in body.lines() {
        let t = l.trim_start();
        if t.starts_with("pub use ") {
            in_reexport = !t.trim_end().ends_with(';');
            out.push("");
            continue;
        }
        if in_reexport {
            in_reexport = !t.trim_end().ends_with(';');
            out.push("");
            continue;
        }
        let declaration = (t.starts_with("pub mod ") || t.starts_with("mod ")) && t.ends_with(';');
        out.push(if t.starts_with("//") || declaration {
            ""
        } else {
            l
        });
    }
    out.join("\n")
}

/// The layers, lowest first. A module may import its own layer or lower ones, never higher.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "foundation",
        &["types", "status", "diag", "tomlx", "timefmt", "limits"],
    ),
    (
        "model",
        &[
            "cloud",
            "cloud::error",
            "cloud::model",
            "cloud::ports",
            "cloud::status",
            "env",
            "schedule",
            "runbook",
            "traffic",
            "health",
            "health::config",
            "health::eval",
            "health::assert",
            "health::trigger",
            "health::report",
            "health::ports",
            "call",
            "world",
            "steps",
            "plan",
            "approval",
            "lease",
            "store",
            "progress",
            "readiness",
            "lint",
            "iam",
            "ports",
            "discover",
            "schema",
        ],
    ),
    (
        "edges",
        &[
            "cloud::aws",
            "cloud::http",
            "cloud::rate",
            "cloud::retry",
            "cloud::sim",
            "journal",
            "clock",
            "health::probes",
            "health::detector",
        ],
    ),
    ("engine", &["engine"]),
    ("app", &["app"]),
    ("report", &["report"]),
    ("serve", &["serve"]),
    ("cli", &["main", "cli"]),
];

/// The layer of a module: the longest prefix listed in `LAYERS`.
fn layer_of(module: &str) -> Option<(usize, &'static str)> {
    let mut best: Option<(usize, usize, &'static str)> = None;
    for (i, (name, mods)) in LAYERS.iter().enumerate() {
        for m in *mods {
            let hit = module == *m || module.starts_with(&format!("{m}::"));
            if hit && best.is_none_or(|(len, _, _)| m.len() > len) {
                best = Some((m.len(), i, name));
            }
        }
    }
    best.map(|(_, i, n)| (i, n))
}

/// The library modules a file names: `crate::a::b` (or `failover::a::b` from the binary),
/// and `super::x` relative to it, resolved to the longest existing module.
fn imports(s: &Source, modules: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let lib_prefix = if s.bin { "failover::" } else { "crate::" };
    let resolve = |path: &str| -> Option<String> {
        let segs: Vec<&str> = path.split("::").collect();
        (1..=segs.len())
            .rev()
            .map(|n| segs[..n].join("::"))
            .find(|m| modules.contains(m))
    };
    for (i, _) in s.code.match_indices(lib_prefix) {
        let before = s.code[..i].chars().last();
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue;
        }
        let rest = &s.code[i + lib_prefix.len()..];
        let path: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        let path = path.trim_end_matches(':');
        if let Some(m) = resolve(path) {
            out.insert(m);
        }
        // `use crate::a::{b, c::d}`: each item of a group.
        let after = &rest[path.len()..];
        if let Some(group) = after.strip_prefix("::{") {
            let end = group.find('}').unwrap_or(0);
            for item in group[..end].split(',') {
                let item = item.trim().split(" as ").next().unwrap_or("").trim();
                if let Some(m) = resolve(&format!("{path}::{item}")) {
                    out.insert(m);
                }
            }
        }
    }
    if !s.bin {
        let parent = parent_of(s);
        for (i, _) in s.code.match_indices("super::") {
            if s.code[..i].ends_with("::") {
                continue;
            }
            let rest = &s.code[i + "super::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            let full = if parent.is_empty() {
                name.trim_end_matches(':').to_string()
            } else {
                format!("{parent}::{}", name.trim_end_matches(':'))
            };
            if let Some(m) = resolve(&full) {
                out.insert(m);
            } else if !parent.is_empty() {
                out.insert(parent.clone());
            }
        }
    }
    // A facade's own code that uses a name it re-exports from a child depends on that child.
    for (name, child) in reexports(&s.text, &s.module) {
        if modules.contains(&child) && uses_word(&s.code, &name) {
            out.insert(child);
        }
    }
    // A parent names its children by their bare names (`detector::Detector` in health/mod.rs).
    if s.path.file_name().is_some_and(|f| f == "mod.rs") && !s.bin {
        for m in modules {
            let Some(child) = m.strip_prefix(&format!("{}::", s.module)) else {
                continue;
            };
            if !child.contains("::") && uses(&s.code, &format!("{child}::")) {
                out.insert(m.clone());
            }
        }
    }
    out.remove(&s.module);
    out
}

/// `pub use child::{A, B}` of a file: (name, module it comes from).
fn reexports(text: &str, module: &str) -> Vec<(String, String)> {
    let mut out = vec![];
    let mut stmt = String::new();
    for l in text.lines() {
        let t = l.trim();
        if stmt.is_empty() && !t.starts_with("pub use ") {
            continue;
        }
        stmt.push_str(t);
        if !t.ends_with(';') {
            continue;
        }
        let body = stmt
            .trim_start_matches("pub use ")
            .trim_end_matches(';')
            .to_string();
        stmt.clear();
        let (path, names) = match body.split_once("::{") {
            Some((p, n)) => (p.to_string(), n.trim_end_matches('}').to_string()),
            None => match body.rsplit_once("::") {
                Some((p, n)) => (p.to_string(), n.to_string()),
                None => continue,
            },
        };
        let child = if let Some(rest) = path.strip_prefix("crate::") {
            rest.to_string()
        } else if module.is_empty() {
            path.clone()
        } else {
            format!("{module}::{path}")
        };
        for n in names.split(',') {
            let n = n.trim().rsplit(" as ").next().unwrap_or("").trim();
            if !n.is_empty() && n != "self" && n != "*" {
                out.push((n.to_string(), child.clone()));
            }
        }
    }
    out
}

fn uses_word(code: &str, word: &str) -> bool {
    code.match_indices(word).any(|(i, _)| {
        let before = code[..i].chars().last();
        let after = code[i + word.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_')
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

/// The module `super` names from this file.
fn parent_of(s: &Source) -> String {
    let is_mod_rs = s.path.file_name().is_some_and(|f| f == "mod.rs");
    let mut parts: Vec<&str> = s.module.split("::").collect();
    if !is_mod_rs || parts.len() > 1 {
        parts.pop();
    }
    if is_mod_rs {
        // super:: of a/b/mod.rs is a.
        return parts.join("::");
    }
    parts.join("::")
}

fn graph() -> (Vec<Source>, BTreeMap<String, BTreeSet<String>>) {
    let srcs = sources();
    let modules: BTreeSet<String> = srcs
        .iter()
        .filter(|s| !s.bin && s.module != "lib")
        .map(|s| s.module.clone())
        .collect();
    let mut g = BTreeMap::new();
    for s in srcs.iter().filter(|s| s.module != "lib") {
        g.insert(s.module.clone(), imports(s, &modules));
    }
    (srcs, g)
}

#[test]
fn every_source_file_has_a_layer() {
    let missing: Vec<String> = sources()
        .into_iter()
        .filter(|s| s.module != "lib" && layer_of(&s.module).is_none())
        .map(|s| s.module)
        .collect();
    assert!(
        missing.is_empty(),
        "modules with no layer (add them to LAYERS here and to ARCHITECTURE.md): {missing:?}"
    );
}

#[test]
fn no_module_imports_a_higher_layer() {
    let (_, g) = graph();
    let mut bad = vec![];
    for (m, deps) in &g {
        let Some((lm, ln)) = layer_of(m) else {
            continue;
        };
        for d in deps {
            if let Some((ld, dn)) = layer_of(d) {
                if ld > lm {
                    bad.push(format!("{m} ({ln}) imports {d} ({dn})"));
                }
            }
        }
    }
    assert!(bad.is_empty(), "upward imports:\n  {}", bad.join("\n  "));
}

#[test]
fn no_import_cycle_between_files() {
    let (_, g) = graph();
    // Tarjan's strongly connected components.
    struct T<'a> {
        g: &'a BTreeMap<String, BTreeSet<String>>,
        index: BTreeMap<&'a str, usize>,
        low: BTreeMap<&'a str, usize>,
        stack: Vec<&'a str>,
        on: BTreeSet<&'a str>,
        n: usize,
        out: Vec<Vec<String>>,
    }
    fn visit<'a>(t: &mut T<'a>, v: &'a str) {
        t.index.insert(v, t.n);
        t.low.insert(v, t.n);
        t.n += 1;
        t.stack.push(v);
        t.on.insert(v);
        let g = t.g;
        for w in g.get(v).into_iter().flatten() {
            let w = w.as_str();
            if !g.contains_key(w) {
                continue;
            }
            if !t.index.contains_key(w) {
                visit(t, w);
                let lw = t.low[w];
                let lv = t.low[v];
                t.low.insert(v, lv.min(lw));
            } else if t.on.contains(w) {
                let iw = t.index[w];
                let lv = t.low[v];
                t.low.insert(v, lv.min(iw));
            }
        }
        if t.low[v] == t.index[v] {
            let mut comp = vec![];
            while let Some(w) = t.stack.pop() {
                t.on.remove(w);
                comp.push(w.to_string());
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 {
                comp.sort();
                t.out.push(comp);
            }
        }
    }
    let mut t = T {
        g: &g,
        index: BTreeMap::new(),
        low: BTreeMap::new(),
        stack: vec![],
        on: BTreeSet::new(),
        n: 0,
        out: vec![],
    };
    for v in g.keys() {
        if !t.index.contains_key(v.as_str()) {
            visit(&mut t, v);
        }
    }
    let cycles: Vec<String> = t
        .out
        .iter()
        .map(|c| {
            let edges: Vec<String> = c
                .iter()
                .flat_map(|a| {
                    g[a].iter()
                        .filter(|b| c.contains(b))
                        .map(move |b| format!("{a} -> {b}"))
                })
                .collect();
            format!("{} ({})", c.join(", "), edges.join("; "))
        })
        .collect();
    assert!(
        cycles.is_empty(),
        "import cycles:\n  {}",
        cycles.join("\n  ")
    );
}

/// Which crates (and std modules) a layer may not use; exceptions name a file and say why.
#[test]
fn crates_stay_in_their_layer() {
    // (what is used, who may use it)
    let rules: &[(&str, &[&str])] = &[
        ("aws_sdk_", &["cloud::aws"]),
        ("aws_config", &["cloud::aws"]),
        ("aws_smithy_", &["cloud::aws"]),
        ("rusqlite", &["journal"]),
        ("reqwest", &["cloud::http", "health::probes"]),
        ("clap", &["main", "cli"]),
        ("axum", &["serve"]),
        ("prometheus_client", &["serve"]),
    ];
    let pure = |m: &str| layer_of(m).is_some_and(|(l, _)| l <= 1);
    // Reading a file is the one IO the model does: loading a runbook or an environment.
    let may_read_files = ["diag", "env"];
    let mut bad = vec![];
    for s in sources() {
        for (what, who) in rules {
            let allowed = who
                .iter()
                .any(|w| s.module == *w || s.module.starts_with(&format!("{w}::")));
            if !allowed && uses(&s.code, what) {
                bad.push(format!("{} uses `{what}` (only {who:?} may)", s.module));
            }
        }
        if pure(&s.module) {
            for what in ["tokio", "std::net", "std::process", "std::thread"] {
                if uses(&s.code, what) {
                    bad.push(format!(
                        "{} is in the pure core and uses `{what}`",
                        s.module
                    ));
                }
            }
            if !may_read_files.contains(&s.module.as_str())
                && (uses(&s.code, "std::fs") || s.code.contains("fs::"))
            {
                bad.push(format!(
                    "{} is in the pure core and touches the file system",
                    s.module
                ));
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

fn uses(code: &str, what: &str) -> bool {
    code.match_indices(what).any(|(i, _)| {
        !code[..i]
            .chars()
            .last()
            .is_some_and(|c| c.is_alphanumeric() || c == '_')
    })
}

#[test]
fn no_unwrap_or_panic_outside_tests() {
    let mut bad = vec![];
    for s in sources() {
        for (n, line) in s.code.lines().enumerate() {
            for what in [".unwrap()", "panic!(", "todo!(", "unimplemented!(", "dbg!("] {
                if line.contains(what) {
                    bad.push(format!("{}:{}: {}", s.path.display(), n + 1, line.trim()));
                }
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn every_module_says_what_it_is_for() {
    let missing: Vec<String> = sources()
        .into_iter()
        .filter(|s| !s.text.trim_start().starts_with("//!"))
        .map(|s| s.path.display().to_string())
        .collect();
    assert!(missing.is_empty(), "no `//!` header: {missing:?}");
}

#[test]
fn every_step_action_is_documented() {
    let doc = std::fs::read_to_string(repo().join("docs/runbook-format.md")).unwrap();
    let headings: Vec<&str> = doc.lines().filter(|l| l.starts_with('#')).collect();
    let missing: Vec<&str> = failover::runbook::ACTIONS
        .iter()
        .filter(|a| !headings.iter().any(|h| h.contains(&format!("`{a}`"))))
        .copied()
        .collect();
    assert!(
        missing.is_empty(),
        "docs/runbook-format.md has no heading for action(s) {missing:?}"
    );
}

#[test]
fn every_command_is_documented() {
    let args = std::fs::read_to_string(repo().join("src/cli/args.rs")).unwrap();
    let doc = std::fs::read_to_string(repo().join("docs/cli.md")).unwrap();
    let start = args.find("pub enum Command {").unwrap();
    let end = start + args[start..].find("\n}\n").unwrap();
    let mut missing = vec![];
    for line in args[start..end].lines() {
        let l = line.strip_prefix("    ").unwrap_or("");
        let name: String = l
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if name.is_empty() || !name.starts_with(|c: char| c.is_ascii_uppercase()) {
            continue;
        }
        let kebab = kebab(&name);
        if !doc
            .lines()
            .any(|h| h.starts_with("### ") && h[4..].starts_with(&kebab))
        {
            missing.push(kebab);
        }
    }
    assert!(
        missing.is_empty(),
        "docs/cli.md has no `### ` section for {missing:?}"
    );
}

fn kebab(name: &str) -> String {
    let mut s = String::new();
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            s.push('-');
        }
        s.push(c.to_ascii_lowercase());
    }
    s
}

#[test]
fn the_code_map_names_every_module() {
    let arch = std::fs::read_to_string(repo().join("ARCHITECTURE.md")).unwrap();
    let lib = std::fs::read_to_string(repo().join("src/lib.rs")).unwrap();
    let missing: Vec<String> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("pub mod "))
        .map(|m| m.trim_end_matches(';').to_string())
        .filter(|m| !arch.contains(&format!("`src/{m}")))
        .collect();
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's code map does not name {missing:?}"
    );
}

/// Functions over this many lines must be tables (listed here with why).
const MAX_FN_LINES: usize = 100;
const LONG_ALLOWED: &[(&str, &str)] = &[(
    "cli::dispatch",
    "a table: one arm per command, each destructuring its arguments and calling one function",
)];

#[test]
fn functions_fit_on_a_screen() {
    let mut bad = vec![];
    for s in sources() {
        for (name, line, len) in functions(&s.code) {
            let key = format!("{}::{name}", s.module);
            if len > MAX_FN_LINES && !LONG_ALLOWED.iter().any(|(k, _)| *k == key) {
                bad.push(format!(
                    "{}:{line}: `{name}` is {len} lines",
                    s.path.display()
                ));
            }
        }
    }
    assert!(
        bad.is_empty(),
        "functions longer than {MAX_FN_LINES} lines (split them, or list a table in LONG_ALLOWED):\n{}",
        bad.join("\n")
    );
}

/// (name, first line, length in lines) of every `fn` with a body.
fn functions(code: &str) -> Vec<(String, usize, usize)> {
    let depth_at = brace_depths(code);
    let lines: Vec<&str> = code.lines().collect();
    let mut out = vec![];
    let mut offset = 0;
    let mut starts = vec![];
    for (n, l) in lines.iter().enumerate() {
        starts.push(offset);
        offset += l.len() + 1;
        let t = l.trim_start();
        let is_fn = [
            "fn ",
            "pub fn ",
            "async fn ",
            "pub async fn ",
            "pub(crate) fn ",
            "pub(crate) async fn ",
            "pub(super) fn ",
            "const fn ",
            "pub const fn ",
        ]
        .iter()
        .any(|p| t.starts_with(p));
        if is_fn {
            let name: String = t[t.find("fn ").unwrap() + 3..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push((name, n));
        }
    }
    out.into_iter()
        .filter_map(|(name, n)| {
            // The body opens at the first `{` after the signature; it ends where the depth
            // falls back below it.
            let from = starts[n];
            let open = code[from..].find('{')? + from;
            if code[from..open].contains(';') {
                return None; // a declaration without a body
            }
            let d = depth_at[open];
            let close = (open + 1..code.len())
                .find(|&i| code.as_bytes()[i] == b'}' && depth_at[i] == d + 1)?;
            let end_line = code[..=close].lines().count();
            Some((name, n + 1, end_line - n))
        })
        .collect()
}

/// The brace depth before each byte, ignoring braces in strings and char literals.
fn brace_depths(code: &str) -> Vec<usize> {
    let b = code.as_bytes();
    let mut out = vec![0; b.len() + 1];
    let (mut depth, mut i) = (0usize, 0usize);
    while i < b.len() {
        out[i] = depth;
        match b[i] {
            b'"' => {
                // Raw strings: r"..." or r#"..."#.
                let mut hashes = 0;
                let mut j = i;
                while j > 0 && b[j - 1] == b'#' {
                    hashes += 1;
                    j -= 1;
                }
                let raw = j > 0 && b[j - 1] == b'r';
                i += 1;
                while i < b.len() {
                    out[i] = depth;
                    if !raw && b[i] == b'\\' {
                        i += 2;
                        continue;
                    }
                    if b[i] == b'"' && b[i + 1..].iter().take(hashes).all(|c| *c == b'#') {
                        i += hashes;
                        break;
                    }
                    i += 1;
                }
            }
            b'\''
                if i + 2 < b.len()
                    && (b[i + 2] == b'\''
                        || (b[i + 1] == b'\\' && b.get(i + 3) == Some(&b'\''))) =>
            {
                i += if b[i + 1] == b'\\' { 3 } else { 2 };
            }
            b'{' => depth += 1,
            b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    out
}

#[test]
fn the_checker_itself_finds_what_it_looks_for() {
    // A cycle, an upward import and a long function in made-up sources are caught, so the
    // checks above cannot pass by reading nothing.
    let long = format!("fn big() {{\n{}}}\n", "    let _x = 1;\n".repeat(120));
    assert_eq!(functions(&long)[0].2, 122);
    assert_eq!(functions("fn a() { let s = \"}\"; }\n")[0].2, 1);
    assert_eq!(layer_of("cloud::sim::world").map(|l| l.1), Some("edges"));
    assert_eq!(layer_of("cloud").map(|l| l.1), Some("model"));
    let (_, g) = graph();
    assert!(
        g["engine::ctx"].contains("store"),
        "the engine journals through the store port"
    );
    assert!(g["app::run"].contains("engine"), "the app runs the engine");
    assert!(uses("use tokio::sync;", "tokio") && !uses("my_tokio", "tokio"));
}
