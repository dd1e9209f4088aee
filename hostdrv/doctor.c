/* SPDX-License-Identifier: MIT */
/*
 * hostdrv/doctor.c - hv_host_probe(): what this host's KVM is made of.
 *
 * The backend is decided from what can be seen without privileges:
 *   - which vendor module drives /dev/kvm: ROOT/sys/module/kvm_intel,
 *     kvm_amd or kvm_pvm (Pagetable-based VM: no VT-x/AMD-V, guests that
 *     are not PVM-aware run in KVM's instruction emulator);
 *   - the vmx/svm flags of ROOT/proc/cpuinfo;
 *   - whether /dev/kvm opens and answers KVM_GET_API_VERSION.
 * HARDWARE needs kvm_intel with vmx or kvm_amd with svm; kvm_pvm means
 * EMULATED; a usable /dev/kvm with neither is UNKNOWN; no usable /dev/kvm
 * is NONE.
 *
 * hv_net_probe(): whether /dev/net/tun opens read-write and is the tun
 * driver, its mode, whether this process has CAP_NET_ADMIN (CapEff of
 * ROOT/proc/self/status), and QEMU's bridge helper.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/if_tun.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvm_internal.h"

static void path_join(char *buf, size_t len, const char *root,
		      const char *rest)
{
	snprintf(buf, len, "%s%s", root, rest);
}

static bool dir_exists(const char *root, const char *rest)
{
	char p[512];
	struct stat st;

	path_join(p, sizeof(p), root, rest);
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Is @word one of the space-separated tokens of @line? */
static bool has_token(const char *line, const char *word)
{
	size_t n = strlen(word);

	for (const char *p = line; (p = strstr(p, word)); p += n) {
		bool start = p == line || p[-1] == ' ' || p[-1] == '\t';
		char end = p[n];

		if (start && (end == ' ' || end == '\t' || end == '\n' ||
			      end == '\0'))
			return true;
	}
	return false;
}

static void probe_cpuinfo(const char *root, struct hv_host_report *r)
{
	char p[512], line[8192];
	FILE *f;

	path_join(p, sizeof(p), root, "/proc/cpuinfo");
	f = fopen(p, "re");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		/* x86: "flags\t\t: fpu vme ..." (first CPU is enough) */
		if (strncmp(line, "flags", 5) || !strchr(line, ':'))
			continue;
		r->cpu_vmx = has_token(strchr(line, ':') + 1, "vmx");
		r->cpu_svm = has_token(strchr(line, ':') + 1, "svm");
		break;
	}
	fclose(f);
}

/* "Y", "y", "1" -> 1; "N", "n", "0" -> 0; else -1. */
static int read_bool_param(const char *root, const char *rest)
{
	char p[512], buf[16] = "";
	FILE *f;

	path_join(p, sizeof(p), root, rest);
	f = fopen(p, "re");
	if (!f)
		return -1;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	if (buf[0] == 'Y' || buf[0] == 'y' || buf[0] == '1')
		return 1;
	if (buf[0] == 'N' || buf[0] == 'n' || buf[0] == '0')
		return 0;
	return -1;
}

static void probe_module(const char *root, struct hv_host_report *r)
{
	static const char *const mods[] = { "kvm_pvm", "kvm_intel",
					    "kvm_amd" };
	char rest[128];

	for (unsigned i = 0; i < sizeof(mods) / sizeof(mods[0]); i++) {
		snprintf(rest, sizeof(rest), "/sys/module/%s", mods[i]);
		if (!dir_exists(root, rest))
			continue;
		snprintf(r->kvm_module, sizeof(r->kvm_module), "%s", mods[i]);
		snprintf(rest, sizeof(rest), "/sys/module/%s/parameters/nested",
			 mods[i]);
		r->nested = read_bool_param(root, rest);
		return;
	}
}

static void probe_device(const char *kvm_path, struct hv_host_report *r)
{
	struct stat st;
	int fd, v;

	r->kvm_exists = stat(kvm_path, &st) == 0;
	if (!r->kvm_exists) {
		snprintf(r->kvm_error, sizeof(r->kvm_error),
			 "%s: does not exist: load kvm_intel or kvm_amd (and "
			 "enable VT-x/AMD-V in the firmware)", kvm_path);
		return;
	}
	fd = open(kvm_path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		int e = errno;

		snprintf(r->kvm_error, sizeof(r->kvm_error),
			 e == EACCES || e == EPERM ?
			 "%s: permission denied: add yourself to the kvm "
			 "group or fix the udev rule" : "%s: %s",
			 kvm_path, strerror(e));
		return;
	}
	v = hv_ioctl_val(fd, KVM_GET_API_VERSION, 0);
	if (v < 0) {
		snprintf(r->kvm_error, sizeof(r->kvm_error),
			 "%s is not a KVM device", kvm_path);
		close(fd);
		return;
	}
	r->kvm_accessible = true;
	r->api_version = v;
	if (v != HV_KVM_API_VERSION) {
		snprintf(r->kvm_error, sizeof(r->kvm_error),
			 "%s: KVM API version %d, need 12", kvm_path, v);
	} else {
		const char *missing = hv_missing_cap(fd);

		r->caps_ok = !missing;
		if (missing)
			snprintf(r->missing_cap, sizeof(r->missing_cap), "%s",
				 missing);
	}
	close(fd);
}

