/* SPDX-License-Identifier: MIT */
/* app/vmlib.c - the VM library: names, paths, vm.conf, run state. */
#define _GNU_SOURCE
#include "vmlib.h"
#include "usb/usb_host.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <pwd.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "log.h"
#include "newfile.h"
#include "options.h"

#define G_VM		"vm"
#define G_KERNEL	"direct-boot"
#define G_CDROM		"cdrom"

/* ---- names and paths ----------------------------------------------------- */

int vmlib_check_name(const char *what, const char *name, char *err,
		     size_t errlen)
{
	size_t len = name ? strlen(name) : 0;
	g_autofree char *shown = NULL;

	if (!len) {
		snprintf(err, errlen, "a %s cannot be empty", what);
		return -EINVAL;
	}
	if (len > VM_NAME_MAX) {
		snprintf(err, errlen, "%s '%.20s...' is too long (at most %d characters)",
			 what, name, VM_NAME_MAX);
		return -EINVAL;
	}
	if (name[0] == '.' || name[0] == '-') {
		snprintf(err, errlen, "%s '%s' cannot start with '%c'", what, name, name[0]);
		return -EINVAL;
	}
	for (const char *p = name; *p; p++) {
		if (g_ascii_isalnum(*p) || strchr("._+-", *p))
			continue;
		/* Shown escaped: the message stays one line. */
		shown = g_strescape(name, NULL);
		snprintf(err, errlen,
			 "%s '%s' has '%c': use letters, digits and . _ + - only",
			 what, shown, g_ascii_isprint(*p) ? *p : '?');
		return -EINVAL;
	}
	return 0;
}

int vm_name_check(const char *name, char *err, size_t errlen)
{
	return vmlib_check_name("VM name", name, err, errlen);
}

char *vmlib_root(void)
{
	/* Not g_get_user_data_dir(): it caches the first value it saw. */
	const char *data = getenv("XDG_DATA_HOME");

	if (data && data[0] == '/')
		return g_build_filename(data, "vivarium", "vms", NULL);
	return g_build_filename(g_get_home_dir(), ".local", "share", "vivarium",
				"vms", NULL);
}

char *vmlib_vm_dir(const char *name)
{
	g_autofree char *root = vmlib_root();

	return g_build_filename(root, name, NULL);
}

char *vmlib_vm_file(const char *name, const char *file)
{
	g_autofree char *dir = vmlib_vm_dir(name);

	return g_build_filename(dir, file, NULL);
}

/* mkdir -p @path 0700, then insist it is a directory of ours that nobody
 * else can enter (it holds the control sockets). */
static int private_dir(const char *path, char *err, size_t errlen)
{
	struct stat st;

	if (g_mkdir_with_parents(path, 0700) < 0) {
		snprintf(err, errlen, "cannot create '%s': %s", path, strerror(errno));
		return -errno;
	}
	if (lstat(path, &st) < 0) {
		snprintf(err, errlen, "cannot use '%s': %s", path, strerror(errno));
		return -errno;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != getuid() || (st.st_mode & 077)) {
		snprintf(err, errlen,
			 "'%s' is not a private directory of this user (want mode 0700, owner uid %u)",
			 path, (unsigned)getuid());
		return -EPERM;
	}
	return 0;
}

void vmlib_tighten_dir(const char *path)
{
	struct stat st;

	/* Only a real directory of ours; a link's target is not touched. */
	if (lstat(path, &st) < 0 || !S_ISDIR(st.st_mode) ||
	    st.st_uid != geteuid() || !(st.st_mode & 077))
		return;
	if (chmod(path, VM_DIR_MODE) == 0)
		vlog(LOG_WARN, "%s was open to others (mode %04o): made it %04o",
		     path, (unsigned)(st.st_mode & 07777), VM_DIR_MODE);
	else
		vlog(LOG_WARN, "%s is open to others (mode %04o) and cannot be made private: %s",
		     path, (unsigned)(st.st_mode & 07777), strerror(errno));
}

char *vmlib_runtime_dir(char *err, size_t errlen)
{
	const char *rt = getenv("XDG_RUNTIME_DIR");
	char *dir;

	if (rt && rt[0] == '/')
		dir = g_build_filename(rt, "vivarium", NULL);
	else
		dir = g_strdup_printf("/tmp/vivarium-%u", (unsigned)getuid());
	if (private_dir(dir, err, errlen) < 0) {
		g_free(dir);
		return NULL;
	}
	return dir;
}

char *vmlib_socket_path(const char *name, char *err, size_t errlen)
{
	g_autofree char *dir = vmlib_runtime_dir(err, errlen);
	char *path;

	if (!dir)
		return NULL;
	path = g_strdup_printf("%s/%s.sock", dir, name);
	if (strlen(path) >= sizeof(((struct sockaddr_un *)0)->sun_path)) {
		snprintf(err, errlen,
			 "control socket path '%s' is too long for a Unix socket; "
			 "set XDG_RUNTIME_DIR to a shorter directory", path);
		g_free(path);
		return NULL;
	}
	return path;
}

bool vmlib_exists(const char *name)
{
	g_autofree char *conf = vmlib_vm_file(name, VM_CONF_FILE);
	char err[8];

	return vm_name_check(name, err, sizeof(err)) == 0 &&
	       g_file_test(conf, G_FILE_TEST_IS_REGULAR);
}

