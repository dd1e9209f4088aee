/* SPDX-License-Identifier: MIT */
/*
 * tests/fuzz/fuzz_9p.c - the 9P2000.L server (share/p9_server.h) on
 * hostile messages, against a fresh temporary tree per input: a share
 * holding files, a folder, symlinks out, a FIFO, and a canary beside it.
 * A libFuzzer target, also run by fuzz_runner.c as the unit test fuzz_9p.
 *
 * Input: a header byte (bit 0: readonly share, bit 1: keep each message's
 * own size field, else it is set to the message's length so mutations get
 * past framing; bits 2-7 with the next byte: the reply room), then
 * messages as len[2] bytes[len].  Tversion and Tattach (fid 0) come first.
 * Every reply must fit the room and be well framed with the request's
 * tag; afterwards the canary is unchanged and nothing new exists outside
 * the share.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz.h"
#include "log.h"
#include "share/p9.h"
#include "share/p9_server.h"

static char base[64];
static const char secret[] = "canary\n";

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st; (void)flag; (void)f;
	remove(p);
	return 0;
}

static void put(const char *path, const char *text)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd >= 0) {
		if (write(fd, text, strlen(text)) < 0)
			__builtin_trap();
		close(fd);
	}
}

static void rm_base(void)
{
	nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static void make_tree(void)
{
	char p[256];

	if (!base[0]) {
		snprintf(base, sizeof(base), "/tmp/vivarium-fuzz9p-%d", (int)getpid());
		log_set_level(LOG_ERROR);
		atexit(rm_base);
	}
	nftw(base, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	mkdir(base, 0755);
	snprintf(p, sizeof(p), "%s/share", base);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/outside", base);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/outside/canary", base);
	put(p, secret);
	snprintf(p, sizeof(p), "%s/share/a.txt", base);
	put(p, "some text\n");
	snprintf(p, sizeof(p), "%s/share/d", base);
	mkdir(p, 0755);
	snprintf(p, sizeof(p), "%s/share/d/b.txt", base);
	put(p, "b\n");
	snprintf(p, sizeof(p), "%s/share/out", base);
	symlink("../outside", p);
	snprintf(p, sizeof(p), "%s/share/abs", base);
	{
		char t[128];

		snprintf(t, sizeof(t), "%s/outside/canary", base);
		symlink(t, p);
	}
	snprintf(p, sizeof(p), "%s/share/fifo", base);
	mkfifo(p, 0644);
}

static void check_outside(void)
{
	char p[256], buf[64];
	unsigned n = 0;
	ssize_t len;
	DIR *d;
	int fd;

	snprintf(p, sizeof(p), "%s/outside", base);
	d = opendir(p);
	if (!d)
		__builtin_trap();
	while (readdir(d))
		n++;
	closedir(d);
	if (n != 3)			/* ., .., canary */
		__builtin_trap();
	snprintf(p, sizeof(p), "%s/outside/canary", base);
	fd = open(p, O_RDONLY);
	len = fd >= 0 ? read(fd, buf, sizeof(buf)) : -1;
	if (fd >= 0)
		close(fd);
	if (len != (ssize_t)strlen(secret) || memcmp(buf, secret, (size_t)len))
		__builtin_trap();
	d = opendir(base);
	n = 0;
	while (d && readdir(d))
		n++;
	if (d)
		closedir(d);
	if (n != 4)			/* ., .., share, outside */
		__builtin_trap();
}

static uint8_t resp[70000];

