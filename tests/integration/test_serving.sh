#!/usr/bin/env bash
# test_serving.sh: the serving leaves of state/tls/serving with real Caddy, openssl, curl and
# (when installed) Chromium on loopback: at most 100 names per leaf, one PEM file each (leaf,
# chain, key; 0600), a pending service costs no leaf (and a custom domain no throwaway one), a
# registration, a deregistration and an rm rotation rewrite only the file of the leaf that holds
# the name (the others stay byte-identical), the state survives a remount without reissuing,
# every name is served with a certificate that openssl, curl and Chromium accept, ca/certs shows
# it (and which names share it), and no private key is readable through the mount.
source "$(dirname "$0")/lib.sh"
HERE=$(cd "$(dirname "$0")" && pwd)
C=$MNT/ca
SV=$STATE/tls/serving
for tool in caddy dnsmasq openssl curl jq; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool not installed"; finish; }
done

UP_PORT=$(free_port)
python3 "$HERE/upstream.py" "$UP_PORT" fleet >/dev/null 2>&1 &
UP_PID=$!
trap 'kill $UP_PID 2>/dev/null; cfs_cleanup' EXIT

# sha256 of every serving leaf file, one "sum  name" line each
digest() { (cd "$SV" && sha256sum -- *.pem 2>/dev/null); }
# the files whose line differs between two digests
changed() { diff <(echo "$1") <(echo "$2") | sed -n 's/^> [0-9a-f]*  //p' | sort -u; }
# the DNS names of the certificate in serving file $1, one a line, sorted
names_of() {
    openssl x509 -in "$SV/$1" -noout -ext subjectAltName | tail -n +2 | tr ',' '\n' |
        sed 's/^ *DNS://' | sort
}
# the serving file whose certificate carries name $1
leaf_of() {
    local f
    for f in "$SV"/*.pem; do
        names_of "${f##*/}" | grep -qx "$1" && { echo "${f##*/}"; return; }
    done
}
serial_of() { openssl x509 -in "$1" -noout -serial | sed 's/.*=//' | tr A-F a-f; }
# what openssl s_client gets for SNI $1: the verify result, then the served serial
served() {
    openssl s_client -connect "127.0.0.1:$HTTPS_PORT" -servername "$1" -verify_hostname "$1" \
        -CAfile "$C/ca.crt" -verify_return_error </dev/null 2>/dev/null >"$T/sc.out"
    grep -q "Verify return code: 0 (ok)" "$T/sc.out" || { echo "unverified"; return; }
    openssl x509 -in "$T/sc.out" -noout -serial | sed 's/.*=//' | tr A-F a-f
}
get() {
    curl -sS --max-time 5 --cacert "$C/ca.crt" --resolve "$1:$HTTPS_PORT:127.0.0.1" \
        "https://$1:$HTTPS_PORT/"
}
# wait until curl reaches the upstream through name $1
routable() {
    for _ in $(seq 100); do
        [[ "$(get "$1" 2>/dev/null)" == "hello from fleet" ]] && return 0
        sleep 0.05
    done
    return 1
}

# 101 active services written before the first mount
mkdir -p "$STATE"
python3 - "$UP_PORT" > "$STATE/services.json" <<'EOF'
import json, sys, time
ts = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
print(json.dumps({"version": 1, "services": [
    {"name": "s%d" % i, "upstream": "127.0.0.1:" + sys.argv[1], "domain": "s%d.internal" % i,
     "status": "active", "registered_at": ts, "health_check": "/health", "mode": "proxy",
     "monitoring": {}} for i in range(1, 102)]}))
EOF
chmod 600 "$STATE/services.json"
cfs_mount_managed --key-type ecdsa-p256
# the proxy config still names per-domain leaves (before the switch to the serving folder)?
legacy=0
grep -rqF "$STATE/tls/s1.internal/cert.pem" "$STATE/routing" 2>/dev/null && legacy=1
echo "proxy config names per-domain leaves: $legacy"

check_eq "serving/ is 0700" "$(stat -c %a "$SV")" "700"
check_eq "101 names: two leaves" "$(ls "$SV" | tr '\n' ' ')" "leaf-0001.pem leaf-0002.pem "
check_eq "leaf files 0600" "$(stat -c %a "$SV"/*.pem | sort -u)" "600"
check_eq "100 names in the first" "$(names_of leaf-0001.pem | wc -l)" "100"
check_eq "the 101st opens the second" "$(names_of leaf-0002.pem | tr '\n' ' ')" "s101.internal "
check_eq "every name once" "$(cat <(names_of leaf-0001.pem) <(names_of leaf-0002.pem) | sort -u |
    wc -l)" "101"
