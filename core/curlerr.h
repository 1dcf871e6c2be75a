/* curlerr.h: the one map from curl's error codes to errno, shared by every curl user (the
 * gateway's Caddy admin requests in core/, the Docker probes in monitor/). Each caller keeps
 * what is its own: HTTP statuses, message text, and how coarse an errno its interface allows. */
#ifndef CONDUIT_CURLERR_H
#define CONDUIT_CURLERR_H

/* code is a CURLcode, or the curl tool's exit status (the same numbers). Returns 0 for 0
 * (CURLE_OK), else the negative errno:
 *   CURLE_COULDNT_CONNECT                          -ECONNREFUSED
 *   CURLE_OPERATION_TIMEDOUT                       -ETIMEDOUT
 *   CURLE_WRITE_ERROR, CURLE_FILESIZE_EXCEEDED     -EFBIG (a write callback refused more data)
 *   CURLE_OUT_OF_MEMORY                            -ENOMEM
 *   CURLE_GOT_NOTHING, CURLE_RECV_ERROR,
 *   CURLE_SEND_ERROR                               -ECONNRESET
 *   CURLE_WEIRD_SERVER_REPLY,
 *   CURLE_UNSUPPORTED_PROTOCOL                     -EPROTO
 *   any other code (CURLE_FAILED_INIT included)    -EIO */
int curlerr_errno(int code);

#endif
