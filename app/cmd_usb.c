/* SPDX-License-Identifier: MIT */
/*
 * app/cmd_usb.c - `vivarium usb host|attach|detach|list`: the host's USB
 * devices (sysfs), and passing them through to a running library VM over
 * its control socket (docs/control-protocol.md: usb-attach, usb-detach,
 * usb-list).
 *
 * attach opens the device node here, with the user's rights, and hands
 * the fd to the VM (SCM_RIGHTS): the VM's sandbox has no /dev/bus/usb.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <json-glib/json-glib.h>

#include "commands.h"
#include "ctl.h"
#include "usb/usb_host.h"

#define ERR(...) (fprintf(stderr, "vivarium: " __VA_ARGS__), fputc('\n', stderr))
#define USB_TIMEOUT_MS	15000

static void usage(FILE *f)
{
	fprintf(f,
		"usage: vivarium usb host\n"
		"       vivarium usb attach NAME VID:PID|BUS-PORT[.PORT...]\n"
		"       vivarium usb detach NAME VID:PID|BUS-PORT[.PORT...]|ROOTPORT\n"
		"       vivarium usb list NAME\n\n"
		"host lists this host's USB devices: BUS-PORT path, VID:PID, speed, names,\n"
		"and whether you may open them.  attach passes one through to running VM\n"
		"NAME (it needs usb=on; its host driver lets go of it until detach or the\n"
		"VM stops); detach gives it back; list shows what NAME has.  To attach a\n"
		"device whenever the VM starts, add [usbN] host=VID:PID to its vm.conf.\n");
}

static const char *speed_text(const struct usb_host_info *i)
{
	switch (i->speed) {
	case USB_SPEED_LOW: return "low";
	case USB_SPEED_FULL: return "full";
	case USB_SPEED_HIGH: return "high";
	case USB_SPEED_SUPER: return "super";
	default: return "?";
	}
}

static int usb_host_cmd(void)
{
	struct usb_host_info *v;
	char err[256];
	size_t n;

	if (usb_host_list(NULL, &v, &n, err, sizeof(err)) < 0) {
		ERR("%s", err);
		return 1;
	}
	if (!n)
		printf("no USB devices on this host\n");
	else
		printf("%-10s %-9s %-5s %-4s %s\n", "PATH", "ID", "SPEED", "OPEN", "NAME");
	for (size_t i = 0; i < n; i++)
		printf("%-10s %04x:%04x %-5s %-4s %s%s%s\n", v[i].name, v[i].vid,
		       v[i].pid, speed_text(&v[i]),
		       access(v[i].node, R_OK | W_OK) == 0 ? "yes" : "no",
		       v[i].manufacturer, v[i].manufacturer[0] ? " " : "",
		       v[i].product[0] ? v[i].product : "(no name)");
	free(v);
	return 0;
}

static int usb_attach(const char *name, const char *spec)
{
	g_autoptr(JsonObject) args = json_object_new();
	struct usb_host_sel sel;
	struct usb_host_info info;
	JsonNode *res = NULL;
	char err[768], speed[16];
	int fd, r;

	if (usb_host_parse(spec, &sel, err, sizeof(err)) < 0 ||
	    usb_host_find(NULL, &sel, &info, err, sizeof(err)) < 0) {
		ERR("%s", err);
		return 1;
	}
	fd = usb_host_open_node(&info, err, sizeof(err));
	if (fd < 0) {
		ERR("%s", err);
		return 1;
	}
	snprintf(speed, sizeof(speed), "%s",
		 info.speed == USB_SPEED_LOW ? "1.5" : info.speed == USB_SPEED_FULL ? "12" :
		 info.speed == USB_SPEED_HIGH ? "480" : "5000");
	json_object_set_string_member(args, "device", info.name);
	json_object_set_int_member(args, "vid", info.vid);
	json_object_set_int_member(args, "pid", info.pid);
	json_object_set_string_member(args, "speed", speed);
	json_object_set_string_member(args, "product", info.product);
	{
		struct ctl_conn *c;

		r = ctl_connect(name, &c, err, sizeof(err));
		if (r == 0) {
			r = ctl_call_fd(c, "usb-attach", args, fd, USB_TIMEOUT_MS,
					&res, err, sizeof(err));
			ctl_close(c);
		}
	}
	close(fd);
	if (r < 0) {
		ERR("%s", err);
		return 1;
	}
	printf("USB %s (%04x:%04x %s) passed through to VM '%s' on root port %lld\n",
	       info.name, info.vid, info.pid, info.product, name,
	       res && JSON_NODE_HOLDS_OBJECT(res)
	       ? (long long)json_object_get_int_member_with_default(json_node_get_object(res), "port", 0)
	       : 0LL);
	if (res)
		json_node_unref(res);
	return 0;
}

static int usb_detach(const char *name, const char *dev)
{
	g_autoptr(JsonObject) args = json_object_new();
	char err[512];

	json_object_set_string_member(args, "device", dev);
	if (ctl_simple(name, "usb-detach", args, USB_TIMEOUT_MS, NULL, err,
		       sizeof(err)) < 0) {
		ERR("%s", err);
		return 1;
	}
	printf("USB %s given back to the host\n", dev);
	return 0;
}

static int usb_list(const char *name)
{
	JsonNode *res = NULL;
	JsonArray *a;
	char err[512];

	if (ctl_simple(name, "usb-list", NULL, USB_TIMEOUT_MS, &res, err,
		       sizeof(err)) < 0) {
		ERR("%s", err);
		return 1;
	}
	if (!res || !JSON_NODE_HOLDS_OBJECT(res) ||
	    !(a = json_object_get_array_member(json_node_get_object(res), "devices"))) {
		ERR("usb-list: a reply without \"devices\"");
		if (res)
			json_node_unref(res);
		return 1;
	}
	if (!json_array_get_length(a))
		printf("VM '%s' has no host USB devices\n", name);
	for (guint i = 0; i < json_array_get_length(a); i++) {
		JsonObject *o = json_array_get_object_element(a, i);

		printf("port %lld  %-10s %04llx:%04llx %s%s\n",
		       (long long)json_object_get_int_member_with_default(o, "port", 0),
		       json_object_get_string_member_with_default(o, "device", "?"),
		       (long long)json_object_get_int_member_with_default(o, "vid", 0),
		       (long long)json_object_get_int_member_with_default(o, "pid", 0),
		       json_object_get_string_member_with_default(o, "product", ""),
		       json_object_get_boolean_member_with_default(o, "gone", FALSE)
		       ? "  (unplugged from the host)" : "");
	}
	json_node_unref(res);
	return 0;
}

int cmd_usb(int argc, char **argv)
{
	const char *sub = argc > 1 ? argv[1] : NULL;

	if (!sub || !strcmp(sub, "--help") || !strcmp(sub, "-h")) {
		usage(sub ? stdout : stderr);
		return sub ? 0 : 2;
	}
	if (!strcmp(sub, "host") && argc == 2)
		return usb_host_cmd();
	if (!strcmp(sub, "attach") && argc == 4)
		return usb_attach(argv[2], argv[3]);
	if (!strcmp(sub, "detach") && argc == 4)
		return usb_detach(argv[2], argv[3]);
	if (!strcmp(sub, "list") && argc == 3)
		return usb_list(argv[2]);
	usage(stderr);
	return 2;
}
