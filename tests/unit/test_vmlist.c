/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_vmlist.c VIVARIUM MKTINYGUEST - the live model of the VM
 * library (app/vmlist.c) with several VMs, changed by the real CLI beside
 * it: creates, edits, a broken vm.conf and deletes (no /dev/kvm needed);
 * then, with the tiny guest on /dev/kvm, starts, pauses, resumes (through
 * the model), stops and a kill -9, and a model made while VMs run.  Each
 * change must reach the model within a second with the model's main loop
 * only waiting (no polling in the model).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "check.h"
#include "vmlist.h"

static const char *viv;
static char *kernel;
static unsigned nadded, nremoved, nchanged;

static void on_change(struct vm_list *l, const struct vm_item *it,
		      enum vm_list_change what, void *opaque)
{
	if (what == VM_LIST_ADDED)
		nadded++;
	else if (what == VM_LIST_REMOVED)
		nremoved++;
	else
		nchanged++;
}

/* Run `vivarium ARGS...`; its exit status. */
static int v(const char *fmt, ...)
{
	va_list ap;
	g_autofree char *args = NULL, *cmd = NULL, *out = NULL, *errs = NULL;
	int status = -1;

	va_start(ap, fmt);
	args = g_strdup_vprintf(fmt, ap);
	va_end(ap);
	cmd = g_strdup_printf("%s %s", viv, args);
	if (!g_spawn_command_line_sync(cmd, &out, &errs, &status, NULL))
		return -1;
	if (status)
		fprintf(stderr, "  %s: %s", cmd, errs);
	return g_spawn_check_wait_status(status, NULL) ? 0 : 1;
}

typedef bool (*cond_fn)(struct vm_list *l, const char *name, const void *arg);

/* Iterate the default main context until @cond holds, at most 1 s (the
 * bound the manager promises); the time it took in ms, or -1. */
static long until(struct vm_list *l, cond_fn cond, const char *name, const void *arg)
{
	gint64 t0 = g_get_monotonic_time(), deadline = t0 + G_USEC_PER_SEC;

	while (!cond(l, name, arg)) {
		if (g_get_monotonic_time() >= deadline)
			return -1;
		/* blocks in poll() until a source is ready (the tick's
		 * timer bounds the wait for the deadline check) */
		g_main_context_iteration(NULL, TRUE);
	}
	return (long)((g_get_monotonic_time() - t0) / 1000);
}

static gboolean tick(gpointer unused)
{
	return G_SOURCE_CONTINUE;
}

static bool has_vm(struct vm_list *l, const char *name, const void *arg)
{
	return (vm_list_find(l, name) != NULL) == (arg == NULL);
}

static bool in_state(struct vm_list *l, const char *name, const void *arg)
{
	const struct vm_item *it = vm_list_find(l, name);

	return it && it->state == *(const enum vm_state *)arg;
}

static bool memory_is(struct vm_list *l, const char *name, const void *arg)
{
	const struct vm_item *it = vm_list_find(l, name);

	return it && it->cfg.memory == *(const uint64_t *)arg;
}

#define WAIT(l, cond, name, arg, what)                                         \
	do {                                                                   \
		long ms__ = until(l, cond, name, arg);                         \
		CHECK(ms__ >= 0);                                              \
		if (ms__ >= 0)                                                 \
			printf("  %-44s %ld ms\n", what, ms__);               \
		else                                                           \
			printf("  %-44s NOT SEEN in 1 s\n", what);           \
	} while (0)

static void state_wait(struct vm_list *l, const char *name, enum vm_state st, const char *what)
{
	WAIT(l, in_state, name, &st, what);
}

