#!/usr/bin/env bash
# test_replace.sh: replacing an attribute with a standard tool (issue 13 item 2). Every way a
# tool replaces a file ends with the new value, or with an error and the old value intact, and
# never passes through a reset: the audit log's changes of the attribute are exactly OLD>NEW, or
# none. Tools: mv across filesystems and within the mount, mv between two services, cp, install
# (with and without -m), rsync with and without --inplace (the real one when installed, else the
# same syscalls from python), sed -i, vim with backupcopy=no/auto/yes (when installed), and an
# editor that renames the original to FILE~ first (python, with and without vim's copy fallback).
# Also: rm of an attribute changes nothing; rm -r of a service still deregisters it; staging
# files (the temporary files those tools write) are listed, capped, never in services.json, and
# gone with their service.
source "$(dirname "$0")/lib.sh"
N=epsilon
E=$S/$N
OLD=10.0.0.1:80
BAD=10.0.0.1:99999

# allow_other needs root, or user_allow_other in /etc/fuse.conf (CI runs as root).
MOPTS=(-o "allow_other,default_permissions")
if [[ $(id -u) != 0 ]] && ! grep -qs '^user_allow_other' /etc/fuse.conf; then
    echo "SKIP: allow_other (not root, no user_allow_other): mounting with default_permissions"
    MOPTS=(-o "default_permissions")
fi
cfs_mount --domains internal "${MOPTS[@]}"
mkdir "$E"
put "$E/upstream" "$OLD"
ATTRS="domain health_check lb_policy mode monitoring upstream"

# The upstream changes of $N in the audit log, one "OLD>NEW" per line.
changes() {
    jq -r --arg n "$N" 'select(.details.name == $n and .details.attribute == "upstream")
        | "\(.details.old)>\(.details.new)"' "$STATE/audit.log"
}

# The files of services/$N, on one line.
listing() { ls -A "$E" | tr '\n' ' ' | sed 's/ $//'; }

# replace WHAT GOOD|BAD VALUE COMMAND...: run a tool that replaces upstream with VALUE (which
# the command reads from $SRC, a file on another filesystem holding "VALUE\n").
# GOOD: it succeeds, the value is VALUE, and the only change audited is old>VALUE.
# BAD: it fails, the value is the old one, and nothing is audited.
# Either way no staging file is left (but $LEFT, which the tool keeps on purpose: it is checked
# to hold the old value, then removed), and services.json agrees.
LEFT=
replace() {
    local what=$1 kind=$2 value=$3 before n0 rc=0 want
    shift 3
    printf '%s\n' "$value" > "$T/src"
    SRC=$T/src
    before=$(cat "$E/upstream")
    n0=$(changes | wc -l)
    "$@" >"$T/out" 2>&1 || rc=$?
    if [[ $kind == GOOD ]]; then
        want=$value
        check_eq "$what: exit status (output: $(head -c 200 "$T/out"))" "$rc" 0
        check_eq "$what: audited changes" "$(changes | tail -n +$((n0 + 1)))" "$before>$value"
    else
        want=$before
        check "$what: fails (exit status $rc)" test "$rc" -ne 0
        check_eq "$what: audited changes" "$(changes | tail -n +$((n0 + 1)))" ""
    fi
    check_eq "$what: the value" "$(cat "$E/upstream")" "$want"
    check_eq "$what: services.json" "$(jq -r --arg n "$N" \
        '.services[] | select(.name == $n) | "\(.status) \(.upstream)"' \
        "$STATE/services.json")" "active $want"
    if [[ -n $LEFT ]]; then
        check_eq "$what: $LEFT keeps the old value" "$(cat "$E/$LEFT")" "$before"
        rm -f "$E/$LEFT"
    fi
    check_eq "$what: no staging file left" "$(listing)" "$ATTRS"
}

# ---- rm of an attribute changes nothing, and rm -r still deregisters ----
n0=$(changes | wc -l)
check "rm of an attribute succeeds" rm "$E/upstream"
check_eq "rm: the value is unchanged" "$(cat "$E/upstream")" "$OLD"
check_eq "rm: nothing audited" "$(changes | tail -n +$((n0 + 1)))" ""
check_eq "rm: still listed" "$(listing)" "$ATTRS"
mkdir "$S/gone"
check "rm -r of a service succeeds" rm -r "$S/gone"
check_fails "rm -r deregistered it" "No such file" ls "$S/gone"
echo "section 1: rm of an attribute changes nothing; rm -r deregisters"

