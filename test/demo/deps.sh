#!/bin/sh
# Installs the Debian packages the demo and the end-to-end tests need, or,
# when not root, says exactly what to install. Extra package names given as
# arguments are checked too (.ci/run adds its build tools that way).
#
#   test/demo/deps.sh [PACKAGE]...
set -eu

# A package counts as present when dpkg has it installed, or, for the ones
# that may come from elsewhere (a docker-ce install provides dockerd but not
# the docker.io package), when its command is on PATH.
have() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed' && return 0
	case $1 in
	docker.io) command -v dockerd >/dev/null 2>&1 && command -v docker >/dev/null 2>&1 ;;
	docker-registry) command -v docker-registry >/dev/null 2>&1 ;;
	*) return 1 ;;
	esac
}

missing=
for pkg in docker.io busybox-static docker-registry "$@"; do
	have "$pkg" || missing="$missing $pkg"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "missing Debian packages:$missing" >&2
	echo "install them as root:" >&2
	echo "  apt-get update && apt-get install -y$missing" >&2
	exit 1
fi

echo "installing:$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update
# shellcheck disable=SC2086 # word splitting of the package list is intended
apt-get install -y $missing
