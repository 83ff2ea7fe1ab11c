#!/usr/bin/env bash
# A one-node Slurm cluster on this machine, for the sweep tests (Debian's slurm-wlm and munge;
# run as root). Usage: scripts/slurm-cluster.sh start|stop DIR
# `start` writes a munge key and a slurm.conf under DIR, starts munged, slurmctld and slurmd,
# and waits until `sinfo` shows the node idle; `stop` ends them. SLURM_CONF must point at
# DIR/slurm.conf for the client commands (sbatch, squeue, scancel): `start` prints the line.
set -euo pipefail
cmd=${1:?start or stop}
dir=$(mkdir -p "${2:?a state directory}" && cd "$2" && pwd)
export SLURM_CONF=$dir/slurm.conf

stop() {
    for pidfile in "$dir"/slurmd.pid "$dir"/slurmctld.pid "$dir"/munged.pid; do
        [ -f "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null || true
        rm -f "$pidfile"
    done
}

if [ "$cmd" = stop ]; then
    stop
    exit 0
fi

host=$(hostname -s)
cpus=$(nproc)
mkdir -p "$dir"/{munge,spool,state,log}
chmod 700 "$dir/munge"
dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$dir/munge/munge.key"
munged --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
    --pid-file="$dir/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/seed" --force

cat > "$SLURM_CONF" <<CONF
ClusterName=sepnet-test
SlurmctldHost=$host
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
ReturnToService=2
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
MpiDefault=none
JobCompType=jobcomp/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
InactiveLimit=0
MinJobAge=300
KillWait=5
Waittime=0
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF

slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 60); do
    if sinfo -h -o %T 2>/dev/null | grep -q idle; then
        echo "export SLURM_CONF=$SLURM_CONF"
        exit 0
    fi
    sleep 1
done
echo "the Slurm node did not come up; logs in $dir/log" >&2
sinfo >&2 || true
stop
exit 1
