//! `faultline import istio` on the command line: read the YAML files, then print the
//! fragment or write the scenario with the imported tables (validated before it is written).

use super::{load, EXIT_FAILED, EXIT_INVALID, EXIT_OK};
use faultline::import::istio;
use faultline::scenario;
use std::path::PathBuf;

pub fn istio(
    files: &[PathBuf],
    into: Option<&std::path::Path>,
    out: Option<&std::path::Path>,
) -> i32 {
    let mut im = istio::Imported::default();
    let mut sources = Vec::new();
    for f in files {
        let text = match std::fs::read_to_string(f) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: {}: {e}", f.display());
                return EXIT_INVALID;
            }
        };
        if let Err(e) = istio::read(&f.display().to_string(), &text, &mut im) {
            eprintln!("error: {e}");
            return EXIT_INVALID;
        }
        sources.push(f.display().to_string());
    }
    let text = match into {
        None => istio::fragment(&im, &sources),
        Some(path) => {
            let scn = match load(path, Vec::new(), None) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("{e}");
                    return EXIT_INVALID;
                }
            };
            let mut raw = scn.raw.clone();
            let notes = istio::apply(&mut raw, &im);
            let body = match toml::to_string(&raw) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("error: {e}");
                    return EXIT_FAILED;
                }
            };
            let mut text = format!(
                "# {} with the policies of {} (faultline import istio; comments of the original are not kept).\n",
                path.display(),
                sources.join(", ")
            );
            for n in notes {
                text.push_str(&format!("# Not applied: {n}\n"));
            }
            for (doc, field, why) in &im.unmapped {
                text.push_str(&format!("# Not mapped: {doc}: {field}: {why}\n"));
            }
            text.push('\n');
            text.push_str(&body);
            // What is written must run.
            if let Err(e) = scenario::parse(&path.display().to_string(), &text, &[]) {
                eprintln!("error: the scenario with the imported policies does not validate (please report it):\n{e}");
                return EXIT_FAILED;
            }
            text
        }
    };
    for (doc, field, why) in &im.unmapped {
        eprintln!("not mapped: {doc}: {field}: {why}");
    }
    match out {
        Some(p) => match std::fs::write(p, &text) {
            Ok(()) => {
                eprintln!("faultline: wrote {}", p.display());
                EXIT_OK
            }
            Err(e) => {
                eprintln!("error: {}: {e}", p.display());
                EXIT_FAILED
            }
        },
        None => {
            print!("{text}");
            EXIT_OK
        }
    }
}
