/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_usb_host.c - host USB passthrough without a device:
 * naming devices (VID:PID, BUS-PORT paths), a fake sysfs tree listed and
 * searched, the root port a device of each speed gets, the node's
 * permission message, and the libusb context: started, stopped, and an fd
 * that is not a USB device refused with one line.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testlib.h"

#include "log.h"
#include "usb/usb_host.h"

static void test_parse(void)
{
	struct usb_host_sel s;
	char err[256], buf[64];

	CHECK_EQ(usb_host_parse("046d:C52b", &s, err, sizeof(err)), 0);
	CHECK(s.by_id);
	CHECK_EQ(s.vid, 0x046d);
	CHECK_EQ(s.pid, 0xc52b);
	usb_host_sel_format(&s, buf, sizeof(buf));
	CHECK(!strcmp(buf, "046d:c52b"));
	CHECK_EQ(usb_host_parse("1:2", &s, err, sizeof(err)), 0);
	CHECK_EQ(s.vid, 1);

	CHECK_EQ(usb_host_parse("3-1.4.2", &s, err, sizeof(err)), 0);
	CHECK(!s.by_id);
	CHECK_EQ(s.bus, 3);
	CHECK_EQ(s.nports, 3);
	CHECK_EQ(s.ports[0], 1);
	CHECK_EQ(s.ports[2], 2);
	usb_host_sel_format(&s, buf, sizeof(buf));
	CHECK(!strcmp(buf, "3-1.4.2"));
	CHECK_EQ(usb_host_parse("1-7", &s, err, sizeof(err)), 0);

	static const char *const bad[] = {
		"", "046d", "046d:", ":c52b", "12345:1", "046g:0001", "1-",
		"1-2.", "0-1", "1-0", "256-1", "1-256", "1-1.1.1.1.1.1.1.1",
		"1-2:1.0", "usb1", "1--2", "-1", "1-2x",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		CHECK_EQ(usb_host_parse(bad[i], &s, err, sizeof(err)), -EINVAL);
		CHECK(strstr(err, "VID:PID") != NULL);
		CHECK(strchr(err, '\n') == NULL);
	}
}

static char root[] = "/tmp/usbhost-XXXXXX";

static void put(const char *dev, const char *file, const char *val)
{
	char p[512];
	FILE *f;

	snprintf(p, sizeof(p), "%s/%s", root, dev);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/%s/%s", root, dev, file);
	f = fopen(p, "w");
	CHECK(f != NULL);
	if (f) {
		fprintf(f, "%s\n", val);
		fclose(f);
	}
}

static void fake_device(const char *name, const char *bus, const char *dev,
			const char *vid, const char *pid, const char *speed,
			const char *product)
{
	put(name, "busnum", bus);
	put(name, "devnum", dev);
	put(name, "idVendor", vid);
	put(name, "idProduct", pid);
	put(name, "speed", speed);
	put(name, "bDeviceClass", "00");
	if (product)
		put(name, "product", product);
}

