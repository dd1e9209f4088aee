/* SPDX-License-Identifier: MIT */
/*
 * ACPI tables: checksums, the RSDP found by Linux's legacy scan, the
 * RSDP -> XSDT/RSDT -> FADT -> DSDT/FACS and MADT chain, field values, the
 * AML of the DSDT (parsed back), -ENOSPC/-EINVAL, and (if iasl is
 * installed) the tables disassembled by ACPICA's iasl without errors.
 */
#define _GNU_SOURCE /* memmem */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "boot/acpi.h"
#include "boot/aml.h"
#include "hv.h"
#include "mem.h"
#include "check.h"
#include "devices/acpi_pm.h"

#define BIOS_START 0xe0000ull
#define BIOS_END 0x100000ull

static uint8_t bios[BIOS_END - BIOS_START];	/* 0xe0000 .. 0xfffff */

static const struct acpi_config default_cfg = {
	.ncpus = 4,
	.ioapic_id = 4,
	.ioapic_addr = 0xfec00000,
	.pm_base = ACPI_PM_BASE,
	.sci_irq = ACPI_SCI_IRQ,
	.reset_port = ACPI_RESET_PORT,
	.reset_value = ACPI_RESET_VALUE,
};

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t rd32(const uint8_t *p) { return rd16(p) | (uint32_t)rd16(p + 2) << 16; }
static uint64_t rd64(const uint8_t *p) { return rd32(p) | (uint64_t)rd32(p + 4) << 32; }

static uint8_t sum(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s += *p++;
	return s;
}

/* The table at @gpa in the BIOS area, or NULL if it is not there whole. */
static const uint8_t *table_at(uint64_t gpa, const char *sig)
{
	const uint8_t *t;

	if (gpa < BIOS_START || gpa + 36 > BIOS_END)
		return NULL;
	t = bios + (gpa - BIOS_START);
	if (memcmp(t, sig, 4) || gpa + rd32(t + 4) > BIOS_END)
		return NULL;
	return t;
}

/* Linux's acpi_find_root_pointer(): 16-byte steps through 0xe0000-0xfffff,
 * "RSD PTR ", checksum over 20 bytes, and for revision >= 2 the extended
 * checksum over the whole structure. */
static int64_t scan_rsdp(void)
{
	for (uint64_t a = BIOS_START; a + 36 <= BIOS_END; a += 16) {
		const uint8_t *p = bios + (a - BIOS_START);

		if (memcmp(p, "RSD PTR ", 8) || sum(p, 20))
			continue;
		if (p[15] >= 2 && (rd32(p + 20) < 36 || a + rd32(p + 20) > BIOS_END ||
				   sum(p, rd32(p + 20))))
			continue;
		return (int64_t)a;
	}
	return -1;
}

static void check_sdt(const uint8_t *t, const char *sig, uint8_t rev)
{
	CHECK(t != NULL);
	if (!t)
		return;
	CHECK(memcmp(t, sig, 4) == 0);
	CHECK(rd32(t + 4) >= 36);
	CHECK_EQ(t[8], rev);
	CHECK_EQ(sum(t, rd32(t + 4)), 0);
	CHECK(memcmp(t + 10, "VIVARI", 6) == 0);
	CHECK(memcmp(t + 16, "VIVARIUM", 8) == 0);
}

/* ---- AML parsing (just enough for our DSDT) ------------------------------ */

struct amlp {
	const uint8_t *p, *end;
	int bad;
};

static size_t pkglen(struct amlp *s, const uint8_t **pkg_end)
{
	size_t v = 0;
	unsigned n = aml_pkglength_decode(s->p, (size_t)(s->end - s->p), &v);

	if (!n || v < n || v > (size_t)(s->end - s->p)) {
		s->bad = 1;
		return 0;
	}
	*pkg_end = s->p + v;
	s->p += n;
	return v;
}

/* NameString -> "\\_SB_.FOO_" style text */
static void namestring(struct amlp *s, char *out, size_t outlen)
{
	size_t o = 0;
	unsigned nseg = 1;

	out[0] = 0;
	while (s->p < s->end && (*s->p == '\\' || *s->p == '^') && o + 1 < outlen)
		out[o++] = (char)*s->p++;
	if (s->p >= s->end) {
		s->bad = 1;
		return;
	}
	if (*s->p == 0) {
		s->p++;
		nseg = 0;
	} else if (*s->p == 0x2e) {
		s->p++;
		nseg = 2;
	} else if (*s->p == 0x2f) {
		s->p++;
		nseg = s->p < s->end ? *s->p++ : 0;
	}
	for (unsigned i = 0; i < nseg; i++) {
		if (s->end - s->p < 4 || o + 6 > outlen) {
			s->bad = 1;
			return;
		}
		if (i)
			out[o++] = '.';
		for (int j = 0; j < 4; j++) {
			uint8_t c = *s->p++;

			if (!((c >= 'A' && c <= 'Z') || c == '_' ||
			      (j && c >= '0' && c <= '9')))
				s->bad = 1;
			out[o++] = (char)c;
		}
	}
	out[o] = 0;
}

static int integer(struct amlp *s, uint64_t *v)
{
	unsigned n = 0;

	if (s->p >= s->end)
		return -1;
	switch (*s->p++) {
	case 0x00: *v = 0; return 0;
	case 0x01: *v = 1; return 0;
	case 0xff: *v = ~0ull; return 0;
	case 0x0a: n = 1; break;
	case 0x0b: n = 2; break;
	case 0x0c: n = 4; break;
	case 0x0e: n = 8; break;
	default: s->p--; return -1;
	}
	if ((size_t)(s->end - s->p) < n)
		return -1;
	*v = 0;
	for (unsigned i = 0; i < n; i++)
		*v |= (uint64_t)*s->p++ << (8 * i);
	return 0;
}

