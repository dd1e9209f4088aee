/* SPDX-License-Identifier: MIT */
/*
 * guest-additions/ga.h - the guest agent's parts (vivarium-additions.c):
 * a small JSON reader/writer, the protocol of docs/guest-additions.md
 * (line framing, dispatch, the hello and info lines), the guest's info,
 * CVT mode timings, and the system actions (mount, display, clock).
 *
 * Built against libc only, statically; everything here except ga_sys.c
 * is pure and unit-tested on the build host (tests/unit/test_additions_agent.c).
 * The host is the VM's owner but its bytes are still checked: a line over
 * GA_LINE_MAX is dropped, JSON nests at most GA_DEPTH_MAX deep in at most
 * GA_NODES values, and every member's type and range is checked.
 */
#ifndef VIVARIUM_GA_H
#define VIVARIUM_GA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GA_VERSION		"1.0.0"
#define GA_PROTOCOL		1
#define GA_PORT_NAME		"org.vivarium.additions.0"
#define GA_LINE_MAX		8192	/* bytes, the newline included */
#define GA_DEPTH_MAX		4
#define GA_NODES		256
#define GA_SHARES_MAX		4
#define GA_TAG_MAX		31
#define GA_PATH_MAX		255
#define GA_ADDR_MAX		16
#define GA_OS_MAX		128
#define GA_KERNEL_MAX		128
#define GA_HOSTNAME_MAX		64
#define GA_DISPLAY_MAX		16384

/* ---- JSON (ga_json.c) ------------------------------------------------------ */

enum gj_type { GJ_NULL, GJ_BOOL, GJ_NUM, GJ_STR, GJ_ARR, GJ_OBJ };

struct gj_node {
	enum gj_type type;
	const char *key;	/* member name inside an object, else NULL */
	const char *str;	/* GJ_STR: unescaped, NUL-terminated */
	long long num;		/* GJ_NUM with is_int; GJ_BOOL: 0/1 */
	bool is_int;		/* GJ_NUM: an integer that fits */
	int first, next;	/* child, sibling: node index, -1 none */
};

/* A parsed line: node[0] is the root.  Strings point into strbuf. */
struct gj_doc {
	struct gj_node node[GA_NODES];
	int n;
	char strbuf[GA_LINE_MAX + 4];
	size_t sused;
};

/* Parse @len bytes (one JSON value, whitespace around it).  0, or -1 on
 * bad syntax, nesting over GA_DEPTH_MAX, over GA_NODES values, a \u0000
 * escape, or a string that is not UTF-8. */
int gj_parse(struct gj_doc *d, const char *s, size_t len);
/* Member @key of object @obj (NULL: not an object, or absent). */
const struct gj_node *gj_get(const struct gj_doc *d, const struct gj_node *obj,
			     const char *key);
/* First child / next sibling (NULL: none). */
const struct gj_node *gj_first(const struct gj_doc *d, const struct gj_node *n);
const struct gj_node *gj_next(const struct gj_doc *d, const struct gj_node *n);
/* The string member @key, or NULL (absent or another type). */
const char *gj_get_str(const struct gj_doc *d, const struct gj_node *obj,
		       const char *key);
/* The integer member @key within [@min, @max] into *@out: true, or false. */
bool gj_get_int(const struct gj_doc *d, const struct gj_node *obj,
		const char *key, long long min, long long max, long long *out);

/* An output line under construction; @over once something did not fit. */
struct gbuf {
	char *p;
	size_t len, cap;
	bool over;
};
void gbuf_init(struct gbuf *b, char *p, size_t cap);
void gbuf_raw(struct gbuf *b, const char *s);
/* @s as a JSON string literal (quotes and escapes). */
void gbuf_str(struct gbuf *b, const char *s);
void gbuf_int(struct gbuf *b, long long v);

/* ---- the protocol (ga_proto.c) ---------------------------------------------- */

struct ga_share {
	char tag[GA_TAG_MAX + 1];
	char path[GA_PATH_MAX + 1];
	bool readonly;
};

