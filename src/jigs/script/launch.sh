# Script jig launcher, run on the node as: bash -c <this text> scriptjig <workdir> <role> <nonce>
# with a tar of the run's files (runner, attrs.json, attrs.map, <role>/) on stdin. Creates
# <workdir> (mode 0700, failing if it exists), unpacks, runs `bash <workdir>/runner <workdir> <role>`,
# then prints what the scripts wrote under attrs/ and removes <workdir>, also when stopped by a
# signal. Its own stdout lines, after the runner's output, start with "\001scriptjig-<nonce> ".

set -u
dir=$1 role=$2 mark=$'\001'"scriptjig-$3"

if ! mkdir -m 0700 -- "$dir"; then
    echo "scriptjig: cannot create the run's directory $dir on the node" >&2
    printf '%s nodir\n' "$mark" # nothing of ours to remove
    exit 4
fi

# Removes the run's directory, says so on stdout when it is gone, and exits with status $1.
finish() {
    trap '' TERM INT HUP
    cd / || :
    if rm -rf -- "$dir"; then printf '%s removed\n' "$mark"; fi
    exit "$1"
}
trap 'finish 143' TERM
trap 'finish 130' INT
trap 'finish 129' HUP

if ! tar -x -o -p -f - -C "$dir"; then
    echo "scriptjig: cannot unpack the run's files into $dir on the node (is tar installed?)" >&2
    finish 4
fi

bash "$dir/runner" "$dir" "$role" </dev/null
status=$?
if ((status != 0)); then finish "$status"; fi

# The outputs, framed: "<mark> F <path>" (a regular file attrs/<path>, named wall) followed by
# its content in base64; "<mark> L <path>" (a symlink, not followed); paths escape \ and newline.
shopt -s nullglob dotglob
bs=\\ nl=$'\n'
record() {
    local p=${2//"$bs"/"$bs$bs"}
    printf '%s %s %s\n' "$mark" "$1" "${p//"$nl"/"${bs}n"}"
}
emit() {
    local e rel
    for e in "$dir/attrs/$1"*; do
        rel=${e#"$dir/attrs/"}
        if [[ -L $e ]]; then
            record L "$rel"
        elif [[ -d $e ]]; then
            emit "$rel/" || return
        elif [[ ${rel##*/} == wall && -f $e ]]; then
            record F "$rel"
            base64 <"$e" || return
        fi
    done
}
printf '%s wall\n' "$mark"
if ! emit ""; then
    echo "scriptjig: cannot read the values written under $dir/attrs on the node" >&2
    finish 5
fi
printf '%s end\n' "$mark"
finish 0