static gint cmp_str(gconstpointer a, gconstpointer b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char **vmlib_list(void)
{
	g_autofree char *root = vmlib_root();
	GPtrArray *names = g_ptr_array_new();
	GDir *d = g_dir_open(root, 0, NULL);
	const char *e;

	/* Half-made or half-deleted folders start with '.': skipped. */
	while (d && (e = g_dir_read_name(d)))
		if (vmlib_exists(e))
			g_ptr_array_add(names, g_strdup(e));
	if (d)
		g_dir_close(d);
	g_ptr_array_sort(names, cmp_str);
	g_ptr_array_add(names, NULL);
	return (char **)g_ptr_array_free(names, FALSE);
}

#define REMOVE_DEPTH_MAX	64	/* VM folders are shallow; bounds open fds */

/* rm -r of entry @name of directory @dirfd.  Only a directory opened with
 * O_NOFOLLOW is entered, so a link swapped in meanwhile is not followed. */
static int remove_at(int dirfd, const char *name, unsigned depth)
{
	struct stat st;
	struct dirent *e;
	int fd, r = 0, r2;
	DIR *d;

	if (fstatat(dirfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISDIR(st.st_mode))
		return unlinkat(dirfd, name, 0) < 0 ? -errno : 0;
	if (depth >= REMOVE_DEPTH_MAX)
		return -ELOOP;
	fd = openat(dirfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ELOOP || errno == ENOTDIR)	/* no longer a directory */
			return unlinkat(dirfd, name, 0) < 0 ? -errno : 0;
		return -errno;
	}
	d = fdopendir(fd);
	if (!d) {
		r = -errno;
		close(fd);
		return r;
	}
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		r2 = remove_at(fd, e->d_name, depth + 1);
		if (r2 < 0 && !r)
			r = r2;
	}
	closedir(d);
	if (unlinkat(dirfd, name, AT_REMOVEDIR) < 0 && !r)
		r = -errno;
	return r;
}

int vmlib_remove_tree(const char *path)
{
	g_autofree char *parent = g_path_get_dirname(path);
	g_autofree char *base = g_path_get_basename(path);
	int dfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC), r;

	if (dfd < 0)
		return -errno;
	r = remove_at(dfd, base, 0);
	close(dfd);
	return r;
}

/* ---- the UEFI variable store ---------------------------------------------- */

int vm_uefi_vars_create(const char *dir, char *err, size_t errlen)
{
	g_autofree char *dst = g_build_filename(dir, VM_UEFI_VARS_FILE, NULL);
	g_autofree char *tmp = g_strconcat(dst, ".new", NULL);
	g_autofree char *data = NULL;
	gsize len = 0;
	g_autoptr(GError) gerr = NULL;
	int fd, r = 0;

	if (access(dst, F_OK) == 0)
		return 0;
	if (!g_file_get_contents(VM_UEFI_VARS_TEMPLATE, &data, &len, &gerr)) {
		snprintf(err, errlen, "cannot read %s: %s (install Debian's ovmf package)",
			 VM_UEFI_VARS_TEMPLATE, gerr->message);
		return -ENOENT;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, VM_FILE_MODE);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "cannot create %s: %s", tmp, g_strerror(-r));
		return r;
	}
	for (gsize done = 0; done < len && r == 0;) {
		ssize_t n = write(fd, data + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			r = n < 0 ? -errno : -EIO;
		else
			done += (gsize)n;
	}
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (close(fd) < 0 && r == 0)
		r = -errno;
	if (r == 0 && rename(tmp, dst) < 0)
		r = -errno;
	if (r < 0) {
		unlink(tmp);
		snprintf(err, errlen, "cannot write %s: %s", dst, g_strerror(-r));
		return r;
	}
	return 1;
}

/* ---- enum names ------------------------------------------------------------ */

static const char *const fw_names[] = {
	[MACHINE_FW_AUTO] = "auto", [MACHINE_FW_NONE] = "none",
	[MACHINE_FW_BIOS] = "bios", [MACHINE_FW_UEFI] = "uefi",
};
static const char *const boot_names[] = {
	[MACHINE_BOOT_DEFAULT] = "default", [MACHINE_BOOT_DISK] = "disk",
	[MACHINE_BOOT_CDROM] = "cdrom",
};
static const char *const if_names[] = {
	[MACHINE_IF_VIRTIO] = "virtio", [MACHINE_IF_ATA] = "ata",
};

const char *vm_firmware_name(enum machine_firmware fw)
{
	return (unsigned)fw < G_N_ELEMENTS(fw_names) ? fw_names[fw] : "?";
}

const char *vm_boot_name(enum machine_boot boot)
{
	return (unsigned)boot < G_N_ELEMENTS(boot_names) ? boot_names[boot] : "?";
}

const char *vm_if_name(enum machine_drive_if bus)
{
	return (unsigned)bus < G_N_ELEMENTS(if_names) ? if_names[bus] : "?";
}

static int lookup(const char *const *names, size_t n, const char *s)
{
	for (size_t i = 0; s && i < n; i++)
		if (names[i] && !strcmp(names[i], s))
			return (int)i;
	return -1;
}

/* ---- vm.conf -------------------------------------------------------------- */

