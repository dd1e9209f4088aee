/* SPDX-License-Identifier: MIT */
/* tests/unit/test_virtqueue.c - the split virtqueue (virtio 1.2 §2.7)
 * against a driver written from the spec (vring_driver.h): plain and
 * indirect chains, the used ring, notification suppression with and
 * without VIRTIO_F_EVENT_IDX, and every hostile ring we could think of,
 * each of which must break the queue quickly and never crash. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "testlib.h"
#include "statetest.h"
#include "vring_driver.h"

#include "log.h"
#include "mem.h"
#include "virtio/virtqueue.h"

#define RAM_SIZE	(16u << 20)
#define QSIZE		16
#define RING_BASE	0x100000ull
#define FEAT_ALL	((1ull << VIRTIO_F_INDIRECT_DESC) | \
			 (1ull << VIRTIO_F_EVENT_IDX))

static struct guest_mem mem;
static struct vdrv drv;
static struct virtq vq;
static unsigned broken_calls;

static void on_broken(struct virtq *q, void *opaque)
{
	(void)q;
	(void)opaque;
	broken_calls++;
}

static void setup_features(uint64_t features)
{
	vdrv_init(&drv, &mem, QSIZE, RING_BASE, 4u << 20);
	virtq_init(&vq, &mem, 0);
	vq.on_broken = on_broken;
	broken_calls = 0;
	CHECK_EQ(virtq_enable(&vq, QSIZE, drv.desc, drv.avail, drv.used,
			      features), 0);
}

static void setup(void)
{
	setup_features(FEAT_ALL);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The queue is broken: pop fails, on_broken ran exactly once, nothing
 * reached the used ring. */
static void expect_broken(void)
{
	struct virtq_elem e;

	CHECK(vq.broken);
	CHECK_EQ(broken_calls, 1);
	CHECK_EQ(virtq_pop(&vq, &e), -EIO);
	CHECK_EQ(broken_calls, 1);
	CHECK_EQ(vdrv_used_idx(&drv), 0);
}

static void test_enable_checks(void)
{
	vdrv_init(&drv, &mem, QSIZE, RING_BASE, 4096);
	virtq_init(&vq, &mem, 3);
	vq.on_broken = on_broken;
	broken_calls = 0;
	CHECK_EQ(virtq_enable(&vq, 12, drv.desc, drv.avail, drv.used, 0),
		 -EINVAL);			/* not a power of two */
	CHECK(vq.broken && !vq.ready);
	CHECK_EQ(broken_calls, 1);

	virtq_reset(&vq);
	CHECK(!vq.broken);
	CHECK_EQ(virtq_enable(&vq, QSIZE, drv.desc + 8, drv.avail, drv.used, 0),
		 -EINVAL);			/* desc not 16-aligned */
	virtq_reset(&vq);
	CHECK_EQ(virtq_enable(&vq, QSIZE, drv.desc, drv.avail, drv.used + 2, 0),
		 -EINVAL);			/* used not 4-aligned */
	virtq_reset(&vq);
	CHECK_EQ(virtq_enable(&vq, QSIZE, RAM_SIZE - 64, drv.avail, drv.used, 0),
		 -EINVAL);			/* table runs off RAM */
	virtq_reset(&vq);
	CHECK_EQ(virtq_enable(&vq, 0, drv.desc, drv.avail, drv.used, 0), -EINVAL);
	virtq_reset(&vq);
	CHECK_EQ(virtq_enable(&vq, QSIZE, drv.desc, drv.avail, drv.used, 0), 0);
	CHECK(vq.ready && !vq.broken);
	CHECK_EQ(broken_calls, 5);
}

