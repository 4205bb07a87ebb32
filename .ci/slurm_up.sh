#!/usr/bin/env bash
# A single-node SLURM cluster on 127.0.0.1 with accounting, from Debian's packages (as root; idempotent).
#   .ci/slurm_up.sh      start it (installs the packages once); .ci/slurm_down.sh stops every daemon by its PID file.
# State, logs, PID files and the MariaDB data live under $LRSCHED_SLURM_DIR (default /tmp/lrsched-slurm);
# /etc/slurm/slurm.conf and slurmdbd.conf are links into it, so sinfo/sbatch/sacct find the cluster without SLURM_CONF.
# Cluster `lrsched`, partition `debug` (the default), one node: this machine, as `slurmd -C` describes it.
set -euo pipefail
STATE="${LRSCHED_SLURM_DIR:-/tmp/lrsched-slurm}"
[ "$(id -u)" -eq 0 ] || { echo "slurm_up.sh: run as root (it starts munged, MariaDB, slurmdbd, slurmctld, slurmd)" >&2; exit 1; }

# Already up and answering: nothing to do.
if scontrol ping 2>/dev/null | grep -q UP && sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
  echo "slurm_up.sh: cluster already up ($STATE)"; exit 0
fi

need=""
for bin in slurmctld slurmd sinfo slurmdbd munged mariadbd; do command -v "$bin" >/dev/null || need=1; done
if [ -n "$need" ]; then
  apt-get update -qq
  # policy-rc.d on CI images keeps the packages' own services from starting: we start every daemon ourselves.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurmctld slurmd slurm-client slurmdbd munge mariadb-server >/dev/null
fi

mkdir -p "$STATE"/{etc,log,run,spool/ctld,spool/d,mysql,munge}
chown munge:munge "$STATE/munge"
mkdir -p /run/munge && chown munge:munge /run/munge
for conf in slurm.conf slurmdbd.conf; do  # never replace a site's own config
  if [ -e "/etc/slurm/$conf" ] && [ "$(readlink "/etc/slurm/$conf")" != "$STATE/etc/$conf" ]; then
    echo "slurm_up.sh: /etc/slurm/$conf exists and is not ours; refusing to replace it" >&2; exit 1
  fi
done

host="$(hostname -s)"
cat > "$STATE/etc/slurm.conf" <<CONF
ClusterName=lrsched
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# A requeued job waits cred_expire seconds before it may start again (default 120): 10 keeps the tests short.
AuthInfo=cred_expire=10
CommunicationParameters=NoInAddrAny,NoCtldInAddrAny
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
MailProg=/bin/true
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
JobAcctGatherType=jobacct_gather/none
# Jobs may be requeued; a job past its time limit is killed 5 s after SIGTERM.
JobRequeue=1
KillWait=5
MinJobAge=300
# Test pending jobs every 3 s (default 60), so a requeued job starts soon after its cred_expire wait.
SchedulerParameters=sched_interval=3
ReturnToService=2
$(slurmd -C | head -1) NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
CONF
cat > "$STATE/etc/slurmdbd.conf" <<CONF
AuthType=auth/munge
DbdHost=$host
DbdAddr=127.0.0.1
SlurmUser=root
PidFile=$STATE/run/slurmdbd.pid
LogFile=$STATE/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageUser=root
StorageLoc=slurm_acct_db
CONF
chmod 600 "$STATE/etc/slurmdbd.conf"
ln -sfn "$STATE/etc/slurm.conf" /etc/slurm/slurm.conf
ln -sfn "$STATE/etc/slurmdbd.conf" /etc/slurm/slurmdbd.conf

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
wait_for() {  # wait_for <what> <seconds> <command...>
  local what=$1 secs=$2; shift 2
  for _ in $(seq $((secs * 5))); do "$@" >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "slurm_up.sh: $what did not come up; logs in $STATE/log" >&2; exit 1
}

alive "$STATE/munge/munged.pid" || \
  runuser -u munge -- munged --force --pid-file="$STATE/munge/munged.pid" --log-file="$STATE/munge/munged.log"
wait_for munged 10 munge -n

# MariaDB on its unix socket only (no TCP); root logs in by unix_socket authentication, so no password exists.
export MYSQL_UNIX_PORT="$STATE/run/mysqld.sock"  # read by the MariaDB client library inside slurmdbd
[ -d "$STATE/mysql/mysql" ] || \
  mariadb-install-db --user=root --datadir="$STATE/mysql" --skip-test-db --auth-root-authentication-method=socket \
    >"$STATE/log/mariadb-install.log" 2>&1
alive "$STATE/run/mysqld.pid" || \
  (mariadbd --user=root --datadir="$STATE/mysql" --socket="$MYSQL_UNIX_PORT" --pid-file="$STATE/run/mysqld.pid" \
     --skip-networking --log-error="$STATE/log/mariadb.log" --innodb-buffer-pool-size=32M >/dev/null 2>&1 &)
wait_for MariaDB 30 mariadb-admin --socket="$MYSQL_UNIX_PORT" ping

alive "$STATE/run/slurmdbd.pid" || slurmdbd
wait_for slurmdbd 30 sacctmgr -n list cluster
alive "$STATE/run/slurmctld.pid" || slurmctld -c  # -c: a fresh cluster state; accounting keeps the job history
wait_for slurmctld 30 scontrol ping
alive "$STATE/run/slurmd.pid" || slurmd
wait_for "the node" 30 bash -c "sinfo -h -o %T | grep -qE '^(idle|mixed|allocated)'"
echo "slurm_up.sh: cluster lrsched up on 127.0.0.1, partition debug ($(sinfo -h -o '%c CPUs, %m MB'); state in $STATE)"
