/* SPDX-License-Identifier: MIT */
/*
 * tests/unit/test_hda_pa.c - the HDA controller on the PulseAudio backend
 * against a real server (Debian's pulseaudio, started by the test with a
 * null sink to play into, another whose monitor is the record source,
 * and a unix socket in a temporary
 * folder): a 1 kHz sine played from a synthetic BDL through the device is
 * recorded from the null sink's monitor with parecord, and sox finds its
 * frequency within 2 %; a 440 Hz tone paplay plays into the other sink
 * reaches the guest's buffers through the record stream; with no server the DMA still advances at the real
 * rate, and the backend reconnects once the server is there; while a
 * playback stream is being created the DMA waits (nothing is dropped).  The machine
 * timer thread and libpulse's mainloop thread are real.  About 8 s.
 * Skips (77) without pulseaudio, parecord or sox.
 */
#include <endian.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <glib.h>

#include "testlib.h"

#include "audio/audio.h"
#include "audio/hda.h"
#include "bus.h"
#include "clock.h"
#include "devices/pci.h"
#include "log.h"
#include "mem.h"
#include "timer.h"

#define RAM_SIZE	(16u << 20)
#define DEVFN		(0x1b << 3)
#define BDL_OUT		0x103000ull
#define BDL_IN		0x104000ull
#define BUF_OUT		0x200000ull
#define BUF_IN		0x300000ull
#define ENTRY_FRAMES	480		/* 10 ms at 48 kHz, 10 periods of 1 kHz */
#define ENTRIES		4
#define OUT		(HDA_SD(HDA_SD_OUT))
#define IN		(HDA_SD(HDA_SD_IN))

static struct guest_mem mem;
static struct pci_host *host;
static struct bus *pio, *mmio;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct vtimer_queue *q;
static char dir[] = "/tmp/vivarium-pa-XXXXXX";
static GPid server = -1;
static struct audio_backend *be;

static void set_pirq(void *o, unsigned p, int l) { (void)o; (void)p; (void)l; }
static int send_msi(void *o, uint64_t a, uint32_t d) { (void)o; (void)a; (void)d; return 0; }
static const struct pci_host_ops host_ops = { set_pirq, send_msi };

static uint32_t rd(struct hda *h, unsigned off, unsigned size)
{
	uint32_t v;

	pthread_mutex_lock(&lock);
	v = (uint32_t)hda_mmio_read(h, off, size);
	pthread_mutex_unlock(&lock);
	return v;
}

static void wr(struct hda *h, unsigned off, uint32_t v, unsigned size)
{
	pthread_mutex_lock(&lock);
	hda_mmio_write(h, off, v, size);
	pthread_mutex_unlock(&lock);
}

/* One verb through the immediate command registers. */
static uint32_t verb(struct hda *h, unsigned nid, unsigned v, unsigned payload)
{
	uint32_t cmd = (uint32_t)nid << 20 |
		       (v >= 0x100 ? (uint32_t)v << 8 | (payload & 0xff)
				   : (uint32_t)v << 16 | (payload & 0xffff));

	wr(h, HDA_ICOI, cmd, 4);
	wr(h, HDA_ICS, HDA_ICS_ICB, 2);
	CHECK_EQ(rd(h, HDA_ICS, 2) & (HDA_ICS_ICB | HDA_ICS_IRV), HDA_ICS_IRV);
	wr(h, HDA_ICS, HDA_ICS_IRV, 2);
	return rd(h, HDA_IRII, 4);
}

static void wr32(uint64_t gpa, uint32_t v)
{
	v = htole32(v);
	CHECK_EQ(guest_mem_write(&mem, gpa, &v, 4), 0);
}

static void make_bdl_of(uint64_t bdl, uint64_t buf, unsigned frames)
{
	for (unsigned i = 0; i < ENTRIES; i++) {
		uint64_t a = buf + (uint64_t)i * frames * 4;

		wr32(bdl + 16 * i, (uint32_t)a);
		wr32(bdl + 16 * i + 4, 0);
		wr32(bdl + 16 * i + 8, frames * 4);
		wr32(bdl + 16 * i + 12, 1);
	}
}

static void make_bdl(uint64_t bdl, uint64_t buf)
{
	make_bdl_of(bdl, buf, ENTRY_FRAMES);
}

static struct hda *new_hda(struct audio_backend *backend)
{
	struct hda_config cfg = {
		.pci = host, .devfn = DEVFN, .mem = &mem, .timers = q,
		.backend = backend,
	};
	char err[128] = "";
	struct hda *h;

