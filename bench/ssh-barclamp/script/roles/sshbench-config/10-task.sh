# task 1 of 4: write the app config from the injected token
TOKEN=$(read_attribute sshbench/token)
D=${CROWBAR_NODE_DIR:?no node work dir}/app
[ -n "$TOKEN" ] || { echo "no token" >&2; exit 1; }
mkdir -p "$D"
printf 'token=%s\nnode_dir=%s\n' "$TOKEN" "$CROWBAR_NODE_DIR" >"$D/app.conf.tmp"
mv "$D/app.conf.tmp" "$D/app.conf"
