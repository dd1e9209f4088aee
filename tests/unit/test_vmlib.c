/* SPDX-License-Identifier: MIT */
/* tests/unit/test_vmlib.c - the VM library's pure parts: name rules,
 * vm.conf parsing and its errors, `edit` assignments, the run-state check
 * on a PID file nobody locks (or only read-locks), the struct
 * machine_config a vm.conf becomes, rm -r that never follows links, and the MAC
 * addresses derived from a VM's UUID. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "check.h"
#include "options.h"
#include "vmlib.h"

static char err[512];

static void test_names(void)
{
	static const char *const good[] = { "a", "demo", "Win_11", "x.y-z+1", "_x" };
	static const char *const bad[] = {
		"", ".hidden", "-x", "a/b", "a b", "..", "a\nb", "é",
		"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", /* 65 */
	};

	for (size_t i = 0; i < G_N_ELEMENTS(good); i++)
		CHECK_EQ(vm_name_check(good[i], err, sizeof(err)), 0);
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		err[0] = 0;
		CHECK_EQ(vm_name_check(bad[i], err, sizeof(err)), -EINVAL);
		CHECK(err[0] != 0 && !strchr(err, '\n'));
	}
	CHECK_EQ(vm_name_check(NULL, err, sizeof(err)), -EINVAL);
}

static int parse(const char *text, struct vm_config *cfg)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();

	err[0] = 0;
	if (!g_key_file_load_from_data(kf, text, -1, 0, NULL))
		return -999;
	return vm_config_from_keyfile(kf, "/lib/vms/t", cfg, err, sizeof(err));
}

