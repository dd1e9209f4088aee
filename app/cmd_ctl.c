/* SPDX-License-Identifier: MIT */
/*
 * app/cmd_ctl.c - commands on a VM's process: start (launch it), stop,
 * pause, resume, reset, status, screenshot, console (over its control
 * socket).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "commands.h"
#include "ctl.h"
#include "display/console.h"
#include "host/chardev.h"
#include "newfile.h"
#include "options.h"
#include "png_write.h"
#include "vmlib.h"
#include "vmproc.h"

#define ERR(...) (fprintf(stderr, "vivarium: " __VA_ARGS__), fputc('\n', stderr))
#define REQUEST_TIMEOUT_MS	10000

/* The VM must exist and be valid; one line otherwise. */
static int need_vm(const char *name)
{
	struct vm_config cfg;
	char err[512];

	if (vm_config_load(name, &cfg, NULL, err, sizeof(err)) < 0) {
		ERR("%s", err);
		return -1;
	}
	vm_config_clear(&cfg);
	return 0;
}

/* need_vm(), and the VM must be running (*@pid: its process, if @pid is
 * not NULL); one line otherwise. */
static int need_running(const char *name, pid_t *pid)
{
	if (need_vm(name) < 0)
		return -1;
	if (!vmlib_running(name, pid)) {
		ERR("VM '%s' is not running", name);
		return -1;
	}
	return 0;
}

/* ---- start --------------------------------------------------------------- */

static void start_usage(FILE *f)
{
	fprintf(f,
		"usage: vivarium start NAME [--display none|sdl|auto] [--vnc ADDR:PORT|unix:PATH]\n"
		"                      [--vnc-password-file PATH]\n\n"
		"Starts the VM in its own process, in the background (log: vm.log in its\n"
		"folder).  'vivarium console NAME' shows its serial console.  The options\n"
		"override vm.conf's display, vnc and vnc-password-file for this run;\n"
		"--vnc '' turns VNC off.  In the console window Right Ctrl is the host key:\n"
		"Host+F full screen, Host+Del Ctrl+Alt+Del; closing it presses the power button.\n");
}

int cmd_start(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "display", required_argument, NULL, 'd' },
		{ "vnc", required_argument, NULL, 'v' },
		{ "vnc-password-file", required_argument, NULL, 'p' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	g_autofree char *exe = NULL;
	g_autofree char *vnc = NULL, *vnc_pw = NULL;
	struct vm_start_opts so = { 0 };
	const char *display = NULL;
	char line[1100];
	const char *name;
	int opt;
	pid_t vm_pid = 0;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			if (strcmp(optarg, "none") && strcmp(optarg, "sdl") && strcmp(optarg, "auto")) {
				ERR("--display '%s': use none, sdl or auto", optarg);
				return 2;
			}
			display = optarg;
			break;
		case 'v':
			/* The VM process runs elsewhere: a relative socket path
			 * is taken from here. */
			g_free(vnc);
			if (!strncmp(optarg, "unix:", 5) && optarg[5] && !g_path_is_absolute(optarg + 5)) {
				g_autofree char *abs = g_canonicalize_filename(optarg + 5, NULL);

				vnc = g_strconcat("unix:", abs, NULL);
			} else {
				vnc = g_strdup(optarg);
			}
			if (*vnc) {	/* '' turns VNC off */
				char msg[256];

				if (parse_vnc_addr(vnc, NULL, msg, sizeof(msg)) < 0) {
					ERR("%s", msg);
					return 2;
				}
			}
			break;
		case 'p':
			g_free(vnc_pw);
			vnc_pw = g_canonicalize_filename(optarg, NULL);
			break;
		case 'h':
			start_usage(stdout);
			return 0;
		default:
			start_usage(stderr);
			return 2;
		}
	}
	if (argc - optind != 1) {
		start_usage(stderr);
		return 2;
	}
	name = argv[optind];
	if (need_vm(name) < 0)
		return 1;
	exe = g_file_read_link("/proc/self/exe", NULL);
	so.exe = exe;
	so.display = display;
	so.vnc = vnc;
	so.vnc_password_file = vnc_pw;
	if (vm_start(name, &so, &vm_pid, line, sizeof(line)) < 0) {
		ERR("%s", line);
		return 1;
	}
	printf("started VM '%s' (pid %d)\n", name, (int)vm_pid);
	return 0;
}

