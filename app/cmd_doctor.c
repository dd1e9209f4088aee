/* SPDX-License-Identifier: MIT */
/*
 * app/cmd_doctor.c - `vivarium doctor [--json] [--kvm PATH] [--tun PATH]`:
 * can this host run guests, and how fast?  And can they have TAP
 * networking (NAT needs nothing)?  Prints what it found and how to fix
 * what is missing.
 *
 * Exit status: 0 guests run at hardware speed (VT-x/AMD-V); 1 /dev/kvm
 * works but without hardware virtualization (e.g. kvm_pvm's emulator) or
 * the backend could not be told; 2 no usable /dev/kvm (absent, no
 * permission, too old); 64 bad arguments.  TAP networking does not change
 * it: it is optional; nor does the sandbox (seccomp, Landlock,
 * no_new_privs: what this kernel has and what a VM process would use),
 * which has its own line of advice.
 */
#include <unistd.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>

#include "usb/usb_host.h"
#include "host/swtpm.h"
#include "commands.h"
#include "hv.h"
#include "sandbox/sandbox.h"

#define EXIT_USAGE 64

static const char *backend_name(enum hv_backend b)
{
	switch (b) {
	case HV_BACKEND_NONE: return "none";
	case HV_BACKEND_HARDWARE: return "hardware";
	case HV_BACKEND_EMULATED: return "emulated";
	default: return "unknown";
	}
}

static int doctor_status(const struct hv_host_report *r)
{
	if (!r->caps_ok)
		return 2;
	return r->backend == HV_BACKEND_HARDWARE ? 0 : 1;
}

