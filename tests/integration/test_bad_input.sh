#!/usr/bin/env bash
# test_bad_input.sh: every bad value is refused with its errno, and the registry and every
# generated config stay byte-identical afterwards; each refusal is one sealed failure entry that
# names the path, the caller and the reason, and one log line (issue 13 item 3).
source "$(dirname "$0")/lib.sh"
cfs_mount --domains internal,test

mkdir "$S/core" "$S/other"
put "$S/core/upstream" "10.0.1.10:8000"
put "$S/other/domain" "taken.internal"
before=$(configs_digest)
lines=$(wc -l < "$STATE/audit.log")
checks=$((PASS + FAIL))

# injection strings, tried through every attribute
inject=($'a\nb' 'a{b' 'a}b' 'a#b' 'a b' 'a`id`b' $'x\rlocal=/evil/' '}' '{' '#' ' ' '`'
        $'core.internal\naddress=/#/6.6.6.6' $'/health\n}\nevil.internal {' '$(reboot)'
        "a;b" "a'b" 'a"b' 'a\b' $'a\tb' $'\xff\xfe' 'a|b')
for attr in upstream domain health_check mode monitoring; do
    for v in "${inject[@]}"; do
        check_fails "$attr <- $(printf %q "$v")" "Invalid argument" put "$S/core/$attr" "$v"
    done
done

bad_upstream=("10.0.0.1" "10.0.0.1:0" "10.0.0.1:65536" "256.1.1.1:80" "10.0.0.01:80"
              "ftp://h:21" "http://h" "h:80/path" "[::1" "[::1]" "[fe80::1%eth0]:80"
              "-h:80" "h_x:80" ":80" "http://:80" "h:+80" "h:080")
for v in "${bad_upstream[@]}"; do
    check_fails "upstream $v" "Invalid argument" put "$S/core/upstream" "$v"
done
bad_domain=("Core.internal" "core.example" "internal" ".internal" "core..internal"
            "core.internal." "-a.internal" "a-.internal" "a_b.internal" "xinternal"
            "$(printf 'a%.0s' {1..64}).internal"
            "$(printf 'abcdefghi.%.0s' {1..25})internal")
for v in "${bad_domain[@]}"; do
    check_fails "domain $v" "Invalid argument" put "$S/core/domain" "$v"
done
check_fails "domain taken" "File exists" put "$S/core/domain" "taken.internal"
bad_health=("health" "//evil" "/a b" "/a#b" "/a<b" "/%zz" "/$(printf 'a%.0s' {1..256})")
for v in "${bad_health[@]}"; do
    check_fails "health_check ${v:0:20}" "Invalid argument" put "$S/core/health_check" "$v"
done
for v in "PROXY" "tcp" "" "proxy dns"; do
    check_fails "mode [$v]" "Invalid argument" put "$S/core/mode" "$v"
done
bad_mon=('[]' '"x"' '{"type":"vm"}' '{"type":"gpu"}' '{"type":"gpu","ssh_host":"h","x":1}'
         '{"type":"gpu","ssh_host":"h","ssh_port":"22"}' '{"type":"gpu","ssh_host":"h","ssh_port":0}'
         '{"type":"container","container_name":"a","container_name":"b"}'
         '{"type":"container"}' '{"type":"gpu","ssh_host":"h;id"}' '{' 'null' '{"a":1e999}')
for v in "${bad_mon[@]}"; do
    check_fails "monitoring $v" "Invalid argument" put "$S/core/monitoring" "$v"
done
printf '%*s' 10000 '' | tr ' ' '[' > "$T/deep"
check_fails "monitoring nested 10000 deep" "too large" put_file "$T/deep" "$S/core/monitoring"
printf '{"type":"gpu","ssh_host":"h\0x"}\n' > "$T/nul"
check_fails "NUL in a value" "Invalid argument" put_file "$T/nul" "$S/core/monitoring"
printf 'h\0:80\n' > "$T/nul2"
check_fails "NUL in upstream" "Invalid argument" put_file "$T/nul2" "$S/core/upstream"
head -c 5000 /dev/zero | tr '\0' a > "$T/big"
check_fails "overlong value" "too large" put_file "$T/big" "$S/core/domain"

bad_names=("Core" "a_b" "-a" "a-" "a.b" "$(printf 'a%.0s' {1..64})" "a b" "é")
for v in "${bad_names[@]}"; do
    check_fails "mkdir $v" "Invalid argument" mkdir "$S/$v"
done

check_eq "registry and configs byte-identical" "$(configs_digest)" "$before"
refused=$((PASS + FAIL - checks - 1))   # all but the digest check above refused a value
tail -n +"$((lines + 1))" "$STATE/audit.log" > "$T/new.log"
check_eq "one audit entry per refused value" "$(wc -l < "$T/new.log")" "$refused"
check_jq "every one a failure naming the path, the caller and the reason" \
    '[.status == "failure", .action == "change_refused",
      (.details.operation | test("^service_(update|register)$")),
      (.details.path | test("^services/")), .user == "root",
      (.details.reason | length > 0)] | all' "$T/new.log"
check "a bad port says why" grep -q '"path":"services/core/upstream".*"reason":"the port is not 1-65535' \
    "$T/new.log"
check "a taken domain names its service" \
    grep -q '"reason":"taken.internal is the domain of service other"' "$T/new.log"
check "the overlong value is audited too" grep -q '"reason":"the value is longer than 4096 bytes"' \
    "$T/new.log"
check "the daemon's log says why" grep -q \
    "registry: refused a change of services/core/upstream by root: no :PORT" "$T/conduitfs.log"

# a loop of bad writes: the log lines are rate-limited, the audit log alone grows
loglines=$(wc -l < "$T/conduitfs.log")
ports=$(grep -c '"reason":"the port is not 1-65535' "$STATE/audit.log")
for _ in $(seq 300); do put "$S/core/upstream" "10.0.0.1:99999" 2>/dev/null; done
check "300 bad writes log fewer lines than that" \
    test "$(($(wc -l < "$T/conduitfs.log") - loglines))" -lt 200
check_eq "300 bad writes, 300 failure entries" \
    "$(grep -c '"reason":"the port is not 1-65535' "$STATE/audit.log")" "$((ports + 300))"
check_eq "registry and configs still byte-identical" "$(configs_digest)" "$before"
finish
