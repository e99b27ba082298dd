//! Cluster bundles for a sweep: a Slurm job array with a chained merge job, or Kubernetes
//! manifests (ConfigMap, PVC, Indexed Job, merge Job) with a container recipe; each runs as
//! written, from any directory, whatever the names and paths hold.
//!
//! Shell words are quoted with `shlex` and manifests serialised with `serde_yaml_ng`, never
//! spliced into a template, so no name or value can break them.

use super::{axes, Plan, SweepError};
use crate::rng::stable_hash;
use serde_json::{json, Value};
use std::path::Path;

/// One file of a bundle.
#[derive(Clone, Debug)]
pub struct File {
    /// Path inside the bundle.
    pub path: String,
    /// Its text.
    pub text: String,
    /// Whether it is a script to run (mode 0755).
    pub executable: bool,
}

/// A bundle: the files to write, and the empty directories its jobs expect to exist.
#[derive(Clone, Debug, Default)]
pub struct Bundle {
    /// The files, in the order they are listed to the user.
    pub files: Vec<File>,
    /// Directories made up front (Slurm opens its output files before a job starts).
    pub dirs: Vec<String>,
}

impl Bundle {
    fn add(&mut self, path: &str, text: String, executable: bool) {
        self.files.push(File {
            path: path.into(),
            text,
            executable,
        });
    }

    /// Writes the bundle under `dir`, each file whole (written aside, then renamed).
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        for d in &self.dirs {
            std::fs::create_dir_all(dir.join(d))?;
        }
        for f in &self.files {
            let path = dir.join(&f.path);
            super::write_atomic(&path, f.text.as_bytes())?;
            #[cfg(unix)]
            if f.executable {
                use std::os::unix::fs::PermissionsExt;
                std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))?;
            }
        }
        Ok(())
    }
}

/// The largest scenario a ConfigMap holds (the API server's limit is 1 MiB for the whole
/// object; the rest is left for its metadata).
pub const CONFIGMAP_MAX_BYTES: usize = 1_000_000;

/// The arguments after `faultline` that run every shard of `plan`, but for `--shard`,
/// `--out` and `--jobs`. The overrides are passed verbatim and in order, so the shard's
/// scenario hash (and so its `sweep.json`) is the one a local sweep writes. Axes from the
/// scenario's `[sweep]` table are left to the table.
pub fn sweep_args(plan: &Plan, scenario_path: &str) -> Result<Vec<String>, SweepError> {
    let mut a = vec!["sweep".to_string(), scenario_path.to_string()];
    for o in &plan.scenario.overrides {
        a.push("--set".into());
        a.push(o.clone());
    }
    let (table_grid, table_zip) = super::table_axes(&plan.scenario)?;
    if plan.grid != table_grid || plan.zip != table_zip {
        for (flag, list) in [("--param", &plan.grid), ("--zip", &plan.zip)] {
            for axis in list {
                let arg = format!("{}={}", axis.path, axis.values.join(","));
                // The shard parses the values again: they must come back the same.
                if axes::parse_axis(&arg).ok().as_ref() != Some(axis) {
                    return Err(SweepError::Invalid(format!(
                        "the values of {:?} cannot be passed on a command line (one holds a comma or a range): put the axis in the scenario's [sweep] table",
                        axis.path
                    )));
                }
                a.push(flag.into());
                a.push(arg);
            }
        }
    }
    a.push("--replications".into());
    a.push(plan.replications.to_string());
    Ok(a)
}

/// A short stable tag of the sweep (its manifest), so two sweeps' jobs and volumes differ.
fn tag(plan: &Plan) -> Result<String, SweepError> {
    let m = serde_json::to_vec(&plan.manifest()?).expect("plain data");
    Ok(format!("{:08x}", stable_hash(&m) as u32))
}

fn quote_line(words: &[String]) -> Result<String, SweepError> {
    shlex::try_join(words.iter().map(String::as_str))
        .map_err(|e| SweepError::Invalid(format!("a value cannot be shell-quoted: {e}")))
}

