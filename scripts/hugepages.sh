#!/usr/bin/env bash
# Reserves 2 MB huge pages and mounts hugetlbfs when running as root, so DPDK
# can use them; otherwise says that flowgate will fall back to --no-huge.
# Idempotent. Usage: hugepages.sh [pages]   (default 1024 = 2 GiB)
set -u
want=${1:-1024}
nr=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
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