/* ---- stop, pause, resume, reset, status, screenshot ------------------------- */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* After the VM closed its socket: wait for its process @pid to end (it
 * drops vm.pid's lock just before). */
static void wait_exited(pid_t pid, int timeout_ms)
{
	long long deadline = now_ms() + timeout_ms;

	while (pid > 0 && kill(pid, 0) == 0 && now_ms() < deadline)
		g_usleep(10000);
}

int cmd_stop(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "force", no_argument, NULL, 'f' },
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	g_autoptr(JsonObject) args = json_object_new();
	struct ctl_conn *c;
	unsigned timeout = 60;
	bool force = false;
	pid_t pid;
	const char *name;
	char err[512];
	int opt, r;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "fh", opts, NULL)) != -1) {
		switch (opt) {
		case 'f': force = true; break;
		case 't':
			if (parse_uint(optarg, 1, 86400, &timeout) < 0) {
				ERR("--timeout '%s': give seconds, 1 to 86400", optarg);
				return 2;
			}
			break;
		default:
			fprintf(opt == 'h' ? stdout : stderr,
				"usage: vivarium stop NAME [--force] [--timeout SEC]\n\n"
				"Presses the VM's ACPI power button and waits for the guest to power off;\n"
				"after SEC seconds (default 60), or at once with --force, pulls the plug.\n");
			return opt == 'h' ? 0 : 2;
		}
	}
	if (argc - optind != 1) {
		ERR("usage: vivarium stop NAME [--force] [--timeout SEC]");
		return 2;
	}
	name = argv[optind];
	if (need_running(name, &pid) < 0)
		return 1;
	json_object_set_boolean_member(args, "force", force);
	json_object_set_int_member(args, "timeout", timeout);
	r = ctl_connect(name, &c, err, sizeof(err));
	if (r == 0)
		r = ctl_call(c, "stop", args, REQUEST_TIMEOUT_MS, NULL, err, sizeof(err));
	if (r == 0 && ctl_wait_closed(c, (int)(timeout + 30) * 1000) < 0) {
		snprintf(err, sizeof(err), "VM '%s' did not stop within %u s", name, timeout + 30);
		r = -ETIMEDOUT;
	}
	if (c)
		ctl_close(c);
	if (r < 0) {
		ERR("%s", err);
		return 1;
	}
	wait_exited(pid, 10000);
	return 0;
}

/* One request, print its result as JSON with --json, else @done. */
/* status: the guest additions' report, if any: "  guest: OS, IPs". */
static void print_guest(JsonObject *o)
{
	JsonNode *n = json_object_get_member(o, "guest");
	JsonObject *g;
	JsonArray *a;

	if (!n || !JSON_NODE_HOLDS_OBJECT(n))
		return;
	g = json_node_get_object(n);
	a = json_object_has_member(g, "addresses") ? json_object_get_array_member(g, "addresses") : NULL;
	printf("  guest: %s", json_object_get_string_member_with_default(g, "os", "?"));
	for (guint i = 0; a && i < json_array_get_length(a); i++)
		printf("%s%s", i ? ", " : "; ip ", json_array_get_string_element(a, i));
	printf("\n");
}

