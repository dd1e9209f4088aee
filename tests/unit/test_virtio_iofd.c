/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_virtio_iofd.c - the virtio PCI transport's eventfd
 * doorbells (virtio_pci.c, "eventfd doorbells") against a fake iofd that
 * records what the transport registers, as KVM would hold it:
 *  - one ioeventfd per ready queue at BAR 4 + 0x3000 + 4 * queue while the
 *    BAR decodes; moved with the BAR, dropped with decode, reset and
 *    teardown, and re-derived after a state load; a doorbell rung just
 *    before a move still reaches the device;
 *  - one irqfd per MSI-X vector in use while MSI-X is on, re-routed when
 *    its message changes; masked vectors (entry, function mask, bus
 *    master) go through the PCI host, whose pending bit sends them on
 *    unmask;
 *  - -ENOTSUP (no KVM support) leaves the exit path and the host's MSIs.
 * The "I/O thread" is this test: it reads the eventfds KVM would signal
 * and calls the handlers under the device lock.  A dummy device returns
 * every buffer the driver kicks and counts the notifies.
 */
#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <glib.h>

#include "testlib.h"
#include "virtio_pci_driver.h"
#include "vring_driver.h"

#include "bus.h"
#include "devices/pci.h"
#include "log.h"
#include "mem.h"
#include "virtio/virtio_pci.h"
#include "sandboxed.h"

#define RAM_SIZE	(16u << 20)
#define DEVFN		(6 << 3)
#define BAR_ADDR	0xfe000000ull	/* BAR 4, the virtio structures */
#define BAR_ADDR2	0xfd000000ull	/* where the test moves it */
#define MSIX_ADDR	0xfe100000ull	/* BAR 1, the MSI-X table */
#define RING_BASE	0x100000ull
#define NQ		2
#define QSIZE		16
#define MSI_DATA	0x40		/* vector v sends 0x40 + v */
#define GSI_BASE	24

static struct guest_mem mem;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct bus *pio, *mmio;
static struct pci_host *host;
static struct virtio_pci *vp;
static struct vdrv drv[NQ];
/* The driver's view of the function; .bar follows map_bar4(). */
static struct vpci vpd = {
	.lock = &lock, .devfn = DEVFN, .bar = BAR_ADDR, .msix = MSIX_ADDR,
};

/* ---- what the PCI host sent, what the device saw ----------------------- */

static unsigned host_msis[NQ + 1];

static void set_pirq(void *opaque, unsigned pirq, int level)
{
}

static int send_msi(void *opaque, uint64_t addr, uint32_t data)
{
	if (addr == 0xfee00000ull && data >= MSI_DATA && data < MSI_DATA + NQ + 1)
		host_msis[data - MSI_DATA]++;
	return 0;
}

static const struct pci_host_ops host_ops = { set_pirq, send_msi };

static unsigned notifies[NQ];

/* Return every chain of queue @q, then interrupt as a device does. */
static void dummy_notify(void *opaque, unsigned q)
{
	struct virtq *vq = virtio_pci_queue(vp, q);
	struct virtq_elem e;

	notifies[q]++;
	while (virtq_pop(vq, &e) == 1) {
		virtq_push(vq, &e, 0);
		virtq_elem_release(&e);
	}
	virtio_pci_notify_used(vp, q);
}

static const struct virtio_pci_ops dummy_ops = { .queue_notify = dummy_notify };

/* ---- the fake iofd: what KVM would hold --------------------------------- */

#define FAKE_MAX 16

static struct fake_kick {
	bool used;
	uint64_t gpa;
	int fd;
	void (*fn)(void *);
	void *arg;
} kicks[FAKE_MAX];

static struct fake_irqfd {
	bool used;
	int fd;
	uint64_t addr;
	uint32_t data;
} irqfds[FAKE_MAX];

static unsigned ioeventfd_adds, irqfd_adds, irqfd_updates, fake_bad;
static bool fake_enotsup;

