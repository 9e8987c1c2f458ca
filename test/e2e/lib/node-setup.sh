#!/bin/bash
# Turns a fresh mount+UTS+net namespace into a GlusterFS storage node.
# Run by testbed.ts through `nsenter -t <holder> -m -u -n`; every mount made
# here lives only in the node's mount namespace (created with private
# propagation, so nothing leaks to the host).
#
# Inputs (environment):
#   NODE_DIR       host path of the node's private area (same path in the node)
#   NODE_HOSTNAME  hostname of the node
#   NODE_IP        the node's address on the testbed bridge (sshd listens there)
#   USR_LAYER      directory with the stand-ins (sbin/lvm, bin/udevadm, ...)
#   DEV_TEMPLATE   directory with the common /dev nodes (dev-template.sh)
#   DISKS          "sdb:7:12:<wwn> sdc:7:13:<wwn>": node device name, loop
#                  major and minor, and the WWN shown in /dev/disk/by-id
#   AUTHORIZED_KEY public key allowed to log in as root
#   SETUP_TRACE    non-empty: write a timed trace to $NODE_DIR/setup.trace
set -euo pipefail
if [[ -n ${SETUP_TRACE:-} ]]; then
  PS4='+ $EPOCHREALTIME '
  exec 2>>"$NODE_DIR/setup.trace"
  set -x
fi

mkdir -p "$NODE_DIR"/{glusterd,log,heketi,root/.ssh,run,lvm,ssh,etc-upper,etc-work,varlib-upper,varlib-work}