/// A Slurm job name: letters, digits, `.`, `_` and `-` only (sbatch refuses a space in a
/// `#SBATCH` line's value), at most 64 characters.
pub fn slurm_name(name: &str) -> String {
    let s: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(48)
        .collect();
    format!("faultline-{s}")
}

/// An RFC 1123 label: lowercase letters, digits and `-`, starting and ending alphanumeric,
/// at most `max` characters; `sweep` if nothing is left.
pub fn rfc1123(name: &str, max: usize) -> String {
    let mut s = String::new();
    for c in name.chars().flat_map(char::to_lowercase) {
        let c = if c.is_ascii_alphanumeric() { c } else { '-' };
        if !(c == '-' && (s.is_empty() || s.ends_with('-'))) {
            s.push(c);
        }
    }
    s.truncate(max);
    let s = s.trim_end_matches('-').to_string();
    if s.is_empty() {
        "sweep".into()
    } else {
        s
    }
}

const SLURM_README: &str = include_str!("emit/slurm-README.md");
const K8S_README: &str = include_str!("emit/k8s-README.md");
const CONTAINERFILE: &str = include_str!("emit/Containerfile");

/// The Slurm bundle: `scenario.toml`, `sweep.sbatch` (the array), `merge.sbatch`,
/// `submit.sh` (submits both, the merge chained with `--dependency=afterok`), a README and
/// `logs/`. Everything is relative to the bundle, which `submit.sh` enters first.
pub fn slurm(plan: &Plan, shards: usize) -> Result<Bundle, SweepError> {
    let mut b = Bundle::default();
    let name = slurm_name(&plan.scenario.spec.name);
    let header = |what: &str| {
        format!(
            "#!/bin/bash\n# {what}\n# The faultline sweep of {:?} ({} points x {} replications in {shards} shards).\n# Submit the bundle with ./submit.sh (see README.md); this script expects to run in\n# the bundle's directory.\n",
            plan.scenario.spec.name,
            plan.points().map(|p| p.len()).unwrap_or(0),
            plan.replications,
        )
    };
    let guard = "set -euo pipefail\nif [ ! -f scenario.toml ]; then\n  echo \"run from the bundle's directory (submit with ./submit.sh): no scenario.toml in $PWD\" >&2\n  exit 2\nfi\nfaultline=${FAULTLINE:-faultline}\n";
    let mut shard = vec!["\"$faultline\"".to_string()];
    shard.push(quote_line(&sweep_args(plan, "scenario.toml")?)?);
    shard.push(format!(
        "--shard \"$SLURM_ARRAY_TASK_ID/{shards}\" --out \"results/shard-$SLURM_ARRAY_TASK_ID\" --jobs 1"
    ));
    let array = format!(
        "{}#SBATCH --job-name={name}\n#SBATCH --array=0-{}\n#SBATCH --ntasks=1\n#SBATCH --cpus-per-task=1\n#SBATCH --output=logs/shard-%a.out\n{guard}{}\n",
        header("A Slurm job array: one shard of the sweep per task."),
        shards - 1,
        shard.join(" "),
    );
    let merge = format!(
        "{}#SBATCH --job-name={name}-merge\n#SBATCH --ntasks=1\n#SBATCH --cpus-per-task=1\n#SBATCH --output=logs/merge.out\n{guard}shards=()\nfor ((k = 0; k < {shards}; k++)); do shards+=(\"results/shard-$k\"); done\n\"$faultline\" merge \"${{shards[@]}}\" --out sweep\n",
        header("The merge job: joins the shards into sweep/, as one local sweep writes it."),
    );
    let submit = "#!/bin/bash\n# Submits the sweep: the job array, then the merge job, which starts once every array\n# task has succeeded. Options for sbatch (partition, time, account...) go on this command\n# line and reach both jobs:  ./submit.sh --partition=short --time=01:00:00\nset -euo pipefail\ncd \"$(dirname \"$0\")\"\nmkdir -p logs results\narray=$(sbatch --parsable \"$@\" sweep.sbatch)\narray=${array%%;*}\nmerge=$(sbatch --parsable --dependency=\"afterok:$array\" \"$@\" merge.sbatch)\nmerge=${merge%%;*}\necho \"submitted job array $array and merge job $merge\"\necho \"the merged sweep will be in $PWD/sweep (logs in $PWD/logs)\"\n".to_string();
    b.add(
        "README.md",
        SLURM_README.replace("{shards}", &shards.to_string()),
        false,
    );
    b.add("scenario.toml", plan.scenario.text.clone(), false);
    b.add("sweep.sbatch", array, true);
    b.add("merge.sbatch", merge, true);
    b.add("submit.sh", submit, true);
    b.dirs = vec!["logs".into(), "results".into()];
    Ok(b)
}