static int fake_ioeventfd_add(void *opaque, uint64_t gpa, int fd,
			      void (*fn)(void *), void *arg)
{
	struct fake_kick *free_slot = NULL;

	ioeventfd_adds++;
	if (fake_enotsup)
		return -ENOTSUP;
	for (unsigned i = 0; i < FAKE_MAX; i++) {
		if (kicks[i].used && kicks[i].gpa == gpa)
			return -EEXIST;
		if (!kicks[i].used && !free_slot)
			free_slot = &kicks[i];
	}
	if (!free_slot)
		return -ENOSPC;
	*free_slot = (struct fake_kick){ true, gpa, fd, fn, arg };
	return 0;
}

static void fake_ioeventfd_remove(void *opaque, uint64_t gpa, int fd)
{
	for (unsigned i = 0; i < FAKE_MAX; i++) {
		if (kicks[i].used && kicks[i].gpa == gpa && kicks[i].fd == fd) {
			kicks[i].used = false;
			return;
		}
	}
	fake_bad++;		/* removing what was never added */
}

static int fake_irqfd_add(void *opaque, int fd, uint64_t addr, uint32_t data)
{
	irqfd_adds++;
	if (fake_enotsup)
		return -ENOTSUP;
	for (unsigned i = 0; i < FAKE_MAX; i++) {
		if (!irqfds[i].used) {
			irqfds[i] = (struct fake_irqfd){ true, fd, addr, data };
			return GSI_BASE + (int)i;
		}
	}
	return -ENOSPC;
}

static struct fake_irqfd *fake_gsi(int gsi)
{
	unsigned i = (unsigned)(gsi - GSI_BASE);

	return gsi >= GSI_BASE && i < FAKE_MAX && irqfds[i].used ? &irqfds[i] : NULL;
}

static int fake_irqfd_update(void *opaque, int gsi, uint64_t addr,
			     uint32_t data)
{
	struct fake_irqfd *x = fake_gsi(gsi);

	irqfd_updates++;
	if (!x) {
		fake_bad++;
		return -EINVAL;
	}
	x->addr = addr;
	x->data = data;
	return 0;
}

static void fake_irqfd_remove(void *opaque, int gsi, int fd)
{
	struct fake_irqfd *x = fake_gsi(gsi);

	if (!x || x->fd != fd) {
		fake_bad++;
		return;
	}
	x->used = false;
}

static const struct iofd_ops fake_ops = {
	fake_ioeventfd_add, fake_ioeventfd_remove,
	fake_irqfd_add, fake_irqfd_update, fake_irqfd_remove,
};

static unsigned nkicks(void)
{
	unsigned n = 0;

	for (unsigned i = 0; i < FAKE_MAX; i++)
		n += kicks[i].used;
	return n;
}

static struct fake_kick *kick_at(uint64_t gpa)
{
	for (unsigned i = 0; i < FAKE_MAX; i++)
		if (kicks[i].used && kicks[i].gpa == gpa)
			return &kicks[i];
	return NULL;
}

static unsigned nirqfds(void)
{
	unsigned n = 0;

	for (unsigned i = 0; i < FAKE_MAX; i++)
		n += irqfds[i].used;
	return n;
}

static uint64_t notify_gpa(uint64_t bar, unsigned q)
{
	return bar + VIRTIO_PCI_NOTIFY_OFF + q * VIRTIO_PCI_NOTIFY_MULT;
}

/* The guest writes queue @q's doorbell and KVM signals its eventfd. */
static bool ring(unsigned q)
{
	struct fake_kick *k = kick_at(notify_gpa(vpd.bar, q));
	uint64_t one = 1;

	if (!k)
		return false;
	CHECK_EQ(write(k->fd, &one, sizeof(one)), sizeof(one));
	return true;
}

/* The I/O thread's turn: every signalled doorbell's handler. */
static void io_turn(void)
{
	pthread_mutex_lock(&lock);
	for (unsigned i = 0; i < FAKE_MAX; i++) {
		uint64_t c;

		if (kicks[i].used && read(kicks[i].fd, &c, sizeof(c)) == sizeof(c))
			kicks[i].fn(kicks[i].arg);
	}
	pthread_mutex_unlock(&lock);
}

/* Signals KVM got on vector @v's irqfd since the last call. */
static uint64_t irqfd_signals(unsigned v)
{
	struct fake_irqfd *x = fake_gsi(virtio_pci_iofd_vector_gsi(vp, v));
	uint64_t c = 0;

	if (x && read(x->fd, &c, sizeof(c)) != sizeof(c))
		c = 0;
	return c;
}

