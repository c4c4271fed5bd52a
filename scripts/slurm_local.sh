#!/usr/bin/env bash
# A throwaway single-node SLURM cluster on this machine, for testing the
# workflow's SLURM profile (profiles/slurm/) in CI or on a workstation.
#
#   scripts/slurm_local.sh start      install (Debian packages) and start munged,
#                                     slurmctld and slurmd; wait for the node
#   scripts/slurm_local.sh stop       stop only the daemons this script started
#   scripts/slurm_local.sh status     show what runs and the node state (exit 0:
#                                     all three daemons started by it are running)
#   scripts/slurm_local.sh uninstall  stop (as `stop`), then remove exactly what
#                                     `start` added: purge the Debian packages it
#                                     installed (with the dependencies apt pulled
#                                     in), delete the files and directories it
#                                     created and its state dir
#
# Needs root and apt-get (Debian/Ubuntu). No systemd: the daemons run as root
# processes with a cgroup-free configuration (proctrack/linuxproc, task/none,
# select/cons_tres), no accounting database (slurmdbd) and one fake GPU
# (gres.conf: Name=gpu File=/dev/null Count=1), so `sbatch --gpus=1` works on a
# CPU machine. All commands are idempotent. On any failure the script prints
# why on stderr and exits non-zero.
#
# The configuration goes to /etc/slurm/ (the job-step plugin strips
# SLURM_CONF, so another location does not work). An existing slurm.conf that
# this script did not write is never overwritten: the script refuses instead.
#
# Leaving the machine as it was found: while SLURM's client tools are on PATH
# (sinfo), every `snakemake` call pays for `scontrol show config` (the SLURM
# executor plugin runs it at import, up to 10 s), so run `uninstall` when done.
# `start` records in its state dir what it added:
#   packages.added        packages it installed that were not installed before
#                         (dpkg-query before/after apt-get: SLURM, munge and the
#                         dependencies apt pulled in) -> apt-get purge
#   packages.reinstalled  packages that had only their config files left before
#                         -> apt-get remove (their config files stay, as before)
#   packages.upgraded     packages apt upgraded on the way (reported, not undone)
#   users.added, groups.added   system users/groups the packages created
#   created               files and directories it created (munge.key, /run/munge,
#                         /etc/slurm, ...) -> removed
#   etc-before.tar        /etc/slurm and /etc/munge as they were before it
#                         installed packages whose purge deletes them -> restored
# `uninstall` deletes slurm.conf and gres.conf only when they carry the line
# "# Written by scripts/slurm_local.sh", munge.key only when it is unchanged,
# and it purges nothing that another installed package still needs (apt-get -s
# first). Not undone: `apt-get update` (only run when an install fails) and
# apt/dpkg's own bookkeeping (logs, a /var/lib/ucf/hashfile.N backup).
# Packages present before `start` (a real SLURM) are never removed.
#
# Environment:
#   SLURM_LOCAL_STATE     state dir: pid files, logs, spool, the records above
#                         (default /var/lib/slurm-local)
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
STATE_MARK=.slurm_local_state
# what the state dir of an earlier version of this script (no records) holds
LEGACY_ENTRIES=" apt.log ctld spool munged.err munged.pid munged.pid.tmp slurmctld.log slurmd.log slurmctld.pid slurmd.pid started "

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

# "status name version" of every package dpkg knows (installed or config files left)
dpkg_snapshot() { dpkg-query -W -f='${db:Status-Status} ${Package} ${Version}\n' 2>/dev/null | sort -u; }
names_of() { getent "$1" | cut -d: -f1 | sort -u; }

# add a line to a record file in the state dir unless it is there already
record() {
    local file=$STATE/$1 line=$2
    [ -f "$file" ] && grep -qxF -- "$line" "$file" && return 0
    echo "$line" >>"$file"
}

