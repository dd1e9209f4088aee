/* SPDX-License-Identifier: MIT */
/*
 * swtpm as the TPM behind the TIS (host/swtpm.h).  The control protocol is
 * swtpm's socket form of its ioctls (swtpm-ioctls(3)); a command is sent in
 * one write, as swtpm reads one message per read.
 */
#define _GNU_SOURCE
#include "swtpm.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <glib.h>

#include "../clock.h"
#include "../devices/tpm_tis.h"
#include "../log.h"
#include "../sandbox/sandbox.h"

/* swtpm's socket control commands (include/swtpm/tpm_ioctl.h). */
#define CMD_GET_CAPABILITY	0x01
#define CMD_INIT		0x02
#define CMD_SHUTDOWN		0x03
#define CMD_SET_LOCALITY	0x05
#define CMD_GET_STATEBLOB	0x0c
#define CMD_SET_STATEBLOB	0x0d
#define CMD_STOP		0x0e
#define CMD_SET_DATAFD		0x10

#define PTM_INIT_FLAG_DELETE_VOLATILE	1u
#define PTM_BLOB_TYPE_PERMANENT	1u
#define PTM_BLOB_TYPE_VOLATILE	2u
#define PTM_BLOB_TYPE_SAVESTATE	3u
#define PTM_STATE_FLAG_DECRYPTED 1u

#define PTM_CAP_INIT		(1u << 0)
#define PTM_CAP_SHUTDOWN	(1u << 1)
#define PTM_CAP_SET_LOCALITY	(1u << 3)
#define PTM_CAP_SET_DATAFD	(1u << 12)
#define PTM_CAPS_NEEDED		(PTM_CAP_INIT | PTM_CAP_SHUTDOWN | \
				 PTM_CAP_SET_LOCALITY | PTM_CAP_SET_DATAFD)

#define TPM_HDR_SIZE		10
#define NO_LOCALITY		0xffu

