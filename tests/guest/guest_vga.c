/* SPDX-License-Identifier: MIT */
/*
 * tests/guest/guest_vga.c - the VGA's BAR0 as a KVM memory slot: the
 * guest's stores to the linear framebuffer land in the VRAM without exits,
 * and KVM's dirty log makes the next refresh redraw just those scanlines;
 * moving the BAR moves the slot.
 */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "guestlib.h"

#include "devices/pci.h"
#include "devices/vga.h"
#include "display/console.h"

#define DEVFN		(2 << 3)
#define LFB		0xe0000000u
#define LFB2		0xe8000000u
#define VRAM_SLOT	8

static struct guest g;
static unsigned ux, uy, uw, uh, updates;

static void l_update(void *opaque, const struct console_surface *s,
		     unsigned x, unsigned y, unsigned w, unsigned h)
{
	(void)opaque;
	(void)s;
	updates++;
	ux = x;
	uy = y;
	uw = w;
	uh = h;
}

static const struct console_listener_ops listener = { .update = l_update };

/* Two pixels of 1024x768x32: (7, 300) via the BAR at %rbx, and
 * (1023, 767) via the same base; exit 5. */
GUEST_CODE64(lfb_code,
	"movl $0x00abcdef, (300 * 1024 + 7) * 4(%rbx)\n"
	"movl $0x00123456, (767 * 1024 + 1023) * 4(%rbx)\n"
	"mov $5, %al\n"
	GUEST_EXIT_ASM);

static void dispi(unsigned i, unsigned v)
{
	bus_write(g.pio, 0x1ce, i, 2, NULL);
	bus_write(g.pio, 0x1cf, v, 2, NULL);
}

static uint32_t pixel(struct console *con, unsigned x, unsigned y)
{
	struct console_surface s;
	uint32_t p = 0xdeadbeef;

	if (console_snapshot(con, &s))
		return p;
	if (x < s.width && y < s.height)
		p = s.pixels[y * s.width + x];
	free(s.pixels);
	return p;
}

static void run_guest(struct hv_vcpu *v, uint64_t base)
{
	struct guest_stop st;
	struct hv_regs r;
	char buf[256];

	CHECK_EQ(guest_setup_long_mode(&g, v, GUEST_CODE_GPA, 0x80000), 0);
	CHECK_EQ(hv_vcpu_get_regs(v, &r), 0);
	r.rbx = base;
	CHECK_EQ(hv_vcpu_set_regs(v, &r), 0);
	if (guest_run(&g, v, 60, &st) != GUEST_STOP_EXIT_PORT)
		fprintf(stderr, "guest: %s\n", guest_stop_str(&st, buf, sizeof(buf)));
	CHECK_EQ(st.value, 5);
	CHECK(st.nexits <= 1);			/* no MMIO exits for the stores */
}

static void test_lfb_dirty_log(void)
{
	struct vga_config cfg = { .vram_size = 4u << 20 };
	struct mem_slot_hv slot = { .id = VRAM_SLOT };
	struct pci_host *host;
	struct console *con;
	struct vga *vga;
	struct hv_vcpu *v;
	uint32_t *vram;

	if (guest_open(&g, 2u << 20) < 0) {
		CHECK(0);
		return;
	}
	slot.vm = g.vm;
	cfg.vram_slot = mem_slot_hv(&slot);
	host = pci_host_new();
	CHECK_EQ(pci_host_attach(host, g.pio, g.mmio), 0);
	vga = vga_new(&cfg);
	CHECK(vga != NULL);
	CHECK_EQ(vga_attach(vga, g.pio, g.mmio, host, DEVFN), 0);
	pci_config_write(host, 0, DEVFN, PCI_BASE_ADDRESS_0, 4, LFB);
	pci_config_write(host, 0, DEVFN, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	vram = (uint32_t *)vga_vram(vga);

	dispi(4, 0);
	dispi(3, 32);
	dispi(1, 1024);
	dispi(2, 768);
	dispi(4, 0x41);
	bus_write(g.pio, 0x3da, 0, 1, NULL);
	(void)bus_read(g.pio, 0x3da, 1, NULL);
	bus_write(g.pio, 0x3c0, 0x20, 1, NULL);

	con = console_new();
	CHECK(con != NULL);
	console_set_hw(con, &vga_console_ops, vga, &g.lock);
	CHECK_EQ(console_add_listener(con, &listener, NULL), 0);
	CHECK(console_refresh(con));
	CHECK(!console_refresh(con));

	guest_load(&g, GUEST_CODE_GPA, lfb_code, lfb_code_end - lfb_code);
	CHECK_EQ(guest_vcpu(&g, 0, 1, &v), 0);
	run_guest(v, LFB);
	CHECK_EQ(vram[300 * 1024 + 7], 0x00abcdefu);
	updates = 0;
	CHECK(console_refresh(con));
	CHECK_EQ(updates, 1);
	CHECK_EQ(pixel(con, 7, 300), 0xabcdefu);
	CHECK_EQ(pixel(con, 1023, 767), 0x123456u);
	CHECK_EQ(uy, 300);			/* lines 300 and 767 only */
	CHECK_EQ(uh, 768 - 300);
	CHECK(!console_refresh(con));

	/* The guest moves the BAR: the slot follows. */
	memset(vram, 0, 4u << 20);
	pci_config_write(host, 0, DEVFN, PCI_BASE_ADDRESS_0, 4, LFB2);
	run_guest(v, LFB2);
	CHECK_EQ(vram[300 * 1024 + 7], 0x00abcdefu);

	hv_vcpu_destroy(v);
	console_remove_listener(con, &listener, NULL);
	console_set_hw(con, NULL, NULL, NULL);
	console_free(con);
	vga_free(vga);
	pci_host_free(host);
	guest_close(&g);
}

int main(void)
{
	RUN_TEST(test_lfb_dirty_log);
	return check_finish();
}