# what apt-get changed, from the snapshots taken before it ran (also after a failed install)
record_install() {
    local before=$STATE/dpkg.before after=$STATE/dpkg.after name ver status
    dpkg_snapshot >"$after"
    while read -r status name ver; do
        [ "$status" = installed ] || continue
        if ! awk -v n="$name" '$2 == n {found = 1} END {exit !found}' "$before"; then
            record packages.added "$name"
        elif awk -v n="$name" '$2 == n && $1 != "installed" {found = 1} END {exit !found}' "$before"; then
            record packages.reinstalled "$name"
        elif ! awk -v n="$name" -v v="$ver" '$2 == n && $3 == v {found = 1} END {exit !found}' "$before"; then
            record packages.upgraded "$name $(awk -v n="$name" '$2 == n {print $3}' "$before") -> $ver"
        fi
    done <"$after"
    comm -13 "$STATE/users.before" <(names_of passwd) | while read -r name; do record users.added "$name"; done
    comm -13 "$STATE/groups.before" <(names_of group) | while read -r name; do record groups.added "$name"; done
    rm -f "$before" "$after" "$STATE/users.before" "$STATE/groups.before"
    [ -s "$STATE/packages.added" ] && say "recorded the packages it installed: $(tr '\n' ' ' <"$STATE/packages.added")"
    return 0
}

