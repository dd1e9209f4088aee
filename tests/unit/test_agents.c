/* SPDX-License-Identifier: MIT */
/*
 * The VM process's agents hub (app/agents.c) with a guest on the real
 * virtio-serial device (vcon_guest.h) speaking spice-vdagentd's side
 * (vdagent_guest.h): the console's size requests reach the guest's agent
 * as a MONITORS_CONFIG of that size (checked byte by byte), only while
 * the agent is connected, the last of a burst, again after the agent
 * reconnects, beside the adapter's own request_size; and the clipboard
 * hub's guest-text listeners; the guest additions' info reaching the
 * guest-info listener (the VM process's "guest" event).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "check.h"
#include "vdagent_guest.h"

#include "additions_host.h"
#include "agents.h"
#include "display/console.h"
#include "log.h"

#define VA_ID	1	/* the vdagent port's id: the first of the agents' */
#define ADD_ID	3	/* the guest additions' port: after vdagent and qga */

static struct vcon_guest g;
static struct vm_agents *agents;
static struct console *con;

/* An adapter with request_size (as virtio-gpu), recording. */
static pthread_mutex_t hw_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned hw_w, hw_h, hw_calls;
static int hw_ret;

static void hw_update(void *o, struct console *c, bool full)
{
	(void)o; (void)c; (void)full;
}

static int hw_request_size(void *o, unsigned w, unsigned h)
{
	(void)o;
	hw_calls++;
	hw_w = w;
	hw_h = h;
	return hw_ret;
}

static const struct console_hw_ops hw_ops = {
	.update = hw_update, .request_size = hw_request_size,
};

/* MONITORS_CONFIG as vd_agent.h lays it out: VDAgentMonitorsConfig
 * (num_of_monitors, flags) and one VDAgentMonConfig (height, width,
 * depth, x, y), every field le32. */
static void expect_monitors(const struct vp_msg *m, unsigned w, unsigned h)
{
	uint8_t want[28] = { 0 };

	vp_put32(want, 1);
	vp_put32(want + 8, h);
	vp_put32(want + 12, w);
	vp_put32(want + 16, 32);
	CHECK_EQ(m->type, VD_AGENT_MONITORS_CONFIG);
	CHECK_EQ(m->size, sizeof(want));
	CHECK(m->size == sizeof(want) && memcmp(m->data, want, sizeof(want)) == 0);
}

static void test_size_needs_agent(void)
{
	struct vp_msg m[8];
	int n;

	/* No adapter that can, no agent: refused, nothing to the guest. */
	CHECK_EQ(console_request_size(con, 1280, 800), -ENOTSUP);
	CHECK_EQ(vm_agents_request_size(agents, 1280, 800), -ENOTCONN);
	/* The port open but the daemon silent: still not connected. */
	vg_open(&g, VA_ID, true);
	n = vag_recv(&g, VA_ID, m, 8);
	CHECK_EQ(n, 1);		/* our capabilities */
	CHECK(n == 1 && m[0].type == VD_AGENT_ANNOUNCE_CAPABILITIES);
	if (n > 0)
		vp_free(m, n);
	CHECK_EQ(console_request_size(con, 1280, 800), -ENOTSUP);
	n = vag_recv(&g, VA_ID, m, 8);
	CHECK_EQ(n, 0);
	vg_open(&g, VA_ID, false);
	vag_pump();
}

static void test_size_to_agent(void)
{
	struct vp_msg m[8];
	int n;

	n = vag_connect(&g, VA_ID, m, 8);
	CHECK(n >= 0 && vag_find(m, n, VD_AGENT_MONITORS_CONFIG) < 0);
	if (n > 0)
		vp_free(m, n);
	CHECK_EQ(console_request_size(con, 1280, 800), 0);
	n = vag_recv(&g, VA_ID, m, 8);
	CHECK_EQ(n, 1);
	if (n == 1)
		expect_monitors(&m[0], 1280, 800);
	if (n > 0)
		vp_free(m, n);

	/* A burst before the loop turns (a window being dragged): one
	 * message, the last size. */
	CHECK_EQ(console_request_size(con, 1024, 768), 0);
	CHECK_EQ(console_request_size(con, 1600, 900), 0);
	n = vag_recv(&g, VA_ID, m, 8);
	CHECK_EQ(n, 1);
	if (n == 1)
		expect_monitors(&m[0], 1600, 900);
	if (n > 0)
		vp_free(m, n);

	/* Out of range: refused by the console, nothing sent. */
	CHECK_EQ(console_request_size(con, 0, 900), -EINVAL);
	CHECK_EQ(console_request_size(con, CONSOLE_MAX_WIDTH + 1, 900), -EINVAL);
	CHECK_EQ(vag_recv(&g, VA_ID, m, 8), 0);
}