static void test_plain_chain(void)
{
	struct virtq_elem e;
	struct vbuf b[3];
	uint32_t id, len;
	uint16_t head;

	setup();
	b[0] = (struct vbuf){ vdrv_alloc(&drv, 16, 8), 16, false };
	b[1] = (struct vbuf){ vdrv_alloc(&drv, 512, 8), 512, false };
	b[2] = (struct vbuf){ vdrv_alloc(&drv, 1, 1), 1, true };
	memcpy(vdrv_hva(&drv, b[0].gpa, 16), "header-bytes-16!", 16);
	head = vdrv_add(&drv, b, 3, false);

	CHECK_EQ(virtq_pop(&vq, &e), 1);
	CHECK_EQ(e.head, head);
	CHECK_EQ(e.out_num, 2);
	CHECK_EQ(e.in_num, 1);
	CHECK_EQ(e.out_len, 528);
	CHECK_EQ(e.in_len, 1);
	CHECK(e.iov[0].iov_base == vdrv_hva(&drv, b[0].gpa, 16));
	CHECK(memcmp(e.iov[0].iov_base, "header-bytes-16!", 16) == 0);
	CHECK(e.iov[2].iov_base == vdrv_hva(&drv, b[2].gpa, 1));
	CHECK_EQ(vq.inflight, 1);
	/* With EVENT_IDX and notifications on, avail_event follows pops. */
	CHECK_EQ(vdrv_avail_event(&drv), 1);

	CHECK_EQ(virtq_pop(&vq, &(struct virtq_elem){ 0 }), 0);	/* empty */
	CHECK_EQ(virtq_push(&vq, &e, 1), 0);
	CHECK_EQ(vq.inflight, 0);
	CHECK(vdrv_get_used(&drv, &id, &len));
	CHECK_EQ(id, head);
	CHECK_EQ(len, 1);
	/* Written bytes are clamped to the writable length. */
	virtq_elem_release(&e);

	head = vdrv_add(&drv, b, 3, false);
	CHECK_EQ(virtq_pop(&vq, &e), 1);
	CHECK_EQ(virtq_push(&vq, &e, 4096), 0);
	CHECK(vdrv_get_used(&drv, &id, &len));
	CHECK_EQ(id, head);
	CHECK_EQ(len, 1);
	virtq_elem_release(&e);
	CHECK(!vq.broken);
	CHECK_EQ(broken_calls, 0);
}

/* Zero-length buffers add no iovec; a chain may be all-writable or
 * all-readable; the ring wraps around idx 65535. */
static void test_zero_length_and_wrap(void)
{
	struct virtq_elem e;
	struct vbuf b[3];
	uint32_t id, len;

	setup();
	b[0] = (struct vbuf){ vdrv_alloc(&drv, 8, 8), 0, true };
	b[1] = (struct vbuf){ vdrv_alloc(&drv, 8, 8), 8, true };
	b[2] = (struct vbuf){ 0xdead0000ull, 0, true };	/* len 0: not read */
	vdrv_add(&drv, b, 3, false);
	CHECK_EQ(virtq_pop(&vq, &e), 1);
	CHECK_EQ(e.out_num, 0);
	CHECK_EQ(e.in_num, 1);
	CHECK_EQ(e.in_len, 8);
	CHECK_EQ(virtq_push(&vq, &e, 8), 0);
	virtq_elem_release(&e);

	/* Start both sides near the 16-bit wrap. */
	setup();
	vq.last_avail_idx = 65534;
	vq.used_idx = 65534;
	drv.used_seen = 65534;
	vdrv_set_avail_idx(&drv, 65534);
	for (int i = 0; i < 4; i++) {
		b[0] = (struct vbuf){ vdrv_alloc(&drv, 8, 8), 8, false };
		vdrv_add(&drv, b, 1, i & 1);
		CHECK_EQ(virtq_pop(&vq, &e), 1);
		CHECK_EQ(e.out_num, 1);
		CHECK_EQ(virtq_push(&vq, &e, 0), 0);
		virtq_elem_release(&e);
		CHECK(vdrv_get_used(&drv, &id, &len));
	}
	CHECK_EQ(vdrv_used_idx(&drv), 2);
	CHECK(!vq.broken);
}