static int simple_command(int argc, char **argv, const char *cmd,
			  const char *done)
{
	g_autoptr(JsonNode) res = NULL;
	bool json = argc == 3 && !strcmp(argv[2], "--json");
	const char *name;
	char err[512];

	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: vivarium %s NAME%s\n", cmd, !strcmp(cmd, "status") ? " [--json]" : "");
		return 0;
	}
	if (argc != 2 && !(argc == 3 && json && !strcmp(cmd, "status"))) {
		ERR("usage: vivarium %s NAME%s", cmd, !strcmp(cmd, "status") ? " [--json]" : "");
		return 2;
	}
	name = argv[1];
	if (need_vm(name) < 0)
		return 1;
	if (!vmlib_running(name, NULL)) {
		if (!strcmp(cmd, "status")) {
			if (json)
				printf("{\"name\": \"%s\", \"state\": \"stopped\"}\n", name);
			else
				printf("%s: stopped\n", name);
			return 0;
		}
		ERR("VM '%s' is not running", name);
		return 1;
	}
	if (ctl_simple(name, cmd, NULL, REQUEST_TIMEOUT_MS, &res, err, sizeof(err)) < 0) {
		ERR("%s: %s", cmd, err);
		return 1;
	}
	if (!strcmp(cmd, "status") && res && JSON_NODE_HOLDS_OBJECT(res)) {
		JsonObject *o = json_node_get_object(res);

		if (json) {
			g_autoptr(JsonGenerator) gen = json_generator_new();
			g_autofree char *text = NULL;

			json_generator_set_pretty(gen, TRUE);
			json_generator_set_root(gen, res);
			text = json_generator_to_data(gen, NULL);
			printf("%s\n", text);
		} else {
			printf("%s: %s (pid %" G_GINT64_FORMAT ", up %" G_GINT64_FORMAT " s, %" G_GINT64_FORMAT " boots; pointer %s, keyboard %s)\n",
			       name, json_object_get_string_member_with_default(o, "state", "?"),
			       json_object_get_int_member_with_default(o, "pid", 0),
			       json_object_get_int_member_with_default(o, "uptime_ms", 0) / 1000,
			       json_object_get_int_member_with_default(o, "boots", 0),
			       json_object_get_string_member_with_default(o, "pointer", "?"),
			       json_object_get_string_member_with_default(o, "keyboard", "?"));
			print_guest(o);
		}
	} else if (done) {
		printf("%s %s\n", name, done);
	}
	return 0;
}

int cmd_pause(int argc, char **argv)  { return simple_command(argc, argv, "pause", "paused"); }
int cmd_resume(int argc, char **argv) { return simple_command(argc, argv, "resume", "resumed"); }
int cmd_reset(int argc, char **argv)  { return simple_command(argc, argv, "reset", "reset"); }
int cmd_status(int argc, char **argv) { return simple_command(argc, argv, "status", NULL); }

int cmd_screenshot(int argc, char **argv)
{
	g_autoptr(JsonObject) args = json_object_new();
	char err[512];

	g_autoptr(JsonNode) result = NULL;
	g_autofree char *abs = NULL;
	bool text;

	if (argc != 3) {
		ERR("usage: vivarium screenshot NAME FILE.png | --text");
		return 2;
	}
	text = !strcmp(argv[2], "--text");
	if (need_running(argv[1], NULL) < 0)
		return 1;
	if (text) {
		json_object_set_string_member(args, "format", "text");
		if (ctl_simple(argv[1], "screenshot", args, REQUEST_TIMEOUT_MS, &result,
			       err, sizeof(err)) < 0) {
			ERR("screenshot: %s", err);
			return 1;
		}
	} else {
		/* The file is ours to make, with our rights, in the folder we
		 * name; the VM's process (sandboxed: it may write only its own
		 * folder) writes the PNG into it through the fd we pass. */
		struct ctl_conn *c;
		struct newfile nf;
		int r;

		abs = g_canonicalize_filename(argv[2], NULL);
		if (png_file_begin(abs, &nf, err, sizeof(err)) < 0) {
			ERR("screenshot: %s", err);
			return 1;
		}
		json_object_set_boolean_member(args, "fd", TRUE);
		r = ctl_connect(argv[1], &c, err, sizeof(err));
		if (r == 0) {
			r = ctl_call_fd(c, "screenshot", args, nf.fd, REQUEST_TIMEOUT_MS,
					&result, err, sizeof(err));
			ctl_close(c);
		}
		if (r == 0)
			r = newfile_commit(&nf, true, err, sizeof(err));
		else
			newfile_abort(&nf);
		if (r < 0) {
			ERR("screenshot: %s", err);
			return 1;
		}
	}
	if (text && result && JSON_NODE_HOLDS_OBJECT(result))
		fputs(json_object_get_string_member_with_default(
			      json_node_get_object(result), "text", ""), stdout);
	return 0;
}

/* ---- save and discard --------------------------------------------------------- */