static void test_parse(void)
{
	struct vm_config c;

	CHECK_EQ(parse("[vm]\nname=t\n", &c), 0);
	CHECK_EQ(c.memory, VM_DEFAULT_MEMORY);
	CHECK_EQ(c.cpus, 1);
	CHECK_EQ(c.firmware, MACHINE_FW_AUTO);
	CHECK(!strcmp(c.display, "none"));
	CHECK(!c.input_ps2);		/* the virtio tablet and keyboard */
	{
		struct machine_config mc;

		vm_machine_config(&c, NULL, &mc);
		CHECK(!mc.no_virtio_input);
	}
	vm_config_clear(&c);
	/* firmware=uefi: the store is the folder's uefi-vars.fd. */
	CHECK_EQ(parse("[vm]\nname=t\nfirmware=uefi\n", &c), 0);
	CHECK_EQ(c.firmware, MACHINE_FW_UEFI);
	CHECK(c.uefi_vars && !strcmp(c.uefi_vars, "/lib/vms/t/" VM_UEFI_VARS_FILE));
	{
		struct machine_config mc;

		vm_machine_config(&c, NULL, &mc);
		CHECK_EQ(mc.firmware, MACHINE_FW_UEFI);
		CHECK(mc.vars_path == c.uefi_vars);
	}
	vm_config_clear(&c);
	CHECK_EQ(parse("[vm]\nname=t\ninput=ps2\n", &c), 0);
	CHECK(c.input_ps2);
	{
		struct machine_config mc;
		g_autoptr(GKeyFile) kf = g_key_file_new();
		g_autofree char *v = NULL;

		vm_machine_config(&c, NULL, &mc);
		CHECK(mc.no_virtio_input);
		vm_config_to_keyfile(&c, "/lib/vms/t", kf);
		v = g_key_file_get_string(kf, "vm", "input", NULL);
		CHECK(v && !strcmp(v, "ps2"));
	}
	vm_config_clear(&c);
	CHECK_EQ(parse("[vm]\nname=t\ninput=virtio\n", &c), 0);
	CHECK(!c.input_ps2);
	vm_config_clear(&c);

	CHECK_EQ(parse("[vm]\nname=t\nmemory=1536M\ncpus=4\nfirmware=bios\nboot=cdrom\n"
		       "[direct-boot]\nkernel=vmlinuz\ninitrd=/abs/initrd\nappend=quiet\n"
		       "[disk0]\npath=disk.qcow2\nformat=qcow2\ninterface=ata\nreadonly=true\n"
		       "[disk2]\npath=/other.img\n"
		       "[cdrom]\npath=/x.iso\n[future]\nkey=kept\n", &c), 0);
	CHECK_EQ(c.memory, 1536ull << 20);
	CHECK_EQ(c.cpus, 4);
	CHECK_EQ(c.firmware, MACHINE_FW_BIOS);
	CHECK(c.uefi_vars == NULL);
	CHECK_EQ(c.boot, MACHINE_BOOT_CDROM);
	CHECK(!strcmp(c.kernel, "/lib/vms/t/vmlinuz"));	/* relative to the folder */
	CHECK(!strcmp(c.initrd, "/abs/initrd"));
	CHECK_EQ(c.ndisks, 2);
	CHECK(!strcmp(c.disk[0].path, "/lib/vms/t/disk.qcow2"));
	CHECK_EQ(c.disk[0].format, BLK_FMT_QCOW2);
	CHECK_EQ(c.disk[0].bus, MACHINE_IF_ATA);
	CHECK(c.disk[0].readonly);
	CHECK_EQ(c.disk[1].format, BLK_FMT_AUTO);
	CHECK_EQ(c.disk[1].bus, MACHINE_IF_VIRTIO);
	CHECK(!strcmp(c.cdrom, "/x.iso"));

	/* ... and what the machine gets. */
	{
		struct machine_config mc;

		vm_machine_config(&c, NULL, &mc);
		CHECK_EQ(mc.ram_size, 1536ull << 20);
		CHECK_EQ(mc.ncpus, 4);
		CHECK(!strcmp(mc.kernel_path, "/lib/vms/t/vmlinuz"));
		CHECK(!strcmp(mc.cmdline, "quiet"));
		CHECK_EQ(mc.ndrives, 3);
		CHECK(mc.drive[2].cdrom && mc.drive[2].readonly);
		CHECK_EQ(mc.drive[2].bus, MACHINE_IF_ATA);
		CHECK(mc.sercon);	/* no display: firmware text on COM1 */
	}
	vm_config_clear(&c);

	/* One line saying what is wrong, for each bad value. */
	static const char *const bad[][2] = {
		{ "[vm]\ncpus=2\n", "no name" },
		{ "[vm]\nname=../x\n", "cannot start" },
		{ "[vm]\nname=t\nmemory=12Q\n", "'12Q'" },
		{ "[vm]\nname=t\nmemory=1000K\n", "MiB" },
		{ "[vm]\nname=t\nmemory=8M\n", "16M" },
		{ "[vm]\nname=t\ncpus=0\n", "cpus" },
		{ "[vm]\nname=t\ncpus=65\n", "cpus" },
		{ "[vm]\nname=t\nfirmware=efi\n", "firmware 'efi'" },
		{ "[vm]\nname=t\nfirmware=uefi\n[direct-boot]\nkernel=/k\n", "firmware=uefi does not boot a kernel" },
		{ "[vm]\nname=t\nboot=net\n", "boot 'net'" },
		{ "[vm]\nname=t\ndisplay=vga\n", "display" },
		{ "[vm]\nname=t\ninput=usb\n", "input 'usb': use virtio or ps2" },
		{ "[vm]\nname=t\nuuid=nope\n", "UUID" },
		{ "[vm]\nname=t\nfirmware=none\n", "kernel" },
		{ "[vm]\nname=t\n[direct-boot]\ninitrd=/i\n", "initrd without a kernel" },
		{ "[vm]\nname=t\n[disk0]\nformat=raw\n", "no path" },
		{ "[vm]\nname=t\n[disk0]\npath=d\nformat=vmdk\n", "vmdk" },
		{ "[vm]\nname=t\n[disk0]\npath=d\ninterface=scsi\n", "scsi" },
		{ "[vm]\nname=t\n[disk0]\npath=d\nreadonly=maybe\n", "readonly" },
		{ "[vm]\nname=t\nvmmouse=yes\n", "vmmouse 'yes'" },
	};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		int r = parse(bad[i][0], &c);

		CHECK_EQ(r, -EINVAL);
		if (!strstr(err, bad[i][1]))
			fprintf(stderr, "case %zu: '%s' lacks '%s'\n", i, err, bad[i][1]);
		CHECK(strstr(err, bad[i][1]) != NULL);
		CHECK(c.name == NULL);	/* cleared on error */
	}
}