int vm_mac_from_uuid(const char *uuid, unsigned nic_index, uint8_t mac[6])
{
	g_autoptr(GChecksum) sum = NULL;
	g_autofree char *lower = NULL, *text = NULL;
	guint8 digest[32];
	gsize len = sizeof(digest);

	if (!uuid || !g_uuid_string_is_valid(uuid))
		return -EINVAL;
	/* One UUID written in either case is one VM: one address. */
	lower = g_ascii_strdown(uuid, -1);
	text = g_strdup_printf("%s/%u", lower, nic_index);
	sum = g_checksum_new(G_CHECKSUM_SHA256);
	g_checksum_update(sum, (const guchar *)text, (gssize)strlen(text));
	g_checksum_get_digest(sum, digest, &len);
	memcpy(mac, digest, 6);
	mac[0] = (uint8_t)((mac[0] & 0xfc) | 0x02);	/* local, unicast */
	return 0;
}

const char *vm_size_str(uint64_t bytes, char *buf, size_t len)
{
	if (bytes && !(bytes & ((1ull << 30) - 1)))
		snprintf(buf, len, "%" PRIu64 "G", bytes >> 30);
	else if (bytes && !(bytes & ((1ull << 20) - 1)))
		snprintf(buf, len, "%" PRIu64 "M", bytes >> 20);
	else
		snprintf(buf, len, "%" PRIu64, bytes);
	return buf;
}

void vm_config_clear(struct vm_config *cfg)
{
	g_free(cfg->name);
	g_free(cfg->uuid);
	g_free(cfg->display);
	g_free(cfg->vga);
	g_free(cfg->vnc);
	g_free(cfg->vnc_password_file);
	g_free(cfg->run_as);
	g_free(cfg->notes);
	g_free(cfg->kernel);
	g_free(cfg->initrd);
	g_free(cfg->append);
	g_free(cfg->cdrom);
	g_free(cfg->uefi_vars);
	g_free(cfg->created);
	for (unsigned i = 0; i < cfg->ndisks; i++)
		g_free(cfg->disk[i].path);
	for (unsigned i = 0; i < cfg->nnics; i++)
		nic_spec_clear(&cfg->nic[i]);
	for (unsigned i = 0; i < cfg->nshares; i++)
		share_spec_clear(&cfg->share[i]);
	for (unsigned i = 0; i < cfg->nusb_hosts; i++)
		g_free(cfg->usb_host[i]);
	memset(cfg, 0, sizeof(*cfg));
}

/* A string key, or NULL if absent or empty. */
/* [vm] @key: "on" or "off"; @def when absent.  -EINVAL + @err else. */
static int get_on_off(GKeyFile *kf, const char *key, bool def, bool *out,
		      char *err, size_t errlen)
{
	g_autofree char *v = g_key_file_get_string(kf, G_VM, key, NULL);

	*out = def;
	if (!v)
		return 0;
	g_strstrip(v);
	if (strcmp(v, "on") && strcmp(v, "off")) {
		snprintf(err, errlen, "vm.conf: %s '%s': use on or off", key, v);
		return -EINVAL;
	}
	*out = !strcmp(v, "on");
	return 0;
}

static char *get_str(GKeyFile *kf, const char *group, const char *key)
{
	char *v = g_key_file_get_string(kf, group, key, NULL);

	if (v && !*v) {
		g_free(v);
		v = NULL;
	}
	return v;
}

static char *abs_in(const char *dir, const char *path)
{
	if (!path)
		return NULL;
	if (g_path_is_absolute(path))
		return g_strdup(path);
	return g_build_filename(dir, path, NULL);
}

int vm_audio_parse(const char *s, enum vm_audio *out)
{
	if (!strcmp(s, "pa"))
		*out = VM_AUDIO_PA;
	else if (!strcmp(s, "none"))
		*out = VM_AUDIO_NONE;
	else if (!strcmp(s, "off"))
		*out = VM_AUDIO_OFF;
	else
		return -EINVAL;
	return 0;
}

const char *vm_audio_name(enum vm_audio a)
{
	return a == VM_AUDIO_PA ? "pa" : a == VM_AUDIO_NONE ? "none" : "off";
}

int vm_config_from_keyfile(GKeyFile *kf, const char *dir,
			   struct vm_config *cfg, char *err, size_t errlen)
{
	g_autofree char *mem = NULL, *cpus = NULL, *fw = NULL, *boot = NULL;
	g_autofree char *kernel = NULL, *initrd = NULL, *cdrom = NULL;
	int r = -EINVAL, i;

