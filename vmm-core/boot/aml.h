/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/boot/aml.h - a small AML emitter (ACPI 6.4 §20 "ACPI Machine
 * Language Specification") for the DSDT.  Boot-internal, header-only.
 *
 * Objects with a PkgLength (Scope, Device, Package) are opened with
 * aml_*_begin() and closed with aml_end(); the PkgLength is reserved at its
 * largest (4 bytes) and shrunk to the smallest encoding on close.  Writing
 * past the buffer sets ->overflow and drops further output; check it once
 * at the end.
 *
 *   aml_scope_begin(a, "\\_SB_");
 *     aml_device_begin(a, "PWRB");
 *       aml_name_decl(a, "_HID"); aml_eisaid(a, "PNP0C0C");
 *     aml_end(a);
 *   aml_end(a);
 *   aml_name_decl(a, "_S5_");
 *   aml_package_begin(a, 4); aml_integer(a, 5); ... aml_end(a);
 */
#ifndef VIVARIUM_BOOT_AML_H
#define VIVARIUM_BOOT_AML_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define AML_MAX_DEPTH		16

/* Opcodes (ACPI 6.4 §20.3) */
#define AML_ZERO_OP		0x00
#define AML_ONE_OP		0x01
#define AML_NAME_OP		0x08
#define AML_BYTE_PREFIX		0x0a
#define AML_WORD_PREFIX		0x0b
#define AML_DWORD_PREFIX	0x0c
#define AML_STRING_PREFIX	0x0d
#define AML_QWORD_PREFIX	0x0e
#define AML_SCOPE_OP		0x10
#define AML_BUFFER_OP		0x11
#define AML_PACKAGE_OP		0x12
#define AML_METHOD_OP		0x14
#define AML_DUAL_NAME_PREFIX	0x2e
#define AML_MULTI_NAME_PREFIX	0x2f
#define AML_EXT_OP_PREFIX	0x5b
#define AML_DEVICE_OP		0x82	/* after AML_EXT_OP_PREFIX */
#define AML_ROOT_CHAR		0x5c	/* '\' */
#define AML_PARENT_PREFIX	0x5e	/* '^' */
#define AML_RETURN_OP		0xa4
#define AML_ONES_OP		0xff

struct aml {
	uint8_t *buf;
	size_t len, cap;
	int overflow;
	unsigned depth;
	size_t open[AML_MAX_DEPTH];	/* offsets of reserved PkgLengths */
};

static inline void aml_init(struct aml *a, uint8_t *buf, size_t cap)
{
	memset(a, 0, sizeof(*a));
	a->buf = buf;
	a->cap = cap;
}

static inline void aml_byte(struct aml *a, uint8_t v)
{
	if (a->overflow || a->len >= a->cap) {
		a->overflow = 1;
		return;
	}
	a->buf[a->len++] = v;
}

static inline void aml_bytes(struct aml *a, const void *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		aml_byte(a, ((const uint8_t *)p)[i]);
}

static inline void aml_u16(struct aml *a, uint16_t v)
{
	aml_byte(a, (uint8_t)v);
	aml_byte(a, (uint8_t)(v >> 8));
}

static inline void aml_u32(struct aml *a, uint32_t v)
{
	aml_u16(a, (uint16_t)v);
	aml_u16(a, (uint16_t)(v >> 16));
}

/* Bytes a PkgLength takes for @content bytes after it (0: too large). */
static inline unsigned aml_pkglength_size(size_t content)
{
	if (content + 1 <= 0x3f)
		return 1;
	if (content + 2 < (1u << 12))
		return 2;
	if (content + 3 < (1u << 20))
		return 3;
	if (content + 4 < (1u << 28))
		return 4;
	return 0;
}

/* Encode the PkgLength for @content following bytes into @out (§20.2.4). */
static inline unsigned aml_pkglength_encode(uint8_t out[4], size_t content)
{
	unsigned n = aml_pkglength_size(content);
	size_t total = content + n;

	if (n == 1) {
		out[0] = (uint8_t)total;
	} else if (n) {
		out[0] = (uint8_t)(((n - 1) << 6) | (total & 0xf));
		for (unsigned i = 1; i < n; i++)
			out[i] = (uint8_t)(total >> (4 + 8 * (i - 1)));
	}
	return n;
}

/* Decode a PkgLength at @p (@avail bytes); returns its size or 0. */
static inline unsigned aml_pkglength_decode(const uint8_t *p, size_t avail,
					    size_t *value)
{
	unsigned n;

	if (!avail)
		return 0;
	n = (p[0] >> 6) + 1;
	if (n > avail)
		return 0;
	if (n == 1) {
		*value = p[0] & 0x3f;
		return 1;
	}
	if (p[0] & 0x30)	/* bits 5:4 reserved in multi-byte form */
		return 0;
	*value = p[0] & 0xf;
	for (unsigned i = 1; i < n; i++)
		*value |= (size_t)p[i] << (4 + 8 * (i - 1));
	return n;
}

/* Reserve a PkgLength; everything up to the matching aml_end() is its
 * content. */
static inline void aml_pkg_open(struct aml *a)
{
	if (a->depth >= AML_MAX_DEPTH) {
		a->overflow = 1;
		return;
	}
	a->open[a->depth++] = a->len;
	for (int i = 0; i < 4; i++)
		aml_byte(a, 0);
}

static inline void aml_end(struct aml *a)
{
	size_t at, content;
	uint8_t enc[4];
	unsigned n;

	if (!a->depth) {
		a->overflow = 1;
		return;
	}
	at = a->open[--a->depth];
	if (a->overflow)
		return;
	content = a->len - at - 4;
	n = aml_pkglength_encode(enc, content);
	if (!n) {
		a->overflow = 1;
		return;
	}
	memcpy(a->buf + at, enc, n);
	memmove(a->buf + at + n, a->buf + at + 4, content);
	a->len -= 4 - n;
}

static inline void aml_nameseg(struct aml *a, const char *seg, size_t n)
{
	/* 1-4 chars, padded with '_' (§20.2.2 NameSeg) */
	for (size_t i = 0; i < 4; i++)
		aml_byte(a, (uint8_t)(i < n ? seg[i] : '_'));
}

/* A NameString: "\\_SB_.PCI0", "^FOO", "_S5_", "_S5" (padded). */
static inline void aml_namestring(struct aml *a, const char *path)
{
	const char *segs[32];
	size_t lens[32], nseg = 0;
	const char *p = path;

	if (*p == '\\') {
		aml_byte(a, AML_ROOT_CHAR);
		p++;
	}
	while (*p == '^') {
		aml_byte(a, AML_PARENT_PREFIX);
		p++;
	}
	while (*p && nseg < 32) {
		const char *dot = strchr(p, '.');
		size_t n = dot ? (size_t)(dot - p) : strlen(p);

		if (n == 0 || n > 4) {
			a->overflow = 1;	/* malformed: refuse */
			return;
		}
		segs[nseg] = p;
		lens[nseg++] = n;
		p += n + (dot ? 1 : 0);
	}
	if (nseg == 0) {
		aml_byte(a, 0);		/* NullName */
		return;
	}
	if (nseg == 2)
		aml_byte(a, AML_DUAL_NAME_PREFIX);
	else if (nseg > 2) {
		aml_byte(a, AML_MULTI_NAME_PREFIX);
		aml_byte(a, (uint8_t)nseg);
	}
	for (size_t i = 0; i < nseg; i++)
		aml_nameseg(a, segs[i], lens[i]);
}

/* An Integer in its shortest encoding. */
static inline void aml_integer(struct aml *a, uint64_t v)
{
	if (v == 0) {
		aml_byte(a, AML_ZERO_OP);
	} else if (v == 1) {
		aml_byte(a, AML_ONE_OP);
	} else if (v <= 0xff) {
		aml_byte(a, AML_BYTE_PREFIX);
		aml_byte(a, (uint8_t)v);
	} else if (v <= 0xffff) {
		aml_byte(a, AML_WORD_PREFIX);
		aml_u16(a, (uint16_t)v);
	} else if (v <= 0xffffffffull) {
		aml_byte(a, AML_DWORD_PREFIX);
		aml_u32(a, (uint32_t)v);
	} else {
		aml_byte(a, AML_QWORD_PREFIX);
		aml_u32(a, (uint32_t)v);
		aml_u32(a, (uint32_t)(v >> 32));
	}
}

static inline void aml_string(struct aml *a, const char *s)
{
	aml_byte(a, AML_STRING_PREFIX);
	aml_bytes(a, s, strlen(s));
	aml_byte(a, 0);
}

/* EISAID("PNP0C0C") as the DWord it compresses to (§19.6.35). */
static inline void aml_eisaid(struct aml *a, const char *id)
{
	uint32_t v;
	unsigned h[4];

	if (strlen(id) != 7) {
		a->overflow = 1;
		return;
	}
	for (int i = 0; i < 4; i++) {
		char c = id[3 + i];

		h[i] = (unsigned)(c >= 'A' ? c - 'A' + 10 : c - '0') & 0xf;
	}
	v = (uint32_t)((id[0] - 0x40) & 0x1f) << 26 |
	    (uint32_t)((id[1] - 0x40) & 0x1f) << 21 |
	    (uint32_t)((id[2] - 0x40) & 0x1f) << 16 |
	    h[0] << 12 | h[1] << 8 | h[2] << 4 | h[3];
	/* stored big-endian */
	aml_byte(a, AML_DWORD_PREFIX);
	aml_byte(a, (uint8_t)(v >> 24));
	aml_byte(a, (uint8_t)(v >> 16));
	aml_byte(a, (uint8_t)(v >> 8));
	aml_byte(a, (uint8_t)v);
}

/* Name(@name, <the data object emitted next>) */
static inline void aml_name_decl(struct aml *a, const char *name)
{
	aml_byte(a, AML_NAME_OP);
	aml_namestring(a, name);
}

static inline void aml_scope_begin(struct aml *a, const char *name)
{
	aml_byte(a, AML_SCOPE_OP);
	aml_pkg_open(a);
	aml_namestring(a, name);
}

static inline void aml_device_begin(struct aml *a, const char *name)
{
	aml_byte(a, AML_EXT_OP_PREFIX);
	aml_byte(a, AML_DEVICE_OP);
	aml_pkg_open(a);
	aml_namestring(a, name);
}

/* Package(@nelems) { elements... aml_end() } */
static inline void aml_package_begin(struct aml *a, uint8_t nelems)
{
	aml_byte(a, AML_PACKAGE_OP);
	aml_pkg_open(a);
	aml_byte(a, nelems);
}

#endif
