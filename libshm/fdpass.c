/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Passing pool fds over a unix socket (SCM_RIGHTS), in one message. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>

#include "common/macro.h"
#include "common/sys.h"
#include "shm.h"

#define MAX_FDS 253     /* SCM_MAX_FD */

MK_EXPORT int shma_send_fds(int sock, const int *fds, size_t n, const void *data, size_t len)
{
	char cbuf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
	char dummy = 0;
	struct iovec iov = { .iov_base = len ? (void *)data : &dummy, .iov_len = len ? len : 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cm;
	ssize_t r;

	if (sock < 0 || !fds || !n || n > MAX_FDS || (len && !data))
		return -EINVAL;
	memset(cbuf, 0, sizeof(cbuf));
	msg.msg_control = cbuf;
	msg.msg_controllen = CMSG_SPACE(sizeof(int) * n);
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int) * n);
	memcpy(CMSG_DATA(cm), fds, sizeof(int) * n);
	r = mk_sendmsg(sock, &msg, MSG_NOSIGNAL);
	if (r < 0)
		return (int)r;
	return (size_t)r == iov.iov_len ? 0 : -EMSGSIZE;
}

MK_EXPORT int shma_recv_fds(int sock, int *fds, size_t cap, void *data, size_t len,
			    size_t *data_len)
{
	char cbuf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
	char dummy;
	struct iovec iov = { .iov_base = len ? data : &dummy, .iov_len = len ? len : 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;
	size_t got = 0;
	ssize_t r;

	if (sock < 0 || (!fds && cap) || (len && !data))
		return -EINVAL;
	r = mk_recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
	if (r < 0)
		return (int)r;
	if (r == 0)
		return -ECONNRESET;
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		size_t n;
		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
			continue;
		n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
			if (got < cap)
				fds[got++] = fd;
			else
				mk_close(fd);
		}
		if (n > cap)
			msg.msg_flags |= MSG_CTRUNC;
	}
	if (msg.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) {
		for (size_t i = 0; i < got; i++)
			mk_close(fds[i]);
		return -EMSGSIZE;
	}
	if (data_len)
		*data_len = len ? (size_t)r : 0;
	return (int)got;
}