enum hv_backend hv_backend_decide(const struct hv_host_report *r)
{
	if (!r->kvm_accessible)
		return HV_BACKEND_NONE;
	if (!strcmp(r->kvm_module, "kvm_pvm"))
		return HV_BACKEND_EMULATED;
	if ((!strcmp(r->kvm_module, "kvm_intel") && r->cpu_vmx) ||
	    (!strcmp(r->kvm_module, "kvm_amd") && r->cpu_svm))
		return HV_BACKEND_HARDWARE;
	return HV_BACKEND_UNKNOWN;
}

void hv_host_probe(const char *root, const char *kvm_path,
		   struct hv_host_report *r)
{
	memset(r, 0, sizeof(*r));
	r->api_version = -1;
	r->nested = -1;
	if (!root)
		root = "";
	if (!kvm_path)
		kvm_path = "/dev/kvm";

	probe_cpuinfo(root, r);
	probe_module(root, r);
	probe_device(kvm_path, r);

	r->backend = hv_backend_decide(r);
}

/* ---- TAP networking -------------------------------------------------------- */

/* CAP_NET_ADMIN (bit 12) in the CapEff line of ROOT/proc/self/status. */
static int probe_net_admin(const char *root)
{
	char p[512], line[256];
	int r = -1;
	FILE *f;

	path_join(p, sizeof(p), root, "/proc/self/status");
	f = fopen(p, "re");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		char *end;
		unsigned long long caps;

		if (strncmp(line, "CapEff:", 7))
			continue;
		caps = strtoull(line + 7, &end, 16);
		if (end != line + 7)
			r = (caps >> 12) & 1;
		break;
	}
	fclose(f);
	return r;
}

static void probe_tun(const char *path, struct hv_net_report *r)
{
	struct stat st;
	unsigned features = 0;
	int fd, e;

	if (stat(path, &st) < 0) {
		snprintf(r->tun_error, sizeof(r->tun_error),
			 "%s: does not exist: load the tun module (modprobe "
			 "tun) or make the node (mknod %s c 10 200)", path, path);
		return;
	}
	r->tun_exists = true;
	r->tun_mode = (int)(st.st_mode & 07777);
	r->tun_uid = st.st_uid;
	r->tun_gid = st.st_gid;
	if (!S_ISCHR(st.st_mode)) {
		snprintf(r->tun_error, sizeof(r->tun_error),
			 "%s: not a character device", path);
		return;
	}
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		if (e == EACCES || e == EPERM)
			snprintf(r->tun_error, sizeof(r->tun_error),
				 "%s: permission denied: its mode is %04o "
				 "(owner %u, group %u), usually 0666: chmod "
				 "0666 %s", path, (unsigned)r->tun_mode,
				 r->tun_uid, r->tun_gid, path);
		else if (e == ENODEV || e == ENXIO)
			snprintf(r->tun_error, sizeof(r->tun_error),
				 "%s: no tun driver in this kernel: load the "
				 "tun module (modprobe tun)", path);
		else
			snprintf(r->tun_error, sizeof(r->tun_error), "%s: %s",
				 path, strerror(e));
		return;
	}
	if (ioctl(fd, TUNGETFEATURES, &features) < 0 ||
	    !(features & IFF_TAP) || !(features & IFF_NO_PI)) {
		snprintf(r->tun_error, sizeof(r->tun_error),
			 "%s is not the tun driver's device", path);
		close(fd);
		return;
	}
	close(fd);
	r->tun_accessible = true;
}

void hv_net_probe(const char *root, const char *tun_path,
		  struct hv_net_report *r)
{
	char p[512];
	struct stat st;

	memset(r, 0, sizeof(*r));
	r->tun_mode = -1;
	if (!root)
		root = "";
	probe_tun(tun_path ? tun_path : "/dev/net/tun", r);
	r->net_admin = probe_net_admin(root);
	path_join(p, sizeof(p), root, HV_BRIDGE_HELPER);
	if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
		r->bridge_helper = true;
		r->bridge_helper_setuid = (st.st_mode & S_ISUID) && st.st_uid == 0;
	}
}
