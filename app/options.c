/* SPDX-License-Identifier: MIT */
#include "options.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "block/block.h"
#include "machine.h"

int parse_size(const char *s, uint64_t *bytes)
{
	unsigned long long v;
	unsigned shift = 0;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	switch (toupper((unsigned char)*end)) {
	case 0:
		break;
	case 'K': shift = 10; end++; break;
	case 'M': shift = 20; end++; break;
	case 'G': shift = 30; end++; break;
	case 'T': shift = 40; end++; break;
	case 'B': break;
	default:
		return -EINVAL;
	}
	if (*end && strcasecmp(end, "iB") && strcasecmp(end, "B"))
		return -EINVAL;
	if (shift && v > (~0ull >> shift))
		return -ERANGE;
	*bytes = (uint64_t)v << shift;
	return 0;
}

int parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	unsigned long v;
	char *end;

	if (!s || !isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (*end)
		return -EINVAL;
	if (errno == ERANGE || v < min || v > max)
		return -ERANGE;
	*out = (unsigned)v;
	return 0;
}

int parse_drive_spec(const char *spec, struct machine_drive *d, char *err,
		     size_t errlen)
{
	size_t n = strlen(spec);
	char *path = malloc(n + 1), *o = path;
	const char *p = spec;

	if (!path) {
		snprintf(err, errlen, "out of memory");
		return -EINVAL;
	}
	memset(d, 0, sizeof(*d));
	/* The path runs to the first single ','. */
	while (*p) {
		if (p[0] == ',' && p[1] == ',') {
			*o++ = ',';
			p += 2;
		} else if (*p == ',') {
			break;
		} else {
			*o++ = *p++;
		}
	}
	*o = 0;
	if (!*path) {
		snprintf(err, errlen, "--disk '%s': give the image's path first", spec);
		free(path);
		return -EINVAL;
	}
	d->path = path;
	while (*p == ',') {
		const char *key = ++p, *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		enum blk_format f;

		p += len;
		if (len == 8 && !strncmp(key, "readonly", 8)) {
			d->readonly = true;
		} else if (len > 7 && !strncmp(key, "format=", 7)) {
			char name[16];

			snprintf(name, sizeof(name), "%.*s", (int)(len - 7), key + 7);
			if (len - 7 >= sizeof(name) || blk_parse_format(name, &f) < 0) {
				snprintf(err, errlen, "--disk: unknown format '%.*s' (use raw or qcow2)",
					 (int)(len - 7), key + 7);
				goto bad;
			}
			d->format = (int)f;
		} else if (len == 9 && !strncmp(key, "if=virtio", 9)) {
			d->bus = MACHINE_IF_VIRTIO;
		} else if (len == 6 && !strncmp(key, "if=ata", 6)) {
			d->bus = MACHINE_IF_ATA;
		} else {
			snprintf(err, errlen, "--disk: unknown option '%.*s' (known: format=raw|qcow2, if=virtio|ata, readonly)",
				 (int)len, key);
			goto bad;
		}
	}
	return 0;
bad:
	free(path);
	d->path = NULL;
	return -EINVAL;
}