	memset(cfg, 0, sizeof(*cfg));
	cfg->name = get_str(kf, G_VM, "name");
	if (!cfg->name || vm_name_check(cfg->name, err, errlen) < 0) {
		if (!cfg->name)
			snprintf(err, errlen, "vm.conf: [vm] has no name");
		goto fail;
	}
	cfg->uuid = get_str(kf, G_VM, "uuid");
	if (cfg->uuid && !g_uuid_string_is_valid(cfg->uuid)) {
		snprintf(err, errlen, "vm.conf: uuid '%s' is not a UUID", cfg->uuid);
		goto fail;
	}
	cfg->memory = VM_DEFAULT_MEMORY;
	mem = get_str(kf, G_VM, "memory");
	if (mem && (parse_size(mem, &cfg->memory) < 0 || !machine_ram_ok(cfg->memory))) {
		snprintf(err, errlen, "vm.conf: memory '%s' is not " MACHINE_RAM_RULE, mem);
		goto fail;
	}
	cfg->cpus = 1;
	cpus = get_str(kf, G_VM, "cpus");
	if (cpus && parse_uint(cpus, 1, MACHINE_MAX_CPUS, &cfg->cpus) < 0) {
		snprintf(err, errlen, "vm.conf: cpus '%s': give a number from 1 to %u",
			 cpus, MACHINE_MAX_CPUS);
		goto fail;
	}
	fw = get_str(kf, G_VM, "firmware");
	i = fw ? lookup(fw_names, G_N_ELEMENTS(fw_names), fw) : MACHINE_FW_AUTO;
	if (i < 0) {
		snprintf(err, errlen, "vm.conf: firmware '%s': use auto, bios, uefi or none", fw);
		goto fail;
	}
	cfg->firmware = (enum machine_firmware)i;
	boot = get_str(kf, G_VM, "boot");
	i = boot ? lookup(boot_names, G_N_ELEMENTS(boot_names), boot) : MACHINE_BOOT_DEFAULT;
	if (i < 0) {
		snprintf(err, errlen, "vm.conf: boot '%s': use default, disk or cdrom", boot);
		goto fail;
	}
	cfg->boot = (enum machine_boot)i;
	cfg->display = get_str(kf, G_VM, "display");
	if (!cfg->display)
		cfg->display = g_strdup("none");
	if (strcmp(cfg->display, "none") && strcmp(cfg->display, "sdl") &&
	    strcmp(cfg->display, "auto")) {
		snprintf(err, errlen, "vm.conf: display '%s': use none, sdl or auto", cfg->display);
		goto fail;
	}
	cfg->vga = get_str(kf, G_VM, "vga");
	if (!cfg->vga)
		cfg->vga = g_strdup("std");
	{
		struct machine_config mc = { 0 };

		if (parse_vga(cfg->vga, &mc) < 0) {
			snprintf(err, errlen, "vm.conf: vga '%s': use std, virtio or none", cfg->vga);
			goto fail;
		}
	}
	cfg->vnc = get_str(kf, G_VM, "vnc");
	if (cfg->vnc) {
		char msg[256];

		if (parse_vnc_addr(cfg->vnc, NULL, msg, sizeof(msg)) < 0) {
			snprintf(err, errlen, "vm.conf: %s", msg);
			goto fail;
		}
	}
	{
		g_autofree char *pwf = get_str(kf, G_VM, "vnc-password-file");

		cfg->vnc_password_file = abs_in(dir, pwf);
	}
	cfg->notes = get_str(kf, G_VM, "notes");
	cfg->run_as = get_str(kf, G_VM, "run-as");
	if (cfg->run_as && !*cfg->run_as)
		g_clear_pointer(&cfg->run_as, g_free);
	cfg->created = get_str(kf, G_VM, "created");
	if (get_on_off(kf, "sandbox", true, &cfg->sandbox, err, errlen) < 0 ||
	    get_on_off(kf, "coredump", false, &cfg->coredump, err, errlen) < 0 ||
	    get_on_off(kf, "vmmouse", true, &cfg->vmmouse, err, errlen) < 0 ||
	    get_on_off(kf, "agents", true, &cfg->agents, err, errlen) < 0 ||
	    get_on_off(kf, "usb", false, &cfg->usb, err, errlen) < 0 ||
	    get_on_off(kf, "tpm", false, &cfg->tpm, err, errlen) < 0)
		goto fail;
	{
		g_autofree char *au = get_str(kf, G_VM, "audio");

		if (vm_audio_parse(au ? au : "off", &cfg->audio) < 0) {
			snprintf(err, errlen, "audio '%s': use pa, none or off", au);
			goto fail;
		}
	}
	{
		g_autofree char *in = get_str(kf, G_VM, "input");

		if (in && strcmp(in, "virtio") && strcmp(in, "ps2")) {
			snprintf(err, errlen, "vm.conf: input '%s': use virtio or ps2", in);
			goto fail;
		}
		cfg->input_ps2 = in && !strcmp(in, "ps2");
	}

	kernel = get_str(kf, G_KERNEL, "kernel");
	initrd = get_str(kf, G_KERNEL, "initrd");
	cfg->kernel = abs_in(dir, kernel);
	cfg->initrd = abs_in(dir, initrd);
	cfg->append = get_str(kf, G_KERNEL, "append");
	if (cfg->initrd && !cfg->kernel) {
		snprintf(err, errlen, "vm.conf: an initrd without a kernel: set kernel too");
		goto fail;
	}
	if (cfg->firmware == MACHINE_FW_NONE && !cfg->kernel) {
		snprintf(err, errlen, "vm.conf: firmware=none boots a kernel directly: set kernel");
		goto fail;
	}
	if (cfg->firmware == MACHINE_FW_UEFI && cfg->kernel) {
		snprintf(err, errlen, "vm.conf: firmware=uefi does not boot a kernel directly yet: remove kernel or use firmware=bios");
		goto fail;
	}
	if (cfg->firmware == MACHINE_FW_UEFI)
		cfg->uefi_vars = g_build_filename(dir, VM_UEFI_VARS_FILE, NULL);

