/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/netframe.h - for the network backends' tests: a NIC that
 * records every frame it is offered, and hand-built Ethernet frames
 * (ARP, IPv4 with UDP/TCP/ICMP, IPv6 ICMPv6) with real checksums, and
 * their parsing.
 */
#ifndef VIVARIUM_NETFRAME_H
#define VIVARIUM_NETFRAME_H

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "net/net.h"

/* ---- the recording NIC ---------------------------------------------------- */

#define NIC_FRAMES	4096

struct rec_frame {
	size_t len;
	uint8_t *data;
};

struct rec_nic {
	pthread_mutex_t *lock;		/* the "device lock" */
	unsigned room;			/* frames it takes before saying "full" */
	unsigned n;			/* frames recorded */
	struct rec_frame f[NIC_FRAMES];
};

static size_t rec_receive(void *opaque, const struct iovec *iov, int iovcnt)
{
	struct rec_nic *nic = opaque;
	size_t len = 0, off = 0;
	uint8_t *d;

	if (!nic->room)
		return 0;
	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	nic->room--;
	if (nic->n == NIC_FRAMES)
		return len;		/* taken, not recorded */
	d = malloc(len);
	if (!d)
		return len;
	for (int i = 0; i < iovcnt; i++) {
		memcpy(d + off, iov[i].iov_base, iov[i].iov_len);
		off += iov[i].iov_len;
	}
	nic->f[nic->n].len = len;
	nic->f[nic->n].data = d;
	nic->n++;
	return len;
}

static const struct net_client_ops rec_ops = { .receive = rec_receive };

static inline void rec_attach(struct rec_nic *nic, struct netdev *nd,
			      pthread_mutex_t *lock, unsigned room)
{
	nic->lock = lock;
	nic->room = room;
	pthread_mutex_lock(lock);
	net_attach(nd, &rec_ops, nic, lock);
	pthread_mutex_unlock(lock);
}

static inline void rec_detach_free(struct rec_nic *nic, struct netdev *nd)
{
	pthread_mutex_lock(nic->lock);
	net_detach(nd);
	pthread_mutex_unlock(nic->lock);
	net_free(nd);
	for (unsigned i = 0; i < nic->n; i++)
		free(nic->f[i].data);
	nic->n = 0;
}

static inline void ms_sleep(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000 };

	nanosleep(&ts, NULL);
}

/*
 * Wait up to @ms for a frame, from index *@from on, for which @match is
 * true; copy it to @out (room @outlen, may be NULL) and return its length,
 * and set *@from past it.  0 if none came.
 */
typedef bool (*frame_match)(const uint8_t *f, size_t len, const void *arg);

static inline size_t rec_wait(struct rec_nic *nic, unsigned *from,
			      frame_match match, const void *arg, unsigned ms,
			      uint8_t *out, size_t outlen)
{
	for (unsigned t = 0; t <= ms; t += 5) {
		pthread_mutex_lock(nic->lock);
		for (unsigned i = *from; i < nic->n; i++) {
			const struct rec_frame *r = &nic->f[i];

			if (!match(r->data, r->len, arg))
				continue;
			if (out)
				memcpy(out, r->data,
				       r->len < outlen ? r->len : outlen);
			*from = i + 1;
			pthread_mutex_unlock(nic->lock);
			return r->len;
		}
		pthread_mutex_unlock(nic->lock);
		ms_sleep(5);
	}
	return 0;
}

/* Send a frame as the guest; retries while the queue is full. */
static inline int guest_send(struct netdev *nd, pthread_mutex_t *lock,
			     const uint8_t *f, size_t len)
{
	struct iovec iov = { (void *)f, len };
	int r;

	for (int i = 0; i < 2000; i++) {
		pthread_mutex_lock(lock);
		r = net_send(nd, &iov, 1);
		pthread_mutex_unlock(lock);
		if (r != -EAGAIN)
			return r;
		ms_sleep(1);
	}
	return r;
}

/* ---- building frames ------------------------------------------------------ */

#define ETH_HLEN_	14
#define ETHTYPE_IP	0x0800
#define ETHTYPE_ARP	0x0806
#define ETHTYPE_IP6	0x86dd

#define TCP_FIN	0x01
#define TCP_SYN	0x02
#define TCP_RST	0x04
#define TCP_PSH	0x08
#define TCP_ACK	0x10

static const uint8_t mac_bcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };

static inline void put16(uint8_t *p, unsigned v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void put32(uint8_t *p, uint32_t v)
{
	put16(p, v >> 16);
	put16(p + 2, v & 0xffff);
}

static inline unsigned get16(const uint8_t *p)
{
	return (unsigned)p[0] << 8 | p[1];
}

static inline uint32_t get32(const uint8_t *p)
{
	return (uint32_t)get16(p) << 16 | get16(p + 2);
}

/* The Internet checksum's running sum (RFC 1071). */
static inline uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		sum += get16(p + i);
	if (len & 1)
		sum += (uint32_t)p[len - 1] << 8;
	return sum;
}

