#!/usr/bin/env bash
# test_ssh_keys.sh: where a monitoring target's ssh_key may come from (issue 12, item 8). On a
# mount with --admin-group and allow_other,default_permissions, a member of the group writes
# target.json: the root daemon must refuse with EACCES the CA's private key, state/key,
# /etc/shadow, a symlink into tls/, another user's key and a missing file alike, and accept a
# key in <state>/monitoring/keys/ or a file of the member's own. A key accepted and later
# swapped for a symlink to ca.key is refused at login. With a real sshd on loopback, both
# allowed keys log in (the key is read through the checked descriptor).
source "$(dirname "$0")/lib.sh"
M=$MNT/monitor

make_users "cfskey$$" "cfskop$$" "cfskot$$"
keys_cleanup() {
    cfs_unmount
    [[ -f $T/sshd/sshd.pid ]] && kill "$(cat "$T/sshd/sshd.pid")" 2>/dev/null
    remove_users
    rm -rf "$T"
}
trap keys_cleanup EXIT
chmod 755 "$T"
as() { local u=$1; shift; runuser -u "$u" -- "$@"; }

# ---- a real sshd on loopback that lets root in with the client key ----
SSH_OK=0
sshd_setup "HOME=$T/sshd" && sshd_start && SSH_OK=1
((SSH_OK)) || echo "SKIP (login part): no sshd could be started"
if ((SSH_OK)); then KEY_TEXT=$T/sshd/client_key; else
    KEY_TEXT=$T/fake_key; echo "not a real key" > "$KEY_TEXT"; fi

# the member's own directory and key; another user's key beside it
mkdir -m 755 "$T/u1" "$T/u2"
install -m 600 -o "$U1" "$KEY_TEXT" "$T/u1/id"
install -m 600 -o "$U2" "$KEY_TEXT" "$T/u2/id"
chown "$U1" "$T/u1"
chown "$U2" "$T/u2"

cfs_mount --admin-group "$G" -o allow_other,default_permissions
check "the state has a CA key" test -f "$STATE/tls/ca.key"
check "a member adds a target" as "$U1" mkdir "$M/t1"
tj() { printf '{"ssh_host":"127.0.0.1","ssh_port":%d,"ssh_user":"root","ssh_key":"%s",%s}' \
           "$SSH_PORT" "$1" '"types":["server"]'; }
put_as() { as "$U1" bash -c 'printf "%s\n" "$1" > "$2"' bash "$2" "$1"; }   # FILE VALUE

as "$U1" ln -s "$STATE/tls/ca.key" "$T/u1/ca-link"
for k in "$STATE/tls/ca.key" "$STATE/key" /etc/shadow "$T/u1/ca-link" "$T/u2/id" \
         "$T/u1/missing" /root/.no-such-key "$STATE/monitoring/targets.json"; do
    check_fails "a member may not use $k" "Permission denied" \
        put_as "$M/t1/target.json" "$(tj "$k")"
done
check_eq "refused writes leave target.json alone" "$(cat "$M/t1/target.json")" "{}"
check_fails "root may not use the CA key either" "Permission denied" \
    put "$M/t1/target.json" "$(tj "$STATE/tls/ca.key")"
check_fails "nor a symlink to it" "Permission denied" \
    put "$M/t1/target.json" "$(tj "$T/u1/ca-link")"

# allowed: the keys directory (root's), and the member's own file
check "the keys directory exists" test -d "$STATE/monitoring/keys"
check_eq "...root's, 0700" "$(stat -c '%U %a' "$STATE/monitoring/keys")" "root 700"
install -m 600 "$KEY_TEXT" "$STATE/monitoring/keys/fleet"
check "a member may name a key in monitoring/keys" put_as "$M/t1/target.json" \
    "$(tj "$STATE/monitoring/keys/fleet")"
check "a member adds a second target" as "$U1" mkdir "$M/t2"
check "a member may name a key of their own" put_as "$M/t2/target.json" "$(tj "$T/u1/id")"
check_jq "targets.json keeps whose key it is" "(.targets[] | select(.name == \"t2\") |
    .key_owner) == $(id -u "$U1")" "$STATE/monitoring/targets.json"
check_eq "target.json shows no owner" "$(jq -r 'has("key_owner")' "$M/t2/target.json")" \
    "false"
chmod 620 "$STATE/monitoring/keys/fleet"
check_fails "a group-writable key in monitoring/keys is refused" "Permission denied" \
    put "$M/t1/target.json" "$(tj "$STATE/monitoring/keys/fleet")"
chmod 600 "$STATE/monitoring/keys/fleet"

if ((SSH_OK)); then
    check_jq "login with the key from monitoring/keys" '.error == null' \
        <(cat "$M/t1/server.json")
    check_jq "login with the member's own key" '.error == null' <(cat "$M/t2/server.json")
fi

# the member's key swapped for a symlink to ca.key after it was accepted: refused at login
check "the member swaps the key" as "$U1" ln -sfn "$STATE/tls/ca.key" "$T/u1/id"
check "forget the pooled session (remount)" cfs_unmount
cfs_mount --admin-group "$G" -o allow_other,default_permissions
check_jq "a swapped key is refused at login" '.metrics == null and
    (.error | test("ssh key .* refused"))' <(cat "$M/t2/server.json")
check_eq "and the daemon never dialled for it" "$(grep -c 'Accepted publickey' \
    "$T/sshd/log" 2>/dev/null || echo 0)" "$( ((SSH_OK)) && echo 2 || echo 0)"
cfs_unmount
finish