	pthread_mutex_lock(&lock);
	h = hda_new(&cfg, err, sizeof(err));
	pthread_mutex_unlock(&lock);
	CHECK(h != NULL);
	if (!h) {
		fprintf(stderr, "  %s\n", err);
		exit(1);
	}
	wr(h, HDA_GCTL, HDA_GCTL_CRST, 4);
	return h;
}

static void free_hda(struct hda *h)
{
	pthread_mutex_lock(&lock);
	hda_free(h);
	pthread_mutex_unlock(&lock);
}

/* 48 kHz 16-bit stereo on stream @tag through SD @sd. */
static void start_stream_of(struct hda *h, unsigned sd, uint64_t bdl,
			    unsigned tag, unsigned frames)
{
	wr(h, sd + HDA_SD_CTL, tag << HDA_SD_CTL_STRM_SHIFT, 4);
	wr(h, sd + HDA_SD_CBL, ENTRIES * frames * 4, 4);
	wr(h, sd + HDA_SD_LVI, ENTRIES - 1, 2);
	wr(h, sd + HDA_SD_FMT, 0x0011, 2);
	wr(h, sd + HDA_SD_BDPL, (uint32_t)bdl, 4);
	wr(h, sd + HDA_SD_BDPU, 0, 4);
	wr(h, sd + HDA_SD_CTL, tag << HDA_SD_CTL_STRM_SHIFT | HDA_SD_CTL_RUN, 4);
}

static void start_stream(struct hda *h, unsigned sd, uint64_t bdl, unsigned tag)
{
	start_stream_of(h, sd, bdl, tag, ENTRY_FRAMES);
}

static void route_codec(struct hda *h)
{
	verb(h, 2, 0x2, 0x0011);
	verb(h, 2, 0x706, 0x10);
	verb(h, 2, 0x3, 0xb000 | 0x4a);
	verb(h, 3, 0x707, 0x40);
	verb(h, 4, 0x2, 0x0011);
	verb(h, 4, 0x706, 0x20);
	verb(h, 4, 0x3, 0x7000 | 0x4a);
	verb(h, 5, 0x707, 0x20);
}

static uint64_t bytes_moved(struct hda *h, unsigned sd)
{
	struct hda_stats st;

	pthread_mutex_lock(&lock);
	hda_get_stats(h, &st);
	pthread_mutex_unlock(&lock);
	return st.bytes[sd];
}

static const char *backend_state(struct audio_backend *b)
{
	const char *name, *state;
	bool p, r;

	audio_status(b, &name, &state, &p, &r);
	return state;
}

static char *path(const char *name)
{
	return g_build_filename(dir, name, NULL);
}

static void start_server(void)
{
	g_autofree char *sock = path("native");
	g_autofree char *proto = g_strdup_printf("module-native-protocol-unix socket=%s auth-anonymous=1", sock);
	g_autofree char *load_proto = g_strdup_printf("--load=%s", proto);
	char *argv[] = {
		"pulseaudio", "--daemonize=no", "--exit-idle-time=-1", "-n",
		"--disallow-exit", "--use-pid-file=no", "--disable-shm=yes",
		"--log-target=stderr", "--log-level=error",
		"--load=module-null-sink sink_name=vsink rate=48000",
		"--load=module-null-sink sink_name=vsrc rate=48000",
		load_proto, NULL,
	};
	GError *e = NULL;
	struct stat sb;

	CHECK(g_spawn_async(NULL, argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD,
			    NULL, NULL, &server, &e));
	if (e) {
		fprintf(stderr, "  %s\n", e->message);
		g_error_free(e);
		exit(1);
	}
	for (int i = 0; i < 100 && stat(sock, &sb) < 0; i++)
		g_usleep(50000);
	CHECK(stat(sock, &sb) == 0);
	g_usleep(200000);
}

static void stop_server(void)
{
	if (server > 0) {
		kill(server, SIGTERM);
		waitpid(server, NULL, 0);
		server = -1;
	}
}

/* "Rough   frequency:  1000" from sox's stat effect on @wav's middle. */
static double sox_frequency(const char *wav)
{
	char *argv[] = { "sox", (char *)wav, "-n", "trim", "0.5", "1", "remix", "1", "stat", NULL };
	g_autofree char *out = NULL, *err = NULL;
	const char *f;
	int status;

	if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH, NULL, NULL,
			  &out, &err, &status, NULL))
		return -1;
	f = err ? strstr(err, "Rough   frequency:") : NULL;
	if (!f) {
		fprintf(stderr, "  sox: %s\n", err ? err : "(nothing)");
		return -1;
	}
	return strtod(f + strlen("Rough   frequency:"), NULL);
}

