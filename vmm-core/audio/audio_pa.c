// SPDX-License-Identifier: MIT
/*
 * vmm-core/audio/audio_pa.c - the PulseAudio backend (audio.h): libpulse's
 * asynchronous API on a pa_threaded_mainloop, one client per VM named
 * "vivarium: NAME" with a playback and a record stream.  PipeWire's pulse
 * server speaks the same protocol.
 *
 * Formats pass through: the guest's U8, S16LE or S32LE (20/24-bit samples
 * in 32-bit containers), its rate and channel count become the stream's
 * sample spec, and the server converts to the sink's format if it must.
 * Nothing is converted here.
 *
 * Latency: the playback stream asks for a 40 ms target (tlength) and the
 * device writes only what pa_stream_writable_size() allows, so the server's
 * clock paces the guest and at most ~40 ms + one device tick is queued.
 * Recording keeps at most 100 ms queued: older fragments are dropped.
 * A paused machine corks both streams (and a stream opened while paused
 * starts corked); on resume the record stream is flushed first, so the
 * guest does not hear the paused time replayed.
 * While a playback stream is being created (a server round trip: tens of
 * ms on a loaded host) the space is 0, so that the start of what the
 * guest plays waits instead of being thrown away (the device bounds the
 * wait: HDA_STALL_NS).
 *
 * The mainloop runs on its own thread (SIGSYS unblocked there, for the
 * sandbox: see unblock_sigsys()); the device calls in with the
 * device lock held and takes the mainloop lock inside it, never the other
 * way round.  No server (or it goes away): one log line, the device sees a
 * backend that takes everything and records nothing (the DMA advances at
 * the real rate), and a reconnect follows after 1 s, doubling to 30 s.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pulse/pulseaudio.h>

#include "audio.h"
#include "../log.h"

#define TARGET_LATENCY_US	40000
#define RECORD_FRAGMENT_US	10000
#define RECORD_MAX_US		100000
#define BACKOFF_MIN_MS		1000
#define BACKOFF_MAX_MS		30000

struct pa_be {
	struct audio_backend be;
	pa_threaded_mainloop *ml;
	pa_context *ctx;
	char *client;			/* "vivarium: NAME" */
	pa_stream *st[2];
	bool want[2];			/* the device started this direction */
	struct audio_format fmt[2];
	pa_time_event *retry;
	unsigned backoff_ms;
	bool down_logged;		/* one line per outage */
	const char *volatile state;
	/* Recording: the fragment pa_stream_peek() gave, partly read. */
	const uint8_t *peek;
	size_t peek_len, peek_off;
	bool sigsys_ok;			/* unblock_sigsys() ran */
	bool paused;			/* audio_set_paused(): streams corked */
};

static void connect_ctx(struct pa_be *p);

static pa_sample_format_t pa_format(enum audio_sample s)
{
	return s == AUDIO_U8 ? PA_SAMPLE_U8 :
	       s == AUDIO_S16LE ? PA_SAMPLE_S16LE : PA_SAMPLE_S32LE;
}

/* Recording: give back the fragment being read. */
static void peek_drop(struct pa_be *p)
{
	if (p->st[AUDIO_IN] && p->peek_len)
		pa_stream_drop(p->st[AUDIO_IN]);
	p->peek = NULL;
	p->peek_len = p->peek_off = 0;
}

static void stream_drop(struct pa_be *p, enum audio_dir d)
{
	if (!p->st[d])
		return;
	if (d == AUDIO_IN)
		peek_drop(p);
	pa_stream_set_state_callback(p->st[d], NULL, NULL);
	pa_stream_disconnect(p->st[d]);
	pa_stream_unref(p->st[d]);
	p->st[d] = NULL;
}

