//! JSON Schemas (draft-07, what taplo / Even Better TOML read) of the input files:
//! `failover schema runbook|environment|topology`.
//!
//! Runbooks and environments are read by the spanned reader (`tomlx::TableReader`), not by
//! serde types, so their schemas are written here, table by table, beside the parsers. They are
//! kept equal to the parsers by this module's tests: every table the parsers read in the
//! shipped examples (and `tests/fixtures/schema-*.toml`) must have exactly the keys the parser's
//! `finish` accepts, each with the type and range the parser reads it with (`tomlx::record`).
//! A key added to a parser and not here fails them. Topologies are read through serde types,
//! so their schema is derived from those types (`cloud::sim::topology::json_schema`).

mod build;
mod environment;
mod runbook;

pub use build::{DRAFT, DURATION_PATTERN, ZONE_PATTERN};
pub use environment::{environment, health, traffic};
pub use runbook::runbook;

#[cfg(test)]
mod tests {
    //! The schemas against the parsers: every example validates; every table the parsers read
    //! has exactly the keys they accept, read as the schema types them; a key the parsers do
    //! not know fails both.

    use super::*;
    use crate::diag::SourceFile;
    use crate::tomlx::{self, record, SKind, SVal};
    use serde_json::Value;
    use std::collections::BTreeSet;
    use std::ops::Range;
    use std::path::{Path, PathBuf};

