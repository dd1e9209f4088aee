/* SPDX-License-Identifier: MIT */
/*
 * app/vmlib.h - the VM library: one folder per VM under
 * $XDG_DATA_HOME/vivarium/vms/NAME/ holding vm.conf (a GKeyFile, format in
 * docs/vm-conf.md), its disk images, vm.log, serial.log and, while it runs,
 * vm.pid (locked by the VM's process).  The control socket of a running VM
 * is $XDG_RUNTIME_DIR/vivarium/NAME.sock (fallback: /tmp/vivarium-UID/).
 *
 * Every function that can fail for a reason the user must read fills
 * @err (@errlen bytes, one line, no newline) and returns a negative errno.
 */
#ifndef VIVARIUM_VMLIB_H
#define VIVARIUM_VMLIB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <glib.h>

#include "block/block.h"
#include "machine.h"
#include "nic.h"
#include "share.h"

#define VM_NAME_MAX		64	/* bytes; the socket path must fit too */
#define VM_CONF_FILE		"vm.conf"
#define VM_PID_FILE		"vm.pid"
#define VM_LOG_FILE		"vm.log"
#define VM_SERIAL_LOG_FILE	"serial.log"
#define VM_DISK_FILE		"disk.qcow2"
#define VM_SAVED_STATE_FILE	"saved.state"	/* `vivarium save`: devices, vCPUs */
#define VM_SAVED_RAM_FILE	"saved.ram"	/* and memory (docs/machine-state.md) */
#define VM_UEFI_VARS_FILE	"uefi-vars.fd"	/* firmware=uefi: OVMF's variable store */
/* What a new variable store is copied from (Debian's ovmf package). */
#define VM_UEFI_VARS_TEMPLATE	"/usr/share/OVMF/OVMF_VARS_4M.fd"
/* The library is the user's alone: it holds disk images and the guest's
 * console output. */
#define VM_DIR_MODE		0700
#define VM_FILE_MODE		0600
#define VM_MAX_DISKS		4
#define VM_MAX_NICS		MACHINE_MAX_NICS
#define VM_DEFAULT_MEMORY	(1ull << 30)
#define VM_DEFAULT_APPEND	"console=ttyS0"

struct vm_disk {
	char *path;			/* absolute */
	enum blk_format format;		/* AUTO: probe */
	enum machine_drive_if bus;
	bool readonly;
};

/* What vm.conf says, parsed and checked.  Strings are g_malloc'ed;
 * paths are absolute (relative ones in the file are relative to the VM's
 * folder). */
/* The TPM's state (swtpm's files) in a VM's folder (vm.conf tpm=on). */
#define VM_TPM_DIR "tpm"

