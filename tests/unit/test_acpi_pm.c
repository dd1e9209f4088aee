/* SPDX-License-Identifier: MIT */
/* tests/unit/test_acpi_pm.c - ACPI PM1a event/control blocks, the PM timer
 * with a fake clock, and the 0xcf9 reset register behind the PCI host, as
 * Linux's ACPICA (hwsleep.c, hwregs.c) and reboot code use them. */
#include "testlib.h"

#include <errno.h>

#include "statetest.h"

#include "devices/acpi_pm.h"
#include "devices/pci.h"
#include "timer.h"

#define PM1_STS	(ACPI_PM_BASE + 0)
#define PM1_EN	(ACPI_PM_BASE + 2)
#define PM1_CNT	(ACPI_PM_BASE + 4)
#define PM_TMR	(ACPI_PM_BASE + 8)

#define NS 1000000000ull

static struct fake_clock fclk;
static struct bus *pio;
static struct vtimer_queue *q;
static struct acpi_pm *pm;
static struct pci_host *host;
static struct irq_recorder sci;
static int poweroffs, resets;

static void on_poweroff(void *opaque)
{
	(void)opaque;
	poweroffs++;
}

static void on_reset(void *opaque)
{
	(void)opaque;
	resets++;
}

static const struct acpi_pm_ops ops = {
	.poweroff = on_poweroff, .reset = on_reset,
};

static void advance(uint64_t ns)
{
	fake_clock_advance(&fclk, ns);
	vtimer_queue_run_due(q, fclk.mono_ns);
}

static void setup(void)
{
	poweroffs = resets = 0;
	fake_clock_init(&fclk);
	fclk.mono_ns = 7 * NS;
	fclk.real_ns = 7 * NS;	/* reads as the monotonic time */
	pio = bus_new("pio");
	q = vtimer_queue_new_manual(&fclk.clk);
	pm = acpi_pm_new(q, irq_recorder_line(&sci, ACPI_SCI_IRQ), &ops, NULL);
	CHECK(pm != NULL);
	CHECK_EQ(acpi_pm_attach(pm, pio, ACPI_PM_BASE), 0);
	/* As the machine wires it. */
	host = pci_host_new();
	CHECK_EQ(pci_host_attach(host, pio, NULL), 0);
	pci_host_set_cf9_handler(host, &acpi_pm_reset_ops, pm);
}

static void teardown(void)
{
	acpi_pm_free(pm);
	pci_host_free(host);
	vtimer_queue_free(q);
	bus_free(pio);
}

static uint64_t in(uint16_t port, unsigned size)
{
	return io_read(pio, port, size);
}

static void out(uint16_t port, uint64_t v, unsigned size)
{
	io_write(pio, port, v, size);
}

static void test_reset_values(void)
{
	setup();
	CHECK_EQ(in(PM1_STS, 2), 0);
	CHECK_EQ(in(PM1_EN, 2), 0);
	CHECK_EQ(in(PM1_CNT, 2), 0x0001);	/* SCI_EN */
	CHECK_EQ(in(PM1_STS, 4), 0);		/* STS + EN as one dword */
	CHECK_EQ(sci.level, 0);
	teardown();
}

/* AcpiHwLegacySleep: SLP_TYP first, then SLP_TYP | SLP_EN. */
static void enter_sleep(unsigned typ)
{
	uint16_t cnt = (uint16_t)in(PM1_CNT, 2);

	cnt &= (uint16_t)~(0x1c00 | 0x2000);
	cnt |= (uint16_t)(typ << 10);
	out(PM1_CNT, cnt, 2);
	out(PM1_CNT, cnt | 0x2000, 2);
}