static void test_roundtrip(void)
{
	struct vm_config c, d;
	g_autoptr(GKeyFile) kf = g_key_file_new();

	CHECK_EQ(parse("[vm]\nname=t\nmemory=2G\ncpus=3\nnotes=hello\n"
		       "[direct-boot]\nkernel=/k\n[disk0]\npath=disk.qcow2\nformat=qcow2\n", &c), 0);
	vm_config_to_keyfile(&c, "/lib/vms/t", kf);
	{
		g_autofree char *path = g_key_file_get_string(kf, "disk0", "path", NULL);
		g_autofree char *mem = g_key_file_get_string(kf, "vm", "memory", NULL);

		CHECK(path && !strcmp(path, "disk.qcow2"));	/* stays relative */
		CHECK(mem && !strcmp(mem, "2G"));
	}
	CHECK_EQ(vm_config_from_keyfile(kf, "/lib/vms/t", &d, err, sizeof(err)), 0);
	CHECK_EQ(d.memory, c.memory);
	CHECK_EQ(d.cpus, 3);
	CHECK(!strcmp(d.notes, "hello"));
	CHECK(!strcmp(d.disk[0].path, c.disk[0].path));
	vm_config_clear(&c);
	vm_config_clear(&d);
}

/* vga=std|virtio|none: parsed, written only when not std, edited, and
 * what the machine gets. */
static void test_vga(void)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	struct vm_config c;
	struct machine_config mc;

	CHECK_EQ(parse("[vm]\nname=t\n", &c), 0);
	CHECK(!strcmp(c.vga, "std"));
	vm_machine_config(&c, NULL, &mc);
	CHECK(!mc.no_vga && !mc.virtio_gpu);
	vm_config_clear(&c);
	CHECK_EQ(parse("[vm]\nname=t\nvga=virtio\n", &c), 0);
	vm_machine_config(&c, NULL, &mc);
	CHECK(!mc.no_vga && mc.virtio_gpu);
	vm_config_to_keyfile(&c, "/lib/vms/t", kf);
	CHECK(g_key_file_has_key(kf, "vm", "vga", NULL));
	vm_config_clear(&c);
	CHECK_EQ(parse("[vm]\nname=t\nvga=none\n", &c), 0);
	vm_machine_config(&c, NULL, &mc);
	CHECK(mc.no_vga && !mc.virtio_gpu);
	vm_config_clear(&c);
	CHECK_EQ(parse("[vm]\nname=t\nvga=cirrus\n", &c), -EINVAL);
	CHECK(strstr(err, "vga 'cirrus'") != NULL);

	CHECK_EQ(vm_config_set(kf, "vga=std", err, sizeof(err)), 0);
	CHECK(!g_key_file_has_key(kf, "vm", "vga", NULL));
	CHECK_EQ(vm_config_set(kf, "vga=virtio", err, sizeof(err)), 0);
	CHECK(g_key_file_has_key(kf, "vm", "vga", NULL));
	CHECK_EQ(vm_config_set(kf, "vga=qxl", err, sizeof(err)), -EINVAL);
}

static void test_set(void)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autofree char *v = NULL;
	char path[] = "/tmp/vivarium-vmlib-XXXXXX";
	char *assign;
	int fd = mkstemp(path);

	CHECK(fd >= 0);
	close(fd);
	g_key_file_set_string(kf, "vm", "name", "t");
	CHECK_EQ(vm_config_set(kf, "memory=2048M", err, sizeof(err)), 0);
	v = g_key_file_get_string(kf, "vm", "memory", NULL);
	CHECK(v && !strcmp(v, "2G"));
	CHECK_EQ(vm_config_set(kf, "cpus=8", err, sizeof(err)), 0);
	CHECK_EQ(g_key_file_get_integer(kf, "vm", "cpus", NULL), 8);
	CHECK_EQ(vm_config_set(kf, "notes=a=b", err, sizeof(err)), 0);	/* first '=' splits */
	g_free(v);
	v = g_key_file_get_string(kf, "vm", "notes", NULL);
	CHECK(v && !strcmp(v, "a=b"));
	CHECK_EQ(vm_config_set(kf, "notes=", err, sizeof(err)), 0);
	CHECK(!g_key_file_has_key(kf, "vm", "notes", NULL));
	assign = g_strdup_printf("cdrom=%s", path);
	CHECK_EQ(vm_config_set(kf, assign, err, sizeof(err)), 0);
	g_free(assign);
	g_free(v);
	v = g_key_file_get_string(kf, "cdrom", "path", NULL);
	CHECK(v && !strcmp(v, path));
	/* input: only ps2 is written (virtio is the default). */
	CHECK_EQ(vm_config_set(kf, "input=ps2", err, sizeof(err)), 0);
	g_free(v);
	v = g_key_file_get_string(kf, "vm", "input", NULL);
	CHECK(v && !strcmp(v, "ps2"));
	CHECK_EQ(vm_config_set(kf, "input=virtio", err, sizeof(err)), 0);
	CHECK(!g_key_file_has_key(kf, "vm", "input", NULL));

	static const char *const bad[] = {
		"memory=12Q", "memory=", "cpus=0", "cpus=x", "firmware=efi", "boot=usb",
		"display=gtk", "input=usb", "input=", "cdrom=/nonexistent.iso", "kernel=/", "colour=blue", "memory",
		"=1",
	};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		err[0] = 0;
		CHECK_EQ(vm_config_set(kf, bad[i], err, sizeof(err)), -EINVAL);
		CHECK(err[0] != 0);
	}
	unlink(path);
}