static void test_indirect(void)
{
	struct virtq_elem e;
	struct vbuf b[4];
	uint64_t table;
	uint32_t id, len;
	uint16_t head;

	setup();
	for (int i = 0; i < 4; i++)
		b[i] = (struct vbuf){ vdrv_alloc(&drv, 64, 8), 64, i >= 2 };
	head = vdrv_add(&drv, b, 4, true);
	CHECK_EQ(virtq_pop(&vq, &e), 1);
	CHECK_EQ(e.head, head);
	CHECK_EQ(e.out_num, 2);
	CHECK_EQ(e.in_num, 2);
	CHECK(e.iov[3].iov_base == vdrv_hva(&drv, b[3].gpa, 64));
	CHECK_EQ(virtq_push(&vq, &e, 128), 0);
	CHECK(vdrv_get_used(&drv, &id, &len));
	CHECK_EQ(id, head);
	CHECK_EQ(len, 128);
	virtq_elem_release(&e);

	/* §2.7.5.3.2: direct descriptors, then one indirect at the end.  The
	 * WRITE flag on the indirect descriptor itself is ignored. */
	table = vdrv_alloc(&drv, 32, 16);
	vdrv_write_desc(&drv, table, 0, b[1].gpa, 64, VIRTQ_DESC_F_NEXT, 1);
	vdrv_write_desc(&drv, table, 1, b[2].gpa, 64, VIRTQ_DESC_F_WRITE, 0);
	vdrv_write_desc(&drv, drv.desc, 5, b[0].gpa, 64, VIRTQ_DESC_F_NEXT, 6);
	vdrv_write_desc(&drv, drv.desc, 6, table, 32,
			VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE, 0);
	vdrv_publish(&drv, 5);
	CHECK_EQ(virtq_pop(&vq, &e), 1);
	CHECK_EQ(e.head, 5);
	CHECK_EQ(e.out_num, 2);
	CHECK_EQ(e.in_num, 1);
	CHECK_EQ(virtq_push(&vq, &e, 64), 0);
	virtq_elem_release(&e);
	CHECK(!vq.broken);
}

static void test_notify_no_event_idx(void)
{
	struct virtq_elem e;
	struct vbuf b = { 0, 8, true };

	setup_features(1ull << VIRTIO_F_INDIRECT_DESC);
	b.gpa = vdrv_alloc(&drv, 8, 8);
	CHECK(!virtq_should_notify(&vq));	/* nothing pushed yet */
	vdrv_add(&drv, &b, 1, false);
	CHECK_EQ(virtq_pop(&vq, &e), 1);
	CHECK_EQ(virtq_push(&vq, &e, 8), 0);
	virtq_elem_release(&e);
	CHECK(virtq_should_notify(&vq));
	CHECK(!virtq_should_notify(&vq));	/* already told */

	vdrv_set_avail_flags(&drv, VIRTQ_AVAIL_F_NO_INTERRUPT);
	vdrv_add(&drv, &b, 1, false);
	CHECK_EQ(virtq_pop(&vq, &e), 1);
	CHECK_EQ(virtq_push(&vq, &e, 8), 0);
	virtq_elem_release(&e);
	CHECK(!virtq_should_notify(&vq));

	/* Device-side suppression: the NO_NOTIFY flag in the used ring. */
	virtq_disable_notify(&vq);
	CHECK_EQ(vdrv_used_flags(&drv), VIRTQ_USED_F_NO_NOTIFY);
	CHECK(!virtq_enable_notify(&vq));
	CHECK_EQ(vdrv_used_flags(&drv), 0);
	virtq_disable_notify(&vq);
	vdrv_add(&drv, &b, 1, false);
	CHECK(virtq_enable_notify(&vq));	/* a buffer raced in */
}

static void push_one(void)
{
	struct virtq_elem e;
	struct vbuf b = { 0, 8, true };

	b.gpa = vdrv_alloc(&drv, 8, 8);
	vdrv_add(&drv, &b, 1, false);
	CHECK_EQ(virtq_pop(&vq, &e), 1);
	CHECK_EQ(virtq_push(&vq, &e, 8), 0);
	virtq_elem_release(&e);
}

/* The state is plain data: a copy without the host views (a snapshot's
 * load) gets them back from the GPAs with virtq_remap() and carries on; a
 * GPA that no longer fits RAM breaks the queue. */
