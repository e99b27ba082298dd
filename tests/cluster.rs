//! Cluster bundles (`sweep --emit slurm|k8s --out DIR`) run as written: each job's command,
//! run here the way the scheduler would run it, reproduces a local sweep byte for byte, with
//! an awkward scenario name and a path holding a space; the manifests pass the Kubernetes
//! schemas; `merge` needs nothing but the shard directories and can wait for them.
//!
//! The real-Slurm run of the same bundle is `tests/slurm.sh`, which CI runs.

use serde_json::Value;
mod common;

use common::tree;
use std::path::{Path, PathBuf};
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_faultline");

fn cli_in(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .current_dir(dir)
        .args(args)
        .output()
        .expect("runs")
}

fn ok(o: &std::process::Output) -> String {
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(o.status.success(), "{err}");
    err
}

/// A fresh directory whose name holds a space.
fn tmp(name: &str) -> PathBuf {
    let d = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("faultline cluster {} {name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The quickstart, renamed to something no scheduler likes, in a file whose name holds a
/// space; the sweep's arguments, with quotes, a dollar and a backtick in a fixed override.
fn awkward(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string("scenarios/quickstart.toml").unwrap();
    let text = text.replacen(
        "name = \"quickstart\"",
        "name = \"it's a \\\"Test\\\" $(x) `y` ü\"",
        1,
    );
    assert!(text.contains("$(x)"));
    std::fs::write(dir.join("my scenario.toml"), text).unwrap();
    [
        "sweep",
        "my scenario.toml",
        "--set",
        "sim.duration=20s",
        "--set",
        "sim.name=it's a \"Test\" $(x) $(SHARD) $$ `y` ü $HOME",
        "--param",
        "service.payment.workers=8,16,24",
        "--replications",
        "2",
    ]
    .map(String::from)
    .to_vec()
}

/// The awkward sweep, run locally with `--jobs 2`: the bytes the bundles must reproduce.
fn local(dir: &Path, args: &[String]) -> Vec<(String, Vec<u8>)> {
    let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
    a.extend(["--out", "local", "--jobs", "2"]);
    ok(&cli_in(dir, &a));
    tree(&dir.join("local"))
}

fn emit(dir: &Path, args: &[String], kind: &str, shards: &str, out: &str) -> String {
    let mut a: Vec<&str> = args.iter().map(String::as_str).collect();
    a.extend(["--emit", kind, "--shards", shards, "--out", out]);
    let o = cli_in(dir, &a);
    ok(&o);
    String::from_utf8(o.stdout).unwrap()
}

#[test]
fn the_slurm_bundle_runs_as_its_scheduler_would_run_it() {
    let dir = tmp("slurm");
    let a = awkward(&dir);
    let want = local(&dir, &a);
    emit(&dir, &a, "slurm", "3", "the bundle");
    let b = dir.join("the bundle");
    for f in [
        "README.md",
        "scenario.toml",
        "sweep.sbatch",
        "merge.sbatch",
        "submit.sh",
    ] {
        assert!(b.join(f).is_file(), "{f} missing");
    }
    let script = std::fs::read_to_string(b.join("sweep.sbatch")).unwrap();
    let sbatch: Vec<&str> = script
        .lines()
        .filter(|l| l.starts_with("#SBATCH"))
        .collect();
    assert!(sbatch.contains(&"#SBATCH --array=0-2"), "{sbatch:?}");
    for line in &sbatch {
        // sbatch refuses a job name with a space, and opens --output before the job runs.
        assert!(
            !line.trim_end().contains(' ') || line.matches(' ').count() == 1,
            "{line}"
        );
        if let Some(out) = line.strip_prefix("#SBATCH --output=") {
            let parent = Path::new(out).parent().unwrap();
            assert!(b.join(parent).is_dir(), "{out}: its directory must exist");
        }
    }
    // Each array task as Slurm runs it: bash, in the submit directory, with its task id.
    for k in 0..3 {
        let o = Command::new("bash")
            .arg("sweep.sbatch")
            .current_dir(&b)
            .env("SLURM_ARRAY_TASK_ID", k.to_string())
            .env("FAULTLINE", BIN)
            .output()
            .unwrap();
        ok(&o);
    }
    // The scenario file is gone: the shards and sweep.json are all the merge needs.
    std::fs::remove_file(dir.join("my scenario.toml")).unwrap();
    let o = Command::new("bash")
        .arg("merge.sbatch")
        .current_dir(&b)
        .env("FAULTLINE", BIN)
        .output()
        .unwrap();
    ok(&o);
    assert_eq!(
        tree(&b.join("sweep")),
        want,
        "the bundle's sweep differs from a local one"
    );
    // A job submitted from elsewhere says where to run it.
    let o = Command::new("bash")
        .arg(b.join("sweep.sbatch"))
        .current_dir(&dir)
        .env("SLURM_ARRAY_TASK_ID", "0")
        .env("FAULTLINE", BIN)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("submit.sh"));
    std::fs::remove_dir_all(dir).ok();
}

/// Kubernetes' `$(VAR)` expansion of a container's command and args: `$$` is a `$`, a
/// defined `$(VAR)` its value, anything else as written.
fn expand(s: &str, env: &[(String, String)]) -> String {
    let (b, mut out, mut i) = (s.as_bytes(), String::new(), 0);
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() {
            if b[i + 1] == b'$' {
                out.push('$');
                i += 2;
                continue;
            }
            if b[i + 1] == b'(' {
                if let Some(end) = s[i + 2..].find(')') {
                    let name = &s[i + 2..i + 2 + end];
                    if let Some((_, v)) = env.iter().find(|(k, _)| k == name) {
                        out.push_str(v);
                        i += 3 + end;
                        continue;
                    }
                }
            }
        }
        let c = s[i..].chars().next().unwrap();
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// Runs a Job's container here as its pod would: the env it declares (the completion index
/// from the pod's annotation), its `$(VAR)`s expanded, each volume mount a local directory.
fn run_pod(job: &Value, index: usize, mounts: &[(&str, PathBuf)]) {
    let c = &job["spec"]["template"]["spec"]["containers"][0];
    let env: Vec<(String, String)> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let path = e["valueFrom"]["fieldRef"]["fieldPath"].as_str().unwrap();
            assert_eq!(
                path,
                "metadata.annotations['batch.kubernetes.io/job-completion-index']"
            );
            (e["name"].as_str().unwrap().to_string(), index.to_string())
        })
        .collect();
    let words: Vec<String> = c["command"]
        .as_array()
        .unwrap()
        .iter()
        .chain(c["args"].as_array().unwrap())
        .map(|w| expand(w.as_str().unwrap(), &env))
        .collect();
    assert_eq!(words[0], "faultline");
    let local = |w: &str| {
        for (at, dir) in mounts {
            if let Some(rest) = w.strip_prefix(at) {
                return format!("{}{rest}", dir.display());
            }
        }
        w.to_string()
    };
    for m in c["volumeMounts"].as_array().unwrap() {
        let at = m["mountPath"].as_str().unwrap();
        assert!(mounts.iter().any(|(p, _)| *p == at), "unmapped mount {at}");
    }
    let o = Command::new(BIN)
        .args(words[1..].iter().map(|w| local(w)))
        .output()
        .unwrap();
    ok(&o);
}

