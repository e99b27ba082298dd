//! The layering of ../shared/docs/DESIGN.md, checked on the sources: no import runs up.
//!
//! Each rule names a directory (or file) under `sim/` and the crate modules its code may
//! not name. A `crate::X` path on any line that is not a comment counts, whether in a `use`
//! or inline. The lower layers (engine, policies) know nothing of the world that drives
//! them; results and the report know results and scenarios, never the model or the API
//! that runs them.

use std::path::{Path, PathBuf};

/// (where, modules it may not name, why).
const RULES: &[(&str, &[&str], &str)] = &[
    (
        "sim/engine",
        &[
            "model", "policy", "scenario", "report", "api", "sweep", "check", "explore", "import",
            "cli", "metrics",
        ],
        "the engine is generic: it never names a service, a request or a policy",
    ),
    (
        "sim/policy",
        &[
            "model", "engine", "scenario", "report", "api", "sweep", "check", "explore", "import",
            "cli",
        ],
        "policies are sans-IO machines: `now` and randomness are arguments, decisions are returned",
    ),
    (
        "sim/results",
        &[
            "model", "engine", "scenario", "report", "api", "sweep", "check", "explore", "import",
            "cli",
        ],
        "results know nothing of the world that produced them",
    ),
    (
        "sim/report",
        &[
            "model", "engine", "api", "sweep", "check", "explore", "import", "cli",
        ],
        "the report reads results and scenarios; it never runs anything",
    ),
    (
        "sim/explore",
        &["cli"],
        "explore drives runs and checks like sweep; the command line drives it",
    ),
    (
        "sim/import",
        &["model", "engine", "api", "sweep", "check", "cli"],
        "import reads configuration into scenario tables; it runs nothing",
    ),
    (
        "sim/time.rs",
        &[
            "model", "engine", "policy", "scenario", "report", "api", "sweep", "check", "explore",
            "import", "cli",
        ],
        "time is the bottom layer",
    ),
    (
        "sim/rng.rs",
        &[
            "model", "engine", "policy", "scenario", "report", "api", "sweep", "check", "explore",
            "import", "cli",
        ],
        "random streams are the bottom layer",
    ),
    (
        "sim/ids.rs",
        &[
            "model", "engine", "policy", "scenario", "report", "api", "sweep", "check", "explore",
            "import", "cli", "results",
        ],
        "typed ids are the bottom layer",
    ),
];

fn rust_files(path: &Path, out: &mut Vec<PathBuf>) {
    if path.is_file() {
        out.push(path.to_path_buf());
        return;
    }
    let mut entries: Vec<_> = std::fs::read_dir(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every `crate::<module>` named in code (not comments) of `text`, with its line number.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(k) = rest.find("crate::") {
            let after = &rest[k + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            // `use crate::{a, b}` names several.
            if name.is_empty() && after.starts_with('{') {
                let group = &after[1..after.find('}').unwrap_or(after.len())];
                for part in group.split(',') {
                    let n = part.trim().split("::").next().unwrap_or("").trim();
                    if !n.is_empty() {
                        found.push((i + 1, n.to_string()));
                    }
                }
            } else if !name.is_empty() {
                found.push((i + 1, name));
            }
            rest = after;
        }
    }
    found
}

/// The violations of every rule, one line each.
fn violations() -> Vec<String> {
    let mut bad = Vec::new();
    for (dir, forbidden, why) in RULES {
        let mut files = Vec::new();
        rust_files(Path::new(dir), &mut files);
        assert!(!files.is_empty(), "{dir}: no sources found");
        for f in files {
            let text = std::fs::read_to_string(&f).expect("readable source");
            for (line, module) in crate_paths(&text) {
                if forbidden.contains(&module.as_str()) {
                    bad.push(format!(
                        "{}:{line}: names crate::{module}, which {dir} may not import ({why})",
                        f.display()
                    ));
                }
            }
        }
    }
    bad
}

#[test]
fn no_import_runs_up_the_layers() {
    let bad = violations();
    assert!(bad.is_empty(), "layering broken:\n{}", bad.join("\n"));
}

#[test]
fn the_scanner_sees_every_form_of_import() {
    let text = "use crate::model::World;\n\
                // crate::api in a comment does not count\n\
                use crate::{time::SimTime, report};\n\
                let x = crate::sweep::run(); // and crate::cli here is a comment\n";
    let names: Vec<(usize, String)> = crate_paths(text);
    let expect = [(1, "model"), (3, "time"), (3, "report"), (4, "sweep")];
    assert_eq!(
        names,
        expect
            .iter()
            .map(|&(l, n)| (l, n.to_string()))
            .collect::<Vec<_>>()
    );
}
