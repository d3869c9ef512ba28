# task 3 of 4: checksum the files into a manifest
D=${CROWBAR_NODE_DIR:?no node work dir}/app
cd "$D/data"
find . -type f -name 'f*.txt' | LC_ALL=C sort | xargs sha256sum >"$D/manifest.tmp"
mv "$D/manifest.tmp" "$D/manifest.sha256"
