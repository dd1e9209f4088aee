/* SPDX-License-Identifier: MIT */
/* tests/unit/test_doctor.c - hv_host_probe() on fake /proc and /sys trees
 * built in a temporary directory, the backend decision on its own, and one
 * real probe of this host; hv_net_probe() (TAP networking) likewise, and
 * a tun node it may not open (as root, in a child without the DAC
 * overrides). */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "kvm_internal.h"

static char tmp[] = "/tmp/vivarium-doctor-XXXXXX";
static int roots;

/* mkdir -p for the directory part of @path, then write @text to it. */
static void put(const char *root, const char *rel, const char *text)
{
	char p[512];

	snprintf(p, sizeof(p), "%s%s", root, rel);
	for (char *s = p + strlen(root) + 1; (s = strchr(s, '/')); s++) {
		*s = '\0';
		mkdir(p, 0755);
		*s = '/';
	}
	if (text) {
		FILE *f = fopen(p, "w");

		if (f) {
			fputs(text, f);
			fclose(f);
		}
	} else {
		mkdir(p, 0755);
	}
}

static const char *new_root(void)
{
	static char r[600];

	snprintf(r, sizeof(r), "%s/root%d", tmp, roots++);
	mkdir(r, 0755);
	return r;
}

static void cpuinfo(const char *root, const char *flags)
{
	char text[1024];

	snprintf(text, sizeof(text),
		 "processor\t: 0\nvendor_id\t: GenuineIntel\n"
		 "flags\t\t: %s\nbugs\t\t: spectre_v1\n\n"
		 "processor\t: 1\nflags\t\t: %s\n", flags, flags);
	put(root, "/proc/cpuinfo", text);
}

/* hv_host_probe() of the fake @root, paired with this host's /dev/kvm if
 * it opens (else a missing device); returns whether it did. */
static bool probe(const char *root, struct hv_host_report *r)
{
	int fd = open("/dev/kvm", O_RDWR | O_CLOEXEC);

	if (fd >= 0)
		close(fd);
	hv_host_probe(root, fd >= 0 ? "/dev/kvm" : "/nonexistent/kvm", r);
	return fd >= 0;
}

static void test_decide(void)
{
	struct hv_host_report r;

	memset(&r, 0, sizeof(r));
	CHECK_EQ(hv_backend_decide(&r), HV_BACKEND_NONE);
	strcpy(r.kvm_module, "kvm_intel");
	r.cpu_vmx = true;
	CHECK_EQ(hv_backend_decide(&r), HV_BACKEND_NONE); /* not accessible */
	r.kvm_accessible = true;
	CHECK_EQ(hv_backend_decide(&r), HV_BACKEND_HARDWARE);
	r.cpu_vmx = false;
	CHECK_EQ(hv_backend_decide(&r), HV_BACKEND_UNKNOWN);
	r.cpu_svm = true;	/* the wrong vendor's flag */
	CHECK_EQ(hv_backend_decide(&r), HV_BACKEND_UNKNOWN);
	strcpy(r.kvm_module, "kvm_amd");
	CHECK_EQ(hv_backend_decide(&r), HV_BACKEND_HARDWARE);
	strcpy(r.kvm_module, "kvm_pvm");
	CHECK_EQ(hv_backend_decide(&r), HV_BACKEND_EMULATED);
	r.cpu_vmx = r.cpu_svm = false;
	CHECK_EQ(hv_backend_decide(&r), HV_BACKEND_EMULATED);
	r.kvm_module[0] = '\0';
	CHECK_EQ(hv_backend_decide(&r), HV_BACKEND_UNKNOWN);
}

static void test_intel_nested(void)
{
	const char *root = new_root();
	struct hv_host_report r;
	bool kvm;

	cpuinfo(root, "fpu vme de pse tsc msr pae mce cx8 apic vmx est");
	put(root, "/sys/module/kvm_intel/parameters/nested", "Y\n");
	put(root, "/sys/module/kvm/parameters/halt_poll_ns", "200000\n");
	kvm = probe(root, &r);
	CHECK(r.cpu_vmx);
	CHECK(!r.cpu_svm);
	CHECK(!strcmp(r.kvm_module, "kvm_intel"));
	CHECK_EQ(r.nested, 1);
	CHECK_EQ(r.backend, kvm ? HV_BACKEND_HARDWARE : HV_BACKEND_NONE);
}

static void test_amd_not_nested(void)
{
	const char *root = new_root();
	struct hv_host_report r;
	bool kvm;

	cpuinfo(root, "fpu svm lm nx");
	put(root, "/sys/module/kvm_amd/parameters/nested", "0\n");
	kvm = probe(root, &r);
	CHECK(r.cpu_svm);
	CHECK(!r.cpu_vmx);
	CHECK(!strcmp(r.kvm_module, "kvm_amd"));
	CHECK_EQ(r.nested, 0);
	CHECK_EQ(r.backend, kvm ? HV_BACKEND_HARDWARE : HV_BACKEND_NONE);
}