	for (unsigned d = 0; d < VM_MAX_DISKS; d++) {
		g_autofree char *group = g_strdup_printf("disk%u", d);
		g_autofree char *path = NULL, *fmt = NULL, *bus = NULL;
		struct vm_disk *disk = &cfg->disk[cfg->ndisks];
		GError *gerr = NULL;

		if (!g_key_file_has_group(kf, group))
			continue;
		path = get_str(kf, group, "path");
		if (!path) {
			snprintf(err, errlen, "vm.conf: [%s] has no path", group);
			goto fail;
		}
		fmt = get_str(kf, group, "format");
		disk->format = BLK_FMT_AUTO;
		if (fmt && strcmp(fmt, "auto")) {
			if (!strcmp(fmt, "raw"))
				disk->format = BLK_FMT_RAW;
			else if (!strcmp(fmt, "qcow2"))
				disk->format = BLK_FMT_QCOW2;
			else {
				snprintf(err, errlen, "vm.conf: [%s] format '%s': use raw or qcow2",
					 group, fmt);
				goto fail;
			}
		}
		bus = get_str(kf, group, "interface");
		i = bus ? lookup(if_names, G_N_ELEMENTS(if_names), bus) : MACHINE_IF_VIRTIO;
		if (i < 0) {
			snprintf(err, errlen, "vm.conf: [%s] interface '%s': use virtio or ata",
				 group, bus);
			goto fail;
		}
		disk->bus = (enum machine_drive_if)i;
		disk->readonly = g_key_file_get_boolean(kf, group, "readonly", &gerr);
		if (gerr) {
			bool absent = g_error_matches(gerr, G_KEY_FILE_ERROR,
						      G_KEY_FILE_ERROR_KEY_NOT_FOUND);

			g_error_free(gerr);
			if (!absent) {
				snprintf(err, errlen, "vm.conf: [%s] readonly: use true or false", group);
				goto fail;
			}
		}
		disk->path = abs_in(dir, path);
		cfg->ndisks++;
	}
	cdrom = get_str(kf, G_CDROM, "path");
	cfg->cdrom = abs_in(dir, cdrom);
	for (unsigned n = 0; n < VM_MAX_NICS; n++) {
		g_autofree char *group = g_strdup_printf("nic%u", n);

		r = nic_spec_from_keyfile(kf, group, &cfg->nic[cfg->nnics], err,
					  errlen);
		if (r == -ENOENT)
			continue;
		if (r < 0)
			goto fail;
		cfg->nnics++;
	}
	for (unsigned n = 0; n < MACHINE_MAX_SHARES; n++) {
		g_autofree char *group = g_strdup_printf("share%u", n);

		r = share_spec_from_keyfile(kf, group, &cfg->share[cfg->nshares],
					    err, errlen);
		if (r == -ENOENT)
			continue;
		if (r < 0)
			goto fail;
		cfg->nshares++;
	}
	for (unsigned n = 0; n < MACHINE_USB_HOST_MAX; n++) {
		g_autofree char *group = g_strdup_printf("usb%u", n);
		struct usb_host_sel sel;
		char e[256];
		char *host;

		if (!g_key_file_has_group(kf, group))
			continue;
		host = get_str(kf, group, "host");
		if (!host) {
			snprintf(err, errlen, "[%s]: no host= (VID:PID or BUS-PORT of a host USB device)",
				 group);
			r = -EINVAL;
			goto fail;
		}
		if (usb_host_parse(host, &sel, e, sizeof(e)) < 0) {
			snprintf(err, errlen, "[%s] host: %s", group, e);
			g_free(host);
			r = -EINVAL;
			goto fail;
		}
		cfg->usb_host[cfg->nusb_hosts++] = host;
	}
	return 0;
fail:
	vm_config_clear(cfg);
	return r;
}

int vm_config_load(const char *name, struct vm_config *cfg, GKeyFile **kfp,
		   char *err, size_t errlen)
{
	g_autofree char *dir = NULL, *path = NULL;
	GKeyFile *kf;
	GError *gerr = NULL;
	int r;

	memset(cfg, 0, sizeof(*cfg));
	if (kfp)
		*kfp = NULL;
	r = vm_name_check(name, err, errlen);
	if (r < 0)
		return r;
	dir = vmlib_vm_dir(name);
	path = g_build_filename(dir, VM_CONF_FILE, NULL);
	if (!g_file_test(path, G_FILE_TEST_EXISTS)) {
		snprintf(err, errlen, "no VM named '%s' (see 'vivarium list')", name);
		return -ENOENT;
	}
	{
		g_autofree char *root = vmlib_root();

		/* Libraries made before the library was private. */
		vmlib_tighten_dir(root);
		vmlib_tighten_dir(dir);
	}
	kf = g_key_file_new();
	if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_KEEP_COMMENTS, &gerr)) {
		snprintf(err, errlen, "cannot read %s: %s", path, gerr->message);
		g_error_free(gerr);
		g_key_file_unref(kf);
		return -EINVAL;
	}
	r = vm_config_from_keyfile(kf, dir, cfg, err, errlen);
	if (r == 0 && strcmp(cfg->name, name)) {
		snprintf(err, errlen, "%s names the VM '%s', but its folder is '%s'",
			 path, cfg->name, name);
		vm_config_clear(cfg);
		r = -EINVAL;
	}
	if (r < 0 || !kfp)
		g_key_file_unref(kf);
	else
		*kfp = kf;
	return r;
}

/* @path relative to @dir if it is inside it. */
static const char *rel_to(const char *dir, const char *path)
{
	size_t n = strlen(dir);

	if (path && !strncmp(path, dir, n) && path[n] == '/' && path[n + 1])
		return path + n + 1;
	return path;
}