# /etc/slurm and /etc/munge as they are before installing packages whose purge deletes them
# (our own slurm.conf/gres.conf left by an earlier run excluded: uninstall deletes those)
backup_etc() {
    local dirs=() excl=() f
    [ -f "$STATE/etc-before.tar" ] && return 0
    for d in slurm munge; do [ -e "/etc/$d" ] && dirs+=("$d"); done
    [ ${#dirs[@]} -eq 0 ] && return 0
    for f in "$CONF" "$GRES"; do
        [ -f "$f" ] && head -n 1 "$f" | grep -qF "$MARK" && excl+=("--exclude=${f#/etc/}")
    done
    tar -C /etc "${excl[@]}" -cpf "$STATE/etc-before.tar" "${dirs[@]}" || die "could not back up /etc/${dirs[*]} to $STATE/etc-before.tar"
}

install_packages() {
    local missing=()
    command -v slurmctld >/dev/null || missing+=(slurmctld)
    command -v slurmd >/dev/null || missing+=(slurmd)
    command -v sbatch >/dev/null || missing+=(slurm-client)
    command -v munged >/dev/null || missing+=(munge)
    [ ${#missing[@]} -eq 0 ] && return 0
    command -v apt-get >/dev/null || die "SLURM is not installed (missing: ${missing[*]}) and apt-get is not available to install it (this script supports Debian/Ubuntu only)"
    command -v dpkg-query >/dev/null || die "dpkg-query not found: cannot record which packages apt-get installs (needed by uninstall)"
    backup_etc
    dpkg_snapshot >"$STATE/dpkg.before"
    names_of passwd >"$STATE/users.before"
    names_of group >"$STATE/groups.before"
    say "installing ${PACKAGES[*]} with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    if ! apt-get install -y --no-install-recommends "${PACKAGES[@]}" >"$STATE/apt.log" 2>&1; then
        say "apt-get install failed; running apt-get update and retrying"
        apt-get update >>"$STATE/apt.log" 2>&1 || true
        if ! apt-get install -y --no-install-recommends "${PACKAGES[@]}" >>"$STATE/apt.log" 2>&1; then
            record_install
            show_log_tail "$STATE/apt.log"
            die "apt-get install ${PACKAGES[*]} failed (full log: $STATE/apt.log; what it installed anyway is recorded for uninstall)"
        fi
    fi
    record_install
    for b in slurmctld slurmd sbatch munged; do
        command -v "$b" >/dev/null || die "$b still missing after installing ${PACKAGES[*]}"
    done
}

# install -d, recording the directories that did not exist (kind: dir = removed with
# its contents by uninstall, emptydir = removed only when empty)
make_dir() {
    local kind=$1 path=$2
    shift 2
    [ -e "$path" ] || record created "$kind $path"
    install -d "$@" "$path"
}

munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }

start_munge() {
    if munge_works; then
        say "munged already running"
        return 0
    fi
    if [ ! -s /etc/munge/munge.key ]; then
        say "creating /etc/munge/munge.key"
        make_dir emptydir /etc/munge -o munge -g munge -m 0700
        [ -e /etc/munge/munge.key ] || record created "file /etc/munge/munge.key"
        if command -v mungekey >/dev/null; then
            mungekey --create --keyfile=/etc/munge/munge.key
        else
            dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
        fi
        chown munge:munge /etc/munge/munge.key
        chmod 0400 /etc/munge/munge.key
        grep -qxF "file /etc/munge/munge.key" "$STATE/created" 2>/dev/null &&
            record created "sha256 /etc/munge/munge.key $(sha256sum </etc/munge/munge.key | cut -d' ' -f1)"
    fi
    make_dir dir /run/munge -o munge -g munge -m 0755
    make_dir dir /var/log/munge -o munge -g munge -m 0700
    make_dir dir /var/lib/munge -o munge -g munge -m 0700
    rm -f "$STATE/munged.pid"
    # munged runs as its own user when possible, as root (--force) otherwise
    if ! runuser -u munge -- munged --pid-file="$STATE/munged.pid.tmp" 2>"$STATE/munged.err"; then
        munged --force --pid-file="$STATE/munged.pid.tmp" 2>>"$STATE/munged.err" ||
            { cat "$STATE/munged.err" >&2; die "munged did not start"; }
    fi
    # munged writes its pid file as the munge user; keep our own copy (before
    # checking it, so that stop/uninstall find a munged that does not work)
    cp "$STATE/munged.pid.tmp" "$STATE/munged.pid" 2>/dev/null || pgrep -n -x munged >"$STATE/munged.pid"
    mark_started munged
    for _ in $(seq 1 20); do
        munge_works && break
        sleep 0.5
    done
    munge_works || { cat "$STATE/munged.err" >&2; show_log_tail /var/log/munge/munged.log; die "munged started but munge credentials do not work"; }
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
    make_dir emptydir "$CONF_DIR" -m 0755
    mkdir -p "$STATE/ctld" "$STATE/spool"
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

# the state dir is ours: it has our mark, or it is the state dir of an earlier
# version of this script (only the names that version wrote), or it is empty
state_is_ours() {
    local e
    [ -f "$STATE/$STATE_MARK" ] && return 0
    for e in "$STATE"/* "$STATE"/.[!.]*; do
        [ -e "$e" ] || continue
        case "$LEGACY_ENTRIES" in *" ${e##*/} "*) ;; *) return 1 ;; esac
    done
    return 0
}

make_state_dir() {
    if [ -d "$STATE" ]; then
        state_is_ours || die "$STATE exists and was not made by this script (no $STATE_MARK in it); set SLURM_LOCAL_STATE to another directory"
    else
        mkdir -p "$STATE"
    fi
    touch "$STATE/$STATE_MARK"
}

cmd_start() {
    need_root
    make_state_dir
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

# a record file of the state dir, one entry a line ("" when there is none)
recorded() { [ -f "$STATE/$1" ] && cat "$STATE/$1" || true; }

# installed packages among the arguments (config-files only counts as removed)
still_installed() {
    [ $# -eq 0 ] && return 0
    dpkg-query -W -f='${db:Status-Status} ${Package}\n' "$@" 2>/dev/null | awk '$1 == "installed" {print $2}' || true
}

# apt-get purge|remove exactly the given packages: check with a dry run that apt
# would take away nothing else (another package that needs one of them)
apt_take_away() {
    local action=$1 extra
    shift
    [ $# -eq 0 ] && return 0
    export DEBIAN_FRONTEND=noninteractive
    extra=$(apt-get -s "$action" "$@" 2>&1 | awk '/^(Remv|Purg) / {print $2}' | grep -vxF -f <(printf '%s\n' "$@") || true)
    [ -z "$extra" ] || die "apt-get $action $* would also remove $(echo "$extra" | tr '\n' ' ')(installed since start and depending on them); nothing removed. Remove those first or purge by hand"
    say "apt-get $action $*"
    if ! apt-get "$action" -y "$@" >>"$STATE/apt-uninstall.log" 2>&1; then
        show_log_tail "$STATE/apt-uninstall.log"
        die "apt-get $action $* failed (full log: $STATE/apt-uninstall.log); rerun uninstall after fixing it"
    fi
}

cmd_uninstall() {
    need_root
    local purge=() remove=() running kind path sum left
    if [ ! -d "$STATE" ]; then
        say "nothing to uninstall ($STATE does not exist: start did not run, or uninstall already did)"
        return 0
    fi
    state_is_ours || die "$STATE was not made by this script (no $STATE_MARK in it); not touching it"
    [ -f "$STATE/$STATE_MARK" ] || say "warning: $STATE is from an earlier version of this script that did not record the packages it installed; purge slurmctld slurmd slurm-client munge (and what they pulled in) by hand if it installed them"
    cmd_stop
    # what start installed and is still there
    mapfile -t purge < <(still_installed $(recorded packages.added))
    mapfile -t remove < <(still_installed $(recorded packages.reinstalled))
    if [ $((${#purge[@]} + ${#remove[@]})) -gt 0 ]; then
        # jobs' slurmstepd exit shortly after slurmd; other daemons are not ours to stop
        for _ in $(seq 1 20); do
            [ -n "$(ps -C slurmstepd -o stat= | grep -v '^Z' || true)" ] || break
            sleep 0.5
        done
        running=$(ps -C munged,slurmctld,slurmd,slurmstepd,slurmdbd -o pid=,stat=,args= | awk '$2 !~ /^Z/' || true)
        [ -z "$running" ] || die "SLURM/munge processes that this script did not start still run (stop them, then rerun uninstall); nothing removed:
$running"
    fi
    # files and directories start created (config files only when they carry the mark)
    for path in "$CONF" "$GRES"; do
        if [ -f "$path" ] && head -n 1 "$path" | grep -qF "$MARK"; then
            rm -f "$path" && say "removed $path"
        fi
    done
    while read -r kind path sum; do
        [ "$kind" = file ] && [ -e "$path" ] || continue
        sum=$(awk -v p="$path" '$1 == "sha256" && $2 == p {print $3}' "$STATE/created")
        if [ -n "$sum" ] && [ "$(sha256sum <"$path" | cut -d' ' -f1)" != "$sum" ]; then
            say "warning: keeping $path: changed since this script created it"
        else
            rm -f "$path" && say "removed $path"
        fi
    done < <(recorded created)
    apt_take_away purge "${purge[@]}"
    apt_take_away remove "${remove[@]}"
    # what the packages' purge left of /etc/slurm and /etc/munge as they were before start
    if [ -f "$STATE/etc-before.tar" ]; then
        tar -C /etc --skip-old-files -xpf "$STATE/etc-before.tar" || die "could not restore /etc from $STATE/etc-before.tar"
        say "restored what was in /etc/slurm and /etc/munge before start"
    fi
    while read -r kind path; do
        case "$kind" in
        dir) [ -e "$path" ] && rm -rf -- "$path" && say "removed $path" ;;
        emptydir) [ -d "$path" ] && rmdir -- "$path" 2>/dev/null && say "removed $path" ;;
        esac
    done < <(recorded created | tac)
    for path in $(recorded users.added); do
        getent passwd "$path" >/dev/null && userdel "$path" && say "removed user $path"
    done
    for path in $(recorded groups.added); do
        getent group "$path" >/dev/null && groupdel "$path" && say "removed group $path"
    done
    [ -s "$STATE/packages.upgraded" ] && say "note: start upgraded these packages; not downgraded: $(tr '\n' ';' <"$STATE/packages.upgraded")"
    left=$(recorded created | awk '$1 == "emptydir" {print $2}' | while read -r path; do if [ -e "$path" ]; then echo "$path"; fi; done)
    [ -z "$left" ] || say "kept (not empty; something else wrote there): $(echo "$left" | tr '\n' ' ')"
    rm -rf -- "$STATE"
    say "uninstalled: removed what start added, and $STATE"
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
    if command -v sinfo >/dev/null; then sinfo 2>&1 || true; fi
    [ -s "$STATE/packages.added" ] && echo "packages installed by start (uninstall purges them): $(tr '\n' ' ' <"$STATE/packages.added")"
    return $rc
}

case "${1:-}" in
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
uninstall) cmd_uninstall ;;
*)
    echo "usage: $0 start|stop|status|uninstall" >&2
    exit 2
    ;;
esac
