#!/usr/bin/env bash
# Installs what the end-to-end testbed (test/e2e/lib/testbed.ts) needs:
# GlusterFS server and FUSE client, sshd for the nodes, the real xfs tools
# for bricks, and the namespace/loop-device tooling. Idempotent: packages
# already present are skipped, so CI can call it on every run.
set -euo pipefail

packages=(
  glusterfs-server   # glusterd, gluster CLI, brick daemons
  glusterfs-client   # mount.glusterfs (FUSE) for mounting volumes on the host
  fuse3              # /dev/fuse helpers used by the FUSE client
  openssh-server     # sshd inside each node
  openssh-client     # ssh / ssh-keygen on the host
  sudo               # heketi's sshexec `sudo: true` prefixes every node command
  xfsprogs           # mkfs.xfs for bricks
  iproute2           # ip netns / bridge / veth
  util-linux         # nsenter, unshare, losetup, mount
  psmisc             # fuser (diagnosing busy mounts)
  lsof               # heketi's debug_umount_failures path
  procps             # ps/pgrep for assertions
  python3            # the LVM simulator
  etcd-server        # a real etcd for the etcd store's tests (test/store-etcd.test.ts)
  gawk               # heketi's fstab append uses awk
  sed
  coreutils
  jq                 # deploy/heqet-deploy reads the topology (test/heqet-deploy.test.ts)
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "e2e-deps: all ${#packages[@]} packages present"
  exit 0
fi

echo "e2e-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Other jobs on the machine may hold the dpkg lock: wait for it.
lock=(-o DPkg::Lock::Timeout=600)
apt-get "${lock[@]}" update -qq
# --no-install-recommends keeps the install small; policy-rc.d stops the
# packages from starting host-wide glusterd/sshd (there is no init anyway,
# but a host glusterd would grab port 24007 in the root namespace).
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
  printf '#!/bin/sh\nexit 101\n' >"$policy"
  chmod +x "$policy"
  created_policy=1
fi
apt-get "${lock[@]}" install -y -qq --no-install-recommends "${missing[@]}"
if ((created_policy)); then rm -f "$policy"; fi
echo "e2e-deps: done"