static void test_s5_poweroff(void)
{
	setup();
	/* SLP_TYP 5 without SLP_EN: nothing. */
	out(PM1_CNT, 5u << 10, 2);
	CHECK_EQ(poweroffs, 0);
	CHECK_EQ(in(PM1_CNT, 2), 0x1401);	/* SLP_TYP kept, SCI_EN */
	/* Other sleep types: no power-off; the platform wakes at once. */
	enter_sleep(1);
	CHECK_EQ(poweroffs, 0);
	CHECK(in(PM1_STS, 2) & 0x8000);		/* WAK_STS */
	out(PM1_STS, 0x8000, 2);
	CHECK_EQ(in(PM1_STS, 2) & 0x8000, 0);
	enter_sleep(3);
	CHECK_EQ(poweroffs, 0);
	enter_sleep(0);
	CHECK_EQ(poweroffs, 0);
	/* S5. */
	enter_sleep(ACPI_S5_SLP_TYP);
	CHECK_EQ(poweroffs, 1);
	CHECK_EQ(in(PM1_CNT, 2) & 0x2000, 0);	/* SLP_EN reads 0 */
	/* Byte-wide: the high byte carries both SLP_TYP and SLP_EN. */
	out(PM1_CNT + 1, (5u << 2) | 0x20, 1);
	CHECK_EQ(poweroffs, 2);
	/* SCI_EN cannot be cleared. */
	out(PM1_CNT, 0, 2);
	CHECK_EQ(in(PM1_CNT, 2), 0x0001);
	teardown();
}

static void test_power_button_and_w1c(void)
{
	setup();
	/* Status without enable: no SCI. */
	acpi_pm_power_button(pm);
	CHECK_EQ(in(PM1_STS, 2) & 0x0100, 0x0100);
	CHECK_EQ(sci.level, 0);
	/* Enabling it raises the SCI (level = STS & EN). */
	out(PM1_EN, 0x0100, 2);
	CHECK_EQ(in(PM1_EN, 2), 0x0100);
	CHECK_EQ(sci.level, 1);
	/* Writing 0 clears nothing; writing the bit back clears it. */
	out(PM1_STS, 0x0000, 2);
	CHECK_EQ(in(PM1_STS, 2) & 0x0100, 0x0100);
	CHECK_EQ(sci.level, 1);
	out(PM1_STS, 0x0100, 2);
	CHECK_EQ(in(PM1_STS, 2) & 0x0100, 0);
	CHECK_EQ(sci.level, 0);
	/* Enabled: a press raises the SCI at once. */
	acpi_pm_power_button(pm);
	CHECK_EQ(sci.level, 1);
	CHECK_EQ(sci.rises, 2);
	/* A byte write to the high status byte clears it too. */
	out(PM1_STS + 1, 0x01, 1);
	CHECK_EQ(sci.level, 0);
	/* Disabling with status pending lowers the SCI. */
	acpi_pm_power_button(pm);
	out(PM1_EN, 0, 2);
	CHECK_EQ(sci.level, 0);
	/* A dword write to STS+EN: clear status, set enable. */
	out(PM1_STS, 0x01000100u, 4);
	CHECK_EQ(in(PM1_STS, 2) & 0x0100, 0);
	CHECK_EQ(in(PM1_EN, 2), 0x0100);
	teardown();
}

static uint32_t tmr(void)
{
	return (uint32_t)in(PM_TMR, 4);
}

