#!/usr/bin/env bash
# test_ca.sh: the internal CA and the ca/ tree: root and leaves checked with openssl for both key
# types, no private key under the mount, rotation by rm, archive on domain change and rmdir, key
# modes, trust instructions, EPERM for every other change, a mismatched CA key refusing the mount,
# renewal at mount, and (when caddy is installed) the proxy serving a rotated certificate.
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
# every file under state/tls with its checksum
tls_digest() { (cd "$STATE/tls" && find . -type f -print0 | sort -z | xargs -0 sha256sum); }

cfs_mount
check "register core" mkdir "$S/core"

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
check "root is ed25519 by default" grep -q "Public Key Algorithm: ED25519" <<<"$root"
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

# the leaf of a pending service
L=$C/certs/core.internal.pem
check_eq "certs/ lists the leaf" "$(ls "$C/certs" | tr '\n' ' ')" \
    "core.internal.json core.internal.pem "
check "openssl verify" openssl verify -CAfile "$C/ca.crt" "$L"
check "verify as a TLS server for its name" openssl verify -x509_strict -purpose sslserver \
    -verify_hostname core.internal -CAfile "$C/ca.crt" "$L"
check "leaf is the state file" cmp "$L" "$STATE/tls/core.internal/cert.pem"
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
check_eq "json fields" "$(jq -c keys_unsorted "$C/certs/core.internal.json")" \
    '["domain","service","serial","not_before","not_after","days_left","sha256_fingerprint",'\
'"key_type"]'
check_eq "json names the service" "$(jq -r .service "$C/certs/core.internal.json")" "core"
check_eq "json serial is the certificate's" "$(serial core.internal)" \
    "$(openssl x509 -in "$L" -noout -serial | sed 's/.*=//' | tr A-F a-f)"
check "days_left" jq -e '.days_left == 364 or .days_left == 365' "$C/certs/core.internal.json"
check "tls_issue line in the caller's name" jq -e --arg u "$me" \
    'select(.action=="tls_issue") | select(.user==$u and .details.domain=="core.internal")' \
    "$STATE/audit.log"

# no private key anywhere under the mount; key files 0600
check_eq "grep -r reads the certificates" "$(grep -rl "BEGIN CERTIFICATE" "$MNT" | sort)" \
    "$(printf '%s\n' "$C/ca.crt" "$L")"
check_eq "no PRIVATE KEY under the mount" "$(timeout 30 grep -rl "PRIVATE KEY" "$MNT"; echo $?)" \
    "1"
check "the key exists in the state dir" grep -q "PRIVATE KEY" "$STATE/tls/core.internal/key.pem"
check_eq "key files are 0600" "$(find "$STATE/tls" -name '*.key' -o -name key.pem |
    xargs stat -c %a | sort -u)" "600"

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
check "old pair archived" test -f "$STATE/tls/archive/core.internal.$old/cert.pem" -a \
    -f "$STATE/tls/archive/core.internal.$old/key.pem"
check_eq "cert_rotate line" "$(last_line cert_rotate | jq -r '[.status, .user,
    .details.previous_serial, .details.serial] | join(" ")')" "success $me $old $new"

# domain change and deregistration archive the pair
check "change the domain" put "$S/core/domain" "api.internal"
check "old domain's pair archived" test -f "$STATE/tls/archive/core.internal.$new/cert.pem"
check_fails "old domain's directory gone" "" test -e "$STATE/tls/core.internal"
check_eq "certs/ follows" "$(ls "$C/certs" | tr '\n' ' ')" "api.internal.json api.internal.pem "
check "new domain verifies" openssl verify -verify_hostname api.internal -CAfile "$C/ca.crt" \
    "$C/certs/api.internal.pem"
check "key file 0600" test "$(stat -c %a "$STATE/tls/api.internal/key.pem")" = 600
api=$(serial api.internal)
check "rmdir deregisters" rmdir "$S/core"
check "rmdir archives" test -f "$STATE/tls/archive/api.internal.$api/key.pem"
check_eq "certs/ is empty" "$(ls "$C/certs" | wc -l)" "0"
check_eq "archived keys 0600" "$(find "$STATE/tls/archive" -name key.pem | xargs stat -c %a |
    sort -u)" "600"