/* Find Name(@want, Package(){...}) among the DSDT's terms (descending into
 * Scopes) and return its integer elements. */
static int find_package(const uint8_t *aml, size_t len, const char *want,
			uint64_t *elems, unsigned *nelems, int *bad)
{
	struct amlp s = { aml, aml + len, 0 };
	char name[64];
	int found = -1;

	while (s.p < s.end && !s.bad) {
		const uint8_t *end;
		uint8_t op = *s.p++;

		if (op == 0x10 ||		/* Scope or Device: look inside */
		    (op == 0x5b && s.p < s.end && *s.p == 0x82 && s.p++)) {
			pkglen(&s, &end);
			namestring(&s, name, sizeof(name));
			if (!s.bad && found < 0)
				found = find_package(s.p, (size_t)(end - s.p), want,
						     elems, nelems, bad);
			s.p = end;
		} else if (op == 0x08) {	/* Name */
			namestring(&s, name, sizeof(name));
			if (s.p < s.end && *s.p == 0x12) {
				unsigned n;

				s.p++;
				pkglen(&s, &end);
				if (s.bad || s.p >= end)
					break;
				n = *s.p++;
				if (!strcmp(name, want) ||
				    (name[0] == '\\' && !strcmp(name + 1, want))) {
					*nelems = n;
					for (unsigned i = 0; i < n && i < 16; i++)
						if (integer(&s, &elems[i]))
							s.bad = 1;
					if (s.p != end)
						s.bad = 1;
					found = 0;
				}
				s.p = end;
			} else if (s.p < s.end && *s.p == 0x11) {	/* Buffer */
				s.p++;
				pkglen(&s, &end);
				s.p = end;
			} else {
				uint64_t v;

				if (integer(&s, &v))
					s.bad = 1;
			}
		} else {
			s.bad = 1;
		}
	}
	if (s.bad)
		*bad = 1;
	return found;
}

/* ---- the tables ---------------------------------------------------------- */

struct tables {
	const uint8_t *rsdp, *rsdt, *xsdt, *fadt, *madt, *dsdt, *facs;
};

static void walk(struct tables *t)
{
	int64_t rsdp = scan_rsdp();

	memset(t, 0, sizeof(*t));
	CHECK(rsdp >= 0);
	if (rsdp < 0)
		return;
	t->rsdp = bios + (rsdp - BIOS_START);
	CHECK_EQ(t->rsdp[15], 2);
	CHECK_EQ(rd32(t->rsdp + 20), 36);
	CHECK(memcmp(t->rsdp + 9, "VIVARI", 6) == 0);
	t->xsdt = table_at(rd64(t->rsdp + 24), "XSDT");
	t->rsdt = table_at(rd32(t->rsdp + 16), "RSDT");
	check_sdt(t->xsdt, "XSDT", 1);
	check_sdt(t->rsdt, "RSDT", 1);
	if (!t->xsdt || !t->rsdt)
		return;
	/* FADT, MADT (and TPM2 with a TPM) */
	unsigned nt = (rd32(t->xsdt + 4) - 36) / 8;
	CHECK(nt == 2 || nt == 3);
	CHECK_EQ(rd32(t->xsdt + 4), 36 + 8 * nt);
	CHECK_EQ(rd32(t->rsdt + 4), 36 + 4 * nt);
	for (unsigned i = 0; i < nt && i < 3; i++) {
		uint64_t a = rd64(t->xsdt + 36 + 8 * i);

		CHECK_EQ(a, rd32(t->rsdt + 36 + 4 * i));
		if (table_at(a, "FACP"))
			t->fadt = table_at(a, "FACP");
		else if (table_at(a, "APIC"))
			t->madt = table_at(a, "APIC");
	}
	check_sdt(t->fadt, "FACP", 6);
	check_sdt(t->madt, "APIC", 5);
	if (!t->fadt)
		return;
	t->dsdt = table_at(rd32(t->fadt + 40), "DSDT");
	check_sdt(t->dsdt, "DSDT", 2);
	CHECK_EQ(rd64(t->fadt + 140), rd32(t->fadt + 40));
	t->facs = table_at(rd32(t->fadt + 36), "FACS");
	CHECK(t->facs != NULL);
}

static void check_gas(const uint8_t *g, uint8_t space, uint8_t width,
		      uint8_t access, uint64_t addr)
{
	CHECK_EQ(g[0], space);
	CHECK_EQ(g[1], width);
	CHECK_EQ(g[2], 0);
	CHECK_EQ(g[3], access);
	CHECK_EQ(rd64(g + 4), addr);
}