static unsigned open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	unsigned n = 0;

	if (!d)
		return 0;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* ---- driving the device as a guest would -------------------------------- */

static void msix_wr(unsigned v, unsigned word, uint32_t val)
{
	vpci_mmio_wr(&vpd, MSIX_ADDR + 16 * v + 4 * word, val, 4);
}

static void map_bar4(uint64_t addr)
{
	vpci_cfg_wr(&vpd, PCI_BASE_ADDRESS_0 + 4 * VIRTIO_PCI_BAR, 4,
		    (uint32_t)addr);
	vpci_cfg_wr(&vpd, PCI_BASE_ADDRESS_0 + 4 * VIRTIO_PCI_BAR + 4, 4,
		    (uint32_t)(addr >> 32));
	vpd.bar = addr;
}

static void create(bool with_iofd)
{
	struct virtio_pci_config c = {
		.pci = host, .devfn = DEVFN, .mem = &mem, .device_id = 0x1f,
		.class_code = 0xff0000, .num_queues = NQ, .queue_size = QSIZE,
		.ops = &dummy_ops,
	};
	int r;

	if (with_iofd)
		c.iofd = (struct iofd){ &fake_ops, NULL };
	memset(host_msis, 0, sizeof(host_msis));
	memset(notifies, 0, sizeof(notifies));
	pthread_mutex_lock(&lock);
	vp = virtio_pci_new(&c, &r);
	pthread_mutex_unlock(&lock);
	CHECK(vp != NULL);
	if (!vp)
		exit(1);
	vpd.bar = BAR_ADDR;
	vpci_map_bars(&vpd);
}

static void destroy(void)
{
	pthread_mutex_lock(&lock);
	virtio_pci_free(vp);
	pthread_mutex_unlock(&lock);
	vp = NULL;
	CHECK_EQ(nkicks(), 0);
	CHECK_EQ(nirqfds(), 0);
	CHECK_EQ(fake_bad, 0);
}

/*
 * §3.1.1: reset, ACKNOWLEDGE, DRIVER, VERSION_1, FEATURES_OK, every queue
 * (with MSI-X: config vector 0, queue q on vector q + 1), DRIVER_OK.
 */
static void driver_init(bool msix)
{
	uint64_t f;

	CHECK(vpci_driver_start(&vpd, 0, 1ull << VIRTIO_F_VERSION_1, msix,
				NQ + 1, MSI_DATA, &f));
	for (unsigned q = 0; q < NQ; q++) {
		vdrv_init(&drv[q], &mem, QSIZE, RING_BASE + q * 0x100000ull, 0x10000);
		CHECK(vpci_queue_config(&vpd, q, &drv[q], msix ? (int)q + 1 : -1,
					NULL));
		/* Not yet enabled: nothing to ring. */
		CHECK(kick_at(notify_gpa(vpd.bar, q)) == NULL);
		CHECK(vpci_queue_enable(&vpd));
	}
	CHECK_EQ(vpci_driver_ok(&vpd), 0x0f);
	memset(notifies, 0, sizeof(notifies));	/* DRIVER_OK kicks them all */
}

/* One buffer on queue @q, published (not kicked). */
static void add_buffer(unsigned q)
{
	struct vbuf b = { vdrv_alloc(&drv[q], 64, 8), 64, true };

	pthread_mutex_lock(&lock);
	vdrv_add(&drv[q], &b, 1, false);
	pthread_mutex_unlock(&lock);
}

/* ---- tests ----------------------------------------------------------------- */