struct swtpm {
	pthread_mutex_t mu;	/* one exchange at a time */
	pid_t pid;
	int ctrl, data;		/* our ends of the socketpairs */
	unsigned locality;	/* last set, or NO_LOCALITY */
	bool failed;
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Wait for @events on @fd until @deadline (now_ms()).  0, -ETIMEDOUT, or
 * -EPIPE (hung up without data). */
static int wait_fd(int fd, short events, uint64_t deadline)
{
	for (;;) {
		struct pollfd p = { .fd = fd, .events = events };
		uint64_t now = now_ms();
		int r;

		if (now >= deadline)
			return -ETIMEDOUT;
		r = poll(&p, 1, (int)(deadline - now > 1000 ? 1000 : deadline - now));
		if (r < 0 && errno != EINTR)
			return -errno;
		if (r > 0) {
			if (p.revents & events)
				return 0;
			if (p.revents & (POLLHUP | POLLERR | POLLNVAL))
				return -EPIPE;
		}
	}
}

/* Send (@out) or receive all @len bytes at @buf by @deadline: 0, -ETIMEDOUT,
 * -EPIPE (the peer closed) or -errno. */
static int xfer_all(int fd, void *buf, size_t len, bool out, uint64_t deadline)
{
	uint8_t *p = buf;

	while (len) {
		ssize_t n;
		int r = wait_fd(fd, out ? POLLOUT : POLLIN, deadline);

		if (r < 0)
			return r;
		n = out ? send(fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT)
			: recv(fd, p, len, MSG_DONTWAIT);
		if (n == 0 && !out)
			return -EPIPE;
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static int write_all(int fd, const void *buf, size_t len, uint64_t deadline)
{
	return xfer_all(fd, (void *)buf, len, true, deadline);
}

static int read_all(int fd, void *buf, size_t len, uint64_t deadline)
{
	return xfer_all(fd, buf, len, false, deadline);
}

static void put_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void fail(struct swtpm *s, const char *what, int r)
{
	if (!s->failed)
		vlog(LOG_WARN, "tpm: swtpm %s: %s; the TPM answers "
		     "TPM_RC_FAILURE from now on", what, strerror(-r));
	s->failed = true;
}

/* One control command: @req (@reqlen bytes) out, @rsplen bytes back.
 * s->mu held.  0 or -errno (and the TPM failed). */
static int ctrl_locked(struct swtpm *s, uint32_t cmd, const void *req,
		       size_t reqlen, void *rsp, size_t rsplen, int timeout_ms)
{
	uint8_t msg[16];
	uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
	int r;

	if (s->failed)
		return -EIO;
	if (reqlen > sizeof(msg) - 4)
		return -EINVAL;
	msg[0] = (uint8_t)(cmd >> 24);
	msg[1] = (uint8_t)(cmd >> 16);
	msg[2] = (uint8_t)(cmd >> 8);
	msg[3] = (uint8_t)cmd;
	if (reqlen)
		memcpy(msg + 4, req, reqlen);
	r = write_all(s->ctrl, msg, 4 + reqlen, deadline);
	if (r == 0)
		r = read_all(s->ctrl, rsp, rsplen, deadline);
	if (r < 0) {
		fail(s, "control channel", r);
		return -EIO;
	}
	return 0;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

/* A command whose response is the 4-byte TPM result: 0 or -EIO. */
static int ctrl_result_locked(struct swtpm *s, uint32_t cmd, const void *req,
			      size_t reqlen, const char *what)
{
	uint8_t res[4];
	uint32_t rc;

	if (ctrl_locked(s, cmd, req, reqlen, res, sizeof(res),
			SWTPM_CTRL_TIMEOUT_MS) < 0)
		return -EIO;
	rc = be32(res);
	if (rc) {
		vlog_ratelimited(LOG_WARN, "tpm: swtpm %s: TPM result 0x%x",
				 what, rc);
		return -EIO;
	}
	return 0;
}

int swtpm_init(struct swtpm *s)
{
	static const uint8_t flags[4] = { 0, 0, 0, 0 };
	int r;

	pthread_mutex_lock(&s->mu);
	r = ctrl_result_locked(s, CMD_INIT, flags, sizeof(flags), "CMD_INIT");
	s->locality = NO_LOCALITY;
	pthread_mutex_unlock(&s->mu);
	return r;
}

long swtpm_transmit(struct swtpm *s, unsigned locality, const uint8_t *cmd,
		    size_t len, uint8_t *rsp, size_t rsp_max, int timeout_ms)
{
	uint64_t deadline;
	uint32_t size;
	long ret;
	int r;

	if (!s || !cmd || len < TPM_HDR_SIZE || !rsp ||
	    rsp_max < TPM_HDR_SIZE || locality > 4 || timeout_ms <= 0)
		return -EINVAL;
	pthread_mutex_lock(&s->mu);
	if (s->failed) {
		ret = -EIO;
		goto out;
	}
	if (s->locality != locality) {
		uint8_t loc = (uint8_t)locality;

		if (ctrl_result_locked(s, CMD_SET_LOCALITY, &loc, 1,
				       "CMD_SET_LOCALITY") < 0) {
			ret = -EIO;
			goto out;
		}
		s->locality = locality;
	}
	deadline = now_ms() + (uint64_t)timeout_ms;
	r = write_all(s->data, cmd, len, deadline);
	if (r == 0)
		r = read_all(s->data, rsp, TPM_HDR_SIZE, deadline);
	if (r < 0) {
		fail(s, r == -ETIMEDOUT ? "did not answer a command in time" :
			"data channel", r);
		ret = -EIO;
		goto out;
	}
	size = be32(rsp + 2);
	if (size < TPM_HDR_SIZE || size > rsp_max) {
		fail(s, "response size", -EMSGSIZE);
		ret = -EMSGSIZE;
		goto out;
	}
	r = read_all(s->data, rsp + TPM_HDR_SIZE, size - TPM_HDR_SIZE, deadline);
	if (r < 0) {
		fail(s, "data channel", r);
		ret = -EIO;
		goto out;
	}
	ret = (long)size;
out:
	pthread_mutex_unlock(&s->mu);
	return ret;
}

bool swtpm_failed(struct swtpm *s)
{
	bool f;

	pthread_mutex_lock(&s->mu);
	f = s->failed;
	pthread_mutex_unlock(&s->mu);
	return f;
}

pid_t swtpm_pid(const struct swtpm *s)
{
	return s->pid;
}

char *swtpm_find(void)
{
	return g_find_program_in_path("swtpm");
}

/* Who swtpm runs as (swtpm_start_as()'s @user), resolved before the fork. */
struct swtpm_cred {
	uid_t uid;
	gid_t gid;
	gid_t groups[64];
	int ngroups;
};

/* The child, between fork and exec: async-signal-safe calls only.  In
 * @dir (its state folder: swtpm then reaches it as "." whatever the
 * folders above allow its user), as @cred (NULL: as we are). */
static void child_exec(const char *path, char *const argv[], int ctrl,
		       pid_t parent, const char *dir,
		       const struct swtpm_cred *cred)
{
	sigset_t none;
	int c;

	if (chdir(dir) < 0)
		_exit(126);
	/* Before the parent-death signal: a change of credentials clears
	 * it. */
	if (cred && (setgroups((size_t)cred->ngroups, cred->groups) < 0 ||
		     setgid(cred->gid) < 0 || setuid(cred->uid) < 0))
		_exit(126);

	/* The VMM blocks signals for its sigwait thread: the mask is
	 * inherited across exec, and swtpm must see SIGTERM. */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	/* Not in the terminal's process group: ^C goes to the VMM, which
	 * shuts swtpm down in order (CMD_SHUTDOWN) after the VM. */
	setpgid(0, 0);
	/* Dies with the VMM, also by --terminate: the sandbox's Landlock
	 * domain may keep the kernel's parent-death signal from reaching a
	 * process outside it.  SIGKILL: its NV state is on disk after each
	 * change, and a clean stop is CMD_SHUTDOWN. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != parent)
		_exit(126);
	/* Out of the way of 3 first, then into place (dup2 clears
	 * close-on-exec). */
	c = fcntl(ctrl, F_DUPFD, 10);
	if (c < 0 || dup2(c, 3) < 0)
		_exit(126);
	syscall(SYS_close_range, 4u, ~0u, 0u);
	execv(path, argv);
	_exit(127);
}

/* Wait @wait_ms for swtpm to exit, then SIGKILL it; under the sandbox
 * (which allows signals to this process only) it is left to
 * PR_SET_PDEATHSIG instead. */
static void reap(pid_t pid, int wait_ms)
{
	uint64_t deadline = now_ms() + (uint64_t)wait_ms;
	int st;

	while (waitpid(pid, &st, WNOHANG) == 0) {
		if (now_ms() >= deadline) {
			if (sandbox_active()) {
				vlog(LOG_WARN, "tpm: swtpm (pid %d) did not "
				     "exit; it ends with this process", pid);
				return;
			}
			kill(pid, SIGKILL);
			waitpid(pid, &st, 0);
			return;
		}
		usleep(10000);
	}
}

/* CMD_SET_DATAFD: swtpm's end of the data socketpair, passed with
 * SCM_RIGHTS on the control channel (as QEMU's tpm-emulator does). */
static int set_datafd(struct swtpm *s, int fd)
{
	uint8_t cmd[4] = { 0, 0, 0, CMD_SET_DATAFD }, res[4];
	char cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { cmd, sizeof(cmd) };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof(cbuf),
	};
	struct cmsghdr *cm;
	int r;

	memset(cbuf, 0, sizeof(cbuf));
	cm = CMSG_FIRSTHDR(&msg);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &fd, sizeof(int));
	r = wait_fd(s->ctrl, POLLOUT, now_ms() + SWTPM_CTRL_TIMEOUT_MS);
	if (r == 0 && sendmsg(s->ctrl, &msg, MSG_NOSIGNAL) != sizeof(cmd))
		r = -EIO;
	if (r == 0)
		r = read_all(s->ctrl, res, sizeof(res),
			     now_ms() + SWTPM_CTRL_TIMEOUT_MS);
	if (r == 0 && be32(res) != 0)
		r = -EIO;
	return r;
}

/* @user's uid, primary gid and groups into @c, and @dir and the regular
 * files in it made theirs.  @user's swtpm may have put anything there on
 * an earlier run: no link is followed, and a file with a second name (a
 * hard link to a file elsewhere) is left as it is.  0, or -errno with
 * @err. */
static int cred_prepare(const char *user, const char *dir,
			struct swtpm_cred *c, char *err, size_t errlen)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	struct stat st;
	GDir *d;
	const char *name;
	int dfd, r = getpwnam_r(user, &pw, buf, sizeof(buf), &res);

	if (!res) {
		snprintf(err, errlen, "TPM: user %s: %s", user,
			 r ? strerror(r) : "no such user");
		return r ? -r : -ENOENT;
	}
	c->uid = pw.pw_uid;
	c->gid = pw.pw_gid;
	c->ngroups = (int)(sizeof(c->groups) / sizeof(c->groups[0]));
	if (getgrouplist(user, pw.pw_gid, c->groups, &c->ngroups) < 0) {
		/* More than 64: the primary group alone. */
		c->groups[0] = pw.pw_gid;
		c->ngroups = 1;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0 || fchown(dfd, c->uid, c->gid) < 0) {
		r = -errno;
		goto out;
	}
	d = g_dir_open(dir, 0, NULL);
	while (r == 0 && d && (name = g_dir_read_name(d))) {
		int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK |
				O_NOCTTY | O_CLOEXEC);

		if (fd < 0)
			continue;	/* a link: not ours to follow */
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1 &&
		    fchown(fd, c->uid, c->gid) < 0)
			r = -errno;
		close(fd);
	}
	if (d)
		g_dir_close(d);
