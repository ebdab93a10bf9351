#!/bin/sh
# sup_scale: a multi-instance service is scaled at runtime without touching the
# other instances or services, and SIGHUP reloads the configuration (an invalid
# one changes nothing; a valid one applies only the difference; a service that
# refuses the new file in its --check-config refuses the reload as a whole; a
# service whose own section changed is restarted).
. "$(dirname "$0")/sup_lib.sh"
echo "1..17"

# A Bifrost service stand-in (bifrost-*: bifrostd runs its --check-config): it
# refuses a file whose `fake` section has a key `bogus`, like a real service
mkdir -p "$T/bin"
cat > "$T/bin/bifrost-fake" <<'EOF'
#!/bin/sh
if [ "${1:-}" = --check-config ]; then
    line=$(grep -n 'bogus' "$3" | cut -d: -f1)
    [ -z "$line" ] && exit 0
    echo "$3:$line: fake.bogus: unknown setting (expected one of level)" >&2
    exit 78
fi
echo READY >&"$BIFROST_READY_FD"
while :; do echo HB >&"$BIFROST_READY_FD"; sleep 0.2; done
EOF
chmod +x "$T/bin/bifrost-fake"

write_config () {   # write_config WORKER_INSTANCES EXTRA_SERVICE [FAKE_SECTION]
    cat > "$T/scale.cfg" <<EOF
supervisor: { backoff_min = "200ms"; stop_timeout = "1s"; };
services = (
  { name = "other"; exec = "$T/hb.sh"; },
  { name = "fake"; exec = "$T/bin/bifrost-fake"; },
  { name = "worker"; exec = "$T/hb.sh"; instances = $1; }$2
);
fake = { ${3:-level = 1;} };
EOF
}
count_state () {    # count_state SERVICE STATE
    ctl status 2>/dev/null | awk -v s="$1." -v st="$2" 'index($1, s) == 1 && $3 == st' | wc -l
}
instances_are () {  # instances_are SERVICE N: exactly N instances, all READY
    [ "$(count_state "$1" ready)" -eq "$2" ] && \
    [ "$(ctl status 2>/dev/null | awk -v s="$1." 'index($1, s) == 1' | wc -l)" -eq "$2" ]
}

write_config 1 ""
start_bifrostd "$T/scale.cfg"
wait_for 5 instances_are worker 1 && wait_for 5 is_state other.1 ready
ok $? "worker has 1 instance, other is READY"
W1=$(field worker.1 2)
OTHER=$(field other.1 2)
remember "$W1" "$OTHER"

ctl scale worker 4 | grep -q "worker: 1 -> 4 instances"
ok $? "bifrostctl scale worker 4 answers"
wait_for 5 instances_are worker 4
ok $? "scale 1 -> 4: four READY instances"
W2=$(field worker.2 2)
W3=$(field worker.3 2)
W4=$(field worker.4 2)
remember "$W2" "$W3" "$W4"
[ "$(field worker.1 2)" = "$W1" ] && [ "$(field other.1 2)" = "$OTHER" ]
ok $? "worker.1 and other.1 keep their pids"

ctl scale worker 2 >/dev/null
wait_for 5 instances_are worker 2
ok $? "scale 4 -> 2: two instances left"
[ "$(field worker.1 2)" = "$W1" ] && [ "$(field worker.2 2)" = "$W2" ] && [ "$(field other.1 2)" = "$OTHER" ]
ok $? "worker.1, worker.2 and other.1 keep their pids"
wait_for 3 sh -c "! kill -0 $W3 2>/dev/null && ! kill -0 $W4 2>/dev/null"
ok $? "worker.3 and worker.4 processes are gone"

# SIGHUP with an invalid config: errors logged, nothing changes
cp "$T/scale.cfg" "$T/good.cfg"
printf 'services = ( { name = "worker"; exec = "x"; restart = "sometimes"; } );\n' > "$T/scale.cfg"
kill -HUP "$BPID"
wait_for 3 grep -q "reload failed" "$LOG"
ok $? "SIGHUP with an invalid config: reload refused"
grep -q "scale.cfg:1: services.\[0\].restart: expected one of permanent, transient, temporary" "$LOG"
ok $? "the error is logged with file and line"
[ "$(field worker.1 2)" = "$W1" ] && [ "$(field worker.2 2)" = "$W2" ] && [ "$(field other.1 2)" = "$OTHER" ] \
    && is_state worker.1 ready && is_state other.1 ready && kill -0 "$BPID"
ok $? "everything keeps running unchanged"

# SIGHUP with a valid config: 3 workers (from the file), a new service, other untouched
write_config 3 ',
  { name = "extra"; exec = "'"$T"'/hb.sh"; }'
kill -HUP "$BPID"
wait_for 5 instances_are worker 3 && wait_for 5 is_state extra.1 ready
ok $? "SIGHUP: worker scaled to 3 and the new service extra is started"
remember "$(field worker.3 2)" "$(field extra.1 2)"
[ "$(field worker.1 2)" = "$W1" ] && [ "$(field other.1 2)" = "$OTHER" ]
ok $? "unchanged instances keep their pids across the reload"

# SIGHUP removing a service: it is stopped, the others stay
EXTRA=$(field extra.1 2)
write_config 3 ""
kill -HUP "$BPID"
wait_for 5 sh -c "! $BIFROSTCTL -r $RUN status | grep -q '^extra'"
ok $? "SIGHUP: a removed service is stopped and leaves the status"
remember "$EXTRA"

# SIGHUP with a file only a service's own check refuses: the reload is refused
# as a whole, with the service's error, and nothing changes
FAKE=$(field fake.1 2)
remember "$FAKE"
write_config 2 "" "level = 1; bogus = 2;"
BEFORE=$(grep -c "reload failed" "$LOG")
kill -HUP "$BPID"
wait_for 3 sh -c "[ \$(grep -c 'reload failed' '$LOG') -gt $BEFORE ]"
ok $? "SIGHUP with a key the service refuses: reload refused ($(grep 'reload' "$LOG" | tail -1 | cut -c1-100))"
grep -q "scale.cfg:7: fake.bogus: unknown setting" "$LOG"
ok $? "the service's own error is logged with file and line"
[ "$(field fake.1 2)" = "$FAKE" ] && instances_are worker 3 && is_state fake.1 ready
ok $? "nothing changed: fake.1 keeps its pid, worker keeps 3 instances"

# SIGHUP changing only a service's own section: that service is restarted
write_config 3 "" "level = 2;"
kill -HUP "$BPID"
wait_for 5 new_ready fake.1 "$FAKE"
ok $? "SIGHUP with fake's section changed: fake.1 is restarted"
remember "$(field fake.1 2)"

kill -TERM "$BPID"
wait "$BPID"
BPID=
finish
