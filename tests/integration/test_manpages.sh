#!/usr/bin/env bash
# test_manpages.sh: the man pages docs/conduitfs.1 (the daemon) and docs/conduit.1 (the
# conduit-* commands). Each formats without a single groff or man warning; every long option,
# subcommand, short option and -o key that `conduitfs --help` prints is in conduitfs.1 (so
# adding an option without documenting it fails here); every scripts/conduit-*.sh command has
# a section in conduit.1 that names each option its --help prints, and the environment the
# commands read is there; `cmake --install` of this build puts both pages in share/man/man1,
# where `man -w` finds them by name. No mount.

# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
# grep_or_bad WHY GREP-ARGS...: one check that `grep -q GREP-ARGS` matches; WHY on failure.
grep_or_bad() {
    local why=$1
    shift
    if grep -q "$@"; then ok; else bad "$why"; fi
}
# words_after WORD RANGE FILE: the words that follow "WORD " on the lines of FILE in the sed
# address range RANGE, sorted, each once.
words_after() { sed -n "$2p" "$3" | grep -oE "$1 [a-z]+" | awk '{ print $2 }' | sort -u; }
SRC=$(cd "$(dirname "$0")/../.." && pwd)
PAGE=$SRC/docs/conduitfs.1
CMDS=$SRC/docs/conduit.1
export LC_ALL=C.UTF-8 MANWIDTH=80

for p in "$PAGE" "$CMDS"; do
    if [[ ! -f $p ]]; then
        bad "${p#"$SRC"/} is missing"
        continue
    fi
    check "man -l ${p##*/} formats" man -l "$p"
    out=$(man --warnings=all -l "$p" 2>&1 >/dev/null)
    check_eq "man --warnings=all -l ${p##*/}: no warnings" "$out" ""
    out=$(groff -man -ww -z "$p" 2>&1)
    check_eq "groff -man -ww -z ${p##*/}: no warnings" "$out" ""
done
[[ -f $PAGE && -f $CMDS ]] || { finish; exit; }

