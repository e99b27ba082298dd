//! The generator of `scale.rs`'s layered systems (also used by `tests/report.rs`).

use std::fmt::Write as _;

const LAYERS: usize = 4;
const WORKLOADS: usize = 10;

/// The scenario text of a layered system with `services` services (a multiple of LAYERS).
pub fn layered(services: usize, duration_s: u32) -> String {
    let width = services / LAYERS;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "[sim]\nname = \"layered-{services}\"\nduration = \"{duration_s}s\"\nseed = 1\nbucket = \"10s\"\n"
    );
    s.push_str("[network]\nlatency = { dist = \"uniform\", min = \"0.2ms\", max = \"0.6ms\" }\n\n");
    s.push_str(
        "[policy.retry.r]\nmax_attempts = 2\nbackoff = { kind = \"exponential\", base = \"10ms\", cap = \"100ms\", jitter = \"full\" }\n\n",
    );
    s.push_str("[policy.breaker.b]\nkind = \"consecutive\"\nfailures = 5\nopen_for = \"5s\"\n\n");
    for layer in 0..LAYERS {
        for i in 0..width {
            let _ = writeln!(
                s,
                "[[service]]\nname = \"s{layer}-{i}\"\nreplicas = 3\nworkers = 4"
            );
            s.push_str("work = { dist = \"exp\", mean = \"2ms\" }\nerror_rate = 0.001\n");
            if layer + 1 < LAYERS {
                let (a, b) = ((2 * i) % width, (2 * i + 1) % width);
                let _ = writeln!(
                    s,
                    "calls = [{{ to = \"s{n}-{a}\", p = 0.5, timeout = \"200ms\", retry = \"r\", breaker = \"b\" }}, \
                     {{ to = \"s{n}-{b}\", p = 0.5, timeout = \"200ms\", retry = \"r\", breaker = \"b\" }}]",
                    n = layer + 1
                );
            }
            s.push('\n');
        }
    }
    for w in 0..WORKLOADS {
        let _ = writeln!(
            s,
            "[[workload]]\nname = \"w{w}\"\ntarget = \"s0-{}\"\ntimeout = \"2s\"\narrivals = {{ kind = \"poisson\", rate = 200 }}\n",
            w % width
        );
    }
    s
}