static void test_pvm(void)
{
	const char *root = new_root();
	struct hv_host_report r;
	bool kvm;

	cpuinfo(root, "fpu cx16 x2apic hypervisor");
	put(root, "/sys/module/kvm_pvm/parameters/no_x2apic", "N\n");
	put(root, "/sys/module/kvm", NULL);
	kvm = probe(root, &r);
	CHECK(!r.cpu_vmx && !r.cpu_svm);
	CHECK(!strcmp(r.kvm_module, "kvm_pvm"));
	CHECK_EQ(r.nested, -1);
	CHECK_EQ(r.backend, kvm ? HV_BACKEND_EMULATED : HV_BACKEND_NONE);
}

static void test_flag_lookalikes(void)
{
	const char *root = new_root();
	struct hv_host_report r;
	bool kvm;

	/* "vmx" only as part of other words: no VT-x. */
	cpuinfo(root, "fpu vmxe svmx xvmx pvmx");
	put(root, "/sys/module/kvm_intel", NULL);
	kvm = probe(root, &r);
	CHECK(!r.cpu_vmx && !r.cpu_svm);
	CHECK(!strcmp(r.kvm_module, "kvm_intel"));
	CHECK_EQ(r.nested, -1);	/* no parameters/nested file */
	CHECK_EQ(r.backend, kvm ? HV_BACKEND_UNKNOWN : HV_BACKEND_NONE);
}

static void test_empty_root(void)
{
	const char *root = new_root();
	struct hv_host_report r;
	bool kvm;

	kvm = probe(root, &r);
	CHECK(!r.cpu_vmx && !r.cpu_svm);
	CHECK_EQ(r.kvm_module[0], '\0');
	CHECK_EQ(r.backend, kvm ? HV_BACKEND_UNKNOWN : HV_BACKEND_NONE);
}

static void test_no_device(void)
{
	const char *root = new_root();
	char path[700];
	struct hv_host_report r;

	cpuinfo(root, "vmx");
	put(root, "/sys/module/kvm_intel/parameters/nested", "Y\n");
	snprintf(path, sizeof(path), "%s/dev/kvm", root);
	hv_host_probe(root, path, &r);
	CHECK(!r.kvm_exists);
	CHECK(!r.kvm_accessible);
	CHECK(strstr(r.kvm_error, path) != NULL);
	CHECK_EQ(r.api_version, -1);
	CHECK(!r.caps_ok);
	CHECK_EQ(r.backend, HV_BACKEND_NONE);
	CHECK(!strcmp(r.kvm_module, "kvm_intel"));
}

static void test_not_a_kvm_device(void)
{
	const char *root = new_root();
	char path[700];
	struct hv_host_report r;

	put(root, "/dev/kvm", "not a device\n");
	snprintf(path, sizeof(path), "%s/dev/kvm", root);
	hv_host_probe(root, path, &r);
	CHECK(r.kvm_exists);
	CHECK(!r.kvm_accessible);
	CHECK(strstr(r.kvm_error, "not a KVM device") != NULL);
	CHECK_EQ(r.backend, HV_BACKEND_NONE);
}

static void test_real_host(void)
{
	struct hv_host_report r;
	struct stat st;

	hv_host_probe("", NULL, &r);
	printf("  this host: kvm %s%s, module '%s', vmx %d svm %d, "
	       "nested %d, api %d, caps %s%s, backend %d\n",
	       r.kvm_exists ? "present" : "absent",
	       r.kvm_accessible ? " and accessible" : "",
	       r.kvm_module, r.cpu_vmx, r.cpu_svm, r.nested, r.api_version,
	       r.caps_ok ? "ok" : "missing ", r.missing_cap, r.backend);
	if (!r.kvm_accessible) {
		CHECK_EQ(r.backend, HV_BACKEND_NONE);
		CHECK(r.kvm_error[0] != '\0');
		return;
	}
	CHECK_EQ(r.api_version, 12);
	CHECK(r.caps_ok);
	if (stat("/sys/module/kvm_pvm", &st) == 0) {
		/* This project's machines: PVM, an emulator, not VT-x. */
		CHECK(!strcmp(r.kvm_module, "kvm_pvm"));
		CHECK_EQ(r.backend, HV_BACKEND_EMULATED);
	}
}

/* ---- hv_net_probe --------------------------------------------------------- */