/* vmmouse: on unless vm.conf says off; only "off" is written; the
 * machine's switch follows. */
static void test_vmmouse_key(void)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GKeyFile) out = g_key_file_new();
	struct vm_config c;
	struct machine_config mc;

	CHECK_EQ(parse("[vm]\nname=t\n", &c), 0);
	CHECK(c.vmmouse);
	vm_machine_config(&c, NULL, &mc);
	CHECK(!mc.no_vmmouse);
	vm_config_to_keyfile(&c, "/lib/vms/t", out);
	CHECK(!g_key_file_has_key(out, "vm", "vmmouse", NULL));
	vm_config_clear(&c);
	CHECK_EQ(parse("[vm]\nname=t\nvmmouse=off\n", &c), 0);
	CHECK(!c.vmmouse);
	vm_machine_config(&c, NULL, &mc);
	CHECK(mc.no_vmmouse);
	vm_config_to_keyfile(&c, "/lib/vms/t", out);
	{
		g_autofree char *v = g_key_file_get_string(out, "vm", "vmmouse", NULL);

		CHECK(v && !strcmp(v, "off"));
	}
	vm_config_clear(&c);

	g_key_file_set_string(kf, "vm", "name", "t");
	CHECK_EQ(vm_config_set(kf, "vmmouse=off", err, sizeof(err)), 0);
	CHECK(g_key_file_has_key(kf, "vm", "vmmouse", NULL));
	CHECK_EQ(vm_config_set(kf, "vmmouse=on", err, sizeof(err)), 0);
	CHECK(!g_key_file_has_key(kf, "vm", "vmmouse", NULL));
	CHECK_EQ(vm_config_set(kf, "vmmouse=maybe", err, sizeof(err)), -EINVAL);
}

/* usb: off unless vm.conf says on; only "on" is written; the machine's
 * switch follows. */
static void test_usb_key(void)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GKeyFile) out = g_key_file_new();
	struct vm_config c;
	struct machine_config mc;

	CHECK_EQ(parse("[vm]\nname=t\n", &c), 0);
	CHECK(!c.usb);
	vm_machine_config(&c, NULL, &mc);
	CHECK(!mc.usb);
	vm_config_to_keyfile(&c, "/lib/vms/t", out);
	CHECK(!g_key_file_has_key(out, "vm", "usb", NULL));
	vm_config_clear(&c);
	CHECK_EQ(parse("[vm]\nname=t\nusb=on\n", &c), 0);
	CHECK(c.usb);
	vm_machine_config(&c, NULL, &mc);
	CHECK(mc.usb);
	vm_config_to_keyfile(&c, "/lib/vms/t", out);
	{
		g_autofree char *v = g_key_file_get_string(out, "vm", "usb", NULL);

		CHECK(v && !strcmp(v, "on"));
	}
	vm_config_clear(&c);
	CHECK_EQ(parse("[vm]\nname=t\nusb=yes\n", &c), -EINVAL);

	g_key_file_set_string(kf, "vm", "name", "t");
	CHECK_EQ(vm_config_set(kf, "usb=on", err, sizeof(err)), 0);
	CHECK(g_key_file_has_key(kf, "vm", "usb", NULL));
	CHECK_EQ(vm_config_set(kf, "usb=off", err, sizeof(err)), 0);
	CHECK(!g_key_file_has_key(kf, "vm", "usb", NULL));
	CHECK_EQ(vm_config_set(kf, "usb=maybe", err, sizeof(err)), -EINVAL);
}

/* [usbN] host=: host USB devices passed through at start; any implies
 * the controller; a bad name or a group without host= is refused. */