/* What to do with the host's messages; any may be NULL. */
struct ga_actions {
	void (*hello)(void *opaque, long long protocol);
	void (*shares)(void *opaque, const struct ga_share *s, unsigned n);
	void (*display_size)(void *opaque, unsigned width, unsigned height);
	void (*time_sync)(void *opaque, long long sec, long nsec);
};

struct ga_reader {
	char line[GA_LINE_MAX];
	size_t len;
	bool discarding;
	struct gj_doc doc;
	unsigned bad;		/* lines refused (for the log) */
};

void ga_reader_reset(struct ga_reader *r);
/* Bytes from the host (any split): each complete line is handled. */
void ga_input(struct ga_reader *r, const char *buf, size_t len,
	      const struct ga_actions *a, void *opaque);
/* One line without its newline: 0 handled (or an unknown type, ignored),
 * -1 refused. */
int ga_handle_line(struct ga_reader *r, const char *line, size_t len,
		   const struct ga_actions *a, void *opaque);
/* Is @path fit to mount a share on: absolute, not "/", no "." or ".."
 * components, no control characters, at most GA_PATH_MAX bytes. */
bool ga_path_ok(const char *path);

/* The guest's info (ga_info_gather()); strings are sanitized: UTF-8,
 * no control characters, within the host's bounds. */
struct ga_info {
	char os[GA_OS_MAX + 1];
	char kernel[GA_KERNEL_MAX + 1];
	char hostname[GA_HOSTNAME_MAX + 1];
	char addr[GA_ADDR_MAX][46];
	unsigned naddr;
};

/* The hello / info line, newline included, into @buf: its length, or 0
 * if it did not fit. */
size_t ga_hello_line(char *buf, size_t cap);
size_t ga_info_line(const struct ga_info *in, char *buf, size_t cap);

/* Fill @in: PRETTY_NAME (else NAME) of @os_release (NULL:
 * /etc/os-release, then /usr/lib/os-release), uname's release and
 * nodename, getifaddrs' IPv4/IPv6 addresses on interfaces that are up,
 * not loopback, IPv6 link-local left out.  Always succeeds (empty
 * fields where nothing is known). */
void ga_info_gather(struct ga_info *in, const char *os_release);
/* The os-release name of file @path into @out; false if none. */
bool ga_os_release_name(const char *path, char *out, size_t cap);
/* Copy @in to @out (@cap bytes) as valid UTF-8 without control
 * characters ('?' for each bad byte), cut at a character boundary. */
void ga_sanitize(const char *in, char *out, size_t cap);

/* ---- CVT timings (ga_cvt.c) -------------------------------------------------- */

/* A mode line as xrandr --newmode takes it: clock in kHz. */
struct ga_mode {
	unsigned clock_khz;
	unsigned hdisp, hsync_start, hsync_end, htotal;
	unsigned vdisp, vsync_start, vsync_end, vtotal;
};

/* VESA CVT 1.2 §3.4 (CRT timings, not reduced blanking, progressive) for
 * @width x @height at @refresh Hz.  -1 for sizes out of 1..GA_DISPLAY_MAX
 * or a refresh out of 24..240. */
int ga_cvt(unsigned width, unsigned height, unsigned refresh,
	   struct ga_mode *m);

/* ---- system actions (ga_sys.c; in the guest, as root) ------------------------ */

/* Log a line to stderr (the journal). */
void ga_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Mount each share at its path (9p over virtio), loading the 9p modules
 * with modprobe if needed; a share already mounted there is left, a path
 * with something else mounted on it is not mounted over.  With @dry_run
 * only logs.  Returns the count of shares not mounted (to retry). */
unsigned ga_mount_shares(const struct ga_share *s, unsigned n, bool dry_run);
/* Apply @width x @height: through RandR (xrandr) on a running X server,
 * else on the framebuffer console (fbdev).  Logs what happened. */
void ga_apply_display_size(unsigned width, unsigned height, bool dry_run);
/* Set CLOCK_REALTIME. */
void ga_set_clock(long long sec, long nsec, bool dry_run);

#endif