/* No server: the card plays silence at the real rate; then the server
 * comes and the backend connects (first retry after 1 s). */
static void test_no_server(void)
{
	struct hda *h = new_hda(be);
	uint64_t b0, b1;

	route_codec(h);
	make_bdl(BDL_OUT, BUF_OUT);
	g_usleep(300000);
	CHECK(!strcmp(backend_state(be), "unavailable"));
	start_stream(h, OUT, BDL_OUT, 1);
	g_usleep(100000);
	b0 = bytes_moved(h, HDA_SD_OUT);
	g_usleep(500000);
	b1 = bytes_moved(h, HDA_SD_OUT);
	/* 0.5 s of 48 kHz x 4 bytes = 96000, give or take scheduling. */
	CHECK(b1 - b0 > 96000 * 8 / 10 && b1 - b0 < 96000 * 12 / 10);
	fprintf(stderr, "  no server: %llu bytes in 0.5 s\n",
		(unsigned long long)(b1 - b0));
	free_hda(h);

	start_server();
	for (int i = 0; i < 50 && strcmp(backend_state(be), "connected"); i++)
		g_usleep(100000);
	CHECK(!strcmp(backend_state(be), "connected"));
}

/* A playback stream being created: the DMA waits (space 0) instead of
 * the guest's first buffers being thrown away (space SIZE_MAX), then the
 * server asks for its target buffer. */
static void test_hold_while_connecting(void)
{
	struct audio_format f = { AUDIO_S16LE, 48000, 2 };
	size_t first, later = 0;

	CHECK(!strcmp(backend_state(be), "connected"));
	CHECK_EQ(audio_start(be, AUDIO_OUT, &f), 0);
	first = audio_space(be);
	for (int i = 0; i < 100; i++) {
		later = audio_space(be);
		if (later && later != SIZE_MAX)
			break;
		g_usleep(10000);
	}
	fprintf(stderr, "  space at start %zd, then %zu bytes\n", (ssize_t)first, later);
	CHECK(first != SIZE_MAX);
	/* 40 ms of 48 kHz x 4 bytes = 7680 */
	CHECK(later > 0 && later != SIZE_MAX && later <= 7680 * 2);
	audio_stop(be, AUDIO_OUT);
}

static void test_play_sine(void)
{
	g_autofree char *wav = path("out.wav");
	char *argv[] = { "parecord", "--device=vsink.monitor", "--latency-msec=20", "--rate=48000",
			 "--channels=2", "--format=s16le", "--file-format=wav",
			 wav, NULL };
	struct hda *h = new_hda(be);
	GPid rec;
	uint64_t b0, b1;
	struct rusage r0, r1;
	long long cpu_us;
	double f;
	struct stat sb;

	/* 1 kHz, half scale, both channels: 48 frames a period. */
	for (unsigned i = 0; i < ENTRIES * ENTRY_FRAMES; i++) {
		int16_t v = (int16_t)(16000 * sin(2 * M_PI * (i % 48) / 48.0));
		uint16_t le = htole16((uint16_t)v);
		uint16_t fr[2] = { le, le };

		CHECK_EQ(guest_mem_write(&mem, BUF_OUT + 4ull * i, fr, 4), 0);
	}
	make_bdl(BDL_OUT, BUF_OUT);
	route_codec(h);
	CHECK(g_spawn_async(NULL, argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD,
			    NULL, NULL, &rec, NULL));
	g_usleep(300000);
	start_stream(h, OUT, BDL_OUT, 1);
	/* A null sink that was idle renders up to its default latency (2 s)
	 * ahead before our 40 ms request applies: the first buffer is taken,
	 * then the sink's clock stalls for ~1.4 s (during which the device,
	 * past HDA_STALL_NS, keeps the DMA going on the machine's clock and
	 * the backend drops what it cannot take).  Wait past it. */
	g_usleep(1800000);
	b0 = bytes_moved(h, HDA_SD_OUT);
	getrusage(RUSAGE_SELF, &r0);
	g_usleep(2000000);
	getrusage(RUSAGE_SELF, &r1);
	b1 = bytes_moved(h, HDA_SD_OUT);
	/* The timer thread's DMA and libpulse's thread: this process's CPU. */
	cpu_us = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec + r1.ru_stime.tv_sec -
		  r0.ru_stime.tv_sec) * 1000000ll + r1.ru_utime.tv_usec -
		 r0.ru_utime.tv_usec + r1.ru_stime.tv_usec - r0.ru_stime.tv_usec;
	fprintf(stderr, "  played %llu bytes in 2 s, %.1f ms of CPU (%.2f %%)\n",
		(unsigned long long)(b1 - b0), cpu_us / 1000.0, cpu_us / 20000.0);
	/* The server's clock paces it: 2 s of 192000 B/s, within 10 %. */
	CHECK(b1 - b0 > 384000 * 9 / 10 && b1 - b0 < 384000 * 11 / 10);
	kill(rec, SIGINT);
	waitpid(rec, NULL, 0);
	wr(h, OUT + HDA_SD_CTL, 1u << HDA_SD_CTL_STRM_SHIFT, 4);
	CHECK(stat(wav, &sb) == 0 && sb.st_size > 48000 * 4);
	f = sox_frequency(wav);
	fprintf(stderr, "  sox: rough frequency %.1f Hz\n", f);
	CHECK(f > 980 && f < 1020);
	free_hda(h);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* The left channel's frequency over @n frames: 48000 over the median
 * distance between upward zero crossings (interpolated), which a dropped
 * or padded fragment here and there does not move. */