out:
	if (dfd >= 0)
		close(dfd);
	if (r < 0)
		snprintf(err, errlen, "TPM state folder %s: cannot give it to %s: %s",
			 dir, user, strerror(-r));
	return r;
}

int swtpm_start(const char *state_dir, struct swtpm **out, char *err,
		size_t errlen)
{
	return swtpm_start_as(state_dir, NULL, out, err, errlen);
}

int swtpm_start_as(const char *state_dir, const char *user,
		   struct swtpm **out, char *err, size_t errlen)
{
	struct swtpm_cred cred;
	struct swtpm *s;
	char *path, *dirarg;
	int cp[2], dp[2];
	uint8_t caps[8];
	uint64_t c;
	pid_t parent = getpid(), pid;
	int r;

	*out = NULL;
	path = swtpm_find();
	if (!path) {
		snprintf(err, errlen, "--tpm needs swtpm, which is not "
			 "installed (Debian: apt-get install swtpm)");
		return -ENOENT;
	}
	if (g_mkdir_with_parents(state_dir, 0700) < 0) {
		r = -errno;
		snprintf(err, errlen, "TPM state folder %s: %s", state_dir,
			 strerror(-r));
		g_free(path);
		return r;
	}
	if (user && (r = cred_prepare(user, state_dir, &cred, err, errlen)) < 0) {
		g_free(path);
		return r;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, cp) < 0) {
		r = -errno;
		goto fail_path;
	}
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, dp) < 0) {
		r = -errno;
		close(cp[0]);
		close(cp[1]);
		goto fail_path;
	}
	/* Relative: the child runs in the folder (child_exec()). */
	dirarg = g_strdup("dir=.,mode=0600");
	{
		char *argv[] = {
			path, "socket", "--tpm2", "--tpmstate", dirarg,
			"--ctrl", "type=unixio,clientfd=3",
			/* Ends when the data channel closes: our end goes
			 * with this process, however it dies. */
			"--terminate",
			NULL,
		};

		pid = fork();
		if (pid == 0)
			child_exec(path, argv, cp[1], parent, state_dir,
				   user ? &cred : NULL);
	}
	r = pid < 0 ? -errno : 0;
	g_free(dirarg);
	close(cp[1]);
	if (r < 0) {
		close(cp[0]);
		close(dp[0]);
		close(dp[1]);
		goto fail_path;
	}
	g_free(path);
	s = calloc(1, sizeof(*s));
	if (!s) {
		close(cp[0]);
		close(dp[0]);
		close(dp[1]);
		kill(pid, SIGKILL);
		reap(pid, 0);
		return -ENOMEM;
	}
	pthread_mutex_init(&s->mu, NULL);
	s->pid = pid;
	s->ctrl = cp[0];
	s->data = dp[0];
	s->locality = NO_LOCALITY;
	pthread_mutex_lock(&s->mu);
	r = ctrl_locked(s, CMD_GET_CAPABILITY, NULL, 0, caps, sizeof(caps),
			SWTPM_CTRL_TIMEOUT_MS);
	pthread_mutex_unlock(&s->mu);
	if (r < 0) {
		snprintf(err, errlen, "swtpm did not start (its messages are "
			 "above, or in the VM's log)");
		close(dp[1]);
		goto fail_s;
	}
	c = (uint64_t)be32(caps) << 32 | be32(caps + 4);
	if ((c & PTM_CAPS_NEEDED) != PTM_CAPS_NEEDED) {
		snprintf(err, errlen, "swtpm lacks INIT, SHUTDOWN, "
			 "SET_LOCALITY or SET_DATAFD (capabilities 0x%llx)",
			 (unsigned long long)c);
		close(dp[1]);
		goto fail_s;
	}
	r = set_datafd(s, dp[1]);
	close(dp[1]);
	if (r < 0) {
		snprintf(err, errlen, "swtpm did not take its data channel");
		goto fail_s;
	}
	if (swtpm_init(s) < 0) {
		snprintf(err, errlen, "swtpm did not initialise its TPM "
			 "(state folder %s)", state_dir);
		goto fail_s;
	}
	*out = s;
	return 0;