check_eq "one file: leaf, CA certificate, key" "$(sed -n 's/^-----BEGIN \(.*\)-----$/\1/p' \
    "$SV/leaf-0001.pem" | tr '\n' ',')" "CERTIFICATE,CERTIFICATE,PRIVATE KEY,"
check "the chain's second certificate is the root" sh -c "awk '/BEGIN CERT/{n++} n==2' \
    '$SV/leaf-0001.pem' | sed '/END CERT/q' | cmp - '$STATE/tls/ca.crt'"
check "the key is the leaf's" sh -c "[ \"\$(openssl pkey -in '$SV/leaf-0001.pem' -pubout)\" = \
    \"\$(openssl x509 -in '$SV/leaf-0001.pem' -noout -pubkey)\" ]"
check "openssl verify, every name of a bundle" openssl verify -x509_strict -purpose sslserver \
    -verify_hostname s77.internal -CAfile "$STATE/tls/ca.crt" "$SV/leaf-0001.pem"
check "ECDSA P-256 leaf" sh -c "openssl x509 -in '$SV/leaf-0001.pem' -noout -text |
    grep -q 'NIST CURVE: P-256'"

# every name is served, with a certificate openssl and curl accept
check "routable" routable s1.internal
bad_names=""
for i in 1 2 50 99 100 101; do
    n=s$i.internal
    s=$(served "$n")
    [[ "$s" == unverified ]] && bad_names+=" $n(openssl)"
    [[ "$(get "$n")" == "hello from fleet" ]] || bad_names+=" $n(curl)"
    if (( !legacy )); then
        [[ "$s" == "$(serial_of "$SV/$(leaf_of "$n")")" ]] || bad_names+=" $n(not its leaf)"
    fi
done
check_eq "openssl and curl accept each name's certificate" "$bad_names" ""

# ca/certs: the certificate that serves each domain, and the names that share it
check_eq "certs/ lists the 101 domains" "$(ls "$C/certs" | grep -c '\.pem$')" "101"
check "the shown certificate verifies" openssl verify -purpose sslserver -verify_hostname \
    s7.internal -CAfile "$C/ca.crt" "$C/certs/s7.internal.pem"
check "json names the domain" jq -e '.names | index("s7.internal") != null' \
    "$C/certs/s7.internal.json"
check_eq "json serial is the PEM's" "$(jq -r .serial "$C/certs/s7.internal.json")" \
    "$(serial_of "$C/certs/s7.internal.pem")"
if (( !legacy )); then
    check_eq "json: the leaf file" "$(jq -r .leaf "$C/certs/s7.internal.json")" "leaf-0001.pem"
    check_eq "json: the 100 names that share it" "$(jq '.names | length' \
        "$C/certs/s7.internal.json")" "100"
    check "certs/ shows the serving leaf" cmp "$C/certs/s7.internal.pem" \
        <(openssl x509 -in "$SV/leaf-0001.pem")
fi
check_eq "no PRIVATE KEY under the mount" "$(timeout 30 grep -rl "PRIVATE KEY" "$MNT"; echo $?)" \
    "1"

# a registration rewrites only the leaf that takes the name (the first with room)
before=$(digest)
check "register s102" mkdir "$S/s102"
check_eq "pending: no leaf rewritten" "$(changed "$before" "$(digest)")" ""
check_eq "pending: no leaf names it" "$(leaf_of s102.internal)" ""
check "set its upstream" put "$S/s102/upstream" "127.0.0.1:$UP_PORT"
check_eq "only leaf-0002 changed" "$(changed "$before" "$(digest)")" "leaf-0002.pem"
check_eq "it carries s102" "$(names_of leaf-0002.pem | tr '\n' ' ')" \
    "s101.internal s102.internal "
check "s102 routable" routable s102.internal
check "s102 served with a verified certificate" test "$(served s102.internal)" != unverified

# a deregistration rewrites only the leaf that held the name; a new name fills that room
before=$(digest)
check "deregister s5" rmdir "$S/s5"
check_eq "only leaf-0001 changed" "$(changed "$before" "$(digest)")" "leaf-0001.pem"
check_eq "s5 is gone from it" "$(names_of leaf-0001.pem | grep -c '^s5\.internal$')" "0"
check_eq "certs/ follows" "$(ls "$C/certs" | grep -c '^s5\.internal')" "0"
check "archived the replaced leaf" sh -c "ls '$STATE/tls/archive' | grep -q '^leaf-0001\..*\.pem$'"
check_eq "archived leaves 0600" "$(stat -c %a "$STATE"/tls/archive/leaf-*.pem | sort -u)" "600"
before=$(digest)
check "register web (a custom domain before its upstream)" mkdir "$S/web"
check "custom domain" put "$S/web/domain" "www.example.test"
check "web's upstream" put "$S/web/upstream" "127.0.0.1:$UP_PORT"
check_eq "web fills the room in leaf-0001" "$(changed "$before" "$(digest)")" "leaf-0001.pem"
check_eq "leaf-0001 carries it" "$(leaf_of www.example.test)" "leaf-0001.pem"
check_eq "no leaf ever named web.internal" "$(ls "$STATE/tls/archive" | grep -c '^web\.internal')" \
    "0"