int cmd_save(int argc, char **argv)
{
	g_autoptr(JsonNode) res = NULL;
	struct ctl_conn *c = NULL;
	const char *name;
	char err[512];
	pid_t pid;
	int r;

	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: vivarium save NAME\n\n"
		       "Saves the running VM's state (memory, devices, vCPUs) in its folder and\n"
		       "stops it; 'vivarium start NAME' resumes it where it was.  'vivarium\n"
		       "discard NAME' drops a saved state instead.\n");
		return 0;
	}
	if (argc != 2) {
		ERR("usage: vivarium save NAME");
		return 2;
	}
	name = argv[1];
	if (need_running(name, &pid) < 0)
		return 1;
	r = ctl_connect(name, &c, err, sizeof(err));
	/* Writing memory takes as long as the disk needs. */
	if (r == 0)
		r = ctl_call(c, "save", NULL, 600000, &res, err, sizeof(err));
	if (r == 0 && ctl_wait_closed(c, 60000) < 0) {
		snprintf(err, sizeof(err), "VM '%s' saved its state but did not stop", name);
		r = -ETIMEDOUT;
	}
	if (c)
		ctl_close(c);
	if (r < 0) {
		ERR("save: %s", err);
		return 1;
	}
	wait_exited(pid, 10000);
	if (res && JSON_NODE_HOLDS_OBJECT(res)) {
		JsonObject *o = json_node_get_object(res);

		printf("saved VM '%s' (%" G_GINT64_FORMAT " MiB of memory, %" G_GINT64_FORMAT
		       " MiB written; paused %.0f ms)\n", name,
		       json_object_get_int_member_with_default(o, "memory", 0) >> 20,
		       json_object_get_int_member_with_default(o, "memory_written", 0) >> 20,
		       json_object_get_double_member_with_default(o, "pause_ms", 0));
	}
	return 0;
}

int cmd_discard(int argc, char **argv)
{
	g_autofree char *state = NULL, *ram = NULL;
	const char *name;

	if (argc != 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		fprintf(argc == 2 ? stdout : stderr,
			"usage: vivarium discard NAME\n\n"
			"Drops the VM's saved state ('vivarium save'): its next start boots afresh.\n");
		return argc == 2 ? 0 : 2;
	}
	name = argv[1];
	if (need_vm(name) < 0)
		return 1;
	if (vmlib_running(name, NULL)) {
		ERR("VM '%s' is running", name);
		return 1;
	}
	if (!vmlib_saved(name)) {
		ERR("VM '%s' has no saved state", name);
		return 1;
	}
	state = vmlib_vm_file(name, VM_SAVED_STATE_FILE);
	ram = vmlib_vm_file(name, VM_SAVED_RAM_FILE);
	/* The state file names the memory file: it goes first. */
	if (unlink(state) < 0 || (unlink(ram) < 0 && errno != ENOENT)) {
		ERR("cannot remove the saved state of '%s': %s", name, g_strerror(errno));
		return 1;
	}
	printf("discarded the saved state of VM '%s'\n", name);
	return 0;
}

/* ---- console ----------------------------------------------------------------- */

struct console {
	int sock;
	int wake[2];		/* the escape (Ctrl-A x) wakes the main loop */
	pthread_mutex_t lock;
	bool detached;
};

