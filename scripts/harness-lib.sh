# harness-lib.sh: for the scripts that start conduitfs and its peers themselves,
# scripts/bench.sh and tests/integration/lib.sh: wait for a mount to come up, take one down,
# and configure a throwaway sshd on loopback (bash; sourced, not run; not installed).
# shellcheck shell=bash

# cfs_wait_mounted MOUNTPOINT PID TRIES: wait, up to TRIES x 50 ms, until MOUNTPOINT is mounted.
# Status 0 when it is, 1 when the daemon PID exited first or the time ran out.
cfs_wait_mounted() {
    local _
    for _ in $(seq "$3"); do
        mountpoint -q "$1" && return 0
        kill -0 "$2" 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}

# cfs_unmount_at MOUNTPOINT PID TRIES: unmount MOUNTPOINT when it is mounted, trying TRIES times
# 0.5 s apart (a busy mount) before a lazy unmount; then reap the daemon PID (may be empty).
cfs_unmount_at() {
    local i
    if mountpoint -q "$1" 2>/dev/null; then
        for ((i = 1; i <= $3; i++)); do
            fusermount3 -u "$1" 2>/dev/null && break
            if ((i == $3)); then fusermount3 -uz "$1" 2>/dev/null || true; break; fi
            sleep 0.5
        done
    fi
    if [[ -n "$2" ]]; then wait "$2" 2>/dev/null || true; fi
}

# cfs_sshd_config DIR PORT SETENV: in DIR (made, mode 700), throwaway ed25519 host and client
# keys (host_key, client_key), the client's key as authorized_keys, and sshd_config for an
# sshd on 127.0.0.1:PORT that takes only that key, keeps its pid in DIR/sshd.pid and sets the
# environment SETENV ("NAME=VALUE ...") for the commands it runs. Status 1 when a step failed.
cfs_sshd_config() {
    mkdir -p "$1" && chmod 700 "$1" || return 1
    ssh-keygen -q -t ed25519 -N '' -C host -f "$1/host_key" &&
        ssh-keygen -q -t ed25519 -N '' -C client -f "$1/client_key" &&
        cp "$1/client_key.pub" "$1/authorized_keys" || return 1
    cat > "$1/sshd_config" <<EOF || return 1
Port $2
ListenAddress 127.0.0.1
HostKey $1/host_key
AuthorizedKeysFile $1/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
LogLevel INFO
PidFile $1/sshd.pid
SetEnv $3
EOF
    mkdir -p /run/sshd
}
