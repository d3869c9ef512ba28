#!/bin/bash
# crowbar-access: install the public keys of crowbar/access_keys (name -> key) into root's
# authorized_keys, or into $CROWBAR_AUTHORIZED_KEYS when the node's sshd keeps them elsewhere.
# Lines we manage end in " crowbar-access:<name>"; every other line is left as it was. The file
# is replaced atomically, so a failure never leaves a node without its keys.
keys_file=${CROWBAR_AUTHORIZED_KEYS:-$HOME/.ssh/authorized_keys}
keys_dir=$(dirname -- "$keys_file")
if [[ ! -d $keys_dir ]]; then
    mkdir -p -- "$keys_dir"
    chmod 700 -- "$keys_dir"
fi

# one "<key> crowbar-access:<name>" line per entry; refuse anything that is not a single public key
managed=$(jq -r '
    (.crowbar.access_keys // {}) | to_entries[]
    | if (.key | test("^[A-Za-z0-9@._+-]+$")) and (.value | type == "string")
         and (.value | test("^(ssh-[a-z0-9-]+|ecdsa-sha2-[a-z0-9-]+|sk-[A-Za-z0-9@.-]+) [A-Za-z0-9+/]+=*( [^\n\r]*)?$"))
      then "\(.value | split(" ")[0:2] | join(" ")) crowbar-access:\(.key)"
      else error("crowbar/access_keys/\(.key) is not a single SSH public key line")
      end' "$TMPDIR/attrs.json")

new=$(mktemp "$keys_dir/.authorized_keys.XXXXXX")
trap 'rm -f -- "$new"' EXIT
if [[ -f $keys_file ]]; then
    grep -v -E ' crowbar-access:[A-Za-z0-9@._+-]+$' -- "$keys_file" >"$new" || true
fi
if [[ -n $managed ]]; then
    printf '%s\n' "$managed" >>"$new"
fi
chmod 600 -- "$new"
mv -f -- "$new" "$keys_file"
trap - EXIT
echo "crowbar-access: $(printf '%s\n' "$managed" | grep -c . || true) managed key(s) in $keys_file"