/* With the mainloop lock, the context ready. */
static void stream_open(struct pa_be *p, enum audio_dir d)
{
	const struct audio_format *f = &p->fmt[d];
	pa_sample_spec ss = {
		.format = pa_format(f->sample), .rate = f->rate,
		.channels = f->channels,
	};
	pa_channel_map map;
	pa_buffer_attr attr = {
		.maxlength = (uint32_t)-1, .tlength = (uint32_t)-1,
		.prebuf = (uint32_t)-1, .minreq = (uint32_t)-1,
		.fragsize = (uint32_t)-1,
	};
	pa_proplist *pl = pa_proplist_new();
	pa_stream_flags_t corked = p->paused ? PA_STREAM_START_CORKED : 0;
	int r;

	stream_drop(p, d);
	if (!pa_sample_spec_valid(&ss) ||
	    !pa_channel_map_init_extend(&map, f->channels, PA_CHANNEL_MAP_DEFAULT)) {
		vlog_ratelimited(LOG_WARN, "audio: pulseaudio: %u Hz x %u channels is not a valid stream",
				 f->rate, f->channels);
		pa_proplist_free(pl);
		return;
	}
	pa_proplist_sets(pl, PA_PROP_MEDIA_ROLE, d == AUDIO_OUT ? "game" : "phone");
	p->st[d] = pa_stream_new_with_proplist(p->ctx,
					       d == AUDIO_OUT ? "playback" : "record",
					       &ss, &map, pl);
	pa_proplist_free(pl);
	if (!p->st[d])
		return;
	if (d == AUDIO_OUT) {
		attr.tlength = (uint32_t)pa_usec_to_bytes(TARGET_LATENCY_US, &ss);
		attr.prebuf = attr.tlength / 2;
		r = pa_stream_connect_playback(p->st[d], NULL, &attr,
					       PA_STREAM_ADJUST_LATENCY | corked, NULL,
					       NULL);
	} else {
		attr.fragsize = (uint32_t)pa_usec_to_bytes(RECORD_FRAGMENT_US, &ss);
		r = pa_stream_connect_record(p->st[d], NULL, &attr,
					     PA_STREAM_ADJUST_LATENCY | corked);
	}
	if (r < 0) {
		vlog_ratelimited(LOG_WARN, "audio: pulseaudio: cannot connect the %s stream: %s",
				 d == AUDIO_OUT ? "playback" : "record",
				 pa_strerror(pa_context_errno(p->ctx)));
		pa_stream_unref(p->st[d]);
		p->st[d] = NULL;
	}
}

static bool stream_ready(struct pa_be *p, enum audio_dir d)
{
	return p->st[d] && pa_stream_get_state(p->st[d]) == PA_STREAM_READY;
}

static void retry_cb(pa_mainloop_api *api, pa_time_event *e,
		     const struct timeval *tv, void *opaque)
{
	struct pa_be *p = opaque;

	(void)tv;
	api->time_free(e);
	p->retry = NULL;
	connect_ctx(p);
}

static void schedule_retry(struct pa_be *p)
{
	struct timeval tv;
	pa_mainloop_api *api = pa_threaded_mainloop_get_api(p->ml);

	if (p->retry)
		return;
	pa_gettimeofday(&tv);
	pa_timeval_add(&tv, (pa_usec_t)p->backoff_ms * 1000);
	p->retry = api->time_new(api, &tv, retry_cb, p);
	p->backoff_ms = p->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS
							   : p->backoff_ms * 2;
}

static void context_state_cb(pa_context *c, void *opaque)
{
	struct pa_be *p = opaque;

	switch (pa_context_get_state(c)) {
	case PA_CONTEXT_READY:
		if (p->down_logged)
			vlog(LOG_INFO, "audio: connected to PulseAudio again");
		p->down_logged = false;
		p->backoff_ms = BACKOFF_MIN_MS;
		p->state = "connected";
		for (int d = 0; d < 2; d++)
			if (p->want[d])
				stream_open(p, (enum audio_dir)d);
		break;
	case PA_CONTEXT_FAILED:
	case PA_CONTEXT_TERMINATED:
		if (!p->down_logged)
			vlog(LOG_WARN, "audio: no PulseAudio server (%s): the sound card stays silent; retrying",
			     pa_strerror(pa_context_errno(c)));
		p->down_logged = true;
		p->state = "unavailable";
		schedule_retry(p);
		break;
	default:
		break;
	}
}

/* A new context (the old one, failed, goes with its streams). */
static void connect_ctx(struct pa_be *p)
{
	pa_proplist *pl = pa_proplist_new();

	stream_drop(p, AUDIO_OUT);
	stream_drop(p, AUDIO_IN);
	if (p->ctx) {
		pa_context_set_state_callback(p->ctx, NULL, NULL);
		pa_context_disconnect(p->ctx);
		pa_context_unref(p->ctx);
	}
	pa_proplist_sets(pl, PA_PROP_APPLICATION_NAME, p->client);
	pa_proplist_sets(pl, PA_PROP_APPLICATION_ID, "org.vivarium.vm");
	p->ctx = pa_context_new_with_proplist(pa_threaded_mainloop_get_api(p->ml),
					      p->client, pl);
	pa_proplist_free(pl);
	if (!p->ctx) {
		schedule_retry(p);
		return;
	}
	p->state = "connecting";
	pa_context_set_state_callback(p->ctx, context_state_cb, p);
	if (pa_context_connect(p->ctx, NULL, PA_CONTEXT_NOAUTOSPAWN, NULL) < 0)
		context_state_cb(p->ctx, p);
}

static int pa_start(struct audio_backend *be, enum audio_dir d,
		    const struct audio_format *f)
{
	struct pa_be *p = (struct pa_be *)be;

	pa_threaded_mainloop_lock(p->ml);
	p->want[d] = true;
	p->fmt[d] = *f;
	if (p->ctx && pa_context_get_state(p->ctx) == PA_CONTEXT_READY)
		stream_open(p, d);
	pa_threaded_mainloop_unlock(p->ml);
	return 0;
}

