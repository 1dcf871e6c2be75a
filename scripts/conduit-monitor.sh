#!/usr/bin/env bash
# conduit-monitor: the live probes under monitor/<target>/ as tables, or their raw JSON.
set -euo pipefail
PROG=conduit-monitor
USAGE="usage: $PROG [--target T] [--server | --gpu | --containers] [--json]

Reads the live probe files of monitor/T/ on the conduitfs mount at \$CONDUIT_MOUNT (default
/run/conduit); each read runs the probe (or shares one a few seconds old at most).

  --target T     local (default), a target made with mkdir monitor/T, or a service whose
                 monitoring attribute names something to probe
  --server       server.json only: uptime, load, CPU, memory, disk
  --gpu          gpu.json only: one row per GPU (nvidia-smi)
  --containers   containers.json only: one row per container (Docker Engine API)
  --json         the probe documents as they are, one JSON document a line

Without a file option every probe file of T is shown (container.json for a service).
A probe that failed is still shown, with its error, and makes the exit status 1.
Tables need jq. Exit status: 0 every probe answered, 1 a probe reported an error or a read
failed (e.g. no such target), 2 bad arguments."
lib=$(dirname "$(readlink -f "$0")")
[[ -r $lib/conduit-lib.sh ]] || lib=$lib/../lib/conduitfs
# shellcheck source=scripts/conduit-lib.sh
. "$lib/conduit-lib.sh" || exit 1

target=local json=0 only=''
pick() {
    [[ -z $only || $only == "$1" ]] || cl_bad "give one of --server, --gpu, --containers"
    only=$1
}
while (($#)); do
    case $1 in
    -h | --help) cl_usage ;;
    --target | --target=*) cl_opt target "$1" "${2-}" $# && shift; cl_name --target "$target" ;;
    --server) pick server ;;
    --gpu) pick gpu ;;
    --containers) pick containers ;;
    --json) json=1 ;;
    *) cl_unexpected "$1" ;;
    esac
    shift
done
cl_need_mount
((json)) || cl_has jq || cl_die "tables need jq (apt-get install jq); --json prints the raw JSON"

dir=monitor/$target
[[ -d $M/$dir ]] || { cl_try "$dir" ls -- "$M/$dir" || cl_die "$CL_ERR"; }
files=()
if [[ -n $only ]]; then
    files=("$only.json")
else
    for f in server gpu containers container; do
        [[ -e $M/$dir/$f.json ]] && files+=("$f.json")
    done
    ((${#files[@]})) || cl_die "$dir has no probe files (a target needs its target.json first)"
fi

# The heading and table of one probe document (jq program; input is the document).
# shellcheck disable=SC2016  # $ names jq variables
table='
def n: if . == null then "-" else tostring end;
def gib: if . == null then "-" else (. / 1073741824 * 10 | round / 10 | tostring) end;
def pct: if . == null then "-" else (. * 10 | round / 10 | tostring) end;
def dur: if . == null then "-" else (. | floor) as $s |
    "\($s / 86400 | floor)d \($s % 86400 / 3600 | floor)h \($s % 3600 / 60 | floor)m" end;
"== \(.target) \(.type) at \(.timestamp)",
(if .error != null then "error\t\(.error)"
 elif .type == "server" then .metrics |
    "uptime\t\(.uptime_s | dur)",
    "load\t\(.load["1m"] | n) \(.load["5m"] | n) \(.load["15m"] | n)",
    "cpu\t\(.cpu.count | n) CPUs, \(.cpu.usage_pct | pct) % busy",
    "memory\t\(.memory.used_bytes | gib) of \(.memory.total_bytes | gib) GiB used (\(.memory.used_pct | pct) %)",
    "swap\t\(.memory.swap_used_bytes | gib) of \(.memory.swap_total_bytes | gib) GiB used",
    "disk \(.disk.path)\t\(.disk.used_bytes | gib) of \(.disk.total_bytes | gib) GiB used (\(.disk.used_pct | pct) %)",
    "processes\t\(.processes.running | n) running, \(.processes.total | n) total"
 elif .type == "gpu" then
    "GPU\tNAME\tTEMP_C\tUTIL_%\tVRAM_USED_MB\tVRAM_TOTAL_MB\tPOWER_W\tPROCESSES",
    (.metrics.gpus[] | "\(.index | n)\t\(.name | n)\t\(.temperature_c | n)\t" +
        "\(.utilization_pct | n)\t\(.vram_used_mb | n)\t\(.vram_total_mb | n)\t" +
        "\(.power_w | n)\t\(.processes | if . == null then "-" else length end)")
 elif .type == "containers" or .type == "container" then
    "NAME\tSTATE\tHEALTH\tCPU_%\tMEM_GIB\tMEM_%\tRESTARTS\tIMAGE",
    ((if .type == "container" then [.metrics] else .metrics.containers end)[] |
        "\(.name | n)\t\(.state | n)\t\(.health | n)\t\(.cpu_pct | pct)\t" +
        "\(.mem_used_bytes | gib)\t\(.mem_pct | pct)\t\(.restart_count | n)\t\(.image | n)")
 else tostring end)
'

first=1 failed=0
for f in "${files[@]}"; do
    cl_read "$dir/$f" || cl_die "$CL_ERR"
    # A document whose "error" is not null is a probe that failed: shown, and exit status 1.
    if cl_has jq; then
        jq -e '.error == null' >/dev/null 2>&1 <<<"$CL_OUT" || failed=1
    elif [[ $CL_OUT != '{"timestamp":'*',"error":null,'* ]]; then
        failed=1
    fi
    if ((json)); then
        printf '%s\n' "$CL_OUT"
        continue
    fi
    ((first)) || printf '\n'
    first=0
    doc=$CL_OUT
    out=$(jq -r "$table" <<<"$doc" 2>&1) || cl_die "$dir/$f: not a probe document ($out)"
    printf '%s\n' "${out%%$'\n'*}"
    [[ $out != *$'\n'* ]] || printf '%s\n' "${out#*$'\n'}" | cl_table
    jq -r '.alerts[]? | "ALERT \(.severity) \(.subject): \(.message)"' <<<"$doc"
done
exit $((failed ? 1 : 0))
