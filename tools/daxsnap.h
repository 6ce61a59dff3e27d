/* SPDX-License-Identifier: GPL-2.0-or-later */
/* daxsnap internals shared between its source files. */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A parsed JSON value (daxsnap-json.c). */
enum jv_type { JV_NULL, JV_BOOL, JV_INT, JV_STRING, JV_ARRAY, JV_OBJECT };

struct jv {
	enum jv_type type;
	bool neg;               /* JV_INT: negative (value is -u) */
	uint64_t u;             /* JV_INT magnitude, JV_BOOL 0/1 */
	char *str;              /* JV_STRING */
	size_t n;               /* JV_ARRAY / JV_OBJECT: number of items */
	struct jv **items;
	char **keys;            /* JV_OBJECT */
};

/* Parse text; on error returns NULL and *err (g_free) says what and where. */
struct jv *jv_parse(const char *text, size_t len, char **err);
void jv_free(struct jv *v);
/* Member of an object, or NULL. */
const struct jv *jv_get(const struct jv *obj, const char *key);

/*
 * The 32-bit flat guest code daxsnap replay runs (daxsnap-guest.c): for
 * each of the n slot addresses in a u32 table at guest address table,
 * load the slot's first dword (the first touch) and the next one (which
 * must not exit), then hlt. Writes at most DAXSNAP_TOUCH_CODE_MAX bytes
 * to c; returns the length.
 */
#define DAXSNAP_TOUCH_CODE_MAX 64
size_t daxsnap_touch_code(uint8_t *c, uint32_t table, uint32_t n);

/*
 * daxsnap replay's run loop (daxsnap-guest.c). Call daxsnap_replay_watch()
 * before dax_session_restore(): slots that cannot be bound are printed
 * ("0xMOFFSET: reason") and counted in failed, guest touches outside
 * every slot in outside. daxsnap_replay_run() runs the vCPU to HLT:
 * 0, -errno of KVM_RUN, or -EPROTO for an exit nobody handles.
 */
struct dax_session;
struct kvm_run;
struct daxsnap_replay {
	unsigned exits;         /* exits libdax handled (none with the window mapper) */
	unsigned failed;
	unsigned outside;
};
void daxsnap_replay_watch(struct dax_session *s, struct daxsnap_replay *rp);
int daxsnap_replay_run(struct dax_session *s, int vcpu, struct kvm_run *run,
		       struct daxsnap_replay *rp);