/* With an adapter that offers modes too, both get the size; the agent's
 * success covers an adapter's refusal. */
static void test_size_adapter_and_agent(void)
{
	struct vp_msg m[8];
	int n;

	console_set_hw(con, &hw_ops, NULL, &hw_lock);
	hw_calls = 0;
	hw_ret = 0;
	CHECK_EQ(console_request_size(con, 1920, 1080), 0);
	CHECK_EQ(hw_calls, 1);
	CHECK(hw_w == 1920 && hw_h == 1080);
	n = vag_recv(&g, VA_ID, m, 8);
	CHECK_EQ(n, 1);
	if (n == 1)
		expect_monitors(&m[0], 1920, 1080);
	if (n > 0)
		vp_free(m, n);
	hw_ret = -EIO;
	CHECK_EQ(console_request_size(con, 800, 600), 0);
	n = vag_recv(&g, VA_ID, m, 8);
	CHECK_EQ(n, 1);
	if (n == 1)
		expect_monitors(&m[0], 800, 600);
	if (n > 0)
		vp_free(m, n);
	hw_ret = 0;
	console_set_hw(con, NULL, NULL, NULL);
}

/* The session restarts (the port closed and reopened): refused while
 * gone, and the new session gets the last size at once. */
static void test_size_after_reconnect(void)
{
	struct vp_msg m[8];
	int n;

	vg_open(&g, VA_ID, false);
	vag_pump();
	CHECK_EQ(console_request_size(con, 640, 480), -ENOTSUP);
	n = vag_connect(&g, VA_ID, m, 8);
	CHECK(n >= 1);
	{
		int i = n > 0 ? vag_find(m, n, VD_AGENT_MONITORS_CONFIG) : -1;

		CHECK(i >= 0);
		if (i >= 0)
			expect_monitors(&m[i], 800, 600);
	}
	if (n > 0)
		vp_free(m, n);
}

/* Guest text reaches every listener; a removed one no more. */
static unsigned heard[2];
static char last_heard[64];

static void listen_text(void *opaque, const char *text)
{
	heard[(uintptr_t)opaque]++;
	snprintf(last_heard, sizeof(last_heard), "%s", text);
}

static void guest_copies(const char *text)
{
	uint8_t p[8 + 64];
	struct vp_msg m[8];
	int n, i;

	p[0] = VD_AGENT_CLIPBOARD_SELECTION_CLIPBOARD;
	p[1] = p[2] = p[3] = 0;
	vp_put32(p + 4, VD_AGENT_CLIPBOARD_UTF8_TEXT);
	vag_send(&g, VA_ID, VD_AGENT_CLIPBOARD_GRAB, p, 8);
	n = vag_recv(&g, VA_ID, m, 8);
	i = n > 0 ? vag_find(m, n, VD_AGENT_CLIPBOARD_REQUEST) : -1;
	CHECK(i >= 0);
	if (n > 0)
		vp_free(m, n);
	vp_put32(p + 4, VD_AGENT_CLIPBOARD_UTF8_TEXT);
	memcpy(p + 8, text, strlen(text));
	vag_send(&g, VA_ID, VD_AGENT_CLIPBOARD, p, 8 + strlen(text));
}

static void test_guest_text_listeners(void)
{
	const char *owner;

	CHECK_EQ(vm_agents_on_guest_text(agents, listen_text, (void *)0), 0);
	CHECK_EQ(vm_agents_on_guest_text(agents, listen_text, (void *)1), 0);
	guest_copies("from the guest");
	CHECK(heard[0] == 1 && heard[1] == 1);
	CHECK(strcmp(last_heard, "from the guest") == 0);
	CHECK(strcmp(vm_agents_clipboard_get(agents, &owner), "from the guest") == 0);
	CHECK(strcmp(owner, "guest") == 0);
	vm_agents_off_guest_text(agents, listen_text, (void *)0);
	guest_copies("again");
	CHECK(heard[0] == 1 && heard[1] == 2);
	vm_agents_off_guest_text(agents, listen_text, (void *)1);
	for (int i = 0; i < VM_AGENTS_TEXT_LISTENERS; i++)
		CHECK_EQ(vm_agents_on_guest_text(agents, listen_text, (void *)0), 0);
	CHECK_EQ(vm_agents_on_guest_text(agents, listen_text, (void *)1), -ENOSPC);
	for (int i = 0; i < VM_AGENTS_TEXT_LISTENERS; i++)
		vm_agents_off_guest_text(agents, listen_text, (void *)0);
}

