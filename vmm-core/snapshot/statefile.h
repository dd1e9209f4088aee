/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/snapshot/statefile.h - the machine-state file: a header, one
 * section per device (and per vCPU), and a SHA-256 trailer.  The format is
 * docs/machine-state.md; guest RAM is not in it (it has its own file).
 *
 * Each section has an id ("pic", "virtio-blk.1", "cpu.0"), a version its
 * owner chooses and a payload: a GVariant of the owner's type, stored
 * self-describing (serialised as type "v").  A reader therefore never
 * trusts a payload's shape: statefile_get() hands back only payloads in
 * normal form, and owners check the type they expect.
 *
 * Every function that can fail for a reason a user must read fills @err
 * (@errlen bytes, one line) and returns a negative errno.
 */
#ifndef VIVARIUM_STATEFILE_H
#define VIVARIUM_STATEFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <glib.h>

#define STATEFILE_MAGIC		"VIVSTATE"	/* 8 bytes, at offset 0 */
#define STATEFILE_END_MAGIC	"VIVSTEND"	/* 8 bytes, before the hash */
#define STATEFILE_VERSION	1u		/* what this code writes and reads */
#define STATEFILE_ID_MAX	64u		/* bytes of a section id */
#define STATEFILE_SECTIONS_MAX	256u
#define STATEFILE_SIZE_MAX	(64u << 20)	/* bytes; larger files are refused */

struct statefile;

/* ---- writing ------------------------------------------------------------ */

/* A new, empty state for a machine whose configuration hashes to
 * @config_hash (statefile_hash_config()).  Never NULL. */
struct statefile *statefile_new(uint64_t config_hash);

/*
 * statefile_put - add section @id (1..STATEFILE_ID_MAX bytes of
 * [a-z0-9._-]) with @version and @payload (a GVariant of any type; a
 * floating reference is sunk).  Returns 0, -EINVAL for a bad id or a NULL
 * payload, -EEXIST if @id is already there, -E2BIG past
 * STATEFILE_SECTIONS_MAX.  The payload's reference is dropped on failure.
 */
int statefile_put(struct statefile *sf, const char *id, uint32_t version,
		  GVariant *payload);

/*
 * statefile_serialise - the whole file as bytes (header, sections in the
 * order they were put, trailer).  Returns a GBytes (g_bytes_unref it), or
 * NULL with -E2BIG in *@r when it would pass STATEFILE_SIZE_MAX.
 */
GBytes *statefile_serialise(const struct statefile *sf, int *r);

/* ---- reading ------------------------------------------------------------ */

/*
 * statefile_parse - check and parse @len bytes at @data: size limits, both
 * magics, the format version (newer: -EPROTONOSUPPORT, "made by a newer
 * vivarium"), the SHA-256 trailer (-EBADMSG: corrupt or truncated), each
 * section's bounds, id and uniqueness, and that every payload is a
 * GVariant in normal form.  With @config_hash nonzero, a file for another
 * configuration is -ESTALE ("saved for another machine configuration").
 * On success *@out holds its own copy of the data.
 */
int statefile_parse(const void *data, size_t len, uint64_t config_hash,
		    struct statefile **out, char *err, size_t errlen);

/* Sections, in file order; statefile_id() is NULL past the end. */
unsigned statefile_count(const struct statefile *sf);
const char *statefile_id(const struct statefile *sf, unsigned i);

/*
 * statefile_get - the payload of section @id (a new reference: unref it)
 * and its version, or NULL if there is no such section.  With @type, a
 * payload of another type is NULL too (and -EPROTO with @err naming the
 * section): owners pass the type they wrote.
 */
GVariant *statefile_get(const struct statefile *sf, const char *id,
			const GVariantType *type, uint32_t *version,
			char *err, size_t errlen);

uint64_t statefile_config_hash(const struct statefile *sf);
void statefile_free(struct statefile *sf);

/* ---- files -------------------------------------------------------------- */

/* Write @sf to @path so that it appears complete or not at all
 * (vmm-core/newfile.h), mode 0600, replacing an existing file. */
int statefile_save(const struct statefile *sf, const char *path, char *err,
		   size_t errlen);

/* Read and parse @path (a regular file, at most STATEFILE_SIZE_MAX bytes;
 * -EFBIG beyond).  As statefile_parse(). */
int statefile_load(const char *path, uint64_t config_hash,
		   struct statefile **out, char *err, size_t errlen);

/* ---- configuration hash --------------------------------------------------- */

/* FNV-1a 64 of @len bytes, continuing from @h (start with
 * STATEFILE_HASH_INIT): the machine folds in what a state depends on (RAM
 * size, vCPU count, the device table's names in order). */
#define STATEFILE_HASH_INIT 0xcbf29ce484222325ull
uint64_t statefile_hash(uint64_t h, const void *data, size_t len);

#endif
