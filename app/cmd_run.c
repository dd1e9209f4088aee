/* SPDX-License-Identifier: MIT */
/* app/cmd_run.c - `vivarium run`: boot a kernel in this process, with the
 * guest's serial console on the terminal or in a file. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <glib.h>

#include "audio/audio.h"
#include "block/block.h"
#include "commands.h"
#include "host/chardev.h"
#include "display.h"
#include "display/console.h"
#include "agents.h"
#include "hv.h"
#include "log.h"
#include "machine.h"
#include "usb/usb_host.h"
#include "usb_keeper.h"
#include "vmproc.h"
#include "host/swtpm.h"
#include "net/net.h"
#include "nic.h"
#include "options.h"
#include "sandbox/sandbox.h"
#include "share.h"
#include "additions_host.h"
#include "vm_sandbox.h"

#define DEFAULT_MEMORY	(1ull << 30)
#define DEFAULT_APPEND	"console=ttyS0"

/*
 * remove_at_exit - remove folder @dir (--tpm's temporary state) once this
 * process has ended, however it ends: the sandbox keeps /tmp out of our
 * reach by then, so a child does it, woken by the end of a pipe whose
 * write end only this process holds (close-on-exec: swtpm has none).
 */
static int remove_at_exit(const char *dir)
{
	int p[2];
	pid_t pid;

	if (pipe(p) < 0)
		return -errno;
	fcntl(p[0], F_SETFD, FD_CLOEXEC);
	fcntl(p[1], F_SETFD, FD_CLOEXEC);
	pid = survivor_fork(p[0]);
	if (pid < 0) {
		close(p[0]);
		close(p[1]);
		return (int)pid;
	}
	if (pid == 0) {
		char c;

		for (;;) {
			ssize_t n = read(SURVIVOR_FD, &c, 1);

			if (n == 0 || (n < 0 && errno != EINTR))
				break;
		}
		execl("/bin/rm", "rm", "-rf", "--", dir, (char *)NULL);
		_exit(127);
	}
	close(p[0]);
	/* p[1] stays open (and leaks on purpose) until the process ends. */
	return 0;
}

