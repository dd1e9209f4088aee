/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/host/swtpm.h - a software TPM 2.0: a `swtpm socket --tpm2`
 * process (Debian's swtpm package) the VMM starts and owns.  Its two
 * channels are socketpairs handed over at exec (fds 3 and 4):
 *   - control: `--ctrl type=unixio,clientfd=3`, swtpm's ptm protocol
 *     (man swtpm-ioctls, include/swtpm/tpm_ioctl.h: a big-endian command
 *     code, its request, then the response whose first 4 bytes are the
 *     TPM result) for CMD_INIT (TPM_Init: a machine reset),
 *     CMD_SET_LOCALITY, CMD_GET_CAPABILITY and CMD_SHUTDOWN;
 *   - data: `--server type=unixio,fd=4`, a raw TPM command in, its
 *     response out.
 * The TPM's state (its NV, permanent keys) is in `--tpmstate dir=`.
 *
 * Every exchange has a timeout; a timeout, a short read or swtpm's death
 * marks the TPM failed (one warning in the log): every later command
 * fails at once with -EIO, and the VM goes on.  The process is in its own
 * process group (the terminal's ^C reaches the VMM only), ends when the
 * data channel closes (--terminate: the VMM died, sandboxed or not; also
 * PR_SET_PDEATHSIG) and is reaped by swtpm_stop().
 */
#ifndef VIVARIUM_HOST_SWTPM_H
#define VIVARIUM_HOST_SWTPM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct swtpm;
struct tpm_backend;

#define SWTPM_CMD_TIMEOUT_MS	30000	/* a TPM command (RSA keygen: s) */
#define SWTPM_CTRL_TIMEOUT_MS	10000	/* a control command */

/* The swtpm program found on PATH (a new string), or NULL. */
char *swtpm_find(void);

/*
 * swtpm_start - start swtpm on the state folder @state_dir (created 0700
 * if missing; swtpm makes its files there), wait for its control channel
 * to answer CMD_GET_CAPABILITY and send CMD_INIT.  Call before the
 * sandbox (it forks and execs).  Returns 0 and *@out, or -errno with one
 * line in @err: -ENOENT when swtpm is not installed, -EIO when it does
 * not come up (its own message is in the log).
 */
int swtpm_start(const char *state_dir, struct swtpm **out, char *err,
		size_t errlen);

/*
 * swtpm_start_as - swtpm_start(), with swtpm running as @user (NULL: as
 * this process), as vm.conf's run-as=USER makes the VM process: @state_dir
 * and its files become @user's (the folders above may stay closed to
 * @user: swtpm works in @state_dir and names it "."), and swtpm gets
 * @user's uid, primary gid and groups before it runs.  Needs root for a
 * user other than this process's.  Errors as swtpm_start(), and -ENOENT
 * for an unknown @user, -EPERM when the folder cannot be given to @user.
 */
int swtpm_start_as(const char *state_dir, const char *user,
		   struct swtpm **out, char *err, size_t errlen);

/*
 * swtpm_stop - CMD_SHUTDOWN (swtpm writes its state and exits), then reap
 * the process (SIGKILL after 2 s), close the channels and free.
 * NULL-safe.
 */
void swtpm_stop(struct swtpm *s);

/* swtpm_init - CMD_INIT: the TPM's power-on (TPM_Init), as at a machine
 * reset: PCRs back to their reset values; the guest's firmware sends
 * TPM2_Startup next.  0, or -EIO (the TPM failed). */
int swtpm_init(struct swtpm *s);

/*
 * swtpm_transmit - run TPM command @cmd (@len bytes) in @locality (0-4;
 * CMD_SET_LOCALITY first when it changed) and read its response into
 * @rsp (@rsp_max bytes) within @timeout_ms.  Returns the response length,
 * or -EIO (the TPM failed, now or before), -EMSGSIZE (response larger
 * than @rsp_max: the stream is then out of step, so the TPM is failed
 * too), -EINVAL (bad arguments).  Thread-safe (one exchange at a time).
 */
long swtpm_transmit(struct swtpm *s, unsigned locality, const uint8_t *cmd,
		    size_t len, uint8_t *rsp, size_t rsp_max, int timeout_ms);

/*
 * The TPM's state for a machine save (swtpm-ioctls(3)):
 * SWTPM_STATE_TYPE is (permanent blob, volatile blob, savestate blob),
 * as swtpm hands them out (CMD_GET_STATEBLOB, decrypted; the savestate one
 * empty when the TPM has none); each at most SWTPM_BLOB_MAX bytes.
 *
 * swtpm_state_save - the blobs of the running TPM (no command may be in
 * flight: the device is quiesced); the TPM goes on running.  A new
 * floating GVariant, or NULL with one line in @err.
 *
 * swtpm_state_load - CMD_STOP, CMD_SET_STATEBLOB of each non-empty blob,
 * then CMD_INIT resuming from them (PCRs, sessions, Startup as saved;
 * swtpm writes the permanent blob to its state folder).  Checks the type
 * and the sizes first; swtpm checks the blobs.  0, or -EINVAL / -EIO with
 * one line in @err (the TPM may then be stopped: the restore fails).
 */
#define SWTPM_STATE_TYPE	"(ayayay)"
#define SWTPM_BLOB_MAX		(16u << 20)
typedef struct _GVariant GVariant;
GVariant *swtpm_state_save(struct swtpm *s, char *err, size_t errlen);
int swtpm_state_load(struct swtpm *s, GVariant *state, char *err,
		     size_t errlen);

/* The TPM failed (swtpm died or wedged): commands fail at once. */
bool swtpm_failed(struct swtpm *s);
/* swtpm's process id (tests). */
pid_t swtpm_pid(const struct swtpm *s);

/* The backend of devices/tpm_tis.h on @s (transmit with
 * SWTPM_CMD_TIMEOUT_MS). */
void swtpm_backend(struct swtpm *s, struct tpm_backend *be);

#endif