static void test_remap(void)
{
	struct virtq_map old;
	struct virtq saved;

	setup();
	push_one();
	push_one();
	old = vq.map;
	saved = vq;
	saved.map = (struct virtq_map){ 0 };
	vq = saved;
	CHECK_EQ(virtq_remap(&vq), 0);
	CHECK(vq.map.desc == old.desc && vq.map.avail == old.avail &&
	      vq.map.used == old.used);
	push_one();
	CHECK_EQ(vdrv_used_idx(&drv), 3);
	CHECK(vq.ready && !vq.broken);

	/* Not ready: an empty map, nothing to check. */
	virtq_reset(&vq);
	vq.used_gpa = RAM_SIZE;
	CHECK_EQ(virtq_remap(&vq), 0);
	CHECK(vq.map.desc == NULL && !vq.broken);

	/* Loaded GPAs are checked as the guest's are. */
	vq = saved;
	vq.used_gpa = RAM_SIZE - 8;			/* runs past RAM */
	CHECK_EQ(virtq_remap(&vq), -EINVAL);
	CHECK(vq.broken && !vq.ready && vq.map.used == NULL);
	CHECK_EQ(broken_calls, 1);
	CHECK_EQ(virtq_pop(&vq, &(struct virtq_elem){ 0 }), -EIO);
	virtq_disable_notify(&vq);			/* no map: no access */
	CHECK(!virtq_enable_notify(&vq));
	CHECK(!virtq_should_notify(&vq));
	vq = saved;
	vq.desc_gpa += 8;				/* misaligned */
	CHECK_EQ(virtq_remap(&vq), -EINVAL);
	vq = saved;
	vq.size = 24;					/* not a power of two */
	CHECK_EQ(virtq_remap(&vq), -EINVAL);
	CHECK(vq.broken && !vq.ready);
}


/* virtq_save / virtq_state_parse: a queue with indices moved on, saved and
 * parsed into a fresh queue, saves the same and carries on in the same
 * rings; bad sizes and rings are refused without calling on_broken or
 * touching either queue. */
static void test_save_parse(void)
{
	struct virtq fresh, out;
	GVariant *s1, *s2, *bad;
	char err[256] = "";

	setup();
	for (int i = 0; i < 3; i++)
		push_one();
	s1 = g_variant_ref_sink(virtq_save(&vq));
	CHECK(g_variant_is_of_type(s1, G_VARIANT_TYPE(VIRTQ_STATE_TYPE)));
	virtq_init(&fresh, &mem, 0);
	fresh.on_broken = on_broken;
	CHECK_EQ(virtq_state_parse(&fresh, s1, QSIZE, &out, "t", err, sizeof(err)), 0);
	CHECK(out.map.desc == vq.map.desc && out.map.used == vq.map.used);
	CHECK(out.on_broken == on_broken && out.inflight == 0);
	vq = out;
	s2 = g_variant_ref_sink(virtq_save(&vq));
	CHECK(g_variant_equal(s1, s2));
	push_one();
	CHECK_EQ(vdrv_used_idx(&drv), 4);

	bad = state_with(s1, g_variant_new_uint16(24), 1, 0);
	CHECK_EQ(virtq_state_parse(&fresh, bad, QSIZE, &out, "t", err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "t: queue 0 size 24") == err);
	g_variant_unref(bad);
	bad = state_with(s1, g_variant_new_uint16(QSIZE * 2), 1, 0);
	CHECK_EQ(virtq_state_parse(&fresh, bad, QSIZE, &out, "t", err, sizeof(err)), -EINVAL);
	g_variant_unref(bad);
	bad = state_with(s1, g_variant_new_uint64(RAM_SIZE - 8), 1, 7);
	CHECK_EQ(virtq_state_parse(&fresh, bad, QSIZE, &out, "t", err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "t: queue 0 rings") == err);
	g_variant_unref(bad);
	bad = g_variant_ref_sink(g_variant_new("(u)", 1));
	CHECK_EQ(virtq_state_parse(&fresh, bad, QSIZE, &out, "t", err, sizeof(err)), -EINVAL);
	g_variant_unref(bad);
	CHECK_EQ(broken_calls, 0);
	CHECK(!fresh.broken && !fresh.ready && !vq.broken && vq.ready);
	g_variant_unref(s1);
	g_variant_unref(s2);
}