static void test_tables(void)
{
	struct tables t;
	long n;
	uint32_t flags;

	memset(bios, 0xcc, sizeof(bios));
	n = acpi_build(bios, sizeof(bios), BIOS_START, &default_cfg);
	CHECK(n > 0 && n < 4096);
	printf("  tables: %ld bytes\n", n);
	walk(&t);
	if (!t.fadt || !t.madt || !t.dsdt || !t.facs)
		return;
	CHECK_EQ(t.rsdp, bios);	/* first in the buffer */

	/* FADT */
	const uint8_t *f = t.fadt;
	CHECK_EQ(rd32(f + 4), 276);
	CHECK_EQ(f[131], 4);				/* minor version */
	CHECK_EQ(rd16(f + 46), ACPI_SCI_IRQ);		/* SCI_INT */
	CHECK_EQ(rd32(f + 48), 0);			/* SMI_CMD: none */
	CHECK_EQ(rd32(f + 56), 0x600);			/* PM1a_EVT_BLK */
	CHECK_EQ(rd32(f + 60), 0);			/* PM1b_EVT_BLK */
	CHECK_EQ(rd32(f + 64), 0x604);			/* PM1a_CNT_BLK */
	CHECK_EQ(rd32(f + 68), 0);
	CHECK_EQ(rd32(f + 76), 0x608);			/* PM_TMR_BLK */
	CHECK_EQ(rd32(f + 80), 0);			/* GPE0_BLK */
	CHECK_EQ(f[88], 4);				/* PM1_EVT_LEN */
	CHECK_EQ(f[89], 2);				/* PM1_CNT_LEN */
	CHECK_EQ(f[91], 4);				/* PM_TMR_LEN */
	CHECK(rd16(f + 96) > 100);			/* no C2 */
	CHECK(rd16(f + 98) > 1000);			/* no C3 */
	CHECK_EQ(f[108], 0x32);				/* CENTURY */
	CHECK(rd16(f + 109) & 2);			/* 8042 */
	CHECK(!(rd16(f + 109) & 4));			/* VGA not absent */
	flags = rd32(f + 112);
	CHECK(flags & (1u << 0));			/* WBINVD */
	CHECK(flags & (1u << 2));			/* PROC_C1 */
	CHECK(!(flags & (1u << 4)));			/* fixed power button */
	CHECK(flags & (1u << 5));			/* no sleep button */
	CHECK(!(flags & (1u << 8)));			/* 24-bit timer */
	CHECK(flags & (1u << 10));			/* RESET_REG_SUP */
	CHECK(!(flags & (1u << 20)));			/* not HW-reduced */
	check_gas(f + 116, 1, 8, 1, ACPI_RESET_PORT);	/* RESET_REG */
	CHECK_EQ(f[128], ACPI_RESET_VALUE);
	check_gas(f + 148, 1, 32, 2, 0x600);		/* X_PM1a_EVT_BLK */
	check_gas(f + 160, 0, 0, 0, 0);
	check_gas(f + 172, 1, 16, 2, 0x604);		/* X_PM1a_CNT_BLK */
	check_gas(f + 208, 1, 32, 3, 0x608);		/* X_PM_TMR_BLK */
	check_gas(f + 220, 0, 0, 0, 0);			/* X_GPE0_BLK */

	/* FACS */
	CHECK_EQ((uint64_t)(t.facs - bios + BIOS_START) % 64, 0);
	CHECK_EQ(rd32(t.facs + 4), 64);
	CHECK_EQ(t.facs[32], 2);

	/* MADT */
	const uint8_t *m = t.madt, *e = m + 44, *end = m + rd32(m + 4);
	unsigned count = 0, lapics = 0, ioapics = 0, isos = 0, nmis = 0;
	CHECK_EQ(rd32(m + 36), 0xfee00000);
	CHECK_EQ(rd32(m + 40), 1);			/* PCAT_COMPAT */
	while (e < end) {
		CHECK(e[1] >= 2 && e + e[1] <= end);
		if (e[1] < 2 || e + e[1] > end)
			break;
		switch (e[0]) {
		case 0:
			CHECK_EQ(e[1], 8);
			CHECK_EQ(e[2], lapics);		/* UID */
			CHECK_EQ(e[3], lapics);		/* APIC ID */
			CHECK_EQ(rd32(e + 4), 1);	/* enabled */
			lapics++;
			break;
		case 1:
			CHECK_EQ(e[1], 12);
			CHECK_EQ(e[2], 4);
			CHECK_EQ(rd32(e + 4), 0xfec00000);
			CHECK_EQ(rd32(e + 8), 0);
			ioapics++;
			break;
		case 2:
			CHECK_EQ(e[1], 10);
			CHECK_EQ(e[2], 0);		/* ISA */
			if (e[3] == 0) {
				CHECK_EQ(rd32(e + 4), 2);
				CHECK_EQ(rd16(e + 8), 0);
			} else {
				CHECK_EQ(e[3], ACPI_SCI_IRQ);
				CHECK_EQ(rd32(e + 4), ACPI_SCI_IRQ);
				CHECK_EQ(rd16(e + 8), 0x000d);
			}
			isos++;
			break;
		case 4:
			CHECK_EQ(e[1], 6);
			CHECK_EQ(e[2], 0xff);
			CHECK_EQ(e[5], 1);		/* LINT1 */
			nmis++;
			break;
		default:
			CHECK(!"unexpected MADT entry");
		}
		count++;
		e += e[1];
	}
	CHECK(e == end);
	CHECK_EQ(lapics, 4);
	CHECK_EQ(ioapics, 1);
	CHECK_EQ(isos, 2);
	CHECK_EQ(nmis, 1);
	CHECK_EQ(count, default_cfg.ncpus + 1 + 2 + 1);

	/* DSDT: \_S5 = Package(4) { 5, 5, 0, 0 } */
	uint64_t el[16] = { 0 };
	unsigned nel = 0;
	int bad = 0;
	CHECK_EQ(find_package(t.dsdt + 36, rd32(t.dsdt + 4) - 36, "_S5_", el,
			      &nel, &bad), 0);
	CHECK_EQ(bad, 0);
	CHECK_EQ(nel, 4);
	CHECK_EQ(el[0], ACPI_S5_SLP_TYP);
	CHECK_EQ(el[1], ACPI_S5_SLP_TYP);
	CHECK_EQ(el[2], 0);
	CHECK_EQ(el[3], 0);
	/* \_SB.PCI0: Device(PCI0) { Name(_HID, EISAID("PNP0A03")) ... } */
	{
		static const uint8_t pci0[] = { 0x5b, 0x82 };
		static const uint8_t hid[] = { 0x08, '_', 'H', 'I', 'D', 0x0c,
					       0x41, 0xd0, 0x0a, 0x03 };
		size_t dlen = rd32(t.dsdt + 4);

		CHECK(memmem(t.dsdt, dlen, pci0, sizeof(pci0)) != NULL);
		CHECK(memmem(t.dsdt, dlen, "PCI0", 4) != NULL);
		CHECK(memmem(t.dsdt, dlen, hid, sizeof(hid)) != NULL);
	}
	CHECK_EQ(ACPI_S5_SLP_TYP, 5);
}

