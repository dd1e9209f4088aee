/* SPDX-License-Identifier: MIT */
/*
 * The agent's actions on the guest system (as root): mounting the shares,
 * applying the host's display size, setting the clock.  See ga.h.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ga.h"

#define P9_OPTIONS	"trans=virtio,version=9p2000.L,msize=524288"
#define RUN_OUT_MAX	(64u << 10)
#define RUN_TIMEOUT_MS	10000

void ga_log(const char *fmt, ...)
{
	va_list ap;

	fputs("vivarium-additions: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* Run @argv (found on a fixed PATH) with @env; its stdout (at most
 * @cap - 1 bytes, NUL-terminated) into @out if not NULL.  Killed after
 * RUN_TIMEOUT_MS.  Returns its exit status, or -1. */
static int run(char *const argv[], char *const env[], char *out, size_t cap)
{
	static const char *const dirs[] = {
		"/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin",
		"/sbin", "/bin",
	};
	char path[256] = "";
	int pfd[2], status;
	size_t len = 0;
	pid_t pid;
	struct timespec t0, t;

	for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", dirs[i], argv[0]);
		if (access(path, X_OK) == 0)
			break;
		path[0] = '\0';
	}
	if (!path[0])
		return -1;
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return -1;
	pid = fork();
	if (pid < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return -1;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, 0);
		dup2(out ? pfd[1] : null, 1);
		execve(path, argv, env);
		_exit(127);
	}
	close(pfd[1]);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd p = { pfd[0], POLLIN, 0 };
		char buf[4096];
		long ms;
		ssize_t n;

		clock_gettime(CLOCK_MONOTONIC, &t);
		ms = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
		if (ms >= RUN_TIMEOUT_MS || poll(&p, 1, (int)(RUN_TIMEOUT_MS - ms)) == 0) {
			kill(pid, SIGKILL);
			break;
		}
		n = read(pfd[0], buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (out && len + 1 < cap) {
			size_t k = (size_t)n < cap - 1 - len ? (size_t)n : cap - 1 - len;

			memcpy(out + len, buf, k);
			len += k;
		}
	}
	close(pfd[0]);
	if (out && cap)
		out[len] = '\0';
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static char *const base_env[] = {
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	NULL,
};

/* ---- shares ------------------------------------------------------------------ */

static bool file_has(const char *path, const char *needle)
{
	char buf[8192];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, needle) != NULL;
}

/* Does a virtio-9p device with @tag exist (9pnet_virtio bound to it)? */
static bool tag_present(const char *tag)
{
	DIR *d = opendir("/sys/bus/virtio/drivers/9pnet_virtio");
	struct dirent *e;
	bool found = false;

	if (!d)
		return false;
	while (!found && (e = readdir(d))) {
		char p[512], t[64];
		int fd;
		ssize_t n;

		if (strncmp(e->d_name, "virtio", 6))
			continue;
		snprintf(p, sizeof(p), "/sys/bus/virtio/drivers/9pnet_virtio/%s/mount_tag",
			 e->d_name);
		fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, t, sizeof(t) - 1);
		close(fd);
		if (n <= 0)
			continue;
		t[n] = '\0';
		t[strcspn(t, "\n")] = '\0';	/* the tag may end in NUL/newline */
		found = !strcmp(t, tag);
	}
	closedir(d);
	return found;
}

static void load_9p(void)
{
	char *const a1[] = { "modprobe", "9pnet_virtio", NULL };
	char *const a2[] = { "modprobe", "9p", NULL };

	if (access("/sys/bus/virtio/drivers/9pnet_virtio", F_OK) != 0 &&
	    run(a1, base_env, NULL, 0) != 0)
		ga_log("modprobe 9pnet_virtio failed (is the kernel's 9p support installed? linux-image's modules 9p, 9pnet, 9pnet_virtio)");
	if (!file_has("/proc/filesystems", "\t9p\n") && run(a2, base_env, NULL, 0) != 0)
		ga_log("modprobe 9p failed");
}

/* What is mounted at @path: 1 our tag over 9p, 0 nothing, -1 something
 * else.  /proc/self/mountinfo: ID PARENT MAJ:MIN ROOT MOUNTPOINT ... - FS SRC */
static int mounted_at(const char *path, const char *tag)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char line[4096];
	int r = 0;

	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		char mp[4096], fs[64], src[512];
		char *dash = strstr(line, " - ");

		if (!dash || sscanf(line, "%*s %*s %*s %*s %4095s", mp) != 1 ||
		    sscanf(dash + 3, "%63s %511s", fs, src) != 2)
			continue;
		/* Mount points escape space, tab, newline and \ as \ooo. */
		for (char *rd = mp, *w = mp;; rd++) {
			if (rd[0] == '\\' && rd[1] >= '0' && rd[1] <= '3' && rd[2] && rd[3]) {
				*w++ = (char)((rd[1] - '0') * 64 + (rd[2] - '0') * 8 + (rd[3] - '0'));
				rd += 3;
				continue;
			}
			*w++ = *rd;
			if (!*rd)
				break;
		}
		if (strcmp(mp, path))
			continue;
		/* The last mount on a point is the one seen. */
		r = !strcmp(fs, "9p") && !strcmp(src, tag) ? 1 : -1;
	}
	fclose(f);
	return r;
}