/* §2.7.10 with EVENT_IDX: notify exactly when used idx passes used_event. */
static void test_notify_event_idx(void)
{
	setup();
	vdrv_set_used_event(&drv, 0);
	vdrv_set_avail_flags(&drv, VIRTQ_AVAIL_F_NO_INTERRUPT);	/* ignored */
	push_one();				/* used idx 0 -> 1 */
	CHECK(virtq_should_notify(&vq));
	vdrv_set_used_event(&drv, 3);		/* wants a call when idx hits 4 */
	push_one();				/* 2 */
	CHECK(!virtq_should_notify(&vq));
	push_one();				/* 3 */
	CHECK(!virtq_should_notify(&vq));
	push_one();				/* 4: entry at 3 written */
	CHECK(virtq_should_notify(&vq));
	/* Several pushes at once that jump over used_event still notify. */
	vdrv_set_used_event(&drv, 5);
	push_one();				/* 5 */
	push_one();				/* 6 */
	push_one();				/* 7 */
	CHECK(virtq_should_notify(&vq));
	/* used_event behind: no notification. */
	vdrv_set_used_event(&drv, 2);
	push_one();
	CHECK(!virtq_should_notify(&vq));

	/* avail_event: left behind while disabled, caught up on enable. */
	virtq_disable_notify(&vq);
	CHECK_EQ(vdrv_used_flags(&drv), 0);	/* flags stay 0 with EVENT_IDX */
	push_one();
	CHECK_EQ(vdrv_avail_event(&drv), 8);
	CHECK(!virtq_enable_notify(&vq));
	CHECK_EQ(vdrv_avail_event(&drv), 9);
	CHECK(!vq.broken);
}

/* A pushed element from before a reset never reaches the new rings. */
static void test_push_after_reset(void)
{
	struct virtq_elem e;
	struct vbuf b = { 0, 8, true };

	setup();
	b.gpa = vdrv_alloc(&drv, 8, 8);
	vdrv_add(&drv, &b, 1, false);
	CHECK_EQ(virtq_pop(&vq, &e), 1);
	virtq_reset(&vq);
	CHECK_EQ(virtq_enable(&vq, QSIZE, drv.desc, drv.avail, drv.used,
			      FEAT_ALL), 0);
	CHECK_EQ(virtq_push(&vq, &e, 8), -EIO);
	CHECK_EQ(vdrv_used_idx(&drv), 0);
	virtq_elem_release(&e);
}

/* virtq_unpop: the chains come back in order, nothing stays in flight,
 * and an element from before a reset is ignored. */
static void test_unpop(void)
{
	struct virtq_elem e1, e2, again;
	struct vbuf b = { 0, 8, true };
	uint16_t h1, h2;

	setup();
	b.gpa = vdrv_alloc(&drv, 8, 8);
	h1 = vdrv_add(&drv, &b, 1, false);
	h2 = vdrv_add(&drv, &b, 1, false);
	CHECK_EQ(virtq_pop(&vq, &e1), 1);
	CHECK_EQ(virtq_pop(&vq, &e2), 1);
	CHECK_EQ(vq.inflight, 2);
	virtq_unpop(&vq, &e2);
	virtq_unpop(&vq, &e1);
	CHECK_EQ(vq.inflight, 0);
	CHECK_EQ(vq.last_avail_idx, 0);
	CHECK_EQ(virtq_pop(&vq, &again), 1);
	CHECK_EQ(again.head, h1);
	CHECK_EQ(virtq_push(&vq, &again, 8), 0);
	virtq_elem_release(&again);
	CHECK_EQ(virtq_pop(&vq, &again), 1);
	CHECK_EQ(again.head, h2);
	virtq_reset(&vq);
	virtq_unpop(&vq, &again);	/* stale: ignored */
	CHECK_EQ(vq.last_avail_idx, 0);
	CHECK_EQ(vq.inflight, 0);
	virtq_elem_release(&again);
	virtq_elem_release(&e1);
	virtq_elem_release(&e2);
	CHECK_EQ(broken_calls, 0);
}

/* ---- hostile rings ---------------------------------------------------- */

static void test_loop(void)
{
	double t0 = now_s();

	setup();
	vdrv_write_desc(&drv, drv.desc, 0, vdrv_alloc(&drv, 8, 8), 8,
			VIRTQ_DESC_F_NEXT, 1);
	vdrv_write_desc(&drv, drv.desc, 1, vdrv_alloc(&drv, 8, 8), 8,
			VIRTQ_DESC_F_NEXT, 0);
	vdrv_publish(&drv, 0);
	CHECK_EQ(virtq_pop(&vq, &(struct virtq_elem){ 0 }), -EIO);
	expect_broken();

	/* A self-loop inside an indirect table. */
	setup();
	{
		uint64_t t = vdrv_alloc(&drv, 32, 16);

		vdrv_write_desc(&drv, t, 0, t, 8, VIRTQ_DESC_F_NEXT, 1);
		vdrv_write_desc(&drv, t, 1, t, 8, VIRTQ_DESC_F_NEXT, 1);
		vdrv_write_desc(&drv, drv.desc, 0, t, 32, VIRTQ_DESC_F_INDIRECT, 0);
	}
	vdrv_publish(&drv, 0);
	CHECK_EQ(virtq_pop(&vq, &(struct virtq_elem){ 0 }), -EIO);
	expect_broken();
	CHECK(now_s() - t0 < 1.0);
}

