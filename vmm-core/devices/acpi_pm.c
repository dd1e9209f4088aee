/* SPDX-License-Identifier: MIT */
/*
 * ACPI fixed hardware (ACPI 6.4 §4.8.3): PM1a event and control blocks and
 * the PM timer, plus the PIIX reset control register (0xcf9).
 *
 * Layout from the base: +0 PM1_STS (16 bits, write 1 to clear), +2 PM1_EN,
 * +4 PM1_CNT, +6 two reserved bytes, +8 PM_TMR (32-bit read, 24 bits of
 * count).  Any access width works; it is taken byte by byte.
 *
 * PM_TMR counts at 3.579545 MHz from the vclock (24 bits, wrapping; the
 * FADT must not set TMR_VAL_EXT).  TMR_STS is set whenever bit 23 of the
 * count changes (ACPI §4.8.3.3) and is computed on demand; while TMR_EN is
 * set a vtimer fires at each such change to raise the SCI.
 * The SCI level is (PM1_STS & PM1_EN) != 0.
 *
 * PM1_CNT: SCI_EN reads 1 (no SMI_CMD, always ACPI mode); SLP_EN (write
 * only) with SLP_TYP = ACPI_S5_SLP_TYP powers off.  Other sleep types are
 * not supported: the platform "wakes" at once (WAK_STS set) so that a guest
 * that tries S1 does not wait forever.
 */
#include "acpi_pm.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include <glib.h>

#include "../bus.h"
#include "../log.h"
#include "../timer.h"

#define PM_TMR_FREQ	3579545ull
#define NS_PER_SEC	1000000000ull

#define STS_TMR		0x0001
#define STS_BM		0x0010
#define STS_GBL		0x0020
#define STS_PWRBTN	0x0100
#define STS_SLPBTN	0x0200
#define STS_RTC		0x0400
#define STS_WAK		0x8000
#define STS_MASK	(STS_TMR | STS_BM | STS_GBL | STS_PWRBTN | STS_SLPBTN | \
			 STS_RTC | STS_WAK)

#define EN_TMR		0x0001
#define EN_GBL		0x0020
#define EN_PWRBTN	0x0100
#define EN_SLPBTN	0x0200
#define EN_RTC		0x0400
#define EN_MASK		(EN_TMR | EN_GBL | EN_PWRBTN | EN_SLPBTN | EN_RTC)

#define CNT_SCI_EN	0x0001
#define CNT_BM_RLD	0x0002
#define CNT_GBL_RLS	0x0004		/* write-only */
#define CNT_SLP_TYP	0x1c00
#define CNT_SLP_EN	0x2000		/* write-only */
#define CNT_STORED	(CNT_BM_RLD | CNT_SLP_TYP)

#define RCR_SYS_RST	0x02
#define RCR_RST_CPU	0x04
#define RCR_FULL_RST	0x08

struct acpi_pm {
	const struct acpi_pm_ops *ops;
	void *opaque;
	const struct vclock *clk;
	struct irq_line sci;
	int sci_level;

	uint16_t sts;		/* without TMR_STS, which is computed */
	uint16_t en;
	uint16_t cnt;
	uint64_t tmr_base;	/* monotonic ns at count 0 */
	uint64_t tmr_epoch;	/* count >> 23 when TMR_STS was last cleared */
	struct vtimer tmr_timer;
	uint8_t rcr;		/* 0xcf9 */
};

/* ---- the PM timer ----------------------------------------------------- */

/* Ticks since tmr_base (not wrapped). */
static uint64_t tmr_ticks(const struct acpi_pm *pm)
{
	uint64_t ns = vclock_now(pm->clk) - pm->tmr_base;

	return (uint64_t)(((unsigned __int128)ns * PM_TMR_FREQ) / NS_PER_SEC);
}

static uint16_t sts_value(const struct acpi_pm *pm)
{
	uint16_t sts = pm->sts;

	if ((tmr_ticks(pm) >> 23) != pm->tmr_epoch)
		sts |= STS_TMR;
	return sts;
}

static void update_sci(struct acpi_pm *pm)
{
	int level = (sts_value(pm) & pm->en) != 0;

	if (level != pm->sci_level) {
		pm->sci_level = level;
		irq_line_set(&pm->sci, level);
	}
}

/* Arm the timer for the next change of bit 23 while TMR_EN is set. */
static void tmr_timer_update(struct acpi_pm *pm)
{
	uint64_t next_tick, ns;

	if (!(pm->en & EN_TMR)) {
		vtimer_del(&pm->tmr_timer);
		return;
	}
	next_tick = ((tmr_ticks(pm) >> 23) + 1) << 23;
	/* Round up so that the count has changed when it fires. */
	ns = (uint64_t)(((unsigned __int128)next_tick * NS_PER_SEC +
			 PM_TMR_FREQ - 1) / PM_TMR_FREQ);
	vtimer_mod(&pm->tmr_timer, pm->tmr_base + ns);
}