static double crossings_hz(const int16_t *s, size_t n)
{
	double *per = calloc(n, sizeof(double)), last = -1, f;
	size_t np = 0;

	for (size_t i = 1; i < n; i++) {
		double a = (int16_t)le16toh(s[2 * (i - 1)]);
		double b = (int16_t)le16toh(s[2 * i]);

		if (a < 0 && b >= 0) {
			double x = (double)(i - 1) + (-a) / (b - a);

			if (last >= 0)
				per[np++] = x - last;
			last = x;
		}
	}
	if (np < 3) {
		free(per);
		return 0;
	}
	qsort(per, np, sizeof(double), cmp_double);
	f = 48000.0 / per[np / 2];
	free(per);
	return f;
}

/* Record: a 440 Hz tone the test plays into the null sink "vsrc", whose
 * monitor is the record stream's source (PULSE_SOURCE), arrives in the
 * guest's buffers. */
static void test_record(void)
{
	g_autofree char *tone = path("tone.wav");
	char *sox_argv[] = { "sox", "-n", "-r", "48000", "-c", "2", "-b", "16",
			     tone, "synth", "5", "sine", "440", "vol", "0.5", NULL };
	char *play_argv[] = { "paplay", "--device=vsrc", tone, NULL };
	struct hda *h = new_hda(be);
	const unsigned frames = 12000;		/* 4 x 250 ms: 1 s, no wrap */
	size_t n = ENTRIES * frames, got;
	int16_t *s = calloc(n, 4);
	GPid player;
	int status;
	double f;

	CHECK(g_spawn_sync(NULL, sox_argv, NULL, G_SPAWN_SEARCH_PATH, NULL,
			   NULL, NULL, NULL, &status, NULL) && status == 0);
	CHECK(g_spawn_async(NULL, play_argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_DO_NOT_REAP_CHILD,
			    NULL, NULL, &player, NULL));
	g_usleep(1800000);		/* past the sink's start (see above) */
	make_bdl_of(BDL_IN, BUF_IN, frames);
	route_codec(h);
	start_stream_of(h, IN, BDL_IN, 2, frames);
	g_usleep(800000);
	wr(h, IN + HDA_SD_CTL, 2u << HDA_SD_CTL_STRM_SHIFT, 4);
	got = rd(h, IN + HDA_SD_LPIB, 4) / 4;
	CHECK(got > 48000 / 2 && got < n);
	/* The last 0.4 s recorded: continuous, the tone's frequency. */
	CHECK_EQ(guest_mem_read(&mem, BUF_IN, s, n * 4), 0);
	f = got > 19200 ? crossings_hz(s + 2 * (got - 19200), 19200) : 0;
	fprintf(stderr, "  recorded: %.1f Hz, %zu frames\n", f, got);
	CHECK(f > 440 * 0.98 && f < 440 * 1.02);
	kill(player, SIGTERM);
	waitpid(player, NULL, 0);
	free(s);
	free_hda(h);
}

/* "Corked: yes" lines in `pactl list @what` (sink-inputs, source-outputs):
 * the server's own view of our streams; -1 when pactl fails. */
static int corked_streams(const char *what, int *total)
{
	char *argv[] = { "pactl", "list", (char *)what, NULL };
	g_autofree char *out = NULL;
	int status, yes = 0;

	*total = 0;
	if (!g_spawn_sync(NULL, argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL,
			  NULL, NULL, &out, NULL, &status, NULL) || status != 0)
		return -1;
	for (const char *c = out; (c = strstr(c, "Corked: ")); c++) {
		(*total)++;
		yes += !strncmp(c + 8, "yes", 3);
	}
	return yes;
}

