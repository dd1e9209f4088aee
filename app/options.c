/* SPDX-License-Identifier: MIT */
#include "options.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

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

bool subcommand_run(const struct subcommand *subs, size_t n,
		    void (*usage)(FILE *f), int argc, char **argv, int *status)
{
	if (argc < 2) {
		usage(stderr);
		*status = 2;
		return true;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
	    !strcmp(argv[1], "help")) {
		usage(stdout);
		*status = 0;
		return true;
	}
	for (size_t i = 0; i < n; i++)
		if (!strcmp(argv[1], subs[i].name)) {
			*status = subs[i].fn(argc - 1, argv + 1);
			return true;
		}
	return false;
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

int parse_vnc_addr(const char *spec, struct vnc_addr *out, char *err,
		   size_t errlen)
{
	struct addrinfo hints = {
		.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
		.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
	};
	struct vnc_addr a = { 0 };
	struct addrinfo *ai;
	const char *colon;
	unsigned long port;
	char *end;
	size_t hl;

	if (!strncmp(spec, "unix:", 5)) {
		/* sizeof(a.path) is sizeof(sun_path), with its NUL. */
		_Static_assert(sizeof(a.path) == sizeof(((struct sockaddr_un *)0)->sun_path),
			       "path fits sun_path");
		if (!spec[5] || strlen(spec + 5) >= sizeof(a.path)) {
			snprintf(err, errlen, "vnc: unix socket path '%s' is empty or longer than %zu bytes",
				 spec + 5, sizeof(a.path) - 1);
			return -EINVAL;
		}
		a.is_unix = true;
		strcpy(a.path, spec + 5);
		goto done;
	}
	colon = strrchr(spec, ':');
	if (!colon) {
		snprintf(err, errlen, "vnc: '%s' is not ADDR:PORT or unix:PATH", spec);
		return -EINVAL;
	}
	hl = (size_t)(colon - spec);
	if (hl >= 2 && spec[0] == '[' && spec[hl - 1] == ']') {
		spec++;			/* [IPv6] */
		hl -= 2;
	}
	if (hl >= sizeof(a.host)) {
		snprintf(err, errlen, "vnc: address in '%s' is too long", spec);
		return -EINVAL;
	}
	memcpy(a.host, spec, hl);
	a.host[hl] = '\0';
	if (!*a.host || !strcmp(a.host, "localhost"))
		strcpy(a.host, "127.0.0.1");
	errno = 0;
	port = strtoul(colon + 1, &end, 10);
	if (!isdigit((unsigned char)colon[1]) || *end || errno || port < 1 || port > 65535) {
		snprintf(err, errlen, "vnc: port '%s' is not a number from 1 to 65535",
			 colon + 1);
		return -EINVAL;
	}
	a.port = (unsigned)port;
	if (getaddrinfo(a.host, NULL, &hints, &ai)) {
		snprintf(err, errlen, "vnc: '%s' is not a numeric address (use e.g. 127.0.0.1:5900)",
			 a.host);
		return -EINVAL;
	}
	freeaddrinfo(ai);
done:
	if (out)
		*out = a;
	return 0;
}

int vnc_password_read(const char *path, char *pw, size_t len, char *err,
		      size_t errlen)
{
	char buf[VNC_PASSWORD_FILE_MAX];
	size_t got = 0, n;
	struct stat st;
	int fd, e;

	/* O_NONBLOCK: opening a FIFO nobody writes would block for good. */
	fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		e = errno;
		snprintf(err, errlen, "VNC password file '%s': %s", path, strerror(e));
		return -e;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "VNC password file '%s' is not a regular file", path);
		close(fd);
		return -EINVAL;
	}
	while (got < sizeof(buf)) {
		ssize_t r = read(fd, buf + got, sizeof(buf) - got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			e = errno;
			snprintf(err, errlen, "VNC password file '%s': %s", path, strerror(e));
			close(fd);
			return -e;
		}
		if (r == 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	for (n = 0; n < got && buf[n] != '\n' && buf[n] != '\r' && buf[n]; n++)
		;
	if (!n || n >= len || (n < got && !buf[n])) {
		snprintf(err, errlen, "VNC password file '%s': the first line must hold a password of 1-%zu characters",
			 path, len ? len - 1 : 0);
		explicit_bzero(buf, sizeof(buf));
		return -EINVAL;
	}
	memcpy(pw, buf, n);
	pw[n] = '\0';
	explicit_bzero(buf, sizeof(buf));
	return 0;
}

int parse_vga(const char *s, struct machine_config *cfg)
{
	if (!strcmp(s, "std") || !strcmp(s, "virtio")) {
		cfg->no_vga = false;
		cfg->virtio_gpu = !strcmp(s, "virtio");
	} else if (!strcmp(s, "none")) {
		cfg->no_vga = true;
		cfg->virtio_gpu = false;
	} else {
		return -EINVAL;
	}
	return 0;
}
