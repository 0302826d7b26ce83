#!/bin/bash
# Provisions the flowgate VM (see Vagrantfile). Idempotent: safe to re-run
# with `vagrant provision`.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

echo "provision: huge pages at boot (1024 x 2 MB) and now"
if ! grep -q "hugepages=1024" /etc/default/grub; then
  sed -i 's/^GRUB_CMDLINE_LINUX="\(.*\)"/GRUB_CMDLINE_LINUX="\1 default_hugepagesz=2M hugepagesz=2M hugepages=1024"/' /etc/default/grub
  update-grub
fi
echo "vm.nr_hugepages = 1024" > /etc/sysctl.d/80-flowgate-hugepages.conf
sysctl -q -p /etc/sysctl.d/80-flowgate-hugepages.conf
mountpoint -q /dev/hugepages || mount -t hugetlbfs nodev /dev/hugepages

echo "provision: packages"
apt-get update -q
apt-get install -y -q --no-install-recommends libdpdk-dev dpdk pkg-config libclang-dev clang gcc make curl ca-certificates git pciutils kmod

if ! command -v cargo >/dev/null && [ ! -x /root/.cargo/bin/cargo ]; then
  echo "provision: Rust toolchain (rustup)"
  curl -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
fi
export PATH=/root/.cargo/bin:$PATH

echo "provision: build flowgate"
cd /vagrant
cargo build --release --bin flowgate
install -m 0755 target/release/flowgate /usr/local/bin/flowgate
install -m 0755 scripts/flowgate-bind /usr/local/sbin/flowgate-bind
install -d /usr/local/share/doc/flowgate /etc/flowgate /var/lib/flowgate
install -m 0644 README.md /usr/local/share/doc/flowgate/README.md

echo "provision: data NICs"
# The data NICs are the virtio NICs with no IPv4 address and no default
# route: everything but NAT (SSH) and the management network.
mgmt_if=$(ip -o -4 addr show | awk '/192\.168\.56\.10\//{print $2}')
nat_if=$(ip route show default | awk '{print $5; exit}')
: > /etc/flowgate/data-nics.new
for path in /sys/class/net/*; do
  ifc=$(basename "$path")
  [ "$ifc" = lo ] || [ "$ifc" = "$mgmt_if" ] || [ "$ifc" = "$nat_if" ] && continue
  [ -e "$path/device" ] || continue
  basename "$(readlink -f "$path/device")" >> /etc/flowgate/data-nics.new
done
# Keep the list from an earlier run when the NICs are already bound to DPDK
# (they no longer show up as kernel interfaces).
if [ -s /etc/flowgate/data-nics.new ]; then
  sort /etc/flowgate/data-nics.new > /etc/flowgate/data-nics
fi
rm -f /etc/flowgate/data-nics.new
mapfile -t nics < /etc/flowgate/data-nics
if [ "${#nics[@]}" -lt 2 ]; then
  echo "provision: expected two data NICs, found: ${nics[*]:-none}" >&2
  exit 1
fi
echo "provision: data NICs ${nics[0]} (inside) and ${nics[1]} (outside)"

echo "provision: config /etc/flowgate/flowgate.toml from config/vagrant.toml"
sed -e "s/0000:00:09.0/${nics[0]}/" -e "s/0000:00:0a.0/${nics[1]}/" config/vagrant.toml > /etc/flowgate/flowgate.toml
/usr/local/bin/flowgate run --check-config --config /etc/flowgate/flowgate.toml

echo "provision: systemd units"
install -m 0644 deploy/flowgate.service deploy/flowgate-bind.service /etc/systemd/system/
systemctl daemon-reload
systemctl enable --now flowgate-bind.service
systemctl enable flowgate.service
systemctl restart flowgate.service
sleep 3
systemctl --no-pager status flowgate.service | head -20
echo "provision: done; API on http://192.168.56.10:8080"