static void test_usb_hosts(void)
{
	g_autoptr(GKeyFile) out = g_key_file_new();
	struct vm_config c, d;
	struct machine_config mc;

	CHECK_EQ(parse("[vm]\nname=t\n[usb0]\nhost=046d:c52b\n[usb2]\nhost=1-2.3\n", &c), 0);
	CHECK_EQ(c.nusb_hosts, 2);
	CHECK(!strcmp(c.usb_host[0], "046d:c52b"));
	CHECK(!strcmp(c.usb_host[1], "1-2.3"));
	CHECK(!c.usb);
	vm_machine_config(&c, NULL, &mc);
	CHECK(mc.usb);
	vm_config_to_keyfile(&c, "/lib/vms/t", out);
	CHECK_EQ(vm_config_from_keyfile(out, "/lib/vms/t", &d, err, sizeof(err)), 0);
	CHECK_EQ(d.nusb_hosts, 2);
	CHECK(!strcmp(d.usb_host[1], "1-2.3"));
	vm_config_clear(&c);
	vm_config_clear(&d);
	CHECK_EQ(parse("[vm]\nname=t\n[usb0]\nhost=046d\n", &c), -EINVAL);
	CHECK(strstr(err, "[usb0] host: USB device '046d'") != NULL);
	CHECK_EQ(parse("[vm]\nname=t\n[usb1]\n", &c), -EINVAL);
	CHECK(strstr(err, "[usb1]: no host=") != NULL);
}

/* audio: off (no card) unless vm.conf says pa or none; off is never
 * written; edit takes pa, none and off, refuses the rest. */
static void test_audio_key(void)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	g_autoptr(GKeyFile) out = g_key_file_new();
	struct vm_config c;

	CHECK_EQ(parse("[vm]\nname=t\n", &c), 0);
	CHECK_EQ(c.audio, VM_AUDIO_OFF);
	vm_config_to_keyfile(&c, "/lib/vms/t", out);
	CHECK(!g_key_file_has_key(out, "vm", "audio", NULL));
	vm_config_clear(&c);
	CHECK_EQ(parse("[vm]\nname=t\naudio=off\n", &c), 0);
	CHECK_EQ(c.audio, VM_AUDIO_OFF);
	vm_config_clear(&c);
	CHECK_EQ(parse("[vm]\nname=t\naudio=none\n", &c), 0);
	CHECK_EQ(c.audio, VM_AUDIO_NONE);
	vm_config_to_keyfile(&c, "/lib/vms/t", out);
	{
		g_autofree char *v = g_key_file_get_string(out, "vm", "audio", NULL);

		CHECK(v && !strcmp(v, "none"));
	}
	vm_config_clear(&c);
	CHECK_EQ(parse("[vm]\nname=t\naudio=pa\n", &c), 0);
	CHECK_EQ(c.audio, VM_AUDIO_PA);
	vm_config_to_keyfile(&c, "/lib/vms/t", out);
	{
		g_autofree char *v = g_key_file_get_string(out, "vm", "audio", NULL);

		CHECK(v && !strcmp(v, "pa"));
	}
	vm_config_clear(&c);
	CHECK_EQ(parse("[vm]\nname=t\naudio=alsa\n", &c), -EINVAL);

	g_key_file_set_string(kf, "vm", "name", "t");
	CHECK_EQ(vm_config_set(kf, "audio=pa", err, sizeof(err)), 0);
	CHECK(g_key_file_has_key(kf, "vm", "audio", NULL));
	CHECK_EQ(vm_config_set(kf, "audio=none", err, sizeof(err)), 0);
	{
		g_autofree char *v = g_key_file_get_string(kf, "vm", "audio", NULL);

		CHECK(v && !strcmp(v, "none"));
	}
	CHECK_EQ(vm_config_set(kf, "audio=off", err, sizeof(err)), 0);
	CHECK(!g_key_file_has_key(kf, "vm", "audio", NULL));
	CHECK_EQ(vm_config_set(kf, "audio=on", err, sizeof(err)), -EINVAL);
}

/* vnc and vnc-password-file are checked at edit time with the rules the VM
 * process applies (finding 4): an address that cannot be listened on, and
 * a password file that is not a small regular file (/dev/zero used to be
 * read until the OOM killer came; a FIFO blocked `start` for good). */