# every other change under ca/ is refused
check "register web" mkdir "$S/web"
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
touch "$STATE/tls/broken.internal"          # a file where the leaf's directory goes
check "registered despite a failed issuance" mkdir "$S/broken"
check_eq "tls_issue failure line" "$(last_line tls_issue | jq -r \
    '[.status, .details.domain] | join(" ")')" "failure broken.internal"
check_eq "no leaf shown" "$(ls "$C/certs" | grep -c broken)" "0"
rm "$STATE/tls/broken.internal"
cfs_unmount

# an existing CA keeps its type; a key that does not match its certificate refuses the mount
cfs_mount --key-type ecdsa-p256
check_eq "existing CA keeps its type" "$(jq -r .key_type "$C/ca.json")" "ed25519"
check_eq "mount issued the missing leaf" "$(last_line tls_issue | jq -r \
    '[.status, .user, .details.domain] | join(" ")')" "success system broken.internal"
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

# ecdsa-p256, 30-day leaves renewed 120 days ahead: every mount renews them, once
STATE=$T/state2
opts=(--key-type ecdsa-p256 --leaf-days 30 --renew-before-days 120)
cfs_mount "${opts[@]}"
check "register web (ecdsa)" mkdir "$S/web"
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
check_eq "ecdsa key 0600" "$(stat -c %a "$STATE/tls/web.internal/key.pem")" "600"
cfs_unmount
renews=$(grep -c '"action":"tls_renew"' "$STATE/audit.log")
old=$(openssl x509 -in "$STATE/tls/web.internal/cert.pem" -noout -serial | sed 's/.*=//' |
    tr A-F a-f)
cfs_mount "${opts[@]}"
for _ in $(seq 100); do
    (( $(grep -c '"action":"tls_renew"' "$STATE/audit.log") > renews )) && break
    sleep 0.05
done
check_eq "one tls_renew line at mount" "$(grep -c '"action":"tls_renew"' "$STATE/audit.log")" \
    "$((renews + 1))"
check_eq "renewed by the daemon, from the old serial" "$(last_line tls_renew | jq -r \
    '[.status, .user, .details.previous_serial] | join(" ")')" "success system $old"
check "serial changed" test "$(serial web.internal)" != "$old"
check "renewed leaf verifies" openssl verify -CAfile "$C/ca.crt" "$W.pem"
check "renewal archived the old pair" test -f "$STATE/tls/archive/web.internal.$old/cert.pem"
sleep 1
check_eq "no busy loop: still one" "$(grep -c '"action":"tls_renew"' "$STATE/audit.log")" \
    "$((renews + 1))"
cfs_unmount

# managed mode: Caddy serves the leaf, and a rotation reaches it through the reload
if command -v caddy >/dev/null && command -v dnsmasq >/dev/null; then
    STATE=$T/state3
    served() {
        openssl s_client -connect "127.0.0.1:$HTTPS_PORT" -servername web.internal \
            </dev/null 2>/dev/null | openssl x509 -noout -serial | sed 's/.*=//' | tr A-F a-f
    }
    cfs_mount_managed
    check "register web (managed)" mkdir "$S/web"
    check_eq "HTTPS with our CA" "$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 \
        --cacert "$C/ca.crt" --resolve "web.internal:$HTTPS_PORT:127.0.0.1" \
        "https://web.internal:$HTTPS_PORT/")" "503"
    check_eq "Caddy serves the leaf" "$(served)" "$(serial web.internal)"
    check "rotate (managed)" rm -f "$C/certs/web.internal.pem"
    check_eq "Caddy serves the rotated leaf" "$(served)" "$(serial web.internal)"
    cfs_unmount
else
    echo "SKIP: managed mode (caddy or dnsmasq not installed)"
fi
finish
