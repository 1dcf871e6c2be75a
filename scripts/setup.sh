#!/usr/bin/env bash
# setup.sh: installs the Debian packages conduitfs needs to build, run and test (when root).
set -euo pipefail

BUILD_PKGS=(cmake pkg-config gcc make libfuse3-dev libjansson-dev libssl-dev libssh2-1-dev
            libcurl4-openssl-dev libsqlite3-dev)
RUN_PKGS=(fuse3 caddy dnsmasq-base openssl jq)     # jq: the conduit-* commands
TEST_PKGS=(dnsutils curl python3 clang libclang-rt-14-dev openssh-server podman runc busybox-static
           python3-prometheus-client python3-jsonschema
           chromium libnss3-tools)    # test_serving.sh: Chromium accepts the serving leaves

want=("${BUILD_PKGS[@]}" "${RUN_PKGS[@]}")
[[ "${1:-}" == "--test" ]] && want+=("${TEST_PKGS[@]}")

missing=()
for p in "${want[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing+=("$p")
done
((${#missing[@]} == 0)) && exit 0

if [[ $(id -u) -ne 0 ]]; then
    echo "setup: missing packages: ${missing[*]} (run as root, or: sudo apt-get install ...)" >&2
    exit 1
fi
echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