static void test_set_vnc(void)
{
	g_autoptr(GKeyFile) kf = g_key_file_new();
	char dir[] = "/tmp/vivarium-vmlib-XXXXXX", pw[64];
	g_autofree char *fifo = NULL, *huge = NULL, *ok = NULL, *empty = NULL;
	g_autofree char *assign = NULL;
	double t;

	CHECK(mkdtemp(dir));
	g_key_file_set_string(kf, "vm", "name", "t");
	static const char *const good[] = {
		"vnc=127.0.0.1:5900", "vnc=:1", "vnc=localhost:65535", "vnc=[::1]:5901",
		"vnc=unix:/tmp/v.sock", "vnc=",
	};
	for (size_t i = 0; i < G_N_ELEMENTS(good); i++) {
		err[0] = 0;
		CHECK_EQ(vm_config_set(kf, good[i], err, sizeof(err)), 0);
		if (err[0])
			fprintf(stderr, "  %s: %s\n", good[i], err);
	}
	static const char *const bad[] = {
		"vnc=0.0.0.0:99999", "vnc=0.0.0.0:0", "vnc=127.0.0.1:", "vnc=127.0.0.1:59x",
		"vnc=unix:", "vnc=nonsense", "vnc=vnc.example.org:5900", "vnc=127.0.0.1:-1",
		"vnc-password-file=/dev/zero", "vnc-password-file=/nonexistent/pw",
		"vnc-password-file=/tmp",
	};
	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		err[0] = 0;
		CHECK_EQ(vm_config_set(kf, bad[i], err, sizeof(err)), -EINVAL);
		CHECK(err[0] != 0 && !strchr(err, '\n'));
		printf("  %s: %s\n", bad[i], err);
	}
	/* A socket path longer than sockaddr_un holds. */
	assign = g_strdup_printf("vnc=unix:/tmp/%0200d", 0);
	CHECK_EQ(vm_config_set(kf, assign, err, sizeof(err)), -EINVAL);

	/* The reader: a FIFO nobody writes is refused at once, not waited on. */
	fifo = g_build_filename(dir, "fifo", NULL);
	CHECK(mkfifo(fifo, 0600) == 0);
	t = g_get_monotonic_time() / 1e6;
	CHECK(vnc_password_read(fifo, pw, sizeof(pw), err, sizeof(err)) < 0);
	CHECK(g_get_monotonic_time() / 1e6 - t < 1);
	CHECK(strstr(err, "regular file"));
	g_free(assign);
	assign = g_strdup_printf("vnc-password-file=%s", fifo);
	CHECK_EQ(vm_config_set(kf, assign, err, sizeof(err)), -EINVAL);
	CHECK(vnc_password_read("/dev/zero", pw, sizeof(pw), err, sizeof(err)) < 0);
	CHECK(vnc_password_read(dir, pw, sizeof(pw), err, sizeof(err)) < 0);

	/* A huge regular file: only its start is read.  All zeros (sparse):
	 * no password on the first line. */
	huge = g_build_filename(dir, "huge", NULL);
	{
		int fd = open(huge, O_WRONLY | O_CREAT, 0600);

		CHECK(fd >= 0 && ftruncate(fd, 64ll << 30) == 0);
		close(fd);
	}
	t = g_get_monotonic_time() / 1e6;
	CHECK(vnc_password_read(huge, pw, sizeof(pw), err, sizeof(err)) < 0);
	CHECK(g_get_monotonic_time() / 1e6 - t < 1);
	/* ...and one with a password first: fine. */
	{
		int fd = open(huge, O_WRONLY);

		CHECK(fd >= 0 && pwrite(fd, "s3cret\n", 7, 0) == 7);
		close(fd);
	}
	CHECK_EQ(vnc_password_read(huge, pw, sizeof(pw), err, sizeof(err)), 0);
	CHECK(!strcmp(pw, "s3cret"));

	/* An empty file, and a first line too long for the buffer. */
	empty = g_build_filename(dir, "empty", NULL);
	CHECK(g_file_set_contents(empty, "", 0, NULL));
	CHECK(vnc_password_read(empty, pw, sizeof(pw), err, sizeof(err)) < 0);
	CHECK(g_file_set_contents(empty, "0123456789", -1, NULL));
	CHECK(vnc_password_read(empty, pw, 8, err, sizeof(err)) < 0);

	ok = g_build_filename(dir, "pw", NULL);
	CHECK(g_file_set_contents(ok, "hunter2\r\nsecond line\n", -1, NULL));
	CHECK_EQ(vnc_password_read(ok, pw, sizeof(pw), err, sizeof(err)), 0);
	CHECK(!strcmp(pw, "hunter2"));
	g_free(assign);
	assign = g_strdup_printf("vnc-password-file=%s", ok);
	CHECK_EQ(vm_config_set(kf, assign, err, sizeof(err)), 0);

	/* vm.conf: the same address rules when it is loaded. */
	{
		struct vm_config c;

		CHECK_EQ(parse("[vm]\nname=t\nvnc=0.0.0.0:99999\n", &c), -EINVAL);
		CHECK(strstr(err, "65535"));
		CHECK_EQ(parse("[vm]\nname=t\nvnc=unix:\n", &c), -EINVAL);
	}

	unlink(fifo);
	unlink(huge);
	unlink(empty);
	unlink(ok);
	rmdir(dir);
}

