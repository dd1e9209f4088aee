// SPDX-License-Identifier: MIT
/* vmm-core/audio/audio.c - the backend wrappers and the null backend
 * (audio.h). */
#include <endian.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audio.h"

unsigned audio_frame_bytes(const struct audio_format *f)
{
	static const unsigned bytes[] = { 1, 2, 4 };

	return (f->sample <= AUDIO_S32LE ? bytes[f->sample] : 4) * f->channels;
}

void audio_apply_gain(const struct audio_format *f, void *buf, size_t len,
		      unsigned phase, const uint32_t gain[2])
{
	unsigned sb = f->sample == AUDIO_U8 ? 1 : f->sample == AUDIO_S16LE ? 2 : 4;
	unsigned fb = sb * f->channels;
	int64_t half = (int64_t)1 << (8 * sb - 1);	/* 128, 32768, 2^31 */
	uint8_t *p = buf;
	size_t i = 0;

	if (!fb || phase >= fb)
		return;
	/* To the next sample's start. */
	if (phase % sb) {
		i = sb - phase % sb;
		phase += (unsigned)i;
	}
	for (; i + sb <= len; i += sb, phase = (phase + sb) % fb) {
		uint32_t g = gain[(phase / sb) & 1];
		int64_t v = 0;

		/* Little-endian, signed around zero (U8 is offset by 128). */
		for (unsigned b = sb; b--;)
			v = v << 8 | p[i + b];
		v -= f->sample == AUDIO_U8 ? half : v >= half ? 2 * half : 0;
		/* An attenuation (g <= 1.0) never leaves the sample's range. */
		v = v * (g < 0x10000 ? g : 0x10000) / 0x10000;
		if (f->sample == AUDIO_U8)
			v += half;
		for (unsigned b = 0; b < sb; b++)
			p[i + b] = (uint8_t)((uint64_t)v >> (8 * b));
	}
}

int audio_start(struct audio_backend *be, enum audio_dir dir,
		const struct audio_format *f)
{
	if (!be)
		return 0;
	atomic_store(dir == AUDIO_OUT ? &be->playing : &be->recording, true);
	return be->ops->start(be, dir, f);
}

void audio_stop(struct audio_backend *be, enum audio_dir dir)
{
	if (!be)
		return;
	atomic_store(dir == AUDIO_OUT ? &be->playing : &be->recording, false);
	be->ops->stop(be, dir);
}

size_t audio_space(struct audio_backend *be)
{
	return be ? be->ops->space(be) : SIZE_MAX;
}

size_t audio_write(struct audio_backend *be, const void *buf, size_t len)
{
	static const uint8_t zero[4096];
	size_t done = 0;

	if (!be)
		return len;
	if (!atomic_load(&be->muted))
		return be->ops->write(be, buf, len);
	/* U8 silence is 0x80, but a muted U8 stream clicking once is fine:
	 * zeros are silence for the signed formats guests use. */
	while (done < len) {
		size_t n = len - done < sizeof(zero) ? len - done : sizeof(zero);
		size_t w = be->ops->write(be, zero, n);

		done += w;
		if (w < n)
			break;
	}
	return done;
}

size_t audio_read(struct audio_backend *be, void *buf, size_t len)
{
	size_t n;

	if (!be)
		return 0;
	n = be->ops->read(be, buf, len);
	return atomic_load(&be->muted) ? 0 : n;
}

void audio_set_mute(struct audio_backend *be, bool mute)
{
	if (be)
		atomic_store(&be->muted, mute);
}

bool audio_muted(struct audio_backend *be)
{
	return be && atomic_load(&be->muted);
}

void audio_set_paused(struct audio_backend *be, bool paused)
{
	if (!be || atomic_exchange(&be->paused, paused) == paused)
		return;
	if (be->ops->pause)
		be->ops->pause(be, paused);
}

bool audio_paused(struct audio_backend *be)
{
	return be && atomic_load(&be->paused);
}

void audio_status(struct audio_backend *be, const char **name,
		  const char **state, bool *playing, bool *recording)
{
	*name = be ? be->ops->name : "none";
	*state = be ? be->ops->state(be) : "off";
	*playing = be && atomic_load(&be->playing);
	*recording = be && atomic_load(&be->recording);
}

void audio_backend_free(struct audio_backend *be)
{
	if (be)
		be->ops->free(be);
}

/* ---- the null backend ---------------------------------------------------- */

static int null_start(struct audio_backend *be, enum audio_dir dir,
		      const struct audio_format *f)
{
	(void)be; (void)dir; (void)f;
	return 0;
}

static void null_stop(struct audio_backend *be, enum audio_dir dir)
{
	(void)be; (void)dir;
}

static size_t null_space(struct audio_backend *be)
{
	(void)be;
	return SIZE_MAX;
}

static size_t null_write(struct audio_backend *be, const void *buf,
			 size_t len)
{
	(void)be; (void)buf;
	return len;
}

static size_t null_read(struct audio_backend *be, void *buf, size_t len)
{
	(void)be; (void)buf; (void)len;
	return 0;
}

static const char *null_state(struct audio_backend *be)
{
	(void)be;
	return "silent";
}

static void null_free(struct audio_backend *be)
{
	free(be);
}

static const struct audio_backend_ops null_ops = {
	.name = "none", .start = null_start, .stop = null_stop,
	.space = null_space, .write = null_write, .read = null_read,
	.state = null_state, .free = null_free,
};

struct audio_backend *audio_null_new(void)
{
	struct audio_backend *be = calloc(1, sizeof(*be));

	if (be)
		be->ops = &null_ops;
	return be;
}
