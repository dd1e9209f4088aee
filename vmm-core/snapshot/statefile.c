/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/snapshot/statefile.c - the machine-state file (format:
 * docs/machine-state.md).  All integers little-endian; sections and their
 * payloads start on 8-byte boundaries so GVariant data stays aligned.
 */
#define _GNU_SOURCE
#include "snapshot/statefile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "newfile.h"

#define HEADER_SIZE	32u
#define SECTION_HEAD	16u	/* u16 id_len, u16 0, u32 version, u64 len */
#define TRAILER_SIZE	(8u + 32u)	/* end magic, SHA-256 */

struct section {
	char id[STATEFILE_ID_MAX + 1];
	uint32_t version;
	GVariant *payload;	/* the owner's value (not the "v" wrapper) */
};

struct statefile {
	uint64_t config_hash;
	struct section *sec;
	unsigned n, cap;
};

static inline size_t pad8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

static void put_le(uint8_t *p, uint64_t v, unsigned bytes)
{
	for (unsigned i = 0; i < bytes; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le(const uint8_t *p, unsigned bytes)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < bytes; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static bool id_ok(const char *id, size_t len)
{
	if (len == 0 || len > STATEFILE_ID_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = id[i];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* Padding is zero: a file has exactly one byte form. */
static bool zeros(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return false;
	return true;
}

static struct section *find(const struct statefile *sf, const char *id)
{
	for (unsigned i = 0; i < sf->n; i++)
		if (!strcmp(sf->sec[i].id, id))
			return &sf->sec[i];
	return NULL;
}

uint64_t statefile_hash(uint64_t h, const void *data, size_t len)
{
	const uint8_t *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	return h;
}

struct statefile *statefile_new(uint64_t config_hash)
{
	struct statefile *sf = g_new0(struct statefile, 1);

	sf->config_hash = config_hash;
	return sf;
}

void statefile_free(struct statefile *sf)
{
	if (!sf)
		return;
	for (unsigned i = 0; i < sf->n; i++)
		g_variant_unref(sf->sec[i].payload);
	g_free(sf->sec);
	g_free(sf);
}

/* Takes ownership of @payload (a full reference). */
static int add(struct statefile *sf, const char *id, size_t id_len,
	       uint32_t version, GVariant *payload)
{
	struct section *s;

	if (sf->n == STATEFILE_SECTIONS_MAX) {
		g_variant_unref(payload);
		return -E2BIG;
	}
	if (sf->n == sf->cap) {
		sf->cap = sf->cap ? 2 * sf->cap : 16;
		sf->sec = g_renew(struct section, sf->sec, sf->cap);
	}
	s = &sf->sec[sf->n++];
	memcpy(s->id, id, id_len);
	s->id[id_len] = 0;
	s->version = version;
	s->payload = payload;
	return 0;
}

int statefile_put(struct statefile *sf, const char *id, uint32_t version,
		  GVariant *payload)
{
	if (!payload)
		return -EINVAL;
	g_variant_ref_sink(payload);
	if (!id || !id_ok(id, strlen(id))) {
		g_variant_unref(payload);
		return -EINVAL;
	}
	if (find(sf, id)) {
		g_variant_unref(payload);
		return -EEXIST;
	}
	return add(sf, id, strlen(id), version, payload);
}

unsigned statefile_count(const struct statefile *sf)
{
	return sf->n;
}

const char *statefile_id(const struct statefile *sf, unsigned i)
{
	return i < sf->n ? sf->sec[i].id : NULL;
}

uint64_t statefile_config_hash(const struct statefile *sf)
{
	return sf->config_hash;
}

GVariant *statefile_get(const struct statefile *sf, const char *id,
			const GVariantType *type, uint32_t *version,
			char *err, size_t errlen)
{
	struct section *s = find(sf, id);

	if (!s)
		return NULL;
	if (type && !g_variant_is_of_type(s->payload, type)) {
		snprintf(err, errlen, "state section '%s' holds %s, not %s", id,
			 g_variant_get_type_string(s->payload),
			 g_variant_type_peek_string(type));
		return NULL;
	}
	if (version)
		*version = s->version;
	return g_variant_ref(s->payload);
}

GBytes *statefile_serialise(const struct statefile *sf, int *r)
{
	GByteArray *out = g_byte_array_new();
	GBytes **data = g_new0(GBytes *, sf->n + 1);
	uint8_t head[HEADER_SIZE] = { 0 };
	size_t total = HEADER_SIZE + TRAILER_SIZE;
	GChecksum *sum;
	gsize dlen = 32;
	uint8_t digest[32];
	static const uint8_t zeros[8];

	for (unsigned i = 0; i < sf->n; i++) {
		GVariant *v = g_variant_ref_sink(g_variant_new_variant(sf->sec[i].payload));

		data[i] = g_variant_get_data_as_bytes(v);
		g_variant_unref(v);
		total += SECTION_HEAD + pad8(strlen(sf->sec[i].id)) +
			 pad8(g_bytes_get_size(data[i]));
	}
	if (total > STATEFILE_SIZE_MAX) {
		*r = -E2BIG;
		for (unsigned i = 0; i < sf->n; i++)
			g_bytes_unref(data[i]);
		g_free(data);
		g_byte_array_unref(out);
		return NULL;
	}
	memcpy(head, STATEFILE_MAGIC, 8);
	put_le(head + 8, STATEFILE_VERSION, 4);
	put_le(head + 16, sf->config_hash, 8);
	put_le(head + 24, sf->n, 4);
	g_byte_array_append(out, head, sizeof(head));
	for (unsigned i = 0; i < sf->n; i++) {
		uint8_t sh[SECTION_HEAD] = { 0 };
		size_t id_len = strlen(sf->sec[i].id);
		size_t plen = g_bytes_get_size(data[i]);

		put_le(sh, id_len, 2);
		put_le(sh + 4, sf->sec[i].version, 4);
		put_le(sh + 8, plen, 8);
		g_byte_array_append(out, sh, sizeof(sh));
		g_byte_array_append(out, (const uint8_t *)sf->sec[i].id, (guint)id_len);
		g_byte_array_append(out, zeros, (guint)(pad8(id_len) - id_len));
		g_byte_array_append(out, g_bytes_get_data(data[i], NULL), (guint)plen);
		g_byte_array_append(out, zeros, (guint)(pad8(plen) - plen));
		g_bytes_unref(data[i]);
	}
	g_free(data);
	g_byte_array_append(out, (const uint8_t *)STATEFILE_END_MAGIC, 8);
	sum = g_checksum_new(G_CHECKSUM_SHA256);
	g_checksum_update(sum, out->data, out->len);
	g_checksum_get_digest(sum, digest, &dlen);
	g_checksum_free(sum);
	g_byte_array_append(out, digest, sizeof(digest));
	*r = 0;
	return g_byte_array_free_to_bytes(out);
}

#define FAIL(code, ...)                                  \
	do {                                             \
		snprintf(err, errlen, __VA_ARGS__);      \
		r = (code);                              \
		goto fail;                               \
	} while (0)

int statefile_parse(const void *data, size_t len, uint64_t config_hash,
		    struct statefile **out, char *err, size_t errlen)
{
	struct statefile *sf = NULL;
	GBytes *all = NULL;
	const uint8_t *p;
	uint8_t digest[32];
	gsize dlen = 32;
	GChecksum *sum;
	size_t off, body_end;
	uint32_t version, nsec;
	int r;

	*out = NULL;
	if (len < HEADER_SIZE + TRAILER_SIZE || memcmp(data, STATEFILE_MAGIC, 8))
		FAIL(-EINVAL, "not a vivarium machine-state file");
	if (len > STATEFILE_SIZE_MAX)
		FAIL(-EFBIG, "machine-state file too large (%zu bytes)", len);
	/* Our own aligned copy: payloads are parsed in place. */
	all = g_bytes_new(data, len);
	p = g_bytes_get_data(all, NULL);
	version = (uint32_t)get_le(p + 8, 4);
	if (version > STATEFILE_VERSION)
		FAIL(-EPROTONOSUPPORT,
		     "machine-state format %u was made by a newer vivarium (this one reads %u)",
		     version, STATEFILE_VERSION);
	if (version == 0)
		FAIL(-EBADMSG, "machine-state file is corrupt (format version 0)");
	body_end = len - TRAILER_SIZE;
	sum = g_checksum_new(G_CHECKSUM_SHA256);
	g_checksum_update(sum, p, body_end + 8);
	g_checksum_get_digest(sum, digest, &dlen);
	g_checksum_free(sum);
	if (memcmp(p + body_end, STATEFILE_END_MAGIC, 8) ||
	    memcmp(p + body_end + 8, digest, sizeof(digest)))
		FAIL(-EBADMSG, "machine-state file is truncated or corrupt (checksum mismatch)");
	if (get_le(p + 12, 4) || get_le(p + 28, 4))
		FAIL(-EBADMSG, "machine-state file has unknown flags");
	sf = statefile_new(get_le(p + 16, 8));
	if (config_hash && sf->config_hash != config_hash)
		FAIL(-ESTALE, "the state was saved for another machine configuration (memory, vCPUs or devices changed)");
	nsec = (uint32_t)get_le(p + 24, 4);
	if (nsec > STATEFILE_SECTIONS_MAX)
		FAIL(-EBADMSG, "machine-state file is corrupt (%u sections)", nsec);
	off = HEADER_SIZE;
	for (uint32_t i = 0; i < nsec; i++) {
		size_t id_len, plen;
		uint32_t sver;
		const char *id;
		GBytes *pb;
		GVariant *v;

		if (body_end - off < SECTION_HEAD)
			FAIL(-EBADMSG, "machine-state file is corrupt (section %u past the end)", i);
		id_len = (size_t)get_le(p + off, 2);
		sver = (uint32_t)get_le(p + off + 4, 4);
		plen = (size_t)get_le(p + off + 8, 8);
		if (get_le(p + off + 2, 2))
			FAIL(-EBADMSG, "machine-state file is corrupt (section %u header)", i);
		off += SECTION_HEAD;
		id = (const char *)p + off;
		if (id_len > STATEFILE_ID_MAX || pad8(id_len) > body_end - off ||
		    !id_ok(id, id_len) || !zeros(p + off + id_len, pad8(id_len) - id_len))
			FAIL(-EBADMSG, "machine-state file is corrupt (section %u id)", i);
		off += pad8(id_len);
		if (plen > body_end - off || pad8(plen) > body_end - off ||
		    !zeros(p + off + plen, pad8(plen) - plen))
			FAIL(-EBADMSG, "machine-state file is corrupt (section %u length)", i);
		pb = g_bytes_new_from_bytes(all, off, plen);
		v = g_variant_ref_sink(g_variant_new_from_bytes(G_VARIANT_TYPE_VARIANT, pb, FALSE));
		g_bytes_unref(pb);
		off += pad8(plen);
		if (!g_variant_is_normal_form(v)) {
			g_variant_unref(v);
			FAIL(-EBADMSG, "machine-state file is corrupt (section %.*s payload)",
			     (int)id_len, id);
		}
		{
			GVariant *inner = g_variant_get_variant(v);
			char idz[STATEFILE_ID_MAX + 1];

			g_variant_unref(v);
			memcpy(idz, id, id_len);
			idz[id_len] = 0;
			if (find(sf, idz)) {
				g_variant_unref(inner);
				FAIL(-EBADMSG, "machine-state file is corrupt (section %s twice)", idz);
			}
			r = add(sf, id, id_len, sver, inner);
			if (r < 0)
				FAIL(-EBADMSG, "machine-state file is corrupt (too many sections)");
		}
	}
	if (off != body_end)
		FAIL(-EBADMSG, "machine-state file is corrupt (%zu stray bytes)", body_end - off);
	g_bytes_unref(all);
	*out = sf;
	return 0;
fail:
	statefile_free(sf);
	if (all)
		g_bytes_unref(all);
	return r;
}

int statefile_save(const struct statefile *sf, const char *path, char *err,
		   size_t errlen)
{
	struct newfile nf;
	GBytes *b;
	const uint8_t *d;
	size_t len, done = 0;
	int r;

	b = statefile_serialise(sf, &r);
	if (!b) {
		snprintf(err, errlen, "'%s': the machine state is too large", path);
		return r;
	}
	d = g_bytes_get_data(b, &len);
	r = newfile_open(&nf, path, 0600, err, errlen);
	if (r < 0) {
		g_bytes_unref(b);
		return r;
	}
	while (done < len) {
		ssize_t n = write(nf.fd, d + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = n < 0 ? -errno : -EIO;
			snprintf(err, errlen, "'%s': cannot write: %s", path, strerror(-r));
			newfile_abort(&nf);
			g_bytes_unref(b);
			return r;
		}
		done += (size_t)n;
	}
	g_bytes_unref(b);
	return newfile_commit(&nf, true, err, errlen);
}

int statefile_load(const char *path, uint64_t config_hash,
		   struct statefile **out, char *err, size_t errlen)
{
	struct stat st;
	uint8_t *buf;
	size_t done = 0;
	int fd, r;

	*out = NULL;
	fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		snprintf(err, errlen, "'%s': cannot open: %s", path, strerror(errno));
		return r;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		snprintf(err, errlen, "'%s' is not a regular file", path);
		return -EINVAL;
	}
	if ((uint64_t)st.st_size > STATEFILE_SIZE_MAX) {
		close(fd);
		snprintf(err, errlen, "'%s' is too large for a machine-state file", path);
		return -EFBIG;
	}
	buf = g_malloc((size_t)st.st_size + 1);
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + done, (size_t)st.st_size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;		/* shrank meanwhile: the parser says so */
		done += (size_t)n;
	}
	close(fd);
	r = statefile_parse(buf, done, config_hash, out, err, errlen);
	g_free(buf);
	if (r < 0) {
		char tmp[512];

		snprintf(tmp, sizeof(tmp), "%s", err);
		snprintf(err, errlen, "'%s': %s", path, tmp);
	}
	return r;
}