# The page's source as text: \- is -, font changes and zero-width escapes removed.
plain() { sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\&//g' -e 's/\\e/\\/g' "$1"; }
plain "$PAGE" > "$T/conduitfs.txt"

# ---- every option of conduitfs --help is documented ----
"$CONDUITFS" --help > "$T/help" || bad "conduitfs --help failed"
mapfile -t longs < <(grep -oE -- '--[a-z][a-z0-9-]+' "$T/help" | sort -u)
((${#longs[@]} >= 10)) || bad "conduitfs --help lists only ${#longs[@]} long options"
for o in "${longs[@]}"; do
    grep_or_bad "conduitfs.1 does not document $o (printed by conduitfs --help)" \
        -E -- "(^|[^a-z-])$o([^a-z0-9-]|$)" "$T/conduitfs.txt"
done
# short options: "-f", "-h, --help" at the start of a help line
mapfile -t shorts < <(grep -oE -- '^ +-[a-zA-Z]\b' "$T/help" | tr -d ' ' | sort -u)
for o in "${shorts[@]}"; do
    grep_or_bad "conduitfs.1 has no .B entry for $o (printed by conduitfs --help)" \
        -E -- "^\.(B|BR|BI) $o( |,|$)" "$T/conduitfs.txt"
done
# subcommands: "conduitfs WORD" on the usage lines
mapfile -t subs < <(words_after conduitfs '/^usage:/,/^$/' "$T/help")
for s in "${subs[@]}"; do
    grep_or_bad "conduitfs.1 has no section for 'conduitfs $s' (printed by conduitfs --help)" \
        -- "^\.SS \"conduitfs $s" "$T/conduitfs.txt"
done
# -o keys: the fstab spellings ("state=", "gateway_ip=", "no_manage", ...) in the -o entry
mapfile -t keys < <(sed -n '/^ *-o /,/^ *-h/p' "$T/help" |
    grep -oE '\b[a-z][a-z0-9]*(_[a-z0-9]+)+\b|\b[a-z][a-z0-9_]*=' | sed 's/=$//' | sort -u)
((${#keys[@]} >= 5)) || bad "conduitfs --help lists only ${#keys[@]} -o keys"
for k in "${keys[@]}"; do
    grep_or_bad "conduitfs.1 does not document -o $k (printed by conduitfs --help)" \
        -E -- "(^|[^a-z_])$k([^a-z0-9_]|$)" "$T/conduitfs.txt"
done
# the sections the page must have
for sec in SYNOPSIS OPTIONS COMMANDS "THE FILESYSTEM" ERRORS FILES ENVIRONMENT SIGNALS \
    "EXIT STATUS" EXAMPLES; do
    check "conduitfs.1 has .SH $sec" grep -qx "\.SH \"\?$sec\"\?" "$T/conduitfs.txt"
done
for tree in / services/ ca/ monitor/ audit/; do
    check "conduitfs.1 describes the tree $tree" grep -qx "\.SS $tree" "$T/conduitfs.txt"
done
for e in EINVAL EEXIST EPERM ENOENT EFBIG EIO ENOSPC EACCES EISDIR ENOTDIR ESTALE; do
    check "conduitfs.1 lists $e" grep -qE "^\.BR? (.* )?$e\b" "$T/conduitfs.txt"
done
for s in SIGHUP SIGINT SIGTERM; do
    check "conduitfs.1 lists $s" grep -qE "^\.BR? (.* )?$s\b" "$T/conduitfs.txt"
done

# ---- every conduit-* command has a section naming each of its options ----
plain "$CMDS" > "$T/conduit.txt"
n=0
for sh in "$SRC"/scripts/conduit-*.sh; do
    cmd=${sh##*/}
    cmd=${cmd%.sh}
    [[ $cmd != conduit-lib ]] || continue
    n=$((n + 1))
    # the section: from ".SS cmd" to the next .SS or .SH
    awk -v c="$cmd" '$0 == ".SS " c { on = 1; next } /^\.S[SH] / { on = 0 } on' \
        "$T/conduit.txt" > "$T/section"
    if [[ ! -s $T/section ]]; then
        bad "conduit.1 has no section .SS $cmd"
        continue
    fi
    ok
    check "conduit.1 names $cmd in NAME" grep -qE "(^|[ ,])$cmd(,| -|$)" \
        <(sed -n '/^\.SH NAME/,/^\.SH/p' "$T/conduit.txt")
    check "conduit.1 has a SYNOPSIS for $cmd" grep -qx "\.SY $cmd" "$T/conduit.txt"
    "$sh" --help > "$T/usage" 2>&1 || bad "$cmd --help failed"
    mapfile -t opts < <(grep -oE -- '--[a-z][a-z0-9-]+' "$T/usage" | sort -u)
    for o in "${opts[@]}"; do
        [[ $o != --help && $o != --opt ]] || continue
        # a conduitfs option a command's usage mentions (conduit-dns: "as --dns-listen") is
        # not its own unless the command takes it
        if [[ $cmd == conduit-dns && $o == --dns-listen ]]; then continue; fi
        grep_or_bad "conduit.1's section $cmd does not document $o (printed by $cmd --help)" \
            -E -- "(^|[^a-z-])$o([^a-z0-9-]|$)" "$T/section"
    done
    # words a command takes as its first argument (conduit-ca export|trust)
    mapfile -t words < <(words_after "$cmd" '1,/^$/' "$T/usage")
    for w in "${words[@]}"; do
        check "conduit.1's section $cmd documents '$w'" grep -qx "\.B $w" "$T/section"
    done
done
((n >= 10)) || bad "only $n conduit-* commands in scripts/"
for v in CONDUIT_MOUNT CONDUIT_DNS CONDUITFS; do
    check "conduit.1 documents $v under ENVIRONMENT" grep -qx "\.B $v" \
        <(sed -n '/^\.SH ENVIRONMENT/,/^\.SH/p' "$T/conduit.txt")
done
for s in 0 1 2; do
    check "conduit.1 documents exit status $s" grep -qx "\.B $s" \
        <(sed -n '/^\.SH EXIT STATUS/,/^\.SH/p' "$T/conduit.txt")
done

# ---- cmake --install puts them where man finds them ----
BUILD=$(dirname "$CONDUITFS")
if [[ ! -f $BUILD/CMakeCache.txt ]]; then
    bad "$BUILD is not a CMake build directory (no CMakeCache.txt): cannot test the install"
    finish
    exit
fi
check "cmake --install into a temp prefix" cmake --install "$BUILD" --prefix "$T/inst"
MAN1=$T/inst/share/man/man1
for p in conduitfs conduit conduit-register conduit-setup conduit-verify; do
    check "installed $MAN1/$p.1" test -f "$MAN1/$p.1"
    check_eq "MANPATH=.../share/man man -w $p" \
        "$(MANPATH=$T/inst/share/man man -w "$p" 2>&1)" "$MAN1/$p.1"
done
for sh in "$SRC"/scripts/conduit-*.sh; do
    cmd=${sh##*/}
    cmd=${cmd%.sh}
    [[ $cmd != conduit-lib ]] || continue
    check "$cmd is installed, with its man page" test -x "$T/inst/bin/$cmd" -a -f "$MAN1/$cmd.1"
done
check "man conduitfs renders the installed page" \
    bash -c "MANPATH='$T/inst/share/man' man conduitfs | grep -q 'state directory'"

finish
