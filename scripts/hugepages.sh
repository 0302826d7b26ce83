#!/usr/bin/env bash
# Reserves 2 MB huge pages and mounts hugetlbfs when running as root, so DPDK
# can use them; otherwise says that flowgate will fall back to --no-huge.
# Idempotent. Usage: hugepages.sh [pages]   (default 1024 = 2 GiB)
#        hugepages.sh --can-reserve   prints 1 when this user can reserve
#                                     pages (root, writable sysfs), else 0
set -u
nr=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
if [ "${1:-}" = --can-reserve ]; then
  if [ "$(id -u)" -eq 0 ] && [ -w "$nr" ]; then echo 1; else echo 0; fi
  exit 0
fi
want=${1:-1024}
if [ "$(id -u)" -ne 0 ]; then
  echo "hugepages: not root; flowgate will run with --no-huge unless pages are already reserved"
  exit 0
fi
if [ ! -w "$nr" ]; then
  echo "hugepages: $nr is not writable here; flowgate will run with --no-huge"
  exit 0
fi
have=$(cat "$nr")
if [ "$have" -lt "$want" ]; then
  echo "$want" > "$nr" 2>/dev/null || true
  echo "hugepages: reserved $(cat "$nr") x 2 MB (asked for $want, had $have)"
else
  echo "hugepages: $have x 2 MB reserved"
fi
if ! grep -q " hugetlbfs " /proc/mounts; then
  mkdir -p /dev/hugepages
  if mount -t hugetlbfs nodev /dev/hugepages 2>/dev/null; then
    echo "hugepages: mounted hugetlbfs on /dev/hugepages"
  else
    echo "hugepages: cannot mount hugetlbfs; flowgate will run with --no-huge"
  fi
fi
exit 0