fn rfc1123_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

#[test]
fn the_kubernetes_bundle_replays_here_and_passes_the_schemas() {
    let dir = tmp("k8s");
    let a = awkward(&dir);
    let want = local(&dir, &a);
    emit(&dir, &a, "k8s", "3", "k8s bundle");
    let b = dir.join("k8s bundle");
    let docs: Vec<Value> = [
        "1-configmap.yaml",
        "2-pvc.yaml",
        "3-job.yaml",
        "4-merge-job.yaml",
    ]
    .iter()
    .map(|f| serde_yaml_ng::from_str(&std::fs::read_to_string(b.join(f)).unwrap()).unwrap())
    .collect();
    assert!(std::fs::read_to_string(b.join("Containerfile"))
        .unwrap()
        .contains("cargo build --release --locked"));
    let (cm, pvc, job, merge) = (&docs[0], &docs[1], &docs[2], &docs[3]);
    for d in &docs {
        let name = d["metadata"]["name"].as_str().unwrap();
        assert!(rfc1123_label(name), "{name}");
    }
    // Pod hostnames are <job>-<index>.
    assert!(job["metadata"]["name"].as_str().unwrap().len() + 4 <= 63);
    assert_eq!(pvc["spec"]["accessModes"][0], "ReadWriteMany");
    for j in [job, merge] {
        assert!(j["spec"]["ttlSecondsAfterFinished"].as_u64().is_some());
        let c = &j["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "IfNotPresent");
        assert!(c["resources"]["requests"]["cpu"].is_string());
        assert!(c["resources"]["requests"]["memory"].is_string());
        // Every volume the pod mounts is defined, and every claim or map is in the bundle.
        let vols = j["spec"]["template"]["spec"]["volumes"].as_array().unwrap();
        for v in vols {
            if let Some(claim) = v["persistentVolumeClaim"]["claimName"].as_str() {
                assert_eq!(claim, pvc["metadata"]["name"]);
            }
            if let Some(map) = v["configMap"]["name"].as_str() {
                assert_eq!(map, cm["metadata"]["name"]);
            }
        }
    }
    assert_eq!(job["spec"]["completionMode"], "Indexed");
    assert_eq!(job["spec"]["completions"], 3);
    let args: Vec<&str> = job["spec"]["template"]["spec"]["containers"][0]["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(args.windows(2).any(|w| w == ["--jobs", "1"]), "{args:?}");

    // The volumes, here: the ConfigMap's keys as files, the PVC an empty directory.
    let (scenario, results) = (dir.join("configmap"), dir.join("pvc"));
    std::fs::create_dir_all(&scenario).unwrap();
    std::fs::create_dir_all(&results).unwrap();
    for (k, v) in cm["data"].as_object().unwrap() {
        std::fs::write(scenario.join(k), v.as_str().unwrap()).unwrap();
    }
    let mounts = [("/scenario", scenario), ("/results", results.clone())];
    // The merge Job, started before the shards, waits for them.
    let merging = {
        let merge = merge.clone();
        let mounts = mounts.clone();
        std::thread::spawn(move || run_pod(&merge, 0, &mounts))
    };
    for k in 0..3 {
        run_pod(job, k, &mounts);
    }
    merging.join().unwrap();
    assert_eq!(
        tree(&results.join("sweep")),
        want,
        "the Jobs' sweep differs from a local one"
    );

    // The schemas, with a real validator (Python's kubernetes-validate, strict: unknown
    // fields fail too). CI installs it; elsewhere the test says it skipped this part.
    let files: Vec<PathBuf> = [
        "1-configmap.yaml",
        "2-pvc.yaml",
        "3-job.yaml",
        "4-merge-job.yaml",
    ]
    .iter()
    .map(|f| b.join(f))
    .collect();
    let have = Command::new("python3")
        .args(["-c", "import kubernetes_validate"])
        .output()
        .is_ok_and(|o| o.status.success());
    if have {
        let o = Command::new("python3")
            .args(["-m", "kubernetes_validate", "--strict"])
            .args(&files)
            .output()
            .unwrap();
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(o.status.success(), "{said}");
        assert_eq!(said.matches(" passed for resource ").count(), 4, "{said}");
    } else if std::env::var_os("FAULTLINE_REQUIRE_K8S_VALIDATE").is_some() {
        panic!("python3 -m kubernetes_validate is required here");
    } else {
        eprintln!("kubernetes-validate not found: schema validation skipped (pip install kubernetes-validate)");
    }
    std::fs::remove_dir_all(dir).ok();
}

/// `--out -` prints the job instead of writing a bundle.
#[test]
fn out_dash_prints_the_job() {
    let dir = tmp("stdout");
    let a = awkward(&dir);
    let y = emit(&dir, &a, "k8s", "2", "-");
    let docs: Vec<Value> = y
        .split("\n---\n")
        .map(|d| serde_yaml_ng::from_str(d).unwrap())
        .collect();
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["ConfigMap", "PersistentVolumeClaim", "Job", "Job"]);
    let s = emit(&dir, &a, "slurm", "2", "-");
    assert!(
        s.starts_with("#!/bin/bash\n") && s.contains("#SBATCH --array=0-1"),
        "{s}"
    );
    // The scenario by its absolute path, quoted: it holds a space.
    assert!(s.contains("'/") && s.contains("my scenario.toml'"), "{s}");
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(left.len(), 1, "only the scenario: nothing written");
    std::fs::remove_dir_all(dir).ok();
}

/// `merge --wait` gives up with exit 1 when a shard never comes; without `--wait` a missing
/// shard is an error at once.
#[test]
fn merge_waits_and_gives_up() {
    let dir = tmp("wait");
    let a = awkward(&dir);
    let mut s: Vec<&str> = a.iter().map(String::as_str).collect();
    s.extend(["--shard", "0/2", "--out", "s0"]);
    ok(&cli_in(&dir, &s));
    let o = cli_in(&dir, &["merge", "s0", "s1", "--out", "m", "--wait", "1s"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(String::from_utf8_lossy(&o.stderr).contains("s1 has no sweep.json"));
    let o = cli_in(&dir, &["merge", "s0", "--out", "m"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("missing"));
    let o = cli_in(&dir, &["merge", "s0", "--out", "m", "--wait", "soon"]);
    assert_eq!(o.status.code(), Some(2));
    std::fs::remove_dir_all(dir).ok();
}