static void pa_stop(struct audio_backend *be, enum audio_dir d)
{
	struct pa_be *p = (struct pa_be *)be;

	pa_threaded_mainloop_lock(p->ml);
	p->want[d] = false;
	stream_drop(p, d);
	pa_threaded_mainloop_unlock(p->ml);
}

/* The stream being created: nothing yet (the DMA waits rather than the
 * guest's first sound being dropped; the device bounds that wait).
 * Otherwise not ready (no server, a stream that failed): everything, so
 * the DMA advances. */
static size_t pa_space(struct audio_backend *be)
{
	struct pa_be *p = (struct pa_be *)be;
	size_t n = SIZE_MAX;

	pa_threaded_mainloop_lock(p->ml);
	if (stream_ready(p, AUDIO_OUT)) {
		n = pa_stream_writable_size(p->st[AUDIO_OUT]);
		if (n == (size_t)-1)
			n = 0;
	} else if (p->st[AUDIO_OUT] &&
		   pa_stream_get_state(p->st[AUDIO_OUT]) == PA_STREAM_CREATING) {
		n = 0;
	}
	pa_threaded_mainloop_unlock(p->ml);
	return n;
}

static size_t pa_write(struct audio_backend *be, const void *buf, size_t len)
{
	struct pa_be *p = (struct pa_be *)be;

	pa_threaded_mainloop_lock(p->ml);
	if (stream_ready(p, AUDIO_OUT)) {
		size_t n = pa_stream_writable_size(p->st[AUDIO_OUT]);

		if (n != (size_t)-1 && n)
			pa_stream_write(p->st[AUDIO_OUT], buf, len < n ? len : n,
					NULL, 0, PA_SEEK_RELATIVE);
	}
	pa_threaded_mainloop_unlock(p->ml);
	return len;
}

static size_t pa_read(struct audio_backend *be, void *buf, size_t len)
{
	struct pa_be *p = (struct pa_be *)be;
	pa_stream *s;
	size_t done = 0, max;

	pa_threaded_mainloop_lock(p->ml);
	s = p->st[AUDIO_IN];
	if (!stream_ready(p, AUDIO_IN))
		goto out;
	/* Bound the latency: drop whole fragments beyond RECORD_MAX_US. */
	max = pa_usec_to_bytes(RECORD_MAX_US, pa_stream_get_sample_spec(s));
	while (!p->peek_len && pa_stream_readable_size(s) != (size_t)-1 &&
	       pa_stream_readable_size(s) > max) {
		const void *d;
		size_t n;

		if (pa_stream_peek(s, &d, &n) < 0 || !n)
			break;
		pa_stream_drop(s);
	}
	while (done < len) {
		size_t n;

		if (!p->peek_len) {
			const void *d;

			if (pa_stream_peek(s, &d, &p->peek_len) < 0 || !p->peek_len) {
				p->peek_len = 0;
				break;
			}
			p->peek = d;	/* NULL: a hole, read as silence */
			p->peek_off = 0;
		}
		n = p->peek_len - p->peek_off;
		if (n > len - done)
			n = len - done;
		if (p->peek)
			memcpy((uint8_t *)buf + done, p->peek + p->peek_off, n);
		else
			memset((uint8_t *)buf + done, 0, n);
		done += n;
		p->peek_off += n;
		if (p->peek_off == p->peek_len) {
			pa_stream_drop(s);
			p->peek = NULL;
			p->peek_len = p->peek_off = 0;
		}
	}
out:
	pa_threaded_mainloop_unlock(p->ml);
	return done;
}

static void cork(struct pa_be *p, enum audio_dir d, bool on)
{
	pa_operation *o;

	if (!stream_ready(p, d))
		return;	/* one being created starts as p->paused says */
	o = pa_stream_cork(p->st[d], on, NULL, NULL);
	if (o)
		pa_operation_unref(o);
}

static void pa_pause(struct audio_backend *be, bool paused)
{
	struct pa_be *p = (struct pa_be *)be;

	pa_threaded_mainloop_lock(p->ml);
	p->paused = paused;
	if (!paused && stream_ready(p, AUDIO_IN)) {
		pa_operation *o;

		peek_drop(p);
		o = pa_stream_flush(p->st[AUDIO_IN], NULL, NULL);
		if (o)
			pa_operation_unref(o);
	}
	cork(p, AUDIO_OUT, paused);
	cork(p, AUDIO_IN, paused);
	pa_threaded_mainloop_unlock(p->ml);
}

static const char *pa_state(struct audio_backend *be)
{
	return ((struct pa_be *)be)->state;
}