/// The Slurm job array alone (for `--out -`): the scenario by its absolute path, output
/// files in the submit directory, and the merge command in a comment.
pub fn slurm_script(plan: &Plan, shards: usize, scenario_path: &str) -> Result<String, SweepError> {
    let words = quote_line(&sweep_args(plan, scenario_path)?)?;
    Ok(format!(
        "#!/bin/bash\n# A Slurm job array: the faultline sweep of {:?}, one shard per task.\n# Submit with: sbatch THIS-FILE   (faultline on PATH, or FAULTLINE=/path/to/faultline)\n# When every task is done: faultline merge results/shard-* --out sweep\n# `faultline sweep ... --emit slurm --out DIR` writes a bundle that chains the merge.\n#SBATCH --job-name={}\n#SBATCH --array=0-{}\n#SBATCH --ntasks=1\n#SBATCH --cpus-per-task=1\n#SBATCH --output=faultline-shard-%A_%a.out\nset -euo pipefail\n\"${{FAULTLINE:-faultline}}\" {words} --shard \"$SLURM_ARRAY_TASK_ID/{shards}\" --out \"results/shard-$SLURM_ARRAY_TASK_ID\" --jobs 1\n",
        plan.scenario.spec.name,
        slurm_name(&plan.scenario.spec.name),
        shards - 1,
    ))
}

/// How long the merge Job waits for the shards before giving up.
pub const K8S_MERGE_WAIT: &str = "24h";
const K8S_MERGE_WAIT_S: u64 = 24 * 3600;

/// Escapes `$` for Kubernetes' `$(VAR)` expansion of a container's command and args, so a
/// value is passed as written.
fn k8s_literal(s: &str) -> String {
    s.replace('$', "$$")
}

