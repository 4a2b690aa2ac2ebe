#!/bin/bash
# PID 1 of the User-Mode-Linux guest that runs a real pppd for wipstack's
# interop tests.  tests/harness/uml.py copies this file into the run dir and
# boots the guest with init=<run dir>/init and WS_DIR=<run dir> in the
# environment.  Every fork/exec costs ~35 ms of the guest's single CPU, so
# this script forks as little as possible before pppd starts.
#
# Guest layout (set up by one "mount -a" of the fstab written by the host):
#   /        the host's / (hostfs, read-only)
#   /run     the host run dir (hostfs, read-write): all state files below
#   /etc/ppp /run/etc-ppp (private options, secrets, ip-up/ip-down hooks)
#   /tmp     tmpfs
# Files the host writes: pppd.args (NUL-separated options), pppd.tty (the
# device pppd runs on), modules.list (extra modules), pre_cmd.sh, cmd.sh,
# post_cmd.sh.  Files the host reads: init.ready, pppd.rc, ip-up.env, cmd.out,
# cmd.rc, pre_cmd.rc, post_cmd.rc.
# Order: modules -> pre_cmd (may leave a daemon in the background) -> pppd ->
# cmd once IPCP is up -> stop pppd -> post_cmd -> power off.
# Stop protocol: mconsole "cad" -> SIGINT to this init (the host boots with
# sysctl.kernel.ctrl-alt-del=0) -> SIGTERM to pppd (LCP Terminate-Request)
# -> pppd exits -> power off.

export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/tmp TERM=dumb LANG=C
exec </dev/null
say() { echo "wipstack-guest: $*"; }

busybox mount -a -T "$WS_DIR/fstab" || say "some mounts failed"
# sleep without forking: read with a timeout from a fifo nobody writes to
exec 9<>/run/nap.fifo
nap() { read -r -t "$1" -u 9 _; :; }
# one modprobe for the PPP modules and the extra ones (the host has no /lib/modules for this kernel)
EXTRA_MODULES=()
[ -s /run/modules.list ] && read -r -a EXTRA_MODULES </run/modules.list
modprobe -d /run/modroot -a ppp_async ppp_deflate bsd_comp ipv6 "${EXTRA_MODULES[@]}" || say "modprobe failed"
PPPD_TTY=/dev/ttyS1
[ -s /run/pppd.tty ] && read -r PPPD_TTY </run/pppd.tty

STOP= PPPD_PID=
on_stop() {
  [ -n "$STOP" ] && return
  STOP=1
  say "stop requested"
  [ -n "$PPPD_PID" ] && kill -TERM "$PPPD_PID" 2>/dev/null
}
trap on_stop INT TERM HUP

power_off() {
  say "powering off"
  echo o >/proc/sysrq-trigger
  nap 10
  busybox poweroff -f
}

if [ -s /run/pre_cmd.sh ] || [ -s /run/cmd.sh ]; then ip link set lo up; fi
if [ -s /run/pre_cmd.sh ]; then
  say "running pre_cmd"
  # a child pre_cmd leaves in the background survives (re-parented to this init)
  (cd /tmp && bash /run/pre_cmd.sh)
  rc=$?
  say "pre_cmd exited with status $rc"
  echo "$rc" >/run/pre_cmd.rc
fi

mapfile -d '' -t PPPD_ARGS </run/pppd.args
say "starting: pppd $PPPD_TTY nodetach ${PPPD_ARGS[*]}"
pppd "$PPPD_TTY" nodetach "${PPPD_ARGS[@]}" &
PPPD_PID=$!
[ -n "$STOP" ] && kill -TERM "$PPPD_PID" 2>/dev/null
: >/run/init.ready

if [ -s /run/cmd.sh ]; then
  # wait (bounded) for the ip-up hook, then run cmd once
  limit=$(( ${WS_UP_TIMEOUT:-60} * 20 )) t=0
  while [ ! -e /run/ip-up.env ] && [ -z "$STOP" ] && [ "$t" -lt "$limit" ] \
        && kill -0 "$PPPD_PID" 2>/dev/null; do
    nap 0.05; t=$((t + 1))
  done
  if [ -e /run/ip-up.env ] && [ -z "$STOP" ]; then
    . /run/ip-up.env
    export PPP_IFACE PPP_LOCAL PPP_REMOTE DNS1 DNS2
    say "IPCP up ($PPP_IFACE $PPP_LOCAL -> $PPP_REMOTE): running cmd"
    (cd /tmp && exec bash /run/cmd.sh >/run/cmd.out 2>&1) &
    wait $!; rc=$?   # > 128 if a stop request interrupted the wait
    say "cmd exited with status $rc"
  else
    say "IPCP did not come up (or stop requested): cmd not run"
    rc=124
  fi
  echo "$rc" >/run/cmd.rc
  on_stop
fi

# "wait" returns early when a trapped signal arrives, hence the loop
while kill -0 "$PPPD_PID" 2>/dev/null; do wait "$PPPD_PID"; done
wait "$PPPD_PID"; rc=$?   # bash remembers the reaped child's status
say "pppd exited with status $rc"
echo "$rc" >/run/pppd.rc
if [ -s /run/post_cmd.sh ]; then
  say "running post_cmd"
  (cd /tmp && bash /run/post_cmd.sh)
  rc=$?
  say "post_cmd exited with status $rc"
  echo "$rc" >/run/post_cmd.rc
fi
power_off
