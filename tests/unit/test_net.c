/* SPDX-License-Identifier: MIT */
/* tests/unit/test_net.c - the backend core (net/net.c) over the datagram
 * socket backend: frames both ways, the bounded queues and their flow
 * control, the cable, detach; offloads (partial checksums and TCP
 * segmentation) over a datagram backend with a virtio-net header. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "net/csum.h"
#include "net/net.h"
#include "sandboxed.h"

/* A NIC that takes frames while it has "buffers". */
struct fake_nic {
	unsigned room;			/* frames it can take now */
	unsigned got;
	uint8_t last[2048];
	size_t last_len;
	unsigned tx_ready, link_events;
	bool link;
	struct net_offload last_off;	/* receive_offload's, or zero */
	unsigned got_off;		/* frames through receive_offload */
};

static size_t fake_receive(void *opaque, const struct iovec *iov, int iovcnt)
{
	struct fake_nic *n = opaque;
	size_t len = 0;

	if (!n->room)
		return 0;
	for (int i = 0; i < iovcnt; i++) {
		if (len + iov[i].iov_len <= sizeof(n->last))
			memcpy(n->last + len, iov[i].iov_base, iov[i].iov_len);
		len += iov[i].iov_len;
	}
	n->last_len = len;
	n->room--;
	n->got++;
	return len;
}

static size_t fake_receive_offload(void *opaque, const struct net_offload *off,
				   const struct iovec *iov, int iovcnt)
{
	struct fake_nic *n = opaque;
	size_t r = fake_receive(opaque, iov, iovcnt);

	if (r) {
		n->last_off = *off;
		n->got_off++;
	}
	return r;
}

static void fake_tx_ready(void *opaque)
{
	((struct fake_nic *)opaque)->tx_ready++;
}

static void fake_link(void *opaque, bool up)
{
	struct fake_nic *n = opaque;

	n->link = up;
	n->link_events++;
}

