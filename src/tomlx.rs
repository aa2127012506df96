//! A spanned view of a TOML document and a reader that turns it into typed values while
//! collecting every problem (wrong type, unknown key, missing key) with its position.
//!
//! This is the first of the two input stages (ripgrep style): TOML -> checked plain data.
//! Runbooks and environment files are both read through it.

use crate::diag::{did_you_mean_key, Diagnostics, SourceFile};
use std::ops::Range;
use std::time::Duration;
use toml::de::{DeTable, DeValue};

/// An owned TOML value with the byte span it came from.
#[derive(Clone, Debug)]
pub struct SVal {
    pub span: Range<usize>,
    pub kind: SKind,
}

#[derive(Clone, Debug)]
pub enum SKind {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Datetime(String),
    Array(Vec<SVal>),
    /// Keys keep their own span; order is the order in the file.
    Table(Vec<(String, Range<usize>, SVal)>),
}

impl SVal {
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            SKind::Str(_) => "a string",
            SKind::Int(_) => "an integer",
            SKind::Float(_) => "a float",
            SKind::Bool(_) => "a boolean",
            SKind::Datetime(_) => "a datetime",
            SKind::Array(_) => "an array",
            SKind::Table(_) => "a table",
        }
    }
}

fn convert(v: &toml::Spanned<DeValue<'_>>) -> SVal {
    let span = v.span();
    let kind = match v.get_ref() {
        DeValue::String(s) => SKind::Str(s.to_string()),
        DeValue::Integer(i) => {
            SKind::Int(i64::from_str_radix(i.as_str(), i.radix()).unwrap_or(i64::MAX))
        }
        DeValue::Float(f) => SKind::Float(f.as_str().parse().unwrap_or(f64::NAN)),
        DeValue::Boolean(b) => SKind::Bool(*b),
        DeValue::Datetime(d) => SKind::Datetime(d.to_string()),
        DeValue::Array(a) => SKind::Array(a.iter().map(convert).collect()),
        DeValue::Table(t) => SKind::Table(convert_table(t)),
    };
    SVal { span, kind }
}

fn convert_table(t: &DeTable<'_>) -> Vec<(String, Range<usize>, SVal)> {
    let mut out: Vec<_> = t
        .iter()
        .map(|(k, v)| (k.get_ref().to_string(), k.span(), convert(v)))
        .collect();
    // Keep file order whatever the map's own order is.
    out.sort_by_key(|(_, ks, _)| ks.start);
    out
}

/// Parse a whole document. Syntax errors are all reported, with positions.
pub fn parse_document(src: &SourceFile) -> Result<SVal, Diagnostics> {
    let (doc, errors) = DeTable::parse_recoverable(&src.text);
    if !errors.is_empty() {
        let mut d = Diagnostics::default();
        for e in errors {
            let span = e.span().unwrap_or(0..0);
            let msg = e.message().trim().to_string();
            d.push(src.diag(
                span,
                format!("invalid TOML: {msg}"),
                Some("see docs/runbook-format.md for the syntax".into()),
            ));
        }
        return Err(d);
    }
    Ok(SVal {
        span: doc.span(),
        kind: SKind::Table(convert_table(doc.get_ref())),
    })
}

/// Reads the keys of one table, remembering which were used, so `finish` can report unknown
/// keys with a "did you mean" hint.
pub struct TableReader<'a> {
    pub src: &'a SourceFile,
    pub span: Range<usize>,
    entries: &'a [(String, Range<usize>, SVal)],
    used: Vec<bool>,
    /// What this table is, for messages: "step `failover`", "parameter `failed_az`".
    pub what: String,
    /// What the parser read from this table (tests compare it with the schemas).
    #[cfg(test)]
    reads: Vec<(String, record::Read)>,
}

impl<'a> TableReader<'a> {
    pub fn new(
        src: &'a SourceFile,
        v: &'a SVal,
        what: impl Into<String>,
        diags: &mut Diagnostics,
    ) -> Option<Self> {
        let what = what.into();
        match &v.kind {
            SKind::Table(entries) => Some(Self {
                src,
                span: v.span.clone(),
                entries,
                used: vec![false; entries.len()],
                what,
                #[cfg(test)]
                reads: vec![],
            }),
            _ => {
                diags.push(src.diag(
                    v.span.clone(),
                    format!("{what} must be a table, found {}", v.type_name()),
                    None,
                ));
                None
            }
        }
    }