# ---- the tools, each with a good and a bad value ----
i=1
for kind in GOOD BAD; do
    v=10.0.0.$((++i)):80; [[ $kind == BAD ]] && v=$BAD
    # the reproduction: mv from /tmp (another filesystem): unlink, then create with O_EXCL
    replace "mv across filesystems ($kind)" $kind "$v" sh -c 'cp "$0" "$0.mv" &&
        mv "$0.mv" "$1"' "$T/src" "$E/upstream"
    v=10.0.0.$((++i)):80; [[ $kind == BAD ]] && v=$BAD
    replace "mv within the mount ($kind)" $kind "$v" sh -c 'cp "$0" "$1/.upstream.new" &&
        { mv "$1/.upstream.new" "$1/upstream" || { rm -f "$1/.upstream.new"; exit 1; }; }' \
        "$T/src" "$E"
    v=10.0.0.$((++i)):80; [[ $kind == BAD ]] && v=$BAD
    replace "cp ($kind)" $kind "$v" cp "$T/src" "$E/upstream"
    v=10.0.0.$((++i)):80; [[ $kind == BAD ]] && v=$BAD
    replace "install ($kind)" $kind "$v" install "$T/src" "$E/upstream"
    v=10.0.0.$((++i)):80; [[ $kind == BAD ]] && v=$BAD
    replace "install -m 644 ($kind)" $kind "$v" install -m 644 "$T/src" "$E/upstream"
    v=10.0.0.$((++i)):80; [[ $kind == BAD ]] && v=$BAD
    # sed -i: a temporary file in the same directory, renamed over the target
    replace "sed -i ($kind)" $kind "$v" sed -i "s/.*/$v/" "$E/upstream"
done
echo "section 2: mv (across filesystems, within the mount), cp, install, sed -i"

# rsync: the real one when installed; otherwise its receiver's syscalls from python:
# without --inplace, mkstemp .NAME.XXXXXX in the same directory, write, fchmod, utime, rename
# over the target (unlink the temporary file when that fails); with --inplace, open without
# O_TRUNC, write at 0, ftruncate to the length written, utime.
rsync_like() {
    py3 - "$@" <<'EOF'
import os, random, string, sys
mode, src, dst = sys.argv[1:4]
data = open(src, "rb").read()
if mode == "inplace":
    fd = os.open(dst, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        os.pwrite(fd, data, 0)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)
    os.utime(dst)
    sys.exit(0)
d, b = os.path.split(dst)
tmp = os.path.join(d, ".%s.%s" % (b, "".join(random.choice(string.ascii_letters)
                                            for _ in range(6))))
fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
try:
    os.write(fd, data)
    os.fchmod(fd, 0o644)
finally:
    os.close(fd)
os.utime(tmp)
try:
    os.rename(tmp, dst)
except OSError as e:
    os.unlink(tmp)
    sys.exit("rename %s -> %s failed: %s" % (tmp, dst, e.strerror))
EOF
}
if command -v rsync >/dev/null; then
    RSYNC=(rsync); RSYNC_IN=(rsync --inplace)
else
    echo "rsync not installed: its syscalls from python"
    RSYNC=(rsync_like temp); RSYNC_IN=(rsync_like inplace)
fi
for kind in GOOD BAD; do
    v=10.0.0.$((++i)):80; [[ $kind == BAD ]] && v=$BAD
    replace "rsync ($kind)" $kind "$v" "${RSYNC[@]}" "$T/src" "$E/upstream"
    v=10.0.0.$((++i)):80; [[ $kind == BAD ]] && v=$BAD
    replace "rsync --inplace ($kind)" $kind "$v" "${RSYNC_IN[@]}" "$T/src" "$E/upstream"
done
echo "section 3: rsync with and without --inplace (${RSYNC[0]})"

