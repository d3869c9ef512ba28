# task 4 of 4: read everything back, verify, and write the status file
TOKEN=$(read_attribute sshbench/token)
D=${CROWBAR_NODE_DIR:?no node work dir}/app
cd "$D/data"
sha256sum --check --quiet "$D/manifest.sha256"
grep -qxF "token=$TOKEN" "$D/app.conf"
n=$(wc -l <"$D/manifest.sha256")
[ "$n" -eq 20 ] || { echo "manifest has $n entries, expected 20" >&2; exit 1; }
[ "$(find . -type f -name 'f*.txt' | wc -l)" -eq 20 ]
printf 'ok token=%s files=%s\n' "$TOKEN" "$n" >"$D/status"