static void test_placement_and_sizes(void)
{
	struct acpi_config cfg = default_cfg;
	struct tables t;
	const unsigned ns[] = { 1, 2, 16, 64, 255 };

	/* Elsewhere in the BIOS area: still found, still consistent. */
	memset(bios, 0, sizeof(bios));
	CHECK(acpi_build(bios + 0x10010, sizeof(bios) - 0x10010,
			 BIOS_START + 0x10010, &cfg) > 0);
	walk(&t);
	CHECK(t.rsdp == bios + 0x10010);
	CHECK(t.facs && (uint64_t)(t.facs - bios + BIOS_START) % 64 == 0);

	for (size_t i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		unsigned count = 0;

		cfg.ncpus = ns[i];
		memset(bios, 0, sizeof(bios));
		CHECK(acpi_build(bios, sizeof(bios), BIOS_START, &cfg) > 0);
		walk(&t);
		if (!t.madt)
			continue;
		for (const uint8_t *e = t.madt + 44; e < t.madt + rd32(t.madt + 4);
		     e += e[1])
			count += e[0] == 0;
		CHECK_EQ(count, ns[i]);
	}

	cfg.ncpus = 0;
	CHECK_EQ(acpi_build(bios, sizeof(bios), BIOS_START, &cfg), -EINVAL);
	cfg.ncpus = 256;
	CHECK_EQ(acpi_build(bios, sizeof(bios), BIOS_START, &cfg), -EINVAL);
	cfg.ncpus = 1;
	CHECK_EQ(acpi_build(bios, sizeof(bios), BIOS_START + 8, &cfg), -EINVAL);
	CHECK_EQ(acpi_build(NULL, sizeof(bios), BIOS_START, &cfg), -EINVAL);
	CHECK_EQ(acpi_build(bios, sizeof(bios), BIOS_START, NULL), -EINVAL);
	CHECK_EQ(acpi_build(bios, sizeof(bios), 0xfffffff0ull, &cfg), -EINVAL);
}

/* Every buffer shorter than needed is -ENOSPC, and nothing past it is
 * touched. */
static void test_enospc(void)
{
	struct acpi_config cfg = default_cfg;
	static uint8_t b[8192];
	long need;

	for (unsigned ncpus = 1; ncpus <= 255; ncpus += 127) {
		cfg.ncpus = ncpus;
		need = acpi_build(b, sizeof(b), BIOS_START, &cfg);
		CHECK(need > 0);
		for (long len = 0; len < need; len++) {
			memset(b, 0xa5, sizeof(b));
			CHECK_EQ(acpi_build(b, (size_t)len, BIOS_START, &cfg),
				 -ENOSPC);
			for (size_t i = (size_t)len; i < sizeof(b); i++)
				if (b[i] != 0xa5) {
					CHECK(!"wrote past the buffer");
					break;
				}
		}
		CHECK_EQ(acpi_build(b, (size_t)need, BIOS_START, &cfg), need);
	}
}

/* ---- the AML emitter ----------------------------------------------------- */

static void test_aml(void)
{
	static uint8_t buf[1 << 21];
	const size_t sizes[] = { 0, 1, 0x3d, 0x3e, 0x3f, 0x40, 0xffd, 0xffe,
				 0xfff, 0x1000, 0xffffc, 0xffffd, 0x100000 };
	struct aml a;

	/* PkgLength round trip around each encoding boundary */
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint8_t enc[4];
		size_t v = 0;
		unsigned n = aml_pkglength_encode(enc, sizes[i]), m;

		m = aml_pkglength_decode(enc, 4, &v);
		CHECK(n >= 1 && n <= 4);
		CHECK_EQ(m, n);
		CHECK_EQ(v, sizes[i] + n);
	}
	CHECK_EQ(aml_pkglength_size(0x3e), 1);
	CHECK_EQ(aml_pkglength_size(0x3f), 2);

	/* a scope whose body needs a 3-byte PkgLength */
	aml_init(&a, buf, sizeof(buf));
	aml_scope_begin(&a, "\\_SB_.PCI0");
	for (int i = 0; i < 3000; i++) {
		aml_name_decl(&a, "FOO");
		aml_integer(&a, 0x12345678);
	}
	aml_end(&a);
	CHECK(!a.overflow);
	CHECK_EQ(a.depth, 0);
	{
		struct amlp s = { buf + 1, buf + a.len, 0 };
		const uint8_t *end;
		char name[64];

		CHECK_EQ(buf[0], 0x10);
		pkglen(&s, &end);
		CHECK(end == buf + a.len);
		namestring(&s, name, sizeof(name));
		CHECK(strcmp(name, "\\_SB_.PCI0") == 0);
		CHECK_EQ(s.bad, 0);
		CHECK_EQ((size_t)(end - s.p), 3000 * (1 + 4 + 5));
	}

	/* integers, names, EISAID */
	aml_init(&a, buf, sizeof(buf));
	aml_integer(&a, 0);
	aml_integer(&a, 1);
	aml_integer(&a, 0xab);
	aml_integer(&a, 0x1234);
	aml_integer(&a, 0x12345678);
	aml_integer(&a, 0x123456789aull);
	static const uint8_t ints[] = { 0x00, 0x01, 0x0a, 0xab, 0x0b, 0x34, 0x12,
		0x0c, 0x78, 0x56, 0x34, 0x12, 0x0e, 0x9a, 0x78, 0x56, 0x34, 0x12,
		0, 0, 0 };
	CHECK_EQ(a.len, sizeof(ints));
	CHECK(memcmp(buf, ints, sizeof(ints)) == 0);

	aml_init(&a, buf, sizeof(buf));
	aml_eisaid(&a, "PNP0C0C");
	static const uint8_t pwrb[] = { 0x0c, 0x41, 0xd0, 0x0c, 0x0c };
	CHECK_EQ(a.len, 5);
	CHECK(memcmp(buf, pwrb, 5) == 0);

	aml_init(&a, buf, sizeof(buf));
	aml_namestring(&a, "\\A.B.C");
	static const uint8_t multi[] = { '\\', 0x2f, 3, 'A', '_', '_', '_',
					 'B', '_', '_', '_', 'C', '_', '_', '_' };
	CHECK_EQ(a.len, sizeof(multi));
	CHECK(memcmp(buf, multi, sizeof(multi)) == 0);

	aml_init(&a, buf, sizeof(buf));
	aml_namestring(&a, "TOOLONG");
	CHECK(a.overflow);

	/* overflow is sticky and never writes past cap */
	memset(buf, 0x5a, 64);
	aml_init(&a, buf, 8);
	aml_package_begin(&a, 3);
	aml_string(&a, "hello, world");
	aml_end(&a);
	CHECK(a.overflow);
	for (int i = 8; i < 64; i++)
		CHECK_EQ(buf[i], 0x5a);

	/* unbalanced aml_end() */
	aml_init(&a, buf, sizeof(buf));
	aml_end(&a);
	CHECK(a.overflow);
}

