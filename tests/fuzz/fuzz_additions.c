/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_additions.c - the guest additions' protocol on hostile
 * bytes, both ends: the host side (app/additions_host.c) on what a guest
 * sends, and the agent's reader (guest-additions/ga_*.c) on what a host
 * sends.  The first input byte picks the chunk size of the input calls;
 * the rest is the stream, fed to both.  Checked: every line the host
 * sends is within the bound and ends with a newline; a stored info keeps
 * every bound (strings without control characters, at most 16
 * addresses); what the agent hands its actions is in range.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

#include "additions_host.h"
#include "ga.h"
#include "log.h"

static void on_send(void *o, const void *buf, size_t len)
{
	(void)o;
	if (len == 0 || len > ADDITIONS_LINE_MAX || ((const char *)buf)[len - 1] != '\n' ||
	    memchr(buf, '\n', len) != (const char *)buf + len - 1)
		abort();
}

static const struct additions_host_ops hops = { .send = on_send };

static void text_ok(const char *s, size_t max)
{
	if (strlen(s) > max)
		abort();
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			abort();
}

static void a_shares(void *o, const struct ga_share *s, unsigned n)
{
	(void)o;
	if (n > GA_SHARES_MAX)
		abort();
	for (unsigned i = 0; i < n; i++)
		if (!ga_path_ok(s[i].path) || !s[i].tag[0] || strlen(s[i].tag) > GA_TAG_MAX)
			abort();
}

static void a_size(void *o, unsigned w, unsigned h)
{
	(void)o;
	if (!w || !h || w > GA_DISPLAY_MAX || h > GA_DISPLAY_MAX)
		abort();
}

static void a_time(void *o, long long sec, long nsec)
{
	(void)o;
	if (sec < 946684800LL || nsec < 0 || nsec > 999999999)
		abort();
}

static const struct ga_actions gacts = { .shares = a_shares,
	.display_size = a_size, .time_sync = a_time };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ga_reader rd;
	struct additions_host *h;
	const struct additions_info *in;
	size_t chunk;

	if (size < 1)
		return 0;
	log_set_level(LOG_ERROR);
	chunk = 1 + data[0] * 37u;
	data++, size--;
	h = additions_host_new(&hops, NULL);
	if (!h)
		return 0;
	additions_host_reset(h, true);
	additions_host_display_size(h, 1024, 768);
	ga_reader_reset(&rd);
	for (size_t off = 0; off < size; off += chunk) {
		size_t n = size - off < chunk ? size - off : chunk;

		additions_host_input(h, data + off, n);
		ga_input(&rd, (const char *)data + off, n, &gacts, NULL);
	}
	additions_host_time_sync(h, 1700000000000000LL);
	in = additions_host_info(h);
	if (in) {
		text_ok(in->os, ADDITIONS_OS_MAX);
		text_ok(in->kernel, ADDITIONS_KERNEL_MAX);
		text_ok(in->hostname, ADDITIONS_HOSTNAME_MAX);
		text_ok(in->version, ADDITIONS_VERSION_MAX);
		if (in->naddr > ADDITIONS_ADDR_MAX)
			abort();
	}
	additions_host_free(h);
	return 0;
}

void fuzz_make_seeds(void (*add)(const void *, size_t))
{
	static const char *const seeds[] = {
		"\x02{\"type\":\"hello\",\"protocol\":1,\"version\":\"1.0.0\"}\n"
		"{\"type\":\"info\",\"os\":\"Debian\",\"kernel\":\"6.1\",\"hostname\":\"h\",\"version\":\"1\",\"addresses\":[\"10.0.2.15\",\"::1\"]}\n",
		"\x03{\"type\":\"shares\",\"shares\":[{\"tag\":\"src\",\"path\":\"/mnt/src\",\"readonly\":true}]}\n"
		"{\"type\":\"display-size\",\"width\":800,\"height\":600}\n"
		"{\"type\":\"time-sync\",\"sec\":1700000000,\"nsec\":5}\n",
		"\x01[[[[{\"a\":\"\\ud83d\\ude00\"}]]]]\n{\"type\":\"hello\",\"protocol\":99}\r\n",
	};

	for (size_t i = 0; i < sizeof(seeds) / sizeof(seeds[0]); i++)
		add(seeds[i], strlen(seeds[i]));
}