/* An indirect table of 8192 linked descriptors: no loop, but longer than
 * VIRTQ_MAX_CHAIN. */
static void test_chain_too_long(void)
{
	uint64_t t, buf;
	double t0 = now_s();

	setup();
	t = vdrv_alloc(&drv, 16 * 8192, 16);
	buf = vdrv_alloc(&drv, 8, 8);
	for (unsigned i = 0; i < 8192; i++)
		vdrv_write_desc(&drv, t, i, buf, 8, VIRTQ_DESC_F_NEXT,
				(uint16_t)(i + 1));
	vdrv_write_desc(&drv, t, 8191, buf, 8, 0, 0);
	vdrv_write_desc(&drv, drv.desc, 0, t, 16 * 8192, VIRTQ_DESC_F_INDIRECT, 0);
	vdrv_publish(&drv, 0);
	CHECK_EQ(virtq_pop(&vq, &(struct virtq_elem){ 0 }), -EIO);
	expect_broken();

	/* Exactly VIRTQ_MAX_CHAIN (the head + 4095 in the table) is fine. */
	setup();
	t = vdrv_alloc(&drv, 16 * 4095, 16);
	for (unsigned i = 0; i < 4095; i++)
		vdrv_write_desc(&drv, t, i, buf, 8,
				i + 1 < 4095 ? VIRTQ_DESC_F_NEXT : 0,
				(uint16_t)(i + 1));
	vdrv_write_desc(&drv, drv.desc, 0, t, 16 * 4095, VIRTQ_DESC_F_INDIRECT, 0);
	vdrv_publish(&drv, 0);
	{
		struct virtq_elem e;

		CHECK_EQ(virtq_pop(&vq, &e), 1);
		CHECK_EQ(e.out_num, 4095);
		virtq_elem_release(&e);
	}
	CHECK(!vq.broken);
	CHECK(now_s() - t0 < 1.0);
}

/* One-descriptor chain with the given fields; returns pop's result. */
static int pop_single(uint64_t addr, uint32_t len, uint16_t flags)
{
	struct virtq_elem e = { 0 };
	int r;

	vdrv_write_desc(&drv, drv.desc, 0, addr, len, flags, 0);
	vdrv_publish(&drv, 0);
	r = virtq_pop(&vq, &e);
	if (r == 1)
		virtq_elem_release(&e);
	return r;
}

static void test_bad_addresses(void)
{
	setup();
	CHECK_EQ(pop_single(RAM_SIZE, 8, 0), -EIO);		/* past RAM */
	expect_broken();
	setup();
	CHECK_EQ(pop_single(RAM_SIZE - 8, 16, 0), -EIO);	/* runs off RAM */
	expect_broken();
	setup();
	CHECK_EQ(pop_single(0xfffffffffffffff0ull, 0x20, 0), -EIO);	/* wraps */
	expect_broken();
	setup();
	CHECK_EQ(pop_single(0x1000, 0xffffffffu, VIRTQ_DESC_F_WRITE), -EIO);
	expect_broken();
	setup();
	CHECK_EQ(pop_single(MEM_PCI_HOLE_START, 8, 0), -EIO);	/* MMIO */
	expect_broken();
	/* Exactly the last byte of RAM is fine. */
	setup();
	CHECK_EQ(pop_single(RAM_SIZE - 1, 1, 0), 1);
	CHECK(!vq.broken);
}

