/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_virtqueue.c - the split virtqueue (vmm-core/virtio/
 * virtqueue.c) against arbitrary guest memory.
 *
 * Input: 4 control bytes, then an image copied into guest RAM at
 * IMAGE_GPA, where the descriptor table starts, followed by the available
 * and used rings; descriptors may point anywhere (in the image, elsewhere
 * in RAM, outside it).
 *   byte 0: queue size = 1 << (b % 9)
 *   byte 1: bit 0 INDIRECT_DESC, bit 1 EVENT_IDX, bit 2 hold elements
 *           until the end of the round (else push at once), bit 3 reset the
 *           queue before the last round's pushes, bit 4 save and load the
 *           queue after each round (a copy without its host views, remapped)
 *   byte 2: rounds = 1 + b % 4
 *   byte 3: how far the "driver" moves avail idx between rounds
 * Checked: every iovec lies inside guest RAM, lengths add up, pops per
 * round are bounded by the queue size, a broken queue stays broken, and
 * nothing crashes (ASan/UBSan under libFuzzer).  A violation abort()s.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "fuzzlib.h"
#include "vring_driver.h"

#include "log.h"
#include "mem.h"
#include "virtio/virtqueue.h"

#define FUZZ_RAM	(1u << 20)
#define IMAGE_GPA	0x10000ull
#define IMAGE_MAX	0x20000u
#define CTRL_BYTES	4

static struct guest_mem mem;
static bool ready;

const char fuzz_target[] = "fuzz_virtqueue";

static void init_once(void)
{
	if (ready)
		return;
	log_set_level(LOG_ERROR);	/* broken queues log warnings */
	fuzz_ram(&mem, FUZZ_RAM);
	ready = true;
}

static bool inside_ram(const void *p, size_t len)
{
	const uint8_t *b = p;

	for (unsigned i = 0; i < mem.nregions; i++) {
		const struct mem_region *r = &mem.region[i];

		if (b >= r->hva && b < r->hva + r->size &&
		    len <= (size_t)(r->hva + r->size - b))
			return true;
	}
	return false;
}