static void serve(struct p9_server *s, const uint8_t *msg, size_t len,
		  size_t room)
{
	size_t n = p9_server_handle(s, msg, len, resp, room);

	if (n > room)
		__builtin_trap();
	if (n) {
		uint32_t size = (uint32_t)resp[0] | (uint32_t)resp[1] << 8 |
				(uint32_t)resp[2] << 16 | (uint32_t)resp[3] << 24;

		if (size != n || n < 7 || (resp[4] & 1) == 0 ||
		    resp[5] != msg[5] || resp[6] != msg[6])
			__builtin_trap();
	} else if (len >= 7 && room >= 11) {
		__builtin_trap();	/* every request gets a reply */
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct p9_server_config cfg = { .max_msize = 65536, .max_fids = 64 };
	struct p9_server *s;
	char root[128], err[256];
	uint8_t msg[65536 + 8];
	struct p9_writer w;
	size_t pos = 2, room;
	bool keep_size;

	if (size < 2 || size > (1u << 18))
		return 0;
	make_tree();
	snprintf(root, sizeof(root), "%s/share", base);
	cfg.root = root;
	cfg.readonly = data[0] & 1;
	cfg.no_procfd = (data[0] >> 2) & 1;
	keep_size = data[0] & 2;
	room = 11 + (((size_t)(data[0] >> 3) << 8 | data[1]) % 65536);
	s = p9_server_new(&cfg, err, sizeof(err));
	if (!s)
		__builtin_trap();

	p9_begin(&w, msg, sizeof(msg), P9_TVERSION, P9_NOTAG);
	p9_put32(&w, 65536);
	p9_put_str(&w, P9_VERSION_L);
	serve(s, msg, p9_finish(&w), sizeof(resp));
	p9_begin(&w, msg, sizeof(msg), P9_TATTACH, 1);
	p9_put32(&w, 0);
	p9_put32(&w, P9_NOFID);
	p9_put_str(&w, "u");
	p9_put_str(&w, "");
	p9_put32(&w, 1000);
	serve(s, msg, p9_finish(&w), sizeof(resp));

	while (pos + 2 <= size) {
		size_t len = (size_t)data[pos] | (size_t)data[pos + 1] << 8;

		pos += 2;
		if (len > size - pos)
			len = size - pos;
		if (len > 65536)
			len = 65536;
		memcpy(msg, data + pos, len);
		pos += len;
		if (!keep_size && len >= 4) {
			msg[0] = (uint8_t)len;
			msg[1] = (uint8_t)(len >> 8);
			msg[2] = (uint8_t)(len >> 16);
			msg[3] = 0;
		}
		serve(s, msg, len, room);
	}
	p9_server_free(s);
	check_outside();
	return 0;
}

/* ---- seeds ------------------------------------------------------------------ */

static uint8_t seed[4096];
static size_t seed_len;

static void seed_msg(struct p9_writer *w)
{
	size_t n = p9_finish(w);

	seed[seed_len++] = (uint8_t)n;
	seed[seed_len++] = (uint8_t)(n >> 8);
	memcpy(seed + seed_len, w->buf, n);
	seed_len += n;
}

static void walk(uint32_t fid, uint32_t nfid, const char *a, const char *b)
{
	uint8_t m[256];
	struct p9_writer w;

	p9_begin(&w, m, sizeof(m), P9_TWALK, 2);
	p9_put32(&w, fid);
	p9_put32(&w, nfid);
	p9_put16(&w, (uint16_t)(!!a + !!b));
	if (a)
		p9_put_str(&w, a);
	if (b)
		p9_put_str(&w, b);
	seed_msg(&w);
}

static void fid_msg(uint8_t type, uint32_t fid, uint32_t a, uint64_t b, uint32_t c)
{
	uint8_t m[256];
	struct p9_writer w;

	p9_begin(&w, m, sizeof(m), type, 3);
	p9_put32(&w, fid);
	if (type == P9_TLOPEN) {
		p9_put32(&w, a);
	} else if (type == P9_TREAD || type == P9_TREADDIR) {
		p9_put64(&w, b);
		p9_put32(&w, c);
	} else if (type == P9_TGETATTR) {
		p9_put64(&w, P9_GETATTR_BASIC);
	}
	seed_msg(&w);
}

static void name_msg(uint8_t type, uint32_t fid, const char *name, uint32_t x)
{
	uint8_t m[256];
	struct p9_writer w;

	p9_begin(&w, m, sizeof(m), type, 4);
	p9_put32(&w, fid);
	p9_put_str(&w, name);
	if (type == P9_TLCREATE) {
		p9_put32(&w, 2 | P9_DOTL_CREATE);
		p9_put32(&w, 0644);
		p9_put32(&w, 0);
	} else if (type == P9_TMKDIR) {
		p9_put32(&w, 0755);
		p9_put32(&w, 0);
	} else if (type == P9_TSYMLINK) {
		p9_put_str(&w, "../outside/canary");
		p9_put32(&w, 0);
	} else if (type == P9_TUNLINKAT) {
		p9_put32(&w, x);
	} else if (type == P9_TRENAMEAT) {
		p9_put32(&w, x);
		p9_put_str(&w, "renamed");
	}
	seed_msg(&w);
}

void fuzz_make_seeds(void (*add)(const void *data, size_t len))
{
	uint8_t m[256];
	struct p9_writer w;

	for (int variant = 0; variant < 4; variant++) {
		seed_len = 0;
		seed[seed_len++] = (uint8_t)(variant & 1 ? 0 : 0xf8);
		seed[seed_len++] = 0xff;
		walk(0, 1, "d", "b.txt");
		fid_msg(P9_TLOPEN, 1, variant & 2 ? 2 : 0, 0, 0);
		fid_msg(P9_TREAD, 1, 0, 0, 100);
		fid_msg(P9_TGETATTR, 1, 0, 0, 0);
		walk(0, 2, "..", "out");
		walk(0, 3, "abs", NULL);
		fid_msg(P9_TLOPEN, 3, 0, 0, 0);
		walk(0, 4, NULL, NULL);
		name_msg(P9_TLCREATE, 4, "new", 0);
		p9_begin(&w, m, sizeof(m), P9_TWRITE, 5);
		p9_put32(&w, 4);
		p9_put64(&w, 0);
		p9_put32(&w, 5);
		p9_put_bytes(&w, "hello", 5);
		seed_msg(&w);
		name_msg(P9_TMKDIR, 0, "dir", 0);
		name_msg(P9_TSYMLINK, 0, "ln", 0);
		name_msg(P9_TRENAMEAT, 0, "a.txt", 0);
		walk(0, 5, NULL, NULL);
		fid_msg(P9_TLOPEN, 5, P9_DOTL_DIRECTORY, 0, 0);
		fid_msg(P9_TREADDIR, 5, 0, 0, 300);
		name_msg(P9_TUNLINKAT, 0, "dir", P9_DOTL_AT_REMOVEDIR);
		walk(0, 6, "fifo", NULL);
		fid_msg(P9_TLOPEN, 6, 0, 0, 0);
		fid_msg(P9_TCLUNK, 1, 0, 0, 0);
		add(seed, seed_len);
	}
}