# Mounts copied from the host that belong to other testbeds (FUSE clients,
# bricks of nodes created earlier) would be pinned by this namespace and keep
# their owners from unmounting them: drop them here.
drop_inherited_mounts() {
  local mnt type
  while read -r _ mnt type _; do
    mnt=$(printf '%b' "$mnt") # /proc/mounts escapes spaces as \040
    if [[ $type == fuse.glusterfs || $mnt == /tmp/heqet-testbed-* || $mnt == /var/lib/heketi/* ]]; then
      umount -l "$mnt" 2>/dev/null || true
    fi
  done < <(tac /proc/self/mounts)
}

overlay() { # overlay <target> <upper> <work>: private writable copy of target
  mount -t overlay overlay -o "lowerdir=$1,upperdir=$2,workdir=$3" "$1"
}

setup_filesystems() {
  # /etc is an overlay, not a bind of single files: heketi's
  # `sed -i.save ... /etc/fstab` renames onto /etc/fstab.
  overlay /etc "$NODE_DIR/etc-upper" "$NODE_DIR/etc-work"
  overlay /var/lib "$NODE_DIR/varlib-upper" "$NODE_DIR/varlib-work"
  mkdir -p /var/lib/heketi
  # Option groups (`volume set <vol> group virt`) ship in glusterd's state
  # directory. Hooks (samba, ganesha, selinux...) are left out on purpose.
  if [[ -d /var/lib/glusterd/groups ]]; then cp -r /var/lib/glusterd/groups "$NODE_DIR/glusterd/"; fi
  mount --bind "$NODE_DIR/glusterd" /var/lib/glusterd
  mount --bind "$NODE_DIR/heketi" /var/lib/heketi
  mkdir -p /var/log/glusterfs
  mount --bind "$NODE_DIR/log" /var/log/glusterfs
  mount -t tmpfs -o mode=755,size=64m tmpfs /run
  mkdir -p /run/sshd /run/gluster
  chmod 700 "$NODE_DIR/root" "$NODE_DIR/root/.ssh"
  mount --bind "$NODE_DIR/root" /root
  # The stand-ins shadow /usr/sbin/lvm, /usr/bin/udevadm, /usr/bin/systemctl.
  mount -t overlay overlay -o "lowerdir=$USR_LAYER:/usr" /usr
}

setup_dev() {
  local spec name major minor wwn i=0
  mount -t tmpfs -o mode=755,nosuid,size=1m tmpfs /dev
  cp -a "$DEV_TEMPLATE/." /dev/
  mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts /dev/pts
  mount -t tmpfs -o mode=1777,size=16m tmpfs /dev/shm
  for spec in $DISKS; do
    IFS=: read -r name major minor wwn <<<"$spec"
    mknod -m 660 "/dev/$name" b "$major" "$minor"
    # Stable names like udev's, so heketi's device paths look real.
    ln -s "../../$name" "/dev/disk/by-id/wwn-0x$wwn"
    ln -s "../../$name" "/dev/disk/by-path/pci-0000:00:10.0-scsi-0:0:$i:0"
    i=$((i + 1))
  done
}

setup_identity() {
  hostname "$NODE_HOSTNAME"
  echo "$NODE_HOSTNAME" >/etc/hostname
  echo "$NODE_IP $NODE_HOSTNAME" >>/etc/hosts
  printf '# /etc/fstab of testbed node %s\n' "$NODE_HOSTNAME" >/etc/fstab
  mkdir -p /etc/heqet-testbed
  # gluster-block stand-in: one state file per export host, in a directory
  # the testbed's nodes share (see fixtures/usr/sbin/gluster-block)
  local block_dir
  block_dir="$(dirname "$(dirname "$NODE_DIR")")/gluster-block"
  mkdir -p "$block_dir"
  printf '{"node": "%s", "targets": {}}\n' "$NODE_HOSTNAME" >"$block_dir/$NODE_IP.json"
  printf '{"node": "%s", "lvmStateDir": "%s/lvm", "blockStateDir": "%s"}\n' \
    "$NODE_HOSTNAME" "$NODE_DIR" "$block_dir" >/etc/heqet-testbed/node.json
  printf '%s\n' "$AUTHORIZED_KEY" >/root/.ssh/authorized_keys
  chmod 600 /root/.ssh/authorized_keys
}

write_sshd_config() {
  ssh-keygen -q -t ed25519 -N '' -C "$NODE_HOSTNAME" -f "$NODE_DIR/ssh/host_ed25519_key"
  # MaxStartups/MaxSessions high: heqet opens many parallel connections.
  printf '%s\n' \
    "ListenAddress $NODE_IP:22" \
    "HostKey $NODE_DIR/ssh/host_ed25519_key" \
    'PidFile /run/sshd.pid' \
    'PermitRootLogin prohibit-password' \
    'PubkeyAuthentication yes' \
    'AuthorizedKeysFile /root/.ssh/authorized_keys' \
    'PasswordAuthentication no' \
    'KbdInteractiveAuthentication no' \
    'UsePAM no' \
    'UseDNS no' \
    'PrintMotd no' \
    'MaxStartups 200' \
    'MaxSessions 200' \
    'LogLevel ERROR' >"$NODE_DIR/ssh/sshd_config"
}

start_daemons() {
  # Started as the packaged units do; they daemonize and outlive this script.
  # glusterd returns only once initialised (~1–2 s): start sshd meanwhile.
  /usr/sbin/glusterd -p /var/run/glusterd.pid </dev/null >>"$NODE_DIR/daemons.log" 2>&1 &
  local glusterd_starter=$!
  /usr/sbin/sshd -f "$NODE_DIR/ssh/sshd_config" -E "$NODE_DIR/sshd.log" </dev/null >>"$NODE_DIR/daemons.log" 2>&1
  wait "$glusterd_starter"
}

ip link set lo up
# IPv4 only: no router solicitations or DAD noise on the bridge.
echo 1 >/proc/sys/net/ipv6/conf/all/disable_ipv6 2>/dev/null || true
ip addr add "$NODE_IP/24" dev eth0
ip link set eth0 up
drop_inherited_mounts
setup_filesystems
setup_dev
setup_identity
write_sshd_config
start_daemons
