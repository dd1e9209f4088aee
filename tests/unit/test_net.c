/* SPDX-License-Identifier: MIT */
/* tests/unit/test_net.c - the backend core (net/net.c) over the datagram
 * socket backend: frames both ways, the bounded queues and their flow
 * control, the cable, detach. */
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "net/net.h"

/* A NIC that takes frames while it has "buffers". */
struct fake_nic {
	unsigned room;			/* frames it can take now */
	unsigned got;
	uint8_t last[2048];
	size_t last_len;
	unsigned tx_ready, link_events;
	bool link;
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

int main(void)
{
	RUN_TEST(test_both_ways);
	RUN_TEST(test_rx_flow_control);
	RUN_TEST(test_tx_flow_control);
	RUN_TEST(test_tx_kick);
	RUN_TEST(test_link);
	RUN_TEST(test_hangup);
	return check_finish();
}