/* ---- iasl ---------------------------------------------------------------- */

static int run(const char *cmd)
{
	int st = system(cmd);

	return st == -1 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static int write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	int ok = f && fwrite(p, 1, n, f) == n;

	if (f)
		fclose(f);
	return ok ? 0 : -1;
}

static char *read_text(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *s;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	s = calloc(1, (size_t)n + 1);
	if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
		free(s);
		s = NULL;
	}
	fclose(f);
	return s;
}

static void test_iasl(void)
{
	char dir[] = "/tmp/vivarium-acpi-XXXXXX";
	char cmd[1024], path[512];
	struct tables t;
	struct {
		const char *name;
		const uint8_t **tab;
	} list[] = { { "dsdt", &t.dsdt }, { "facp", &t.fadt },
		     { "apic", &t.madt }, { "xsdt", &t.xsdt },
		     { "rsdt", &t.rsdt }, { "facs", &t.facs } };
	char *txt;

	if (run("command -v iasl >/dev/null 2>&1") != 0) {
		printf("  SKIP part: iasl not installed (Debian package "
		       "acpica-tools); tables not disassembled\n");
		return;
	}
	memset(bios, 0, sizeof(bios));
	CHECK(acpi_build(bios, sizeof(bios), BIOS_START, &default_cfg) > 0);
	walk(&t);
	if (!t.dsdt || !t.fadt || !t.madt || !t.facs || !mkdtemp(dir)) {
		CHECK(!"setup");
		return;
	}
	for (size_t i = 0; i < sizeof(list) / sizeof(list[0]); i++) {
		const uint8_t *tab = *list[i].tab;
		size_t n = i == 5 ? 64 : rd32(tab + 4);

		snprintf(path, sizeof(path), "%s/%s.dat", dir, list[i].name);
		CHECK_EQ(write_file(path, tab, n), 0);
		snprintf(cmd, sizeof(cmd),
			 "cd %s && iasl -d %s.dat > %s.log 2>&1", dir,
			 list[i].name, list[i].name);
		CHECK_EQ(run(cmd), 0);
		/* the disassembly must not report errors or bad checksums */
		snprintf(path, sizeof(path), "%s/%s.log", dir, list[i].name);
		txt = read_text(path);
		CHECK(txt != NULL);
		if (txt && (strstr(txt, "Error") || strstr(txt, "Invalid") ||
			    strstr(txt, "Incorrect") || strstr(txt, "Warning"))) {
			fprintf(stderr, "iasl -d %s:\n%s\n", list[i].name, txt);
			CHECK(!"iasl reported a problem");
		}
		free(txt);
		snprintf(path, sizeof(path), "%s/%s.dsl", dir, list[i].name);
		txt = read_text(path);
		CHECK(txt != NULL);
		if (txt && (strstr(txt, "Error") || strstr(txt, "Invalid") ||
			    strstr(txt, "Incorrect"))) {
			fprintf(stderr, "%s.dsl:\n%s\n", list[i].name, txt);
			CHECK(!"iasl disassembly reports a problem");
		}
		if (txt && i == 0) {
			CHECK(strstr(txt, "Name (_S5, Package (0x04)") != NULL);
			/* PCI0: windows, and 31 slots x 4 pins of routes
			 * with the swizzle (slot 1 INTA -> GSI 17). */
			CHECK(strstr(txt, "Name (_PRT, Package (0x7C)") != NULL);
			CHECK(strstr(txt, "WordBusNumber") != NULL);
			CHECK(strstr(txt, "0x0000FFFF") == NULL);
			CHECK(strstr(txt, "0x0001FFFF,") != NULL);
			CHECK(strstr(txt, "0x0CF7,") != NULL);
			CHECK(strstr(txt, "0xFEBFFFFF,") != NULL);
			/* the 64-bit window: 4 GiB (no RAM above), 32 GiB */
			CHECK(strstr(txt, "QWordMemory") != NULL);
			CHECK(strstr(txt, "0x0000000100000000,") != NULL);
			CHECK(strstr(txt, "0x00000008FFFFFFFF,") != NULL);
			/* Legacy devices under the ISA bridge. */
			CHECK(strstr(txt, "EisaId (\"PNP0303\")") != NULL);
			CHECK(strstr(txt, "EisaId (\"PNP0501\")") != NULL);
			CHECK(strstr(txt, "IRQNoFlags ()\n                        {12}") != NULL ||
			      strstr(txt, "{12}") != NULL);
		}
		free(txt);
	}
	/* The DSDT recompiles from its disassembly without errors. */
	snprintf(cmd, sizeof(cmd),
		 "cd %s && iasl -p re dsdt.dsl > re.log 2>&1", dir);
	CHECK_EQ(run(cmd), 0);
	snprintf(path, sizeof(path), "%s/re.log", dir);
	txt = read_text(path);
	if (txt && !strstr(txt, " 0 Errors")) {
		fprintf(stderr, "iasl dsdt.dsl:\n%s\n", txt);
		CHECK(!"DSDT does not recompile");
	}
	free(txt);
	if (getenv("VIVARIUM_KEEP_ACPI"))
		printf("  iasl output kept in %s\n", dir);
	else {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		run(cmd);
	}
}