static void run_usage(FILE *f)
{
	fprintf(f,
		"usage: vivarium run [--kernel PATH [--initrd PATH] [--append STR]]\n"
		"                    [--disk PATH[,format=raw|qcow2][,if=virtio|ata][,readonly]]...\n"
		"                    [--cdrom PATH] [--boot disk|cdrom] [--firmware bios|uefi|none]\n"
		"                    [--bios PATH] [--vars PATH] [--cpus N] [--memory SIZE]\n"
		"                    [--serial stdio|file:PATH] [--cpu-model NAME]\n"
		"                    [--debugcon PATH] [--display sdl|none] [--vnc ADDR:PORT|unix:PATH]\n"
		"                    [--vnc-password-file PATH] [--vga std|virtio|none] [--input virtio|ps2]\n"
		"                    [--nic virtio|e1000[,nat][,hostfwd=RULE]...[,restrict=on]\n"
		"                          |tap,ifname=NAME|bridge,br=NAME[,mac=MAC][,link=down]]...\n"
		"                    [--nic none] [--share HOSTDIR[,tag=NAME][,readonly]]...\n"
		"                    [--sandbox on|off] [--coredump on|off] [--run-as USER]\n"
		"                    [--vmmouse on|off] [--agents on|off] [--usb on|off]\n"
		"                    [--usb-device VID:PID|BUS-PORT[.PORT...]]...\n"
		"                    [--audio pa|none|off] [--tpm]\n\n"
		"With --kernel, boots a Linux kernel (bzImage) directly; otherwise the\n"
		"BIOS (SeaBIOS) boots the disks and CD-ROM (--boot: which first; the\n"
		"default is the CD-ROM when there is one).  SIZE takes K, M, G suffixes\n"
		"(default 1G); --cpus 1-%u (default 1); --append defaults to \"%s\".\n"
		"--firmware uefi boots OVMF (Debian's ovmf package; --bios PATH: another\n"
		"code image) with its variable store in --vars PATH, a copy of\n"
		"/usr/share/OVMF/OVMF_VARS_4M.fd that keeps the variables the guest\n"
		"sets (without --vars they last until the VM stops).\n"
		"--debugcon logs what the firmware writes to port 0x402 (SeaBIOS's\n"
		"debug messages).  On the terminal console, type Ctrl-A x to quit.\n"
		"--display sdl opens the console window (the default when $DISPLAY is\n"
		"set; Right Ctrl is the host key: Host+F full screen, Host+Del\n"
		"Ctrl+Alt+Del); --vnc serves the screen over VNC (ADDR defaults to\n"
		"127.0.0.1; the password is the file's first line; without one, anyone\n"
		"who can reach a TCP port sees the screen and types into the VM).\n"
		"--input virtio (the default) adds a virtio tablet and keyboard beside\n"
		"PS/2: once the guest's virtio_input driver runs them, the window and\n"
		"VNC point absolutely (no grab); --input ps2 leaves them out.\n"
		"--nic adds a network card (up to %u; none by default): NAT through\n"
		"libslirp (DHCP gives the guest 10.0.2.15; RULE is\n"
		"[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT, HOSTADDR 127.0.0.1\n"
		"by default), a tap device of the host, or a tap that QEMU's bridge\n"
		"helper puts on a bridge.\n"
		"--share gives the guest a host folder (up to 4) over virtio-9p; the\n"
		"guest mounts it with mount -t 9p -o trans=virtio,version=9p2000.L NAME\n"
		"DIR (NAME defaults to the folder's name); it cannot reach outside it.\n"
		"--sandbox off runs the VM without its sandbox (seccomp allow-lists,\n"
		"Landlock, no capabilities), for debugging; --coredump on lets it dump\n"
		"core (the dump holds guest memory).  --run-as USER (when started as\n"
		"root): once the images, sockets and window are open, the process becomes\n"
		"USER (its uid, gid and groups), as vm.conf run-as= does for library VMs.\n"
		"--vmmouse off leaves out the VMware vmmouse, the absolute pointer on the\n"
		"PS/2 mouse that guests' built-in drivers (Linux's psmouse) use.\n"
		"--agents off leaves out virtio-serial and its guest agent ports\n"
		"(spice-vdagent's com.redhat.spice.0, qemu-guest-agent's\n"
		"org.qemu.guest_agent.0); they serve the guest while a window or VNC runs.\n"
		"--usb on adds an xHCI USB controller (PCI 00:18.0) with a USB tablet and\n"
		"keyboard, which the window and VNC use while the guest's driver polls\n"
		"them (off by default).\n"
		"--usb-device passes a host USB device through (up to 6; implies --usb on):\n"
		"VID:PID (hexadecimal) or the BUS-PORT path `vivarium usb host` lists.\n"
		"The host's driver lets go of it while the VM runs and gets it back when\n"
		"the VM stops; isochronous endpoints (webcams, audio) do not work yet.\n"
		"--audio pa adds an Intel HDA sound card (PCI 00:1b.0) played and recorded\n"
		"through PulseAudio (or PipeWire's pulse server); without a server it stays\n"
		"silent and reconnects.  none: the card, silent.  off (the default): no card.\n"
		"--tpm adds a TPM 2.0 (TIS interface at 0xfed40000, ACPI MSFT0101) on\n"
		"swtpm (Debian's swtpm package); SeaBIOS measures the boot into its PCRs.\n"
		"Its state is in a temporary folder removed when the VM ends (a library\n"
		"VM with tpm=on keeps it in its folder's tpm/).\n"
		"--cpu-model says what CPUID the vCPUs show: host (the default) is\n"
		"everything KVM supports on this host; compat hides CMPXCHG16B, XSAVE\n"
		"and the AVX, AVX2, AVX-512, AMX, FMA, F16C, XOP and FMA4 families\n"
		"(leaf 0xd then reads zero); nox2apic hides only x2APIC.  Every model\n"
		"shows one package of N cores with one thread each (leaves 1, 4, 0xb,\n"
		"0x1f, 0x80000008, 0x8000001d, 0x8000001e), the hypervisor bit, XSAVE\n"
		"sizes for the components it shows, and KVM's leaves 0x40000000-1\n"
		"(kvm-clock, PV EOI and the other KVM_FEATURE_* bits KVM supports).\n",
		MACHINE_MAX_CPUS, DEFAULT_APPEND, MACHINE_MAX_NICS);
}

