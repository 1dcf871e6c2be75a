#!/usr/bin/env bash
# test_ca.sh: the internal CA and the ca/ tree: root and leaves checked with openssl for both key
# types, no leaf for a pending service, no private key under the mount, rotation by rm, archive
# on domain change and rmdir, key modes, trust instructions, EPERM for every other change, a
# mismatched CA key refusing the mount, renewal at mount, and (when caddy is installed) the proxy
# serving a rotated certificate. The leaf of an active domain is the serving leaf that carries it
# (state/tls/serving/leaf-N.pem); while the proxy config also loads per-domain leaves
# (state/tls/DOMAIN/), ca/certs shows that one, and the checks of the files follow.
source "$(dirname "$0")/lib.sh"
C=$MNT/ca
me=$(id -un)

# serial of the leaf of a domain, as ca/certs/<domain>.json shows it
serial() { jq -r .serial "$C/certs/$1.json"; }
# the text form of a certificate
x509_text() { openssl x509 -in "$1" -noout -text; }
# the value line under extension header $1 in the text form on stdin, without spaces
ext() { grep -A1 -F "$1" | tail -1 | tr -d ' '; }
# the last audit line with action $1, as compact JSON
last_line() { jq -c "select(.action==\"$1\")" "$STATE/audit.log" | tail -1; }
# whether the proxy config names per-domain leaves (set once a domain is active)
legacy=0
set_legacy() {
    legacy=0
    grep -rqF "/tls/$1/cert.pem" "$STATE/routing" 2>/dev/null && legacy=1
    echo "proxy config names per-domain leaves: $legacy"
}
# the file that holds the certificate of active domain $1 (and its key)
state_leaf() {
    if (( legacy )); then
        [[ -f "$STATE/tls/$1/cert.pem" ]] && echo "$STATE/tls/$1/cert.pem"
        return
    fi
    local f
    for f in "$STATE"/tls/serving/*.pem; do
        openssl x509 -in "$f" -noout -ext subjectAltName | grep -qE "DNS:$1(,|\$)" &&
            { echo "$f"; return; }
    done
}
# whether the leaf of $1 with serial $2 was archived
archived() {
    if (( legacy )); then
        test -f "$STATE/tls/archive/$1.$2/cert.pem" -a -f "$STATE/tls/archive/$1.$2/key.pem"
    else
        ls "$STATE/tls/archive" | grep -q "^leaf-[0-9]*\.$2\.pem$"
    fi
}
# every file under state/tls with its checksum
tls_digest() { (cd "$STATE/tls" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }

# ed25519 named explicitly: what the default is belongs to fs/main.c
cfs_mount --key-type ed25519
check "register core" mkdir "$S/core"
check_eq "a pending service has no leaf" "$(ls "$C/certs" | wc -l)" "0"
check "core gets an upstream" put "$S/core/upstream" "127.0.0.1:9"
set_legacy core.internal

# the root
check_eq "ca/ lists" "$(ls "$C" | tr '\n' ' ')" "ca.crt ca.json certs trust "
check_eq "ca.crt is read-only" "$(stat -c %a "$C/ca.crt")" "444"
check "ca.crt is the state file" cmp "$C/ca.crt" "$STATE/tls/ca.crt"
check "cp copies all of ca.crt" sh -c "cp '$C/ca.crt' '$T/copy.crt' && cmp '$T/copy.crt' \
    '$STATE/tls/ca.crt'"
check_eq "size is the real size" "$(stat -c %s "$C/ca.crt")" "$(stat -c %s "$STATE/tls/ca.crt")"
root=$(x509_text "$C/ca.crt")
check "root CN" grep -q "Subject: CN *= *QP Conduit Internal CA ($(hostname))" <<<"$root"
check_eq "root CA:TRUE, critical" "$(ext "Basic Constraints: critical" <<<"$root")" "CA:TRUE"
check_eq "root key usage, critical" "$(ext "X509v3 Key Usage: critical" <<<"$root")" \
    "CertificateSign,CRLSign"
check "root SKI" grep -q "Subject Key Identifier" <<<"$root"
check "root AKI" grep -q "Authority Key Identifier" <<<"$root"
check "root is ed25519" grep -q "Public Key Algorithm: ED25519" <<<"$root"
check "root valid 10 years" openssl x509 -in "$C/ca.crt" -noout -checkend $((3650 * 86400 - 86400))
check_fails "root not valid 11 years" "" openssl x509 -in "$C/ca.crt" -noout \
    -checkend $((3660 * 86400))
check_eq "ca.json fields" "$(jq -c keys_unsorted "$C/ca.json")" \
    '["subject","key_type","not_before","not_after","serial","sha256_fingerprint"]'
check_eq "ca.json key type" "$(jq -r .key_type "$C/ca.json")" "ed25519"
fp=$(openssl x509 -in "$C/ca.crt" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' |
    tr A-F a-f)
check_eq "ca.json fingerprint" "$(jq -r .sha256_fingerprint "$C/ca.json")" "$fp"
check_eq "CA key 0600" "$(stat -c %a "$STATE/tls/ca.key")" "600"

# the leaf of an active service
L=$C/certs/core.internal.pem
check_eq "certs/ lists the leaf" "$(ls "$C/certs" | tr '\n' ' ')" \
    "core.internal.json core.internal.pem "
check "openssl verify" openssl verify -CAfile "$C/ca.crt" "$L"
check "verify as a TLS server for its name" openssl verify -x509_strict -purpose sslserver \
    -verify_hostname core.internal -CAfile "$C/ca.crt" "$L"
check "leaf is the state file's certificate" cmp "$L" <(openssl x509 -in "$(state_leaf \
    core.internal)")
leaf=$(x509_text "$L")
check "SAN" grep -q "DNS:core.internal" <<<"$leaf"
check_eq "EKU serverAuth only" "$(ext "Extended Key Usage" <<<"$leaf")" \
    "TLSWebServerAuthentication"
check_eq "CA:FALSE" "$(ext "Basic Constraints: critical" <<<"$leaf")" "CA:FALSE"
check_eq "digitalSignature only" "$(ext "X509v3 Key Usage: critical" <<<"$leaf")" \
    "DigitalSignature"
check "leaf is ed25519" grep -q "Public Key Algorithm: ED25519" <<<"$leaf"
check "valid 364 more days" openssl x509 -in "$L" -noout -checkend $((364 * 86400))
check_fails "not valid 366 days" "" openssl x509 -in "$L" -noout -checkend $((366 * 86400))
check "serial of 16 bytes or more" test "$(serial core.internal | tr -d '\n' | wc -c)" -ge 32
fields='"domain","service","serial","not_before","not_after","days_left","sha256_fingerprint",'
fields+='"key_type"'
(( legacy )) || fields+=',"leaf"'
check_eq "json fields" "$(jq -c keys_unsorted "$C/certs/core.internal.json")" "[$fields,\"names\"]"
check_eq "json names the names the leaf carries" "$(jq -c .names "$C/certs/core.internal.json")" \
    '["core.internal"]'
check_eq "json names the service" "$(jq -r .service "$C/certs/core.internal.json")" "core"
check_eq "json serial is the certificate's" "$(serial core.internal)" \
    "$(openssl x509 -in "$L" -noout -serial | sed 's/.*=//' | tr A-F a-f)"
check "days_left" jq -e '.days_left == 364 or .days_left == 365' "$C/certs/core.internal.json"
check "tls_issue line in the caller's name" jq -s -e --arg u "$me" 'any(.[];
    .action=="tls_issue" and .user==$u and (.details.domain=="core.internal" or
    (.details.added // [] | index("core.internal") != null)))' "$STATE/audit.log"

# no private key anywhere under the mount; key files 0600
check_eq "grep -r reads the certificates" "$(grep -rl "BEGIN CERTIFICATE" "$MNT" | sort)" \
    "$(printf '%s\n' "$C/ca.crt" "$L")"
check_eq "no PRIVATE KEY under the mount" "$(timeout 30 grep -rl "PRIVATE KEY" "$MNT"; echo $?)" \
    "1"
if (( legacy )); then keyfile=$STATE/tls/core.internal/key.pem; else keyfile=$(state_leaf \
    core.internal); fi
check "the key exists in the state dir" grep -q "PRIVATE KEY" "$keyfile"
check_eq "key files are 0600" "$(find "$STATE/tls" -name '*.key' -o -name key.pem -o \
    -name 'leaf-*.pem' | xargs stat -c %a | sort -u)" "600"

# trust instructions carry the real path and the fingerprint; the scripts run
check_eq "trust/ lists" "$(ls "$C/trust" | tr '\n' ' ')" \
    "debian.sh docker.md firefox.md macos.sh rhel.sh windows.ps1 "
for f in debian.sh rhel.sh macos.sh windows.ps1 firefox.md docker.md; do
    check "$f names ca.crt" grep -qF "$STATE/tls/ca.crt" "$C/trust/$f"
    check "$f has the fingerprint" grep -qF "$fp" "$C/trust/$f"
done
mkdir -p "$T/bin"
for tool in install update-ca-certificates; do
    printf '#!/bin/sh\necho %s "$@"\n' "$tool" > "$T/bin/$tool"; chmod +x "$T/bin/$tool"
done
check_eq "debian.sh installs ca.crt" "$(PATH="$T/bin:$PATH" sh "$C/trust/debian.sh" | head -1)" \
    "install -m 0644 $STATE/tls/ca.crt /usr/local/share/ca-certificates/qp-conduit-$(hostname |
    tr A-Z a-z).crt"
check_fails "debian.sh refuses another certificate" "is not the CA" \
    env PATH="$T/bin:$PATH" sh "$C/trust/debian.sh" "$L"
check "rhel.sh parses" sh -n "$C/trust/rhel.sh"
check "macos.sh parses" sh -n "$C/trust/macos.sh"

# rotation: rm certs/<domain>.pem
old=$(serial core.internal)
check "rm rotates" rm -f "$L"
new=$(serial core.internal)
check "serial changed" test -n "$new" -a "$new" != "$old"
check "the file is back" openssl verify -CAfile "$C/ca.crt" "$L"
check "old pair archived" archived core.internal "$old"
check_eq "cert_rotate line" "$(last_line cert_rotate | jq -r '[.status, .user,
    .details.previous_serial, .details.serial] | join(" ")')" "success $me $old $new"

# domain change and deregistration archive the pair
check "change the domain" put "$S/core/domain" "api.internal"
check "old domain's pair archived" archived core.internal "$new"
check_fails "old domain's directory gone" "" test -e "$STATE/tls/core.internal"
check_eq "no leaf carries the old domain" "$(state_leaf core.internal)" ""
check_eq "certs/ follows" "$(ls "$C/certs" | tr '\n' ' ')" "api.internal.json api.internal.pem "
check "new domain verifies" openssl verify -verify_hostname api.internal -CAfile "$C/ca.crt" \
    "$C/certs/api.internal.pem"
check "key file 0600" test "$(stat -c %a "$(state_leaf api.internal)")" = 600
api=$(serial api.internal)
check "rmdir deregisters" rmdir "$S/core"
check "rmdir archives" archived api.internal "$api"
check_eq "certs/ is empty" "$(ls "$C/certs" | wc -l)" "0"
check_eq "serving/ is empty" "$(ls "$STATE/tls/serving" | wc -l)" "0"
check_eq "archived keys 0600" "$(find "$STATE/tls/archive" -name key.pem -o -name '*.pem' |
    xargs stat -c %a | sort -u)" "600"

# every other change under ca/ is refused
check "register web" mkdir "$S/web"
check "web gets an upstream" put "$S/web/upstream" "127.0.0.1:9"
W=$C/certs/web.internal
for f in "$C/ca.crt" "$C/ca.json" "$W.pem" "$W.json" "$C/trust/debian.sh"; do
    check_fails "write ${f#$MNT/}" "not permitted" sh -c "echo x > '$f'"
    check_fails "truncate ${f#$MNT/}" "not permitted" truncate -s 0 "$f"
    check_fails "chmod ${f#$MNT/}" "not permitted" chmod 600 "$f"
done
for f in "$C/ca.crt" "$C/ca.json" "$W.json" "$C/trust/debian.sh"; do
    check_fails "rm ${f#$MNT/}" "not permitted" rm -f "$f"
done
check_fails "create in ca/" "not permitted" touch "$C/new"
check_fails "create in certs/" "not permitted" touch "$C/certs/x.internal.pem"
check_fails "create in trust/" "not permitted" touch "$C/trust/x.sh"
check_fails "mkdir in certs/" "not permitted" mkdir "$C/certs/x"
check_fails "rmdir certs/" "not permitted" rmdir "$C/certs"
check_fails "rename" "not permitted" mv "$W.pem" "$C/certs/y.pem"
check_fails "rm an absent leaf" "No such file" rm "$C/certs/nope.internal.pem"
check "web still verifies" openssl verify -CAfile "$C/ca.crt" "$W.pem"

# a failed issuance keeps the registration, and the next mount issues the leaf
if (( legacy )); then
    touch "$STATE/tls/broken.internal"          # a file where the leaf's directory goes
else
    mv "$STATE/tls/serving" "$STATE/tls/serving.x"
    touch "$STATE/tls/serving"                  # a file where the serving folder goes
fi
check "registered despite a failed issuance" mkdir "$S/broken"
check "broken gets an upstream" put "$S/broken/upstream" "127.0.0.1:9"
check_eq "tls_issue failure line" "$(jq -c 'select(.action=="tls_issue" and
    .status=="failure")' "$STATE/audit.log" | tail -1 | jq -r '.details.domain //
    (.details.added | join(" "))')" "broken.internal"
check_eq "no leaf shown" "$(ls "$C/certs" | grep -c broken)" "0"
if (( legacy )); then
    rm "$STATE/tls/broken.internal"
else
    rm "$STATE/tls/serving"
    mv "$STATE/tls/serving.x" "$STATE/tls/serving"
fi
check "web is still shown" test -f "$W.pem"
cfs_unmount

# an existing CA keeps its type; a key that does not match its certificate refuses the mount
cfs_mount --key-type ecdsa-p256
check_eq "existing CA keeps its type" "$(jq -r .key_type "$C/ca.json")" "ed25519"
check_eq "mount issued the missing leaf" "$(jq -c 'select(.action=="tls_issue" and
    .status=="success")' "$STATE/audit.log" | tail -1 | jq -r '[.status, .user,
    .details.domain // (.details.added | join(" "))] | join(" ")')" "success system broken.internal"
check "and it verifies" openssl verify -CAfile "$C/ca.crt" "$C/certs/broken.internal.pem"
cfs_unmount
cp "$STATE/tls/ca.key" "$T/ca.key.good"
openssl genpkey -algorithm ed25519 -out "$STATE/tls/ca.key" 2>/dev/null
chmod 600 "$STATE/tls/ca.key"
before=$(tls_digest)
"$CONDUITFS" -f --no-manage --state "$STATE" "$MNT" 2>"$T/out"
check_eq "mismatched key: exit 2" "$?" "2"
check_eq "mismatched key: one line" "$(wc -l < "$T/out")" "1"
check "mismatched key: says why" grep -q "does not match certificate" "$T/out"
check "mismatched key: not mounted" sh -c "! mountpoint -q '$MNT'"
check_eq "mismatched key: files untouched" "$(tls_digest)" "$before"
cp "$T/ca.key.good" "$STATE/tls/ca.key"

# a key type the CA does not have: refused before anything starts, one line naming the two
before=$(tls_digest)
"$CONDUITFS" -f --no-manage --state "$STATE" --key-type rsa "$MNT" 2>"$T/out"
check_eq "unknown key type: exit 2" "$?" "2"
check "unknown key type: says which are" grep -q 'not ed25519 or ecdsa-p256' "$T/out"
check "unknown key type: not mounted" sh -c "! mountpoint -q '$MNT'"
check_eq "unknown key type: files untouched" "$(tls_digest)" "$before"

# ecdsa-p256, 30-day leaves renewed 120 days ahead: every mount renews them, once
STATE=$T/state2
opts=(--key-type ecdsa-p256 --leaf-days 30 --renew-before-days 120)
cfs_mount "${opts[@]}"
check "register web (ecdsa)" mkdir "$S/web"
check "web gets an upstream (ecdsa)" put "$S/web/upstream" "127.0.0.1:9"
W=$C/certs/web.internal
root=$(x509_text "$C/ca.crt")
leaf=$(x509_text "$W.pem")
check "ecdsa root" grep -q "NIST CURVE: P-256" <<<"$root"
check "ecdsa leaf" grep -q "NIST CURVE: P-256" <<<"$leaf"
check "ecdsa signature" grep -q "Signature Algorithm: ecdsa-with-SHA256" <<<"$leaf"
check "ecdsa SAN" grep -q "DNS:web.internal" <<<"$leaf"
check_eq "ecdsa EKU" "$(ext "Extended Key Usage" <<<"$leaf")" "TLSWebServerAuthentication"
check_eq "ecdsa CA:FALSE" "$(ext "Basic Constraints: critical" <<<"$leaf")" "CA:FALSE"
check "ecdsa verify" openssl verify -x509_strict -purpose sslserver -verify_hostname \
    web.internal -CAfile "$C/ca.crt" "$W.pem"
check "30 days" openssl x509 -in "$W.pem" -noout -checkend $((29 * 86400))
check_fails "not 31 days" "" openssl x509 -in "$W.pem" -noout -checkend $((31 * 86400))
check_eq "ecdsa json" "$(jq -r .key_type "$W.json")" "ecdsa-p256"
check_eq "ecdsa key 0600" "$(stat -c %a "$(state_leaf web.internal)")" "600"
cfs_unmount
# the renewals of the leaf that ca/certs shows
renew_lines() {
    if (( legacy )); then
        jq -c 'select(.action=="tls_renew" and .details.domain=="web.internal")' \
            "$STATE/audit.log"
    else
        jq -c 'select(.action=="tls_renew" and .details.leaf != null)' "$STATE/audit.log"
    fi
}
renews=$(renew_lines | wc -l)
old=$(openssl x509 -in "$(state_leaf web.internal)" -noout -serial | sed 's/.*=//' | tr A-F a-f)
cfs_mount "${opts[@]}"
for _ in $(seq 100); do
    (( $(renew_lines | wc -l) > renews )) && break
    sleep 0.05
done
check_eq "one tls_renew line at mount" "$(renew_lines | wc -l)" "$((renews + 1))"
check_eq "renewed by the daemon, from the old serial" "$(renew_lines | tail -1 | jq -r \
    '[.status, .user, .details.previous_serial] | join(" ")')" "success system $old"
check "serial changed" test "$(serial web.internal)" != "$old"
check "renewed leaf verifies" openssl verify -CAfile "$C/ca.crt" "$W.pem"
check "renewal archived the old pair" archived web.internal "$old"
sleep 1
check_eq "no busy loop: still one" "$(renew_lines | wc -l)" "$((renews + 1))"
cfs_unmount

# managed mode: Caddy serves the leaf, and a rotation reaches it through the reload
if command -v caddy >/dev/null && command -v dnsmasq >/dev/null; then
    STATE=$T/state3
    served() {
        openssl s_client -connect "127.0.0.1:$HTTPS_PORT" -servername web.internal \
            </dev/null 2>/dev/null | openssl x509 -noout -serial | sed 's/.*=//' | tr A-F a-f
    }
    # Caddy serves the shown leaf (while the proxy config also loads the per-domain leaf,
    # Caddy 2.6 may pick either, or one it cached before a reload: any that verifies)
    expect_served() {
        local s
        s=$(served)
        if (( legacy )); then
            openssl s_client -connect "127.0.0.1:$HTTPS_PORT" -servername web.internal \
                -verify_hostname web.internal -CAfile "$C/ca.crt" -verify_return_error \
                </dev/null 2>/dev/null | grep -q "Verify return code: 0 (ok)" && echo ok
        elif [[ $s == "$(serial web.internal)" ]]; then
            echo ok
        else
            echo "served $s"
        fi
    }
    UP_PORT=$(free_port)
    python3 "$(dirname "$0")/upstream.py" "$UP_PORT" web >/dev/null 2>&1 &
    UP_PID=$!
    cfs_mount_managed
    check "register web (managed)" mkdir "$S/web"
    check "web's upstream (managed)" put "$S/web/upstream" "127.0.0.1:$UP_PORT"
    check_eq "HTTPS with our CA" "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
        --cacert "$C/ca.crt" --resolve "web.internal:$HTTPS_PORT:127.0.0.1" \
        "https://web.internal:$HTTPS_PORT/")" "200"
    check_eq "Caddy serves the leaf" "$(expect_served)" "ok"
    before=$(serial web.internal)
    check "rotate (managed)" rm -f "$C/certs/web.internal.pem"
    check "a new serial (managed)" test "$(serial web.internal)" != "$before"
    check_eq "Caddy serves the rotated leaf" "$(expect_served)" "ok"
    cfs_unmount
    kill "$UP_PID" 2>/dev/null
else
    echo "SKIP: managed mode (caddy or dnsmasq not installed)"
fi
finish
