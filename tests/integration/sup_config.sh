#!/bin/sh
# sup_config: bifrostd --check-config exit codes and messages (file:line: path:
# what was expected) for bad configs, --print-default-config passes its own
# check, the common options (-h, -v) work, and a run directory that is not
# safely ours (a symlink, world-writable, someone else's) is refused untouched.
. "$(dirname "$0")/sup_lib.sh"
echo "1..21"

# check NAME EXPECTED-TEXT CONFIG-TEXT: exit 78 and the message on stderr
check () {
    printf '%s\n' "$3" > "$T/$1.cfg"
    "$BIFROSTD" --check-config -c "$T/$1.cfg" >"$T/out" 2>"$T/err"
    RC=$?
    [ "$RC" -eq 78 ] && grep -qF "$2" "$T/err"
    ok $? "$1: exit 78 and \"$2\"(exit $RC)"
}

"$BIFROSTD" --print-default-config > "$T/default.cfg"
ok $? "--print-default-config prints a config"
grep -q "^services" "$T/default.cfg" && grep -q "^# " "$T/default.cfg"
ok $? "the default config is annotated"
"$BIFROSTD" --check-config -c "$T/default.cfg" >"$T/out" 2>&1
ok $? "the default config passes --check-config"
"$BIFROSTD" --check-config -c "${BIFROST_SRCDIR:-.}/examples/bifrostd.cfg" >"$T/out" 2>&1
ok $? "examples/bifrostd.cfg passes --check-config"

check restart "restart.cfg:3: services.[0].restart: expected one of permanent, transient, temporary" \
'services = (
  { name = "a"; exec = "x";
    restart = "sometimes"; }
);'
check syntax "syntax.cfg:2: syntax error" \
'services = (
  { name = "a"; exec = ; }
);'
check typo "typo.cfg:2: supervisor.intensty: unknown setting" \
'services = ( );
supervisor: { intensty = 3; };'
check cycle "cycle.cfg:2: services.[0].depends: dependency cycle among a, b" \
'services = (
  { name = "a"; exec = "x"; depends = ["b"]; },
  { name = "b"; exec = "x"; depends = ["a"]; }
);'
check unknown_dep 'unknown_dep.cfg:1: services.[0].depends: unknown service "ghost"' \
'services = ( { name = "a"; exec = "x"; depends = ["ghost"]; } );'
check duration 'duration.cfg:1: supervisor.period: expected a duration such as' \
'supervisor: { period = "soon"; };
services = ( );'
unset SUP_TEST_UNSET_VAR
check envvar 'envvar.cfg:2: services.[0].exec: environment variable SUP_TEST_UNSET_VAR is not set' \
'services = (
  { name = "a"; exec = "${SUP_TEST_UNSET_VAR}"; } );'

# Several errors are all reported, and nothing starts
printf 'services = ( { name = "a"; exec = "x"; instances = 99; restart = 1; } );\nrun_dir = "%s";\n' "$RUN" > "$T/many.cfg"
"$BIFROSTD" -c "$T/many.cfg" >"$T/out" 2>"$T/err"
RC=$?
[ "$RC" -eq 78 ] && [ "$(grep -c 'many.cfg:1:' "$T/err")" -eq 2 ] && [ ! -e "$RUN/control.ipc" ]
ok $? "bifrostd with two bad values: both reported, exit 78, nothing started"

"$BIFROSTD" --check-config -c "$T/nonexistent.cfg" >"$T/out" 2>"$T/err"
[ $? -eq 78 ] && grep -q "nonexistent.cfg: cannot read" "$T/err"
ok $? "a missing file: exit 78 and a clear message"

"$BIFROSTD" -h | grep -q -- "--check-config" && "$BIFROSTCTL" -h | grep -q "scale NAME N"
ok $? "bifrostd -h and bifrostctl -h describe their options"
"$BIFROSTCTL" --check-config -c "$T/default.cfg" >/dev/null && { "$BIFROSTCTL" --check-config -c "$T/many.cfg" 2>/dev/null; [ $? -eq 78 ]; }
ok $? "bifrostctl --check-config: 0 for a good file, 78 for a bad one"
# run_dir: never chmod-ed when it is not safely ours (run_dir = "/tmp" once
# turned /tmp into 0700); a missing one is created 0700
printf 'services = ( );\n' > "$T/empty.cfg"
mkdir -p "$T/real" "$T/sticky" "$T/theirs"
ln -s "$T/real" "$T/link"
chmod 1777 "$T/sticky"
# refused RUN_DIR TEXT: bifrostd exits 1 at once with TEXT, the folder untouched
refused () {
    timeout 5 "$BIFROSTD" -c "$T/empty.cfg" -r "$1" >"$T/out" 2>"$T/err"
    RC=$?
    [ "$RC" -eq 1 ] && grep -q "$2" "$T/err"
}
refused "$T/link" "is a symbolic link" && [ "$(stat -c %a "$T/real")" != 700 ] && [ ! -e "$T/real/control.ipc" ]
ok $? "run_dir a symlink: refused ($(head -c 120 "$T/err"))"
refused "$T/sticky" "world-writable" && [ "$(stat -c %a "$T/sticky")" = 1777 ]
ok $? "run_dir sticky and world-writable (like /tmp): refused, mode untouched ($(head -c 120 "$T/err"))"
if [ "$(id -u)" = 0 ]; then
    chown nobody "$T/theirs"
    refused "$T/theirs" "not owned by" && [ "$(stat -c %U "$T/theirs")" = nobody ]
    ok $? "run_dir owned by another user: refused ($(head -c 120 "$T/err"))"
else
    echo "ok $((TESTNO = TESTNO + 1)) # SKIP not root: cannot give a folder to another user"
fi
# The services run under their own uids: a folder above the run directory that
# they cannot pass is refused at the start, not met at their first reconnect;
# user_base = 0 (every service uid 0) does not care
mkdir -p "$T/closed/run"
chmod 700 "$T/closed"
refused "$T/closed/run" "cannot pass $T/closed (mode 0700): chmod o+x"
ok $? "run_dir beneath a folder of mode 0700: refused, with the fix ($(head -c 160 "$T/err"))"
printf 'user_base = 0;\nservices = ( );\n' > "$T/root.cfg"
timeout 5 "$BIFROSTD" -c "$T/root.cfg" -r "$T/closed/run" >"$T/out" 2>"$T/err" &
BPID=$!
wait_for 5 test -S "$T/closed/run/control.ipc"
ok $? "... and started with user_base = 0"
kill "$BPID" 2>/dev/null; wait "$BPID" 2>/dev/null

"$BIFROSTD" --bogus >/dev/null 2>&1
[ $? -eq 2 ]
ok $? "an unknown option is a usage error (exit 2)"
finish