struct vm_config {
	char *name;
	char *uuid;
	uint64_t memory;		/* bytes, whole MiB, >= 16 MiB */
	unsigned cpus;			/* 1..MACHINE_MAX_CPUS */
	enum machine_firmware firmware;
	enum machine_boot boot;
	char *display;			/* "none", "sdl" or "auto" */
	char *vga;			/* "std", "virtio" or "none" (parse_vga) */
	char *vnc;			/* ADDR:PORT or unix:PATH; may be NULL */
	char *vnc_password_file;	/* may be NULL */
	char *notes;			/* may be NULL */
	bool sandbox;			/* sandbox=on (default) | off */
	char *run_as;			/* run-as=USER: the VM process's user
					 * after set-up; NULL: stays as started */
	bool coredump;			/* coredump=on | off (default) */
	bool vmmouse;			/* vmmouse=on (default) | off */
	bool agents;			/* agents=on (default) | off */
	bool usb;			/* usb=on | off (absent: off; create writes on) */
	/* tpm=on | off (default): a TPM 2.0 (swtpm), its state in the
	 * folder's VM_TPM_DIR. */
	bool tpm;
	/* audio=pa | none | off (the default, and for VMs made before): the
	 * HDA sound card on PulseAudio, on the silent null backend, or no
	 * card. */
	enum vm_audio { VM_AUDIO_OFF = 0, VM_AUDIO_NONE, VM_AUDIO_PA } audio;
	bool input_ps2;			/* input=ps2 | virtio (default) */
	char *kernel, *initrd, *append;	/* direct boot; may be NULL */
	struct vm_disk disk[VM_MAX_DISKS];
	unsigned ndisks;
	char *cdrom;			/* ISO path; may be NULL */
	/* firmware=uefi: the folder's VM_UEFI_VARS_FILE (absolute; not a
	 * vm.conf key); NULL otherwise. */
	char *uefi_vars;
	char *created;			/* ISO 8601, UTC */
	/* [nic0]..[nic3], in order (a missing group ends nothing: the
	 * cards keep their group's number as their index in the list). */
	struct nic_spec nic[VM_MAX_NICS];
	unsigned nnics;
	/* [share0]..[share3]: shared folders (share.h), in order. */
	struct share_spec share[MACHINE_MAX_SHARES];
	unsigned nshares;
	/* [usb0]..[usb5] host=VID:PID|BUS-PORT: host USB devices passed
	 * through whenever the VM starts with them present (usb/usb_host.h);
	 * any implies usb=on. */
	char *usb_host[MACHINE_USB_HOST_MAX];
	unsigned nusb_hosts;
};

/* ---- names and paths (g_free the strings) ------------------------------ */

/* 1..VM_NAME_MAX bytes of [A-Za-z0-9._+-], not starting with '.' or '-'.
 * Returns 0 or -EINVAL with @err set. */
int vm_name_check(const char *name, char *err, size_t errlen);
/* The same rules for another kind of name (@what: "snapshot tag"), which
 * the messages call it: "a snapshot tag cannot be empty". */
int vmlib_check_name(const char *what, const char *name, char *err,
		     size_t errlen);
char *vmlib_root(void);				/* .../vivarium/vms */
char *vmlib_vm_dir(const char *name);		/* .../vms/NAME */
char *vmlib_vm_file(const char *name, const char *file);
/* The runtime directory, created 0700 if missing and checked to be ours
 * (not a symlink, owned by us, no access for others).  NULL + @err. */
char *vmlib_runtime_dir(char *err, size_t errlen);
/* Make @path (the library root or a VM's folder) VM_DIR_MODE if it is a
 * directory of ours that others may enter, with a warning saying so.  Links
 * and other users' folders are left alone. */
void vmlib_tighten_dir(const char *path);
/* NULL + @err if the path would not fit a sockaddr_un. */
char *vmlib_socket_path(const char *name, char *err, size_t errlen);
/* Does VM @name exist (its folder with a vm.conf)? */
bool vmlib_exists(const char *name);
/* Names of the VMs in the library, sorted; NULL-terminated (g_strfreev). */
char **vmlib_list(void);

/*
 * vmlib_remove_tree - rm -r @path without ever following a symbolic link:
 * a link, at the top or anywhere inside, is removed, never what it points
 * to.  Goes on past errors; returns 0 or the first -errno met.
 */
int vmlib_remove_tree(const char *path);

/* ---- vm.conf ------------------------------------------------------------ */

/* vm.conf's audio values: "pa", "none", "off" (0, or -EINVAL), and
 * back. */
int vm_audio_parse(const char *s, enum vm_audio *out);
const char *vm_audio_name(enum vm_audio a);

/* Parse @kf (the VM's folder @dir resolves relative paths).  -EINVAL + @err
 * for a missing or bad value ("vm.conf: memory '12Q' is not a size"). */
int vm_config_from_keyfile(GKeyFile *kf, const char *dir,
			   struct vm_config *cfg, char *err, size_t errlen);
/* Load and parse VM @name's vm.conf; the GKeyFile stays available in *@kf
 * if @kf is not NULL (g_key_file_unref it). -ENOENT: no such VM.  Makes
 * the library root and the VM's folder private (vmlib_tighten_dir). */
