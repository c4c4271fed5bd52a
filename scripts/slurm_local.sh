#!/usr/bin/env bash
# A throwaway single-node SLURM cluster on this machine, for testing the
# workflow's SLURM profile (profiles/slurm/) in CI or on a workstation.
#
#   scripts/slurm_local.sh start    install (Debian packages) and start munged,
#                                   slurmctld and slurmd; wait for the node
#   scripts/slurm_local.sh stop     stop only the daemons this script started
#   scripts/slurm_local.sh status   show what runs and the node state (exit 0:
#                                   all three daemons started by it are running)
#
# Needs root and apt-get (Debian/Ubuntu). No systemd: the daemons run as root
# processes with a cgroup-free configuration (proctrack/linuxproc, task/none,
# select/cons_tres), no accounting database (slurmdbd) and one fake GPU
# (gres.conf: Name=gpu File=/dev/null Count=1), so `sbatch --gpus=1` works on a
# CPU machine. Both commands are idempotent. On any failure the script prints
# why on stderr and exits non-zero.
#
# The configuration goes to /etc/slurm/ (the job-step plugin strips
# SLURM_CONF, so another location does not work). An existing slurm.conf that
# this script did not write is never overwritten: the script refuses instead.
#
# Environment:
#   SLURM_LOCAL_STATE     state dir: pid files, logs, spool (default /var/lib/slurm-local)
#   SLURM_LOCAL_PARTITION partition name (default debug)
#   SLURM_LOCAL_TIMEOUT   seconds to wait for the node to be idle (default 90)

set -euo pipefail

STATE=${SLURM_LOCAL_STATE:-/var/lib/slurm-local}
PARTITION=${SLURM_LOCAL_PARTITION:-debug}
WAIT_S=${SLURM_LOCAL_TIMEOUT:-90}
CONF_DIR=/etc/slurm
CONF=$CONF_DIR/slurm.conf
GRES=$CONF_DIR/gres.conf
MARK="# Written by scripts/slurm_local.sh"
PACKAGES=(slurmctld slurmd slurm-client munge)

die() {
    echo "slurm_local.sh: error: $*" >&2
    exit 1
}
say() { echo "slurm_local.sh: $*"; }

need_root() {
    [ "$(id -u)" -eq 0 ] || die "must run as root (it installs Debian packages and starts munged, slurmctld and slurmd); current uid is $(id -u)"
}

# pid of a daemon we started, if it is still alive; empty otherwise
our_pid() {
    local f=$STATE/$1.pid pid
    [ -f "$f" ] || return 0
    pid=$(cat "$f" 2>/dev/null || true)
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then echo "$pid"; fi
}

started_by_us() { [ -f "$STATE/started" ] && grep -qx "$1" "$STATE/started"; }
mark_started() { started_by_us "$1" || echo "$1" >>"$STATE/started"; }

show_log_tail() {
    local f=$1
    if [ -f "$f" ]; then
        echo "---- last lines of $f ----" >&2
        tail -n 25 "$f" >&2 || true
    fi
}

install_packages() {
    local missing=()
    command -v slurmctld >/dev/null || missing+=(slurmctld)
    command -v slurmd >/dev/null || missing+=(slurmd)
    command -v sbatch >/dev/null || missing+=(slurm-client)
    command -v munged >/dev/null || missing+=(munge)
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "SLURM is not installed (missing: ${missing[*]}) and apt-get is not available to install it (this script supports Debian/Ubuntu only)"
    say "installing ${PACKAGES[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y --no-install-recommends "${PACKAGES[@]}" >"$STATE/apt.log" 2>&1; then
        say "apt-get install failed; running apt-get update and retrying"
        apt-get update >>"$STATE/apt.log" 2>&1 || true
        if ! apt-get install -y --no-install-recommends "${PACKAGES[@]}" >>"$STATE/apt.log" 2>&1; then
            show_log_tail "$STATE/apt.log"
            die "apt-get install ${PACKAGES[*]} failed (full log: $STATE/apt.log)"
        fi
    fi
    for b in slurmctld slurmd sbatch munged; do
        command -v "$b" >/dev/null || die "$b still missing after installing ${PACKAGES[*]}"
    done
}

munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
    if munge_works; then
        say "munged already running"
        return 0
    fi
    if [ ! -s /etc/munge/munge.key ]; then
        say "creating /etc/munge/munge.key"
        install -d -o munge -g munge -m 0700 /etc/munge
        if command -v mungekey >/dev/null; then
            mungekey --create --keyfile=/etc/munge/munge.key
        else
            dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
        fi
        chown munge:munge /etc/munge/munge.key
        chmod 0400 /etc/munge/munge.key
    fi
    install -d -o munge -g munge -m 0755 /run/munge
    install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge
    rm -f "$STATE/munged.pid"
    # munged runs as its own user when possible, as root (--force) otherwise
    if ! runuser -u munge -- munged --pid-file="$STATE/munged.pid.tmp" 2>"$STATE/munged.err"; then
        munged --force --pid-file="$STATE/munged.pid.tmp" 2>>"$STATE/munged.err" ||
            { cat "$STATE/munged.err" >&2; die "munged did not start"; }
    fi
    for _ in $(seq 1 20); do
        munge_works && break
        sleep 0.5
    done
    munge_works || { cat "$STATE/munged.err" >&2; show_log_tail /var/log/munge/munged.log; die "munged started but munge credentials do not work"; }
    # munged writes its pid file as the munge user; keep our own copy
    cp "$STATE/munged.pid.tmp" "$STATE/munged.pid" 2>/dev/null || pgrep -n -x munged >"$STATE/munged.pid"
    mark_started munged
    say "munged started (pid $(cat "$STATE/munged.pid"))"
}

write_config() {
    local host cpus mem_kb mem_mb
    host=$(hostname -s)
    cpus=$(nproc)
    mem_kb=$(awk '/^MemTotal:/ {print $2}' /proc/meminfo)
    # leave 1 GiB (or a quarter of small machines) to the OS and Snakemake
    mem_mb=$((mem_kb / 1024))
    if [ "$mem_mb" -gt 4096 ]; then mem_mb=$((mem_mb - 1024)); else mem_mb=$((mem_mb * 3 / 4)); fi
    mkdir -p "$CONF_DIR" "$STATE/ctld" "$STATE/spool"
    cat >"$CONF" <<EOF
$MARK: single-node test cluster, no systemd, no cgroups, no accounting.
ClusterName=localtest
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
SwitchType=switch/none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
GresTypes=gpu
ReturnToService=2
# finished jobs stay visible to squeue/scontrol for an hour (status checks, tests)
MinJobAge=3600
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/slurmctld.log
SlurmdLogFile=$STATE/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=$host CPUs=$cpus RealMemory=$mem_mb Gres=gpu:1 State=UNKNOWN
PartitionName=$PARTITION Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    cat >"$GRES" <<EOF
$MARK: one fake GPU so that sbatch --gpus=1 can be scheduled.
NodeName=$host Name=gpu File=/dev/null Count=1
EOF
    say "wrote $CONF and $GRES (node $host: $cpus CPUs, ${mem_mb} MB, 1 fake GPU; partition $PARTITION)"
}

node_state() { sinfo -h -N -n "$(hostname -s)" -o '%t' 2>/dev/null | head -n 1; }

