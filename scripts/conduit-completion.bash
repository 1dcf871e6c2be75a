# conduit-completion.bash: bash completion for the conduit-* commands (installed names and the
# scripts/*.sh names): their options, service names from $CONDUIT_MOUNT/services, monitor
# targets from $CONDUIT_MOUNT/monitor. Source it, or install it where bash-completion looks
# (cmake --install puts a copy per command in share/bash-completion/completions/).
# shellcheck shell=bash

# Print the entries of directory $1 that are directories themselves.
_conduit_dirs() {
    local d
    for d in "$1"/*; do
        [[ -d $d ]] && printf '%s\n' "${d##*/}"
    done 2>/dev/null
}

_conduit() {
    local cur prev cmd words opts mnt=${CONDUIT_MOUNT:-/run/conduit}
    COMPREPLY=()
    cur=${COMP_WORDS[COMP_CWORD]}
    prev=${COMP_WORDS[COMP_CWORD - 1]}
    cmd=${COMP_WORDS[0]##*/}
    cmd=${cmd%.sh}

    # --opt=VALUE: complete VALUE for --opt. bash splits the word at "=" (COMP_WORDBREAKS)
    # into "--opt" "=" "VALUE"; without that split it arrives whole.
    if [[ $cur == = ]]; then
        cur=''
    elif [[ $prev == = ]] && ((COMP_CWORD >= 2)); then
        prev=${COMP_WORDS[COMP_CWORD - 2]}
    elif [[ $cur == --*=* ]]; then
        prev=${cur%%=*}
        cur=${cur#*=}
    fi

    words=''
    case $prev in
    --name | --rotate | --inspect | --resolve)
        [[ $cmd == conduit-register && $prev == --name ]] && return 0   # a new name
        words=$(_conduit_dirs "$mnt/services")
        ;;
    --target) words=$(_conduit_dirs "$mnt/monitor") ;;
    --mode) words='proxy dns' ;;
    --os) words='debian rhel macos windows firefox docker' ;;
    --action)
        words='conduit_setup service_register service_update service_deregister tls_issue
               tls_archive tls_renew cert_rotate proxy_reload supervisor_restart config_reload
               health_check_fail health_check_recover monitor_alert monitor_alert_cleared
               monitor_target_add monitor_target_update monitor_target_remove
               monitor_host_key_added monitor_host_key_mismatch'
        ;;
    --state | --mount)
        mapfile -t COMPREPLY < <(compgen -d -- "$cur")
        return 0
        ;;
    --upstream | --domain | --health | --since | --pubkey | --dns-listen | --https-listen)
        return 0
        ;;
    esac
    if [[ -n $words ]]; then
        mapfile -t COMPREPLY < <(compgen -W "$words" -- "$cur")
        return 0
    fi

    case $cmd in
    conduit-register) opts='--name --upstream --domain --health --mode --help' ;;
    conduit-deregister) opts='--name --help' ;;
    conduit-status) opts='--json --help' ;;
    conduit-monitor) opts='--target --server --gpu --containers --json --help' ;;
    conduit-certs) opts='--rotate --inspect --help' ;;
    conduit-ca)
        if ((COMP_CWORD == 1)); then
            opts='export trust --help'
        elif [[ ${COMP_WORDS[1]} == trust ]]; then
            opts='--os'
        fi
        ;;
    conduit-dns) opts='--resolve --help' ;;
    conduit-logs) opts='--follow --action --since --help' ;;
    conduit-verify) opts='--state --pubkey --help' ;;
    conduit-setup) opts='--state --dns-listen --https-listen --mount --help' ;;
    esac
    mapfile -t COMPREPLY < <(compgen -W "${opts:-}" -- "$cur")
}

complete -F _conduit \
    conduit-register conduit-deregister conduit-status conduit-monitor conduit-certs \
    conduit-ca conduit-dns conduit-logs conduit-verify conduit-setup \
    conduit-register.sh conduit-deregister.sh conduit-status.sh conduit-monitor.sh \
    conduit-certs.sh conduit-ca.sh conduit-dns.sh conduit-logs.sh conduit-verify.sh \
    conduit-setup.sh