static void test_library(struct vm_list *l)
{
	const struct vm_item *it;
	g_autofree char *bad = NULL, *conf = NULL;
	uint64_t mem = 64ull << 20;

	CHECK_EQ(vm_list_count(l), 0);
	CHECK_EQ(v("create a --kernel %s --memory 32M --nic none", kernel), 0);
	WAIT(l, has_vm, "a", NULL, "create a -> in the model");
	CHECK_EQ(v("create b --kernel %s --memory 32M --nic none", kernel), 0);
	CHECK_EQ(v("create c --kernel %s --memory 32M --nic none --notes hello", kernel), 0);
	WAIT(l, has_vm, "c", NULL, "create b, c -> in the model");
	CHECK_EQ(vm_list_count(l), 3);
	CHECK_EQ(nadded, 3);
	CHECK(!strcmp(vm_list_nth(l, 0)->name, "a"));
	CHECK(!strcmp(vm_list_nth(l, 2)->name, "c"));
	it = vm_list_find(l, "c");
	CHECK(it && it->state == VM_STATE_STOPPED && it->cfg.memory == 32ull << 20);
	CHECK(it && it->cfg.notes && !strcmp(it->cfg.notes, "hello"));

	CHECK_EQ(v("edit a memory=64M"), 0);
	WAIT(l, memory_is, "a", &mem, "edit a memory=64M -> reloaded");

	/* A folder whose vm.conf breaks the memory rule: listed, broken. */
	bad = vmlib_vm_dir("bad");
	conf = vmlib_vm_file("bad", VM_CONF_FILE);
	CHECK(g_mkdir(bad, 0700) == 0 || errno == EEXIST);
	CHECK(g_file_set_contents(conf, "[vm]\nname=bad\nmemory=12Q\n", -1, NULL));
	state_wait(l, "bad", VM_STATE_BROKEN, "a bad vm.conf -> broken");
	it = vm_list_find(l, "bad");
	CHECK(it && it->error && strstr(it->error, "12Q") && strstr(it->error, MACHINE_RAM_RULE));

	CHECK_EQ(v("delete bad --yes"), 0);
	WAIT(l, has_vm, "bad", (void *)1, "delete bad -> gone");
	CHECK(nremoved >= 1);
	CHECK_EQ(vm_list_count(l), 3);
}

static pid_t pid_of(struct vm_list *l, const char *name)
{
	const struct vm_item *it = vm_list_find(l, name);

	return it ? it->pid : 0;
}

static void test_running(struct vm_list *l)
{
	char err[256];
	struct vm_list *l2;
	pid_t pid;

	CHECK_EQ(v("start a --display none"), 0);
	state_wait(l, "a", VM_STATE_RUNNING, "start a -> running");
	CHECK(pid_of(l, "a") > 0);
	/* The loop runs while `vivarium start b` does: how long from the
	 * command to the model's "running", against the command's own exit. */
	{
		char *args[] = { g_strdup(viv), g_strdup("start"), g_strdup("b"),
					    g_strdup("--display"), g_strdup("none"), NULL };
		gint64 t0 = g_get_monotonic_time(), t_model = 0, t_cli = 0;
		GPid child;
		int status = -1;

		CHECK(g_spawn_async(NULL, args, NULL, G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_STDOUT_TO_DEV_NULL,
				    NULL, NULL, &child, NULL));
		while (g_get_monotonic_time() - t0 < 30 * G_USEC_PER_SEC && (!t_model || !t_cli)) {
			const struct vm_item *it = vm_list_find(l, "b");

			g_main_context_iteration(NULL, TRUE);
			if (!t_model && it && it->state == VM_STATE_RUNNING)
				t_model = g_get_monotonic_time();
			if (!t_cli && waitpid(child, &status, WNOHANG) == child)
				t_cli = g_get_monotonic_time();
		}
		CHECK(t_model && t_cli && status == 0);
		/* within 1 s of the VM being ready (the CLI's exit) */
		CHECK(t_model && t_cli && t_model < t_cli + G_USEC_PER_SEC);
		printf("  %-44s model %ld ms, CLI's exit %ld ms\n", "start b (loop running): running after",
		       (long)((t_model - t0) / 1000), (long)((t_cli - t0) / 1000));
		for (unsigned i = 0; i < 5; i++)
			g_free(args[i]);
	}
	CHECK(vm_list_find(l, "c")->state == VM_STATE_STOPPED);

	CHECK_EQ(v("pause a"), 0);
	state_wait(l, "a", VM_STATE_PAUSED, "pause a (CLI) -> paused");
	CHECK_EQ(vm_list_request(l, "a", "resume", NULL, 5000, err, sizeof(err)), 0);
	state_wait(l, "a", VM_STATE_RUNNING, "resume a (model) -> running");
	CHECK(vm_list_request(l, "c", "pause", NULL, 5000, err, sizeof(err)) < 0);

	/* A second model, made while a and b run, subscribes at once. */
	l2 = vm_list_new(NULL, NULL, err, sizeof(err));
	CHECK(l2 != NULL);
	if (l2) {
		state_wait(l2, "a", VM_STATE_RUNNING, "a model made later: a running");
		state_wait(l2, "c", VM_STATE_STOPPED, "a model made later: c stopped");
	}

	CHECK_EQ(v("stop a --force"), 0);
	state_wait(l, "a", VM_STATE_STOPPED, "stop a --force -> stopped");
	CHECK_EQ(pid_of(l, "a"), 0);
	if (l2)
		state_wait(l2, "a", VM_STATE_STOPPED, "  ... and in the second model");

	pid = pid_of(l, "b");
	CHECK(pid > 0);
	if (pid > 0)
		kill(pid, SIGKILL);
	state_wait(l, "b", VM_STATE_STOPPED, "kill -9 b -> stopped");

	/* Stopped and started again while the model's loop does not run: the
	 * old connection's end and the new socket are both queued. */
	CHECK_EQ(v("start b --display none"), 0);
	CHECK_EQ(v("stop b --force"), 0);
	CHECK_EQ(v("start b --display none"), 0);
	vmlib_running("b", &pid);
	state_wait(l, "b", VM_STATE_RUNNING, "stop + start b, loop idle -> running");
	CHECK(pid > 0 && pid_of(l, "b") == pid);
	CHECK_EQ(v("stop b --force"), 0);
	state_wait(l, "b", VM_STATE_STOPPED, "stop b -> stopped");
	vm_list_free(l2);
}

