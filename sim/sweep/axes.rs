//! Sweep axes: `path=a,b,c`, ranges (`50ms..500ms step 50ms`, `1..1000 log 4`), grids and
//! zips, expanded into points (each a list of `path=value` overrides).

use crate::time::{parse_duration, SimDuration};

/// One swept parameter and its values (override text, as `--set` takes it).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Axis {
    /// The override path.
    pub path: String,
    /// Its values.
    pub values: Vec<String>,
}

/// Splits `a,b,{c,d},"e,f"` on the commas outside brackets, braces and quotes.
fn split_top(s: &str) -> Vec<String> {
    let (mut out, mut cur, mut depth, mut quoted) = (Vec::new(), String::new(), 0i32, false);
    for c in s.chars() {
        match c {
            '"' => quoted = !quoted,
            '[' | '{' if !quoted => depth += 1,
            ']' | '}' if !quoted => depth -= 1,
            ',' if !quoted && depth == 0 => {
                out.push(cur.trim().to_string());
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(c);
    }
    out.push(cur.trim().to_string());
    out.into_iter().filter(|v| !v.is_empty()).collect()
}

/// A number as short as it stays exact to 9 decimals (`0.1`, `250`, `1.5`).
fn num_text(x: f64) -> String {
    let s = format!("{:.9}", x);
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" {
        "0".into()
    } else {
        s.to_string()
    }
}

/// Expands a range `lo..hi step s` or `lo..hi log n` (durations or numbers).
fn range(spec: &str) -> Result<Vec<String>, String> {
    let (bounds, rest) = spec
        .split_once(' ')
        .ok_or_else(|| format!("{spec:?}: a range is `lo..hi step s` or `lo..hi log n`"))?;
    let (lo, hi) = bounds
        .split_once("..")
        .ok_or_else(|| format!("{spec:?}: expected lo..hi"))?;
    let (kind, arg) = rest
        .trim()
        .split_once(' ')
        .ok_or_else(|| format!("{spec:?}: after the bounds, `step s` or `log n`"))?;
    let durations = lo.trim().ends_with(|c: char| c.is_ascii_alphabetic());
    let value = |t: &str| -> Result<f64, String> {
        if durations {
            parse_duration(t.trim())
                .map(|d| d.0 as f64)
                .map_err(|e| format!("{t:?}: {e}"))
        } else {
            t.trim()
                .parse::<f64>()
                .map_err(|_| format!("{t:?} is not a number"))
        }
    };
    let (lo, hi) = (value(lo)?, value(hi)?);
    if hi < lo {
        return Err(format!("{spec:?}: hi must not be below lo"));
    }
    let xs: Vec<f64> = match kind {
        "step" => {
            let s = value(arg)?;
            if s <= 0.0 {
                return Err(format!("{spec:?}: the step must be positive"));
            }
            let n = ((hi - lo) / s + 1e-9).floor() as usize + 1;
            if n > 10_000 {
                return Err(format!("{spec:?}: {n} values; at most 10000"));
            }
            (0..n).map(|k| lo + s * k as f64).collect()
        }
        "log" => {
            let n: usize = arg
                .trim()
                .parse()
                .map_err(|_| format!("{spec:?}: `log n` needs a count"))?;
            if n < 2 || lo <= 0.0 {
                return Err(format!("{spec:?}: a log range needs n >= 2 and lo > 0"));
            }
            let (a, b) = (lo.ln(), hi.ln());
            (0..n)
                .map(|k| (a + (b - a) * k as f64 / (n - 1) as f64).exp())
                .collect()
        }
        other => return Err(format!("{spec:?}: {other:?} is not `step` or `log`")),
    };
    Ok(xs
        .into_iter()
        .map(|x| {
            if durations {
                SimDuration(x.round() as u64).to_string()
            } else if kind == "log" && lo.fract() == 0.0 && hi.fract() == 0.0 {
                num_text(x.round())
            } else {
                num_text(x)
            }
        })
        .collect())
}

/// Parses `path=a,b,c` or `path=lo..hi step s` (the `--param` syntax).
pub fn parse_axis(arg: &str) -> Result<Axis, String> {
    let (path, spec) = arg
        .split_once('=')
        .ok_or_else(|| format!("{arg:?}: expected path=a,b,c or path=lo..hi step s"))?;
    let spec = spec.trim();
    let values = if spec.contains("..") && (spec.contains(" step ") || spec.contains(" log ")) {
        range(spec)?
    } else {
        split_top(spec)
    };
    if values.is_empty() {
        return Err(format!("{arg:?}: no values"));
    }
    Ok(Axis {
        path: path.trim().to_string(),
        values,
    })
}

/// A TOML value from a `[sweep]` table as override text.
pub fn toml_values(path: &str, v: &toml::Value) -> Result<Axis, String> {
    match v {
        toml::Value::Array(a) => Ok(Axis {
            path: path.to_string(),
            values: a
                .iter()
                .map(|x| match x {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect(),
        }),
        toml::Value::String(s) => parse_axis(&format!("{path}={s}")),
        _ => Err(format!(
            "sweep: {path:?} needs an array of values or a range string"
        )),
    }
}

/// The points of a sweep: every combination of the grid axes (the first varies slowest),
/// each combined with every position of the zipped axes, which move together.
pub fn points(grid: &[Axis], zip: &[Axis]) -> Result<Vec<Vec<(String, String)>>, String> {
    if grid.is_empty() && zip.is_empty() {
        return Err("nothing to sweep: give --param path=a,b,c (or a [sweep] table)".into());
    }
    if let Some(first) = zip.first() {
        if let Some(z) = zip.iter().find(|z| z.values.len() != first.values.len()) {
            return Err(format!(
                "zipped parameters move together and need as many values: {} has {}, {} has {}",
                first.path,
                first.values.len(),
                z.path,
                z.values.len()
            ));
        }
    }
    let mut out: Vec<Vec<(String, String)>> = vec![Vec::new()];
    for a in grid {
        out = out
            .into_iter()
            .flat_map(|p| {
                a.values.iter().map(move |v| {
                    let mut q = p.clone();
                    q.push((a.path.clone(), v.clone()));
                    q
                })
            })
            .collect();
    }
    if let Some(first) = zip.first() {
        out = out
            .into_iter()
            .flat_map(|p| {
                (0..first.values.len()).map(move |k| {
                    let mut q = p.clone();
                    for z in zip {
                        q.push((z.path.clone(), z.values[k].clone()));
                    }
                    q
                })
            })
            .collect();
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_ranges_and_logs() {
        assert_eq!(
            parse_axis("a=1,2,{x = 1, y = 2}").unwrap().values,
            vec!["1", "2", "{x = 1, y = 2}"]
        );
        assert_eq!(
            parse_axis("t=50ms..200ms step 50ms").unwrap().values,
            vec!["50ms", "100ms", "150ms", "200ms"]
        );
        assert_eq!(
            parse_axis("p=0.1..0.3 step 0.1").unwrap().values,
            vec!["0.1", "0.2", "0.3"]
        );
        assert_eq!(
            parse_axis("n=1..1000 log 4").unwrap().values,
            vec!["1", "10", "100", "1000"]
        );
        assert!(parse_axis("n=5..1 step 1").is_err());
        assert!(parse_axis("n").is_err());
    }

    #[test]
    fn grids_multiply_and_zips_move_together() {
        let a = parse_axis("a=1,2").unwrap();
        let b = parse_axis("b=x,y,z").unwrap();
        let p = points(&[a.clone(), b.clone()], &[]).unwrap();
        assert_eq!(p.len(), 6);
        assert_eq!(
            p[1],
            vec![("a".into(), "1".into()), ("b".into(), "y".into())]
        );
        let c = parse_axis("c=7,8,9").unwrap();
        let z = points(std::slice::from_ref(&a), &[b, c]).unwrap();
        assert_eq!(z.len(), 6);
        assert_eq!(
            z[4][1..],
            [("b".into(), "y".into()), ("c".into(), "8".into())]
        );
        assert!(points(&[], &[a, parse_axis("d=1").unwrap()]).is_err());
    }
}
