#!/bin/sh
# Install the Debian packages mdoctor builds and runs with, if any is missing.
# python3-torch is only for regenerating test fixtures and for benchmarks.
set -e
PKGS="build-essential liblua5.4-dev lua5.4 libblis-dev libstb-dev libreadline-dev zlib1g-dev libmatio-dev dataset-fashion-mnist"
[ -n "$MD_WITH_TORCH" ] && PKGS="$PKGS python3-torch"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing"
SUDO=""
[ "$(id -u)" != 0 ] && SUDO=sudo
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $missing