fail_s:
	s->failed = true;	/* no CMD_SHUTDOWN */
	swtpm_stop(s);
	return -EIO;
fail_path:
	snprintf(err, errlen, "cannot start swtpm: %s", strerror(-r));
	g_free(path);
	return r;
}

void swtpm_stop(struct swtpm *s)
{
	uint8_t res[4];

	if (!s)
		return;
	pthread_mutex_lock(&s->mu);
	if (!s->failed)
		ctrl_locked(s, CMD_SHUTDOWN, NULL, 0, res, sizeof(res), 2000);
	pthread_mutex_unlock(&s->mu);
	close(s->ctrl);
	close(s->data);
	reap(s->pid, 2000);
	pthread_mutex_destroy(&s->mu);
	free(s);
}

/* ---- state blobs (swtpm-ioctls(3): GET/SET_STATEBLOB) ------------------- */

/* One blob of type @type: 0 and *@out (g_malloc'd, *@len bytes; NULL and 0
 * for a blob the TPM does not have, as the savestate one without a
 * TPM2_Shutdown(STATE)), or -EIO.  s->mu held. */
static int get_blob_locked(struct swtpm *s, uint32_t type, uint8_t **out,
			   uint32_t *len)
{
	uint8_t req[16], hdr[16];
	uint64_t deadline = now_ms() + SWTPM_CTRL_TIMEOUT_MS;
	uint32_t res, n;
	int r;

	*out = NULL;
	*len = 0;
	put_be32(req, CMD_GET_STATEBLOB);
	put_be32(req + 4, PTM_STATE_FLAG_DECRYPTED);
	put_be32(req + 8, type);
	put_be32(req + 12, 0);			/* offset */
	r = write_all(s->ctrl, req, sizeof(req), deadline);
	/* The result first.  swtpm 0.7 answers a blob it has not (the
	 * savestate one, 0x800) with the whole 16-byte header, but a TPM not
	 * running with the 4-byte result alone: take the rest if it comes. */
	if (r == 0)
		r = read_all(s->ctrl, hdr, 4, deadline);
	if (r < 0)
		goto broken;
	res = be32(hdr);
	if (res) {
		if (wait_fd(s->ctrl, POLLIN, now_ms() + 200) == 0 &&
		    read_all(s->ctrl, hdr + 4, 12, deadline) < 0) {
			r = -EIO;
			goto broken;
		}
		return type == PTM_BLOB_TYPE_SAVESTATE ? 0 : -EIO;
	}
	r = read_all(s->ctrl, hdr + 4, 12, deadline);
	if (r < 0)
		goto broken;
	n = be32(hdr + 12);
	if (n != be32(hdr + 8) || n > SWTPM_BLOB_MAX) {
		r = -EMSGSIZE;		/* the stream is out of step */
		goto broken;
	}
	*out = g_malloc(n ? n : 1);
	r = read_all(s->ctrl, *out, n, deadline);
	if (r < 0) {
		g_free(*out);
		*out = NULL;
		goto broken;
	}
	*len = n;
	return 0;
broken:
	fail(s, "control channel (state blob)", r);
	return -EIO;
}

