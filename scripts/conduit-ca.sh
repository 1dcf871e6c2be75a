#!/usr/bin/env bash
# conduit-ca: the internal CA's certificate, and how to trust it (from ca/trust/).
set -euo pipefail
PROG=conduit-ca
USAGE="usage: $PROG export
       $PROG trust [--os debian|rhel|macos|windows|firefox|docker]

Reads ca/ of the conduitfs mount at \$CONDUIT_MOUNT (default /run/conduit).

  export         print the root certificate (ca/ca.crt, PEM), e.g.
                   $PROG export > conduit-ca.crt
  trust          print the instructions to install it as a trusted root, from ca/trust/:
                 a shell script for debian, rhel, macos, a PowerShell script for windows,
                 notes for firefox and docker. Without --os: this machine's (debian or
                 rhel from /etc/os-release, macos on Darwin). Save and run the script:
                   $PROG trust --os debian > trust.sh && sudo sh trust.sh

Exit status: 0 printed, 1 the mount could not be read, 2 bad arguments."
lib=$(dirname "$(readlink -f "$0")")
[[ -r $lib/conduit-lib.sh ]] || lib=$lib/../lib/conduitfs
# shellcheck source=scripts/conduit-lib.sh
. "$lib/conduit-lib.sh" || exit 1

cmd='' os=''
while (($#)); do
    case $1 in
    -h | --help) cl_usage ;;
    --os | --os=*) cl_opt os "$1" "${2-}" $# && shift ;;
    -*) cl_bad "unknown option $1" ;;
    *)
        [[ -z $cmd ]] || cl_bad "unexpected argument $1"
        cmd=$1
        ;;
    esac
    shift
done
case $cmd in
export) [[ -z $os ]] || cl_bad "--os goes with trust" ;;
trust) ;;
'') cl_bad "missing command: export or trust" ;;
*) cl_bad "unknown command $cmd (export or trust)" ;;
esac

# This machine's kind, for trust without --os.
detect_os() {
    local id=''
    if [[ $(uname -s) == Darwin ]]; then
        echo macos
        return
    fi
    if [[ -r /etc/os-release ]]; then
        # shellcheck disable=SC1091
        id=$(. /etc/os-release && echo " ${ID:-} ${ID_LIKE:-} ")
    fi
    case $id in
    *" debian "* | *" ubuntu "*) echo debian ;;
    *" rhel "* | *" fedora "* | *" centos "*) echo rhel ;;
    esac
}

if [[ $cmd == trust ]]; then
    if [[ -z $os ]]; then
        os=$(detect_os)
        [[ -n $os ]] || cl_bad "cannot tell this machine's OS; give --os"
    fi
    case $os in
    debian | rhel | macos) file=$os.sh ;;
    windows) file=windows.ps1 ;;
    firefox | docker) file=$os.md ;;
    *) cl_bad "--os: \"$os\" is not debian, rhel, macos, windows, firefox or docker" ;;
    esac
fi
cl_need_mount

if [[ $cmd == export ]]; then
    cl_read ca/ca.crt || cl_die "$CL_ERR"
else
    cl_read "ca/trust/$file" || cl_die "$CL_ERR"
fi
printf '%s\n' "$CL_OUT"
