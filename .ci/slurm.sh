#!/usr/bin/env bash
# A single-node SLURM cluster on this machine, for the tests of `genlib sweep` (tests/test_slurm.py).
#
#   .ci/slurm.sh install      install slurm-wlm and munge with apt-get (root) when sbatch is missing
#   .ci/slurm.sh start DIR    start munged (unless one answers), slurmctld and slurmd with DIR/slurm.conf;
#                             prints the line `SLURM_CONF=DIR/slurm.conf` once the node is idle
#   .ci/slurm.sh stop DIR     stop the daemons that `start DIR` started (by the pids it wrote in DIR)
#
# One node (this host, its CPUs and memory as `slurmd -C` reports them) in one partition, `debug`.
# ProctrackType=proctrack/linuxproc and TaskPlugin=task/none need no cgroups, so this runs in
# containers; no accounting database, so `sacct` answers nothing (genlib sweep --status reads its
# own state files first).
set -euo pipefail

install() {
    if command -v sbatch >/dev/null && command -v slurmctld >/dev/null && command -v munged >/dev/null; then
        return 0
    fi
    if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
        echo "slurm.sh: SLURM is not installed and cannot be here (needs root and apt-get)" >&2
        return 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q slurm-wlm munge >/dev/null 2>&1 || { apt-get update -q >/dev/null && apt-get install -y -q slurm-wlm munge >/dev/null; }
}

munge_answers() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
    munge_answers && return 0
    if [ ! -s /etc/munge/munge.key ]; then
        mungekey --create --keyfile=/etc/munge/munge.key 2>/dev/null \
            || dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    fi
    chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    mkdir -p /run/munge /var/lib/munge /var/log/munge
    chown munge:munge /run/munge /var/lib/munge /var/log/munge
    runuser -u munge -- /usr/sbin/munged  # it writes /run/munge/munged.pid; ours is a copy, for stop
    for _ in $(seq 50); do
        if munge_answers; then cp /run/munge/munged.pid "$dir/munged.pid"; return 0; fi
        sleep 0.1
    done
    echo "slurm.sh: munged does not answer" >&2
    return 1
}

write_conf() {
    local node host
    host=$(hostname -s)
    node=$(slurmd -C | head -1 | sed 's/ UpTime=.*//')
    mkdir -p "$dir/state" "$dir/spool" "$dir/log"
    cat > "$dir/slurm.conf" <<EOF
# written by genlib's .ci/slurm.sh: a single-node cluster for the tests
ClusterName=genlib
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
SlurmctldPort=${SLURM_TEST_PORT:-6817}
SlurmdPort=$(( ${SLURM_TEST_PORT:-6817} + 1 ))
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
KillWait=5
MinJobAge=600
$node State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
}

start() {
    install
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    start_munge
    write_conf
    export SLURM_CONF="$dir/slurm.conf"
    /usr/sbin/slurmctld -i
    /usr/sbin/slurmd
    for _ in $(seq 150); do
        if sinfo -h -o %t 2>/dev/null | grep -qx idle; then
            echo "SLURM_CONF=$SLURM_CONF"
            return 0
        fi
        sleep 0.2
    done
    echo "slurm.sh: the node did not come up; see $dir/log" >&2
    return 1
}

stop() {
    local name pid
    for name in slurmd slurmctld munged; do
        [ -s "$dir/$name.pid" ] || continue
        pid=$(cat "$dir/$name.pid")
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        rm -f "$dir/$name.pid"
    done
}

command=${1:-}
dir=${2:-}
case "$command" in
    install) install ;;
    start|stop)
        [ -n "$dir" ] || { echo "usage: $0 $command DIR" >&2; exit 2; }
        "$command" ;;
    *) echo "usage: $0 install | start DIR | stop DIR" >&2; exit 2 ;;
esac
