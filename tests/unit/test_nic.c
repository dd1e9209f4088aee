/* SPDX-License-Identifier: MIT */
/* tests/unit/test_nic.c - --nic values and vm.conf [nicN] groups
 * (app/nic.c): what parses, what is refused with one line, and the round
 * trip through a key file. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "nic.h"
#include "vmlib.h"

static void test_mac(void)
{
	uint8_t mac[6];
	char buf[18];

	CHECK_EQ(nic_parse_mac("52:54:00:12:34:56", mac), 0);
	CHECK(strcmp(nic_mac_str(mac, buf, sizeof(buf)), "52:54:00:12:34:56") == 0);
	CHECK_EQ(nic_parse_mac("52-54-00-AB-cd-EF", mac), 0);
	CHECK_EQ(mac[3], 0xab);
	CHECK_EQ(nic_parse_mac("01:00:5e:00:00:01", mac), -EINVAL); /* multicast */
	CHECK_EQ(nic_parse_mac("52:54:00:12:34", mac), -EINVAL);
	CHECK_EQ(nic_parse_mac("52:54:00:12:34:5g", mac), -EINVAL);
	CHECK_EQ(nic_parse_mac("52:54:00:12:34:567", mac), -EINVAL);
	CHECK_EQ(nic_parse_mac("", mac), -EINVAL);
}

static void test_parse_good(void)
{
	struct nic_spec s;
	char err[256];

	CHECK_EQ(nic_spec_parse("virtio", &s, err, sizeof(err)), 0);
	CHECK_EQ(s.model, MACHINE_NIC_VIRTIO);
	CHECK_EQ(s.net, NIC_NET_NAT);
	CHECK(!s.has_mac && !s.nfwd && !s.restricted && !s.link_down);
	nic_spec_clear(&s);

	CHECK_EQ(nic_spec_parse("e1000,nat,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=udp::5353-:53,restrict=on,mac=52:54:00:00:00:07,link=down",
				&s, err, sizeof(err)), 0);
	CHECK_EQ(s.model, MACHINE_NIC_E1000);
	CHECK_EQ(s.nfwd, 2);
	CHECK(s.nfwd == 2 && !strcmp(s.fwd[1], "udp::5353-:53"));
	CHECK(s.restricted);
	CHECK(s.has_mac && s.mac[5] == 7);
	CHECK(s.link_down);
	nic_spec_clear(&s);

	CHECK_EQ(nic_spec_parse("e1000,br=br0,bridge", &s, err, sizeof(err)), 0);
	CHECK_EQ(s.net, NIC_NET_BRIDGE);
	CHECK(!strcmp(s.ifname, "br0"));
	nic_spec_clear(&s);

	CHECK_EQ(nic_spec_parse("tap,ifname=tap7", &s, err, sizeof(err)), 0);
	CHECK_EQ(s.model, MACHINE_NIC_VIRTIO);
	CHECK_EQ(s.net, NIC_NET_TAP);
	CHECK(!strcmp(s.ifname, "tap7"));
	nic_spec_clear(&s);
}

static void test_parse_bad(void)
{
	static const char *const bad[] = {
		"virtoi",			/* typo */
		"virtio,,nat",			/* empty item */
		"virtio,e1000",			/* two models */
		"nat,tap,ifname=x",		/* two networks */
		"tap",				/* no ifname */
		"tap,ifname=t0,hostfwd=tcp::1-:2",	/* forwards are NAT's */
		"virtio,ifname=t0",		/* ifname without tap */
		"virtio,hostfwd=tcp::70000-:22",	/* port out of range */
		"virtio,hostfwd=bogus",
		"virtio,restrict=maybe",
		"virtio,mac=ff:ff:ff:ff:ff:ff",
		"virtio,link=sideways",
		"virtio,speed=10",		/* unknown key */
		"tap,ifname=a/b",
		"bridge",			/* no br */
		"tap,br=br0",			/* br is bridge's */
		"bridge,ifname=t0",		/* ifname is tap's */
		"bridge,br=br0,hostfwd=tcp::1-:2",
		"tap,ifname=0123456789abcdefg",
	};
	struct nic_spec s;

	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[256] = "";

		CHECK_EQ(nic_spec_parse(bad[i], &s, err, sizeof(err)), -EINVAL);
		/* One line that says something. */
		CHECK(err[0] && !strchr(err, '\n'));
		if (!err[0])
			fprintf(stderr, "no message for '%s'\n", bad[i]);
	}
}

