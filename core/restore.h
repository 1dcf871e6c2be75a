/* restore.h: how services/ meets the tools that copy a whole service in (cp -r of a backup) and
 * the tools that replace a file by removing it and creating it again (mv from another
 * filesystem, install). Both need, for a few seconds, a per-process view of a service's
 * attribute files, and a cp -r restore needs its files committed together:
 *
 * - The window. For RST_SECONDS after the process that made a service directory (rst_begin),
 *   or that removed an attribute (rst_hide), last touched it, an attribute it has not created
 *   since looks absent to that process alone (rst_hidden), so that its exclusive create reaches
 *   the filesystem, which opens the attribute (rst_created). Other processes see every file.
 * - The collection. In a window begun by mkdir, what the process writes into an attribute it
 *   created with O_EXCL (cp does) is collected instead of committed, and every collected value
 *   is committed as one change (reg_apply) at the close of the file that completes upstream,
 *   domain and mode (rst_flush), so a restore never passes through a state its backup does not
 *   have (a service at its default domain, or in proxy mode, with its upstream). A backup that
 *   lacks one of the three is committed RST_SECONDS after its last write, by a thread of this
 *   module; a refusal then is logged and audited (as every refusal is), but no close reports it.
 *
 * The window is kept for RST_SLOTS (service, process) pairs at once; the oldest is reused. */
#ifndef CONDUIT_RESTORE_H
#define CONDUIT_RESTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/registry.h"

#define RST_SLOTS 16
#define RST_SECONDS 2

/* Process pid made service svc (mkdir): open its window, collecting. who names the caller. */
void rst_begin(const char *svc, pid_t pid, const char *who);

/* Process pid removed attribute attr of svc: open (or extend) its window, hiding attr from it. */
void rst_hide(const char *svc, int attr, pid_t pid);

/* Whether attr of svc looks absent to pid now. */
bool rst_hidden(const char *svc, int attr, pid_t pid);

/* pid created attr of svc (open with O_CREAT; excl: with O_EXCL): it is visible to pid again,
 * and, in a collecting window and with excl, what pid writes to it is collected. */
void rst_created(const char *svc, int attr, pid_t pid, bool excl);

/* A write by pid of buf[0..len) at offset 0 to attr of svc. 1 when it was collected (the
 * caller answers len), 0 when it was not (the caller sets it with reg_set), -EFBIG (over
 * VAL_VALUE_MAX bytes, one trailing newline not counted) or -EINVAL (a NUL byte, or an offset
 * other than 0) for a value that would be collected. */
int rst_write(const char *svc, int attr, pid_t pid, const char *buf, size_t len, off_t off);

/* pid closes a file of svc: when pid's collected values hold upstream, domain and mode, commit
 * them all now as one change. 0 (also when nothing was due) or what reg_apply returns. */
int rst_flush(const char *svc, pid_t pid);

/* svc was deregistered: forget its windows and what they collected. */
void rst_forget(const char *svc);

/* Commit every collection still open (unmount, before the registry closes) and stop the
 * thread. */
void rst_finish(void);

#endif
