/* signer.h: the signer process: the one process that holds the CA key (state/tls/ca.key) and the
 * audit signing key (state/key). The daemon forks it at start-up and asks it for signatures over
 * a socketpair; the daemon itself holds only the public halves. */
#ifndef CONDUIT_SIGNER_H
#define CONDUIT_SIGNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "audit/store.h"
#include "core/ca.h"

/* The protocol, one request and one response at a time on a SOCK_STREAM socketpair, integers in
 * the host's byte order (both ends are the same program on the same machine):
 *   request:  uint32 type, uint32 len, then len bytes
 *   response: int32 status (0 or -errno), uint32 len, then len bytes: the result, or a one-line
 *             reason when status < 0
 * len is at most SIGNER_MSG_MAX either way; a longer request is answered -EMSGSIZE and the
 * signer exits (the stream cannot be resynchronized). End of file ends the signer. */
#define SIGNER_MSG_MAX (64 * 1024)

enum signer_type {
    /* (no payload) -> the 64 hex chars of the audit public key. Loads state/key, creating it
     * when missing, with the checks of audit_key_load. */
    SIGNER_AUDIT_KEY = 1,
    /* 64 lowercase hex chars (a capsule hash) -> the 64-byte Ed25519 signature over them.
     * Anything else is refused (-EPERM): the audit key signs capsule hashes only. */
    SIGNER_AUDIT_SIGN = 2,
    /* uint8 key type (enum ca_key_type, | 0x80: only an existing CA) + host name (no NUL) ->
     * uint8 created, uint16 notice length, the notice (ca_open's one-line message, may be
     * empty), the root's DER. Opens state/tls/ca.key and ca.crt as ca_open does, generating a
     * new root when both are missing (unless 0x80: -ENOENT); once open, later requests return
     * the same root. */
    SIGNER_CA_OPEN = 3,
    /* the DER of a leaf request (see ca_sign_fn) -> the DER signed by the CA key, when the
     * request meets the policy of ca_sign_cert (-EINVAL, -EPERM or -EKEYEXPIRED otherwise). */
    SIGNER_CA_SIGN = 4,
};

/* argv[1] of the signer process that signer_start executes: "conduitfs --internal-signer DIR",
 * with the socket as fd 3. */
#define SIGNER_ARG "--internal-signer"

/* Start the signer for state_dir (an absolute path): fork, keep only the socket (as fd 3; 0-2
 * on /dev/null), and exec exe (the daemon's own binary, /proc/self/exe; its main hands argv[2]
 * to signer_exec_main when argv[1] is SIGNER_ARG), so the signer starts from a fresh address
 * space; exe NULL serves in the forked child itself (single-threaded callers only: the unit
 * tests). Call before any thread exists.
 * The signer loads no key before it is asked, makes itself non-dumpable, ignores the terminal's
 * and the service manager's signals, keeps its keys in OpenSSL's locked secure heap, and exits
 * when its socket reaches end of file, that is when every process that holds the other end (the
 * daemon, and its fuse_daemonize child) has exited, kill -9 included. The daemon's end is
 * close-on-exec. 0 or -errno with a one-line reason in err. */
int signer_start(const char *state_dir, const char *exe, char *err, size_t errlen);

/* The signer's main when executed by signer_start: serve fd 3 for state_dir. Returns the exit
 * status (2 when fd 3 is no socket: it was not started by the daemon). */
int signer_exec_main(const char *state_dir);

/* Whether this process has a signer (started, and not stopped). */
bool signer_running(void);

/* The signer's pid, or 0 when there is none. */
pid_t signer_pid(void);

/* Close the daemon's end: the signer exits. The process that forked it also reaps it (waiting
 * a moment, then SIGKILL). Idempotent. */
void signer_stop(void);

/* The hooks that route the audit trail's key through the signer (for audit_set_signer). */
const struct audit_signer *signer_audit(void);

/* ca_open through the signer: the signer opens or creates the CA of state_dir (which must be the
 * one it was started for) exactly as ca_open would, and this process gets a CA that holds only
 * the certificate and signs through the signer (ca_open_remote). Same results as ca_open. */
int signer_ca_open(const char *state_dir, enum ca_key_type want, const char *hostname,
                   struct ca **out, bool *created, char *err, size_t errlen);

/* One request to the running signer: type, len bytes of req; *resp (malloc'd) gets the result.
 * Requests are serialized (one socket, one mutex), and this is the one place the signer's
 * answers become -errno: its own status as it sent it, or, when the signer died, did not answer
 * within 30 s or broke the protocol, a new signer is started once per signer_start (forked and
 * executed like the first: the daemon has threads by then), made to load the same audit key and
 * open the same CA (the same public key and root certificate, or it is not used), and asked
 * again. When that fails too, or there is no signer: -EIO with a reason in err, logged once,
 * and every later call fails the same way. 0 or -errno with a one-line reason in err. */
int signer_call(uint32_t type, const void *req, size_t len, unsigned char **resp,
                size_t *resplen, char *err, size_t errlen);

/* Serve requests on fd for state_dir until end of file, with no hardening of the process.
 * Returns the exit status (0 at end of file, 1 after a broken request). The signer runs it; it
 * is exported for the unit tests, which run it on a socketpair of their own. */
int signer_serve(int fd, const char *state_dir);

#endif