static void set_opt(GKeyFile *kf, const char *group, const char *key,
		    const char *v)
{
	if (v)
		g_key_file_set_string(kf, group, key, v);
	else
		g_key_file_remove_key(kf, group, key, NULL);
}

void vm_config_to_keyfile(const struct vm_config *cfg, const char *dir,
			  GKeyFile *kf)
{
	char size[32];

	g_key_file_set_string(kf, G_VM, "name", cfg->name);
	set_opt(kf, G_VM, "uuid", cfg->uuid);
	g_key_file_set_string(kf, G_VM, "memory",
			      vm_size_str(cfg->memory, size, sizeof(size)));
	g_key_file_set_integer(kf, G_VM, "cpus", (gint)cfg->cpus);
	g_key_file_set_string(kf, G_VM, "firmware", vm_firmware_name(cfg->firmware));
	g_key_file_set_string(kf, G_VM, "boot", vm_boot_name(cfg->boot));
	g_key_file_set_string(kf, G_VM, "display", cfg->display ? cfg->display : "none");
	/* Written only when not the default (std). */
	set_opt(kf, G_VM, "vga", cfg->vga && strcmp(cfg->vga, "std") ? cfg->vga : NULL);
	set_opt(kf, G_VM, "vnc", cfg->vnc);
	set_opt(kf, G_VM, "vnc-password-file", cfg->vnc_password_file);
	set_opt(kf, G_VM, "notes", cfg->notes);
	/* Written only when not the default. */
	set_opt(kf, G_VM, "sandbox", cfg->sandbox ? NULL : "off");
	set_opt(kf, G_VM, "coredump", cfg->coredump ? "on" : NULL);
	set_opt(kf, G_VM, "run-as", cfg->run_as);
	set_opt(kf, G_VM, "vmmouse", cfg->vmmouse ? NULL : "off");
	set_opt(kf, G_VM, "agents", cfg->agents ? NULL : "off");
	set_opt(kf, G_VM, "usb", cfg->usb ? "on" : NULL);
	set_opt(kf, G_VM, "tpm", cfg->tpm ? "on" : NULL);
	set_opt(kf, G_VM, "audio", cfg->audio ? vm_audio_name(cfg->audio) : NULL);
	set_opt(kf, G_VM, "input", cfg->input_ps2 ? "ps2" : NULL);
	set_opt(kf, G_VM, "created", cfg->created);
	if (cfg->kernel) {
		g_key_file_set_string(kf, G_KERNEL, "kernel", rel_to(dir, cfg->kernel));
		set_opt(kf, G_KERNEL, "initrd", rel_to(dir, cfg->initrd));
		set_opt(kf, G_KERNEL, "append", cfg->append);
	}
	for (unsigned i = 0; i < cfg->ndisks; i++) {
		const struct vm_disk *d = &cfg->disk[i];
		g_autofree char *group = g_strdup_printf("disk%u", i);

		g_key_file_set_string(kf, group, "path", rel_to(dir, d->path));
		g_key_file_set_string(kf, group, "format", blk_format_name(d->format));
		g_key_file_set_string(kf, group, "interface", vm_if_name(d->bus));
		g_key_file_set_boolean(kf, group, "readonly", d->readonly);
	}
	if (cfg->cdrom)
		g_key_file_set_string(kf, G_CDROM, "path", cfg->cdrom);
	for (unsigned i = 0; i < cfg->nnics; i++) {
		g_autofree char *group = g_strdup_printf("nic%u", i);

		nic_spec_to_keyfile(&cfg->nic[i], kf, group);
	}
	for (unsigned i = 0; i < cfg->nshares; i++) {
		g_autofree char *group = g_strdup_printf("share%u", i);

		share_spec_to_keyfile(&cfg->share[i], kf, group);
	}
	for (unsigned i = 0; i < cfg->nusb_hosts; i++) {
		g_autofree char *group = g_strdup_printf("usb%u", i);

		g_key_file_set_string(kf, group, "host", cfg->usb_host[i]);
	}
}

int vm_keyfile_save(GKeyFile *kf, const char *path, char *err, size_t errlen)
{
	gsize len = 0;
	g_autofree char *data = g_key_file_to_data(kf, &len, NULL);
	struct newfile nf;
	int r;

	/* A nameless file, fsync, then renamed over the old one: a crash
	 * leaves the old vm.conf or the new, and no temporary. */
	r = newfile_open(&nf, path, VM_FILE_MODE, err, errlen);
	if (r < 0)
		return r;
	errno = 0;
	if (fchmod(nf.fd, VM_FILE_MODE) < 0 ||
	    write(nf.fd, data, len) != (ssize_t)len) {
		r = errno ? -errno : -EIO;
		snprintf(err, errlen, "cannot write %s: %s", path, g_strerror(-r));
		newfile_abort(&nf);
		return r;
	}
	return newfile_commit(&nf, true, err, errlen);
}

int vm_check_readable(const char *what, const char *path, char *err,
			  size_t errlen)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;

	if (fd < 0) {
		snprintf(err, errlen, "cannot read %s '%s': %s", what, path, strerror(errno));
		return -errno;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(err, errlen, "%s '%s' is not a regular file", what, path);
		return -EINVAL;
	}
	close(fd);
	return 0;
}