static void rm_rf(const char *dir)
{
	g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);

	if (system(cmd) != 0)
		fprintf(stderr, "cannot remove %s\n", dir);
}

int main(int argc, char **argv)
{
	g_autofree char *work = NULL, *data = NULL, *run = NULL, *cmd = NULL;
	struct vm_list *l;
	char err[512];

	if (argc < 3)
		SKIP("usage: test_vmlist VIVARIUM MKTINYGUEST");
	viv = argv[1];
	if (access(viv, X_OK) < 0)
		SKIP("no vivarium binary at %s", viv);
	work = g_dir_make_tmp("vivarium-vmlist.XXXXXX", NULL);
	CHECK(work != NULL);
	if (!work)
		return check_finish();
	data = g_build_filename(work, "data", NULL);
	run = g_build_filename(work, "run", NULL);
	g_mkdir(run, 0700);
	g_setenv("XDG_DATA_HOME", data, TRUE);
	g_setenv("XDG_RUNTIME_DIR", run, TRUE);
	kernel = g_build_filename(work, "tiny.bzImage", NULL);
	cmd = g_strdup_printf("%s %s", argv[2], kernel);
	if (system(cmd) != 0) {
		rm_rf(work);
		SKIP("cannot build the tiny guest");
	}

	g_timeout_add(50, tick, NULL);
	l = vm_list_new(on_change, NULL, err, sizeof(err));
	CHECK(l != NULL);
	if (!l) {
		fprintf(stderr, "%s\n", err);
		rm_rf(work);
		return check_finish();
	}
	test_library(l);
	printf("ok   library (%u added, %u changed, %u removed)\n", nadded, nchanged, nremoved);
	if (access("/dev/kvm", R_OK | W_OK) == 0) {
		test_running(l);
		printf("ok   running VMs\n");
	} else {
		printf("no usable /dev/kvm: the running-VM part is skipped\n");
	}
	vm_list_free(l);
	/* Never leave a VM process behind. */
	cmd = g_strdup_printf("for p in '%s'/vivarium/vms/*/vm.pid; do [ -f \"$p\" ] && kill -9 $(cat \"$p\") 2>/dev/null; done; true", data);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup failed\n");
	rm_rf(work);
	return check_finish();
}