/// The Kubernetes manifests: ConfigMap (the scenario), PVC (the results, shared by every
/// pod), the Indexed Job (one shard per index) and the merge Job (which waits for the
/// shards' runs, then merges).
pub fn k8s_manifests(plan: &Plan, shards: usize, image: &str) -> Result<Vec<Value>, SweepError> {
    if plan.scenario.text.len() > CONFIGMAP_MAX_BYTES {
        return Err(SweepError::Invalid(format!(
            "the scenario is {} bytes; a ConfigMap holds at most {CONFIGMAP_MAX_BYTES}",
            plan.scenario.text.len()
        )));
    }
    // Pod hostnames are `<job>-<index>`: keep the longest name well inside 63 characters.
    let base = format!(
        "faultline-{}-{}",
        rfc1123(&plan.scenario.spec.name, 24),
        tag(plan)?
    );
    let labels = json!({
        "app.kubernetes.io/name": "faultline",
        "app.kubernetes.io/instance": base,
    });
    let (scenario_cm, results_pvc) = (format!("{base}-scenario"), format!("{base}-results"));
    let mut args: Vec<String> = sweep_args(plan, "/scenario/scenario.toml")?
        .iter()
        .map(|a| k8s_literal(a))
        .collect();
    args.extend(
        [
            "--shard",
            &format!("$(SHARD)/{shards}"),
            "--out",
            "/results/shard-$(SHARD)",
            "--jobs",
            "1",
        ]
        .map(String::from),
    );
    let mut merge_args = vec!["merge".to_string()];
    merge_args.extend((0..shards).map(|k| format!("/results/shard-{k}")));
    merge_args.extend(["--out", "/results/sweep", "--wait", K8S_MERGE_WAIT].map(String::from));
    let results_volume =
        json!({"name": "results", "persistentVolumeClaim": {"claimName": results_pvc}});
    let container = |name: &str, args: Vec<String>, mounts: Value, env: Value, cpu: &str| {
        json!({
            "name": name,
            "image": image,
            "imagePullPolicy": "IfNotPresent",
            "command": ["faultline"],
            "args": args,
            "env": env,
            "resources": {
                "requests": {"cpu": cpu, "memory": "512Mi"},
                "limits": {"memory": "2Gi"},
            },
            "volumeMounts": mounts,
        })
    };
    let configmap = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": scenario_cm, "labels": labels},
        "data": {"scenario.toml": plan.scenario.text},
    });
    let pvc = json!({
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": results_pvc, "labels": labels},
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "resources": {"requests": {"storage": "1Gi"}},
        },
    });
    let job = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": base, "labels": labels},
        "spec": {
            "completions": shards,
            "parallelism": shards,
            "completionMode": "Indexed",
            "backoffLimit": 3 * shards,
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [container(
                        "shard",
                        args,
                        json!([
                            {"name": "scenario", "mountPath": "/scenario", "readOnly": true},
                            {"name": "results", "mountPath": "/results"},
                        ]),
                        json!([{
                            "name": "SHARD",
                            "valueFrom": {"fieldRef": {
                                "fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"
                            }},
                        }]),
                        "1",
                    )],
                    "volumes": [
                        {"name": "scenario", "configMap": {"name": scenario_cm}},
                        results_volume,
                    ],
                },
            },
        },
    });
    let merge = json!({
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": format!("{base}-merge"), "labels": labels},
        "spec": {
            "completions": 1,
            "backoffLimit": 2,
            "activeDeadlineSeconds": K8S_MERGE_WAIT_S + 1800,
            "ttlSecondsAfterFinished": 86400,
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [container(
                        "merge",
                        merge_args,
                        json!([{"name": "results", "mountPath": "/results"}]),
                        json!([]),
                        "100m",
                    )],
                    "volumes": [results_volume],
                },
            },
        },
    });
    Ok(vec![configmap, pvc, job, merge])
}

/// Manifests as one YAML stream (`---` between documents).
pub fn yaml_stream(docs: &[Value]) -> String {
    docs.iter()
        .map(|d| serde_yaml_ng::to_string(d).expect("plain data"))
        .collect::<Vec<_>>()
        .join("---\n")
}

/// The Kubernetes bundle: the four manifests (`kubectl apply -f DIR` applies them all), the
/// container recipe, and a README.
pub fn k8s(plan: &Plan, shards: usize, image: &str) -> Result<Bundle, SweepError> {
    let docs = k8s_manifests(plan, shards, image)?;
    let mut b = Bundle::default();
    let name = |d: &Value| d["metadata"]["name"].as_str().unwrap_or("").to_string();
    b.add(
        "README.md",
        K8S_README
            .replace("{shards}", &shards.to_string())
            .replace("{image}", image)
            .replace("{job}", &name(&docs[2]))
            .replace("{merge}", &name(&docs[3]))
            .replace("{pvc}", &name(&docs[1])),
        false,
    );
    b.add("Containerfile", CONTAINERFILE.to_string(), false);
    for (file, doc) in [
        "1-configmap.yaml",
        "2-pvc.yaml",
        "3-job.yaml",
        "4-merge-job.yaml",
    ]
    .iter()
    .zip(&docs)
    {
        b.add(file, yaml_stream(std::slice::from_ref(doc)), false);
    }
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_for_their_schedulers() {
        assert_eq!(rfc1123("My Sweep!  (v2)", 63), "my-sweep-v2");
        assert_eq!(rfc1123("--", 63), "sweep");
        assert_eq!(rfc1123("ÄÖ", 63), "sweep");
        assert_eq!(rfc1123("abc-def", 4), "abc");
        assert_eq!(slurm_name("a b'c"), "faultline-a_b_c");
    }

    #[test]
    fn dollars_reach_the_process_as_written() {
        assert_eq!(k8s_literal("a$(SHARD)$b"), "a$$(SHARD)$$b");
    }
}
