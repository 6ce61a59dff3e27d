/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* Temporary: every entry point, returning -ENOSYS until the session lands. */
#include "config.h"

#include <errno.h>

#include "common/macro.h"
#include "dax.h"

MK_EXPORT int dax_table_new(struct dax_table **out) { (void)out; return -ENOSYS; }
MK_EXPORT void dax_table_free(struct dax_table *t) { (void)t; }
MK_EXPORT int dax_table_add(struct dax_table *t, uint64_t nodeid, const char *path) { return -ENOSYS; }
MK_EXPORT int dax_table_remove(struct dax_table *t, uint64_t nodeid) { return -ENOSYS; }
MK_EXPORT int dax_table_open(void *table, uint64_t nodeid, uint64_t fh, uint32_t prot,
			     struct dax_file_id *id) { return -ENOSYS; }
MK_EXPORT int dax_file_id_of_path(const char *path, struct dax_file_id *id) { return -ENOSYS; }
MK_EXPORT int dax_session_new(const struct dax_config *cfg, const struct dax_backend *backend,
			      struct dax_session **out) { return -ENOSYS; }
MK_EXPORT void dax_session_free(struct dax_session *s) { (void)s; }
MK_EXPORT int dax_session_setup(struct dax_session *s, uint64_t nodeid, const struct dax_setup_req *req) { return -ENOSYS; }
MK_EXPORT int dax_session_setup_raw(struct dax_session *s, uint64_t nodeid, const void *payload, size_t len) { return -ENOSYS; }
MK_EXPORT int dax_session_remove(struct dax_session *s, const struct dax_range *entries, size_t count) { return -ENOSYS; }
MK_EXPORT int dax_session_remove_raw(struct dax_session *s, const void *payload, size_t len) { return -ENOSYS; }
MK_EXPORT int dax_session_reset(struct dax_session *s) { return -ENOSYS; }
MK_EXPORT int dax_session_fault(struct dax_session *s, uint64_t gpa) { return -ENOSYS; }
MK_EXPORT int dax_session_handle_mmio(struct dax_session *s, uint64_t phys_addr, uint8_t *data, uint32_t len, int is_write) { return -ENOSYS; }
MK_EXPORT int dax_session_handle_kvm_exit(struct dax_session *s, void *run) { return -ENOSYS; }
MK_EXPORT int dax_session_translate(struct dax_session *s, uint64_t gpa, void **hva, uint64_t *len) { return -ENOSYS; }
MK_EXPORT int dax_session_list(struct dax_session *s, struct dax_mapping **out, size_t *count) { return -ENOSYS; }
MK_EXPORT int dax_session_stats(struct dax_session *s, struct dax_stats *st) { return -ENOSYS; }
MK_EXPORT int dax_err_index(int err) { return DAX_ERR_OTHER; }
MK_EXPORT int dax_session_snapshot(struct dax_session *s, unsigned version, void **blob, size_t *len) { return -ENOSYS; }
MK_EXPORT int dax_session_restore(struct dax_session *s, const void *blob, size_t len) { return -ENOSYS; }
MK_EXPORT int dax_blob_parse(const void *blob, size_t len, struct dax_blob_header *hdr,
			     struct dax_mapping **entries, const char **why) { return -ENOSYS; }
MK_EXPORT int dax_blob_build(const struct dax_blob_header *hdr, const struct dax_mapping *entries,
			     size_t n, void **blob, size_t *len, const char **why) { return -ENOSYS; }