/* A buffer that starts below the PCI hole and ends inside it. */
static void test_crosses_pci_hole(void)
{
	struct guest_mem big;
	struct virtq_elem e = { 0 };

	if (guest_mem_init(&big, MEM_PCI_HOLE_START + (16u << 20)) != 0) {
		printf("  (no 3 GiB mapping here; hole case skipped)\n");
		return;
	}
	vdrv_init(&drv, &big, QSIZE, RING_BASE, 4096);
	virtq_init(&vq, &big, 0);
	vq.on_broken = on_broken;
	broken_calls = 0;
	CHECK_EQ(virtq_enable(&vq, QSIZE, drv.desc, drv.avail, drv.used, 0), 0);
	vdrv_write_desc(&drv, drv.desc, 0, MEM_4G + 4096, 8, VIRTQ_DESC_F_NEXT, 1);
	vdrv_write_desc(&drv, drv.desc, 1, MEM_PCI_HOLE_START - 256, 512, 0, 0);
	vdrv_publish(&drv, 0);
	CHECK_EQ(virtq_pop(&vq, &e), -EIO);
	expect_broken();
	/* High RAM itself is fine. */
	vdrv_init(&drv, &big, QSIZE, RING_BASE, 4096);
	virtq_reset(&vq);
	broken_calls = 0;
	CHECK_EQ(virtq_enable(&vq, QSIZE, drv.desc, drv.avail, drv.used, 0), 0);
	vdrv_write_desc(&drv, drv.desc, 0, MEM_4G + 4096, 8, 0, 0);
	vdrv_publish(&drv, 0);
	CHECK_EQ(virtq_pop(&vq, &e), 1);
	CHECK(e.iov[0].iov_base == gpa_to_hva(&big, MEM_4G + 4096, 8));
	virtq_elem_release(&e);
	guest_mem_free(&big);
}

static void test_bad_indirect(void)
{
	uint64_t t;

	/* Nested indirect. */
	setup();
	t = vdrv_alloc(&drv, 32, 16);
	vdrv_write_desc(&drv, t, 0, t, 32, VIRTQ_DESC_F_INDIRECT, 0);
	CHECK_EQ(pop_single(t, 32, VIRTQ_DESC_F_INDIRECT), -EIO);
	expect_broken();
	/* Not negotiated. */
	setup_features(0);
	t = vdrv_alloc(&drv, 16, 16);
	vdrv_write_desc(&drv, t, 0, vdrv_alloc(&drv, 8, 8), 8, 0, 0);
	CHECK_EQ(pop_single(t, 16, VIRTQ_DESC_F_INDIRECT), -EIO);
	expect_broken();
	/* INDIRECT together with NEXT. */
	setup();
	CHECK_EQ(pop_single(t, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT), -EIO);
	expect_broken();
	/* Length not a multiple of 16, and zero. */
	setup();
	CHECK_EQ(pop_single(t, 24, VIRTQ_DESC_F_INDIRECT), -EIO);
	expect_broken();
	setup();
	CHECK_EQ(pop_single(t, 0, VIRTQ_DESC_F_INDIRECT), -EIO);
	expect_broken();
	/* Table outside RAM. */
	setup();
	CHECK_EQ(pop_single(RAM_SIZE - 16, 32, VIRTQ_DESC_F_INDIRECT), -EIO);
	expect_broken();
	/* next beyond the indirect table's end. */
	setup();
	t = vdrv_alloc(&drv, 32, 16);
	vdrv_write_desc(&drv, t, 0, t, 8, VIRTQ_DESC_F_NEXT, 2);
	CHECK_EQ(pop_single(t, 32, VIRTQ_DESC_F_INDIRECT), -EIO);
	expect_broken();
}

static void test_bad_indices(void)
{
	/* Head index >= queue size. */
	setup();
	vdrv_publish(&drv, QSIZE);
	CHECK_EQ(virtq_pop(&vq, &(struct virtq_elem){ 0 }), -EIO);
	expect_broken();
	/* next >= queue size. */
	setup();
	vdrv_write_desc(&drv, drv.desc, 0, vdrv_alloc(&drv, 8, 8), 8,
			VIRTQ_DESC_F_NEXT, 0xffff);
	vdrv_publish(&drv, 0);
	CHECK_EQ(virtq_pop(&vq, &(struct virtq_elem){ 0 }), -EIO);
	expect_broken();
	/* avail idx jumping by more than the queue size. */
	setup();
	vdrv_set_avail_idx(&drv, QSIZE + 1);
	CHECK_EQ(virtq_pop(&vq, &(struct virtq_elem){ 0 }), -EIO);
	expect_broken();
	/* ... or going backwards (a jump of ~65535). */
	setup();
	vdrv_set_avail_idx(&drv, 0xffff);
	CHECK_EQ(virtq_pop(&vq, &(struct virtq_elem){ 0 }), -EIO);
	expect_broken();
}

