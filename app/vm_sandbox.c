/* SPDX-License-Identifier: MIT */
/* app/vm_sandbox.c - the sandbox of a VM's process (vm_sandbox.h). */
#include "vm_sandbox.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "audio/audio.h"
#include "log.h"
#include "machine.h"
#include "net/net.h"
#include "sandbox/sandbox.h"
#include "snaplib.h"
#include "vmlib.h"

struct paths {
	GArray *list;		/* struct sandbox_path */
	GPtrArray *strings;	/* what they point to */
};

static void add(struct paths *p, const char *path, enum sandbox_access a,
		bool required)
{
	char *s = g_canonicalize_filename(path, NULL);
	struct sandbox_path sp = { .path = s, .access = a, .required = required };

	g_ptr_array_add(p->strings, s);
	g_array_append_val(p->list, sp);
}

/* @path read-write (or read-only) and its backing chain read-only. */
static void add_chain(struct paths *p, const char *path, bool writable)
{
	g_autoptr(GPtrArray) chain = g_ptr_array_new_with_free_func(g_free);

	snap_image_chain(path, chain);
	add(p, path, writable ? SANDBOX_READ_WRITE : SANDBOX_READ, true);
	for (guint i = 1; i < chain->len; i++)
		add(p, chain->pdata[i], SANDBOX_READ, false);
}

static int run_as_cb(void *user, char *err, size_t errlen)
{
	return vm_run_as(user, err, errlen);
}

int vm_sandbox_enter(const struct vm_sandbox_opts *o, char *summary,
		     size_t summlen, char *err, size_t errlen)
{
	struct paths p = {
		.list = g_array_new(FALSE, FALSE, sizeof(struct sandbox_path)),
		.strings = g_ptr_array_new_with_free_func(g_free),
	};
	struct sandbox_config cfg = { .coredump = o->coredump, .window = o->window };
	struct sandbox_report rep;
	const struct machine_config *mc = o->mc;
	int r;

	for (unsigned i = 0; i < mc->ndrives; i++) {
		const struct machine_drive *d = &mc->drive[i];

		add_chain(&p, d->path, !d->readonly && !d->cdrom);
	}
	for (unsigned i = 0; i < mc->nnics; i++)
		if (mc->nic[i].backend && !strcmp(net_kind(mc->nic[i].backend), "nat"))
			cfg.nat = true;
	/* Shared folders: everything beneath (read-only for readonly
	 * ones); their servers' calls in the filters. */
	for (unsigned i = 0; i < mc->nshares; i++)
		add(&p, mc->share[i].path, mc->share[i].readonly ? SANDBOX_READ
								 : SANDBOX_SHARE, true);
	cfg.shares = mc->nshares > 0;
	/* The PulseAudio backend's thread reconnects after the sandbox is in
	 * place (the server restarted): a unix socket and connect.  Landlock
	 * does not cover connect(); the client's config and cookie files may
	 * be out of reach then, and a same-uid server accepts the client's
	 * SCM_CREDENTIALS instead of the cookie. */
	cfg.audio = mc->audio && !strcmp(mc->audio->ops->name, "pa");
	if (o->vm_name) {
		g_autofree char *dir = vmlib_vm_dir(o->vm_name);
		g_autoptr(GPtrArray) images = g_ptr_array_new_with_free_func(g_free);

		add(&p, dir, SANDBOX_FOLDER, true);
		/* Snapshots' frozen images outside the folder (a disk the
		 * user kept elsewhere, a linked clone's source): a revert
		 * puts an overlay on them. */
		snap_vm_images(o->vm_name, images);
		for (guint i = 0; i < images->len; i++)
			add(&p, images->pdata[i], SANDBOX_READ, false);
	}
	if (o->sock_path) {
		g_autofree char *run = g_path_get_dirname(o->sock_path);

		add(&p, run, SANDBOX_REMOVE, false);
	}
	/* GLib's messages go to stderr, never to journald: its writer
	 * would open a new AF_UNIX socket, which the filters refuse. */
	g_log_set_writer_func(g_log_writer_standard_streams, NULL, NULL);
	if (o->run_as) {
		cfg.before_restrict = run_as_cb;
		cfg.opaque = (void *)o->run_as;
	}
	cfg.paths = (const struct sandbox_path *)(void *)p.list->data;
	cfg.npaths = p.list->len;
	r = sandbox_enter(&cfg, &rep, err, errlen);
	g_array_unref(p.list);
	g_ptr_array_unref(p.strings);
	if (r < 0)
		return r;
	if (!rep.landlock_abi)
		vlog(LOG_WARN, "sandbox: no file restrictions (%s); seccomp and the rest are in place",
		     rep.landlock_why);
	if (summary) {
		char ll[32];

		snprintf(ll, sizeof(ll), "Landlock ABI %d", rep.landlock_abi);
		snprintf(summary, summlen,
			 "seccomp allow-lists on every thread (%u running), %s, no_new_privs, %s, %s",
			 rep.threads, rep.landlock_abi ? ll : "no Landlock",
			 rep.caps_dropped ? "capabilities dropped" : "no capabilities",
			 rep.coredump ? "core dumps possible (coredump=on)" : "no core dumps");
	}
	return 0;
}

int vm_run_as(const char *user, char *err, size_t errlen)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	int r;

	r = getpwnam_r(user, &pw, buf, sizeof(buf), &res);
	if (!res) {
		snprintf(err, errlen, "run-as=%s: %s", user,
			 r ? strerror(r) : "no such user");
		return r ? -r : -ENOENT;
	}
	if (pw.pw_uid == 0) {
		snprintf(err, errlen, "run-as=%s is root: nothing to drop (name an unprivileged user)",
			 user);
		return -EINVAL;
	}
	if (geteuid() == pw.pw_uid && getuid() == pw.pw_uid)
		return 0;
	if (geteuid() != 0) {
		snprintf(err, errlen, "run-as=%s: only a VM started as root can change its user (this runs as uid %u)",
			 user, (unsigned)geteuid());
		return -EPERM;
	}
	/* Groups first: setgid and initgroups need the root uid. */
	if (initgroups(pw.pw_name, pw.pw_gid) < 0 || setgid(pw.pw_gid) < 0 ||
	    setuid(pw.pw_uid) < 0) {
		r = -errno;
		snprintf(err, errlen, "run-as=%s: cannot change to uid %u gid %u: %s",
			 user, (unsigned)pw.pw_uid, (unsigned)pw.pw_gid, strerror(-r));
		return r;
	}
	if (setuid(0) == 0 || geteuid() == 0) {
		snprintf(err, errlen, "run-as=%s: uid 0 could be regained; refusing to run", user);
		return -EPERM;
	}
	return 0;
}