static int set_blob_locked(struct swtpm *s, uint32_t type, const uint8_t *data,
			   uint32_t len)
{
	uint8_t hdr[16], res[4];
	uint64_t deadline = now_ms() + SWTPM_CTRL_TIMEOUT_MS;
	uint8_t *msg;
	int r;

	put_be32(hdr, CMD_SET_STATEBLOB);
	put_be32(hdr + 4, 0);			/* not encrypted */
	put_be32(hdr + 8, type);
	put_be32(hdr + 12, len);
	/* One write: swtpm reads a message per read. */
	msg = g_malloc(sizeof(hdr) + len);
	memcpy(msg, hdr, sizeof(hdr));
	memcpy(msg + sizeof(hdr), data, len);
	r = write_all(s->ctrl, msg, sizeof(hdr) + len, deadline);
	g_free(msg);
	if (r == 0)
		r = read_all(s->ctrl, res, sizeof(res), deadline);
	if (r < 0) {
		fail(s, "control channel (state blob)", r);
		return -EIO;
	}
	return be32(res) ? -EIO : 0;
}

GVariant *swtpm_state_save(struct swtpm *s, char *err, size_t errlen)
{
	static const uint32_t types[3] = {
		PTM_BLOB_TYPE_PERMANENT, PTM_BLOB_TYPE_VOLATILE,
		PTM_BLOB_TYPE_SAVESTATE,
	};
	GVariant *blob[3] = { NULL, NULL, NULL };
	int r = 0;

	pthread_mutex_lock(&s->mu);
	if (s->failed)
		r = -EIO;
	for (unsigned i = 0; r == 0 && i < 3; i++) {
		uint8_t *data;
		uint32_t len;

		r = get_blob_locked(s, types[i], &data, &len);
		if (r == 0)
			blob[i] = g_variant_new_from_data(G_VARIANT_TYPE_BYTESTRING,
							  data ? data : (uint8_t *)"", len,
							  TRUE, g_free, data);
	}
	pthread_mutex_unlock(&s->mu);
	if (r < 0) {
		for (unsigned i = 0; i < 3; i++)
			if (blob[i])
				g_variant_unref(g_variant_ref_sink(blob[i]));
		snprintf(err, errlen, "tpm: swtpm did not hand over its state");
		return NULL;
	}
	return g_variant_new("(@ay@ay@ay)", blob[0], blob[1], blob[2]);
}

