#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for the batch tests and for trying job scripts by hand.
#
#     eval "$(bash scripts/slurm-localhost.sh start /tmp/slurm)"   # prints: export SLURM_CONF=...
#     sbatch --wait job.sh
#     bash scripts/slurm-localhost.sh stop /tmp/slurm
#
# It needs Debian's slurmctld and slurmd (apt-get install slurmctld slurmd slurm-client) and root:
# both daemons run as root with AuthType=auth/none and CredType=cred/none, so no munge key is needed.
# That is fine on a throw-away test machine and nowhere else: anyone who can reach the ports can
# submit jobs as any user. Everything (config, state, spool, logs, pid files) lives in DIR; the
# controller listens on 127.0.0.1 only through the node's address. Ports come from
# SLURM_LOCALHOST_CTLD_PORT and SLURM_LOCALHOST_SLURMD_PORT (defaults 6817 and 6818).
#
# The partition lets up to 32 jobs share a core (OverSubscribe=FORCE:32): tests submit many small
# jobs at once and want them to run side by side, as on a real cluster, not two at a time.
set -euo pipefail

usage() {
    echo "usage: $0 start DIR | stop DIR | status DIR" >&2
    exit 2
}
[ $# -eq 2 ] || usage
action=$1
dir=$(mkdir -p "$2" && cd "$2" && pwd)
conf=$dir/slurm.conf

pid_of() {
    # The pid a daemon wrote, if that process is still alive.
    local file=$dir/$1.pid pid
    [ -s "$file" ] || return 1
    pid=$(cat "$file")
    kill -0 "$pid" 2>/dev/null || return 1
    echo "$pid"
}

stop_daemon() {
    local name=$1 pid
    pid=$(pid_of "$name") || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    echo "slurm-localhost: $name (pid $pid) ignored SIGTERM for 5 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
}

write_conf() {
    local host cpus
    host=$(hostname -s)
    cpus=$(nproc)
    mkdir -p "$dir/state" "$dir/spool"
    cat >"$conf" <<EOF
# Written by scripts/slurm-localhost.sh: a throw-away single-node cluster on localhost.
ClusterName=localhost
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=${SLURM_LOCALHOST_CTLD_PORT:-6817}
SlurmdPort=${SLURM_LOCALHOST_SLURMD_PORT:-6818}
AuthType=auth/none
CredType=cred/none
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:32
EOF
}

case $action in
start)
    if [ "$(id -u)" -ne 0 ]; then
        echo "slurm-localhost: must run as root (SlurmUser=root without munge)" >&2
        exit 1
    fi
    for exe in slurmctld slurmd sinfo; do
        command -v "$exe" >/dev/null || { echo "slurm-localhost: $exe is not installed (apt-get install slurmctld slurmd slurm-client)" >&2; exit 1; }
    done
    if pid_of slurmctld >/dev/null || pid_of slurmd >/dev/null; then
        echo "slurm-localhost: already running in $dir; stop it first" >&2
        exit 1
    fi
    write_conf
    export SLURM_CONF=$conf
    # -c: start from empty state; both daemonize and write their pid files.
    slurmctld -c -f "$conf"
    slurmd -f "$conf"
    # Ready when the node reports idle; give up (and clean up) after 30 s.
    for _ in $(seq 300); do
        state=$(sinfo -h -N -o %t 2>/dev/null || true)
        case $state in idle*) break ;; esac
        sleep 0.1
    done
    case ${state:-} in
    idle*) ;;
    *)
        echo "slurm-localhost: the node did not become idle (state: ${state:-none}); logs in $dir:" >&2
        tail -n 20 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
        stop_daemon slurmd
        stop_daemon slurmctld
        exit 1
        ;;
    esac
    printf 'export SLURM_CONF=%q\n' "$conf"
    ;;
stop)
    stop_daemon slurmd
    stop_daemon slurmctld
    ;;
status)
    for name in slurmctld slurmd; do
        if pid=$(pid_of "$name"); then echo "$name running (pid $pid)"; else echo "$name stopped"; fi
    done
    ;;
*)
    usage
    ;;
esac