static void test_sysfs(void)
{
	struct usb_host_info *v, info;
	struct usb_host_sel s;
	char err[512];
	size_t n;

	CHECK(mkdtemp(root) != NULL);
	/* Root hubs and interfaces are not devices. */
	fake_device("usb1", "1", "1", "1d6b", "0002", "480", "EHCI Host Controller");
	fake_device("1-0:1.0", "1", "1", "1d6b", "0002", "480", NULL);
	fake_device("1-2.3", "1", "5", "046d", "c52b", "12", "USB Receiver\x01");
	fake_device("1-1", "1", "4", "0781", "5583", "480", "Ultra Fit");
	fake_device("2-1", "2", "2", "0bda", "8153", "5000", NULL);
	put("1-1", "manufacturer", "SanDisk");

	CHECK_EQ(usb_host_list(root, &v, &n, err, sizeof(err)), 0);
	CHECK_EQ(n, 3);
	if (n == 3) {
		CHECK(!strcmp(v[0].name, "1-1"));
		CHECK(!strcmp(v[1].name, "1-2.3"));
		CHECK(!strcmp(v[2].name, "2-1"));
		CHECK_EQ(v[0].vid, 0x0781);
		CHECK_EQ(v[0].speed, USB_SPEED_HIGH);
		CHECK(!strcmp(v[0].manufacturer, "SanDisk"));
		CHECK(!strcmp(v[0].product, "Ultra Fit"));
		CHECK(!strcmp(v[0].node, "/dev/bus/usb/001/004"));
		CHECK_EQ(v[1].speed, USB_SPEED_FULL);
		CHECK(!strcmp(v[1].product, "USB Receiver?"));	/* sanitised */
		CHECK_EQ(v[2].speed, USB_SPEED_SUPER);
		CHECK_EQ(v[2].mbps, 5000);
		CHECK(!strcmp(v[2].product, ""));
	}
	free(v);

	CHECK_EQ(usb_host_parse("0bda:8153", &s, err, sizeof(err)), 0);
	CHECK_EQ(usb_host_find(root, &s, &info, err, sizeof(err)), 0);
	CHECK(!strcmp(info.name, "2-1"));
	CHECK_EQ(usb_host_parse("1-2.3", &s, err, sizeof(err)), 0);
	CHECK_EQ(usb_host_find(root, &s, &info, err, sizeof(err)), 0);
	CHECK_EQ(info.pid, 0xc52b);
	CHECK_EQ(usb_host_parse("dead:beef", &s, err, sizeof(err)), 0);
	CHECK_EQ(usb_host_find(root, &s, &info, err, sizeof(err)), -ENOENT);
	CHECK(!strcmp(err, "no USB device dead:beef on this host (`vivarium usb host` lists them)"));

	/* A host without USB: an empty list, no error. */
	CHECK_EQ(usb_host_list("/nonexistent/usb", &v, &n, err, sizeof(err)), 0);
	CHECK_EQ(n, 0);
	free(v);

	/* The node: missing, and (unless root) not ours to open. */
	snprintf(info.node, sizeof(info.node), "%s/nonode", root);
	CHECK_EQ(usb_host_open_node(&info, err, sizeof(err)), -ENOENT);
	CHECK(strstr(err, info.node) != NULL);
	snprintf(info.node, sizeof(info.node), "%s/1-1/speed", root);
	chmod(info.node, 0);
	if (geteuid() != 0) {
		CHECK_EQ(usb_host_open_node(&info, err, sizeof(err)), -EACCES);
		CHECK(strstr(err, "udev rule") != NULL);
	}
	{
		char cmd[600];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
		CHECK_EQ(system(cmd), 0);
	}
}

static void test_ports(void)
{
	unsigned hid = 1u << 1 | 1u << 2;

	CHECK_EQ(usb_host_pick_port(hid, USB_SPEED_HIGH), 3);
	CHECK_EQ(usb_host_pick_port(hid, USB_SPEED_LOW), 3);
	CHECK_EQ(usb_host_pick_port(hid | 1u << 3, USB_SPEED_FULL), 4);
	CHECK_EQ(usb_host_pick_port(hid | 1u << 3 | 1u << 4, USB_SPEED_HIGH),
		 -ENOSPC);
	CHECK_EQ(usb_host_pick_port(hid, USB_SPEED_SUPER), 5);
	CHECK_EQ(usb_host_pick_port(hid | 0x60, USB_SPEED_SUPER), 7);
	CHECK_EQ(usb_host_pick_port(hid | 0x1e0, USB_SPEED_SUPER), -ENOSPC);
	/* USB 3 ports are never given to a USB 2 device, nor the reverse. */
	CHECK_EQ(usb_host_pick_port(hid | 1u << 3 | 1u << 4, USB_SPEED_SUPER), 5);
}

static unsigned threads(void)
{
	DIR *d = opendir("/proc/self/task");
	unsigned n = 0;

	if (!d)
		return 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n - 2;
}

static void test_ctx(void)
{
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct usb_host_info info = { .name = "1-1", .vid = 1, .pid = 2,
				      .speed = USB_SPEED_HIGH };
	struct usb_host_ctx *c;
	unsigned before = threads();
	char err[256] = "";
	int fd;

	c = usb_host_ctx_new(&lock, err, sizeof(err));
	CHECK(c != NULL);
	if (!c) {
		fprintf(stderr, "  %s\n", err);
		return;
	}
	/* One event thread, no discovery (no hotplug monitor thread). */
	CHECK_EQ(threads(), before + 1);
	/* Not a usbfs node: refused with a line naming the device. */
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	CHECK(fd >= 0);
	CHECK(usb_host_open(c, fd, &info, err, sizeof(err)) == NULL);
	CHECK(strstr(err, "USB 1-1") != NULL);
	CHECK(fcntl(fd, F_GETFD) < 0);	/* closed on failure */
	usb_host_ctx_free(c);
	CHECK_EQ(threads(), before);
}

int main(void)
{
	log_set_level(LOG_ERROR);
	RUN_TEST(test_parse);
	RUN_TEST(test_sysfs);
	RUN_TEST(test_ports);
	RUN_TEST(test_ctx);
	return check_finish();
}