static void tmr_cb(void *opaque, uint64_t now)
{
	struct acpi_pm *pm = opaque;

	(void)now;
	update_sci(pm);
	tmr_timer_update(pm);
}

/* ---- registers -------------------------------------------------------- */

/* @ticks: one sample of the timer per access, so its bytes agree. */
static uint8_t read_byte(struct acpi_pm *pm, unsigned off, uint64_t ticks)
{
	switch (off) {
	case 0: return (uint8_t)sts_value(pm);
	case 1: return (uint8_t)(sts_value(pm) >> 8);
	case 2: return (uint8_t)pm->en;
	case 3: return (uint8_t)(pm->en >> 8);
	case 4: return (uint8_t)(pm->cnt | CNT_SCI_EN);
	case 5: return (uint8_t)(pm->cnt >> 8);
	case 8: case 9: case 10:
		return (uint8_t)(ticks >> (8 * (off - 8)));
	}
	return 0;	/* reserved bytes and PM_TMR's top byte */
}

static void sleep_request(struct acpi_pm *pm)
{
	unsigned typ = (pm->cnt & CNT_SLP_TYP) >> 10;

	if (typ == ACPI_S5_SLP_TYP) {
		if (pm->ops && pm->ops->poweroff)
			pm->ops->poweroff(pm->opaque);
		return;
	}
	vlog_ratelimited(LOG_INFO, "ACPI: sleep type %u not supported, waking", typ);
	pm->sts |= STS_WAK;
}

static void write_byte(struct acpi_pm *pm, unsigned off, uint8_t v)
{
	switch (off) {
	case 0:
		pm->sts &= (uint16_t)~(v & STS_MASK);
		if (v & STS_TMR)
			pm->tmr_epoch = tmr_ticks(pm) >> 23;
		break;
	case 1:
		pm->sts &= (uint16_t)~((v << 8) & STS_MASK);
		break;
	case 2:
		pm->en = (uint16_t)((pm->en & 0xff00) | (v & EN_MASK));
		tmr_timer_update(pm);
		break;
	case 3:
		pm->en = (uint16_t)((pm->en & 0x00ff) | ((v << 8) & EN_MASK));
		break;
	case 4:
		pm->cnt = (uint16_t)((pm->cnt & 0xff00) | (v & CNT_STORED));
		break;
	case 5:
		pm->cnt = (uint16_t)((pm->cnt & 0x00ff) |
				     ((v << 8) & CNT_STORED));
		if ((v << 8) & CNT_SLP_EN)
			sleep_request(pm);
		break;
	}
}

static uint64_t pm_read(void *opaque, uint64_t offset, unsigned size)
{
	struct acpi_pm *pm = opaque;
	uint64_t ticks = tmr_ticks(pm), v = 0;

	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)read_byte(pm, (unsigned)offset + i, ticks)
		     << (8 * i);
	return v;
}

static void pm_write(void *opaque, uint64_t offset, uint64_t value,
		     unsigned size)
{
	struct acpi_pm *pm = opaque;

	/* Low byte first, so that a 16-bit PM1_CNT write has its SLP_TYP in
	 * place when SLP_EN (high byte) acts. */
	for (unsigned i = 0; i < size; i++)
		write_byte(pm, (unsigned)offset + i, (uint8_t)(value >> (8 * i)));
	update_sci(pm);
}

static const struct bus_ops pm_ops = {
	.name = "acpi-pm",
	.read = pm_read,
	.write = pm_write,
};

/* ---- 0xcf9 ------------------------------------------------------------ */

static uint64_t rcr_read(void *opaque, uint64_t offset, unsigned size)
{
	struct acpi_pm *pm = opaque;

	(void)offset, (void)size;
	return pm->rcr;
}

static void rcr_write(void *opaque, uint64_t offset, uint64_t value,
		      unsigned size)
{
	struct acpi_pm *pm = opaque;

	(void)offset, (void)size;
	pm->rcr = (uint8_t)(value & (RCR_SYS_RST | RCR_FULL_RST));
	if ((value & RCR_RST_CPU) && pm->ops && pm->ops->reset)
		pm->ops->reset(pm->opaque);
}

const struct bus_ops acpi_pm_reset_ops = {
	.name = "piix-reset-control",
	.read = rcr_read,
	.write = rcr_write,
};

/* ---- life cycle ------------------------------------------------------- */

void acpi_pm_reset(struct acpi_pm *pm)
{
	pm->sts = 0;
	pm->en = 0;
	pm->cnt = 0;
	pm->rcr = 0;
	pm->tmr_epoch = tmr_ticks(pm) >> 23;
	vtimer_del(&pm->tmr_timer);
	update_sci(pm);
}

