/* SPDX-License-Identifier: MIT */
/*
 * tests/e2e/blk_hold.c - hold images open through the block layer as a
 * running VM does (machine.c's open_drives(): blk_open(), writable or
 * read-only), for test_image_locks.sh where /dev/kvm is not needed.
 *
 * usage: blk_hold [--ro] IMAGE...  (--ro applies to the images after it)
 * Prints "held" once every image is open, then holds them until stdin
 * reaches end of file.  Exit 0, or 1 with blk_open()'s one line on stderr.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "block/block.h"

int main(int argc, char **argv)
{
	struct blk *b[16];
	struct blk_open_opts o = { 0 };
	char err[512], buf[64];
	int n = 0;

	for (int i = 1; i < argc && n < 16; i++) {
		if (!strcmp(argv[i], "--ro")) {
			o.readonly = true;
			continue;
		}
		if (blk_open(argv[i], &o, &b[n], err, sizeof(err)) < 0) {
			fprintf(stderr, "blk_hold: %s\n", err);
			return 1;
		}
		n++;
	}
	printf("held\n");
	fflush(stdout);
	while (read(0, buf, sizeof(buf)) > 0)
		;
	while (n > 0)
		blk_close(b[--n]);
	return 0;
}
