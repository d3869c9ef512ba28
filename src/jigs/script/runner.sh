#!/bin/bash
# Script jig runner, run on the node as: bash runner <workdir> <role>
# Sources <workdir>/<role>/*.sh in C-locale order, each in its own errexit subshell, with
# attribute helpers over <workdir>/attrs.json. Written values land in <workdir>/attrs/<path>/wall.
# Attribute values only ever travel in files and shell variables, never in a command's argv.

if [[ $# -ne 2 || ! -d $1 ]]; then
    echo "scriptjig: usage: runner <workdir> <role>" >&2
    exit 2
fi

export TMPDIR=$1
export ROLE=$2
# non-interactive package tools and a predictable C locale (also fixes the script order)
export DEBIAN_FRONTEND=noninteractive DEBCONF_NONINTERACTIVE_SEEN=true
export LC_ALL=C LANG=C LANGUAGE=C

if ! command -v jq >/dev/null 2>&1; then
    echo "scriptjig: jq is required on the node (install the jq package)" >&2
    exit 3
fi

set -o errexit -o pipefail
shopt -s nullglob extglob globstar
export PS4='+ ${BASH_SOURCE[0]##*/}:${LINENO}: '

# jq: walk a slash path through the document; numeric parts index arrays; a miss gives null
SCRIPTJIG_JQ_WALK='reduce ($path | split("/") | map(select(length > 0)))[] as $k (.;
    if type == "array" and ($k | test("^[0-9]+$")) then .[$k | tonumber]
    elif type == "object" then .[$k]
    else null end)'
export SCRIPTJIG_JQ_WALK

# The helpers run in subshells with tracing off, so the log shows each call as one line.

# read_attribute a/b/0/c: the value (strings raw, others as compact JSON); null or missing: nothing
read_attribute() (
    { set +o xtrace; } 2>/dev/null
    v=$(jq -r -c --arg path "$1" "$SCRIPTJIG_JQ_WALK"' | if . == null then empty else . end' \
        "$TMPDIR/attrs.json") || exit
    printf '%s' "$v"
)

# has_attribute a/b: succeeds when the attribute has a non-empty value
has_attribute() (
    { set +o xtrace; } 2>/dev/null
    [[ -n $(read_attribute "$1") ]]
)

# get_keys a/b: the keys under a/b, one a line: those in the inputs and those written so far
get_keys() (
    { set +o xtrace; } 2>/dev/null
    {
        jq -r --arg path "$1" "$SCRIPTJIG_JQ_WALK"' |
            if type == "object" then keys[] elif type == "array" then (keys[] | tostring) else empty end' \
            "$TMPDIR/attrs.json"
        for d in "$TMPDIR/attrs/$1"/*/; do
            d=${d%/}
            printf '%s\n' "${d##*/}"
        done
    } | sort -u
)

# read_attribute_file_content a/b file: writes the value to file, ending with one newline
read_attribute_file_content() (
    { set +o xtrace; } 2>/dev/null
    read_attribute "$1" >"$2"
    echo >>"$2"
)

# write_attribute a/b value: records value as output attribute a/b
write_attribute() (
    { set +o xtrace; } 2>/dev/null
    mkdir -p "$TMPDIR/attrs/$1"
    printf '%s' "$2" >"$TMPDIR/attrs/$1/wall"
)

# write_attribute_file_content a/b file: records the file's content as output attribute a/b
write_attribute_file_content() (
    { set +o xtrace; } 2>/dev/null
    mkdir -p "$TMPDIR/attrs/$1"
    cp -- "$2" "$TMPDIR/attrs/$1/wall"
)

# die message...: fails the current script with a message
die() {
    printf 'scriptjig: %s\n' "$*" >&2
    exit 1
}

export -f read_attribute has_attribute get_keys read_attribute_file_content \
    write_attribute write_attribute_file_content die

mkdir -p "$TMPDIR/attrs" "$TMPDIR/logs"
scripts=("$TMPDIR/$ROLE/"*.sh)
if ((${#scripts[@]} == 0)); then
    echo "scriptjig: role $ROLE has no *.sh scripts; nothing to do"
fi

set -o xtrace
for script in "${scripts[@]}"; do
    name=${script##*/}
    log="$TMPDIR/logs/$name.log"
    # errexit off around the pipeline: a failing script must reach the report below, and the
    # subshell must not run in a context (if/||) where bash would ignore its own errexit
    set +o errexit
    # stdout and stderr stay separate streams; each is also appended to the script's log
    { (set -o errexit; . "$script") 2>&1 1>&3 | tee -a "$log" >&2; } 3>&1 | tee -a "$log"
    status=$?
    set -o errexit
    if ((status != 0)); then
        { set +o xtrace; } 2>/dev/null
        echo "scriptjig: FAILED $name (exit status $status)" >&2
        exit "$status"
    fi
done
exit 0