/* ---- PCI windows against the e820 map ------------------------------------ */

struct window { uint64_t min, max; };

/* The memory ranges (DWord/QWord memory descriptors) of every _CRS
 * buffer in @dsdt; returns how many were put in @w. */
static unsigned crs_memory_windows(const uint8_t *dsdt, struct window *w,
				   unsigned max)
{
	uint32_t len = rd32(dsdt + 4);
	unsigned nw = 0;

	for (uint32_t i = 36; i + 6 < len; i++) {
		const uint8_t *p = dsdt + i, *end;
		uint32_t pkg, size;
		unsigned lead;

		if (memcmp(p, "_CRS", 4) || p[4] != 0x11)
			continue;
		p += 5;
		lead = p[0] >> 6;
		pkg = lead ? (p[0] & 0x0f) : (p[0] & 0x3f);
		for (unsigned b = 1; b <= lead; b++)
			pkg |= (uint32_t)p[b] << (4 + 8 * (b - 1));
		end = p + pkg;
		p += 1 + lead;
		if (*p == 0x0a) { size = p[1]; p += 2; }
		else if (*p == 0x0b) { size = rd16(p + 1); p += 3; }
		else continue;
		CHECK(p + size <= end && end <= dsdt + len);
		end = p + size;
		while (p < end && *p != 0x79) {
			if (!(*p & 0x80)) {		/* small item */
				p += 1 + (*p & 7);
				continue;
			}
			if ((p[0] == 0x87 || p[0] == 0x8a) && p[3] == 0 && nw < max) {
				if (p[0] == 0x87)
					w[nw++] = (struct window){ rd32(p + 10), rd32(p + 14) };
				else
					w[nw++] = (struct window){ rd64(p + 14), rd64(p + 22) };
			}
			p += 3 + rd16(p + 1);
		}
	}
	return nw;
}

/* For guests of 512 MiB to 6 GiB: PCI0's windows sit in the hole and
 * above RAM, never on an e820 RAM range; the 32-bit one starts where low
 * RAM ends and stops below the IOAPIC; the 64-bit one starts 1 GiB-aligned
 * after the RAM above 4 GiB. */
static void test_windows_vs_e820(void)
{
	static const uint64_t sizes[] = { 512ull << 20, 3ull << 30,
					  (3ull << 30) + (1 << 20), 4ull << 30,
					  6ull << 30 };

	for (unsigned k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		struct guest_mem m;
		struct e820_entry e[8];
		struct acpi_config cfg = default_cfg;
		struct window w[16];
		struct tables t;
		unsigned n, nw;
		bool saw32 = false, saw64 = false;

		CHECK_EQ(guest_mem_init(&m, sizes[k]), 0);
		n = guest_mem_e820(&m, e, 8);
		cfg.pci_hole_start = guest_mem_low_end(&m);
		cfg.ram_top = m.nregions > 2 ? m.region[2].gpa + m.region[2].size : 0;
		memset(bios, 0, sizeof(bios));
		CHECK(acpi_build(bios, sizeof(bios), BIOS_START, &cfg) > 0);
		walk(&t);
		if (!t.dsdt) {
			guest_mem_free(&m);
			continue;
		}
		nw = crs_memory_windows(t.dsdt, w, 16);
		CHECK_EQ(nw, 3);		/* VGA, 32-bit hole, 64-bit */
		for (unsigned i = 0; i < nw; i++) {
			CHECK(w[i].min <= w[i].max);
			for (unsigned j = 0; j < n; j++)
				if (e[j].type == E820_RAM)
					CHECK(w[i].max < e[j].addr ||
					      w[i].min >= e[j].addr + e[j].size);
			/* KVM's pages (e820 reserved) are in no window */
			CHECK(w[i].max < HV_KVM_PAGES_GPA ||
			      w[i].min >= HV_KVM_PAGES_GPA + HV_KVM_PAGES_SIZE);
			if (w[i].min == guest_mem_low_end(&m)) {
				saw32 = true;
				CHECK_EQ(w[i].max, 0xfebfffff);	/* below the IOAPIC */
			}
			if (w[i].min >= (4ull << 30)) {
				saw64 = true;
				CHECK_EQ(w[i].min % (1ull << 30), 0);
				CHECK(w[i].min >= (4ull << 30) + (sizes[k] > (3ull << 30) ?
							    sizes[k] - (3ull << 30) : 0));
				CHECK(w[i].min - (1ull << 30) <
				      (sizes[k] > (3ull << 30) ? sizes[k] + (1ull << 30) : 4ull << 30));
				CHECK(w[i].max < (1ull << 40));	/* any x86-64 CPU's phys bits */
			}
		}
		CHECK(saw32);
		CHECK(saw64);
		guest_mem_free(&m);
	}
}