static void test_pm_timer(void)
{
	uint32_t t0, t1;

	setup();
	t0 = tmr();
	advance(NS);
	t1 = tmr();
	CHECK_EQ((t1 - t0) & 0xffffff, 3579545);
	advance(NS / 1000);
	CHECK(((tmr() - t1) & 0xffffff) >= 3579 && ((tmr() - t1) & 0xffffff) <= 3580);
	/* 24 bits: the top byte reads 0 and the count wraps. */
	for (int i = 0; i < 10; i++) {
		advance(NS / 3);
		CHECK_EQ(tmr() >> 24, 0);
	}
	/* 2^24 ticks = 4.687 s later: the same value again. */
	t0 = tmr();
	advance(4686968875ull);	/* 2^24 ticks */
	t1 = tmr();
	CHECK(((t1 - t0) & 0xffffff) <= 1 || ((t0 - t1) & 0xffffff) <= 1);
	/* Byte and word reads of the timer. */
	t0 = tmr();
	CHECK_EQ(in(PM_TMR, 2), t0 & 0xffff);
	CHECK_EQ(in(PM_TMR + 2, 1), (t0 >> 16) & 0xff);
	CHECK_EQ(in(PM_TMR + 3, 1), 0);
	/* Read-only. */
	out(PM_TMR, 0, 4);
	CHECK_EQ(tmr(), t0);
	teardown();
}

static void test_tmr_sts(void)
{
	setup();
	/* Bit 23 changes every 2^23 ticks (2.3435 s). */
	advance(2343000000ull);
	CHECK_EQ(in(PM1_STS, 2) & 1, 0);
	advance(1000000ull);
	CHECK_EQ(in(PM1_STS, 2) & 1, 1);
	CHECK_EQ(sci.level, 0);			/* TMR_EN off */
	out(PM1_STS, 1, 2);
	CHECK_EQ(in(PM1_STS, 2) & 1, 0);
	/* TMR_EN: the SCI comes at the next change. */
	out(PM1_EN, 1, 2);
	advance(2000000000ull);
	CHECK_EQ(sci.level, 0);
	advance(400000000ull);
	CHECK_EQ(sci.level, 1);
	out(PM1_STS, 1, 2);
	CHECK_EQ(sci.level, 0);
	advance(2343500000ull);
	CHECK_EQ(sci.level, 1);
	teardown();
}

static void test_cf9_reset(void)
{
	setup();
	out(ACPI_RESET_PORT, 0x02, 1);		/* SYS_RST only: arm */
	CHECK_EQ(resets, 0);
	CHECK_EQ(in(ACPI_RESET_PORT, 1), 0x02);
	out(ACPI_RESET_PORT, 0x06, 1);		/* RST_CPU */
	CHECK_EQ(resets, 1);
	out(ACPI_RESET_PORT, 0x0e, 1);		/* full reset */
	CHECK_EQ(resets, 2);
	CHECK_EQ(in(ACPI_RESET_PORT, 1), 0x0a);
	/* Linux reboot=pci: read, |2, then |6. */
	out(ACPI_RESET_PORT, (in(ACPI_RESET_PORT, 1) & ~6u) | 2, 1);
	CHECK_EQ(resets, 2);
	out(ACPI_RESET_PORT, (in(ACPI_RESET_PORT, 1) & ~6u) | 6, 1);
	CHECK_EQ(resets, 3);
	CHECK_EQ(ACPI_RESET_VALUE, 0x06);
	teardown();
}

static void test_reset(void)
{
	setup();
	out(PM1_EN, 0x0100, 2);
	acpi_pm_power_button(pm);
	CHECK_EQ(sci.level, 1);
	acpi_pm_reset(pm);
	CHECK_EQ(sci.level, 0);
	CHECK_EQ(in(PM1_EN, 2), 0);
	CHECK_EQ(in(PM1_STS, 2), 0);
	teardown();
}


/* Power button pressed, TMR_EN and PWRBTN_EN set, a sleep type written, a
 * reset control bit: saved, loaded into a fresh device and saved again,
 * equal; both then read alike and raise the SCI at the same times. */