    fn repo() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
    }

    fn files(dir: &str) -> Vec<PathBuf> {
        let mut out: Vec<PathBuf> = std::fs::read_dir(repo().join(dir))
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        out.sort();
        out
    }

    fn instance(text: &str) -> Value {
        serde_json::to_value(toml::from_str::<toml::Value>(text).unwrap()).unwrap()
    }

    fn errors(schema: &Value, inst: &Value) -> Vec<String> {
        let v = jsonschema::validator_for(schema).unwrap();
        v.iter_errors(inst)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect()
    }

    /// The runbook examples and fixtures, the environment examples and fixtures.
    fn runbooks() -> Vec<PathBuf> {
        let mut v = files("runbooks");
        v.push(repo().join("tests/fixtures/schema-runbook.toml"));
        v
    }

    fn environments() -> Vec<PathBuf> {
        let mut v = files("config");
        v.push(repo().join("tests/fixtures/schema-environment.toml"));
        v
    }

    /// Parse with the real parser, recording what it read; panics on a diagnostic.
    fn parse_recorded(path: &Path, runbook: bool) -> Vec<record::Table> {
        let src = SourceFile::read(path).unwrap();
        record::start();
        let r = if runbook {
            crate::runbook::Runbook::parse(src).map(|_| ())
        } else {
            let stem = path.file_stem().unwrap().to_str().unwrap();
            crate::env::Environment::parse(src, stem).map(|_| ())
        };
        let tables = record::take();
        if let Err(d) = r {
            panic!("{}: {d}", path.display());
        }
        tables
    }

    #[test]
    fn every_example_validates_against_its_schema() {
        let rb = runbook();
        for p in runbooks() {
            let e = errors(&rb, &instance(&std::fs::read_to_string(&p).unwrap()));
            assert!(e.is_empty(), "{}: {e:#?}", p.display());
        }
        let env = environment();
        for p in environments() {
            let e = errors(&env, &instance(&std::fs::read_to_string(&p).unwrap()));
            assert!(e.is_empty(), "{}: {e:#?}", p.display());
        }
        let topo = crate::cloud::sim::topology::json_schema();
        let sims = files("config/sim");
        assert!(sims.len() >= 3);
        for p in sims {
            let e = errors(&topo, &instance(&std::fs::read_to_string(&p).unwrap()));
            assert!(e.is_empty(), "{}: {e:#?}", p.display());
        }
    }

    /// The sub-schema that applies to `v`: `$ref`s are not used; `oneOf`/`anyOf` pick the
    /// first branch `v` fits (type, required keys, closed keys, consts).
    fn pick<'s>(schema: &'s Value, v: &SVal) -> &'s Value {
        let branches = schema["oneOf"].as_array().or(schema["anyOf"].as_array());
        match branches {
            Some(bs) => bs
                .iter()
                .find(|b| fits(b, v))
                .map(|b| pick(b, v))
                .unwrap_or(schema),
            None => schema,
        }
    }

    fn fits(b: &Value, v: &SVal) -> bool {
        let ty = b["type"].as_str();
        match &v.kind {
            SKind::Table(entries) => {
                if ty.is_some_and(|t| t != "object") {
                    return false;
                }
                let has = |k: &str| entries.iter().any(|(e, _, _)| e == k);
                let required = b["required"].as_array().cloned().unwrap_or_default();
                let closed = b["additionalProperties"] == Value::Bool(false);
                required.iter().all(|k| has(k.as_str().unwrap_or("")))
                    && entries.iter().all(|(k, _, ev)| {
                        let p = &b["properties"][k];
                        (!closed || !p.is_null())
                            && match (&p["const"], &ev.kind) {
                                (Value::String(c), SKind::Str(s)) => c == s,
                                (Value::Null, _) => true,
                                _ => false,
                            }
                    })
            }
            SKind::Str(_) => ty.is_none_or(|t| t == "string"),
            SKind::Array(_) => ty.is_none_or(|t| t == "array"),
            _ => true,
        }
    }

    /// Every table of `v` with the schema that describes it.
    fn tables<'s>(schema: &'s Value, v: &SVal, out: &mut Vec<(Range<usize>, &'s Value)>) {
        let s = pick(schema, v);
        match &v.kind {
            SKind::Table(entries) => {
                out.push((v.span.clone(), s));
                for (k, _, ev) in entries {
                    let child = match &s["properties"][k] {
                        Value::Null => &s["additionalProperties"],
                        p => p,
                    };
                    if child.is_object() {
                        tables(child, ev, out);
                    }
                }
            }
            SKind::Array(items) => {
                for i in items {
                    tables(&s["items"], i, out);
                }
            }
            _ => {}
        }
    }

    /// Whether the schema of a key types it as the parser read it.
    fn typed_as(p: &Value, how: &record::Read) -> bool {
        let ty = p["type"].as_str();
        match how {
            record::Read::Any => true,
            record::Read::Str => ty == Some("string"),
            record::Read::Bool => ty == Some("boolean"),
            record::Read::Int { min, max } => {
                ty == Some("integer")
                    && p["minimum"].as_i64() == Some(*min)
                    && p["maximum"].as_i64() == Some(*max)
            }
            record::Read::Duration => {
                ty == Some("string") && p["pattern"].as_str() == Some(DURATION_PATTERN)
            }
            record::Read::StrList => ty == Some("array") && p["items"]["type"] == "string",
        }
    }

    fn check_bound(schema: &Value, path: &Path, read: &[record::Table]) -> usize {
        let src = SourceFile::read(path).unwrap();
        let doc = tomlx::parse_document(&src).unwrap();
        let mut described = vec![];
        tables(schema, &doc, &mut described);
        let mut problems = vec![];
        for t in read {
            let at = src.diag(t.span.clone(), "", None);
            let Some((_, s)) = described.iter().find(|(span, _)| *span == t.span) else {
                problems.push(format!(
                    "{}:{}: the schema does not describe this table",
                    at.line, at.col
                ));
                continue;
            };
            let props: BTreeSet<String> = s["properties"]
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default();
            let known: BTreeSet<String> = t.known.iter().cloned().collect();
            if props != known {
                problems.push(format!(
                    "{}:{}: the parser knows {:?}, the schema {:?}",
                    at.line,
                    at.col,
                    known.difference(&props).collect::<Vec<_>>(),
                    props.difference(&known).collect::<Vec<_>>()
                ));
            }
            for (k, how) in &t.reads {
                if !typed_as(&s["properties"][k], how) {
                    problems.push(format!(
                        "{}:{}: `{k}` is read as {how:?}, the schema says {}",
                        at.line, at.col, s["properties"][k]
                    ));
                }
            }
        }
        assert!(
            problems.is_empty(),
            "{}:\n  {}",
            path.display(),
            problems.join("\n  ")
        );
        read.len()
    }

    #[test]
    fn the_schemas_have_the_keys_and_types_the_parsers_read() {
        let mut n = 0;
        for p in runbooks() {
            n += check_bound(&runbook(), &p, &parse_recorded(&p, true));
        }
        for p in environments() {
            n += check_bound(&environment(), &p, &parse_recorded(&p, false));
        }
        assert!(n > 100, "only {n} tables checked");
    }

    /// A key added to a parser and not to the schema fails the test above: here the schema
    /// loses one key and the comparison must notice.
    #[test]
    fn a_key_missing_from_the_schema_is_noticed() {
        let p = repo().join("runbooks/az-evacuation.toml");
        let read = parse_recorded(&p, true);
        let mut rb = runbook();
        rb["properties"]
            .as_object_mut()
            .unwrap()
            .remove("description");
        let r = std::panic::catch_unwind(|| check_bound(&rb, &p, &read));
        let msg = r
            .err()
            .and_then(|e| e.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        assert!(msg.contains("the parser knows [\"description\"]"), "{msg}");
    }

    /// Paths of every table of a document (`[a, 0, b]`), inline ones too.
    fn table_paths(item: &toml_edit::Item, at: Vec<String>, out: &mut Vec<Vec<String>>) {
        match item {
            toml_edit::Item::Table(t) => {
                out.push(at.clone());
                for (k, v) in t.iter() {
                    table_paths(v, [at.clone(), vec![k.to_string()]].concat(), out);
                }
            }
            toml_edit::Item::ArrayOfTables(a) => {
                for (i, t) in a.iter().enumerate() {
                    let item = toml_edit::Item::Table(t.clone());
                    table_paths(&item, [at.clone(), vec![i.to_string()]].concat(), out);
                }
            }
            toml_edit::Item::Value(toml_edit::Value::InlineTable(t)) => {
                out.push(at.clone());
                for (k, v) in t.iter() {
                    table_paths(
                        &toml_edit::Item::Value(v.clone()),
                        [at.clone(), vec![k.to_string()]].concat(),
                        out,
                    );
                }
            }
            _ => {}
        }
    }

    /// Insert `not_a_key = 1` into the table at `path`.
    fn add_unknown_key(t: &mut dyn toml_edit::TableLike, path: &[String]) {
        let Some((seg, rest)) = path.split_first() else {
            t.insert("not_a_key", toml_edit::value(1));
            return;
        };
        match t.get_mut(seg).unwrap() {
            toml_edit::Item::ArrayOfTables(a) => {
                let (i, rest) = rest.split_first().unwrap();
                add_unknown_key(a.get_mut(i.parse().unwrap()).unwrap(), rest)
            }
            toml_edit::Item::Table(tb) => {
                tb.set_implicit(false);
                add_unknown_key(tb, rest)
            }
            other => add_unknown_key(other.as_table_like_mut().unwrap(), rest),
        }
    }

    /// In every table of every example, an unknown key fails the schema and the parser alike.
    #[test]
    fn an_unknown_key_fails_the_schema_and_the_parser() {
        let mut checked = 0;
        for (path, is_runbook) in runbooks()
            .into_iter()
            .map(|p| (p, true))
            .chain(environments().into_iter().map(|p| (p, false)))
        {
            let text = std::fs::read_to_string(&path).unwrap();
            let schema = if is_runbook { runbook() } else { environment() };
            let doc: toml_edit::DocumentMut = text.parse().unwrap();
            let mut paths = vec![];
            table_paths(doc.as_item(), vec![], &mut paths);
            for p in paths {
                let mut m = doc.clone();
                add_unknown_key(m.as_table_mut(), &p);
                let mutated = m.to_string();
                assert!(
                    !errors(&schema, &instance(&mutated)).is_empty(),
                    "{}: the schema accepts an unknown key at {p:?}",
                    path.display()
                );
                let src = SourceFile::new(path.display().to_string(), mutated);
                let stem = path.file_stem().unwrap().to_str().unwrap();
                let parsed = if is_runbook {
                    crate::runbook::Runbook::parse(src).is_ok()
                } else {
                    crate::env::Environment::parse(src, stem).is_ok()
                };
                // A runbook's `weights` are keyed by zone, checked when it is bound to an
                // environment (the schema checks the shape of a zone name).
                let zone_keyed = is_runbook && p.last().is_some_and(|k| k == "weights");
                assert!(
                    !parsed || zone_keyed,
                    "{}: the parser accepts an unknown key at {p:?}",
                    path.display()
                );
                checked += 1;
            }
        }
        assert!(checked > 100, "only {checked} tables mutated");
    }
}
