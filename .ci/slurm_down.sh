#!/usr/bin/env bash
# Stops the cluster that .ci/slurm_up.sh started: each daemon by its PID file, newest first; removes the config links.
#   .ci/slurm_down.sh [--purge]    --purge also deletes $LRSCHED_SLURM_DIR (default /tmp/lrsched-slurm)
set -uo pipefail
STATE="${LRSCHED_SLURM_DIR:-/tmp/lrsched-slurm}"
stop() {  # stop <pid file>: SIGTERM, then wait up to 15 s for the process to go
  local pidfile=$1 pid
  [ -s "$pidfile" ] || return 0
  pid="$(cat "$pidfile")"
  if kill -0 "$pid" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 75); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "slurm_down.sh: $pidfile ($pid) still running, sending SIGKILL" >&2; kill -9 "$pid"
    fi
  fi
  rm -f "$pidfile"
}
for pidfile in slurmd slurmctld slurmdbd mysqld; do stop "$STATE/run/$pidfile.pid"; done
stop "$STATE/munge/munged.pid"
for conf in slurm.conf slurmdbd.conf; do
  [ "$(readlink "/etc/slurm/$conf" 2>/dev/null)" = "$STATE/etc/$conf" ] && rm -f "/etc/slurm/$conf"
done
[ "${1:-}" = "--purge" ] && rm -rf "$STATE"
echo "slurm_down.sh: stopped (state in $STATE)"
