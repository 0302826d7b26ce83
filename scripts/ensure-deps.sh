#!/usr/bin/env bash
# Installs what flowgate needs that is missing, and says what it does.
# Idempotent: a second run installs nothing. Usage: ensure-deps.sh [run|test|bench]
set -euo pipefail
what=${1:-run}
# From the repository root, where rust-toolchain.toml applies.
cd "$(dirname "$0")/.."

# Build and run: DPDK 22.11 (headers, libraries, PMDs), libclang for
# bindgen, pkg-config to find DPDK, and a C compiler for the shim.
# test and bench also need fonts-dejavu-core: flowgate-plot draws its text
# with DejaVu Sans (and its test renders the plots).
# curl and ca-certificates fetch rustup where no Rust is installed.
pkgs=(libdpdk-dev dpdk pkg-config libclang-dev clang gcc make curl ca-certificates)
case "$what" in
  test)  pkgs+=(tshark iproute2 python3-venv python3-pip dpdk-dev vagrant systemd fonts-dejavu-core) ;;
  bench) pkgs+=(dpdk-dev tshark python3-venv openvswitch-switch-dpdk wrk fonts-dejavu-core) ;;
esac

missing=()
for p in "${pkgs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "deps: all ${#pkgs[@]} Debian packages for '$what' are installed"
else
  echo "deps: installing ${missing[*]}"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "deps: need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  export DEBIAN_FRONTEND=noninteractive
  # tshark asks whether non-root users may capture; answer no, non-interactively.
  echo "wireshark-common wireshark-common/install-setcap boolean false" | $sudo debconf-set-selections
  if ! $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >/tmp/flowgate-apt.log 2>&1; then
    echo "deps: apt-get install failed; updating package lists and retrying"
    $sudo apt-get update -q >>/tmp/flowgate-apt.log 2>&1
    $sudo apt-get install -y -q --no-install-recommends "${missing[@]}" >>/tmp/flowgate-apt.log 2>&1 \
      || { tail -20 /tmp/flowgate-apt.log >&2; exit 1; }
  fi
  echo "deps: installed ${missing[*]}"
fi

ver=$(pkg-config --modversion libdpdk)
case "$ver" in
  22.11*) echo "deps: DPDK $ver" ;;
  *) echo "deps: DPDK $ver found, but flowgate needs 22.11 (Debian 12's libdpdk-dev)" >&2; exit 1 ;;
esac

# rust-toolchain.toml pins the toolchain (with clippy and rustfmt); rustup
# fetches it where missing. A machine with no Rust, or with an older cargo
# and no rustup (Debian's is 1.63), gets rustup first, in $CARGO_HOME
# (~/.cargo), which the Makefile puts first on PATH.
cargo_home=${CARGO_HOME:-$HOME/.cargo}
export PATH="$cargo_home/bin:$PATH"
min_rust=1.80
if ! command -v rustup >/dev/null; then
  have=$(cargo --version 2>/dev/null | awk '{print $2}' || true)
  if [ -n "$have" ] && dpkg --compare-versions "$have" ge "$min_rust"; then
    echo "deps: no rustup; using cargo $have from PATH (rust-toolchain.toml's pin needs rustup)"
  else
    url="https://static.rust-lang.org/rustup/dist/$(uname -m)-unknown-linux-gnu/rustup-init"
    echo "deps: ${have:+cargo $have is older than $min_rust; }installing rustup into $cargo_home (from $url)"
    tmp=$(mktemp -d)
    curl --proto '=https' --tlsv1.2 -sSf -o "$tmp/rustup-init" "$url"
    chmod +x "$tmp/rustup-init"
    "$tmp/rustup-init" -y -q --no-modify-path --default-toolchain none --profile minimal >/dev/null
    rm -rf "$tmp"
  fi
fi
if command -v rustup >/dev/null; then
  channel=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
  if rustup toolchain list | grep -q "^$channel-"; then
    echo "deps: Rust $channel (rust-toolchain.toml) is installed"
  else
    echo "deps: installing Rust $channel with clippy and rustfmt (rust-toolchain.toml, rustup)"
    rustup toolchain install --no-self-update >/dev/null
  fi
fi

if ! command -v cargo >/dev/null; then
  echo "deps: cargo not found after installing rustup into $cargo_home" >&2
  exit 1
fi
echo "deps: $(cargo --version)"

# make test runs a short fuzz of every target: cargo-fuzz from crates.io
# (it drives libFuzzer; the stable toolchain is enough, see fuzz-smoke.sh).
if [ "$what" = test ]; then
  if cargo fuzz --version >/dev/null 2>&1; then
    echo "deps: $(cargo fuzz --version)"
  else
    echo "deps: installing cargo-fuzz (cargo install cargo-fuzz --locked)"
    cargo install -q cargo-fuzz --locked
    echo "deps: $(cargo fuzz --version)"
  fi
fi