static void test_not_running_without_lock(void)
{
	g_autofree char *dir = g_dir_make_tmp("vivarium-vmlib-XXXXXX", NULL);
	g_autofree char *vmdir = g_build_filename(dir, "vivarium", "vms", "t", NULL);
	g_autofree char *pidf = g_build_filename(vmdir, VM_PID_FILE, NULL);
	pid_t pid = 123;

	setenv("XDG_DATA_HOME", dir, 1);
	CHECK(!vmlib_running("t", &pid));
	CHECK_EQ(pid, 0);
	/* A PID file nobody locks (a crashed VM's) is not a running VM. */
	CHECK_EQ(g_mkdir_with_parents(vmdir, 0755), 0);
	CHECK(g_file_set_contents(pidf, "1\n", -1, NULL));
	CHECK(!vmlib_running("t", &pid));
	/* Locked by another open file description: running, PID read. */
	{
		int fd = open(pidf, O_RDWR);
		struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET };

		CHECK(fd >= 0 && fcntl(fd, F_OFD_SETLK, &fl) == 0);
		CHECK(vmlib_running("t", &pid));
		CHECK_EQ(pid, 1);
		close(fd);
	}
	CHECK(!vmlib_running("t", NULL));
	/* A read lock is not the VM's: anyone who can open vm.pid can take
	 * one, and must not make a crashed VM look running. */
	{
		int fd = open(pidf, O_RDONLY);
		struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET };

		CHECK(fd >= 0 && fcntl(fd, F_OFD_SETLK, &fl) == 0);
		CHECK(!vmlib_running("t", &pid));
		CHECK_EQ(pid, 0);
		close(fd);
	}
	unlink(pidf);
	g_rmdir(vmdir);
}

/* Make @path a file holding "keep". */
static void put(const char *path)
{
	CHECK(g_file_set_contents(path, "keep", -1, NULL));
}

static bool holds_keep(const char *path)
{
	g_autofree char *s = NULL;

	return g_file_get_contents(path, &s, NULL, NULL) && !strcmp(s, "keep");
}

static void test_remove_tree_keeps_link_targets(void)
{
	g_autofree char *dir = g_dir_make_tmp("vivarium-rm-XXXXXX", NULL);
	g_autofree char *outside = g_build_filename(dir, "outside", NULL);
	g_autofree char *ofile = g_build_filename(outside, "important", NULL);
	g_autofree char *odir = g_build_filename(outside, "sub", NULL);
	g_autofree char *osubf = g_build_filename(odir, "f", NULL);
	g_autofree char *vm = g_build_filename(dir, "vm", NULL);
	g_autofree char *sub = g_build_filename(vm, "a", "b", NULL);
	g_autofree char *p = NULL;
	struct stat st;

	CHECK_EQ(g_mkdir_with_parents(odir, 0755), 0);
	put(ofile);
	put(osubf);
	CHECK_EQ(g_mkdir_with_parents(sub, 0755), 0);
	p = g_build_filename(vm, "disk.qcow2", NULL);
	CHECK_EQ(symlink(ofile, p), 0);		/* a file link */
	g_free(p);
	p = g_build_filename(sub, "dirlink", NULL);
	CHECK_EQ(symlink(odir, p), 0);		/* a directory link, deep */
	g_free(p);
	p = g_build_filename(vm, "vm.conf", NULL);
	put(p);
	CHECK_EQ(vmlib_remove_tree(vm), 0);
	CHECK(lstat(vm, &st) < 0 && errno == ENOENT);
	CHECK(holds_keep(ofile));
	CHECK(holds_keep(osubf));

	/* The top itself a link: the link goes, its target stays. */
	CHECK_EQ(symlink(outside, vm), 0);
	CHECK_EQ(vmlib_remove_tree(vm), 0);
	CHECK(lstat(vm, &st) < 0 && errno == ENOENT);
	CHECK(holds_keep(ofile));
	CHECK(holds_keep(osubf));
	CHECK_EQ(vmlib_remove_tree(outside), 0);
	CHECK_EQ(g_rmdir(dir), 0);
}

