//! Scenario diagnostics: TOML paths, their file/line/column, and did-you-mean suggestions.

use std::fmt;
use toml::de::{DeTable, DeValue};

/// One segment of a TOML path: a key or an array index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Seg {
    /// `.key`
    Key(String),
    /// `[index]`
    Index(usize),
}

/// A path into the scenario document, e.g. `service[1].calls[0].to`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TomlPath(pub Vec<Seg>);

impl TomlPath {
    /// This path extended by a key.
    pub fn key(&self, k: &str) -> TomlPath {
        let mut p = self.0.clone();
        p.push(Seg::Key(k.to_string()));
        TomlPath(p)
    }
    /// This path extended by an index.
    pub fn index(&self, i: usize) -> TomlPath {
        let mut p = self.0.clone();
        p.push(Seg::Index(i));
        TomlPath(p)
    }
}

impl fmt::Display for TomlPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// One problem found in a scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    /// Where in the document (empty for whole-document problems).
    pub path: String,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// What is wrong, and what would be valid.
    pub message: String,
}

/// A scenario that cannot run: every problem found, each with its place.
/// Always fatal for the run; the CLI maps it to exit code 2.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct ScenarioError {
    /// The file (or label) the scenario came from.
    pub file: String,
    /// The problems, in document order of discovery.
    pub diagnostics: Vec<Diagnostic>,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.file)?;
            if let Some(l) = d.line {
                write!(f, ":{l}")?;
                if let Some(c) = d.column {
                    write!(f, ":{c}")?;
                }
            }
            write!(f, ": error: ")?;
            if !d.path.is_empty() {
                write!(f, "{}: ", d.path)?;
            }
            write!(f, "{}", d.message)?;
        }
        Ok(())
    }
}

/// 1-based (line, column) of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let col = before.rfind('\n').map_or(offset, |nl| offset - nl - 1) + 1;
    (line, col)
}

/// The 1-based line and column of `path` in the TOML `text`, where it can be found.
pub fn place(text: &str, path: &TomlPath) -> (Option<usize>, Option<usize>) {
    match locate(text, path) {
        Some(s) => {
            let (l, c) = line_col(text, s.start);
            (Some(l), Some(c))
        }
        None => (None, None),
    }
}

/// The byte span of the deepest existing prefix of `path` in the TOML `text`.
pub fn locate(text: &str, path: &TomlPath) -> Option<std::ops::Range<usize>> {
    let doc = DeTable::parse(text).ok()?;
    let mut span = None;
    let mut table: Option<&DeTable> = Some(doc.get_ref());
    let mut array: Option<&toml::de::DeArray> = None;
    for seg in &path.0 {
        let value = match (seg, table, array) {
            (Seg::Key(k), Some(t), _) => match t
                .iter()
                .find(|(key, _)| key.get_ref().as_ref() == k.as_str())
            {
                Some((key, v)) => {
                    span = Some(key.span());
                    v
                }
                None => break,
            },
            (Seg::Index(i), _, Some(a)) => match a.get(*i) {
                Some(v) => {
                    span = Some(v.span());
                    v
                }
                None => break,
            },
            _ => break,
        };
        table = None;
        array = None;
        match value.get_ref() {
            DeValue::Table(t) => table = Some(t),
            DeValue::Array(a) => array = Some(a),
            _ => {}
        }
    }
    span
}

/// The path of the key whose span is `span` in the TOML `text` (the place a serde error
/// points at), if any.
pub fn path_at(text: &str, span: &std::ops::Range<usize>) -> Option<TomlPath> {
    fn walk(v: &DeValue<'_>, path: TomlPath, span: &std::ops::Range<usize>) -> Option<TomlPath> {
        match v {
            DeValue::Table(t) => {
                for (key, value) in t.iter() {
                    let here = path.key(key.get_ref().as_ref());
                    if key.span() == *span {
                        return Some(here);
                    }
                    if let Some(p) = walk(value.get_ref(), here, span) {
                        return Some(p);
                    }
                }
                None
            }
            DeValue::Array(a) => a
                .iter()
                .enumerate()
                .find_map(|(i, x)| walk(x.get_ref(), path.index(i), span)),
            _ => None,
        }
    }
    let doc = DeTable::parse(text).ok()?;
    let root = DeValue::Table(doc.get_ref().clone());
    walk(&root, TomlPath::default(), span)
}

/// The nearest of `candidates` to `word`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(2);
    candidates
        .into_iter()
        .map(|c| (strsim::levenshtein(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, c)| (*d, *c))
        .map(|(_, c)| c)
}

/// The one message for a name nobody defined: `unknown {what} "x" (did you mean "y"?);
/// {label}: a, b`, or `...; {none}` when nothing of the kind is defined (say how to add one).
pub fn unknown(what: &str, word: &str, known: &[&str], label: &str, none: &str) -> String {
    let hint = did_you_mean(word, known.iter().copied())
        .map(|s| format!(" (did you mean {s:?}?)"))
        .unwrap_or_default();
    let tail = if known.is_empty() {
        none.to_string()
    } else {
        format!("{label}: {}", known.join(", "))
    };
    format!("unknown {what} {word:?}{hint}; {tail}")
}