/* Typed bytes (Ctrl-A escape already applied by the stdio chardev). */
static size_t console_receive(void *opaque, const uint8_t *buf, size_t len)
{
	struct console *con = opaque;
	size_t done = 0;

	while (done < len) {
		ssize_t n = send(con->sock, buf + done, len - done, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return len;	/* the VM is gone: the main loop sees it */
		done += (size_t)n;
	}
	return len;
}

static void console_quit(void *opaque)
{
	struct console *con = opaque;

	con->detached = true;
	(void)!write(con->wake[1], "q", 1);
}

int cmd_console(int argc, char **argv)
{
	g_autoptr(JsonObject) args = json_object_new();
	struct console con = { .sock = -1, .wake = { -1, -1 } };
	struct chardev *term;
	struct ctl_conn *c;
	const char *name, *pending;
	size_t npending;
	char err[512];
	int r;

	if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: vivarium console NAME\n\n"
		       "Attaches this terminal to the VM's serial console.  Ctrl-A x detaches\n"
		       "(the VM keeps running); Ctrl-A Ctrl-A types a Ctrl-A.  It also detaches\n"
		       "when its standard input ends (`printf 'ls\\n' | vivarium console NAME`).\n");
		return 0;
	}
	if (argc != 2) {
		ERR("usage: vivarium console NAME");
		return 2;
	}
	name = argv[1];
	if (need_vm(name) < 0)
		return 1;
	if (!vmlib_running(name, NULL)) {
		ERR("VM '%s' is not running (start it with 'vivarium start %s')", name, name);
		return 1;
	}
	/* Replay the last screenful or so of output. */
	json_object_set_int_member(args, "history", 2048);
	r = ctl_connect(name, &c, err, sizeof(err));
	if (r == 0)
		r = ctl_call(c, "attach-serial", args, REQUEST_TIMEOUT_MS, NULL, err, sizeof(err));
	if (r < 0) {
		if (c)
			ctl_close(c);
		ERR("console: %s", err);
		return 1;
	}
	if (isatty(STDIN_FILENO))
		fprintf(stderr, "[vivarium: console of '%s'; Ctrl-A x detaches]\r\n", name);
	con.sock = ctl_fd(c);
	if (pipe2(con.wake, O_CLOEXEC) < 0) {
		ctl_close(c);
		ERR("pipe: %s", g_strerror(errno));
		return 1;
	}
	pthread_mutex_init(&con.lock, NULL);
	signal(SIGPIPE, SIG_IGN);
	term = chardev_stdio_new();	/* raw terminal, Ctrl-A escape */
	if (!term) {
		ctl_close(c);
		ERR("cannot use the terminal");
		return 1;
	}
	pending = ctl_pending(c, &npending);
	if (npending)
		chardev_write(term, (const uint8_t *)pending, npending);
	ctl_pending_clear(c);
	{
		struct chardev_sink sink = {
			.receive = console_receive, .opaque = &con,
			.quit = console_quit, .quit_opaque = &con,
			.eof = console_quit,	/* `cmds | vivarium console` ends */
		};

		chardev_start_input(term, &sink, &con.lock);
	}
	for (;;) {
		struct pollfd p[2] = {
			{ .fd = con.sock, .events = POLLIN },
			{ .fd = con.wake[0], .events = POLLIN },
		};
		uint8_t buf[4096];
		ssize_t n;

		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (p[1].revents)
			break;
		n = recv(con.sock, buf, sizeof(buf), 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		chardev_write(term, buf, (size_t)n);
	}
	chardev_free(term);	/* restores the terminal */
	ctl_close(c);
	close(con.wake[0]);
	close(con.wake[1]);
	pthread_mutex_destroy(&con.lock);
	if (con.detached)
		fprintf(stderr, "\n[vivarium: detached; VM '%s' keeps running]\n", name);
	else
		fprintf(stderr, "\n[vivarium: VM '%s' stopped]\n", name);
	return 0;
}

/* vivarium resize NAME WIDTHxHEIGHT: the control socket's display-size. */
int cmd_resize(int argc, char **argv)
{
	g_autoptr(JsonObject) args = json_object_new();
	g_autoptr(JsonNode) res = NULL;
	unsigned w, h;
	char x, err[512];

	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: vivarium resize NAME WIDTHxHEIGHT\n\n"
		       "Offers the guest a screen of WIDTHxHEIGHT pixels, as resizing the\n"
		       "console window does: with vga=virtio, the guest's virtio-gpu driver\n"
		       "sees it as the preferred mode (and spice-vdagent applies it in X).\n");
		return 0;
	}
	if (argc != 3 || sscanf(argv[2], "%u%c%u", &w, &x, &h) != 3 || x != 'x' ||
	    !w || !h || w > CONSOLE_MAX_WIDTH || h > CONSOLE_MAX_HEIGHT) {
		ERR("usage: vivarium resize NAME WIDTHxHEIGHT (1x1 to %ux%u)",
		    CONSOLE_MAX_WIDTH, CONSOLE_MAX_HEIGHT);
		return 2;
	}
	if (need_running(argv[1], NULL) < 0)
		return 1;
	json_object_set_int_member(args, "width", w);
	json_object_set_int_member(args, "height", h);
	if (ctl_simple(argv[1], "display-size", args, REQUEST_TIMEOUT_MS, &res,
		       err, sizeof(err)) < 0) {
		ERR("resize: %s", err);
		return 1;
	}
	printf("offered %ux%u to VM '%s'\n", w, h, argv[1]);
	return 0;
}

