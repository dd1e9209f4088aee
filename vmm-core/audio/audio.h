/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/audio/audio.h - a sound card's host side: one playback and one
 * record stream, in the sample format the guest chose.
 *
 * The device moves PCM bytes on its own timer (hda.c), at the sample rate
 * by the machine's clock, and asks the backend how much it takes now
 * (audio_space()): a backend with its own clock (PulseAudio) so decides
 * how much is consumed, which keeps latency bounded and follows the sound
 * card's drift instead of the host's.  A backend without a server takes
 * and gives nothing, and the device moves silence at the real rate.
 *
 * A backend is made by the program before the machine and freed after it
 * (it outlives resets).  Its functions are thread-safe: the device calls
 * them from its timer thread with the device lock held, the control
 * socket calls audio_set_mute()/audio_status() from the main loop.
 */
#ifndef VIVARIUM_AUDIO_H
#define VIVARIUM_AUDIO_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum audio_dir { AUDIO_OUT = 0, AUDIO_IN = 1 };

/* Little-endian PCM as HDA streams carry it (HDA 1.0a §4.5.1): 8-bit
 * unsigned, 16-bit signed, and 20/24/32-bit samples in 32-bit containers,
 * MSB-aligned (so all three are S32LE to the host). */
enum audio_sample { AUDIO_U8 = 0, AUDIO_S16LE, AUDIO_S32LE };

struct audio_format {
	enum audio_sample sample;
	uint32_t rate;			/* frames per second, 1..192000 */
	uint8_t channels;		/* 1..16 */
};

/* Bytes per frame of @f (sample bytes x channels). */
unsigned audio_frame_bytes(const struct audio_format *f);

/*
 * audio_apply_gain - scale the samples of @len bytes of @f's PCM at @buf
 * in place: channel 0, 2, ... by @gain[0], 1, 3, ... by @gain[1] (Q16:
 * 0x10000 leaves a sample as it is, 0 silences it; an attenuation only, as
 * the HDA codec's amps are: a gain above 0x10000 counts as 0x10000, so a
 * sample never leaves its range).  @phase is @buf's byte offset within a
 * frame (the stream's position modulo the frame size); bytes of a sample
 * cut at either end are left alone.  No guest value is trusted beyond
 * @f, which the caller checked.
 */
void audio_apply_gain(const struct audio_format *f, void *buf, size_t len,
		      unsigned phase, const uint32_t gain[2]);

struct audio_backend;

struct audio_backend_ops {
	const char *name;		/* "pa", "none", ... */
	/* Open (or reopen with a new format) the stream of @dir.  Returns 0
	 * or -errno; a backend without a server returns 0 and stays silent. */
	int (*start)(struct audio_backend *be, enum audio_dir dir,
		     const struct audio_format *f);
	void (*stop)(struct audio_backend *be, enum audio_dir dir);
	/* Playback: bytes the backend takes now (SIZE_MAX: no limit). */
	size_t (*space)(struct audio_backend *be);
	/* Playback: queue @len bytes; returns the bytes taken. */
	size_t (*write)(struct audio_backend *be, const void *buf, size_t len);
	/* Record: up to @len bytes captured so far; returns the count (the
	 * device pads the rest with silence). */
	size_t (*read)(struct audio_backend *be, void *buf, size_t len);
	/* One word for status: "connected", "connecting", "unavailable"... */
	const char *(*state)(struct audio_backend *be);
	void (*free)(struct audio_backend *be);
	/* The machine paused (true) or runs again (false): hold the streams
	 * where they are (PulseAudio: cork), so the server neither plays an
	 * underrun nor records what the paused guest would never read.
	 * NULL: nothing to hold. */
	void (*pause)(struct audio_backend *be, bool paused);
};

struct audio_backend {
	const struct audio_backend_ops *ops;
	atomic_bool muted;		/* audio_set_mute() */
	atomic_bool playing;		/* a playback stream is started */
	atomic_bool recording;
	atomic_bool paused;		/* audio_set_paused() */
};

/* The silent backend of --audio none: takes everything, records silence. */
struct audio_backend *audio_null_new(void);

/* The PulseAudio backend (audio_pa.c), a client named "vivarium: @vm_name"
 * with a playback and a record stream.  A missing server is no error: it
 * logs one line and retries with backoff (1 s doubling to 30 s).  NULL
 * only when out of memory or the mainloop thread cannot start. */
struct audio_backend *audio_pa_new(const char *vm_name);
/* Whether a PulseAudio server answers now (connect, within ~1 s): for a
 * new VM's default (vm.conf audio=pa or none). */
bool audio_pa_server_reachable(void);

/* NULL-safe. */
void audio_backend_free(struct audio_backend *be);

/* Device side: the wrappers hda.c calls (NULL @be: no host side). */
int audio_start(struct audio_backend *be, enum audio_dir dir,
		const struct audio_format *f);
void audio_stop(struct audio_backend *be, enum audio_dir dir);
size_t audio_space(struct audio_backend *be);
/* Muted: silence of @len bytes goes out instead of @buf. */
size_t audio_write(struct audio_backend *be, const void *buf, size_t len);
/* Muted: the capture is read (and dropped) and 0 returned. */
size_t audio_read(struct audio_backend *be, void *buf, size_t len);

/* Control side: mute both directions (the guest sees its card unchanged
 * and its DMA advancing; the host hears and records silence). */
void audio_set_mute(struct audio_backend *be, bool mute);
bool audio_muted(struct audio_backend *be);
/* Machine side: the vCPUs and the machine's clock stopped (@paused true)
 * or run again.  A paused backend holds its streams (corked: the server
 * plays and records nothing for the VM, what was queued stays queued) and
 * a stream opened meanwhile starts held; on resume, playback goes on
 * from where it stood and recording starts from now (what was captured
 * before the pause is dropped).  NULL-safe; no guest input. */
void audio_set_paused(struct audio_backend *be, bool paused);
bool audio_paused(struct audio_backend *be);
/* For status: backend name, state word, whether a stream plays/records. */
void audio_status(struct audio_backend *be, const char **name,
		  const char **state, bool *playing, bool *recording);

#endif
