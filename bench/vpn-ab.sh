#!/bin/bash
# vpn-ab.sh: two builds of Bifrost in ONE run of the reference harness, as its
# anchors custom ("before") and custom2 ("after"), interleaved round by round, so
# a change to the packet path is measured against the build before it on the
# same machine at the same time (docs/benchmarks.md). Root; about 4 minutes.
#
#   bench/vpn-ab.sh BEFORE_SRCDIR BEFORE_BUILDDIR AFTER_SRCDIR AFTER_BUILDDIR
#
# e.g. git worktree add /tmp/before <commit>, build it, then
#   bench/vpn-ab.sh /tmp/before /tmp/before/build "$PWD" "$PWD/build/release"
# Env: ROUNDS (3), OUT (/tmp/bifrost-vpn-ab), VPN_HARNESS (../shared/bench/vpn-throughput.sh),
# VPN_AB_ARGS: more harness options, e.g. "--quiet-wait 30 --quiet-max 30" on a shared machine.
set -u
[ $# = 4 ] || { sed -n 2,12p "$0"; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
harness=${VPN_HARNESS:-$here/../../shared/bench/vpn-throughput.sh}
[ -f "$harness" ] || { echo "vpn-ab: no harness at $harness (VPN_HARNESS=...)"; exit 1; }
# side NAME SRCDIR BUILDDIR: the harness options of one anchor
side () {
    local env="BIFROSTD=$3/supervisor/bifrostd BIFROST_LIBEXEC_DIR=$3/libexec" s="$2/bench/vpn-bifrost.sh"
    [ -x "$3/supervisor/bifrostd" ] || { echo "vpn-ab: $3 is not a build tree" >&2; exit 1; }
    echo "--$1-prepare|$env $s prepare|--$1-a|$env $s up|--$1-b|$env $s up|--$1-down-a|$env $s down|--$1-down-b|$env $s down"
}
IFS='|' read -r -a before <<<"$(side custom "$1" "$2")" || exit 1
IFS='|' read -r -a after <<<"$(side custom2 "$3" "$4")" || exit 1
# shellcheck disable=SC2086  # VPN_AB_ARGS: words on purpose
exec bash "$harness" -n "${ROUNDS:-3}" -t 5 --out "${OUT:-/tmp/bifrost-vpn-ab}" ${VPN_AB_ARGS:-} custom custom2 \
    --custom-name before "${before[@]}" --custom2-name after "${after[@]}"