/* A new VM's variable store: a whole copy of the template, made once. */
static void test_uefi_vars_create(void)
{
	g_autofree char *dir = g_dir_make_tmp("vmlib-uefi-XXXXXX", NULL);
	g_autofree char *path = g_build_filename(dir, VM_UEFI_VARS_FILE, NULL);
	g_autofree char *tmpl = NULL, *copy = NULL;
	gsize tlen = 0, clen = 0;
	char e[256] = "";
	struct stat st;

	if (access(VM_UEFI_VARS_TEMPLATE, R_OK) != 0) {
		printf("# %s missing (Debian's ovmf): skipped\n", VM_UEFI_VARS_TEMPLATE);
		vmlib_remove_tree(dir);
		return;
	}
	CHECK_EQ(vm_uefi_vars_create(dir, e, sizeof(e)), 1);
	CHECK(g_file_get_contents(VM_UEFI_VARS_TEMPLATE, &tmpl, &tlen, NULL));
	CHECK(g_file_get_contents(path, &copy, &clen, NULL));
	CHECK_EQ(clen, tlen);
	CHECK(clen == tlen && !memcmp(tmpl, copy, tlen));
	CHECK_EQ(stat(path, &st), 0);
	CHECK_EQ(st.st_mode & 0777, VM_FILE_MODE);
	/* The guest's variables are never overwritten by a second call. */
	CHECK(g_file_set_contents(path, "changed", 7, NULL));
	CHECK_EQ(vm_uefi_vars_create(dir, e, sizeof(e)), 0);
	g_clear_pointer(&copy, g_free);
	CHECK(g_file_get_contents(path, &copy, &clen, NULL));
	CHECK_EQ(clen, 7);
	vmlib_remove_tree(dir);
	/* No folder: an error line, no file. */
	CHECK(vm_uefi_vars_create("/nonexistent/vm", e, sizeof(e)) < 0);
	CHECK(strstr(e, "/nonexistent/vm") != NULL);
}

static void test_mac_from_uuid(void)
{
	static const char uuid[] = "6f1c7c3e-0d7e-4f4b-9d8e-2a8c1b1f7e55";
	uint8_t a[6], b[6], seen[8][6];

	for (unsigned n = 0; n < 8; n++) {
		CHECK_EQ(vm_mac_from_uuid(uuid, n, seen[n]), 0);
		CHECK(seen[n][0] & 0x02);		/* locally administered */
		CHECK(!(seen[n][0] & 0x01));		/* unicast */
		for (unsigned m = 0; m < n; m++)	/* one per NIC */
			CHECK(memcmp(seen[n], seen[m], 6) != 0);
	}
	/* Deterministic, and the case of the UUID does not matter. */
	CHECK_EQ(vm_mac_from_uuid(uuid, 1, a), 0);
	CHECK(!memcmp(a, seen[1], 6));
	CHECK_EQ(vm_mac_from_uuid("6F1C7C3E-0D7E-4F4B-9D8E-2A8C1B1F7E55", 1, b), 0);
	CHECK(!memcmp(a, b, 6));
	/* SHA-256("6f1c...7e55/0")'s first bytes, low two bits of the first
	 * octet forced to 10: sha256sum gives f3c31bf458f7.... */
	{
		static const uint8_t want[6] = { 0xf2, 0xc3, 0x1b, 0xf4, 0x58, 0xf7 };

		CHECK(!memcmp(seen[0], want, 6));
	}
	/* Another VM: other addresses. */
	CHECK_EQ(vm_mac_from_uuid("0b0c7c3e-0d7e-4f4b-9d8e-2a8c1b1f7e55", 0, b), 0);
	CHECK(memcmp(b, seen[0], 6) != 0);
	CHECK_EQ(vm_mac_from_uuid("not-a-uuid", 0, b), -EINVAL);
	CHECK_EQ(vm_mac_from_uuid(NULL, 0, b), -EINVAL);
}

int main(void)
{
	RUN_TEST(test_names);
	RUN_TEST(test_parse);
	RUN_TEST(test_vga);
	RUN_TEST(test_roundtrip);
	RUN_TEST(test_set);
	RUN_TEST(test_vmmouse_key);
	RUN_TEST(test_usb_key);
	RUN_TEST(test_usb_hosts);
	RUN_TEST(test_audio_key);
	RUN_TEST(test_set_vnc);
	RUN_TEST(test_not_running_without_lock);
	RUN_TEST(test_remove_tree_keeps_link_targets);
	RUN_TEST(test_mac_from_uuid);
	RUN_TEST(test_uefi_vars_create);
	return check_finish();
}