struct sigwait_arg {
	sigset_t set;
	struct machine *m;
	int signo;
};

/* SIGINT/SIGTERM/SIGHUP stop the VM cleanly (terminal restored). */
static void *signal_thread(void *opaque)
{
	struct sigwait_arg *a = opaque;

	sandbox_thread_enter(SANDBOX_THREAD_SIGNALS, "signals");
	if (sigwait(&a->set, &a->signo) == 0 && a->signo != SIGUSR2) {
		vlog(LOG_WARN, "%s: stopping the VM", strsignal(a->signo));
		machine_stop(a->m, 128 + a->signo);
	}
	return NULL;
}

struct machine_thread_arg {
	struct machine *m;
	GMainLoop *loop;
	int status;
	char err[512];
};

static gboolean quit_loop(gpointer loop)
{
	g_main_loop_quit(loop);
	return G_SOURCE_REMOVE;
}

static void *machine_thread(void *opaque)
{
	struct machine_thread_arg *a = opaque;

	sandbox_thread_enter(SANDBOX_THREAD_MACHINE, "machine");
	a->status = machine_run(a->m, a->err, sizeof(a->err));
	g_idle_add(quit_loop, a->loop);
	return NULL;
}

static void press_power_button(void *opaque)
{
	machine_power_button(opaque);
}

/* --run-as USER: the user the process becomes (with the sandbox: once
 * Landlock holds its paths, vm_sandbox_enter()). */
static const char *run_as_user;

/* Once everything is open (the window, VNC, the NICs' backends), before
 * the machine is built: the sandbox (@so NULL: off; core dumps still off
 * unless asked), and --run-as's user either way. */
static int enter_sandbox(const struct vm_sandbox_opts *so, bool coredump,
			 bool window, char *err, size_t errlen)
{
	struct vm_sandbox_opts o;

	if (!so) {
		int r = run_as_user ? vm_run_as(run_as_user, err, errlen) : 0;

		if (!coredump)
			prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
		return r;
	}
	o = *so;
	o.window = window;
	return vm_sandbox_enter(&o, NULL, 0, err, errlen);
}

/* With a window or VNC: the machine runs on a thread and the main thread
 * serves the frontends until the machine ends. */
static int run_with_display(struct machine *m, struct console *con,
			    const struct vm_display_opts *dopts,
			    const struct vm_sandbox_opts *so, bool coredump,
			    struct vm_agents *agents, char *err, size_t errlen)
{
	struct machine_thread_arg a = { .m = m };
	struct vm_display *d;
	pthread_t t;
	int r;

	r = vm_display_open(&d, con, dopts, press_power_button, m, err, errlen);
	if (r < 0)
		return r;
	vm_display_set_state(d, "Running");
	if (agents)
		vm_display_set_agents(d, agents);
	r = enter_sandbox(so, coredump, vm_display_is_sdl(d), err, errlen);
	if (r < 0) {
		vm_display_close(d);
		return r;
	}
	a.loop = g_main_loop_new(NULL, FALSE);
	r = -pthread_create(&t, NULL, machine_thread, &a);
	if (r < 0) {
		snprintf(err, errlen, "cannot start the machine thread: %s", strerror(-r));
	} else {
		g_main_loop_run(a.loop);
		pthread_join(t, NULL);
		r = a.status;
		if (r < 0)
			snprintf(err, errlen, "%s", a.err);
	}
	g_main_loop_unref(a.loop);
	vm_display_close(d);
	return r;
}