int vm_config_set(GKeyFile *kf, const char *assignment, char *err,
		  size_t errlen)
{
	const char *eq = strchr(assignment, '=');
	g_autofree char *key = NULL, *abs = NULL;
	const char *v;
	uint64_t size;
	unsigned n;

	if (!eq || eq == assignment) {
		snprintf(err, errlen, "'%s' is not KEY=VALUE (e.g. memory=2G)", assignment);
		return -EINVAL;
	}
	key = g_strndup(assignment, (gsize)(eq - assignment));
	v = eq + 1;
	if (!strcmp(key, "memory")) {
		char buf[32];

		if (parse_size(v, &size) < 0 || !machine_ram_ok(size)) {
			snprintf(err, errlen, "memory '%s' is not " MACHINE_RAM_RULE, v);
			return -EINVAL;
		}
		g_key_file_set_string(kf, G_VM, "memory", vm_size_str(size, buf, sizeof(buf)));
	} else if (!strcmp(key, "cpus")) {
		if (parse_uint(v, 1, MACHINE_MAX_CPUS, &n) < 0) {
			snprintf(err, errlen, "cpus '%s': give a number from 1 to %u", v, MACHINE_MAX_CPUS);
			return -EINVAL;
		}
		g_key_file_set_integer(kf, G_VM, "cpus", (gint)n);
	} else if (!strcmp(key, "firmware") || !strcmp(key, "boot") ||
		   !strcmp(key, "display")) {
		bool ok = !strcmp(key, "firmware") ? lookup(fw_names, G_N_ELEMENTS(fw_names), v) >= 0
			: !strcmp(key, "boot") ? lookup(boot_names, G_N_ELEMENTS(boot_names), v) >= 0
			: (!strcmp(v, "none") || !strcmp(v, "sdl") || !strcmp(v, "auto"));

		if (!ok) {
			snprintf(err, errlen, "%s '%s': use %s", key, v,
				 !strcmp(key, "firmware") ? "auto, bios, uefi or none"
				 : !strcmp(key, "boot") ? "default, disk or cdrom" : "none, sdl or auto");
			return -EINVAL;
		}
		g_key_file_set_string(kf, G_VM, key, v);
	} else if (!strcmp(key, "vga")) {
		struct machine_config mc = { 0 };

		if (parse_vga(v, &mc) < 0) {
			snprintf(err, errlen, "vga '%s': use std, virtio or none", v);
			return -EINVAL;
		}
		set_opt(kf, G_VM, "vga", strcmp(v, "std") ? v : NULL);
	} else if (!strcmp(key, "notes")) {
		set_opt(kf, G_VM, "notes", *v ? v : NULL);
	} else if (!strcmp(key, "audio")) {
		enum vm_audio a;

		if (vm_audio_parse(v, &a) < 0) {
			snprintf(err, errlen, "audio '%s': use pa, none or off", v);
			return -EINVAL;
		}
		set_opt(kf, G_VM, "audio", a ? v : NULL);
	} else if (!strcmp(key, "sandbox") || !strcmp(key, "coredump") ||
		   !strcmp(key, "vmmouse") || !strcmp(key, "agents") ||
		   !strcmp(key, "usb") || !strcmp(key, "tpm")) {
		bool dflt_on = strcmp(key, "coredump") && strcmp(key, "usb") &&
			       strcmp(key, "tpm");

		if (strcmp(v, "on") && strcmp(v, "off")) {
			snprintf(err, errlen, "%s '%s': use on or off", key, v);
			return -EINVAL;
		}
		/* Only a value other than the default is written. */
		set_opt(kf, G_VM, key, !strcmp(v, "on") == dflt_on ? NULL : v);
	} else if (!strcmp(key, "run-as")) {
		struct passwd *pw = *v ? getpwnam(v) : NULL;

		if (*v && !pw) {
			snprintf(err, errlen, "run-as '%s': no such user", v);
			return -EINVAL;
		}
		if (pw && pw->pw_uid == 0) {
			snprintf(err, errlen, "run-as '%s' is root: name an unprivileged user (or run-as= for none)", v);
			return -EINVAL;
		}
		set_opt(kf, G_VM, "run-as", *v ? v : NULL);
	} else if (!strcmp(key, "input")) {
		if (strcmp(v, "virtio") && strcmp(v, "ps2")) {
			snprintf(err, errlen, "input '%s': use virtio or ps2", v);
			return -EINVAL;
		}
		set_opt(kf, G_VM, key, !strcmp(v, "ps2") ? v : NULL);
	} else if (!strcmp(key, "vnc")) {
		if (*v && parse_vnc_addr(v, NULL, err, errlen) < 0)
			return -EINVAL;
		set_opt(kf, G_VM, "vnc", *v ? v : NULL);
	} else if (!strcmp(key, "vnc-password-file")) {
		if (*v) {
			char pw[64];
			int r;

			abs = g_canonicalize_filename(v, NULL);
			/* What the VM process will read at start. */
			r = vnc_password_read(abs, pw, sizeof(pw), err, errlen);
			explicit_bzero(pw, sizeof(pw));
			if (r < 0)
				return -EINVAL;
		}
		set_opt(kf, G_VM, "vnc-password-file", abs);
	} else if (!strncmp(key, "nic", 3) && key[3] >= '0' &&
		   key[3] < '0' + VM_MAX_NICS && !key[4]) {
		/* nicN=SPEC replaces the card (keeping its MAC unless SPEC
		 * has one); nicN= or nicN=none removes it. */
		struct nic_spec ns;
		g_autofree char *mac = g_key_file_get_string(kf, key, "mac", NULL);
		g_autofree char *uuid = g_key_file_get_string(kf, G_VM, "uuid", NULL);

		if (!*v || !strcmp(v, "none")) {
			g_key_file_remove_group(kf, key, NULL);
			return 0;
		}
		if (nic_spec_parse(v, &ns, err, errlen) < 0)
			return -EINVAL;
		if (!ns.has_mac) {
			ns.has_mac = true;
			if ((!mac || nic_parse_mac(mac, ns.mac) < 0) &&
			    vm_mac_from_uuid(uuid, (unsigned)(key[3] - '0'), ns.mac) < 0) {
				/* No UUID to derive from: a random local one. */
				for (unsigned i = 0; i < 6; i++)
					ns.mac[i] = (uint8_t)g_random_int_range(0, 256);
				ns.mac[0] = (uint8_t)((ns.mac[0] & 0xfc) | 0x02);
			}
		}
		g_key_file_remove_group(kf, key, NULL);
		nic_spec_to_keyfile(&ns, kf, key);
		nic_spec_clear(&ns);
	} else if (!strcmp(key, "append")) {
		set_opt(kf, G_KERNEL, "append", *v ? v : NULL);
	} else if (!strcmp(key, "kernel") || !strcmp(key, "initrd") ||
		   !strcmp(key, "cdrom")) {
		const char *group = strcmp(key, "cdrom") ? G_KERNEL : G_CDROM;
		const char *k = strcmp(key, "cdrom") ? key : "path";

		if (*v) {
			abs = g_canonicalize_filename(v, NULL);
			if (vm_check_readable(!strcmp(key, "cdrom") ? "ISO image" : key,
					   abs, err, errlen) < 0)
				return -EINVAL;
		}
		set_opt(kf, group, k, abs);
	} else {
		snprintf(err, errlen,
			 "unknown key '%s' (memory, cpus, firmware, boot, display, vga, vnc, vnc-password-file, notes, sandbox, coredump, input, vmmouse, agents, usb, tpm, audio, kernel, initrd, append, cdrom, nic0-nic3)",
			 key);
		return -EINVAL;
	}
	return 0;
}