start_slurm() {
    local pid state
    pid=$(our_pid slurmctld)
    if [ -n "$pid" ]; then
        say "slurmctld already running (pid $pid)"
    else
        pgrep -x slurmctld >/dev/null && die "a slurmctld not started by this script is running; stop it first"
        # -c: a throwaway cluster starts from a clean state
        slurmctld -c || { show_log_tail "$STATE/slurmctld.log"; die "slurmctld did not start"; }
        mark_started slurmctld
        for _ in $(seq 1 20); do
            [ -n "$(our_pid slurmctld)" ] && scontrol ping >/dev/null 2>&1 && break
            sleep 0.5
        done
        scontrol ping >/dev/null 2>&1 || { show_log_tail "$STATE/slurmctld.log"; die "slurmctld does not answer scontrol ping"; }
        say "slurmctld started (pid $(our_pid slurmctld))"
    fi
    pid=$(our_pid slurmd)
    if [ -n "$pid" ]; then
        say "slurmd already running (pid $pid)"
    else
        pgrep -x slurmd >/dev/null && die "a slurmd not started by this script is running; stop it first"
        slurmd || { show_log_tail "$STATE/slurmd.log"; die "slurmd did not start"; }
        mark_started slurmd
        for _ in $(seq 1 20); do
            [ -n "$(our_pid slurmd)" ] && break
            sleep 0.5
        done
        [ -n "$(our_pid slurmd)" ] || { show_log_tail "$STATE/slurmd.log"; die "slurmd exited right after starting"; }
        say "slurmd started (pid $(our_pid slurmd))"
    fi
    for _ in $(seq 1 $((WAIT_S * 2))); do
        state=$(node_state)
        case "$state" in
        idle | mix | alloc) break ;;
        down* | drain* | drng*) scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true ;;
        esac
        sleep 0.5
    done
    case "$state" in
    idle | mix | alloc) ;;
    *)
        show_log_tail "$STATE/slurmctld.log"
        show_log_tail "$STATE/slurmd.log"
        die "node $(hostname -s) is '${state:-unknown}' after ${WAIT_S}s, not idle ($(scontrol show node "$(hostname -s)" 2>&1 | grep -o 'Reason=.*' || true))"
        ;;
    esac
    say "ready: node $(hostname -s) is $state"
    sinfo
}

stop_daemon() {
    local name=$1 pid
    started_by_us "$name" || return 0
    pid=$(our_pid "$name")
    if [ -n "$pid" ]; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 30); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.5
        done
        if kill -0 "$pid" 2>/dev/null; then
            say "$name (pid $pid) ignored SIGTERM; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
        say "stopped $name (pid $pid)"
    fi
    rm -f "$STATE/$name.pid"
    sed -i "/^$name\$/d" "$STATE/started"
}

cmd_start() {
    need_root
    mkdir -p "$STATE"
    if [ -f "$CONF" ] && ! head -n 1 "$CONF" | grep -qF "$MARK"; then
        die "$CONF exists and was not written by this script (a real SLURM installation?); refusing to overwrite it"
    fi
    install_packages
    start_munge
    if [ -n "$(our_pid slurmctld)" ]; then
        say "keeping $CONF (slurmctld started by this script is running)"
    else
        write_config
    fi
    start_slurm
}

cmd_stop() {
    need_root
    [ -f "$STATE/started" ] || {
        say "nothing to stop (no daemons started by this script)"
        return 0
    }
    if started_by_us slurmctld && [ -n "$(our_pid slurmctld)" ]; then
        # the cluster is ours: cancel what is left in it before stopping
        local jobs
        jobs=$(squeue -h -o '%i' 2>/dev/null | tr '\n' ' ' || true)
        if [ -n "${jobs// /}" ]; then
            say "cancelling jobs left in the test cluster: $jobs"
            # shellcheck disable=SC2086
            scancel $jobs 2>/dev/null || true
            sleep 2
        fi
    fi
    stop_daemon slurmd
    stop_daemon slurmctld
    stop_daemon munged
    [ -s "$STATE/started" ] || rm -f "$STATE/started"
    say "stopped"
}

# exit 0 when munged, slurmctld and slurmd started by this script all run, 3 otherwise
cmd_status() {
    local d rc=0
    for d in munged slurmctld slurmd; do
        if [ -n "$(our_pid "$d")" ]; then
            echo "$d: running (pid $(our_pid "$d"), started by this script)"
        else
            echo "$d: not running (or not started by this script)"
            rc=3
        fi
    done
    sinfo 2>&1 || true
    return $rc
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
*)
    echo "usage: $0 start|stop|status" >&2
    exit 2
    ;;
esac
