//! Scenario files: TOML parsing, `--set` overrides, validation with file:line:column, static analysis.
//!
//! Loading has two stages, so that every problem is reported at once with its
//! place: serde parses the TOML into the mirror structs of [`raw`] (unknown keys
//! and wrong types stop here, with a did-you-mean), then [`validate`] checks the
//! meaning (unknown services, cycles, bad rates...) and resolves names to ids.

pub mod analysis;
pub mod diag;
pub mod raw;
pub mod validate;

use crate::model::spec::SystemSpec;
use crate::rng::stable_hash;
use diag::{improve_serde_message, line_col, place, Diagnostic, ScenarioError, Seg, TomlPath};
use raw::RawScenario;
use serde::Deserialize;
use std::path::Path;

/// A loaded, valid scenario.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Where it came from (for messages).
    pub file: String,
    /// The file's text.
    pub text: String,
    /// The overrides applied, as given.
    pub overrides: Vec<String>,
    /// The parsed document with defaults filled in and overrides applied.
    pub raw: RawScenario,
    /// The validated model.
    pub spec: SystemSpec,
    /// What is valid but probably not meant (a policy nothing uses), placed in the file.
    pub warnings: Vec<Diagnostic>,
}

impl Scenario {
    /// The warnings as `file:line:col: warning: path: message` lines.
    pub fn warning_lines(&self) -> Vec<String> {
        self.warnings
            .iter()
            .map(|d| {
                let place = match (d.line, d.column) {
                    (Some(l), Some(c)) => format!("{}:{l}:{c}", self.file),
                    (Some(l), None) => format!("{}:{l}", self.file),
                    _ => self.file.clone(),
                };
                format!("{place}: warning: {}: {}", d.path, d.message)
            })
            .collect()
    }
}

impl Scenario {
    /// A stable hash of the file's text and the overrides (`fnv1a64:` + hex), for manifests.
    pub fn hash(&self) -> String {
        let mut bytes = self.text.clone().into_bytes();
        for o in &self.overrides {
            bytes.push(0);
            bytes.extend_from_slice(o.as_bytes());
        }
        format!("fnv1a64:{:016x}", stable_hash(&bytes))
    }
}

