#!/usr/bin/env bash
# Installs what `make test` needs from Debian packages when it is missing.
# Under CI=true a dependency that cannot be had fails the run; it is never
# skipped.
set -euo pipefail

have() {
	case "$1" in
	initdb) compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null ;; # not on PATH in Debian
	*) command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] ;;
	esac
}

# command -> Debian package
declare -A pkg=(
	[gcc]=gcc           # the race detector needs cgo
	[nginx]=nginx-light # forward-auth end-to-end test (auth_request)
	[initdb]=postgresql # the PostgreSQL store's tests start a throwaway cluster
	[caddy]=caddy       # forward-auth end-to-end test (forward_auth), with docs/gateways/caddy-keylens.Caddyfile
	[redis-server]=redis-server # Tyk analytics tests start a throwaway Redis
	[chromium]=chromium # the console's browser tests (chromedp), headless
	[npm]=npm           # fetches axe-core, the accessibility engine the browser tests inject
)

if ! have go; then
	echo "test-deps: Go is required (the machine image provides it at /usr/local/go)" >&2
	exit 1
fi

missing=()
for cmd in "${!pkg[@]}"; do
	have "$cmd" || missing+=("${pkg[$cmd]}")
done

if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
		echo "test-deps: installing ${missing[*]}"
		apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	else
		echo "test-deps: missing ${missing[*]} and cannot install them (need root and apt-get)" >&2
		exit 1
	fi
fi

for cmd in "${!pkg[@]}"; do
	if ! have "$cmd"; then
		echo "test-deps: $cmd still missing after install" >&2
		exit 1
	fi
done
# nginx-light must carry auth_request.
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
if ! "$nginx_bin" -V 2>&1 | grep -q http_auth_request_module; then
	echo "test-deps: $nginx_bin lacks the auth_request module" >&2
	exit 1
fi

# axe-core, the accessibility engine the console's browser tests inject, from
# the npm registry into a cache outside the repository; its one file is
# copied to tests/testdata/ (ignored by git). Pinned, so that every run checks
# the same rules.
AXE_VERSION=4.14.1
axe_cache="${KEYLENS_TEST_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/keylens-test}/axe-core-$AXE_VERSION"
axe_file="$axe_cache/node_modules/axe-core/axe.min.js"
if [ ! -s "$axe_file" ]; then
	echo "test-deps: fetching axe-core $AXE_VERSION"
	mkdir -p "$axe_cache"
	if ! npm install --prefix "$axe_cache" --no-save --no-audit --no-fund --loglevel=error "axe-core@$AXE_VERSION" >/dev/null || [ ! -s "$axe_file" ]; then
		echo "test-deps: npm could not fetch axe-core $AXE_VERSION" >&2
		exit 1
	fi
fi
here=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$here/tests/testdata"
cp "$axe_file" "$here/tests/testdata/axe.min.js"

echo "test-deps: $(go version | cut -d' ' -f3), $("$nginx_bin" -v 2>&1), $(ls -d /usr/lib/postgresql/*/bin | head -1), $(redis-server --version | cut -d' ' -f1-3), $(chromium --version 2>/dev/null | head -1), axe-core $AXE_VERSION"
