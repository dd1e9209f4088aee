/* SPDX-License-Identifier: MIT */
#include "display.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

#include "agents.h"
#include "display/console.h"
#include "display_sdl.h"
#include "log.h"
#include "display_vnc.h"
#include "options.h"

#define FRAME_MS	16	/* ~60 frames per second */
#define PASSWORD_MAX	64

struct vm_display {
	struct console *con;
	struct sdl_display *sdl;
	struct vnc_display *vnc;
	guint timer;
	void (*close)(void *opaque);
	void *opaque;
	struct vm_agents *agents;	/* vm_display_set_agents(); NULL: none */
};

int vm_display_parse_kind(const char *s, enum vm_display_kind *out)
{
	if (!strcmp(s, "sdl"))
		*out = VM_DISPLAY_SDL;
	else if (!strcmp(s, "none"))
		*out = VM_DISPLAY_NONE;
	else if (!strcmp(s, "auto"))
		*out = VM_DISPLAY_AUTO;
	else
		return -EINVAL;
	return 0;
}

/* Is there a desktop session to open a window in? */
static bool have_desktop(void)
{
	const char *x = getenv("DISPLAY"), *w = getenv("WAYLAND_DISPLAY");

	return (x && *x) || (w && *w);
}

bool vm_display_wanted(const struct vm_display_opts *o)
{
	return o->vnc || o->kind == VM_DISPLAY_SDL ||
	       (o->kind == VM_DISPLAY_AUTO && have_desktop());
}

static gboolean frame(gpointer opaque)
{
	struct vm_display *d = opaque;

	console_refresh(d->con);
	if (d->sdl)
		sdl_display_poll(d->sdl);
	return G_SOURCE_CONTINUE;
}

static void on_close(void *opaque)
{
	struct vm_display *d = opaque;

	if (d->close)
		d->close(d->opaque);
}

/* The window's clipboard changed (text, or "" for something else). */
static void on_host_clipboard(void *opaque, const char *text)
{
	struct vm_display *d = opaque;
	const char *owner;

	if (!d->agents)
		return;
	/* Not text (an image): the guest's own clipboard stays; a text the
	 * host offered is withdrawn (a paste in the guest must not give an
	 * older copy). */
	if (!*text) {
		vm_agents_clipboard_get(d->agents, &owner);
		if (!strcmp(owner, "guest"))
			return;
	}
	if (vm_agents_clipboard_set(d->agents, text, true) < 0)
		vlog_ratelimited(LOG_WARN, "clipboard: the host's text is over 1 MiB or not UTF-8: not offered to the guest");
}

/* The guest copied @text: the window's clipboard follows. */
static void on_guest_text(void *opaque, const char *text)
{
	struct vm_display *d = opaque;

	if (d->sdl)
		sdl_display_set_clipboard(d->sdl, text);
}

void vm_display_set_agents(struct vm_display *d, struct vm_agents *a)
{
	if (d->agents) {
		vm_agents_off_guest_text(d->agents, on_guest_text, d);
		console_set_size_agent(d->con, NULL, NULL);
	}
	d->agents = a;
	if (!a)
		return;
	console_set_size_agent(d->con, vm_agents_size_hook, a);
	if (d->sdl && vm_agents_on_guest_text(a, on_guest_text, d) < 0)
		vlog(LOG_WARN, "clipboard: too many listeners; the window's clipboard does not follow the guest's");
}

int vm_display_open(struct vm_display **out, struct console *con,
		    const struct vm_display_opts *o,
		    void (*close)(void *opaque), void *opaque,
		    char *err, size_t errlen)
{
	struct vm_display *d = calloc(1, sizeof(*d));
	enum vm_display_kind kind = o->kind;
	const char *name = o->name ? o->name : "vivarium";
	char pw[PASSWORD_MAX] = "";
	int r;

	*out = NULL;
	if (!d) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	d->con = con;
	d->close = close;
	d->opaque = opaque;
	if (kind == VM_DISPLAY_AUTO)
		kind = have_desktop() ? VM_DISPLAY_SDL : VM_DISPLAY_NONE;
	if (o->vnc) {
		struct vnc_display_opts vo = { .password = pw, .name = name };

		if (o->vnc_password_file) {
			r = vnc_password_read(o->vnc_password_file, pw, sizeof(pw), err, errlen);
			if (r < 0)
				goto fail;
		} else {
			vo.password = NULL;
		}
		d->vnc = vnc_display_new(con, o->vnc, &vo, err, errlen);
		memset(pw, 0, sizeof(pw));
		if (!d->vnc) {
			r = -EADDRINUSE;
			goto fail;
		}
	}
	if (kind == VM_DISPLAY_SDL) {
		static const struct sdl_display_cbs cbs = {
			.close = on_close, .clipboard = on_host_clipboard,
		};

		d->sdl = sdl_display_new(con, name, &cbs, d, err, errlen);
		if (!d->sdl && o->kind == VM_DISPLAY_AUTO) {
			/* "auto" means a window if one can be opened. */
			fprintf(stderr, "vivarium: no console window (%s); running headless\n", err);
			err[0] = 0;
		} else if (!d->sdl) {
			r = -ENODEV;
			goto fail;
		}
	}
	if (d->sdl || d->vnc)
		d->timer = g_timeout_add(FRAME_MS, frame, d);
	*out = d;
	return 0;
fail:
	vm_display_close(d);
	return r;
}

bool vm_display_is_sdl(const struct vm_display *d)
{
	return d && d->sdl;
}

void vm_display_set_state(struct vm_display *d, const char *state)
{
	if (d && d->sdl)
		sdl_display_set_state(d->sdl, state);
}

bool vm_display_raise(struct vm_display *d)
{
	if (!d || !d->sdl)
		return false;
	sdl_display_raise(d->sdl);
	return true;
}

void vm_display_close(struct vm_display *d)
{
	if (!d)
		return;
	vm_display_set_agents(d, NULL);
	if (d->timer)
		g_source_remove(d->timer);
	if (d->sdl)
		sdl_display_free(d->sdl);
	if (d->vnc)
		vnc_display_free(d->vnc);
	free(d);
}
