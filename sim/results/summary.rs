//! Paths into `summary.json`: `workloads.shoppers.latency_ms.p99`, names with dots included.

use serde_json::Value;

/// Follows a dotted path through a JSON document, trying the longest key at each level
/// so names with dots still resolve.
pub fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    if path.is_empty() {
        return Some(v);
    }
    let obj = v.as_object()?;
    let mut best: Option<&'a Value> = None;
    for (k, child) in obj {
        if path == k {
            return Some(child);
        }
        if let Some(rest) = path
            .strip_prefix(k.as_str())
            .and_then(|r| r.strip_prefix('.'))
        {
            if let Some(found) = lookup(child, rest) {
                best = Some(found);
            }
        }
    }
    best
}

/// Every numeric leaf (booleans as 0 or 1) under `prefix`, in document order.
pub fn flatten(v: &Value, prefix: String, out: &mut Vec<(String, f64)>) {
    match v {
        Value::Object(m) => {
            for (k, c) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(c, p, out);
            }
        }
        Value::Number(n) => {
            if let Some(x) = n.as_f64() {
                out.push((prefix, x));
            }
        }
        Value::Bool(b) => out.push((prefix, *b as u8 as f64)),
        _ => {}
    }
}