/* vivarium mute NAME [on|off]: the control socket's audio-mute. */
int cmd_mute(int argc, char **argv)
{
	g_autoptr(JsonObject) args = json_object_new();
	g_autoptr(JsonNode) res = NULL;
	bool mute = argc < 3 || !strcmp(argv[2], "on");
	char err[512];

	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: vivarium mute NAME [on|off]\n\n"
		       "Mutes (on, the default) or unmutes a running VM's sound card on the\n"
		       "host side (audio=pa or none): the host hears, and the guest records,\n"
		       "silence; the guest's own mixer is left alone.\n");
		return 0;
	}
	if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "on") &&
				     strcmp(argv[2], "off"))) {
		ERR("usage: vivarium mute NAME [on|off]");
		return 2;
	}
	if (need_running(argv[1], NULL) < 0)
		return 1;
	json_object_set_boolean_member(args, "mute", mute);
	if (ctl_simple(argv[1], "audio-mute", args, REQUEST_TIMEOUT_MS, &res,
		       err, sizeof(err)) < 0) {
		ERR("mute: %s", err);
		return 1;
	}
	printf("VM '%s': sound %s\n", argv[1], mute ? "muted" : "on");
	return 0;
}

/* vivarium clipboard NAME [--set TEXT | --wait MS]: the guest's clipboard. */
int cmd_clipboard(int argc, char **argv)
{
	g_autoptr(JsonObject) args = json_object_new();
	g_autoptr(JsonNode) res = NULL;
	bool set = argc == 4 && !strcmp(argv[2], "--set");
	bool wait = argc == 4 && !strcmp(argv[2], "--wait");
	unsigned long ms = 0;
	char err[512], *end;

	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		printf("usage: vivarium clipboard NAME [--set TEXT | --wait MS]\n\n"
		       "Prints the guest's clipboard text (what spice-vdagent in the guest\n"
		       "last offered), or with --set makes TEXT the clipboard the guest\n"
		       "pastes.  With --wait, waits up to MS milliseconds (10000 at most)\n"
		       "for the guest's next copy and prints it (exit 1 if none came).\n"
		       "Needs the guest agent (agents=on, spice-vdagent in the guest).\n");
		return 0;
	}
	if (wait) {
		errno = 0;
		ms = strtoul(argv[3], &end, 10);
		if (!*argv[3] || *end || errno || ms > 10000) {
			ERR("clipboard: --wait takes milliseconds, 0 to 10000");
			return 2;
		}
	}
	if (argc != 2 && !set && !wait) {
		ERR("usage: vivarium clipboard NAME [--set TEXT | --wait MS]");
		return 2;
	}
	if (need_running(argv[1], NULL) < 0)
		return 1;
	if (set)
		json_object_set_string_member(args, "text", argv[3]);
	if (wait)
		json_object_set_int_member(args, "wait_ms", (gint64)ms);
	if (ctl_simple(argv[1], set ? "clipboard-set" : "clipboard-get",
		       set || wait ? args : NULL, REQUEST_TIMEOUT_MS + (int)ms,
		       &res, err, sizeof(err)) < 0) {
		ERR("clipboard: %s", err);
		return 1;
	}
	if (!set && res && JSON_NODE_HOLDS_OBJECT(res)) {
		JsonObject *o = json_node_get_object(res);
		JsonNode *t = json_object_get_member(o, "text");

		if (wait && !json_object_get_boolean_member_with_default(o, "changed", FALSE)) {
			fprintf(stderr, "vivarium: no copy in the guest within %lu ms%s\n", ms,
				json_object_get_boolean_member_with_default(o, "connected", FALSE) ?
				"" : " (its clipboard agent is not connected)");
			return 1;
		}
		if (t && JSON_NODE_HOLDS_VALUE(t) &&
		    json_node_get_value_type(t) == G_TYPE_STRING)
			printf("%s\n", json_node_get_string(t));
		else if (!json_object_get_boolean_member_with_default(o, "connected", FALSE))
			fprintf(stderr, "vivarium: the guest's clipboard agent is not connected\n");
	}
	return 0;
}
