#!/bin/bash
# Script jig runner, run on the node as: bash runner <workdir> <role>
# Sources <workdir>/<role>/*.sh in C-locale order, each in its own errexit subshell, with
# attribute helpers over <workdir>/attrs.json (answered from <workdir>/attrs.map when present).
# Written values land in <workdir>/attrs/<path>/wall.
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

# attrs.map (written by the jig; see attrs-map.ts): NUL-separated pairs of a path ("/", "/a",
# "/a/0/b": keys as they are, array indexes without leading zeros) and its entry: "s<text>" a
# value as read_attribute prints it, "o<keys>"/"a<keys>" an object/array with the lines get_keys
# prints, "j" a value only jq prints right. No entry: null or missing. It is loaded once into
# SCRIPTJIG_ATTRS before the scripts run (bash processes the scripts start load it on first use).
scriptjig_load() {
    declare -gA SCRIPTJIG_ATTRS=()
    local -a fields
    local i k v
    if ((BASH_VERSINFO[0] * 100 + BASH_VERSINFO[1] >= 404)); then
        mapfile -d '' -t fields <"$TMPDIR/attrs.map" # bash >= 4.4; far fewer syscalls than read
        for ((i = 0; i + 1 < ${#fields[@]}; i += 2)); do
            SCRIPTJIG_ATTRS[${fields[i]}]=${fields[i + 1]}
        done
    else
        while IFS= read -r -d '' k && IFS= read -r -d '' v; do
            SCRIPTJIG_ATTRS[$k]=$v
        done <"$TMPDIR/attrs.map"
    fi
    SCRIPTJIG_MAP_LOADED=1
}

# scriptjig_entry a/b/0/c: walks the map as SCRIPTJIG_JQ_WALK walks attrs.json and sets REPLY to
# the entry found ("" when null or missing); fails when there is no map (then ask jq)
scriptjig_entry() {
    if [[ ${SCRIPTJIG_MAP_LOADED-} != 1 ]]; then
        [[ -f $TMPDIR/attrs.map ]] || return 1
        scriptjig_load
    fi
    local rest=$1 key path=/
    REPLY=${SCRIPTJIG_ATTRS[/]-}
    while [[ -n $REPLY && -n $rest ]]; do
        key=${rest%%/*}
        if [[ $rest == */* ]]; then rest=${rest#*/}; else rest=; fi
        [[ -n $key ]] || continue
        case $REPLY in
        o*) ;;
        a*)
            if ! [[ $key =~ ^[0-9]+$ ]]; then
                REPLY=
                break
            fi
            while [[ $key == 0?* ]]; do key=${key#0}; done
            ;;
        *)
            REPLY=
            break
            ;;
        esac
        path=${path%/}/$key
        REPLY=${SCRIPTJIG_ATTRS[$path]-}
    done
    return 0
}

# The helpers run in subshells with tracing off, so the log shows each call as one line.

# read_attribute a/b/0/c: the value (strings raw, others as compact JSON); null or missing: nothing
read_attribute() (
    { set +o xtrace; } 2>/dev/null
    if scriptjig_entry "$1"; then
        case $REPLY in
        '') exit 0 ;;
        s*)
            printf '%s' "${REPLY:1}"
            exit 0
            ;;
        esac
    fi
    v=$(jq -r -c --arg path "$1" "$SCRIPTJIG_JQ_WALK"' | if . == null then empty else . end' \
        "$TMPDIR/attrs.json") || exit
    printf '%s' "$v"
)

# has_attribute a/b: succeeds when the attribute has a non-empty value
has_attribute() (
    { set +o xtrace; } 2>/dev/null
    if scriptjig_entry "$1"; then
        case $REPLY in
        '') exit 1 ;;
        s*) [[ -n ${REPLY:1} ]] && exit 0 || exit 1 ;;
        [oa]*) exit 0 ;;
        esac
    fi
    [[ -n $(read_attribute "$1") ]]
)

# get_keys a/b: the keys under a/b, one a line: those in the inputs and those written so far
get_keys() (
    { set +o xtrace; } 2>/dev/null
    {
        if scriptjig_entry "$1"; then
            case $REPLY in
            [oa]*) printf '%s' "${REPLY:1}" ;;
            esac
        else
            jq -r --arg path "$1" "$SCRIPTJIG_JQ_WALK"' |
                if type == "object" then keys[] elif type == "array" then (keys[] | tostring) else empty end' \
                "$TMPDIR/attrs.json"
        fi
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
    write_attribute write_attribute_file_content die scriptjig_load scriptjig_entry

if [[ -f $TMPDIR/attrs.map ]]; then scriptjig_load; fi
[[ -d $TMPDIR/attrs && -d $TMPDIR/logs ]] || mkdir -p "$TMPDIR/attrs" "$TMPDIR/logs"
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
