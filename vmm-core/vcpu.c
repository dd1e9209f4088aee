/* SPDX-License-Identifier: MIT */
#include "vcpu.h"

#include <string.h>

#include "bus.h"
#include "hv.h"

static uint64_t load_le(const uint8_t *p, unsigned size)
{
	uint64_t v = 0;

	for (unsigned i = 0; i < size; i++)
		v |= (uint64_t)p[i] << (8 * i);
	return v;
}

static void store_le(uint8_t *p, unsigned size, uint64_t v)
{
	for (unsigned i = 0; i < size; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

void vcpu_dispatch_io(struct bus *pio, struct hv_exit *exit)
{
	unsigned size = exit->io.size;
	uint8_t *p = exit->io.data;

	if (size != 1 && size != 2 && size != 4)
		return;
	for (uint32_t i = 0; i < exit->io.count; i++, p += size) {
		if (exit->io.is_write)
			bus_write(pio, exit->io.port, load_le(p, size), size, NULL);
		else
			store_le(p, size, bus_read(pio, exit->io.port, size, NULL));
	}
}

void vcpu_dispatch_mmio(struct bus *mmio, struct hv_exit *exit)
{
	unsigned size = exit->mmio.size;

	if (size > 8)
		return;
	if (exit->mmio.is_write)
		bus_write(mmio, exit->mmio.gpa, load_le(exit->mmio.data, size),
			  size, NULL);
	else
		store_le(exit->mmio.data, size,
			 bus_read(mmio, exit->mmio.gpa, size, NULL));
}
