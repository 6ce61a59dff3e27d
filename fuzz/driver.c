/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Standalone driver for libFuzzer targets when not built with
 * --enable-fuzzing: runs LLVMFuzzerTestOneInput over every file in the
 * target's corpus directory, then over generated inputs (random bytes and
 * bit-flipped corpus entries, fixed seed), and reports one TAP result.
 * A crash or sanitizer report fails the test.
 */
#ifndef MK_LIBFUZZER
#include "config.h"

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Targets may provide seeds of their own (well-formed inputs built in code). */
__attribute__((weak)) size_t mk_fuzz_seed(unsigned i, uint8_t *buf, size_t cap);
size_t mk_fuzz_seed(unsigned i, uint8_t *buf, size_t cap)
{
	(void)i; (void)buf; (void)cap;
	return 0;
}

/* ...and a summary for the TAP line (e.g. how many inputs got past checksums). */
__attribute__((weak)) const char *mk_fuzz_summary(void);
const char *mk_fuzz_summary(void)
{
	return NULL;
}

/*
 * ...and whether the generated inputs reached what the target is for (e.g.
 * a snapshot that loads): a harness whose structured inputs stopped getting
 * past the checksums fails here instead of passing while testing nothing.
 */
__attribute__((weak)) int mk_fuzz_reached(void);
int mk_fuzz_reached(void)
{
	return 1;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

#define MAXLEN 65536

static unsigned long n_run;

static void run(const uint8_t *d, size_t n)
{
	/* Copy so the target sees exactly n bytes (ASan catches over-reads). */
	uint8_t *copy = malloc(n ? n : 1);
	memcpy(copy, d, n);
	LLVMFuzzerTestOneInput(copy, n);
	free(copy);
	n_run++;
}

static void mutate_and_run(const uint8_t *d, size_t n, unsigned rounds)
{
	uint8_t *buf = malloc(MAXLEN);

	for (unsigned r = 0; r < rounds; r++) {
		size_t len = n;
		memcpy(buf, d, n);
		switch (next() % 4) {
		case 0: /* flip a few bits */
			for (unsigned k = 0; len && k < 1 + next() % 4; k++)
				buf[next() % len] ^= (uint8_t)(1u << (next() % 8));
			break;
		case 1: /* truncate */
			len = n ? next() % n : 0;
			break;
		case 2: /* overwrite a word with an interesting value */
			if (len >= 8) {
				static const uint64_t vals[] = { 0, 1, UINT32_MAX, UINT64_MAX,
					(uint64_t)INT64_MAX, 0x1000, 0x200000, 0x80000000ull };
				uint64_t v = vals[next() % 8];
				memcpy(buf + next() % (len - 7), &v, 8);
			}
			break;
		case 3: /* extend with random bytes */
			while (len < MAXLEN && len < n + 64)
				buf[len++] = (uint8_t)next();
			break;
		}
		run(buf, len);
	}
	free(buf);
}

int main(int argc, char **argv)
{
	const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
	const char *lt = "lt-";
	char dir[4096];
	uint8_t *buf = malloc(MAXLEN);
	unsigned long files = 0;
	DIR *d;

	if (!strncmp(name, lt, strlen(lt)))
		name += strlen(lt);
	/* Explicit files on the command line (other than --tap): reproduce those only. */
	for (int i = 1; i < argc; i++) {
		FILE *f;
		size_t n;
		if (!strcmp(argv[i], "--tap"))
			continue;
		f = fopen(argv[i], "rb");
		if (!f) {
			perror(argv[i]);
			free(buf);
			return 1;
		}
		n = fread(buf, 1, MAXLEN, f);
		fclose(f);
		run(buf, n);
		files++;
	}
	if (files) {
		free(buf);
		printf("1..1\nok 1 - %s: %lu inputs%s%s\n", name, files, mk_fuzz_summary() ? "; " : "",
		       mk_fuzz_summary() ? mk_fuzz_summary() : "");
		return 0;
	}

	/* Well-formed seeds from the target, each mutated many times. */
	for (unsigned i = 0;; i++) {
		size_t n = mk_fuzz_seed(i, buf, MAXLEN);
		if (!n)
			break;
		run(buf, n);
		mutate_and_run(buf, n, 2000);
	}
	/* Corpus files. */
	snprintf(dir, sizeof(dir), "%s/fuzz/corpus/%s", MK_SRCDIR, name);
	d = opendir(dir);
	if (d) {
		struct dirent *e;
		while ((e = readdir(d))) {
			char path[8192];
			FILE *f;
			size_t n;
			if (e->d_name[0] == '.')
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			f = fopen(path, "rb");
			if (!f)
				continue;
			n = fread(buf, 1, MAXLEN, f);
			fclose(f);
			run(buf, n);
			mutate_and_run(buf, n, 500);
			files++;
		}
		closedir(d);
	}
	/* Pure random inputs of assorted lengths. */
	for (unsigned i = 0; i < 20000; i++) {
		size_t len = next() % (i % 10 == 0 ? 4096 : 128);
		for (size_t k = 0; k < len; k++)
			buf[k] = (uint8_t)next();
		run(buf, len);
	}
	free(buf);
	printf("1..1\n%s 1 - %s: %lu inputs (%lu corpus files)%s%s\n",
	       mk_fuzz_reached() ? "ok" : "not ok", name, n_run, files,
	       mk_fuzz_summary() ? "; " : "", mk_fuzz_summary() ? mk_fuzz_summary() : "");
	return mk_fuzz_reached() ? 0 : 1;
}
#endif