/* Poll for up to 2 s until @what has @want corked streams of @total. */
static bool wait_corked(const char *what, int want, int total)
{
	int t = 0, c = -1;

	for (int i = 0; i < 40; i++) {
		c = corked_streams(what, &t);
		if (c == want && t == total)
			return true;
		g_usleep(50000);
	}
	fprintf(stderr, "  %s: %d of %d corked, wanted %d of %d\n", what, c, t, want, total);
	return false;
}

/* The machine paused: both streams corked on the server (nothing played
 * as an underrun, nothing recorded), a stream opened meanwhile starts
 * corked, and the resume uncorks them all. */
static void test_pause_corks(void)
{
	struct hda *h = new_hda(be);
	const unsigned frames = 12000;

	make_bdl(BDL_OUT, BUF_OUT);
	make_bdl_of(BDL_IN, BUF_IN, frames);
	route_codec(h);
	start_stream(h, OUT, BDL_OUT, 1);
	start_stream_of(h, IN, BDL_IN, 2, frames);
	CHECK(wait_corked("sink-inputs", 0, 1));
	CHECK(wait_corked("source-outputs", 0, 1));
	audio_set_paused(be, true);
	CHECK(audio_paused(be));
	CHECK(wait_corked("sink-inputs", 1, 1));
	CHECK(wait_corked("source-outputs", 1, 1));
	/* A stream (re)opened while paused (a guest's new format) starts corked. */
	audio_stop(be, AUDIO_OUT);
	CHECK(wait_corked("sink-inputs", 0, 0));
	{
		struct audio_format f = { .sample = AUDIO_S16LE, .rate = 44100, .channels = 2 };

		CHECK_EQ(audio_start(be, AUDIO_OUT, &f), 0);
	}
	CHECK(wait_corked("sink-inputs", 1, 1));
	audio_set_paused(be, false);
	CHECK(!audio_paused(be));
	CHECK(wait_corked("sink-inputs", 0, 1));
	CHECK(wait_corked("source-outputs", 0, 1));
	audio_stop(be, AUDIO_OUT);
	wr(h, OUT + HDA_SD_CTL, 1u << HDA_SD_CTL_STRM_SHIFT, 4);
	wr(h, IN + HDA_SD_CTL, 2u << HDA_SD_CTL_STRM_SHIFT, 4);
	free_hda(h);
}

int main(void)
{
	g_autofree char *pa = g_find_program_in_path("pulseaudio");
	g_autofree char *pr = g_find_program_in_path("parecord");
	g_autofree char *sx = g_find_program_in_path("sox");
	g_autofree char *sock = NULL, *server_env = NULL;

	if (!pa || !pr || !sx)
		SKIP("needs pulseaudio, parecord (pulseaudio-utils) and sox");
	log_set_level(LOG_ERROR);
	if (!mkdtemp(dir) || guest_mem_init(&mem, RAM_SIZE) != 0)
		SKIP("cannot make a temporary folder or guest RAM");
	/* The server and every client here live in @dir. */
	sock = path("native");
	server_env = g_strdup_printf("unix:%s", sock);
	setenv("HOME", dir, 1);
	setenv("XDG_RUNTIME_DIR", dir, 1);
	setenv("PULSE_RUNTIME_PATH", dir, 1);
	setenv("PULSE_SERVER", server_env, 1);
	setenv("PULSE_SOURCE", "vsrc.monitor", 1);
	unsetenv("DISPLAY");
	pio = bus_new("pio");
	mmio = bus_new("mmio");
	host = pci_host_new();
	pci_host_attach(host, pio, mmio);
	pci_host_set_ops(host, &host_ops, NULL);
	q = vtimer_queue_new(&lock, &vclock_host);
	CHECK(q != NULL);

	atexit(stop_server);	/* also when a step exit()s */
	be = audio_pa_new("test");
	CHECK(be != NULL);
	RUN_TEST(test_no_server);
	RUN_TEST(test_hold_while_connecting);
	RUN_TEST(test_play_sine);
	RUN_TEST(test_record);
	RUN_TEST(test_pause_corks);
	audio_backend_free(be);
	stop_server();

	vtimer_queue_free(q);
	pci_host_free(host);
	bus_free(mmio);
	bus_free(pio);
	guest_mem_free(&mem);
	{
		g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", dir);

		if (system(cmd) != 0)
			fprintf(stderr, "cannot remove %s\n", dir);
	}
	return check_finish();
}
