/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/share/p9_server.h - a 9P2000.L file server for one host folder
 * (a "share"), confined to it.  Transport-free: it takes one request
 * message and writes its reply (virtio_9p.c carries them over a
 * virtqueue).  The messages are those of p9.h: version (msize
 * negotiation), attach, walk, getattr/setattr, lopen, lcreate, read,
 * write, readdir, mkdir, symlink, mknod (regular files only), link,
 * rename, renameat, unlinkat, remove, readlink, statfs, fsync, lock,
 * getlock, xattrwalk (get and list), clunk, flush; anything else gets
 * Rlerror EOPNOTSUPP.  Errors are Rlerror with the host's Linux errno.
 *
 * Confinement (the point of it):
 *  - A fid holds an O_PATH descriptor of its file, never only a path:
 *    what was walked is what gets opened, even if the name is swapped
 *    for a symlink meanwhile.  Opening reopens that very inode (through
 *    /proc/self/fd when there is one, else by its path again with the
 *    inode checked).
 *  - Every lookup is relative to a descriptor inside the share, with
 *    openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS)
 *    where the kernel has it, else component by component with
 *    O_NOFOLLOW; names from the guest are single components (no '/',
 *    not "..": ".." is computed from the fid's path and resolved from the
 *    root, and stops there).  The server never follows a symlink: the
 *    guest reads its target (Treadlink) and resolves it in its own tree.
 *  - Only directories and regular files are opened; device nodes, FIFOs
 *    and sockets are shown (getattr) but Tlopen refuses them (EPERM), and
 *    Tmknod creates regular files only.
 *  - A readonly share refuses every change with EROFS.
 *  - Set-user-ID and set-group-ID bits are dropped from modes the guest
 *    sets: its files belong to the host user running the VM.
 *
 * Ownership: getattr reports the attaching user's n_uname (Tattach; root
 * when the guest sends none) as each file's uid and gid: with the Linux
 * client's default access=user, every guest user attaches on its own and
 * sees the share's files as its own, which is what sharing a folder with
 * oneself means.  Files the guest creates belong to the host user; chown
 * (Tsetattr uid/gid) is accepted and changes nothing.
 *
 * Bounds: messages at most the negotiated msize (<= max_msize); at most
 * max_fids fids (then EMFILE); xattr values at most 64 KiB each and
 * P9_XATTR_BYTES_MAX buffered in all (then ENOMEM).  Replies are at most
 * the room the caller gives.
 *
 * Threads: not thread-safe; one caller at a time (the device's worker).
 */
#ifndef VIVARIUM_P9_SERVER_H
#define VIVARIUM_P9_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _GVariant GVariant;

#define P9_MAX_MSIZE_DEFAULT	(512u * 1024)	/* Linux's virtio client asks ~500 KiB */
#define P9_MIN_MSIZE		4096u
#define P9_MAX_FIDS_DEFAULT	4096u
#define P9_XATTR_BYTES_MAX	(1u << 20)

struct p9_server;

struct p9_server_config {
	const char *root;		/* the shared host folder */
	bool readonly;
	unsigned max_fids;		/* 0: P9_MAX_FIDS_DEFAULT */
	uint32_t max_msize;		/* 0: P9_MAX_MSIZE_DEFAULT; >= P9_MIN_MSIZE */
	/* For tests: do without /proc/self/fd (reopen by path, inode
	 * checked) / without openat2 (per-component O_NOFOLLOW walks). */
	bool no_procfd;
	bool no_openat2;
};

/*
 * p9_server_new - serve @cfg->root (opened now, O_PATH: it must be a
 * folder).  Returns the server, or NULL with one line in @err ("share
 * '/x': No such file or directory", "... is not a folder").
 */
struct p9_server *p9_server_new(const struct p9_server_config *cfg, char *err,
				size_t errlen);
void p9_server_free(struct p9_server *s);

/*
 * p9_server_handle - serve the request in @req[0, @len) (its size field
 * says how much of it is the message) and write the reply into @resp,
 * at most @room bytes.  Returns the reply's length, or 0 when there is
 * none (@room under 11 bytes, or fewer than 7 bytes of request: no tag to
 * answer to).  Never fails otherwise: a malformed request gets Rlerror
 * (EINVAL / EMSGSIZE / EPROTO).
 */
size_t p9_server_handle(struct p9_server *s, const uint8_t *req, size_t len,
			uint8_t *resp, size_t room);

/* The session's msize (the max before Tversion) and fids in use. */
uint32_t p9_server_msize(const struct p9_server *s);
uint32_t p9_server_max_msize(const struct p9_server *s);
unsigned p9_server_nfids(const struct p9_server *s);
bool p9_server_readonly(const struct p9_server *s);

/* A device reset: clunk every fid, forget the negotiated version. */
void p9_server_reset(struct p9_server *s);

/*
 * Saved state, P9_SERVER_STATE_TYPE: (version negotiated, msize, every
 * fid as (number, path relative to the share ("" for its root), uid
 * reported, open flags (P9_DOTL_*) or P9_FID_NOT_OPEN)).  Xattr fids
 * (Txattrwalk's, read and clunked at once by the client) are not saved.
 *
 * p9_server_load - check everything first (msize within bounds, fid
 * numbers unique and at most max_fids, paths of valid components without
 * "." or "..", flags known), then replace the session: each fid's path is
 * resolved again from the share's root as walks are (confined: no
 * symlink followed) and opened again with its flags (less create,
 * exclusive and truncate).  A path that is gone or is no longer the same
 * kind of file makes that fid stale (every use but Tclunk: ESTALE), not
 * the load fail: the host folder may have changed since.  Returns 0, or
 * -EINVAL + one line in @err and nothing changed.
 */
#define P9_SERVER_STATE_TYPE "(bua(usuu))"
#define P9_FID_NOT_OPEN 0xffffffffu
GVariant *p9_server_save(struct p9_server *s);
int p9_server_load(struct p9_server *s, GVariant *state, char *err,
		   size_t errlen);

#endif