static void test_doorbells_follow_queues(void)
{
	create(true);
	CHECK_EQ(nkicks(), 0);
	driver_init(false);
	CHECK_EQ(nkicks(), NQ);
	CHECK_EQ(virtio_pci_iofd_kicks(vp, NULL), NQ);
	for (unsigned q = 0; q < NQ; q++)
		CHECK(kick_at(notify_gpa(BAR_ADDR, q)) != NULL);

	/* The doorbell reaches the device through the I/O thread... */
	add_buffer(1);
	CHECK(ring(1));
	CHECK_EQ(notifies[1], 0);		/* the vCPU did not wait */
	io_turn();
	CHECK_EQ(notifies[1], 1);
	CHECK_EQ(notifies[0], 0);
	CHECK_EQ(vdrv_used_idx(&drv[1]), 1);
	/* ...and the MMIO exit path still works (another width, the
	 * PCI_CFG window's path, a KVM without ioeventfd). */
	vpci_wr(&vpd, notify_gpa(0, 0), 0, 4);
	CHECK_EQ(notifies[0], 1);

	/* A device reset drops them; enabling queues brings them back. */
	vpci_set_status(&vpd, 0);
	CHECK_EQ(nkicks(), 0);
	driver_init(false);
	CHECK_EQ(nkicks(), NQ);
	destroy();
}

