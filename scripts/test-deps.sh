#!/usr/bin/env bash
# Installs and checks what `make test` needs. Under CI=true a dependency that
# cannot be had fails the run; it is never skipped.
set -euo pipefail

missing=()
need() { command -v "$1" >/dev/null 2>&1 || missing+=("$1"); }

need go
need gcc # the race detector needs cgo

if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "test-deps: installing ${missing[*]}"
		apt-get update -qq
		for m in "${missing[@]}"; do
			case "$m" in
			gcc) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc libc6-dev >/dev/null ;;
			go) echo "test-deps: Go must be installed (https://go.dev/dl); it is not a Debian package at the required version" >&2; exit 1 ;;
			esac
		done
	else
		echo "test-deps: missing ${missing[*]} and cannot install them (need root and apt-get)" >&2
		exit 1
	fi
fi
echo "test-deps: $(go version)"
