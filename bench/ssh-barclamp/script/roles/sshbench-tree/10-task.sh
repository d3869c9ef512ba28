# task 2 of 4: a directory tree with 20 files
D=${CROWBAR_NODE_DIR:?no node work dir}/app
h=$(sha256sum <"$D/app.conf" | cut -c1-16)
mkdir -p "$D/data/d0" "$D/data/d1" "$D/data/d2" "$D/data/d3"
for i in $(seq -w 1 20); do
    printf 'file %s\nconf %s\n' "$i" "$h" >"$D/data/d$((10#$i % 4))/f$i.txt"
done