static void test_net_fake_tree(void)
{
	const char *root = new_root();
	char tun[700], helper[700];
	struct hv_net_report r;

	put(root, "/proc/self/status", "Name:\tvivarium\nCapInh:\t0000000000000000\n"
	    "CapPrm:\t0000000000001000\nCapEff:\t0000000000001000\n");
	put(root, "/usr/lib/qemu/qemu-bridge-helper", "#!/bin/sh\n");
	snprintf(helper, sizeof(helper), "%s/usr/lib/qemu/qemu-bridge-helper",
		 root);
	chmod(helper, 04755);
	snprintf(tun, sizeof(tun), "%s/dev/net/tun", root);
	hv_net_probe(root, tun, &r);
	CHECK(!r.tun_exists);
	CHECK(!r.tun_accessible);
	CHECK_EQ(r.tun_mode, -1);
	CHECK(strstr(r.tun_error, tun) == r.tun_error);
	CHECK(strstr(r.tun_error, ": does not exist: load the tun module "
		      "(modprobe tun)") != NULL);
	CHECK_EQ(r.net_admin, 1);
	CHECK(r.bridge_helper);
	CHECK_EQ(r.bridge_helper_setuid, getuid() == 0);	/* root's file */

	/* A regular file where the node should be. */
	put(root, "/dev/net/tun", "not a device\n");
	chmod(tun, 0640);
	put(root, "/proc/self/status", "CapEff:\t000001ffffffefff\n");
	chmod(helper, 0755);
	hv_net_probe(root, tun, &r);
	CHECK(r.tun_exists);
	CHECK(!r.tun_accessible);
	CHECK_EQ(r.tun_mode, 0640);
	CHECK(strstr(r.tun_error, "not a character device") != NULL);
	CHECK_EQ(r.net_admin, 0);
	CHECK(r.bridge_helper && !r.bridge_helper_setuid);
}

static void test_net_empty_root(void)
{
	const char *root = new_root();
	struct hv_net_report r;

	hv_net_probe(root, "/nonexistent/tun", &r);
	CHECK(!r.tun_exists);
	CHECK_EQ(r.net_admin, -1);		/* no status file */
	CHECK(!r.bridge_helper);
}

/* Another character device: opens, but is not tun. */
static void test_net_not_tun(void)
{
	struct hv_net_report r;

	hv_net_probe("", "/dev/null", &r);
	CHECK(r.tun_exists);
	CHECK(!r.tun_accessible);
	CHECK(strstr(r.tun_error, "/dev/null is not the tun driver's device") !=
	      NULL);
}

static int drop_dac_caps(void)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2];
	uint32_t m = 1u << CAP_DAC_OVERRIDE | 1u << CAP_DAC_READ_SEARCH;

	if (syscall(SYS_capget, &h, d))
		return -1;
	d[0].effective &= ~m;
	d[0].permitted &= ~m;
	return (int)syscall(SYS_capset, &h, d);
}

/* A tun node of mode 0 (made with mknod as root), probed by a child that
 * lost the DAC overrides: permission denied, and the mode said. */
static void test_net_permission(void)
{
	char node[700];
	pid_t pid;
	int st = 0;

	snprintf(node, sizeof(node), "%s/tun0", tmp);
	if (getuid() != 0 || mknod(node, S_IFCHR | 0, makedev(10, 200)) < 0) {
		printf("  (skipped: cannot make a device node: not root)\n");
		return;
	}
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		struct hv_net_report r;
		char want[1600];

		if (drop_dac_caps() < 0)
			_exit(2);
		hv_net_probe("", node, &r);
		snprintf(want, sizeof(want), "%s: permission denied: its mode is "
			 "0000 (owner 0, group 0), usually 0666: chmod 0666 %s",
			 node, node);
		if (r.tun_accessible || strcmp(r.tun_error, want)) {
			fprintf(stderr, "  got '%s'\n", r.tun_error);
			_exit(1);
		}
		_exit(0);
	}
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	unlink(node);
}

static void test_net_real_host(void)
{
	struct hv_net_report r;

	hv_net_probe("", NULL, &r);
	printf("  this host: /dev/net/tun %s%s (mode %04o), CAP_NET_ADMIN %d, "
	       "bridge helper %d (setuid %d)%s%s\n",
	       r.tun_exists ? "present" : "absent",
	       r.tun_accessible ? " and usable" : "",
	       r.tun_mode < 0 ? 0 : (unsigned)r.tun_mode, r.net_admin,
	       r.bridge_helper, r.bridge_helper_setuid,
	       r.tun_error[0] ? ": " : "", r.tun_error);
	CHECK(r.tun_accessible || r.tun_error[0]);
	CHECK(r.net_admin >= 0);		/* Linux has CapEff */
}

int main(void)
{
	if (!mkdtemp(tmp))
		SKIP("cannot make a temporary directory: %s", strerror(errno));
	RUN_TEST(test_decide);
	RUN_TEST(test_intel_nested);
	RUN_TEST(test_amd_not_nested);
	RUN_TEST(test_pvm);
	RUN_TEST(test_flag_lookalikes);
	RUN_TEST(test_empty_root);
	RUN_TEST(test_no_device);
	RUN_TEST(test_not_a_kvm_device);
	RUN_TEST(test_real_host);
	RUN_TEST(test_net_fake_tree);
	RUN_TEST(test_net_empty_root);
	RUN_TEST(test_net_not_tun);
	RUN_TEST(test_net_permission);
	RUN_TEST(test_net_real_host);
	{
		char cmd[128];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmp);
		if (system(cmd) != 0)
			fprintf(stderr, "could not remove %s\n", tmp);
	}
	return check_finish();
}