static void json_string(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

static const char *json_bool3(int v)
{
	return v < 0 ? "null" : v ? "true" : "false";
}

static void print_json(FILE *f, const char *kvm,
		       const struct hv_host_report *r, const char *tun,
		       const struct hv_net_report *n,
		       const struct sandbox_support *s)
{
	struct sandbox_verdict v;

	sandbox_describe(s, &v);
	fprintf(f, "{\"kvm_path\": ");
	json_string(f, kvm);
	fprintf(f, ", \"kvm_exists\": %s, \"kvm_accessible\": %s, "
		"\"kvm_error\": ", r->kvm_exists ? "true" : "false",
		r->kvm_accessible ? "true" : "false");
	json_string(f, r->kvm_error);
	fprintf(f, ", \"cpu_vmx\": %s, \"cpu_svm\": %s, \"kvm_module\": ",
		r->cpu_vmx ? "true" : "false", r->cpu_svm ? "true" : "false");
	json_string(f, r->kvm_module);
	fprintf(f, ", \"nested\": %s, \"api_version\": %d, \"caps_ok\": %s, "
		"\"missing_cap\": ",
		r->nested < 0 ? "null" : r->nested ? "true" : "false",
		r->api_version, r->caps_ok ? "true" : "false");
	if (r->missing_cap[0])
		json_string(f, r->missing_cap);
	else
		fputs("null", f);
	fprintf(f, ", \"backend\": \"%s\", \"status\": %d",
		backend_name(r->backend), doctor_status(r));
	fprintf(f, ", \"tun_path\": ");
	json_string(f, tun);
	fprintf(f, ", \"tun_exists\": %s, \"tun_accessible\": %s, "
		"\"tun_error\": ", n->tun_exists ? "true" : "false",
		n->tun_accessible ? "true" : "false");
	json_string(f, n->tun_error);
	if (n->tun_mode >= 0)
		fprintf(f, ", \"tun_mode\": \"%04o\"", (unsigned)n->tun_mode);
	else
		fprintf(f, ", \"tun_mode\": null");
	fprintf(f, ", \"net_admin\": %s, \"bridge_helper\": %s, "
		"\"bridge_helper_setuid\": %s", json_bool3(n->net_admin),
		n->bridge_helper ? "true" : "false",
		n->bridge_helper_setuid ? "true" : "false");
	fprintf(f, ", \"sandbox\": {\"seccomp\": %s, \"seccomp_tsync\": %s, "
		"\"seccomp_trap\": %s, \"no_new_privs\": %s, ",
		s->seccomp ? "true" : "false", s->seccomp_tsync ? "true" : "false",
		s->seccomp_trap ? "true" : "false", s->no_new_privs ? "true" : "false");
	if (s->landlock_abi > 0)
		fprintf(f, "\"landlock_abi\": %d", s->landlock_abi);
	else
		fprintf(f, "\"landlock_abi\": null");
	fprintf(f, ", \"usable\": %s}", v.usable ? "true" : "false");
	{
		g_autofree char *sw = swtpm_find();

		fprintf(f, ", \"swtpm\": ");
		if (sw)
			json_string(f, sw);
		else
			fputs("null", f);
	}
	fprintf(f, "}\n");
}

/* What to do about it, one or two sentences. */
static const char *advice(const struct hv_host_report *r)
{
	if (!r->kvm_exists)
		return "Load the KVM module for this CPU (modprobe kvm_intel "
		       "or kvm_amd) and enable VT-x / AMD-V (SVM) in the "
		       "firmware setup; inside a VM, enable nested "
		       "virtualization on its host.";
	if (!r->kvm_accessible)
		return "Add yourself to the kvm group (sudo usermod -aG kvm "
		       "$USER, then log in again) or fix the udev rule that "
		       "sets /dev/kvm's owner and mode.";
	if (!r->caps_ok)
		return "This host kernel's KVM is too old for Vivarium: "
		       "upgrade the kernel.";
	switch (r->backend) {
	case HV_BACKEND_HARDWARE:
		return NULL;
	case HV_BACKEND_EMULATED:
		return "/dev/kvm is kvm_pvm (Pagetable-based VM): guests that "
		       "are not PVM-enabled Linux run in KVM's instruction "
		       "emulator (a few million instructions a second), and "
		       "full operating systems stop on instructions it cannot "
		       "emulate.  "
		       "For real speed use a host with VT-x or AMD-V "
		       "(kvm_intel / kvm_amd), or a VM with nested "
		       "virtualization.";
	default:
		if (!strcmp(r->kvm_module, "kvm_intel") && !r->cpu_vmx)
			return "kvm_intel is loaded but /proc/cpuinfo shows "
			       "no vmx flag: check that VT-x is enabled.";
		if (!strcmp(r->kvm_module, "kvm_amd") && !r->cpu_svm)
			return "kvm_amd is loaded but /proc/cpuinfo shows no "
			       "svm flag: check that AMD-V is enabled.";
		return "Could not tell which module backs /dev/kvm (expected "
		       "kvm_intel with vmx or kvm_amd with svm); guests may "
		       "run slowly.";
	}
}

/* @text after @prefix, wrapped at 76 columns, continuation lines indented
 * to line up with the text. */
static void print_wrapped(FILE *f, const char *prefix, const char *text)
{
	size_t indent = strlen(prefix), col = indent;

	fputs(prefix, f);
	while (*text) {
		size_t w = strcspn(text, " ");

		if (col > indent && col + 1 + w > 76) {
			fprintf(f, "\n%*s", (int)indent, "");
			col = indent;
		} else if (col > indent) {
			fputc(' ', f);
			col++;
		}
		fwrite(text, 1, w, f);
		col += w;
		text += w;
		while (*text == ' ')
			text++;
	}
	fputc('\n', f);
}

/* @err without a leading "@path: " (the line already names the path). */
static const char *skip_path(const char *err, const char *path)
{
	size_t n = strlen(path);

	if (!err[0])
		return "not usable";
	if (!strncmp(err, path, n) && err[n] == ':' && err[n + 1] == ' ')
		return err + n + 2;
	return err;
}

/* TAP networking, one sentence; NULL when it works fully. */
static const char *tap_advice(const struct hv_net_report *n)
{
	if (!n->tun_exists)
		return "TAP networking needs /dev/net/tun: load the tun module "
		       "(modprobe tun).  NAT networking works without it.";
	if (!n->tun_accessible && strstr(n->tun_error, "permission denied"))
		return "TAP networking needs /dev/net/tun to open read-write "
		       "(its usual mode is 0666: chmod 0666 /dev/net/tun).  NAT "
		       "networking works without it.";
	if (!n->tun_accessible)
		return "TAP networking needs /dev/net/tun to be the tun "
		       "driver's device (character device 10:200; modprobe "
		       "tun).  NAT networking works without it.";
	if (n->net_admin != 1 && !n->bridge_helper_setuid)
		return "Without CAP_NET_ADMIN, a TAP network needs a tap "
		       "device made for you beforehand: sudo ip tuntap add "
		       "dev tap0 mode tap user $USER.";
	return NULL;
}

static void print_net(FILE *f, const char *tun, const struct hv_net_report *n)
{
	if (n->tun_accessible)
		fprintf(f, "  %-20s opens read/write (mode %04o): TAP "
			"networking\n", tun, (unsigned)n->tun_mode);
	else if (n->tun_exists && n->tun_mode >= 0)	/* the what, not the fix */
		fprintf(f, "  %-20s %.*s (mode %04o, owner %u, group %u)\n", tun,
			(int)strcspn(skip_path(n->tun_error, tun), ":"),
			skip_path(n->tun_error, tun), (unsigned)n->tun_mode,
			n->tun_uid, n->tun_gid);
	else
		fprintf(f, "  %-20s %.*s\n", tun,
			(int)strcspn(skip_path(n->tun_error, tun), ":"),
			skip_path(n->tun_error, tun));
	fprintf(f, "  %-20s %s\n", "CAP_NET_ADMIN",
		n->net_admin < 0 ? "unknown" :
		n->net_admin ? "yes: may make and open any tap device" :
		"no: only tap devices made for this user");
	fprintf(f, "  %-20s %s\n", "bridge helper",
		!n->bridge_helper ? "not installed" :
		n->bridge_helper_setuid ? "installed, setuid root" :
		"installed, not setuid root: needs CAP_NET_ADMIN");
}

/* The sandbox a VM process would have here. */
static void print_sandbox(FILE *f, const struct sandbox_verdict *v)
{
	fprintf(f, "  %-20s %s\n", "seccomp", v->seccomp);
	fprintf(f, "  %-20s %s\n", "Landlock", v->landlock);
	fprintf(f, "  %-20s %s\n", "no_new_privs", v->no_new_privs);
	fprintf(f, "  %-20s %s\n", "user",
		geteuid() == 0 ? "root: VM processes keep uid 0 (without capabilities) unless vm.conf run-as=USER"
			       : "not root");
}

/* The host's USB devices and whether this user may open them (for
 * passthrough, usb/usb_host.h).  Returns how many may not be opened. */
static unsigned print_usb(FILE *f, const char *root)
{
	g_autofree char *sys = g_strconcat(root, USB_HOST_SYSFS, NULL);
	struct usb_host_info *v;
	char err[256], dev[64], node[64];
	unsigned denied = 0;
	size_t n;

	if (usb_host_list(sys, &v, &n, err, sizeof(err)) < 0) {
		fprintf(f, "  %-20s %s\n", "USB devices", err);
		return 0;
	}
	if (!n)
		fprintf(f, "  %-20s none on this host\n", "USB devices");
	for (size_t i = 0; i < n; i++) {
		bool ok;

		snprintf(node, sizeof(node), "%s%s", root, v[i].node);
		ok = access(node, R_OK | W_OK) == 0;
		denied += !ok;
		snprintf(dev, sizeof(dev), "USB %s", v[i].name);
		fprintf(f, "  %-20s %04x:%04x %s: %s\n", dev, v[i].vid, v[i].pid,
			v[i].product[0] ? v[i].product : "(no name)",
			ok ? "you may pass it through" : "not yours to open");
	}
	free(v);
	return denied;
}

static void print_human(FILE *f, const char *kvm,
			const struct hv_host_report *r, const char *tun,
			const struct hv_net_report *n,
			const struct sandbox_support *s, const char *root)
{
	const char *tap_fix = tap_advice(n);
	unsigned usb_denied;
	struct sandbox_verdict v;
	const char *fix = advice(r);
	int st = doctor_status(r);

	fprintf(f, "vivarium doctor\n\n");
	if (r->kvm_accessible)
		fprintf(f, "  %-20s opens read/write, KVM API %d\n", kvm,
			r->api_version);
	else
		fprintf(f, "  %-20s %s\n", kvm, skip_path(r->kvm_error, kvm));
	if (r->kvm_accessible) {
		if (r->caps_ok)
			fprintf(f, "  %-20s all required present\n",
				"capabilities");
		else if (r->missing_cap[0])
			fprintf(f, "  %-20s missing %s\n", "capabilities",
				r->missing_cap);
	}
	fprintf(f, "  %-20s %s\n", "CPU virtualization",
		r->cpu_vmx ? "vmx (Intel VT-x)" :
		r->cpu_svm ? "svm (AMD-V)" :
		"none (no vmx or svm flag in /proc/cpuinfo)");
	fprintf(f, "  %-20s %s\n", "KVM module",
		r->kvm_module[0] ? r->kvm_module : "not found in /sys/module");
	fprintf(f, "  %-20s %s\n", "nested virt",
		r->nested < 0 ? "unknown" : r->nested ? "on" : "off");
	fprintf(f, "  %-20s %s\n", "backend", backend_name(r->backend));
	print_net(f, tun, n);
	sandbox_describe(s, &v);
	print_sandbox(f, &v);
	usb_denied = print_usb(f, root);
	{
		g_autofree char *sw = swtpm_find();

		fprintf(f, "  %-20s %s%s\n", "TPM (swtpm)", sw ? sw : "not installed",
			sw ? "" : ": --tpm and tpm=on need it (apt-get install swtpm)");
	}
	fputc('\n', f);
	fprintf(f, "%s\n", st == 0 ? "OK: guests run at hardware speed." :
		st == 1 ? "WARNING: KVM works, but not with hardware "
			  "virtualization." :
		"ERROR: no usable /dev/kvm; guests cannot run.");
	if (fix)
		print_wrapped(f, "fix: ", fix);
	if (tap_fix)
		print_wrapped(f, "tap: ", tap_fix);
	if (usb_denied)
		print_wrapped(f, "usb: ", "to pass a USB device through, give your user its "
			      "node with a udev rule, e.g. SUBSYSTEM==\"usb\", "
			      "ATTRS{idVendor}==\"VVVV\", ATTRS{idProduct}==\"PPPP\", "
			      "MODE=\"0660\", TAG+=\"uaccess\" in "
			      "/etc/udev/rules.d/70-vivarium-usb.rules, then replug it.");
	if (!v.usable)
		print_wrapped(f, "sandbox: ", "this kernel cannot sandbox a VM process "
			      "(seccomp filters with TSYNC and TRAP, no_new_privs); VMs "
			      "start only with sandbox=off in vm.conf (vivarium run "
			      "--sandbox off), which leaves the user's files open to a "
			      "guest that breaks out of its device models.");
}

static void usage(FILE *f)
{
	fprintf(f, "usage: vivarium doctor [--json] [--kvm PATH] [--tun PATH]\n"
		"  Checks /dev/kvm, the CPU's virtualization support and "
		"the KVM module,\n"
		"  and what TAP networking needs (/dev/net/tun, "
		"CAP_NET_ADMIN),\n"
		"  and what the VM processes' sandbox has here (seccomp, "
		"Landlock, no_new_privs),\n"
		"  and which host USB devices you may pass through,\n"
		"  and whether swtpm (the TPM of --tpm, tpm=on) is installed.\n"
		"  Exit status: 0 hardware-speed guests, 1 KVM works but "
		"emulated,\n"
		"  2 no usable /dev/kvm.\n");
}

int cmd_doctor(int argc, char **argv)
{
	const char *kvm = "/dev/kvm", *tun = "/dev/net/tun", *root = "";
	struct hv_host_report r;
	struct hv_net_report n;
	struct sandbox_support s;
	bool json = false;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json")) {
			json = true;
		} else if (!strcmp(argv[i], "--kvm") && i + 1 < argc) {
			kvm = argv[++i];
		} else if (!strcmp(argv[i], "--tun") && i + 1 < argc) {
			tun = argv[++i];
		} else if (!strcmp(argv[i], "--root") && i + 1 < argc) {
			root = argv[++i];	/* tests: fake /proc, /sys */
		} else if (!strcmp(argv[i], "-h") ||
			   !strcmp(argv[i], "--help")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "vivarium doctor: unknown argument "
				"'%s'\n", argv[i]);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	hv_host_probe(root, kvm, &r);
	hv_net_probe(root, tun, &n);
	sandbox_probe(&s);
	if (json)
		print_json(stdout, kvm, &r, tun, &n, &s);
	else
		print_human(stdout, kvm, &r, tun, &n, &s, root);
	return doctor_status(&r);
}