    pub fn get(&mut self, key: &str) -> Option<&'a SVal> {
        let i = self.entries.iter().position(|(k, _, _)| k == key)?;
        self.used[i] = true;
        self.note(key, record::Read::Any);
        Some(&self.entries[i].2)
    }

    /// Remember how `key` was read (test builds only: the schema tests compare it).
    #[cfg(test)]
    fn note(&mut self, key: &str, how: record::Read) {
        self.reads.retain(|(k, _)| k != key);
        self.reads.push((key.to_string(), how));
    }

    #[cfg(not(test))]
    fn note(&mut self, _key: &str, _how: record::Read) {}

    pub fn has(&self, key: &str) -> bool {
        self.entries.iter().any(|(k, _, _)| k == key)
    }

    /// All entries not yet read, marking them used (for free-form maps).
    pub fn rest(&mut self) -> Vec<(&'a str, Range<usize>, &'a SVal)> {
        let mut out = vec![];
        for (i, (k, ks, v)) in self.entries.iter().enumerate() {
            if !self.used[i] {
                self.used[i] = true;
                out.push((k.as_str(), ks.clone(), v));
            }
        }
        out
    }

    pub fn str(&mut self, key: &str, diags: &mut Diagnostics) -> Option<Spanned<String>> {
        let v = self.get(key)?;
        self.note(key, record::Read::Str);
        expect_str(self.src, v, &format!("`{key}` in {}", self.what), diags)
    }

    pub fn req_str(
        &mut self,
        key: &str,
        hint: &str,
        diags: &mut Diagnostics,
    ) -> Option<Spanned<String>> {
        if !self.has(key) {
            diags.push(self.src.diag(
                self.span.clone(),
                format!("{} is missing the required key `{key}`", self.what),
                Some(hint.to_string()),
            ));
            return None;
        }
        self.str(key, diags)
    }

    pub fn bool(&mut self, key: &str, diags: &mut Diagnostics) -> Option<Spanned<bool>> {
        let v = self.get(key)?;
        self.note(key, record::Read::Bool);
        match v.kind {
            SKind::Bool(b) => Some(Spanned {
                value: b,
                span: v.span.clone(),
            }),
            _ => {
                diags.push(self.src.diag(
                    v.span.clone(),
                    format!(
                        "`{key}` in {} must be true or false, found {}",
                        self.what,
                        v.type_name()
                    ),
                    None,
                ));
                None
            }
        }
    }

    pub fn int(
        &mut self,
        key: &str,
        min: i64,
        max: i64,
        diags: &mut Diagnostics,
    ) -> Option<Spanned<i64>> {
        let v = self.get(key)?;
        self.note(key, record::Read::Int { min, max });
        expect_int(
            self.src,
            v,
            &format!("`{key}` in {}", self.what),
            min,
            max,
            diags,
        )
    }

    pub fn duration(&mut self, key: &str, diags: &mut Diagnostics) -> Option<Spanned<Duration>> {
        let v = self.get(key)?;
        self.note(key, record::Read::Duration);
        expect_duration(self.src, v, &format!("`{key}` in {}", self.what), diags)
    }

    pub fn str_list(&mut self, key: &str, diags: &mut Diagnostics) -> Option<Vec<Spanned<String>>> {
        let v = self.get(key)?;
        self.note(key, record::Read::StrList);
        let what = format!("`{key}` in {}", self.what);
        match &v.kind {
            SKind::Array(items) => Some(
                items
                    .iter()
                    .filter_map(|i| expect_str(self.src, i, &what, diags))
                    .collect(),
            ),
            _ => {
                diags.push(self.src.diag(
                    v.span.clone(),
                    format!(
                        "{what} must be an array of strings, found {}",
                        v.type_name()
                    ),
                    None,
                ));
                None
            }
        }
    }

    /// Report keys that were never read.
    pub fn finish(self, known: &[&str], diags: &mut Diagnostics) {
        #[cfg(test)]
        record::table(record::Table {
            span: self.span.clone(),
            known: known.iter().map(|k| k.to_string()).collect(),
            reads: self.reads.clone(),
        });
        for (i, (k, ks, _)) in self.entries.iter().enumerate() {
            if !self.used[i] {
                let hint = did_you_mean_key(k, known)
                    .unwrap_or_else(|| format!("known keys here: {}", known.join(", ")));
                diags.push(self.src.diag(
                    ks.clone(),
                    format!("unknown key `{k}` in {}", self.what),
                    Some(hint),
                ));
            }
        }
    }
}

