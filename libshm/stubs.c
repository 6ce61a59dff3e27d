/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Temporary entry points while the allocator lands (return -ENOSYS). */
#include "config.h"

#include <errno.h>

#include "common/macro.h"
#include "shm.h"

MK_EXPORT int shma_pool_create(const struct shma_pool_opts *opts, struct shma_pool **out) { return -ENOSYS; }
MK_EXPORT int shma_pool_attach(const char *dir, const char *name, unsigned flags, struct shma_pool **out) { return -ENOSYS; }
MK_EXPORT int shma_pool_attach_fds(const int *fds, size_t n, unsigned flags, struct shma_pool **out) { return -ENOSYS; }
MK_EXPORT int shma_pool_import_fd(struct shma_pool *pool, int fd) { return -ENOSYS; }
MK_EXPORT void shma_pool_free(struct shma_pool *pool) { }
MK_EXPORT int shma_pool_unlink(struct shma_pool *pool) { return -ENOSYS; }
MK_EXPORT int shma_pool_remove(const char *dir, const char *name) { return -ENOSYS; }
MK_EXPORT const char *shma_pool_name(const struct shma_pool *pool) { return ""; }
MK_EXPORT int shma_pool_fds(struct shma_pool *pool, int *fds, size_t cap) { return -ENOSYS; }
MK_EXPORT int shma_send_fds(int sock, const int *fds, size_t n, const void *data, size_t len) { return -ENOSYS; }
MK_EXPORT int shma_recv_fds(int sock, int *fds, size_t cap, void *data, size_t len, size_t *data_len) { return -ENOSYS; }
MK_EXPORT int shma_alloc(struct shma_pool *pool, size_t len, size_t align, struct shma_handle *handle, void **ptr) { return -ENOSYS; }
MK_EXPORT int shma_free(struct shma_pool *pool, void *ptr) { return -ENOSYS; }
MK_EXPORT int shma_free_handle(struct shma_pool *pool, const struct shma_handle *handle) { return -ENOSYS; }
MK_EXPORT int shma_handle_of(struct shma_pool *pool, const void *ptr, struct shma_handle *handle) { return -ENOSYS; }
MK_EXPORT int shma_resolve(struct shma_pool *pool, const struct shma_handle *handle, void **ptr) { return -ENOSYS; }
MK_EXPORT int shma_block_chunk(struct shma_pool *pool, const struct shma_handle *handle, struct shma_chunk_info *info) { return -ENOSYS; }
MK_EXPORT int shma_pool_stat(struct shma_pool *pool, struct shma_pool_stat *st) { return -ENOSYS; }
MK_EXPORT int shma_pool_chunk_stat(struct shma_pool *pool, uint32_t index, struct shma_chunk_stat *st) { return -ENOSYS; }
MK_EXPORT int shma_pool_reclaim(struct shma_pool *pool) { return -ENOSYS; }
MK_EXPORT int shma_blob_publish(const char *name, const void *data, size_t len) { return -ENOSYS; }
MK_EXPORT int shma_blob_check(int fd, uint64_t *size) { return -ENOSYS; }
MK_EXPORT int shma_blob_map(int fd, const void **addr, size_t *len) { return -ENOSYS; }
MK_EXPORT int shma_blob_unmap(const void *addr, size_t len) { return -ENOSYS; }
