/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/share/p9.h - the 9P2000.L wire format: message types, constants
 * and a bounds-checked codec (little-endian integers, strings as len[2]
 * bytes, qids as type[1] version[4] path[8]).
 *
 * A message is size[4] type[1] tag[2] and a body, size counting itself.
 * The 9P2000.L messages (T-message = R-message - 1) are those of Linux's
 * include/net/9p/9p.h, as its client (net/9p/client.c) writes and reads
 * them; Rlerror carries a Linux errno.
 *
 * The reader never reads past its buffer: a short message sets @bad and
 * every later get returns 0 / an empty string.  The writer never writes
 * past its room: an overflow sets @overflow.
 */
#ifndef VIVARIUM_P9_H
#define VIVARIUM_P9_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum p9_type {
	P9_TLERROR = 6, P9_RLERROR,
	P9_TSTATFS = 8, P9_RSTATFS,
	P9_TLOPEN = 12, P9_RLOPEN,
	P9_TLCREATE = 14, P9_RLCREATE,
	P9_TSYMLINK = 16, P9_RSYMLINK,
	P9_TMKNOD = 18, P9_RMKNOD,
	P9_TRENAME = 20, P9_RRENAME,
	P9_TREADLINK = 22, P9_RREADLINK,
	P9_TGETATTR = 24, P9_RGETATTR,
	P9_TSETATTR = 26, P9_RSETATTR,
	P9_TXATTRWALK = 30, P9_RXATTRWALK,
	P9_TXATTRCREATE = 32, P9_RXATTRCREATE,
	P9_TREADDIR = 40, P9_RREADDIR,
	P9_TFSYNC = 50, P9_RFSYNC,
	P9_TLOCK = 52, P9_RLOCK,
	P9_TGETLOCK = 54, P9_RGETLOCK,
	P9_TLINK = 70, P9_RLINK,
	P9_TMKDIR = 72, P9_RMKDIR,
	P9_TRENAMEAT = 74, P9_RRENAMEAT,
	P9_TUNLINKAT = 76, P9_RUNLINKAT,
	P9_TVERSION = 100, P9_RVERSION,
	P9_TAUTH = 102, P9_RAUTH,
	P9_TATTACH = 104, P9_RATTACH,
	P9_TERROR = 106, P9_RERROR,
	P9_TFLUSH = 108, P9_RFLUSH,
	P9_TWALK = 110, P9_RWALK,
	P9_TOPEN = 112, P9_ROPEN,
	P9_TCREATE = 114, P9_RCREATE,
	P9_TREAD = 116, P9_RREAD,
	P9_TWRITE = 118, P9_RWRITE,
	P9_TCLUNK = 120, P9_RCLUNK,
	P9_TREMOVE = 122, P9_RREMOVE,
	P9_TSTAT = 124, P9_RSTAT,
	P9_TWSTAT = 126, P9_RWSTAT,
};

#define P9_HDR_SIZE	7		/* size[4] type[1] tag[2] */
#define P9_IOHDR_SIZE	24		/* Twrite's header: the most before data */
#define P9_NOTAG	0xffffu
#define P9_NOFID	0xffffffffu
#define P9_NONUNAME	0xffffffffu
#define P9_MAXWELEM	16		/* names per Twalk */
#define P9_VERSION_L	"9P2000.L"

/* qid.type */
#define P9_QTDIR	0x80
#define P9_QTSYMLINK	0x02
#define P9_QTFILE	0x00

/* Tgetattr request_mask / Rgetattr valid */
#define P9_GETATTR_BASIC	0x7ffull	/* mode .. blocks */

/* Tsetattr valid */
#define P9_SETATTR_MODE		0x001
#define P9_SETATTR_UID		0x002
#define P9_SETATTR_GID		0x004
#define P9_SETATTR_SIZE		0x008
#define P9_SETATTR_ATIME	0x010
#define P9_SETATTR_MTIME	0x020
#define P9_SETATTR_CTIME	0x040
#define P9_SETATTR_ATIME_SET	0x080
#define P9_SETATTR_MTIME_SET	0x100

