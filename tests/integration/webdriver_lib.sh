# webdriver_lib.sh: a headless Chromium driven through chromedriver's WebDriver
# HTTP API with curl, for the tests of the pages (registry_page.sh,
# bridge_page.sh) (sourced, not run). One way to start the browser and talk
# to it, so the pages' tests differ only in what they ask of their page.
# The test starts chromedriver itself (where it runs differs: on the host's
# loopback, or in a namespace) and sets, before these are called:
#   WD       chromedriver's base URL (e.g. http://127.0.0.1:9515)
#   WD_EXEC  a command prefix curl runs under, empty for none (e.g. "grid_exec
#            browser": the driver listens on a namespace's own loopback)
# and then has:
#   wd_skip_without_browser   the TAP skip line, and exit 0, without chromium or chromedriver
#   wd METHOD PATH [JSON]     one WebDriver command; prints its reply's value (JSON)
#   wd_session SECONDS DIR    waits up to SECONDS for the driver, opens a session of
#                             headless Chromium with its profile in DIR: SID set, non-zero
#                             without one
#   wd_end                    ends the session (chromedriver stops its Chromium with it)
#   wd_open URL               loads URL in the session's tab
#   wd_js SCRIPT              runs SCRIPT (a function body) in the page; prints what it returns
#   wd_el CSS                 the id of the first element matching CSS
#   wd_click CSS, wd_type CSS TEXT   a click on it, TEXT typed into it
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver}
WD_EXEC=${WD_EXEC:-}
SID=

wd_skip_without_browser () {
    [ -x "$CHROMIUM" ] && [ -x "$CHROMEDRIVER" ] && return 0
    echo "1..0 # SKIP no $CHROMIUM or $CHROMEDRIVER (apt-get install chromium chromium-driver)"
    exit 0
}

wd () {
    # shellcheck disable=SC2086  # WD_EXEC: a command and its arguments
    $WD_EXEC curl -s --max-time 20 -X "$1" -H 'Content-Type: application/json' ${3:+-d "$3"} "$WD$2" | jq -c .value
}

_wd_ready () { [ "$(wd GET /status | jq -r .ready)" = true ]; }
wd_session () {
    local caps
    wait_for "$1" _wd_ready || { echo "# chromedriver at $WD is not ready after $1 s" >&2; return 1; }
    caps=$(jq -cn --arg bin "$CHROMIUM" --arg dir "$2" '{capabilities: {alwaysMatch: {
        browserName: "chrome", "goog:chromeOptions": {binary: $bin, args: ["--headless=new", "--no-sandbox",
        "--user-data-dir=" + $dir, "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]}}}}')
    SID=$(wd POST /session "$caps" | jq -r '.sessionId // empty')
    [ -n "$SID" ]
}

wd_end () {
    [ -n "$SID" ] && wd DELETE "/session/$SID" >/dev/null
    SID=
}

wd_open () { wd POST "/session/$SID/url" "$(jq -cn --arg u "$1" '{url: $u}')" >/dev/null; }
wd_js () { wd POST "/session/$SID/execute/sync" "$(jq -cn --arg js "$1" '{script: $js, args: []}')"; }
wd_el () { wd POST "/session/$SID/element" "$(jq -cn --arg c "$1" '{using: "css selector", value: $c}')" | jq -r '.[]'; }
wd_click () { wd POST "/session/$SID/element/$(wd_el "$1")/click" '{}' >/dev/null; }
wd_type () { wd POST "/session/$SID/element/$(wd_el "$1")/value" "$(jq -cn --arg t "$2" '{text: $t}')" >/dev/null; }
