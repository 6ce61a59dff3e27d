/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Writing a tool's output file (daxsnap -o FILE). The rules, which
 * daxsnap(1) documents under OUTPUT FILES:
 *
 *  - NULL or "-": standard output.
 *  - a new path or a regular file: a temporary file in the same
 *    directory gets the data, the old file's mode and owner (a new
 *    file: 0666 less the umask), fsync, then rename() over the path and
 *    fsync of the directory. A reader sees the old or the new content,
 *    never a mix; a failure leaves the old file as it was.
 *  - a symbolic link: followed (to the end of the chain); what it
 *    points at is handled by these rules and the link itself stays.
 *    A link to nothing is refused.
 *  - a character or block device or a FIFO: opened and written in
 *    place (e.g. /dev/null, a pipe to another program).
 *  - a directory or a socket (anything else): refused.
 */
#pragma once

#include <stddef.h>

/*
 * Write data to path by those rules. Returns 0, or -errno with *what set
 * to a static reason when the failure is a rule rather than a system
 * error (then the errno is EINVAL, EISDIR, ...).
 */
int mk_write_output(const char *path, const void *data, size_t len, const char **what);