int vm_config_load(const char *name, struct vm_config *cfg, GKeyFile **kf,
		   char *err, size_t errlen);
/* Fill @kf from @cfg (paths inside @dir stored relative to it). */
void vm_config_to_keyfile(const struct vm_config *cfg, const char *dir,
			  GKeyFile *kf);
/* Write @kf to @path atomically (nameless file, fsync, rename over),
 * mode VM_FILE_MODE whatever the umask. */
int vm_keyfile_save(GKeyFile *kf, const char *path, char *err, size_t errlen);
void vm_config_clear(struct vm_config *cfg);

/*
 * vm_config_set - apply "KEY=VALUE" of `vivarium edit` to @kf: memory,
 * cpus, firmware, boot, display, vga, notes, kernel, initrd, append, cdrom (an
 * empty value removes kernel/initrd/append/cdrom/notes).  Checks the value
 * (sizes, numbers, readable files); -EINVAL + @err otherwise.
 */
int vm_config_set(GKeyFile *kf, const char *assignment, char *err,
		  size_t errlen);

/*
 * vm_machine_config - the struct machine_config for @cfg: @out's strings
 * and drive paths point into @cfg, which must outlive it.  @serial is
 * COM1's host side.  Firmware output is mirrored to COM1 (sercon) while
 * there is no display.
 */
void vm_machine_config(const struct vm_config *cfg, struct chardev *serial,
		       struct machine_config *out);

/*
 * vm_uefi_vars_create - give the VM in folder @dir its own UEFI variable
 * store: a copy of VM_UEFI_VARS_TEMPLATE as @dir/VM_UEFI_VARS_FILE (mode
 * 0600), written to a temporary name, fsync'ed and renamed, so a crash
 * leaves either no store or a whole one.  An existing store is kept.
 * Returns 1 if it made one, 0 if one was there, -errno with @err.
 */
int vm_uefi_vars_create(const char *dir, char *err, size_t errlen);

/* Names for the enums, as written in vm.conf and JSON. */
const char *vm_firmware_name(enum machine_firmware fw);
const char *vm_boot_name(enum machine_boot boot);
const char *vm_if_name(enum machine_drive_if bus);

/* ---- run state ----------------------------------------------------------- */

/*
 * vmlib_running - is VM @name's process alive?  It holds a write lock on
 * vm.pid for its whole life, so a PID file or socket left by a process
 * that crashed (or was killed) does not count.  Only a write lock on a
 * vm.pid of ours (a regular file, not a link, owned by us) counts: a read
 * lock someone else took does not make a stopped VM look running.  Sets
 * *@pid (0 if not running; may be NULL).
 */
bool vmlib_running(const char *name, pid_t *pid);

/* Does VM @name hold a saved state (`vivarium save`), which its next start
 * resumes?  (Its state file is there as a regular file.) */
bool vmlib_saved(const char *name);

/* A file the VM will read (@what: "kernel", "ISO image"...) must be a
 * readable regular file now: 0, or -errno with @err saying so. */
int vm_check_readable(const char *what, const char *path, char *err,
		      size_t errlen);

/* @bytes as vm.conf writes it: "2G", "1536M", else a byte count. */
const char *vm_size_str(uint64_t bytes, char *buf, size_t len);

/*
 * vm_mac_from_uuid - the MAC address of NIC @nic_index ([nicN] in
 * vm.conf) of the VM whose UUID is @uuid: the first 6 bytes of the SHA-256
 * of "UUID/N" (UUID in lower case, N in decimal), made a locally
 * administered (bit 1 of the first octet set) unicast (bit 0 clear)
 * address, IEEE 802-2014 §8.2.  The same UUID and index always give the
 * same address; a clone's new UUID gives new ones.  Returns 0, or -EINVAL
 * if @uuid is not an RFC 4122 UUID.
 */
int vm_mac_from_uuid(const char *uuid, unsigned nic_index, uint8_t mac[6]);

#endif