static void check_elem(const struct virtq_elem *e, uint16_t qsize)
{
	uint64_t out = 0, in = 0;
	volatile uint8_t sink = 0;

	if (e->head >= qsize)
		fuzz_fail("head out of range");
	if (e->out_num + e->in_num > VIRTQ_MAX_CHAIN)
		fuzz_fail("chain longer than VIRTQ_MAX_CHAIN");
	for (unsigned i = 0; i < e->out_num + e->in_num; i++) {
		const struct iovec *v = &e->iov[i];

		if (v->iov_len == 0 || !inside_ram(v->iov_base, v->iov_len))
			fuzz_fail("iovec outside guest RAM");
		if (i < e->out_num) {
			out += v->iov_len;
			sink ^= ((uint8_t *)v->iov_base)[0];
			sink ^= ((uint8_t *)v->iov_base)[v->iov_len - 1];
		} else {
			in += v->iov_len;
			memset(v->iov_base, 0xa5, v->iov_len);	/* device writes */
		}
	}
	if (out != e->out_len || in != e->in_len)
		fuzz_fail("lengths do not add up");
	if (out + in > VIRTQ_MAX_CHAIN_BYTES)
		fuzz_fail("chain longer than 4 GiB");
	(void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct virtq vq;
	struct virtq_elem held[256];
	unsigned nheld = 0;
	uint16_t qsize;
	uint64_t desc, avail, used;
	unsigned rounds, flags;
	size_t n;

	init_once();
	if (size < CTRL_BYTES)
		return 0;
	qsize = (uint16_t)(1u << (data[0] % 9));
	flags = data[1];
	rounds = 1 + data[2] % 4;
	desc = IMAGE_GPA;
	avail = desc + VIRTQ_DESC_BYTES(qsize);
	used = (avail + VIRTQ_AVAIL_BYTES(qsize) + 3) & ~3ull;

	memset(gpa_to_hva(&mem, IMAGE_GPA, IMAGE_MAX), 0, IMAGE_MAX);
	n = size - CTRL_BYTES < IMAGE_MAX ? size - CTRL_BYTES : IMAGE_MAX;
	memcpy(gpa_to_hva(&mem, IMAGE_GPA, n ? n : 1), data + CTRL_BYTES, n);

	virtq_init(&vq, &mem, 0);
	if (virtq_enable(&vq, qsize, desc, avail, used,
			 ((flags & 1) ? 1ull << VIRTIO_F_INDIRECT_DESC : 0) |
			 ((flags & 2) ? 1ull << VIRTIO_F_EVENT_IDX : 0)) != 0)
		fuzz_fail("enable refused rings that lie in RAM");

	for (unsigned round = 0; round < rounds; round++) {
		struct virtq_elem e;
		unsigned pops = 0;
		int r;

		while ((r = virtq_pop(&vq, &e)) == 1) {
			check_elem(&e, qsize);
			if (++pops > qsize)
				fuzz_fail("more pops in a round than the queue holds");
			if ((flags & 4) && nheld < qsize) {
				held[nheld++] = e;
				continue;
			}
			if (virtq_push(&vq, &e, (uint32_t)e.in_len) != 0)
				fuzz_fail("push of a fresh element failed");
			virtq_elem_release(&e);
		}
		if (r < 0 && !vq.broken)
			fuzz_fail("pop failed on a queue that is not broken");
		if (vq.broken && virtq_pop(&vq, &e) != -EIO)
			fuzz_fail("a broken queue popped again");
		if (round + 1 == rounds && (flags & 8))
			virtq_reset(&vq);
		for (unsigned i = 0; i < nheld; i++) {
			int pr = virtq_push(&vq, &held[i], 0xffffffffu);

			if (pr == 0 && (vq.broken || !vq.ready))
				fuzz_fail("push succeeded on a dead queue");
			virtq_elem_release(&held[i]);
		}
		nheld = 0;
		if (flags & 16) {
			/* Save and load: plain data, views recomputed. */
			struct virtq copy = vq;

			copy.map = (struct virtq_map){ 0 };
			vq = copy;
			if (virtq_remap(&vq) != 0)
				fuzz_fail("remap refused rings that lie in RAM");
		}
		virtq_should_notify(&vq);
		virtq_disable_notify(&vq);
		virtq_enable_notify(&vq);
		if (vq.ready) {
			/* The driver publishes more (or garbage). */
			uint16_t *idx = gpa_to_hva(&mem, avail + 2, 2);

			*idx = (uint16_t)(*idx + data[3]);
		}
	}
	return 0;
}

/* ---- seeds: well-formed and hostile rings built by a driver ------------- */

/* Control bytes + the image as the driver left it. */
static void emit(void (*add)(const void *, size_t), uint8_t qexp,
		 uint8_t flags, uint8_t rounds, uint8_t bump, size_t image_len)
{
	static uint8_t buf[CTRL_BYTES + IMAGE_MAX];

	buf[0] = qexp;
	buf[1] = flags;
	buf[2] = rounds;
	buf[3] = bump;
	memcpy(buf + CTRL_BYTES, gpa_to_hva(&mem, IMAGE_GPA, image_len),
	       image_len);
	add(buf, CTRL_BYTES + image_len);
}

/* A driver whose rings sit where the target expects them and whose
 * buffers follow in the image. */
static void seed_driver(struct vdrv *d, uint16_t qsize)
{
	memset(gpa_to_hva(&mem, IMAGE_GPA, IMAGE_MAX), 0, IMAGE_MAX);
	d->mem = &mem;
	d->size = qsize;
	d->desc = IMAGE_GPA;
	d->avail = d->desc + VIRTQ_DESC_BYTES(qsize);
	d->used = (d->avail + VIRTQ_AVAIL_BYTES(qsize) + 3) & ~3ull;
	d->data_start = d->used + VIRTQ_USED_BYTES(qsize) + 16;
	d->data_start = (d->data_start + 15) & ~15ull;
	d->data_end = IMAGE_GPA + IMAGE_MAX;
	d->next_desc = d->avail_idx = d->used_seen = 0;
	d->data_next = d->data_start;
}

void fuzz_make_seeds(void (*add)(const void *, size_t))
{
	struct vdrv d;
	struct vbuf b[4];
	size_t len;

	init_once();
	/* Plain chains, several of them, queue of 16. */
	seed_driver(&d, 16);
	for (int i = 0; i < 3; i++) {
		b[0] = (struct vbuf){ vdrv_alloc(&d, 16, 16), 16, false };
		b[1] = (struct vbuf){ vdrv_alloc(&d, 512, 16), 512, i != 1 };
		b[2] = (struct vbuf){ vdrv_alloc(&d, 1, 1), 1, true };
		vdrv_add(&d, b, 3, false);
	}
	len = d.data_next - IMAGE_GPA;
	emit(add, 4, 0, 2, 1, len);
	emit(add, 4, 2 | 4, 3, 2, len);

	/* Indirect tables, queue of 8, EVENT_IDX. */
	seed_driver(&d, 8);
	for (int i = 0; i < 2; i++) {
		for (int k = 0; k < 4; k++)
			b[k] = (struct vbuf){ vdrv_alloc(&d, 64, 16), 64, k >= 2 };
		vdrv_add(&d, b, 4, true);
	}
	len = d.data_next - IMAGE_GPA;
	emit(add, 3, 1 | 2, 2, 1, len);
	emit(add, 3, 1 | 2 | 4 | 8, 4, 3, len);

	/* Direct descriptors ending in an indirect one. */
	seed_driver(&d, 4);
	{
		uint64_t t = vdrv_alloc(&d, 32, 16);

		vdrv_write_desc(&d, t, 0, vdrv_alloc(&d, 8, 8), 8, VIRTQ_DESC_F_NEXT, 1);
		vdrv_write_desc(&d, t, 1, vdrv_alloc(&d, 8, 8), 8, VIRTQ_DESC_F_WRITE, 0);
		vdrv_write_desc(&d, d.desc, 0, vdrv_alloc(&d, 8, 8), 8,
				VIRTQ_DESC_F_NEXT, 1);
		vdrv_write_desc(&d, d.desc, 1, t, 32, VIRTQ_DESC_F_INDIRECT, 0);
		vdrv_publish(&d, 0);
	}
	emit(add, 2, 1, 1, 0, d.data_next - IMAGE_GPA);

	/* Hostile: a loop, and a nested indirect table. */
	seed_driver(&d, 4);
	vdrv_write_desc(&d, d.desc, 0, vdrv_alloc(&d, 8, 8), 8, VIRTQ_DESC_F_NEXT, 1);
	vdrv_write_desc(&d, d.desc, 1, vdrv_alloc(&d, 8, 8), 8, VIRTQ_DESC_F_NEXT, 0);
	vdrv_publish(&d, 0);
	emit(add, 2, 0, 1, 0, d.data_next - IMAGE_GPA);
	seed_driver(&d, 4);
	{
		uint64_t t = vdrv_alloc(&d, 16, 16);

		vdrv_write_desc(&d, t, 0, t, 16, VIRTQ_DESC_F_INDIRECT, 0);
		vdrv_write_desc(&d, d.desc, 0, t, 16, VIRTQ_DESC_F_INDIRECT, 0);
		vdrv_publish(&d, 0);
	}
	emit(add, 2, 1, 1, 0, d.data_next - IMAGE_GPA);
}