/// Adds a suggestion to serde's "unknown field `x`, expected one of `a`, `b`" messages.
pub fn improve_serde_message(message: &str) -> String {
    let plain = in_scenario_terms(message.trim());
    let message = plain.as_str();
    let Some(rest) = message
        .strip_prefix("unknown field `")
        .or_else(|| message.strip_prefix("unknown variant `"))
    else {
        return message.to_string();
    };
    let Some((word, tail)) = rest.split_once('`') else {
        return message.to_string();
    };
    let expected: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
    match did_you_mean(word, expected.iter().copied()) {
        Some(s) => format!("{message} (did you mean `{s}`?)"),
        None => message.to_string(),
    }
}

/// serde's words for types ("expected u32", "invalid type: string") in a scenario's terms.
fn in_scenario_terms(message: &str) -> String {
    let mut m = message.to_string();
    for (rust, ours) in [
        ("expected u8", "expected a whole number from 0 to 255"),
        ("expected u16", "expected a whole number from 0 to 65535"),
        (
            "expected u32",
            "expected a whole number from 0 to 4294967295",
        ),
        ("expected u64", "expected a whole number, 0 or more"),
        ("expected usize", "expected a whole number, 0 or more"),
        ("expected i32", "expected a whole number"),
        ("expected i64", "expected a whole number"),
        ("expected f32", "expected a number"),
        ("expected f64", "expected a number"),
        ("expected a string", "expected text in quotes"),
        ("expected a sequence", "expected a list, [ ... ]"),
        ("expected a map", "expected a table, { ... }"),
        ("invalid type: string ", "got the text "),
        ("invalid type: integer ", "got the whole number "),
        ("invalid type: floating point ", "got the number "),
        ("invalid type: boolean ", "got "),
        ("invalid type: sequence", "got a list"),
        ("invalid type: map", "got a table"),
        ("invalid value: integer ", "got "),
    ] {
        // Only whole words: "expected u32" but not "expected u320".
        let mut out = String::new();
        let mut rest = m.as_str();
        while let Some(k) = rest.find(rust) {
            let after = &rest[k + rust.len()..];
            let whole = rust.ends_with(' ') || !after.starts_with(|c: char| c.is_alphanumeric());
            out.push_str(&rest[..k]);
            out.push_str(if whole { ours } else { rust });
            rest = after;
        }
        out.push_str(rest);
        m = out;
    }
    // serde quotes numbers and booleans in backticks: `-1`; a scenario writes them bare.
    let parts: Vec<&str> = m.split('`').collect();
    if parts.len() % 2 == 0 {
        return m;
    }
    let mut out = String::new();
    for (k, p) in parts.iter().enumerate() {
        let bare = p.parse::<f64>().is_ok() || *p == "true" || *p == "false";
        if k % 2 == 1 && !bare {
            out.push('`');
            out.push_str(p);
            out.push('`');
        } else {
            out.push_str(p);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_errors_speak_of_numbers_and_text_not_rust_types() {
        assert_eq!(
            improve_serde_message("invalid type: string \"abc\", expected u32"),
            "got the text \"abc\", expected a whole number from 0 to 4294967295"
        );
        assert_eq!(
            improve_serde_message("invalid value: integer `-1`, expected u32"),
            "got -1, expected a whole number from 0 to 4294967295"
        );
        assert_eq!(
            improve_serde_message("invalid type: floating point `1.5`, expected u64"),
            "got the number 1.5, expected a whole number, 0 or more"
        );
        assert_eq!(
            improve_serde_message("invalid type: integer `5`, expected a string"),
            "got the whole number 5, expected text in quotes"
        );
    }

    #[test]
    fn locates_nested_paths() {
        let text = "[sim]\nname = \"x\"\n\n[[service]]\nname = \"a\"\n\n[[service]]\nname = \"b\"\ncalls = [{ to = \"zz\" }]\n";
        let p = TomlPath::default()
            .key("service")
            .index(1)
            .key("calls")
            .index(0)
            .key("to");
        assert_eq!(p.to_string(), "service[1].calls[0].to");
        let span = locate(text, &p).unwrap();
        assert_eq!(line_col(text, span.start), (9, 12));
    }

    #[test]
    fn unknown_names_suggest_and_list() {
        let m = unknown("queue", "ordrs", &["orders", "refunds"], "queues", "none");
        assert_eq!(
            m,
            "unknown queue \"ordrs\" (did you mean \"orders\"?); queues: orders, refunds"
        );
        let m = unknown("saga", "s", &[], "sagas", "sagas: none (add a [[saga]])");
        assert_eq!(m, "unknown saga \"s\"; sagas: none (add a [[saga]])");
    }

    #[test]
    fn suggests_near_keys() {
        let m = improve_serde_message(
            "unknown field `replcas`, expected one of `name`, `replicas`, `workers`",
        );
        assert!(m.ends_with("(did you mean `replicas`?)"), "{m}");
        let m = improve_serde_message("unknown field `zzzzzz`, expected `name` or `replicas`");
        assert!(!m.contains("did you mean"), "{m}");
    }
}