static void test_readable_after_writable(void)
{
	struct vbuf b[2];

	setup();
	b[0] = (struct vbuf){ vdrv_alloc(&drv, 8, 8), 8, true };
	b[1] = (struct vbuf){ vdrv_alloc(&drv, 8, 8), 8, false };
	vdrv_add(&drv, b, 2, false);
	CHECK_EQ(virtq_pop(&vq, &(struct virtq_elem){ 0 }), -EIO);
	expect_broken();
	setup();
	vdrv_add(&drv, b, 2, true);
	CHECK_EQ(virtq_pop(&vq, &(struct virtq_elem){ 0 }), -EIO);
	expect_broken();
}

/* The same head offered over and over, never given back: at most
 * QSIZE can be in flight. */
static void test_too_many_inflight(void)
{
	struct virtq_elem e[QSIZE];
	struct vbuf b = { 0, 8, true };
	int r = 0;
	unsigned n = 0;

	setup();
	b.gpa = vdrv_alloc(&drv, 8, 8);
	vdrv_write_desc(&drv, drv.desc, 0, b.gpa, 8, VIRTQ_DESC_F_WRITE, 0);
	for (unsigned round = 0; round < 4 && r >= 0; round++) {
		for (unsigned i = 0; i < QSIZE; i++)
			vdrv_publish(&drv, 0);
		while ((r = virtq_pop(&vq, &e[n % QSIZE])) == 1)
			n++;
	}
	CHECK_EQ(n, QSIZE);
	CHECK_EQ(r, -EIO);
	expect_broken();
	for (unsigned i = 0; i < QSIZE; i++)
		virtq_elem_release(&e[i]);
}

static void test_iov_helpers(void)
{
	char a[4] = "abcd", b[3] = "efg", c[5] = "hijkl", out[12] = { 0 };
	struct iovec iov[3] = { { a, 4 }, { b, 3 }, { c, 5 } }, sl[3];
	int n;

	CHECK_EQ(iov_to_buf(iov, 3, 2, out, 7), 7);
	CHECK(memcmp(out, "cdefghi", 7) == 0);
	CHECK_EQ(iov_to_buf(iov, 3, 10, out, 7), 2);
	CHECK_EQ(iov_from_buf(iov, 3, 3, "XYZ", 3), 3);
	CHECK(memcmp(a, "abcX", 4) == 0 && memcmp(b, "YZg", 3) == 0);
	n = iov_slice(iov, 3, 3, 6, sl, 3);
	CHECK_EQ(n, 3);
	CHECK(sl[0].iov_base == a + 3 && sl[0].iov_len == 1);
	CHECK(sl[2].iov_base == c && sl[2].iov_len == 2);
	CHECK_EQ(iov_slice(iov, 3, 3, 6, sl, 2), -1);	/* too few slots */
	CHECK_EQ(iov_slice(iov, 3, 8, 5, sl, 3), -1);	/* past the end */
	CHECK_EQ(iov_slice(iov, 3, 12, 0, sl, 3), 0);
}

int main(void)
{
	log_set_level(LOG_ERROR);	/* the hostile cases log warnings */
	if (guest_mem_init(&mem, RAM_SIZE) != 0)
		SKIP("cannot allocate %u bytes of guest RAM", RAM_SIZE);
	RUN_TEST(test_enable_checks);
	RUN_TEST(test_save_parse);
	RUN_TEST(test_plain_chain);
	RUN_TEST(test_zero_length_and_wrap);
	RUN_TEST(test_indirect);
	RUN_TEST(test_notify_no_event_idx);
	RUN_TEST(test_notify_event_idx);
	RUN_TEST(test_push_after_reset);
	RUN_TEST(test_unpop);
	RUN_TEST(test_loop);
	RUN_TEST(test_chain_too_long);
	RUN_TEST(test_bad_addresses);
	RUN_TEST(test_crosses_pci_hole);
	RUN_TEST(test_bad_indirect);
	RUN_TEST(test_bad_indices);
	RUN_TEST(test_readable_after_writable);
	RUN_TEST(test_too_many_inflight);
	RUN_TEST(test_iov_helpers);
	RUN_TEST(test_remap);
	guest_mem_free(&mem);
	return check_finish();
}