static void test_keyfile(void)
{
	GKeyFile *kf = g_key_file_new();
	struct nic_spec s, t;
	char err[256];

	CHECK_EQ(nic_spec_parse("e1000,hostfwd=tcp::8080-:80,hostfwd=tcp::2222-:22,mac=02:00:00:00:00:01",
				&s, err, sizeof(err)), 0);
	nic_spec_to_keyfile(&s, kf, "nic1");
	CHECK_EQ(nic_spec_from_keyfile(kf, "nic1", &t, err, sizeof(err)), 0);
	CHECK_EQ(t.model, MACHINE_NIC_E1000);
	CHECK_EQ(t.nfwd, 2);
	CHECK(t.nfwd == 2 && !strcmp(t.fwd[0], "tcp::8080-:80"));
	CHECK(t.has_mac && !memcmp(t.mac, s.mac, 6));
	nic_spec_clear(&t);
	CHECK_EQ(nic_spec_from_keyfile(kf, "nic2", &t, err, sizeof(err)), -ENOENT);
	{
		struct nic_spec b;
		gchar *v;

		CHECK_EQ(nic_spec_parse("bridge,br=br7", &b, err, sizeof(err)), 0);
		nic_spec_to_keyfile(&b, kf, "nic3");
		v = g_key_file_get_string(kf, "nic3", "bridge", NULL);
		CHECK(v && !strcmp(v, "br7"));
		g_free(v);
		nic_spec_clear(&b);
		CHECK_EQ(nic_spec_from_keyfile(kf, "nic3", &b, err, sizeof(err)), 0);
		CHECK(b.net == NIC_NET_BRIDGE && !strcmp(b.ifname, "br7"));
		nic_spec_clear(&b);
	}

	g_key_file_set_string(kf, "nic1", "model", "rtl8139");
	CHECK_EQ(nic_spec_from_keyfile(kf, "nic1", &t, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "[nic1]") && strstr(err, "rtl8139"));
	g_key_file_set_string(kf, "nic1", "model", "virtio");
	g_key_file_set_string(kf, "nic1", "hostfwd", "tcp::8080-:80;nonsense");
	CHECK_EQ(nic_spec_from_keyfile(kf, "nic1", &t, err, sizeof(err)), -EINVAL);
	CHECK(strstr(err, "[nic1]") != NULL);
	nic_spec_clear(&s);
	g_key_file_unref(kf);
}

/* `vivarium edit NAME nic0=...`: keeps the card's MAC, removes with none. */
static void test_edit(void)
{
	GKeyFile *kf = g_key_file_new();
	char err[256];
	gchar *v;

	g_key_file_set_string(kf, "vm", "uuid", "6f1c7c3e-0d7e-4f4b-9d8e-2a8c1b1f7e55");
	g_key_file_set_string(kf, "nic0", "mac", "02:11:22:33:44:55");
	CHECK_EQ(vm_config_set(kf, "nic0=e1000,hostfwd=tcp::2222-:22", err, sizeof(err)), 0);
	v = g_key_file_get_string(kf, "nic0", "mac", NULL);
	CHECK(v && !strcmp(v, "02:11:22:33:44:55"));
	g_free(v);
	v = g_key_file_get_string(kf, "nic0", "model", NULL);
	CHECK(v && !strcmp(v, "e1000"));
	g_free(v);
	CHECK_EQ(vm_config_set(kf, "nic1=virtio", err, sizeof(err)), 0);
	v = g_key_file_get_string(kf, "nic1", "mac", NULL);
	{
		uint8_t m[6] = { 0 };

		/* Derived from the UUID: locally administered unicast. */
		CHECK(v && nic_parse_mac(v, m) == 0 && (m[0] & 3) == 2);
	}
	g_free(v);
	CHECK_EQ(vm_config_set(kf, "nic1=none", err, sizeof(err)), 0);
	CHECK(!g_key_file_has_group(kf, "nic1"));
	CHECK_EQ(vm_config_set(kf, "nic0=virtoi", err, sizeof(err)), -EINVAL);
	CHECK(g_key_file_has_group(kf, "nic0"));	/* nothing changed */
	CHECK_EQ(vm_config_set(kf, "nic4=virtio", err, sizeof(err)), -EINVAL);
	g_key_file_unref(kf);
}

int main(void)
{
	RUN_TEST(test_mac);
	RUN_TEST(test_parse_good);
	RUN_TEST(test_parse_bad);
	RUN_TEST(test_keyfile);
	RUN_TEST(test_edit);
	return check_finish();
}
