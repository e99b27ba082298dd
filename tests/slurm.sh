#!/usr/bin/env bash
# A real Slurm runs an emitted bundle, unmodified: one node (this machine), Debian's
# slurm-wlm and munge, started here and stopped by PID when done. The sweep has an awkward
# name (quotes, a dollar, a backtick, a space) and lives under a path with a space; the
# merged result must be byte-identical to a local sweep.
#
#   bash tests/slurm.sh [path/to/faultline]     (default: target/release/faultline)
#
# Needs root, or sudo, to install the packages and start the daemons. Takes about a minute.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=$(realpath "${1:-target/release/faultline}")
[ -x "$bin" ] || { echo "no faultline binary at $bin: build it first" >&2; exit 1; }
sudo=""; [ "$(id -u)" -ne 0 ] && sudo="sudo"

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
  echo "== installing slurm-wlm and munge"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq slurm-wlm munge >/dev/null
fi

state=$(mktemp -d /tmp/faultline-slurm.XXXXXX)
work="$state/a dir with spaces"
mkdir -p "$work" "$state/munge" "$state/ctld" "$state/d" "$state/log"
pids=()
stop() {
  for p in "${pids[@]}"; do $sudo kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do
    for _ in $(seq 50); do $sudo kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
  done
}
fail() {
  echo "slurm test failed: $*" >&2
  for f in "$state"/log/* "$work"/bundle/logs/*; do
    [ -f "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
  done
  exit 1
}
trap stop EXIT

# munge: a private key and socket, so nothing of the machine's own setup is touched.
dd if=/dev/urandom of="$state/munge/key" bs=1024 count=1 status=none
chmod 700 "$state/munge"; chmod 400 "$state/munge/key"
$sudo munged --foreground --force --key-file="$state/munge/key" \
  --socket="$state/munge/socket" --pid-file="$state/munge/pid" \
  --seed-file="$state/munge/seed" --log-file="$state/log/munged.log" 2>/dev/null &
pids+=($!)
for _ in $(seq 50); do [ -S "$state/munge/socket" ] && break; sleep 0.1; done
[ -S "$state/munge/socket" ] || fail "munged did not start"

host=$(hostname -s)
cat > "$state/slurm.conf" <<CONF
ClusterName=faultline
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$state/munge/socket
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/d
SlurmctldPidFile=$state/slurmctld.pid
SlurmdPidFile=$state/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
NodeName=$host CPUs=$(nproc) State=UNKNOWN
PartitionName=ci Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$state/slurm.conf"
$sudo env SLURM_CONF="$SLURM_CONF" slurmctld -D -i 2>/dev/null &
pids+=($!)
$sudo env SLURM_CONF="$SLURM_CONF" slurmd -D 2>/dev/null &
pids+=($!)
for _ in $(seq 100); do
  sinfo -h -o %t 2>/dev/null | grep -qx idle && break
  sleep 0.2
done
sinfo -h -o %t 2>/dev/null | grep -qx idle || fail "the node did not come up: $(sinfo 2>&1)"
echo "== slurm $(sinfo -V) up: one node, $(nproc) CPUs"

# The sweep: a scenario file and name no scheduler likes, a small grid, three shards.
name="it's a \"Test\" \$(x) \`y\` ü"
sed "0,/^name = \"quickstart\"/s//name = \"it's a \\\\\"Test\\\\\" \$(x) \`y\` ü\"/" \
  scenarios/quickstart.toml > "$work/my scenario.toml"
grep -qF "name = \"it's a \\\"Test\\\" \$(x)" "$work/my scenario.toml" || fail "scenario not renamed"
args=(sweep "my scenario.toml" --set sim.duration=20s --set "sim.name=$name \$HOME"
      --param service.payment.workers=8,16,24 --replications 2)
cd "$work"
"$bin" "${args[@]}" --out local --jobs 2 2>/dev/null
"$bin" "${args[@]}" --emit slurm --shards 3 --out bundle

# As the person at the cluster would: faultline on PATH, submit from anywhere.
cd /
out=$(PATH="$(dirname "$bin"):$PATH" "$work/bundle/submit.sh")
echo "$out"
merge=$(echo "$out" | sed -n 's/.*merge job \([0-9]*\).*/\1/p')
[ -n "$merge" ] || fail "no merge job id in: $out"
for _ in $(seq 300); do
  st=$(scontrol show job "$merge" -o 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p')
  case "$st" in
    COMPLETED) break ;;
    FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY) fail "merge job $merge: $st" ;;
  esac
  sleep 1
done
[ "$st" = COMPLETED ] || fail "merge job $merge still $st after 300 s"
diff -r "$work/local" "$work/bundle/sweep" || fail "the cluster's sweep differs from a local one"
echo "slurm ok: $(ls "$work/bundle/sweep/runs" | wc -l) runs in 3 array tasks, merged by a chained job, byte-identical to a local sweep"
stop
trap - EXIT
rm -rf "$state"