/* Run the table-loader script as SeaBIOS's romfile_loader.c does, with
 * the files placed at odd addresses, and check what the OS then finds. */
static uint8_t fake_ram[0x140000];

static uint8_t sum8(const uint8_t *p, size_t n)
{
	uint8_t s = 0;

	while (n--)
		s += *p++;
	return s;
}

/* A file the table loader names, and where SeaBIOS would put it (chosen by
 * the test; data NULL: a zero-filled area, such as the TPM's log). */
struct loader_file {
	const char *name;
	const uint8_t *data;
	size_t len;
	uint64_t at;
};

struct loader_counts {
	unsigned allocs, ptrs, sums;
};

/* Run @b's table-loader script into fake_ram as SeaBIOS's romfile_loader
 * does: ALLOCATE copies @f[i] to its .at (the RSDP in the FSEG zone, the
 * rest high, aligned as asked), ADD_POINTER adds the source file's address
 * to the field, ADD_CHECKSUM fixes the checksum byte.  Every command must
 * name one of the @nf files and stay inside it. */
static struct loader_counts run_table_loader(const struct acpi_fw_cfg_blobs *b,
					     struct loader_file *f, int nf)
{
	struct loader_counts n = { 0 };

	memset(fake_ram, 0, sizeof(fake_ram));
	for (size_t off = 0; off < b->loader_len; off += 128) {
		const uint8_t *c = b->loader + off;
		uint32_t cmd = rd32(c);
		int d = -1, s = -1;

		for (int i = 0; i < nf; i++) {
			if (!strncmp((const char *)c + 4, f[i].name, 56))
				d = i;
			if (cmd == 2 && !strncmp((const char *)c + 60, f[i].name, 56))
				s = i;
		}
		CHECK(d >= 0);
		if (d < 0)
			continue;
		if (cmd == 1) {		/* ALLOCATE */
			uint32_t align = rd32(c + 60);

			CHECK_EQ(c[64], d == 0 ? 2 : 1);
			CHECK(align && f[d].at % align == 0);
			if (f[d].data)
				memcpy(fake_ram + f[d].at, f[d].data, f[d].len);
			n.allocs++;
		} else if (cmd == 2) {	/* ADD_POINTER */
			uint32_t o = rd32(c + 116);
			uint8_t size = c[120];
			uint64_t v = 0;

			CHECK(s >= 0);
			CHECK(size == 4 || size == 8);
			CHECK(o + size <= f[d].len);
			if (s < 0 || o + size > f[d].len || size > 8)
				continue;
			memcpy(&v, fake_ram + f[d].at + o, size);
			v += f[s].at;
			memcpy(fake_ram + f[d].at + o, &v, size);
			n.ptrs++;
		} else if (cmd == 3) {	/* ADD_CHECKSUM */
			uint32_t res = rd32(c + 60), st = rd32(c + 64), len = rd32(c + 68);
			uint8_t *base = fake_ram + f[d].at;

			CHECK(st + len <= f[d].len && res < f[d].len);
			if (st + len <= f[d].len && res < f[d].len)
				base[res] -= sum8(base + st, len);
			n.sums++;
		} else {
			CHECK(!"unknown loader command");
		}
	}
	return n;
}

static void test_table_loader(void)
{
	struct acpi_fw_cfg_blobs b;
	struct loader_counts n;

	CHECK_EQ(acpi_build_fw_cfg(&default_cfg, &b), 0);
	CHECK_EQ(b.loader_len % 128, 0);
	CHECK_EQ(b.rsdp_len, 36);
	struct loader_file f[] = {
		{ "etc/acpi/rsdp", b.rsdp, b.rsdp_len, 0xf5a40 },
		{ "etc/acpi/tables", b.tables, b.tables_len, 0x100040 },
	};
	n = run_table_loader(&b, f, 2);
	CHECK_EQ(n.allocs, 2);
	CHECK_EQ(n.ptrs, 7 + 2);
	CHECK_EQ(n.sums, 5);

	/* What Linux's RSDP scan and table walk would see. */
	const uint8_t *r = fake_ram + f[0].at;
	CHECK(!memcmp(r, "RSD PTR ", 8));
	CHECK_EQ(sum8(r, 20), 0);
	CHECK_EQ(sum8(r, 36), 0);
	uint32_t rsdt = rd32(r + 16);
	uint64_t xsdt = rd64(r + 24);
	CHECK(rsdt > f[1].at && rsdt < f[1].at + f[1].len);
	CHECK(!memcmp(fake_ram + rsdt, "RSDT", 4));
	CHECK_EQ(sum8(fake_ram + rsdt, rd32(fake_ram + rsdt + 4)), 0);
	CHECK(!memcmp(fake_ram + xsdt, "XSDT", 4));
	CHECK_EQ(sum8(fake_ram + xsdt, rd32(fake_ram + xsdt + 4)), 0);
	uint32_t fadt = rd32(fake_ram + rsdt + 36);
	CHECK_EQ(rd64(fake_ram + xsdt + 36), fadt);
	CHECK(!memcmp(fake_ram + fadt, "FACP", 4));
	CHECK_EQ(sum8(fake_ram + fadt, rd32(fake_ram + fadt + 4)), 0);
	uint32_t madt = rd32(fake_ram + rsdt + 40);
	CHECK(!memcmp(fake_ram + madt, "APIC", 4));
	CHECK_EQ(sum8(fake_ram + madt, rd32(fake_ram + madt + 4)), 0);
	uint32_t dsdt = rd32(fake_ram + fadt + 40), facs = rd32(fake_ram + fadt + 36);
	CHECK_EQ(rd64(fake_ram + fadt + 140), dsdt);
	CHECK(!memcmp(fake_ram + dsdt, "DSDT", 4));
	CHECK_EQ(sum8(fake_ram + dsdt, rd32(fake_ram + dsdt + 4)), 0);
	CHECK(!memcmp(fake_ram + facs, "FACS", 4));
	CHECK_EQ(facs % 64, 0);
	/* The tables file carries no second RSDP. */
	CHECK(memmem(b.tables, b.tables_len, "RSD PTR ", 8) == NULL);
	acpi_fw_cfg_blobs_free(&b);
}

