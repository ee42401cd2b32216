#!/usr/bin/env bash
# Starts a real single-node Slurm (Debian's slurmctld + slurmd + munge) on this machine, for the
# Slurm executor's tests and for trying `trendc run --executor slurm` without a cluster. No
# systemd needed. Safe to run again: installs what is missing, rewrites the config only when it
# changed, starts only daemons that are not running. Needs root and Debian's apt.
#
#   scripts/slurm/start-local-slurm.sh          start (about 5 s on a bare machine, 0.5 s after)
#   scripts/slurm/start-local-slurm.sh --stop   stop the daemons it started (by their PID files)
#
# TREND_SLURM_CPUS (default 8): CPUs the node declares, so that several one-CPU test jobs run at
# once on a small machine. Jobs are not confined (no cgroups): --mem and --cpus are bookkeeping.
set -euo pipefail

say() { printf 'start-local-slurm: %s\n' "$*" >&2; }
fail() { say "error: $*"; exit 1; }
[ "$(id -u)" = 0 ] || fail "needs root (it installs Debian's slurm packages and starts the daemons)"
# One start at a time (test files may call it at once).
# The daemons below are started with fd 9 closed: a daemon that inherited it would hold the lock
# for its whole life, and every later start would wait on it forever.
exec 9>/run/trend-start-local-slurm.lock
flock -w 300 9 || fail "another start has held /run/trend-start-local-slurm.lock for 5 minutes (see: fuser -v /run/trend-start-local-slurm.lock)"

running() { # running PIDFILE NAME: the process in PIDFILE runs and is NAME (not a zombie)
  local pid
  [ -s "$1" ] || return 1
  pid=$(tr -dc 0-9 <"$1")
  [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$2" ] && ! grep -q '^State:.*[ZX]' "/proc/$pid/status" 2>/dev/null
}
stop() { # stop PIDFILE NAME
  running "$1" "$2" || { rm -f "$1"; return 0; }
  local pid; pid=$(tr -dc 0-9 <"$1")
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do [ -d "/proc/$pid" ] || break; sleep 0.1; done
  [ -d "/proc/$pid" ] && kill -KILL "$pid" 2>/dev/null || true
  rm -f "$1"
}
if [ "${1:-}" = --stop ]; then
  stop /run/slurmd.pid slurmd; stop /run/slurmctld.pid slurmctld; stop /run/munge/munged.pid munged
  exit 0
fi
[ $# -eq 0 ] || fail "unknown argument: $1 (expected nothing or --stop)"

# 1. Packages. Their install scripts must not start daemons before the config exists.
missing=()
for p in munge slurmctld slurmd slurm-client; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  policy=0
  [ -e /usr/sbin/policy-rc.d ] || { printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod +x /usr/sbin/policy-rc.d; policy=1; }
  export DEBIAN_FRONTEND=noninteractive
  opts=(-y -q --no-install-recommends -o DPkg::Lock::Timeout=600)
  apt-get install "${opts[@]}" "${missing[@]}" >/tmp/trend-slurm-apt.log 2>&1 ||
    { apt-get update -q >>/tmp/trend-slurm-apt.log 2>&1 && apt-get install "${opts[@]}" "${missing[@]}" >>/tmp/trend-slurm-apt.log 2>&1; } ||
    { [ $policy = 1 ] && rm -f /usr/sbin/policy-rc.d; tail -5 /tmp/trend-slurm-apt.log >&2; fail "apt-get install failed (log: /tmp/trend-slurm-apt.log)"; }
  [ $policy = 1 ] && rm -f /usr/sbin/policy-rc.d
fi

# 2. Munge key and directories.
install -d -o munge -g munge -m 0700 /etc/munge /var/log/munge
install -d -o munge -g munge -m 0711 /var/lib/munge
install -d -o munge -g munge -m 0755 /run/munge
[ -s /etc/munge/munge.key ] || dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
chown munge:munge /etc/munge/munge.key && chmod 0400 /etc/munge/munge.key
install -d -m 0755 /etc/slurm /var/spool/slurmd
install -d -o slurm -g slurm -m 0755 /var/spool/trend-slurmctld /var/log/slurm

# 3. slurm.conf: one node on 127.0.0.1, one partition. KillWait=5: a job past its time limit
# gets SIGKILL 5 s after SIGTERM (default 30). batch_sched_delay=0: jobs start at once.
node=$(hostname -s)
cpus=${TREND_SLURM_CPUS:-8}
mem=$(awk '/MemTotal/ { m = int($2 / 1024) - 1024; print (m < 1024 ? 1024 : m) }' /proc/meminfo)
conf="# trend: scripts/slurm/start-local-slurm.sh (rewritten when it runs)
ClusterName=trendlocal
SlurmctldHost=${node}(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
StateSaveLocation=/var/spool/trend-slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=256
KillWait=5
ReturnToService=2
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=/var/log/slurm/jobcomp.log
SlurmdParameters=config_overrides
NodeName=${node} NodeAddr=127.0.0.1 CPUs=${cpus} RealMemory=${mem} State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP"
changed=0
if [ "$(cat /etc/slurm/slurm.conf 2>/dev/null)" != "$conf" ]; then
  [ -f /etc/slurm/slurm.conf ] && ! grep -q '^# trend:' /etc/slurm/slurm.conf && cp /etc/slurm/slurm.conf "/etc/slurm/slurm.conf.before-trend"
  printf '%s\n' "$conf" >/etc/slurm/slurm.conf
  changed=1
fi

# 4. Daemons: munged, slurmctld, slurmd (restarted when the config changed).
running /run/munge/munged.pid munged || runuser -u munge -- /usr/sbin/munged 9>&-
for _ in $(seq 50); do munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
munge -n </dev/null | unmunge >/dev/null 2>&1 || fail "munged does not answer (/var/log/munge/munged.log)"
[ $changed = 1 ] && { stop /run/slurmd.pid slurmd; stop /run/slurmctld.pid slurmctld; }
running /run/slurmctld.pid slurmctld || slurmctld 9>&-
for _ in $(seq 100); do scontrol ping 2>/dev/null | grep -q 'is UP' && break; sleep 0.1; done
scontrol ping 2>/dev/null | grep -q 'is UP' || fail "slurmctld does not answer (/var/log/slurm/slurmctld.log)"
running /run/slurmd.pid slurmd || slurmd 9>&-
state=""
for _ in $(seq 150); do
  state=$(sinfo -h -N -n "$node" -o %T 2>/dev/null | head -1)
  case "$state" in
    idle* | mixed* | allocated* | completing*) break ;;
    down* | drain* | fail*) scontrol update NodeName="$node" State=RESUME 2>/dev/null || true ;;
  esac
  sleep 0.2
done
case "$state" in idle* | mixed* | allocated* | completing*) ;; *) fail "node $node is '$state' (/var/log/slurm/slurmd.log)" ;; esac
say "ready: node $node ($cpus CPUs) is $state"