/// Reads and validates a scenario file, applying `--set path=value` overrides.
pub fn load(path: &Path, overrides: &[String]) -> Result<Scenario, ScenarioError> {
    let file = path.display().to_string();
    let fail = |line, column, message| ScenarioError {
        file: file.clone(),
        diagnostics: vec![Diagnostic {
            path: String::new(),
            line,
            column,
            message,
        }],
    };
    let bytes =
        std::fs::read(path).map_err(|e| fail(None, None, format!("cannot read the file: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        let good = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let text = std::str::from_utf8(good).expect("valid up to here");
        let (line, column) = line_col(text, text.len());
        fail(
            Some(line),
            Some(column),
            "the file is not valid UTF-8 here: a scenario is UTF-8 text".to_string(),
        )
    })?;
    parse(&file, &text, overrides)
}

/// Parses and validates scenario `text`; `file` labels the messages.
pub fn parse(file: &str, text: &str, overrides: &[String]) -> Result<Scenario, ScenarioError> {
    let fail = |diagnostics: Vec<Diagnostic>| ScenarioError {
        file: file.to_string(),
        diagnostics,
    };
    // Stage 1a: the file as written, so that type errors point into it.
    let placed = |e: &toml::de::Error, in_text: &str| {
        let (line, column) = match e.span() {
            Some(s) => {
                let (l, c) = line_col(in_text, s.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        Diagnostic {
            path: String::new(),
            line,
            column,
            message: improve_serde_message(e.message()),
        }
    };
    let mut raw: RawScenario = match toml::from_str(text) {
        Ok(raw) => raw,
        Err(e) => {
            // Unknown keys are set aside so that every one of them, and every problem of
            // meaning in the rest, is reported at once.
            let Some((rest, mut diagnostics)) = without_unknown_keys(text, e.clone()) else {
                return Err(fail(vec![placed(&e, text)]));
            };
            if let Err(problems) = validate::validate(&rest) {
                diagnostics.extend(problems.into_iter().map(|p| {
                    let (line, column) = place(text, &p.path);
                    Diagnostic {
                        path: p.path.to_string(),
                        line,
                        column,
                        message: p.message,
                    }
                }));
            }
            return Err(fail(diagnostics));
        }
    };
    // Stage 1b: overrides, applied to the document tree and parsed again.
    // The document tree can refuse what the typed parse took: TOML's integers are 64-bit
    // signed, and an unsigned field took 18446744073709551615.
    let mut doc = toml::Value::Table(toml::from_str(text).map_err(|e| {
        let (line, column) = match e.span() {
            Some(s) => {
                let (l, c) = line_col(text, s.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        fail(vec![Diagnostic {
            path: String::new(),
            line,
            column,
            message: format!(
                "{} (TOML integers lie between -9223372036854775808 and 9223372036854775807)",
                improve_serde_message(e.message())
            ),
        }])
    })?);
    if !overrides.is_empty() {
        let mut diags = Vec::new();
        for o in overrides {
            if let Err(message) = apply_override(&mut doc, o) {
                diags.push(Diagnostic {
                    path: String::new(),
                    line: None,
                    column: None,
                    message: format!("--set {o}: {message}"),
                });
            }
        }
        if !diags.is_empty() {
            return Err(fail(diags));
        }
        raw = RawScenario::deserialize(doc.clone()).map_err(|e| {
            fail(vec![Diagnostic {
                path: String::new(),
                line: None,
                column: None,
                message: format!(
                    "after --set {}: {}",
                    overrides.join(" --set "),
                    improve_serde_message(e.message())
                ),
            }])
        })?;
    }
    // Stage 2: meaning. TOML allows `nan` and `inf`; no field of a scenario takes them.
    let mut problems = Vec::new();
    non_finite_floats(&doc, &mut Vec::new(), &mut problems);
    let spec = match validate::validate(&raw) {
        Ok(spec) if problems.is_empty() => Ok(spec),
        Ok(_) => Err(problems),
        Err(more) => {
            // A NaN is reported once, not again by the field's own range check.
            let nan_at: Vec<String> = problems.iter().map(|p| p.path.to_string()).collect();
            problems.extend(
                more.into_iter()
                    .filter(|p| !nan_at.contains(&p.path.to_string())),
            );
            Err(problems)
        }
    };
    let spec = spec.map_err(|problems: Vec<validate::Problem>| {
        fail(
            problems
                .into_iter()
                .map(|p| {
                    let (line, column) = place(text, &p.path);
                    Diagnostic {
                        path: p.path.to_string(),
                        line,
                        column,
                        message: p.message,
                    }
                })
                .collect(),
        )
    })?;
    let warnings = analysis::unused_policies(&spec)
        .into_iter()
        .map(|(kind, name)| {
            let path = TomlPath::default().key("policy").key(kind).key(&name);
            let (line, column) = place(text, &path);
            Diagnostic {
                path: path.to_string(),
                line,
                column,
                message: format!(
                    "no call, service or saga uses the {kind} policy {name:?}: kept for a --set variant, or a call's `{kind} = ...` is missing or misspelt"
                ),
            }
        })
        .chain(spec.retries.iter().filter(|r| r.retry_on.names_refused_stream()).map(|r| {
            let path = TomlPath::default()
                .key("policy")
                .key("retry")
                .key(&r.name)
                .key("retry_on");
            let (line, column) = place(text, &path);
            Diagnostic {
                path: path.to_string(),
                line,
                column,
                message: "\"refused-stream\" matches nothing here: faultline has no HTTP/2 REFUSED_STREAM (a connection pool at max_concurrent_streams queues the request); the other conditions apply".into(),
            }
        }))
        .collect();
    Ok(Scenario {
        file: file.to_string(),
        text: text.to_string(),
        overrides: overrides.to_vec(),
        raw,
        spec,
        warnings,
    })
}

/// The scenario without its unknown keys, and a diagnostic for each (placed in `text`), when
/// unknown keys are all that stop it from parsing; None otherwise. Each round removes the
/// key the parser names from the document tree and parses it again (at most 100 rounds).
fn without_unknown_keys(
    text: &str,
    mut err: toml::de::Error,
) -> Option<(RawScenario, Vec<Diagnostic>)> {
    let mut doc = toml::Value::Table(toml::from_str(text).ok()?);
    let mut current = text.to_string();
    let mut out = Vec::new();
    for _ in 0..100 {
        if !err.message().starts_with("unknown field") {
            return None;
        }
        let path = diag::path_at(&current, &err.span()?)?;
        let (line, column) = place(text, &path);
        out.push(Diagnostic {
            path: String::new(),
            line,
            column,
            message: improve_serde_message(err.message()),
        });
        remove_path(&mut doc, &path)?;
        current = toml::to_string(&doc).ok()?;
        match toml::from_str::<RawScenario>(&current) {
            Ok(raw) => return Some((raw, out)),
            Err(e) => err = e,
        }
    }
    None
}

/// Removes the key at `path` from a document tree.
fn remove_path(doc: &mut toml::Value, path: &TomlPath) -> Option<()> {
    let (last, parents) = path.0.split_last()?;
    let mut cur = doc;
    for s in parents {
        cur = match (s, cur) {
            (Seg::Key(k), toml::Value::Table(t)) => t.get_mut(k)?,
            (Seg::Index(i), toml::Value::Array(a)) => a.get_mut(*i)?,
            _ => return None,
        };
    }
    match (last, cur) {
        (Seg::Key(k), toml::Value::Table(t)) => t.remove(k).map(|_| ()),
        _ => None,
    }
}

/// A borrowed step of a path being walked (a [`Seg`] without its allocation).
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

/// Reports every float in the document that is NaN or infinite. The path is a stack of
/// borrowed keys grown and shrunk in place and made into a [`TomlPath`] only for a float
/// reported: a document of thousands of services is walked without an allocation per value.
fn non_finite_floats<'a>(
    v: &'a toml::Value,
    path: &mut Vec<Step<'a>>,
    out: &mut Vec<validate::Problem>,
) {
    match v {
        toml::Value::Float(f) if !f.is_finite() => out.push(validate::Problem {
            path: TomlPath(
                path.iter()
                    .map(|s| match s {
                        Step::Key(k) => Seg::Key(k.to_string()),
                        Step::Index(i) => Seg::Index(*i),
                    })
                    .collect(),
            ),
            message: format!("{f} is not a number this field can take: give a finite value"),
        }),
        toml::Value::Table(t) => {
            for (k, x) in t {
                path.push(Step::Key(k));
                non_finite_floats(x, path, out);
                path.pop();
            }
        }
        toml::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                path.push(Step::Index(i));
                non_finite_floats(x, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

/// Parses `a.b[2].c` or `service.orders.workers` (an array element picked by its `name`).
fn parse_override_path(doc: &toml::Value, path: &str) -> Result<TomlPath, String> {
    let mut segs = Vec::new();
    for part in path.split('.') {
        let (key, rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if key.is_empty() && rest.is_empty() {
            return Err("empty path segment".into());
        }
        if !key.is_empty() {
            segs.push(Seg::Key(key.to_string()));
        }
        let mut rest = rest;
        while let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']').ok_or("unclosed '['")?;
            let idx: usize = r[..end]
                .parse()
                .map_err(|_| format!("bad index {:?}", &r[..end]))?;
            segs.push(Seg::Index(idx));
            rest = &r[end + 1..];
        }
    }
    // Resolve `array.name` into `array[i]` where element i has that name.
    let mut out = Vec::new();
    let mut cur: Option<&toml::Value> = None;
    let mut table = doc.as_table();
    for seg in segs {
        match (&seg, cur) {
            (Seg::Key(k), Some(toml::Value::Array(items))) => {
                let i = items
                    .iter()
                    .position(|v| v.get("name").and_then(|n| n.as_str()) == Some(k.as_str()))
                    .ok_or_else(|| {
                        let names: Vec<&str> = items
                            .iter()
                            .filter_map(|v| v.get("name").and_then(|n| n.as_str()))
                            .collect();
                        format!(
                            "no element named {k:?} in {}; named: {}",
                            TomlPath(out.clone()),
                            names.join(", ")
                        )
                    })?;
                out.push(Seg::Index(i));
                cur = items.get(i);
            }
            (Seg::Key(k), _) => {
                out.push(seg.clone());
                cur = table.and_then(|t| t.get(k.as_str()));
            }
            (Seg::Index(i), Some(toml::Value::Array(items))) => {
                out.push(seg.clone());
                cur = items.get(*i);
            }
            (Seg::Index(_), _) => return Err(format!("{} is not an array", TomlPath(out.clone()))),
        }
        table = cur.and_then(|v| v.as_table());
    }
    Ok(TomlPath(out))
}

/// Sets `path=value` in `doc`. The value is read as TOML (`4`, `0.5`, `true`, `[1, 2]`,
/// `{ dist = "exp", mean = "2ms" }`), and as a plain string when it is not valid TOML (`20s`).
pub fn apply_override(doc: &mut toml::Value, assignment: &str) -> Result<(), String> {
    let (path, value) = assignment
        .split_once('=')
        .ok_or("expected path=value, e.g. sim.duration=20s")?;
    let (path, value) = (path.trim(), value.trim());
    let value: toml::Value = match toml::from_str::<toml::Table>(&format!("v = {value}")) {
        Ok(mut t) => t.remove("v").expect("just parsed"),
        Err(_) => toml::Value::String(value.to_string()),
    };
    let segs = parse_override_path(doc, path)?.0;
    let (last, parents) = segs.split_last().ok_or("empty path")?;
    let mut cur: &mut toml::Value = doc;
    for (depth, s) in parents.iter().enumerate() {
        cur = match (s, cur) {
            (Seg::Key(k), toml::Value::Table(t)) => {
                // `[policy.KIND.NAME]` tables are named by the scenario: a path through a
                // name it does not define would create a policy nobody uses.
                if depth == 2
                    && matches!(&segs[0], Seg::Key(p) if p == "policy")
                    && !t.contains_key(k)
                {
                    let kind = match &segs[1] {
                        Seg::Key(kind) => kind.as_str(),
                        Seg::Index(_) => "?",
                    };
                    let names: Vec<&str> = t.keys().map(String::as_str).collect();
                    return Err(format!(
                        "there is no [policy.{kind}.{k}] in the scenario, so {path} would set nothing any call uses; {}",
                        if names.is_empty() {
                            format!("it defines no {kind} policy")
                        } else {
                            format!("its {kind} policies: {}", names.join(", "))
                        }
                    ));
                }
                t.entry(k.clone())
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            }
            (Seg::Index(i), toml::Value::Array(a)) => a
                .get_mut(*i)
                .ok_or_else(|| format!("index {i} is out of range"))?,
            _ => {
                return Err(format!(
                    "{path}: the path goes through a value that is not a table"
                ))
            }
        };
    }
    match (last, cur) {
        (Seg::Key(k), toml::Value::Table(t)) => {
            t.insert(k.clone(), value);
        }
        (Seg::Index(i), toml::Value::Array(a)) if *i < a.len() => a[*i] = value,
        _ => return Err(format!("{path}: cannot set this path")),
    }
    Ok(())
}