static inline uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

static inline uint32_t ip4(const char *s)
{
	struct in_addr a;

	inet_pton(AF_INET, s, &a);
	return ntohl(a.s_addr);
}

static inline size_t eth_hdr(uint8_t *f, const uint8_t dst[6],
			     const uint8_t src[6], unsigned type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, src, 6);
	put16(f + 12, type);
	return ETH_HLEN_;
}

/* An ARP request or reply (@op 1/2) for IPv4 over Ethernet. */
static inline size_t arp_frame(uint8_t *f, unsigned op, const uint8_t sha[6],
			       uint32_t spa, const uint8_t tha[6], uint32_t tpa)
{
	static const uint8_t zero[6];
	size_t n = eth_hdr(f, op == 1 ? mac_bcast : tha, sha, ETHTYPE_ARP);
	uint8_t *a = f + n;

	put16(a, 1);
	put16(a + 2, ETHTYPE_IP);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, op);
	memcpy(a + 8, sha, 6);
	put32(a + 14, spa);
	memcpy(a + 18, op == 1 ? zero : tha, 6);
	put32(a + 24, tpa);
	return n + 28;
}

/* IPv4 around @l4 (@l4len bytes, copied); fills the TCP/UDP/ICMP
 * checksum at its place in the copy. */
static inline size_t ip4_frame(uint8_t *f, const uint8_t dst[6],
			       const uint8_t src[6], unsigned proto,
			       uint32_t saddr, uint32_t daddr,
			       const uint8_t *l4, size_t l4len)
{
	size_t n = eth_hdr(f, dst, src, ETHTYPE_IP);
	uint8_t *ip = f + n, *p = ip + 20, pseudo[12];
	unsigned ck = proto == 6 ? 16 : proto == 17 ? 6 : 2;
	uint32_t sum;

	memset(ip, 0, 20);
	ip[0] = 0x45;
	put16(ip + 2, 20 + l4len);
	put16(ip + 4, 0x1234);
	ip[8] = 64;
	ip[9] = (uint8_t)proto;
	put32(ip + 12, saddr);
	put32(ip + 16, daddr);
	put16(ip + 10, csum_fold(csum_add(0, ip, 20)));
	memcpy(p, l4, l4len);
	put16(p + ck, 0);
	if (proto == 1) {
		sum = 0;
	} else {
		put32(pseudo, saddr);
		put32(pseudo + 4, daddr);
		pseudo[8] = 0;
		pseudo[9] = (uint8_t)proto;
		put16(pseudo + 10, l4len);
		sum = csum_add(0, pseudo, 12);
	}
	put16(p + ck, csum_fold(csum_add(sum, p, l4len)));
	return n + 20 + l4len;
}

static inline size_t udp_hdr(uint8_t *u, unsigned sport, unsigned dport,
			     const void *data, size_t len)
{
	put16(u, sport);
	put16(u + 2, dport);
	put16(u + 4, 8 + len);
	put16(u + 6, 0);
	memcpy(u + 8, data, len);
	return 8 + len;
}

static inline size_t tcp_hdr(uint8_t *t, unsigned sport, unsigned dport,
			     uint32_t seq, uint32_t ack, unsigned flags,
			     unsigned window, const void *data, size_t len)
{
	memset(t, 0, 20);
	put16(t, sport);
	put16(t + 2, dport);
	put32(t + 4, seq);
	put32(t + 8, ack);
	t[12] = 5 << 4;
	t[13] = (uint8_t)flags;
	put16(t + 14, window);
	memcpy(t + 20, data, len);
	return 20 + len;
}

/* ---- reading frames ------------------------------------------------------- */

static inline unsigned eth_type(const uint8_t *f, size_t len)
{
	return len >= ETH_HLEN_ ? get16(f + 12) : 0;
}

/* The IPv4 packet's layer 4 (NULL if not IPv4 of @proto). */
static inline const uint8_t *ip4_l4(const uint8_t *f, size_t len,
				    unsigned proto, size_t *l4len)
{
	const uint8_t *ip = f + ETH_HLEN_;
	size_t ihl, tot;

	if (eth_type(f, len) != ETHTYPE_IP || len < ETH_HLEN_ + 20 ||
	    ip[9] != proto)
		return NULL;
	ihl = (ip[0] & 0xf) * 4u;
	tot = get16(ip + 2);
	if (tot < ihl || ETH_HLEN_ + tot > len)
		return NULL;
	if (l4len)
		*l4len = tot - ihl;
	return ip + ihl;
}

static inline uint32_t ip4_src(const uint8_t *f) { return get32(f + 26); }
static inline uint32_t ip4_dst(const uint8_t *f) { return get32(f + 30); }

#endif
