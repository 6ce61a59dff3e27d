/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "config.h"

#include <errno.h>
#include <glib.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tools/microvm-run.h"

bool mk_in_microvm(void)
{
	const char *v = getenv(MK_MICROVM_ENV);

	return v && *v;
}

/* $MEMKIT_MICROVM, else the runner installed beside the tools (make install
 * puts scripts/memkit-microvm there). Never the source tree: the tests point
 * $MEMKIT_MICROVM at its copy (AM_TESTS_ENVIRONMENT). */
static const char *runner_path(void)
{
	const char *env = getenv("MEMKIT_MICROVM");

	if (env && *env)
		return env;
	return MK_PKGLIBEXECDIR "/memkit-microvm";
}

/* The release the runner would boot for kernel, or NULL. */
static char *runner_release(const char *runner, const char *kernel)
{
	const char *argv[] = { runner, "--release", kernel ? "--kernel" : NULL, kernel, NULL };
	char *out = NULL;
	int status;

	if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL,
			  &out, NULL, &status, NULL))
		return NULL;
	if (!g_spawn_check_wait_status(status, NULL)) {
		g_free(out);
		return NULL;
	}
	return g_strstrip(out);
}

int mk_microvm_run(const char *prog, const char *kernel, const char *const *opts, char **args,
		   const char *why, const char *doing)
{
	const char *runner = runner_path();
	g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
	g_autofree char *release = runner_release(runner, kernel);
	char exe[PATH_MAX];
	const char *ld;
	int status;
	pid_t pid;

	if (!realpath("/proc/self/exe", exe)) {
		fprintf(stderr, "%s: /proc/self/exe: %s\n", prog, strerror(errno));
		return 1;
	}
	if (why) {
		/* One whole line, after whatever stdout holds: the microVM's output follows. */
		g_autofree char *note = g_strdup_printf("%s: %s; %s in a microVM on kernel %s\n", prog, why,
							doing, release ? release : kernel ? kernel : "(default)");
		fflush(stdout);
		fputs(note, stderr);
	}
	g_ptr_array_add(argv, g_strdup(runner));
	if (kernel) {
		g_ptr_array_add(argv, g_strdup("--kernel"));
		g_ptr_array_add(argv, g_strdup(kernel));
	}
	for (size_t i = 0; opts && opts[i]; i++)
		g_ptr_array_add(argv, g_strdup(opts[i]));
	/* The program and its libraries where they live under a tmpfs of the guest. */
	g_ptr_array_add(argv, g_strdup("--ro"));
	g_ptr_array_add(argv, g_path_get_dirname(exe));
	ld = getenv("LD_LIBRARY_PATH");
	if (ld) {
		g_auto(GStrv) dirs = g_strsplit(ld, ":", -1);
		for (char **d = dirs; *d; d++) {
			if (**d && g_file_test(*d, G_FILE_TEST_IS_DIR)) {
				g_ptr_array_add(argv, g_strdup("--ro"));
				g_ptr_array_add(argv, g_strdup(*d));
			}
		}
	}
	g_ptr_array_add(argv, g_strdup("--"));
	g_ptr_array_add(argv, g_strdup(exe));
	for (char **a = args; *a; a++)
		g_ptr_array_add(argv, g_strdup(*a));
	g_ptr_array_add(argv, NULL);

	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "%s: fork: %s\n", prog, strerror(errno));
		return 1;
	}
	if (pid == 0) {
		setenv(MK_MICROVM_ENV, "1", 1);
		/* An override of the host's KVM device means nothing in the guest. */
		unsetenv("MEMKIT_KVM_DEV");
		execv(runner, (char **)argv->pdata);
		fprintf(stderr, "%s: %s: %s\n", prog, runner, strerror(errno));
		_exit(77);
	}
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "%s: waitpid: %s\n", prog, strerror(errno));
			return 1;
		}
	}
	if (!WIFEXITED(status)) {
		fprintf(stderr, "%s: the microVM runner died of signal %d\n", prog, WTERMSIG(status));
		return 1;
	}
	/* Only the statuses every memkit tool documents go through; the runner's
	 * own trouble (memkit-microvm(1), EXIT STATUS) is a failed run. */
	switch (WEXITSTATUS(status)) {
	case 0:
	case 1:
	case 2:
	case 77:
		return WEXITSTATUS(status);
	case 124:
		fprintf(stderr, "%s: the microVM timed out\n", prog);
		return 1;
	case 125:
		fprintf(stderr, "%s: the microVM did not boot or could not run %s\n", prog, prog);
		return 1;
	default:
		fprintf(stderr, "%s: the microVM runner exited %d (see memkit-microvm(1))\n", prog,
			WEXITSTATUS(status));
		return 1;
	}
}