/* Tlopen / Tlcreate flags (P9_DOTL_*: Linux's x86 open flags) */
#define P9_DOTL_ACCMODE		0x3
#define P9_DOTL_CREATE		00000100
#define P9_DOTL_EXCL		00000200
#define P9_DOTL_TRUNC		00001000
#define P9_DOTL_APPEND		00002000
#define P9_DOTL_NONBLOCK	00004000
#define P9_DOTL_DSYNC		00010000
#define P9_DOTL_DIRECT		00040000
#define P9_DOTL_DIRECTORY	00200000
#define P9_DOTL_NOATIME		01000000
#define P9_DOTL_SYNC		04000000

/* Tunlinkat flags */
#define P9_DOTL_AT_REMOVEDIR	0x200

/* Tlock / Tgetlock */
#define P9_LOCK_TYPE_RDLCK	0
#define P9_LOCK_TYPE_WRLCK	1
#define P9_LOCK_TYPE_UNLCK	2
#define P9_LOCK_SUCCESS		0
#define P9_LOCK_BLOCKED		1
#define P9_LOCK_ERROR		2
#define P9_LOCK_FLAGS_BLOCK	1
#define P9_LOCK_FLAGS_RECLAIM	2

struct p9_qid {
	uint8_t type;
	uint32_t version;
	uint64_t path;
};

/* ---- reading ------------------------------------------------------------ */

struct p9_reader {
	const uint8_t *buf;
	size_t len;			/* bytes readable */
	size_t pos;
	bool bad;			/* read past the end */
};

static inline void p9_reader_init(struct p9_reader *r, const void *buf,
				  size_t len)
{
	r->buf = buf;
	r->len = len;
	r->pos = 0;
	r->bad = false;
}

uint8_t p9_get8(struct p9_reader *r);
uint16_t p9_get16(struct p9_reader *r);
uint32_t p9_get32(struct p9_reader *r);
uint64_t p9_get64(struct p9_reader *r);
/* @n bytes in place (NULL and @bad when fewer remain). */
const uint8_t *p9_get_bytes(struct p9_reader *r, size_t n);
/*
 * p9_get_str - a string into @out (NUL-terminated, @outlen bytes of room).
 * Returns its length, or -EINVAL (bad set for a short message; for a
 * string holding a NUL byte or longer than @outlen - 1, only the return
 * value says so and the reader moves past it).
 */
int p9_get_str(struct p9_reader *r, char *out, size_t outlen);
void p9_get_qid(struct p9_reader *r, struct p9_qid *q);

/* ---- writing ------------------------------------------------------------ */

struct p9_writer {
	uint8_t *buf;
	size_t room;			/* bytes writable */
	size_t pos;
	bool overflow;
};

/* Start message @type with @tag in @buf (@room bytes): size filled in by
 * p9_finish(). */
void p9_begin(struct p9_writer *w, void *buf, size_t room, uint8_t type,
	      uint16_t tag);
void p9_put8(struct p9_writer *w, uint8_t v);
void p9_put16(struct p9_writer *w, uint16_t v);
void p9_put32(struct p9_writer *w, uint32_t v);
void p9_put64(struct p9_writer *w, uint64_t v);
void p9_put_bytes(struct p9_writer *w, const void *p, size_t n);
/* A string of @n bytes (at most 65535). */
void p9_put_strn(struct p9_writer *w, const char *s, size_t n);
void p9_put_str(struct p9_writer *w, const char *s);
void p9_put_qid(struct p9_writer *w, const struct p9_qid *q);
/* Room for @n more bytes, reserved in place (NULL on overflow). */
uint8_t *p9_reserve(struct p9_writer *w, size_t n);
/* Write the size field: the message's length, or 0 on overflow. */
size_t p9_finish(struct p9_writer *w);

/* "Rlerror" for @type, "T?" for unknown ones: for logs and tests. */
const char *p9_type_name(uint8_t type);

#endif
