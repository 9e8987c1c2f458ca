#!/bin/bash
# Builds, once per testbed, the device nodes every node's private /dev starts
# with; node-setup.sh copies them with one `cp -a` instead of a dozen mknod
# calls per node. Usage: dev-template.sh <dir>
set -euo pipefail
dir=$1
mkdir -p "$dir"/{pts,shm,mapper,disk/by-id,disk/by-path}
mknod -m 666 "$dir/null" c 1 3
mknod -m 666 "$dir/zero" c 1 5
mknod -m 666 "$dir/full" c 1 7
mknod -m 666 "$dir/random" c 1 8
mknod -m 666 "$dir/urandom" c 1 9
mknod -m 666 "$dir/tty" c 5 0
mknod -m 666 "$dir/fuse" c 10 229
mknod -m 660 "$dir/loop-control" c 10 237
ln -s pts/ptmx "$dir/ptmx"
ln -s /proc/self/fd "$dir/fd"
ln -s /proc/self/fd/0 "$dir/stdin"
ln -s /proc/self/fd/1 "$dir/stdout"
ln -s /proc/self/fd/2 "$dir/stderr"
