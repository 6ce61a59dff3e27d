/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The guest program daxsnap replay (and bench-dax) runs to touch DAX slots. */
#include "config.h"

#include <string.h>

#include "daxsnap.h"

size_t daxsnap_touch_code(uint8_t *c, uint32_t table, uint32_t n)
{
	static const uint8_t tmpl[] = {
		0xbe, 0, 0, 0, 0,       /* mov esi, table */
		0xb9, 0, 0, 0, 0,       /* mov ecx, n */
		0x85, 0xc9,             /* test ecx, ecx */
		0x74, 0x0d,             /* jz done */
		0x8b, 0x06,             /* loop: mov eax, [esi] */
		0x8b, 0x10,             /* mov edx, [eax]      first touch */
		0x8b, 0x50, 0x04,       /* mov edx, [eax + 4]  must be direct */
		0x83, 0xc6, 0x04,       /* add esi, 4 */
		0x49,                   /* dec ecx */
		0x75, 0xf3,             /* jnz loop */
		0xf4,                   /* done: hlt */
	};

	memcpy(c, tmpl, sizeof(tmpl));
	memcpy(c + 1, &table, 4);
	memcpy(c + 6, &n, 4);
	return sizeof(tmpl);
}