void vm_machine_config(const struct vm_config *cfg, struct chardev *serial,
		       struct machine_config *out)
{
	memset(out, 0, sizeof(*out));
	out->ram_size = cfg->memory;
	out->ncpus = cfg->cpus;
	out->kernel_path = cfg->kernel;
	out->initrd_path = cfg->kernel ? cfg->initrd : NULL;
	out->cmdline = cfg->kernel ? (cfg->append ? cfg->append : VM_DEFAULT_APPEND) : NULL;
	out->serial = serial;
	out->firmware = cfg->firmware;
	out->vars_path = cfg->firmware == MACHINE_FW_UEFI ? cfg->uefi_vars : NULL;
	out->boot = cfg->boot;
	out->sercon = !strcmp(cfg->display ? cfg->display : "none", "none");
	out->no_vmmouse = !cfg->vmmouse;
	parse_vga(cfg->vga ? cfg->vga : "std", out);
	out->no_virtio_input = cfg->input_ps2;
	out->usb = cfg->usb || cfg->nusb_hosts;
	for (unsigned i = 0; i < cfg->ndisks && out->ndrives < MACHINE_MAX_DRIVES; i++) {
		struct machine_drive *d = &out->drive[out->ndrives++];

		d->path = cfg->disk[i].path;
		d->format = cfg->disk[i].format;
		d->bus = cfg->disk[i].bus;
		d->readonly = cfg->disk[i].readonly;
	}
	if (cfg->cdrom && out->ndrives < MACHINE_MAX_DRIVES) {
		struct machine_drive *d = &out->drive[out->ndrives++];

		d->path = cfg->cdrom;
		d->bus = MACHINE_IF_ATA;
		d->cdrom = true;
		d->readonly = true;
	}
	for (unsigned i = 0; i < cfg->nshares && i < MACHINE_MAX_SHARES; i++)
		out->share[out->nshares++] = share_to_machine(&cfg->share[i]);
}

/* ---- run state ---------------------------------------------------------- */

bool vmlib_running(const char *name, pid_t *pid)
{
	g_autofree char *path = vmlib_vm_file(name, VM_PID_FILE);
	/* Ask whether a read lock would conflict: only a write lock does,
	 * and only a writer of vm.pid (its owner: the VM's process) can take
	 * one.  Anyone who can read the file can hold a read lock. */
	struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET };
	char buf[32] = "";
	bool running = false;
	struct stat st;
	ssize_t n;
	int fd;

	if (pid)
		*pid = 0;
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return false;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
		close(fd);
		return false;		/* not a PID file our VM process made */
	}
	if (fcntl(fd, F_OFD_GETLK, &fl) == 0 && fl.l_type == F_WRLCK) {
		running = true;
		n = pread(fd, buf, sizeof(buf) - 1, 0);
		if (pid && n > 0)
			*pid = (pid_t)strtol(buf, NULL, 10);
	}
	close(fd);
	return running;
}

bool vmlib_saved(const char *name)
{
	g_autofree char *path = vmlib_vm_file(name, VM_SAVED_STATE_FILE);
	struct stat st;

	return lstat(path, &st) == 0 && S_ISREG(st.st_mode);
}