/* The backends of @cfg's NICs (after the machine) and the parsed specs. */
static void free_nics(struct machine_config *cfg, struct nic_spec *nics,
		      unsigned nnics)
{
	for (unsigned i = 0; i < cfg->nnics; i++)
		net_free(cfg->nic[i].backend);
	cfg->nnics = 0;
	for (unsigned i = 0; i < nnics; i++)
		nic_spec_clear(&nics[i]);
}

int cmd_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "kernel", required_argument, NULL, 'k' },
		{ "initrd", required_argument, NULL, 'i' },
		{ "append", required_argument, NULL, 'a' },
		{ "cpus", required_argument, NULL, 'c' },
		{ "memory", required_argument, NULL, 'm' },
		{ "serial", required_argument, NULL, 's' },
		{ "cpu-model", required_argument, NULL, 'M' },
		{ "disk", required_argument, NULL, 'd' },
		{ "cdrom", required_argument, NULL, 'C' },
		{ "boot", required_argument, NULL, 'b' },
		{ "firmware", required_argument, NULL, 'f' },
		{ "bios", required_argument, NULL, 'B' },
		{ "vars", required_argument, NULL, 'W' },
		{ "debugcon", required_argument, NULL, 'D' },
		{ "display", required_argument, NULL, 'S' },
		{ "vnc", required_argument, NULL, 'V' },
		{ "vnc-password-file", required_argument, NULL, 'P' },
		{ "vga", required_argument, NULL, 'G' },
		{ "input", required_argument, NULL, 'I' },
		{ "nic", required_argument, NULL, 'N' },
		{ "share", required_argument, NULL, 'F' },
		{ "sandbox", required_argument, NULL, 'X' },
		{ "coredump", required_argument, NULL, 'Y' },
		{ "vmmouse", required_argument, NULL, 'U' },
		{ "agents", required_argument, NULL, 'A' },
		{ "usb", required_argument, NULL, 'u' },
		{ "usb-device", required_argument, NULL, 'H' },
		{ "audio", required_argument, NULL, 'O' },
		{ "tpm", no_argument, NULL, 'T' },
		{ "run-as", required_argument, NULL, 'R' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct machine_config cfg = {
		.ram_size = DEFAULT_MEMORY,
		.ncpus = 1,
		.cmdline = DEFAULT_APPEND,
		/* No display yet: the firmware's screen goes to the serial
		 * console as well. */
		.sercon = true,
	};
	const char *serial = "stdio", *debugcon = NULL;
	struct sigwait_arg sig = { 0 };
	struct vm_display_opts dopts = { .name = "vivarium run" };
	struct console *con = NULL;
	struct machine *m = NULL;
	pthread_t sigthread;
	char err[512] = "";
	bool append_set = false, nic_none = false, sandbox = true, coredump = false;
	bool agents_on = true;
	const char *audio = "off";
	bool tpm = false;
	g_autofree char *tpm_dir = NULL;
	struct vm_agents *agents = NULL;
	struct vm_sandbox_opts so = { 0 };
	struct nic_spec nics[MACHINE_MAX_NICS];
	unsigned nnics = 0;
	g_autoptr(GArray) shares = g_array_new(FALSE, TRUE, sizeof(struct share_spec));
	const char *usb_devs[MACHINE_USB_HOST_MAX];
	unsigned nusb_devs = 0;
	bool usb_off = false;
	int opt, r, status;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'k': cfg.kernel_path = optarg; break;
		case 'i': cfg.initrd_path = optarg; break;
		case 'a': cfg.cmdline = optarg; append_set = true; break;
		case 's': serial = optarg; break;
		case 'c':
			if (parse_uint(optarg, 1, MACHINE_MAX_CPUS, &cfg.ncpus) < 0) {
				fprintf(stderr, "vivarium: --cpus '%s': give a number from 1 to %u\n",
					optarg, MACHINE_MAX_CPUS);
				return 2;
			}
			break;
		case 'm':
			if (parse_size(optarg, &cfg.ram_size) < 0) {
				fprintf(stderr, "vivarium: --memory '%s' is not a size (examples: 512M, 2G)\n",
					optarg);
				return 2;
			}
			break;
		case 'M':
			cfg.cpu_model = hv_cpu_model_find(optarg);
			if (!cfg.cpu_model) {
				fprintf(stderr, "vivarium: unknown --cpu-model '%s'\n", optarg);
				return 2;
			}
			break;
		case 'd':
		case 'C':
			if (cfg.ndrives == MACHINE_MAX_DRIVES) {
				fprintf(stderr, "vivarium: at most %u disks and CD-ROMs\n",
					MACHINE_MAX_DRIVES);
				return 2;
			}
			if (opt == 'C') {
				cfg.drive[cfg.ndrives++] = (struct machine_drive){
					.path = optarg, .format = BLK_FMT_RAW,
					.bus = MACHINE_IF_ATA, .cdrom = true,
					.readonly = true,
				};
			} else if (parse_drive_spec(optarg, &cfg.drive[cfg.ndrives],
						    err, sizeof(err)) < 0) {
				fprintf(stderr, "vivarium: %s\n", err);
				return 2;
			} else {
				cfg.ndrives++;
			}
			break;
		case 'b':
			if (!strcmp(optarg, "disk")) {
				cfg.boot = MACHINE_BOOT_DISK;
			} else if (!strcmp(optarg, "cdrom")) {
				cfg.boot = MACHINE_BOOT_CDROM;
			} else {
				fprintf(stderr, "vivarium: --boot '%s': use disk or cdrom\n", optarg);
				return 2;
			}
			break;
		case 'f':
			if (!strcmp(optarg, "bios")) {
				cfg.firmware = MACHINE_FW_BIOS;
			} else if (!strcmp(optarg, "uefi")) {
				cfg.firmware = MACHINE_FW_UEFI;
			} else if (!strcmp(optarg, "none")) {
				cfg.firmware = MACHINE_FW_NONE;
			} else {
				fprintf(stderr, "vivarium: --firmware '%s': use bios, uefi or none\n", optarg);
				return 2;
			}
			break;
		case 'B':
			cfg.bios_path = optarg;
			break;
		case 'W':
			cfg.vars_path = optarg;
			break;
		case 'D':
			debugcon = optarg;
			break;
		case 'S':
			if (vm_display_parse_kind(optarg, &dopts.kind) < 0) {
				fprintf(stderr, "vivarium: --display '%s': use sdl or none\n", optarg);
				return 2;
			}
			break;
		case 'V':
			dopts.vnc = optarg;
			break;
		case 'P':
			dopts.vnc_password_file = optarg;
			break;
		case 'G':
			if (parse_vga(optarg, &cfg) < 0) {
				fprintf(stderr, "vivarium: --vga '%s': use std, virtio or none\n", optarg);
				return 2;
			}
			break;
		case 'I':
			if (strcmp(optarg, "virtio") && strcmp(optarg, "ps2")) {
				fprintf(stderr, "vivarium: --input '%s': use virtio or ps2\n", optarg);
				return 2;
			}
			cfg.no_virtio_input = !strcmp(optarg, "ps2");
			break;
		case 'N':
			if (!strcmp(optarg, "none")) {
				nic_none = true;
				break;
			}
			if (nnics == MACHINE_MAX_NICS) {
				fprintf(stderr, "vivarium: at most %u network cards\n",
					MACHINE_MAX_NICS);
				return 2;
			}
			if (nic_spec_parse(optarg, &nics[nnics], err, sizeof(err)) < 0) {
				fprintf(stderr, "vivarium: %s\n", err);
				return 2;
			}
			nnics++;
			break;
		case 'A':
			if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
				fprintf(stderr, "vivarium: --agents '%s': use on or off\n", optarg);
				return 2;
			}
			agents_on = !strcmp(optarg, "on");
			break;
		case 'F': {
			struct share_spec sh;

			if (shares->len == MACHINE_MAX_SHARES) {
				fprintf(stderr, "vivarium: at most %u shared folders\n",
					MACHINE_MAX_SHARES);
				return 2;
			}
			if (share_spec_parse(optarg, &sh, err, sizeof(err)) < 0) {
				fprintf(stderr, "vivarium: %s\n", err);
				return 2;
			}
			g_array_append_val(shares, sh);
			break;
		}
		case 'R': {
			struct passwd *pw = getpwnam(optarg);

			if (!pw || pw->pw_uid == 0) {
				fprintf(stderr, "vivarium: --run-as '%s': %s\n", optarg,
					pw ? "is root: name an unprivileged user" : "no such user");
				return 2;
			}
			if (geteuid() != 0 && geteuid() != pw->pw_uid) {
				fprintf(stderr, "vivarium: --run-as '%s': only a VM started as root can change its user\n",
					optarg);
				return 2;
			}
			run_as_user = optarg;
			break;
		}
		case 'X':
		case 'Y':
			if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
				fprintf(stderr, "vivarium: --%s '%s': use on or off\n",
					opt == 'X' ? "sandbox" : "coredump", optarg);
				return 2;
			}
			*(opt == 'X' ? &sandbox : &coredump) = !strcmp(optarg, "on");
			break;
		case 'U':
			if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
				fprintf(stderr, "vivarium: --vmmouse '%s': use on or off\n",
					optarg);
				return 2;
			}
			cfg.no_vmmouse = !strcmp(optarg, "off");
			break;
		case 'u':
			if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
				fprintf(stderr, "vivarium: --usb '%s': use on or off\n",
					optarg);
				return 2;
			}
			cfg.usb = !strcmp(optarg, "on");
			usb_off = !cfg.usb;
			break;
		case 'H': {
			struct usb_host_sel sel;

			if (usb_host_parse(optarg, &sel, err, sizeof(err)) < 0) {
				fprintf(stderr, "vivarium: --usb-device: %s\n", err);
				return 2;
			}
			if (nusb_devs == MACHINE_USB_HOST_MAX) {
				fprintf(stderr, "vivarium: --usb-device: at most %u devices\n",
					MACHINE_USB_HOST_MAX);
				return 2;
			}
			usb_devs[nusb_devs++] = optarg;
			break;
		}
		case 'O':
			if (strcmp(optarg, "pa") && strcmp(optarg, "none") &&
			    strcmp(optarg, "off")) {
				fprintf(stderr, "vivarium: --audio '%s': use pa, none or off\n",
					optarg);
				return 2;
			}
			audio = optarg;
			break;
		case 'T':
			tpm = true;
			break;
		case 'h':
			run_usage(stdout);
			return 0;
		default:
			run_usage(stderr);
			return 2;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "vivarium: unexpected argument '%s'\n", argv[optind]);
		return 2;
	}
	if (nusb_devs && usb_off) {
		fprintf(stderr, "vivarium: --usb-device needs the USB controller: drop --usb off\n");
		return 2;
	}
	if (nusb_devs)
		cfg.usb = true;
	if (cfg.firmware == MACHINE_FW_NONE && !cfg.kernel_path) {
		fprintf(stderr, "vivarium: --firmware none boots a kernel directly: give --kernel PATH\n");
		return 2;
	}
	if (!cfg.kernel_path && (cfg.initrd_path || append_set)) {
		fprintf(stderr, "vivarium: --initrd and --append go with --kernel\n");
		return 2;
	}
	if (!machine_ram_ok(cfg.ram_size)) {
		fprintf(stderr, "vivarium: --memory must be " MACHINE_RAM_RULE "\n");
		return 2;
	}
	if (dopts.vnc_password_file && !dopts.vnc) {
		fprintf(stderr, "vivarium: --vnc-password-file goes with --vnc\n");
		return 2;
	}
	if (dopts.vnc) {
		char msg[256];

		if (parse_vnc_addr(dopts.vnc, NULL, msg, sizeof(msg)) < 0) {
			fprintf(stderr, "vivarium: %s\n", msg);
			return 2;
		}
	}
	if (cfg.no_vga && !dopts.vnc)
		dopts.kind = VM_DISPLAY_NONE;	/* nothing to show */
	if (nic_none && nnics) {
		fprintf(stderr, "vivarium: --nic none goes alone\n");
		return 2;
	}
	/* A missing folder, a file, a tag twice: refused before anything. */
	if (share_specs_check((const struct share_spec *)(void *)shares->data,
			      shares->len, err, sizeof(err)) < 0) {
		fprintf(stderr, "vivarium: %s\n", err);
		return 2;
	}
	for (unsigned i = 0; i < shares->len; i++)
		cfg.share[cfg.nshares++] =
			share_to_machine(&g_array_index(shares, struct share_spec, i));
	/* Signals go to one thread; every thread started from here on (the
	 * NICs' backends', the vCPUs') inherits the mask. */
	sigemptyset(&sig.set);
	sigaddset(&sig.set, SIGINT);
	sigaddset(&sig.set, SIGTERM);
	sigaddset(&sig.set, SIGHUP);
	sigaddset(&sig.set, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &sig.set, NULL);

	/* Backends first: a busy forward port or a missing tap device is
	 * refused before anything else starts. */
	for (unsigned i = 0; i < nnics; i++) {
		/* QEMU's first address, then the next ones. */
		uint8_t mac[6] = { 0x52, 0x54, 0x00, 0x12, 0x34, (uint8_t)(0x56 + i) };

		if (nic_open(&nics[i], mac, &cfg.nic[i], err, sizeof(err)) < 0) {
			fprintf(stderr, "vivarium: NIC %u: %s\n", i, err);
			free_nics(&cfg, nics, nnics);
			return 1;
		}
		cfg.nnics++;
	}

	if (!strcmp(serial, "stdio")) {
		cfg.serial = chardev_stdio_new();
	} else if (!strncmp(serial, "file:", 5) && serial[5]) {
		cfg.serial = chardev_file_new(serial + 5);
		if (!cfg.serial) {
			fprintf(stderr, "vivarium: cannot open serial log '%s': %s\n",
				serial + 5, strerror(errno));
			return 1;
		}
	} else {
		fprintf(stderr, "vivarium: --serial '%s': use stdio or file:PATH\n", serial);
		return 2;
	}
	if (debugcon) {
		cfg.debugcon = chardev_file_new(debugcon);
		if (!cfg.debugcon) {
			fprintf(stderr, "vivarium: cannot open debug console log '%s': %s\n",
				debugcon, strerror(errno));
			chardev_free(cfg.serial);
			return 1;
		}
	}
	if (vm_display_wanted(&dopts)) {
		cfg.console = con = console_new();
		if (!con) {
			fprintf(stderr, "vivarium: out of memory\n");
			return 1;
		}
	}
	if (agents_on) {
		agents = vm_agents_new(true, true, err, sizeof(err));
		if (!agents) {
			fprintf(stderr, "vivarium: %s\n", err);
			return 1;
		}
		{
			/* The guest additions mount the shares at /mnt/TAG. */
			const struct share_spec *sp = (const struct share_spec *)shares->data;
			const char *tags[ADDITIONS_SHARES_MAX];
			bool ro[ADDITIONS_SHARES_MAX];
			struct additions_share as[ADDITIONS_SHARES_MAX];
			unsigned ns = MIN(shares->len, ADDITIONS_SHARES_MAX);

			for (unsigned i = 0; i < ns; i++) {
				tags[i] = sp[i].tag;
				ro[i] = sp[i].readonly;
			}
			ns = additions_shares_from_config(tags, ro, ns, NULL, as);
			if (vm_agents_enable_additions(agents, as, ns, err, sizeof(err)) < 0) {
				fprintf(stderr, "vivarium: %s\n", err);
				vm_agents_free(agents);
				return 1;
			}
		}
		cfg.nserial_ports = vm_agents_ports(agents, cfg.serial_port,
						    MACHINE_MAX_SERIAL_PORTS);
	}
	/* After the signal mask: the PulseAudio thread inherits it. */
	if (strcmp(audio, "off")) {
		g_autofree char *name = g_strdup_printf("run %d", (int)getpid());

		cfg.audio = !strcmp(audio, "pa") ? audio_pa_new(name) : audio_null_new();
		if (!cfg.audio)
			fprintf(stderr, "vivarium: --audio %s: cannot start the sound card's host side; no sound card\n",
				audio);
	}
	if (tpm) {
		/* Before the sandbox: swtpm is a program to exec. */
		tpm_dir = g_dir_make_tmp("vivarium-tpm-XXXXXX", NULL);
		r = tpm_dir ? remove_at_exit(tpm_dir) : -errno;
		if (r == 0)
			r = swtpm_start_as(tpm_dir, run_as_user, &cfg.tpm, err, sizeof(err));
		else
			snprintf(err, sizeof(err), "--tpm: no temporary folder: %s",
				 strerror(-r));
		if (r < 0) {
			fprintf(stderr, "vivarium: %s\n", err);
			audio_backend_free(cfg.audio);
			vm_agents_free(agents);
			free_nics(&cfg, nics, nnics);
			console_free(con);
			chardev_free(cfg.debugcon);
			chardev_free(cfg.serial);
			return 1;
		}
	}
	if (cfg.usb && usb_keeper_start(err, sizeof(err)) < 0)
		fprintf(stderr, "vivarium: %s: a passed-through USB device stays driverless on the host if this process dies\n",
			err);
	r = machine_create(&cfg, &m, err, sizeof(err));
	if (r < 0) {
		swtpm_stop(cfg.tpm);
		audio_backend_free(cfg.audio);
		vm_agents_free(agents);
		free_nics(&cfg, nics, nnics);
		console_free(con);
		chardev_free(cfg.debugcon);
		chardev_free(cfg.serial);	/* restores the terminal first */
		fprintf(stderr, "vivarium: %s\n", err);
		return 1;
	}
	/* Host USB devices: opened before the sandbox, which has no
	 * /dev/bus/usb. */
	for (unsigned i = 0; i < nusb_devs; i++) {
		unsigned port;

		if (machine_usb_attach_spec(m, usb_devs[i], &port, err,
					    sizeof(err)) < 0) {
			machine_destroy(m);
			swtpm_stop(cfg.tpm);
			vm_agents_free(agents);
			free_nics(&cfg, nics, nnics);
			console_free(con);
			chardev_free(cfg.debugcon);
			chardev_free(cfg.serial);
			fprintf(stderr, "vivarium: --usb-device: %s\n", err);
			return 1;
		}
	}
	sig.m = m;
	pthread_create(&sigthread, NULL, signal_thread, &sig);

	so.mc = &cfg;
	so.coredump = coredump;
	so.run_as = run_as_user;
	if (con) {
		status = run_with_display(m, con, &dopts, sandbox ? &so : NULL,
					  coredump, agents, err, sizeof(err));
	} else {
		status = enter_sandbox(sandbox ? &so : NULL, coredump, false, err,
				       sizeof(err));
		if (status == 0)
			status = machine_run(m, err, sizeof(err));
	}

	pthread_kill(sigthread, SIGUSR2);
	pthread_join(sigthread, NULL);
	/* The backends' threads take the machine's device lock: stopped
	 * before it goes. */
	for (unsigned i = 0; i < cfg.nnics; i++)
		net_stop(cfg.nic[i].backend);
	machine_destroy(m);
	swtpm_stop(cfg.tpm);
	audio_backend_free(cfg.audio);
	vm_agents_free(agents);
	free_nics(&cfg, nics, nnics);
	for (unsigned i = 0; i < shares->len; i++)
		share_spec_clear(&g_array_index(shares, struct share_spec, i));
	console_free(con);
	chardev_free(cfg.debugcon);
	chardev_free(cfg.serial);	/* restores the terminal */
	if (status < 0) {
		fprintf(stderr, "vivarium: %s\n", err);
		return 1;
	}
	return status;
}