/*
 * A restored TPM's random number generator would repeat what it gave
 * after the state was taken (a reverted guest read the same "random"
 * bytes from /dev/hwrng twice, in the rig): mix 32 bytes of the host's
 * entropy in with TPM2_StirRandom (TPM 2.0 Part 3 §16.2).  A TPM not
 * started yet answers TPM_RC_INITIALIZE; TPM2_Startup seeds it then.
 */
static void stir_random(struct swtpm *s)
{
	uint8_t cmd[TPM_HDR_SIZE + 2 + 32], rsp[64];

	cmd[0] = 0x80, cmd[1] = 0x01;			/* TPM_ST_NO_SESSIONS */
	put_be32(cmd + 2, sizeof(cmd));
	put_be32(cmd + 6, 0x00000146);			/* TPM_CC_StirRandom */
	cmd[10] = 0, cmd[11] = 32;			/* TPM2B_SENSITIVE_DATA */
	if (getrandom(cmd + 12, 32, 0) != 32)
		return;
	if (swtpm_transmit(s, 0, cmd, sizeof(cmd), rsp, sizeof(rsp),
			   SWTPM_CMD_TIMEOUT_MS) < 0)
		vlog(LOG_WARN, "tpm: cannot stir the restored TPM's random number generator");
}

int swtpm_state_load(struct swtpm *s, GVariant *state, char *err,
		     size_t errlen)
{
	static const uint32_t types[3] = {
		PTM_BLOB_TYPE_PERMANENT, PTM_BLOB_TYPE_VOLATILE,
		PTM_BLOB_TYPE_SAVESTATE,
	};
	uint8_t flags[4], res[4];
	GVariant *blob[3];
	int r = 0;

	if (!g_variant_is_of_type(state, G_VARIANT_TYPE(SWTPM_STATE_TYPE))) {
		snprintf(err, errlen, "tpm: state is of type %s, not %s",
			 g_variant_get_type_string(state), SWTPM_STATE_TYPE);
		return -EINVAL;
	}
	g_variant_get(state, "(@ay@ay@ay)", &blob[0], &blob[1], &blob[2]);
	for (unsigned i = 0; i < 3 && r == 0; i++) {
		if (g_variant_get_size(blob[i]) > SWTPM_BLOB_MAX ||
		    (i < 2 && !g_variant_get_size(blob[i]))) {
			snprintf(err, errlen, "tpm: state blob %u of %zu bytes",
				 types[i], (size_t)g_variant_get_size(blob[i]));
			r = -EINVAL;
		}
	}
	pthread_mutex_lock(&s->mu);
	if (r == 0 && s->failed) {
		snprintf(err, errlen, "tpm: swtpm has failed");
		r = -EIO;
	}
	/* CMD_STOP, the blobs (swtpm checks them: a refused one fails the
	 * load), then TPM_Init resuming from them. */
	if (r == 0 && ctrl_locked(s, CMD_STOP, NULL, 0, res, sizeof(res),
				  SWTPM_CTRL_TIMEOUT_MS) < 0)
		r = -EIO;
	for (unsigned i = 0; r == 0 && i < 3; i++) {
		gsize n = g_variant_get_size(blob[i]);

		if (!n)
			continue;
		if (set_blob_locked(s, types[i], g_variant_get_data(blob[i]),
				    (uint32_t)n) < 0) {
			snprintf(err, errlen, "tpm: swtpm refused state blob %u",
				 types[i]);
			r = -EINVAL;
		}
	}
	if (r == 0) {
		put_be32(flags, PTM_INIT_FLAG_DELETE_VOLATILE);
		if (ctrl_result_locked(s, CMD_INIT, flags, sizeof(flags),
				       "CMD_INIT") < 0) {
			snprintf(err, errlen, "tpm: swtpm did not resume from the state");
			r = -EINVAL;
		}
		s->locality = NO_LOCALITY;
	}
	pthread_mutex_unlock(&s->mu);
	for (unsigned i = 0; i < 3; i++)
		g_variant_unref(blob[i]);
	if (r == 0)
		stir_random(s);
	return r;
}

static long backend_transmit(void *opaque, unsigned locality,
			     const uint8_t *cmd, size_t len, uint8_t *rsp,
			     size_t rsp_max)
{
	return swtpm_transmit(opaque, locality, cmd, len, rsp, rsp_max,
			      SWTPM_CMD_TIMEOUT_MS);
}

void swtpm_backend(struct swtpm *s, struct tpm_backend *be)
{
	be->transmit = backend_transmit;
	be->opaque = s;
}
