#!/usr/bin/env bash
# The system packages `make test` needs: Chromium for the browser tests (Playwright drives the
# system browser) and redis-server for the store tests (started on a free loopback port).
# All present: exit 0 at once, without calling apt. Something missing: as root with apt-get,
# install it; otherwise print the command to run and exit 1.
#
# AVHUB_CHROMIUM (default /usr/bin/chromium) and AVHUB_REDIS_SERVER (default redis-server) name
# what the tests run, as in tests/conftest.py.
set -euo pipefail

chromium=${AVHUB_CHROMIUM:-/usr/bin/chromium}
redis_server=${AVHUB_REDIS_SERVER:-redis-server}

packages=()
find_missing() {
    packages=()
    [ -x "$chromium" ] || packages+=(chromium)
    command -v "$redis_server" >/dev/null 2>&1 || packages+=(redis-server)
}

find_missing
if [ "${#packages[@]}" -eq 0 ]; then
    exit 0
fi

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing the system packages the tests need: ${packages[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${packages[@]}"
    find_missing
    if [ "${#packages[@]}" -eq 0 ]; then
        exit 0
    fi
    echo "still missing after apt-get install: ${packages[*]}" \
        "(chromium at $chromium, $redis_server on PATH)" >&2
    exit 1
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo "
fi
{
    echo "the tests need system packages that are missing: ${packages[*]}" \
        "(chromium at $chromium, $redis_server on PATH); run:"
    echo "  ${sudo}apt-get update && ${sudo}apt-get install -y --no-install-recommends ${packages[*]}"
} >&2
exit 1