static int mkdir_p(const char *path)
{
	char p[GA_PATH_MAX + 1];

	snprintf(p, sizeof(p), "%s", path);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) < 0 && errno != EEXIST)
			return -1;
		*s = '/';
	}
	return mkdir(p, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

unsigned ga_mount_shares(const struct ga_share *s, unsigned n, bool dry_run)
{
	unsigned failed = 0;
	bool loaded = false;

	for (unsigned i = 0; i < n; i++) {
		unsigned long flags = MS_NODEV | MS_NOSUID |
				      (s[i].readonly ? MS_RDONLY : 0);
		int at;

		if (dry_run) {
			ga_log("would mount share %s at %s (9p, %s)", s[i].tag,
			       s[i].path, s[i].readonly ? "read-only" : "read-write");
			continue;
		}
		at = mounted_at(s[i].path, s[i].tag);
		if (at == 1)
			continue;
		if (at < 0) {
			ga_log("share %s: something else is mounted at %s; not mounting over it",
			       s[i].tag, s[i].path);
			continue;
		}
		if (!loaded) {
			load_9p();
			loaded = true;
		}
		if (!tag_present(s[i].tag))
			ga_log("share %s: no virtio-9p device with this tag is visible yet", s[i].tag);
		if (mkdir_p(s[i].path) < 0) {
			ga_log("share %s: cannot create %s: %s", s[i].tag, s[i].path,
			       strerror(errno));
			failed++;
			continue;
		}
		if (mount(s[i].tag, s[i].path, "9p", flags, P9_OPTIONS) < 0) {
			ga_log("share %s: mount at %s failed: %s", s[i].tag, s[i].path,
			       strerror(errno));
			failed++;
			continue;
		}
		ga_log("share %s mounted at %s%s", s[i].tag, s[i].path,
		       s[i].readonly ? " (read-only)" : "");
	}
	return failed;
}

/* ---- display ------------------------------------------------------------------- */

/* A running X server: its display (":0") and -auth file, from /proc. */
static bool find_x(char *display, size_t dlen, char *auth, size_t alen)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	bool found = false;

	if (!d)
		return false;
	while (!found && (e = readdir(d))) {
		char p[300], cmd[4096];
		const char *base;
		ssize_t n;
		int fd;

		if (e->d_name[0] < '1' || e->d_name[0] > '9')
			continue;
		snprintf(p, sizeof(p), "/proc/%s/cmdline", e->d_name);
		fd = open(p, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			continue;
		n = read(fd, cmd, sizeof(cmd) - 1);
		close(fd);
		if (n <= 0)
			continue;
		cmd[n] = '\0';
		base = strrchr(cmd, '/') ? strrchr(cmd, '/') + 1 : cmd;
		if (strcmp(base, "Xorg") && strcmp(base, "X"))
			continue;
		snprintf(display, dlen, ":0");
		auth[0] = '\0';
		/* Arguments: NUL-separated. */
		for (char *a = cmd + strlen(cmd) + 1; a < cmd + n; a += strlen(a) + 1) {
			if (a[0] == ':' && a[1] >= '0' && a[1] <= '9')
				snprintf(display, dlen, "%s", a);
			else if (!strcmp(a, "-auth") && a + strlen(a) + 1 < cmd + n)
				snprintf(auth, alen, "%s", a + strlen(a) + 1);
		}
		found = true;
	}
	closedir(d);
	return found;
}

/* From `xrandr --query`: the first connected output, and whether mode
 * @name is listed under it. */
static bool parse_xrandr(const char *q, const char *name, char *output,
			 size_t olen, bool *has_mode)
{
	bool in_output = false;

	*has_mode = false;
	output[0] = '\0';
	for (const char *l = q; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		char first[128];

		if (sscanf(l, "%127s", first) != 1)
			continue;
		if (l[0] != ' ') {
			if (in_output)
				break;
			if (!strncmp(l + strlen(first), " connected", 10)) {
				snprintf(output, olen, "%s", first);
				in_output = true;
			}
		} else if (in_output && !strcmp(first, name)) {
			*has_mode = true;
		}
	}
	return output[0] != '\0';
}

static bool apply_xrandr(unsigned w, unsigned h, bool dry_run)
{
	char display[32], auth[1024], denv[64], aenv[1100], output[128];
	char mode[32], cvt_name[48], *q;
	char *env[4] = { base_env[0], denv, NULL, NULL };
	bool has_mode, has_cvt;
	struct ga_mode m;
	int r;

	if (!find_x(display, sizeof(display), auth, sizeof(auth)))
		return false;
	snprintf(denv, sizeof(denv), "DISPLAY=%s", display);
	if (auth[0]) {
		snprintf(aenv, sizeof(aenv), "XAUTHORITY=%s", auth);
		env[2] = aenv;
	}
	snprintf(mode, sizeof(mode), "%ux%u", w, h);
	snprintf(cvt_name, sizeof(cvt_name), "%ux%u_vivarium", w, h);
	if (dry_run) {
		ga_log("would set %s on X display %s with xrandr", mode, display);
		return true;
	}
	q = malloc(RUN_OUT_MAX);
	if (!q)
		return true;
	{
		char *const a[] = { "xrandr", "--query", NULL };

		r = run(a, env, q, RUN_OUT_MAX);
	}
	if (r != 0) {
		ga_log("X runs on %s but xrandr %s; display size not applied",
		       display, r == -1 ? "is not installed (or failed to start)" : "cannot reach it");
		free(q);
		return true;
	}
	if (!parse_xrandr(q, mode, output, sizeof(output), &has_mode)) {
		ga_log("xrandr lists no connected output; display size not applied");
		free(q);
		return true;
	}
	parse_xrandr(q, cvt_name, output, sizeof(output), &has_cvt);
	free(q);
	if (!has_mode && !has_cvt) {
		char clk[16], t[8][8];

		if (ga_cvt(w, h, 60, &m) < 0)
			return true;
		snprintf(clk, sizeof(clk), "%u.%03u", m.clock_khz / 1000, m.clock_khz % 1000);
		snprintf(t[0], 8, "%u", m.hdisp);
		snprintf(t[1], 8, "%u", m.hsync_start);
		snprintf(t[2], 8, "%u", m.hsync_end);
		snprintf(t[3], 8, "%u", m.htotal);
		snprintf(t[4], 8, "%u", m.vdisp);
		snprintf(t[5], 8, "%u", m.vsync_start);
		snprintf(t[6], 8, "%u", m.vsync_end);
		snprintf(t[7], 8, "%u", m.vtotal);
		{
			char *const nm[] = { "xrandr", "--newmode", cvt_name, clk,
					     t[0], t[1], t[2], t[3], t[4], t[5], t[6], t[7],
					     "-hsync", "+vsync", NULL };
			char *const am[] = { "xrandr", "--addmode", output, cvt_name, NULL };

			/* --newmode fails if the mode exists unattached: fine. */
			run(nm, env, NULL, 0);
			if (run(am, env, NULL, 0) != 0) {
				ga_log("xrandr --addmode %s %s failed", output, cvt_name);
				return true;
			}
		}
	}
	{
		char *const so[] = { "xrandr", "--output", output, "--mode",
				     has_mode ? mode : cvt_name, NULL };

		r = run(so, env, NULL, 0);
	}
	if (r == 0)
		ga_log("display: %s set on %s (X %s)", mode, output, display);
	else
		ga_log("display: xrandr --output %s --mode %s failed", output,
		       has_mode ? mode : cvt_name);
	return true;
}

/* The framebuffer console: ask fbdev for the size (fbcon follows).  DRM
 * drivers' fbdev emulation refuses sizes beyond the buffer it allocated
 * at boot; then the console keeps its size. */
static void apply_fb(unsigned w, unsigned h, bool dry_run)
{
	struct fb_var_screeninfo v;
	int fd;

	if (dry_run) {
		ga_log("would ask /dev/fb0 for %ux%u", w, h);
		return;
	}
	fd = open("/dev/fb0", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		ga_log("display: no X server and no /dev/fb0; %ux%u not applied", w, h);
		return;
	}
	if (ioctl(fd, FBIOGET_VSCREENINFO, &v) == 0) {
		if (v.xres == w && v.yres == h) {
			close(fd);
			return;
		}
		v.xres = v.xres_virtual = w;
		v.yres = v.yres_virtual = h;
		v.xoffset = v.yoffset = 0;
		v.activate = FB_ACTIVATE_NOW | FB_ACTIVATE_ALL;
		if (ioctl(fd, FBIOPUT_VSCREENINFO, &v) == 0)
			ga_log("display: console framebuffer set to %ux%u", w, h);
		else
			ga_log("display: the console framebuffer refuses %ux%u (%s); it keeps its size",
			       w, h, strerror(errno));
	}
	close(fd);
}

void ga_apply_display_size(unsigned width, unsigned height, bool dry_run)
{
	if (!apply_xrandr(width, height, dry_run))
		apply_fb(width, height, dry_run);
}

/* ---- clock ------------------------------------------------------------------------ */

void ga_set_clock(long long sec, long nsec, bool dry_run)
{
	struct timespec now, ts = { .tv_sec = (time_t)sec, .tv_nsec = nsec };
	long long delta_ms;

	clock_gettime(CLOCK_REALTIME, &now);
	delta_ms = (sec - now.tv_sec) * 1000 + (nsec - now.tv_nsec) / 1000000;
	if (dry_run) {
		ga_log("would set the clock (%+lld ms)", delta_ms);
		return;
	}
	if (clock_settime(CLOCK_REALTIME, &ts) < 0)
		ga_log("clock: clock_settime failed: %s", strerror(errno));
	else if (delta_ms > 1000 || delta_ms < -1000)
		ga_log("clock: set from the host (%+lld ms)", delta_ms);
}