/* With a TPM: \_SB.TPM_ in the DSDT (iasl reads it back), a TPM2 table in
 * the RSDT and XSDT whose LASA the loader points at the log file. */
static void test_tpm(void)
{
	struct acpi_config cfg = default_cfg;
	struct acpi_fw_cfg_blobs b;
	static const uint8_t msft[] = "MSFT0101";
	static const uint8_t mem32[] = { 0x86, 9, 0, 1, 0, 0, 0xd4, 0xfe,
					 0, 0x50, 0, 0 };

	cfg.tpm = true;
	memset(bios, 0, sizeof(bios));
	CHECK(acpi_build(bios, sizeof(bios), BIOS_START, &cfg) > 0);
	CHECK(memmem(bios, sizeof(bios), msft, 8) != NULL);
	CHECK(memmem(bios, sizeof(bios), mem32, sizeof(mem32)) != NULL);
	CHECK(memmem(bios, sizeof(bios), "TPM2", 4) != NULL);
	cfg.tpm = false;
	memset(bios, 0, sizeof(bios));
	CHECK(acpi_build(bios, sizeof(bios), BIOS_START, &cfg) > 0);
	CHECK(memmem(bios, sizeof(bios), msft, 8) == NULL);
	cfg.tpm = true;

	CHECK_EQ(acpi_build_fw_cfg(&cfg, &b), 0);
	struct loader_file f[] = {
		{ "etc/acpi/rsdp", b.rsdp, b.rsdp_len, 0xf5a40 },
		{ "etc/acpi/tables", b.tables, b.tables_len, 0x100040 },
		{ ACPI_TPM_LOG_FILE, NULL, ACPI_TPM_LOG_SIZE, 0x130000 },
	};
	CHECK_EQ(run_table_loader(&b, f, 3).allocs, 3);
	const uint8_t *r = fake_ram + f[0].at;
	uint32_t rsdt = rd32(r + 16);
	uint64_t xsdt = rd64(r + 24);
	CHECK_EQ(rd32(fake_ram + rsdt + 4), 36 + 3 * 4);
	CHECK_EQ(sum8(fake_ram + rsdt, 36 + 3 * 4), 0);
	CHECK_EQ(sum8(fake_ram + xsdt, 36 + 3 * 8), 0);
	uint32_t tpm2 = rd32(fake_ram + rsdt + 44);
	CHECK_EQ(rd64(fake_ram + xsdt + 52), tpm2);
	CHECK(!memcmp(fake_ram + tpm2, "TPM2", 4));
	CHECK_EQ(rd32(fake_ram + tpm2 + 4), 76);
	CHECK_EQ(fake_ram[tpm2 + 8], 4);			/* revision */
	CHECK_EQ(sum8(fake_ram + tpm2, 76), 0);
	CHECK_EQ(rd32(fake_ram + tpm2 + 48), 6);		/* FIFO */
	CHECK_EQ(rd32(fake_ram + tpm2 + 64), ACPI_TPM_LOG_SIZE);	/* LAML */
	CHECK_EQ(rd64(fake_ram + tpm2 + 68), 0x130000);		/* LASA */
	acpi_fw_cfg_blobs_free(&b);

	/* iasl: the TPM device as ACPI tools see it. */
	if (run("command -v iasl >/dev/null 2>&1") == 0) {
		char dir[] = "/tmp/vivarium-acpi-XXXXXX", cmd[512], path[512];
		struct tables t;
		char *txt;

		memset(bios, 0, sizeof(bios));
		CHECK(acpi_build(bios, sizeof(bios), BIOS_START, &cfg) > 0);
		walk(&t);
		CHECK(t.dsdt && mkdtemp(dir));
		if (!t.dsdt)
			return;
		snprintf(path, sizeof(path), "%s/dsdt.dat", dir);
		CHECK_EQ(write_file(path, t.dsdt, rd32(t.dsdt + 4)), 0);
		snprintf(cmd, sizeof(cmd), "cd %s && iasl -d dsdt.dat >/dev/null 2>&1", dir);
		CHECK_EQ(run(cmd), 0);
		snprintf(path, sizeof(path), "%s/dsdt.dsl", dir);
		txt = read_text(path);
		CHECK(txt && strstr(txt, "Name (_HID, \"MSFT0101\""));
		CHECK(txt && strstr(txt, "Memory32Fixed (ReadWrite,\n"
				    "                    0xFED40000,"));
		CHECK(txt && strstr(txt, "0x00005000,"));
		CHECK(txt && strstr(txt, "Name (_STA, 0x0F)"));
		free(txt);
		snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
		run(cmd);
	}
}

int main(void)
{
	RUN_TEST(test_tables);
	RUN_TEST(test_tpm);
	RUN_TEST(test_placement_and_sizes);
	RUN_TEST(test_enospc);
	RUN_TEST(test_aml);
	RUN_TEST(test_iasl);
	RUN_TEST(test_table_loader);
	RUN_TEST(test_windows_vs_e820);
	return check_finish();
}