/// What the parsers read, table by table: the `known` keys each `finish` was given and how each
/// key present was read. Test builds only: `schema`'s tests check the JSON Schemas against it,
/// so a key the parser learns that the schema does not know fails a test.
pub mod record {
    use std::ops::Range;

    /// How a key was read.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Read {
        /// Taken as it is (`get`): the parser checks the value itself.
        Any,
        Str,
        Bool,
        Int {
            min: i64,
            max: i64,
        },
        Duration,
        StrList,
    }

    /// One table the parser finished.
    #[derive(Clone, Debug)]
    pub struct Table {
        pub span: Range<usize>,
        pub known: Vec<String>,
        pub reads: Vec<(String, Read)>,
    }

    #[cfg(test)]
    thread_local! {
        static TABLES: std::cell::RefCell<Option<Vec<Table>>> = const { std::cell::RefCell::new(None) };
    }

    /// Start recording on this thread (forgetting what was recorded before).
    #[cfg(test)]
    pub fn start() {
        TABLES.with(|t| *t.borrow_mut() = Some(vec![]));
    }

    /// What was recorded since `start`; recording stops.
    #[cfg(test)]
    pub fn take() -> Vec<Table> {
        TABLES.with(|t| t.borrow_mut().take().unwrap_or_default())
    }

    #[cfg(test)]
    pub(super) fn table(t: Table) {
        TABLES.with(|all| {
            if let Some(all) = all.borrow_mut().as_mut() {
                all.push(t);
            }
        });
    }
}

/// A value with the byte span it came from in its file.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Spanned<T> {
    pub value: T,
    #[serde(skip)]
    pub span: Range<usize>,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Range<usize>) -> Self {
        Self { value, span }
    }
}

pub fn expect_str(
    src: &SourceFile,
    v: &SVal,
    what: &str,
    diags: &mut Diagnostics,
) -> Option<Spanned<String>> {
    match &v.kind {
        SKind::Str(s) => Some(Spanned {
            value: s.clone(),
            span: v.span.clone(),
        }),
        _ => {
            diags.push(src.diag(
                v.span.clone(),
                format!("{what} must be a string, found {}", v.type_name()),
                None,
            ));
            None
        }
    }
}

pub fn expect_int(
    src: &SourceFile,
    v: &SVal,
    what: &str,
    min: i64,
    max: i64,
    diags: &mut Diagnostics,
) -> Option<Spanned<i64>> {
    match v.kind {
        SKind::Int(i) if (min..=max).contains(&i) => Some(Spanned {
            value: i,
            span: v.span.clone(),
        }),
        SKind::Int(i) => {
            diags.push(src.diag(
                v.span.clone(),
                format!("{what} is {i}, outside {min}..={max}"),
                None,
            ));
            None
        }
        _ => {
            diags.push(src.diag(
                v.span.clone(),
                format!("{what} must be an integer, found {}", v.type_name()),
                None,
            ));
            None
        }
    }
}

pub fn expect_duration(
    src: &SourceFile,
    v: &SVal,
    what: &str,
    diags: &mut Diagnostics,
) -> Option<Spanned<Duration>> {
    let hint = Some("write a duration such as \"30s\", \"5m\" or \"1h 30m\"".to_string());
    match &v.kind {
        SKind::Str(s) => match crate::limits::parse_duration(s) {
            Ok(d) => Some(Spanned {
                value: d,
                span: v.span.clone(),
            }),
            Err(e) if e.starts_with("longer than") => {
                diags.push(src.diag(
                    v.span.clone(),
                    format!("{what}: `{s}` is {e}"),
                    Some(format!(
                        "durations are at most {}",
                        crate::limits::MAX_DURATION_TEXT
                    )),
                ));
                None
            }
            Err(e) => {
                diags.push(src.diag(
                    v.span.clone(),
                    format!("{what}: `{s}` is not a duration ({e})"),
                    hint,
                ));
                None
            }
        },
        _ => {
            diags.push(src.diag(
                v.span.clone(),
                format!("{what} must be a duration string, found {}", v.type_name()),
                hint,
            ));
            None
        }
    }
}
