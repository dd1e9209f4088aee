/* SPDX-License-Identifier: MIT */
/*
 * VESA Coordinated Video Timings (CVT 1.2 §3.4, the CRT/"normal blanking"
 * formula, progressive, no margins), for xrandr --newmode when X has no
 * mode of the host's size.  Written from the formula; see ga.h.
 */
#include "ga.h"

#define CELL_GRAN	8	/* pixels */
#define MIN_VSYNC_BP	550.0	/* µs, vertical sync + back porch */
#define MIN_V_PORCH	3	/* lines */
#define MIN_V_BPORCH	6	/* lines */
#define H_SYNC_PER	8.0	/* % of the line */
#define C_PRIME		30.0	/* blanking formula gradient, with ... */
#define M_PRIME		300.0	/* ... C' = (C-J)*K/256+J, M' = K/256*M */
#define CLOCK_STEP	0.25	/* MHz */

static unsigned ifloor(double v)
{
	return v <= 0 ? 0 : (unsigned)v;
}

/* The vertical sync width tells the aspect ratio (CVT §3.4, table 3-2). */
static unsigned vsync_lines(unsigned w, unsigned h)
{
	if (h % 3 == 0 && h * 4 / 3 == w)
		return 4;
	if (h % 9 == 0 && h * 16 / 9 == w)
		return 5;
	if (h % 10 == 0 && h * 16 / 10 == w)
		return 6;
	if ((h % 4 == 0 && h * 5 / 4 == w) || (h % 9 == 0 && h * 15 / 9 == w))
		return 7;
	return 10;
}

int ga_cvt(unsigned width, unsigned height, unsigned refresh,
	   struct ga_mode *m)
{
	double h_period, duty, clock;
	unsigned vsync, vsync_bp, h_blank, total, hsync;

	if (!width || !height || width > GA_DISPLAY_MAX ||
	    height > GA_DISPLAY_MAX || refresh < 24 || refresh > 240)
		return -1;
	vsync = vsync_lines(width, height);
	/* The line period estimate, µs. */
	h_period = (1e6 / refresh - MIN_VSYNC_BP) / (height + MIN_V_PORCH);
	vsync_bp = ifloor(MIN_VSYNC_BP / h_period) + 1;
	if (vsync_bp < vsync + MIN_V_BPORCH)
		vsync_bp = vsync + MIN_V_BPORCH;
	duty = C_PRIME - M_PRIME * h_period / 1000.0;
	if (duty < 20)
		duty = 20;
	h_blank = ifloor(width * duty / (100.0 - duty) / (2 * CELL_GRAN)) *
		  (2 * CELL_GRAN);
	total = width + h_blank;
	clock = CLOCK_STEP * ifloor(total / h_period / CLOCK_STEP);
	hsync = ifloor(H_SYNC_PER / 100.0 * total / CELL_GRAN) * CELL_GRAN;

	m->clock_khz = (unsigned)(clock * 1000.0 + 0.5);
	m->hdisp = width;
	m->hsync_start = width + (h_blank - h_blank / 2 - hsync);
	m->hsync_end = m->hsync_start + hsync;
	m->htotal = total;
	m->vdisp = height;
	m->vsync_start = height + MIN_V_PORCH;
	m->vsync_end = m->vsync_start + vsync;
	m->vtotal = height + vsync_bp + MIN_V_PORCH;
	return 0;
}