static void test_bar_moves(void)
{
	create(true);
	driver_init(false);

	/* Rung, not yet seen by the I/O thread, when the BAR moves: the
	 * notify is not lost. */
	add_buffer(0);
	CHECK(ring(0));
	map_bar4(BAR_ADDR2);
	CHECK_EQ(notifies[0], 1);
	CHECK_EQ(vdrv_used_idx(&drv[0]), 1);
	CHECK_EQ(nkicks(), NQ);
	for (unsigned q = 0; q < NQ; q++) {
		CHECK(kick_at(notify_gpa(BAR_ADDR, q)) == NULL);
		CHECK(kick_at(notify_gpa(BAR_ADDR2, q)) != NULL);
	}
	CHECK(ring(1));
	io_turn();
	CHECK_EQ(notifies[1], 1);

	/* Memory decode off: nothing decodes, nothing rings. */
	vpci_cfg_wr(&vpd, PCI_COMMAND, 2, PCI_COMMAND_MASTER);
	CHECK_EQ(nkicks(), 0);
	vpci_cfg_wr(&vpd, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	CHECK_EQ(nkicks(), NQ);
	CHECK(kick_at(notify_gpa(BAR_ADDR2, 0)) != NULL);

	/* A sizing probe (all-ones) unmaps it; the address comes back. */
	vpci_cfg_wr(&vpd, PCI_BASE_ADDRESS_0 + 4 * VIRTIO_PCI_BAR, 4, 0xffffffffu);
	vpci_cfg_wr(&vpd, PCI_BASE_ADDRESS_0 + 4 * VIRTIO_PCI_BAR + 4, 4, 0xffffffffu);
	CHECK_EQ(nkicks(), 0);
	map_bar4(BAR_ADDR);
	CHECK_EQ(nkicks(), NQ);
	CHECK(kick_at(notify_gpa(BAR_ADDR, 1)) != NULL);
	CHECK_EQ(fake_bad, 0);
	destroy();
}

static void test_reset_in_flight(void)
{
	create(true);
	driver_init(false);
	pthread_mutex_lock(&lock);
	virtio_pci_req_start(vp);
	pthread_mutex_unlock(&lock);
	/* The reset waits for the request, but the queues stop now. */
	vpci_set_status(&vpd, 0);
	CHECK(vpci_rd(&vpd, VIRTIO_PCI_COMMON_STATUS, 1) != 0);
	CHECK_EQ(nkicks(), 0);
	pthread_mutex_lock(&lock);
	CHECK(!virtio_pci_req_end(vp));
	pthread_mutex_unlock(&lock);
	CHECK_EQ(vpci_rd(&vpd, VIRTIO_PCI_COMMON_STATUS, 1), 0);
	CHECK_EQ(nkicks(), 0);
	destroy();
}

static void test_irqfd_vectors(void)
{
	uint64_t pba;

	create(true);
	driver_init(true);
	/* Config vector 0, queues 1 and 2: three irqfds, routed to the
	 * table's messages. */
	CHECK_EQ(nirqfds(), NQ + 1);
	for (unsigned v = 0; v <= NQ; v++) {
		struct fake_irqfd *x = fake_gsi(virtio_pci_iofd_vector_gsi(vp, v));

		CHECK(x != NULL);
		CHECK(x && x->addr == 0xfee00000ull && x->data == MSI_DATA + v);
	}

	/* Used buffers interrupt through the irqfd, not the host. */
	add_buffer(0);
	CHECK(ring(0));
	io_turn();
	CHECK_EQ(irqfd_signals(1), 1);
	CHECK_EQ(host_msis[1], 0);

	/* Masked entry: the host's path keeps it pending... */
	msix_wr(1, 3, 1);
	add_buffer(0);
	CHECK(ring(0));
	io_turn();
	CHECK_EQ(irqfd_signals(1), 0);
	CHECK_EQ(host_msis[1], 0);
	pthread_mutex_lock(&lock);
	pba = io_read(mmio, MSIX_ADDR + 2048, 8);
	pthread_mutex_unlock(&lock);
	CHECK_EQ(pba, 1u << 1);
	/* ...a new message while masked re-routes the GSI... */
	msix_wr(1, 2, MSI_DATA + 7);
	CHECK(fake_gsi(virtio_pci_iofd_vector_gsi(vp, 1))->data == MSI_DATA + 7);
	msix_wr(1, 2, MSI_DATA + 1);
	/* ...and the unmask sends it, once. */
	msix_wr(1, 3, 0);
	CHECK_EQ(host_msis[1], 1);
	CHECK_EQ(irqfd_signals(1), 0);
	add_buffer(0);
	CHECK(ring(0));
	io_turn();
	CHECK_EQ(irqfd_signals(1), 1);

	/* Function mask and bus master off hold vectors back too. */
	vpci_cfg_wr(&vpd, VIRTIO_PCI_CAP_MSIX_OFF + 2, 2, 0xc000);
	add_buffer(1);
	CHECK(ring(1));
	io_turn();
	CHECK_EQ(irqfd_signals(2), 0);
	vpci_msix_enable(&vpd, true);
	CHECK_EQ(host_msis[2], 1);
	vpci_cfg_wr(&vpd, PCI_COMMAND, 2, PCI_COMMAND_MEMORY);
	add_buffer(1);
	CHECK(ring(1));
	io_turn();
	CHECK_EQ(irqfd_signals(2), 0);
	vpci_cfg_wr(&vpd, PCI_COMMAND, 2, PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER);
	CHECK_EQ(host_msis[2], 2);

	/* Not an APIC message: no irqfd, the host sends it as written. */
	msix_wr(2, 0, 0x12340000u);
	CHECK_EQ(virtio_pci_iofd_vector_gsi(vp, 2), -1);
	CHECK_EQ(nirqfds(), NQ);
	msix_wr(2, 0, 0xfee00000u);
	CHECK(virtio_pci_iofd_vector_gsi(vp, 2) >= 0);

	/* A queue moved to another vector: the unused one goes. */
	vpci_wr(&vpd, VIRTIO_PCI_COMMON_Q_SELECT, 1, 2);
	vpci_wr(&vpd, VIRTIO_PCI_COMMON_Q_MSIX, 1, 2);
	CHECK_EQ(virtio_pci_iofd_vector_gsi(vp, 2), -1);
	CHECK_EQ(nirqfds(), 2);

	/* MSI-X off: INTx, no irqfds. */
	vpci_msix_enable(&vpd, false);
	CHECK_EQ(nirqfds(), 0);
	vpci_msix_enable(&vpd, true);
	CHECK_EQ(nirqfds(), 2);
	/* A reset unassigns every vector. */
	vpci_set_status(&vpd, 0);
	CHECK_EQ(nirqfds(), 0);
	CHECK_EQ(fake_bad, 0);
	destroy();
}

/* No ioeventfd or irqfd in KVM: asked once, then the old paths. */
static void test_not_supported(void)
{
	fake_enotsup = true;
	ioeventfd_adds = irqfd_adds = 0;
	create(true);
	driver_init(true);
	CHECK_EQ(ioeventfd_adds, 1);
	CHECK_EQ(irqfd_adds, 1);
	CHECK_EQ(nkicks(), 0);
	add_buffer(0);
	vpci_wr(&vpd, notify_gpa(0, 0), 0, 2);
	CHECK_EQ(notifies[0], 1);
	CHECK_EQ(host_msis[1], 1);
	map_bar4(BAR_ADDR2);
	vpci_set_status(&vpd, 0);
	driver_init(true);
	CHECK_EQ(ioeventfd_adds, 1);
	CHECK_EQ(irqfd_adds, 1);
	destroy();
	fake_enotsup = false;

	/* No iofd at all: the same, nothing asked. */
	ioeventfd_adds = irqfd_adds = 0;
	create(false);
	driver_init(true);
	add_buffer(1);
	vpci_wr(&vpd, notify_gpa(0, 1), 1, 2);
	CHECK_EQ(notifies[1], 1);
	CHECK_EQ(host_msis[2], 1);
	CHECK_EQ(ioeventfd_adds + irqfd_adds, 0);
	destroy();
}

/* A load re-derives the registrations from the loaded state: BAR mapping
 * and MSI-X table from the PCI host's section, queues and vectors from
 * the transport's. */
static void test_save_load(void)
{
	GVariant *hs, *ts;
	char err[256];

	create(true);
	map_bar4(BAR_ADDR2);
	driver_init(true);
	pthread_mutex_lock(&lock);
	hs = g_variant_ref_sink(pci_host_device_ops.save(host));
	ts = g_variant_ref_sink(virtio_pci_save(vp));
	pthread_mutex_unlock(&lock);
	destroy();

	/* A new machine's function: nothing mapped, nothing registered. */
	create(true);
	vpci_cfg_wr(&vpd, PCI_COMMAND, 2, 0);
	map_bar4(0);
	CHECK_EQ(nkicks(), 0);
	pthread_mutex_lock(&lock);
	CHECK_EQ(pci_host_device_ops.load(host, 1, hs, err, sizeof(err)), 0);
	CHECK_EQ(virtio_pci_load(vp, ts, "test", err, sizeof(err)), 0);
	pthread_mutex_unlock(&lock);
	vpd.bar = BAR_ADDR2;
	CHECK_EQ(nkicks(), NQ);
	for (unsigned q = 0; q < NQ; q++)
		CHECK(kick_at(notify_gpa(BAR_ADDR2, q)) != NULL);
	CHECK_EQ(nirqfds(), NQ + 1);
	CHECK(fake_gsi(virtio_pci_iofd_vector_gsi(vp, 2)) &&
	      fake_gsi(virtio_pci_iofd_vector_gsi(vp, 2))->data == MSI_DATA + 2);
	add_buffer(1);
	CHECK(ring(1));
	io_turn();
	CHECK_EQ(notifies[1], 1);
	CHECK_EQ(irqfd_signals(2), 1);

	/* Loading over a running device replaces its registrations. */
	pthread_mutex_lock(&lock);
	CHECK_EQ(virtio_pci_load(vp, ts, "test", err, sizeof(err)), 0);
	pthread_mutex_unlock(&lock);
	CHECK_EQ(nkicks(), NQ);
	CHECK_EQ(nirqfds(), NQ + 1);
	CHECK_EQ(fake_bad, 0);
	g_variant_unref(hs);
	g_variant_unref(ts);
	destroy();
}

/* Teardown closes every eventfd it made. */
static void test_no_fd_leak(void)
{
	unsigned before = open_fds();

	create(true);
	driver_init(true);
	CHECK(open_fds() >= before + NQ + NQ + 1);
	map_bar4(BAR_ADDR2);
	vpci_set_status(&vpd, 0);
	driver_init(true);
	destroy();
	CHECK_EQ(open_fds(), before);
}

int main(void)
{
	sandbox_test_threads(false);
	log_set_level(LOG_ERROR);
	if (guest_mem_init(&mem, RAM_SIZE) != 0)
		SKIP("cannot allocate guest RAM");
	CHECK_EQ(vpci_host_new(&vpd, &pio, &host_ops, NULL), 0);
	host = vpd.host;
	mmio = vpd.mmio;

	RUN_TEST(test_doorbells_follow_queues);
	RUN_TEST(test_bar_moves);
	RUN_TEST(test_reset_in_flight);
	RUN_TEST(test_irqfd_vectors);
	RUN_TEST(test_not_supported);
	RUN_TEST(test_save_load);
	RUN_TEST(test_no_fd_leak);

	pci_host_free(host);
	bus_free(mmio);
	bus_free(pio);
	guest_mem_free(&mem);
	return check_finish();
}