check_eq "no tls_issue line for web.internal" "$(grep '"action":"tls_issue"' "$STATE/audit.log" |
    grep -c 'web\.internal')" "0"
check "www.example.test routable" routable www.example.test

# rotation by rm: only that domain's leaf, and the proxy serves the new one
before=$(digest)
old=$(jq -r .serial "$C/certs/s101.internal.json")
check "rm rotates" rm -f "$C/certs/s101.internal.pem"
check_eq "only leaf-0002 changed" "$(changed "$before" "$(digest)")" "leaf-0002.pem"
check "a new serial" test "$(jq -r .serial "$C/certs/s101.internal.json")" != "$old"
check_eq "cert_rotate names the domain and the leaf" "$(jq -r 'select(.action=="cert_rotate") |
    select(.details.leaf != null) | [.status, .details.domain, .details.leaf] | join(" ")' \
    "$STATE/audit.log" | tail -1)" "success s101.internal leaf-0002.pem"
if (( !legacy )); then
    check_eq "Caddy serves the rotated leaf" "$(served s101.internal)" \
        "$(serial_of "$SV/leaf-0002.pem")"
fi

# Chromium accepts the certificate of every name it is shown (ECDSA; it refuses Ed25519)
if command -v chromium >/dev/null && command -v certutil >/dev/null; then
    CH=$T/chromium
    mkdir -p "$CH/home/.pki/nssdb"
    certutil -d "sql:$CH/home/.pki/nssdb" -N --empty-password
    certutil -d "sql:$CH/home/.pki/nssdb" -A -t "C,," -n conduit -i "$C/ca.crt"
    # the page Chromium renders for https://$1 (an error page unless the certificate is good)
    chrome_get() {
        HOME=$CH/home timeout 60 chromium --headless=new --no-sandbox --disable-gpu \
            --user-data-dir="$CH/profile" --host-resolver-rules="MAP * 127.0.0.1" \
            --dump-dom "https://$1:$HTTPS_PORT/" 2>>"$CH/log"
    }
    for n in s1.internal s101.internal www.example.test; do
        check "Chromium accepts $n" grep -q "hello from fleet" <<<"$(chrome_get "$n")"
    done
    echo "Chromium: $(chromium --version 2>/dev/null | head -1)"
    # the control: without the root in its NSS db Chromium refuses the same page
    certutil -d "sql:$CH/home/.pki/nssdb" -D -n conduit
    rm -rf "$CH/profile"
    check_fails "Chromium without the root refuses" "" \
        grep -q "hello from fleet" <<<"$(chrome_get s1.internal)"
else
    echo "SKIP: Chromium (chromium or certutil not installed)"
fi

# a remount reissues nothing: the files and the assignment are what it reads back
before=$(digest)
cfs_unmount
cfs_mount_managed --key-type ecdsa-p256
check_eq "remount: no leaf rewritten" "$(changed "$before" "$(digest)")" ""
check "remount: still routable" routable s100.internal
cfs_unmount

# an Ed25519 CA (the --key-type that keeps older state directories working): curl and openssl
# accept its leaves, Chromium refuses the handshake (docs/filesystem.md, "Key types and browsers")
if command -v chromium >/dev/null && command -v certutil >/dev/null; then
    STATE=$T/state-ed
    SV=$STATE/tls/serving
    cfs_mount_managed --key-type ed25519
    check "register ed" mkdir "$S/ed"
    check "ed's upstream" put "$S/ed/upstream" "127.0.0.1:$UP_PORT"
    check "ed25519: curl accepts" routable ed.internal
    check "ed25519: an Ed25519 leaf" sh -c "openssl x509 -in '$SV/leaf-0001.pem' -noout -text |
        grep -q 'Public Key Algorithm: ED25519'"
    rm -rf "$CH/profile"
    : > "$CH/log"
    chrome_get ed.internal >/dev/null
    check "ed25519: Chromium refuses the handshake" grep -q ERR_SSL_VERSION_OR_CIPHER_MISMATCH \
        "$CH/log"
    cfs_unmount
fi
finish
