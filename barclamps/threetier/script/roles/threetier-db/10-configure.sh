#!/bin/bash
# threetier-db: write the database config and publish where the database is reachable.
# The address is the one this node was reached at over SSH (the admin address), falling back
# to the node's first address when not run over SSH.
root=$(read_attribute threetier/root)
port=$(read_attribute threetier/db/port)
name=$(read_attribute threetier/db/name)
if [[ -n ${SSH_CONNECTION:-} ]]; then
    read -r _ _ address _ <<<"$SSH_CONNECTION"
else
    address=$(hostname -I | awk '{print $1}')
fi
[[ $port =~ ^[0-9]+$ ]] || { echo "threetier/db/port must be a number, got '$port'" >&2; exit 1; }

conf_dir="${root%/}/etc/threetier"
mkdir -p -- "$conf_dir"
tmp=$(mktemp "$conf_dir/.db.conf.XXXXXX")
{
    echo "# written by crowbar role threetier-db"
    printf 'listen_address = %s\n' "$address"
    printf 'port = %s\n' "$port"
    printf 'database = %s\n' "$name"
} >"$tmp"
mv -f -- "$tmp" "$conf_dir/db.conf"

# publish only what this role learned; the port stays the operator's setting (a value written
# to the wall would shadow later deployment changes of it)
write_attribute threetier/db/address "$address"