static void pa_free(struct audio_backend *be)
{
	struct pa_be *p = (struct pa_be *)be;

	pa_threaded_mainloop_lock(p->ml);
	stream_drop(p, AUDIO_OUT);
	stream_drop(p, AUDIO_IN);
	if (p->retry)
		pa_threaded_mainloop_get_api(p->ml)->time_free(p->retry);
	if (p->ctx) {
		pa_context_set_state_callback(p->ctx, NULL, NULL);
		pa_context_disconnect(p->ctx);
		pa_context_unref(p->ctx);
	}
	pa_threaded_mainloop_unlock(p->ml);
	pa_threaded_mainloop_stop(p->ml);
	pa_threaded_mainloop_free(p->ml);
	free(p->client);
	free(p);
}

static const struct audio_backend_ops pa_ops = {
	.name = "pa", .start = pa_start, .stop = pa_stop, .space = pa_space,
	.write = pa_write, .read = pa_read, .pause = pa_pause, .state = pa_state,
	.free = pa_free,
};

/* On the mainloop's thread, first thing: libpulse blocks every signal
 * there, but the VM process's sandbox restricts running threads by
 * sending them SIGSYS (sandbox.h), so that one must get through. */
static void unblock_sigsys(pa_mainloop_api *api, void *opaque)
{
	struct pa_be *p = opaque;
	sigset_t set;

	(void)api;
	sigemptyset(&set);
	sigaddset(&set, SIGSYS);
	pthread_sigmask(SIG_UNBLOCK, &set, NULL);
	p->sigsys_ok = true;
	pa_threaded_mainloop_signal(p->ml, 0);
}

struct audio_backend *audio_pa_new(const char *vm_name)
{
	struct pa_be *p = calloc(1, sizeof(*p));

	if (!p)
		return NULL;
	p->be.ops = &pa_ops;
	p->backoff_ms = BACKOFF_MIN_MS;
	p->state = "connecting";
	if (asprintf(&p->client, "vivarium: %s", vm_name ? vm_name : "vm") < 0) {
		free(p);
		return NULL;
	}
	p->ml = pa_threaded_mainloop_new();
	if (!p->ml) {
		free(p->client);
		free(p);
		return NULL;
	}
	pa_threaded_mainloop_set_name(p->ml, "pulseaudio");
	pa_threaded_mainloop_lock(p->ml);
	pa_mainloop_api_once(pa_threaded_mainloop_get_api(p->ml), unblock_sigsys, p);
	connect_ctx(p);
	pa_threaded_mainloop_unlock(p->ml);
	if (pa_threaded_mainloop_start(p->ml) < 0) {
		pa_threaded_mainloop_lock(p->ml);
		if (p->ctx)
			pa_context_unref(p->ctx);
		pa_threaded_mainloop_unlock(p->ml);
		pa_threaded_mainloop_free(p->ml);
		free(p->client);
		free(p);
		return NULL;
	}
	pa_threaded_mainloop_lock(p->ml);
	while (!p->sigsys_ok)
		pa_threaded_mainloop_wait(p->ml);
	pa_threaded_mainloop_unlock(p->ml);
	return &p->be;
}

static void probe_state_cb(pa_context *c, void *opaque)
{
	int *st = opaque;

	switch (pa_context_get_state(c)) {
	case PA_CONTEXT_READY:
		*st = 1;
		break;
	case PA_CONTEXT_FAILED:
	case PA_CONTEXT_TERMINATED:
		*st = -1;
		break;
	default:
		break;
	}
}

bool audio_pa_server_reachable(void)
{
	pa_mainloop *ml = pa_mainloop_new();
	pa_context *c;
	pa_usec_t deadline;
	int st = 0;

	if (!ml)
		return false;
	c = pa_context_new(pa_mainloop_get_api(ml), "vivarium: probe");
	if (c) {
		pa_context_set_state_callback(c, probe_state_cb, &st);
		if (pa_context_connect(c, NULL, PA_CONTEXT_NOAUTOSPAWN, NULL) < 0)
			st = -1;
		/* At most 1 s (a server that accepts and never answers). */
		deadline = pa_rtclock_now() + PA_USEC_PER_SEC;
		while (!st) {
			pa_usec_t now = pa_rtclock_now();

			if (now >= deadline ||
			    pa_mainloop_prepare(ml, (int)((deadline - now) / 1000) + 1) < 0 ||
			    pa_mainloop_poll(ml) < 0 || pa_mainloop_dispatch(ml) < 0)
				break;
		}
		/* Disconnecting calls it with TERMINATED: not an answer. */
		pa_context_set_state_callback(c, NULL, NULL);
		pa_context_disconnect(c);
		pa_context_unref(c);
	}
	pa_mainloop_free(ml);
	return st == 1;
}