# An editor that renames the original to FILE~, writes FILE anew, and removes FILE~ (vim's
# backupcopy=no with writebackup). The rename is refused; with fallback, it then copies FILE to
# FILE~ and removes FILE (vim_rename), writes FILE with O_CREAT, ftruncate, write, fsync,
# fchmod, and on a write error puts FILE~ back by rename. Without fallback it gives up.
editor_like() {
    py3 - "$@" <<'EOF'
import os, shutil, sys
fallback, src, path = sys.argv[1] == "fallback", sys.argv[2], sys.argv[3]
bak = path + "~"
data = open(src, "rb").read()
try:
    os.rename(path, bak)
except OSError as e:
    if not fallback:
        sys.exit("cannot rename %s to %s: %s" % (path, bak, e.strerror))
    fi = os.open(path, os.O_RDONLY)
    fo = os.open(bak, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    os.write(fo, os.read(fi, 65536))
    os.close(fo)
    os.close(fi)
    os.unlink(path)
fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
try:
    os.ftruncate(fd, 0)
    os.write(fd, data)
    os.fsync(fd)
    os.fchmod(fd, 0o644)
except OSError as e:
    os.close(fd)
    os.unlink(path)
    os.rename(bak, path)
    sys.exit("write error: %s" % e.strerror)
os.close(fd)
os.unlink(bak)
EOF
}
for kind in GOOD BAD; do
    v=10.0.0.$((++i)):80; [[ $kind == BAD ]] && v=$BAD
    replace "editor: rename to FILE~, no fallback ($kind)" BAD "$v" \
        editor_like plain "$T/src" "$E/upstream"
    replace "editor: rename to FILE~, copy fallback ($kind)" $kind "$v" \
        editor_like fallback "$T/src" "$E/upstream"
done
if command -v vim >/dev/null; then
    for bc in no auto yes; do
        for kind in GOOD BAD; do
            v=10.0.0.$((++i)):80; [[ $kind == BAD ]] && v=$BAD
            # the mount is under /tmp, which 'backupskip' excludes by default. On a failed
            # write vim puts a renamed backup back, but keeps a copied one (upstream~).
            LEFT=; [[ $kind$bc == BADyes ]] && LEFT="upstream~"
            replace "vim backupcopy=$bc ($kind)" $kind "$v" env HOME="$T" vim -u NONE -i NONE \
                -N -es -c "set backupskip= nobackup writebackup backupcopy=$bc" \
                -c "%s/.*/$v/" -c wq "$E/upstream"
        done
    done
    LEFT=
    echo "section 4: editors that rename a backup (python; vim backupcopy=no, auto, yes)"
else
    echo "section 4: editors that rename a backup (python; vim not installed: SKIP vim)"
fi

# ---- staging files ----
put "$E/.upstream.new" "10.9.9.9:80"
check_eq "a staging file is listed" "$(listing)" ".upstream.new $ATTRS"
check_eq "and reads back" "$(cat "$E/.upstream.new")" "10.9.9.9:80"
check_eq "it is not in services.json" "$(grep -c 10.9.9.9 "$STATE/services.json")" "0"
check_fails "an attribute cannot be renamed away" "not permitted" mv "$E/upstream" "$E/up2"
check_fails "nor over another attribute" "not permitted" mv "$E/domain" "$E/upstream"
mkdir "$S/zeta"
check "mv of a staging file to another service's attribute" mv "$E/.upstream.new" \
    "$S/zeta/upstream"
check_eq "sets that attribute" "$(cat "$S/zeta/upstream")" "10.9.9.9:80"
check_eq "and leaves nothing behind" "$(listing)" "$ATTRS"
for k in $(seq 16); do : > "$E/t$k" || break; done
check_fails "a 17th staging file" "No space left" touch "$E/t17"
rm -f "$E"/t*
check_fails "a staging file over 256 KiB" "File too large" \
    dd if=/dev/zero of="$E/big" bs=64k count=5 status=none
rm -f "$E/big"
put "$S/zeta/scratch" "x"
rmdir "$S/zeta"
mkdir "$S/zeta"
check_fails "staging files go with their service" "No such file" cat "$S/zeta/scratch"
check_eq "the value of $N after everything" "$(cat "$E/upstream")" "$(changes | tail -1 |
    cut -d'>' -f2)"
check_eq "no reset was ever audited for $N" "$(changes | grep -c '>$')" "0"
check "the audit chain verifies" "$CONDUITFS" verify --state "$STATE"
echo "section 5: staging files"
finish