static const struct net_client_ops fake_ops = {
	.receive = fake_receive,
	.tx_ready = fake_tx_ready,
	.link_changed = fake_link,
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/* Wait up to 2 s for *@v (read under the lock) to reach @want. */
static bool wait_for(unsigned *v, unsigned want)
{
	for (int i = 0; i < 400; i++) {
		unsigned now;

		pthread_mutex_lock(&lock);
		now = *v;
		pthread_mutex_unlock(&lock);
		if (now >= want)
			return true;
		sleep_ms(5);
	}
	return false;
}

static void make_frame(uint8_t *f, size_t len, uint8_t tag)
{
	for (size_t i = 0; i < len; i++)
		f[i] = (uint8_t)(tag + i);
}

static void test_both_ways(void)
{
	int sv[2], err = 0;
	struct netdev *nd;
	struct fake_nic nic = { .room = 100 };
	uint8_t f[1514], back[2048];
	struct iovec iov[2];
	ssize_t n;

	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
	nd = net_socket_new(sv[0], &err);
	CHECK(nd != NULL);
	if (!nd)
		return;
	CHECK(strcmp(net_kind(nd), "socket") == 0);
	pthread_mutex_lock(&lock);
	CHECK_EQ(net_attach(nd, &fake_ops, &nic, &lock), 0);
	CHECK_EQ(net_attach(nd, &fake_ops, &nic, &lock), -EBUSY);
	pthread_mutex_unlock(&lock);

	/* Guest -> network, gathered from two pieces, byte-exact. */
	make_frame(f, sizeof(f), 7);
	iov[0] = (struct iovec){ f, 14 };
	iov[1] = (struct iovec){ f + 14, sizeof(f) - 14 };
	pthread_mutex_lock(&lock);
	CHECK_EQ(net_send(nd, iov, 2), 0);
	pthread_mutex_unlock(&lock);
	n = recv(sv[1], back, sizeof(back), 0);
	CHECK_EQ(n, sizeof(f));
	CHECK(memcmp(back, f, sizeof(f)) == 0);

	/* Network -> guest. */
	make_frame(f, 60, 3);
	CHECK_EQ(send(sv[1], f, 60, 0), 60);
	CHECK(wait_for(&nic.got, 1));
	pthread_mutex_lock(&lock);
	CHECK_EQ(nic.last_len, 60);
	CHECK(memcmp(nic.last, f, 60) == 0);
	pthread_mutex_unlock(&lock);

	/* Runts and giants are refused. */
	iov[0] = (struct iovec){ f, 10 };
	pthread_mutex_lock(&lock);
	CHECK_EQ(net_send(nd, iov, 1), -EMSGSIZE);
	pthread_mutex_unlock(&lock);

	pthread_mutex_lock(&lock);
	net_detach(nd);
	pthread_mutex_unlock(&lock);
	net_free(nd);
	close(sv[1]);
}

/* No receive buffers: frames wait (bounded), then flow on net_rx_ready. */
static void test_rx_flow_control(void)
{
	int sv[2], err = 0;
	struct netdev *nd;
	struct fake_nic nic = { .room = 0 };
	uint8_t f[64];
	struct net_stats st;

	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
	nd = net_socket_new(sv[0], &err);
	if (!nd)
		return;
	pthread_mutex_lock(&lock);
	net_attach(nd, &fake_ops, &nic, &lock);
	pthread_mutex_unlock(&lock);
	for (unsigned i = 0; i < 10; i++) {
		make_frame(f, sizeof(f), (uint8_t)i);
		CHECK_EQ(send(sv[1], f, sizeof(f), 0), sizeof(f));
	}
	sleep_ms(100);
	pthread_mutex_lock(&lock);
	CHECK_EQ(nic.got, 0);
	nic.room = 100;
	pthread_mutex_unlock(&lock);
	net_rx_ready(nd);
	CHECK(wait_for(&nic.got, 10));
	pthread_mutex_lock(&lock);
	CHECK_EQ(nic.last[0], 9);	/* in order: the last one last */
	pthread_mutex_unlock(&lock);
	net_get_stats(nd, &st);
	CHECK_EQ(st.rx_frames, 10);
	CHECK_EQ(st.rx_dropped, 0);

	pthread_mutex_lock(&lock);
	net_detach(nd);
	pthread_mutex_unlock(&lock);
	net_free(nd);
	close(sv[1]);
}

/* A peer that does not read: the transmit queue fills, net_send says
 * -EAGAIN, and tx_ready comes once the peer drains it. */
static void test_tx_flow_control(void)
{
	int sv[2], err = 0, r = 0;
	struct netdev *nd;
	struct fake_nic nic = { .room = 0 };
	uint8_t f[1500], back[2048];
	struct iovec iov = { f, sizeof(f) };
	unsigned sent = 0;

	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
	nd = net_socket_new(sv[0], &err);
	if (!nd)
		return;
	pthread_mutex_lock(&lock);
	net_attach(nd, &fake_ops, &nic, &lock);
	for (unsigned i = 0; i < 100000; i++) {
		r = net_send(nd, &iov, 1);
		if (r)
			break;
		sent++;
	}
	pthread_mutex_unlock(&lock);
	CHECK_EQ(r, -EAGAIN);
	CHECK(sent >= NET_QUEUE_FRAMES);
	CHECK(sent < 100000);
	CHECK_EQ(nic.tx_ready, 0);
	for (unsigned i = 0; i < sent; i++)
		if (recv(sv[1], back, sizeof(back), 0) != sizeof(f))
			break;
	CHECK(wait_for(&nic.tx_ready, 1));

	pthread_mutex_lock(&lock);
	net_detach(nd);
	pthread_mutex_unlock(&lock);
	net_free(nd);
	close(sv[1]);
}

/* net_tx_kick: tx_ready comes from the backend's thread with the device
 * lock held, with nothing sent; without a NIC, nothing happens. */
static void test_tx_kick(void)
{
	int sv[2], err = 0;
	struct netdev *nd;
	struct fake_nic nic = { .room = 0 };

	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
	nd = net_socket_new(sv[0], &err);
	if (!nd)
		return;
	net_tx_kick(nd);		/* nothing attached yet */
	sleep_ms(20);
	pthread_mutex_lock(&lock);
	net_attach(nd, &fake_ops, &nic, &lock);
	net_tx_kick(nd);
	pthread_mutex_unlock(&lock);
	CHECK(wait_for(&nic.tx_ready, 1));
	sleep_ms(20);
	CHECK_EQ(nic.tx_ready, 1);	/* once per kick */
	net_tx_kick(nd);
	CHECK(wait_for(&nic.tx_ready, 2));
	pthread_mutex_lock(&lock);
	net_detach(nd);
	pthread_mutex_unlock(&lock);
	net_free(nd);
	close(sv[1]);
}

static void test_link(void)
{
	int sv[2], err = 0;
	struct netdev *nd;
	struct fake_nic nic = { .room = 10 };
	uint8_t f[64] = { 0 };
	struct iovec iov = { f, sizeof(f) };

	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
	nd = net_socket_new(sv[0], &err);
	if (!nd)
		return;
	pthread_mutex_lock(&lock);
	net_attach(nd, &fake_ops, &nic, &lock);
	pthread_mutex_unlock(&lock);
	CHECK(net_link_up(nd));
	net_set_link(nd, false);
	CHECK(!net_link_up(nd));
	CHECK_EQ(nic.link_events, 1);
	CHECK(!nic.link);
	pthread_mutex_lock(&lock);
	CHECK_EQ(net_send(nd, &iov, 1), -ENOLINK);
	pthread_mutex_unlock(&lock);
	/* Frames toward a guest whose cable is pulled are lost. */
	CHECK_EQ(send(sv[1], f, sizeof(f), 0), sizeof(f));
	sleep_ms(100);
	CHECK_EQ(nic.got, 0);
	net_set_link(nd, true);
	CHECK(nic.link);

	/* After detach, nothing reaches the old NIC. */
	pthread_mutex_lock(&lock);
	net_detach(nd);
	pthread_mutex_unlock(&lock);
	CHECK_EQ(send(sv[1], f, sizeof(f), 0), sizeof(f));
	sleep_ms(100);
	CHECK_EQ(nic.got, 0);
	net_free(nd);
	close(sv[1]);
}

/* A peer that hangs up does not make the thread spin, and free works. */
static void test_hangup(void)
{
	int sv[2], err = 0;
	struct netdev *nd;

	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
	nd = net_socket_new(sv[0], &err);
	if (!nd)
		return;
	close(sv[1]);
	sleep_ms(50);
	net_free(nd);
	CHECK(1);
}

/* ---- offloads ------------------------------------------------------------ */

static struct net_offload hdr_get(const uint8_t *h)
{
	struct net_offload o;

	net_offload_from_hdr(&o, h);
	return o;
}

static const struct net_client_ops fake_off_ops = {
	.receive = fake_receive,
	.receive_offload = fake_receive_offload,
	.tx_ready = fake_tx_ready,
	.link_changed = fake_link,
};

/* An Ethernet + IPv4 + TCP frame of @len bytes, 10.0.0.1 -> 10.0.0.2, its
 * TCP checksum field holding the pseudo-header's sum, as a sender that
 * leaves the rest to the device writes it (NEEDS_CSUM at 34 + 16). */
static void tcp4_frame(uint8_t *f, size_t len)
{
	size_t tcplen = len - 34;
	uint32_t ps;

	make_frame(f, len, 1);
	f[12] = 0x08, f[13] = 0x00;
	f[14] = 0x45, f[15] = 0;
	f[16] = (uint8_t)((len - 14) >> 8), f[17] = (uint8_t)(len - 14);
	f[23] = 6;			/* TCP */
	memcpy(f + 26, "\x0a\x00\x00\x01\x0a\x00\x00\x02", 8);
	f[46] = 0x50;			/* data offset: 5 words */
	ps = net_csum_add(0, f + 26, 8) + 6 + (uint32_t)tcplen;
	while (ps >> 16)
		ps = (ps & 0xffff) + (ps >> 16);
	f[50] = (uint8_t)(ps >> 8), f[51] = (uint8_t)ps;
}

/* A TCP/IPv4 frame's checksum verifies: pseudo-header + segment sum to
 * 0xffff (RFC 793, 1071), computed here independently of the field. */
static bool tcp4_csum_ok(const uint8_t *f, size_t len)
{
	uint32_t s = net_csum_add(0, f + 26, 8) + 6 + (uint32_t)(len - 34);

	s = net_csum_add(s, f + 34, len - 34);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return s == 0xffff;
}

/* A backend of plain frames: a partial checksum is completed on the way
 * out, a segmentation offload refused, headers out of shape refused. */
static void test_offload_plain_backend(void)
{
	int sv[2], err = 0;
	struct netdev *nd;
	struct fake_nic nic = { .room = 100 };
	uint8_t f[1514], back[2048];
	struct iovec iov = { f, sizeof(f) };
	struct net_offload csum = { .flags = NET_OFF_F_NEEDS_CSUM,
				    .csum_start = 34, .csum_offset = 16 };
	struct net_offload gso = csum, bad = csum;
	struct net_stats st;
	ssize_t n;

	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
	nd = net_socket_new(sv[0], &err);
	if (!nd)
		return;
	CHECK_EQ(net_caps(nd), 0);
	pthread_mutex_lock(&lock);
	CHECK_EQ(net_attach(nd, &fake_off_ops, &nic, &lock), 0);
	tcp4_frame(f, sizeof(f));
	CHECK(!tcp4_csum_ok(f, sizeof(f)));
	CHECK_EQ(net_send_offload(nd, &csum, &iov, 1), 0);
	gso.gso_type = NET_GSO_TCPV4, gso.gso_size = 1448, gso.hdr_len = 54;
	CHECK_EQ(net_send_offload(nd, &gso, &iov, 1), -EINVAL);
	bad.csum_offset = 1500 - 34 + 13;	/* the field beyond the frame */
	CHECK_EQ(net_send_offload(nd, &bad, &iov, 1), -EINVAL);
	bad = csum, bad.flags |= 0x40;		/* an unknown flag */
	CHECK_EQ(net_send_offload(nd, &bad, &iov, 1), -EINVAL);
	pthread_mutex_unlock(&lock);
	n = recv(sv[1], back, sizeof(back), 0);
	CHECK_EQ(n, sizeof(f));
	CHECK(tcp4_csum_ok(back, sizeof(f)));
	CHECK(memcmp(back, f, 50) == 0 && memcmp(back + 52, f + 52, sizeof(f) - 52) == 0);
	net_get_stats(nd, &st);
	for (int i = 0; i < 200 && !st.tx_frames; i++) {	/* counted after */
		sleep_ms(5);
		net_get_stats(nd, &st);
	}
	CHECK_EQ(st.tx_frames, 1);
	CHECK_EQ(st.tx_dropped, 3);
	/* Only plain frames come in: the offload receive is never used. */
	CHECK_EQ(send(sv[1], f, 60, 0), 60);
	CHECK(wait_for(&nic.got, 1));
	CHECK_EQ(nic.got_off, 0);
	pthread_mutex_lock(&lock);
	net_detach(nd);
	pthread_mutex_unlock(&lock);
	net_free(nd);
	close(sv[1]);
}

/* A backend that carries offloads (the socket with virtio-net headers,
 * which a tap's fd reads and writes the same): a 20 KiB TCP segment goes out as one
 * frame with its header; coming in, it reaches the NIC as it is if the
 * NIC takes segments, is dropped if not, and a partial checksum is
 * completed for a NIC that takes none. */
static void test_offload_passthrough(void)
{
	enum { BIG = 20034 };
	int sv[2], err = 0;
	struct netdev *nd;
	struct fake_nic nic = { .room = 100 };
	static uint8_t f[BIG], back[10 + BIG], dg[10 + BIG];
	struct iovec iov = { f, BIG };
	struct net_offload gso = { .flags = NET_OFF_F_NEEDS_CSUM,
				   .gso_type = NET_GSO_TCPV4, .hdr_len = 54,
				   .gso_size = 1448, .csum_start = 34,
				   .csum_offset = 16 }, got;
	struct net_offload csum = { .flags = NET_OFF_F_NEEDS_CSUM,
				    .csum_start = 34, .csum_offset = 16 };
	struct net_stats st;
	ssize_t n;

	CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv) == 0);
	nd = net_socket_vnet_new(sv[0], &err);
	if (!nd)
		return;
	CHECK_EQ(net_caps(nd), NET_CAP_ALL);
	pthread_mutex_lock(&lock);
	CHECK_EQ(net_attach(nd, &fake_off_ops, &nic, &lock), 0);
	tcp4_frame(f, BIG);
	CHECK_EQ(net_send_offload(nd, &gso, &iov, 1), 0);
	pthread_mutex_unlock(&lock);
	n = recv(sv[1], back, sizeof(back), 0);
	CHECK_EQ(n, 10 + BIG);
	got = hdr_get(back);
	CHECK(!memcmp(&got, &gso, sizeof(got)));
	CHECK(memcmp(back + 10, f, BIG) == 0);	/* checksum left partial */

	/* In: the NIC takes everything. */
	pthread_mutex_lock(&lock);
	net_set_rx_offloads(nd, NET_CAP_ALL | 0x100);
	pthread_mutex_unlock(&lock);
	net_offload_to_hdr(dg, &gso);
	memcpy(dg + 10, f, 2000);	/* a 2000-byte "segment" */
	CHECK_EQ(send(sv[1], dg, 10 + 2000, 0), 10 + 2000);
	CHECK(wait_for(&nic.got_off, 1));
	pthread_mutex_lock(&lock);
	CHECK(!memcmp(&nic.last_off, &gso, sizeof(gso)));
	CHECK_EQ(nic.last_len, 2000);
	/* The NIC takes nothing now (a reset). */
	net_set_rx_offloads(nd, 0);
	pthread_mutex_unlock(&lock);
	CHECK_EQ(send(sv[1], dg, 10 + 2000, 0), 10 + 2000);	/* dropped */
	tcp4_frame(f, 1514);
	net_offload_to_hdr(dg, &csum);
	memcpy(dg + 10, f, 1514);
	CHECK_EQ(send(sv[1], dg, 10 + 1514, 0), 10 + 1514);
	CHECK(wait_for(&nic.got, 2));
	pthread_mutex_lock(&lock);
	CHECK_EQ(nic.got, 2);
	CHECK_EQ(nic.got_off, 1);
	CHECK_EQ(nic.last_len, 1514);
	CHECK(tcp4_csum_ok(nic.last, 1514));
	/* Partial checksums only: passed as they are, with their header. */
	net_set_rx_offloads(nd, NET_CAP_CSUM);
	pthread_mutex_unlock(&lock);
	CHECK_EQ(send(sv[1], dg, 10 + 1514, 0), 10 + 1514);
	CHECK(wait_for(&nic.got_off, 2));
	pthread_mutex_lock(&lock);
	CHECK(!memcmp(&nic.last_off, &csum, sizeof(csum)));
	CHECK(!tcp4_csum_ok(nic.last, 1514));
	pthread_mutex_unlock(&lock);
	net_get_stats(nd, &st);
	CHECK_EQ(st.rx_dropped, 1);
	/* A header out of shape from the host side: dropped, counted. */
	net_offload_to_hdr(dg, &(struct net_offload){ .flags = NET_OFF_F_NEEDS_CSUM,
					   .csum_start = 1600 });
	CHECK_EQ(send(sv[1], dg, 10 + 1514, 0), 10 + 1514);
	for (int i = 0; i < 200 && st.rx_dropped < 2; i++) {
		sleep_ms(5);
		net_get_stats(nd, &st);
	}
	CHECK_EQ(st.rx_dropped, 2);
	pthread_mutex_lock(&lock);
	net_detach(nd);
	pthread_mutex_unlock(&lock);
	net_free(nd);
	close(sv[1]);
}

int main(void)
{
	sandbox_test_threads(false);
	RUN_TEST(test_both_ways);
	RUN_TEST(test_rx_flow_control);
	RUN_TEST(test_tx_flow_control);
	RUN_TEST(test_tx_kick);
	RUN_TEST(test_link);
	RUN_TEST(test_hangup);
	RUN_TEST(test_offload_plain_backend);
	RUN_TEST(test_offload_passthrough);
	return check_finish();
}