static unsigned infos;

static void on_guest_info(void *opaque)
{
	infos += (unsigned)(uintptr_t)opaque;
}

static struct vcon_guest g2;	/* a second VM's, with the additions' port */
static struct vm_agents *agents2;

static void additions_says(const char *line)
{
	vg_write(&g2, ADD_ID, line, strlen(line));
	vag_pump();
}

static void test_guest_info_listener(void)
{
	const struct additions_info *in;
	struct vcon_port *ports[3];
	char err[256];

	agents2 = vm_agents_new(true, true, err, sizeof(err));
	CHECK(agents2 != NULL);
	if (!agents2)
		return;
	CHECK_EQ(vm_agents_enable_additions(agents2, NULL, 0, err, sizeof(err)), 0);
	CHECK_EQ(vm_agents_ports(agents2, ports, 3), 3);
	CHECK(strcmp(vcon_port_name(ports[ADD_ID - 1]), "org.vivarium.additions.0") == 0);
	if (vg_init(&g2, ports, 3) < 0) {
		CHECK(!"cannot set up the second virtio-serial device");
		vm_agents_free(agents2);
		return;
	}
	vm_agents_on_guest_info(agents2, on_guest_info, (void *)1);
	vg_open(&g2, ADD_ID, true);
	vag_pump();
	additions_says("{\"type\":\"info\",\"os\":\"Debian GNU/Linux 12 (bookworm)\",\"kernel\":\"6.1\","
		       "\"hostname\":\"deb\",\"version\":\"1.0.0\",\"addresses\":[\"10.0.2.15\"]}\n");
	CHECK_EQ(infos, 1);
	in = vm_agents_guest_info(agents2);
	CHECK(in && strcmp(in->os, "Debian GNU/Linux 12 (bookworm)") == 0);
	/* malformed (an address that is not one): no report, no call */
	additions_says("{\"type\":\"info\",\"os\":\"x\",\"kernel\":\"\",\"hostname\":\"\","
		       "\"version\":\"1\",\"addresses\":[\"not an address\"]}\n");
	CHECK_EQ(infos, 1);
	vm_agents_on_guest_info(agents2, NULL, NULL);
	additions_says("{\"type\":\"info\",\"os\":\"Other\",\"kernel\":\"\",\"hostname\":\"\","
		       "\"version\":\"1\",\"addresses\":[]}\n");
	CHECK_EQ(infos, 1);
	CHECK(strcmp(vm_agents_guest_info(agents2)->os, "Other") == 0);
	vg_free(&g2);
	vm_agents_free(agents2);
}

int main(void)
{
	struct vcon_port *ports[2];
	char err[256];
	unsigned n;

	log_set_level(LOG_ERROR);
	agents = vm_agents_new(true, true, err, sizeof(err));
	CHECK(agents != NULL);
	if (!agents)
		return check_finish();
	n = vm_agents_ports(agents, ports, 2);
	CHECK_EQ(n, 2);
	CHECK(strcmp(vcon_port_name(ports[0]), AGENT_VDAGENT_PORT) == 0);
	if (vg_init(&g, ports, n) < 0)
		SKIP("cannot set up the virtio-serial device");
	con = console_new();
	console_set_size_agent(con, vm_agents_size_hook, agents);

	RUN_TEST(test_size_needs_agent);
	RUN_TEST(test_size_to_agent);
	RUN_TEST(test_size_adapter_and_agent);
	RUN_TEST(test_size_after_reconnect);
	RUN_TEST(test_guest_text_listeners);
	RUN_TEST(test_guest_info_listener);

	console_set_size_agent(con, NULL, NULL);
	vg_free(&g);
	vm_agents_free(agents);
	console_free(con);
	return check_finish();
}