static void test_save_load(void)
{
	struct bus *pio2 = bus_new("pio2");
	struct vtimer_queue *q2 = vtimer_queue_new_manual(&fclk.clk);
	struct irq_recorder sci2;
	struct acpi_pm *pm2;
	GVariant *s1, *s2;
	unsigned rises;
	char err[256];

	setup();
	out(PM1_EN, 0x0101, 2);			/* PWRBTN_EN, TMR_EN */
	out(PM1_CNT, 0x0400, 2);		/* SLP_TYP 1, no SLP_EN */
	out(ACPI_RESET_PORT, 0x02, 1);		/* SYS_RST */
	advance(NS);
	acpi_pm_power_button(pm);
	CHECK_EQ(sci.level, 1);

	s1 = g_variant_ref_sink(acpi_pm_device_ops.save(pm));
	CHECK(g_variant_is_of_type(s1, G_VARIANT_TYPE(ACPI_PM_STATE_TYPE)));
	pm2 = acpi_pm_new(q2, irq_recorder_line(&sci2, ACPI_SCI_IRQ), &ops, NULL);
	CHECK_EQ(acpi_pm_attach(pm2, pio2, ACPI_PM_BASE), 0);
	CHECK_EQ(acpi_pm_device_ops.load(pm2, 1, s1, err, sizeof(err)), 0);
	CHECK_EQ(sci2.level, 1);
	s2 = g_variant_ref_sink(acpi_pm_device_ops.save(pm2));
	CHECK(g_variant_equal(s1, s2));

	CHECK_EQ(in(PM_TMR, 4), io_read(pio2, PM_TMR, 4));
	CHECK_EQ(in(PM1_STS, 2), io_read(pio2, PM1_STS, 2));
	CHECK_EQ(in(PM1_CNT, 2), io_read(pio2, PM1_CNT, 2));
	out(PM1_STS, 0x0100, 2);		/* clear PWRBTN_STS */
	io_write(pio2, PM1_STS, 0x0100, 2);
	CHECK_EQ(sci.level, 0);
	CHECK_EQ(sci2.level, 0);
	rises = sci.rises;
	for (int i = 0; i < 400; i++) {
		fake_clock_advance(&fclk, 10000000ull);
		vtimer_queue_run_due(q, fclk.mono_ns);
		vtimer_queue_run_due(q2, fclk.mono_ns);
		CHECK_EQ(sci.level, sci2.level);
		if (sci.level) {
			out(PM1_STS, 1, 2);
			io_write(pio2, PM1_STS, 1, 2);
		}
	}
	CHECK(sci.rises - rises >= 1);
	CHECK_EQ(sci.rises - rises, sci2.rises - 1);

	state_refused(&acpi_pm_device_ops, pm2, 1, g_variant_new("(u)", 1), "acpi-pm: state is of type");
	state_refused(&acpi_pm_device_ops, pm2, 3, g_variant_ref(s1), "acpi-pm: state version 3 not supported");
	state_refused(&acpi_pm_device_ops, pm2, 1,
		      state_with(s1, g_variant_new_uint16(0x0001), 1, 0), "acpi-pm: PM1_STS");
	state_refused(&acpi_pm_device_ops, pm2, 1,
		      state_with(s1, g_variant_new_uint16(0x2000), 1, 2), "acpi-pm: PM1_STS");
	state_refused(&acpi_pm_device_ops, pm2, 1,
		      state_with(s1, g_variant_new_uint64(fclk.mono_ns + 1), 1, 3), "acpi-pm: PM timer started");
	state_refused(&acpi_pm_device_ops, pm2, 1,
		      state_with(s1, g_variant_new_boolean(FALSE), 1, 7), "acpi-pm: PM timer interrupt");

	g_variant_unref(s1);
	g_variant_unref(s2);
	acpi_pm_free(pm2);
	vtimer_queue_free(q2);
	bus_free(pio2);
	teardown();
}

int main(void)
{
	RUN_TEST(test_reset_values);
	RUN_TEST(test_s5_poweroff);
	RUN_TEST(test_power_button_and_w1c);
	RUN_TEST(test_pm_timer);
	RUN_TEST(test_tmr_sts);
	RUN_TEST(test_cf9_reset);
	RUN_TEST(test_reset);
	RUN_TEST(test_save_load);
	return check_finish();
}