struct acpi_pm *acpi_pm_new(struct vtimer_queue *q, struct irq_line sci,
			    const struct acpi_pm_ops *ops, void *opaque)
{
	struct acpi_pm *pm = calloc(1, sizeof(*pm));

	if (!pm)
		return NULL;
	pm->ops = ops;
	pm->opaque = opaque;
	pm->clk = vtimer_queue_clock(q);
	pm->sci = sci;
	pm->tmr_base = vclock_now(pm->clk);
	vtimer_init(&pm->tmr_timer, q, tmr_cb, pm);
	return pm;
}

void acpi_pm_free(struct acpi_pm *pm)
{
	if (!pm)
		return;
	vtimer_del(&pm->tmr_timer);
	free(pm);
}

int acpi_pm_attach(struct acpi_pm *pm, struct bus *pio, uint16_t base)
{
	return bus_register(pio, base, ACPI_PM_LEN, &pm_ops, pm);
}

void acpi_pm_power_button(struct acpi_pm *pm)
{
	pm->sts |= STS_PWRBTN;
	update_sci(pm);
}

/* ---- the machine's device table ---------------------------------------- */

static void acpi_pm_dev_reset(void *dev)
{
	acpi_pm_reset(dev);
}

static void acpi_pm_dev_free(void *dev)
{
	acpi_pm_free(dev);
}

/* ---- saved state (ACPI_PM_STATE_TYPE in acpi_pm.h) --------------------- */

static GVariant *acpi_pm_dev_save(void *dev)
{
	struct acpi_pm *pm = dev;

	return g_variant_new(ACPI_PM_STATE_TYPE, pm->sts, pm->en, pm->cnt,
			     (guint64)pm->tmr_base, (guint64)pm->tmr_epoch,
			     pm->rcr, pm->sci_level != 0, pm->tmr_timer.armed,
			     (guint64)pm->tmr_timer.deadline_ns);
}

/* Checked in full before anything changes; then the TMR_STS timer is
 * re-armed at its saved deadline (machine clock time) and the SCI driven
 * to its saved level (a timer that was due when the machine paused fires
 * after the restore and raises it then, as it would have). */
static int acpi_pm_dev_load(void *dev, uint32_t version, GVariant *state,
			    char *err, size_t errlen)
{
	struct acpi_pm *pm = dev;
	guint16 sts, en, cnt;
	guint64 base, epoch, deadline;
	guint8 rcr;
	gboolean level, armed;
	uint64_t now = vclock_now(pm->clk), ticks;
	int r = device_state_check("acpi-pm", version, 1, state, ACPI_PM_STATE_TYPE,
				   err, errlen);

	if (r < 0)
		return r;
	g_variant_get(state, ACPI_PM_STATE_TYPE, &sts, &en, &cnt, &base, &epoch,
		      &rcr, &level, &armed, &deadline);
	if ((sts & ~STS_MASK) || (sts & STS_TMR) || (en & ~EN_MASK) ||
	    (cnt & ~CNT_STORED) || (rcr & ~(RCR_SYS_RST | RCR_FULL_RST))) {
		snprintf(err, errlen, "acpi-pm: PM1_STS 0x%04x, PM1_EN 0x%04x, PM1_CNT 0x%04x or reset control 0x%02x has bits that are never stored",
			 sts, en, cnt, rcr);
		return -EINVAL;
	}
	if (base > now) {
		snprintf(err, errlen, "acpi-pm: PM timer started after the saved clock time");
		return -EINVAL;
	}
	ticks = (uint64_t)(((unsigned __int128)(now - base) * PM_TMR_FREQ) / NS_PER_SEC);
	if (epoch > ticks >> 23) {
		snprintf(err, errlen, "acpi-pm: TMR_STS epoch %llu is ahead of the PM timer",
			 (unsigned long long)epoch);
		return -EINVAL;
	}
	if (armed != !!(en & EN_TMR)) {
		snprintf(err, errlen, "acpi-pm: PM timer interrupt %s, but TMR_EN is %s",
			 armed ? "armed" : "idle", (en & EN_TMR) ? "set" : "clear");
		return -EINVAL;
	}
	pm->sts = sts;
	pm->en = en;
	pm->cnt = cnt;
	pm->tmr_base = base;
	pm->tmr_epoch = epoch;
	pm->rcr = rcr;
	if (armed)
		vtimer_mod(&pm->tmr_timer, deadline);
	else
		vtimer_del(&pm->tmr_timer);
	pm->sci_level = level;
	irq_line_set(&pm->sci, pm->sci_level);
	return 0;
}

const struct device_ops acpi_pm_device_ops = {
	.name = "acpi-pm",
	.reset = acpi_pm_dev_reset,
	.save = acpi_pm_dev_save,
	.load = acpi_pm_dev_load,
	.state_version = 1,
	.free = acpi_pm_dev_free,
};
