/* SPDX-License-Identifier: MIT */
/*
 * app/nic.c - --nic values and vm.conf [nicN] groups (nic.h).
 */
#include "nic.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "net/net.h"
#include "net/slirp.h"
#include "net/tap.h"

const char *nic_model_name(enum machine_nic_model model)
{
	return model == MACHINE_NIC_E1000 ? "e1000" : "virtio";
}

const char *nic_net_name(enum nic_network net)
{
	return net == NIC_NET_TAP ? "tap" : net == NIC_NET_BRIDGE ? "bridge" : "nat";
}

static int net_from_name(const char *s)
{
	if (!strcmp(s, "nat") || !strcmp(s, "user"))
		return NIC_NET_NAT;
	if (!strcmp(s, "tap"))
		return NIC_NET_TAP;
	if (!strcmp(s, "bridge"))
		return NIC_NET_BRIDGE;
	return -1;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int nic_parse_mac(const char *s, uint8_t mac[6])
{
	uint8_t m[6];

	if (strlen(s) != 17)
		return -EINVAL;
	for (unsigned i = 0; i < 6; i++) {
		int hi = hexval(s[i * 3]), lo = hexval(s[i * 3 + 1]);

		if (hi < 0 || lo < 0)
			return -EINVAL;
		if (i < 5 && s[i * 3 + 2] != ':' && s[i * 3 + 2] != '-')
			return -EINVAL;
		m[i] = (uint8_t)(hi << 4 | lo);
	}
	if (m[0] & 1)		/* multicast: no card has such an address */
		return -EINVAL;
	memcpy(mac, m, 6);
	return 0;
}

const char *nic_mac_str(const uint8_t mac[6], char *buf, size_t len)
{
	snprintf(buf, len, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1],
		 mac[2], mac[3], mac[4], mac[5]);
	return buf;
}

void nic_spec_clear(struct nic_spec *s)
{
	for (unsigned i = 0; i < s->nfwd; i++)
		g_free(s->fwd[i]);
	memset(s, 0, sizeof(*s));
}

static int add_fwd(struct nic_spec *s, const char *rule, char *err,
		   size_t errlen)
{
	struct net_hostfwd f;
	char e[200];

	if (s->nfwd == NIC_MAX_FWD) {
		snprintf(err, errlen, "at most %u hostfwd rules per NIC",
			 NIC_MAX_FWD);
		return -EINVAL;
	}
	if (net_hostfwd_parse(rule, &f, e, sizeof(e)) < 0) {
		snprintf(err, errlen, "%s", e);
		return -EINVAL;
	}
	s->fwd[s->nfwd++] = g_strdup(rule);
	return 0;
}

static int parse_onoff(const char *key, const char *v, bool *out, char *err,
		       size_t errlen)
{
	if (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "yes"))
		*out = true;
	else if (!strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "no"))
		*out = false;
	else {
		snprintf(err, errlen, "%s=%s: say on or off", key, v);
		return -EINVAL;
	}
	return 0;
}

static int set_ifname(struct nic_spec *s, const char *v, char *err,
		      size_t errlen)
{
	size_t n = strlen(v);

	if (!n || n >= NIC_IFNAME_MAX || strchr(v, '/') || strchr(v, ' ') ||
	    !strcmp(v, ".") || !strcmp(v, "..")) {
		snprintf(err, errlen,
			 "ifname '%s' is not a network interface name (1-15 characters, no '/' or spaces)",
			 v);
		return -EINVAL;
	}
	memcpy(s->ifname, v, n + 1);
	return 0;
}

static int set_link(struct nic_spec *s, const char *v, char *err,
		    size_t errlen)
{
	if (!strcmp(v, "up"))
		s->link_down = false;
	else if (!strcmp(v, "down"))
		s->link_down = true;
	else {
		snprintf(err, errlen, "link=%s: say up or down", v);
		return -EINVAL;
	}
	return 0;
}

/* What a finished spec must satisfy, whichever way it was written. */
static int spec_check(const struct nic_spec *s, const char *what, char *err,
		      size_t errlen)
{
	if (s->net == NIC_NET_BRIDGE && !s->ifname[0]) {
		snprintf(err, errlen, "%s: a bridge NIC needs br=NAME (the host's bridge)",
			 what);
		return -EINVAL;
	}
	if (s->net == NIC_NET_BRIDGE && (s->nfwd || s->restricted)) {
		snprintf(err, errlen,
			 "%s: hostfwd and restrict belong to nat; a bridged NIC is on the host's own network",
			 what);
		return -EINVAL;
	}
	if (s->net == NIC_NET_TAP && !s->ifname[0]) {
		snprintf(err, errlen, "%s: a tap NIC needs ifname=NAME (the tap device)",
			 what);
		return -EINVAL;
	}
	if (s->net == NIC_NET_TAP && (s->nfwd || s->restricted)) {
		snprintf(err, errlen,
			 "%s: hostfwd and restrict belong to nat; a tap NIC is on the host's own network",
			 what);
		return -EINVAL;
	}
	if (s->net == NIC_NET_NAT && s->ifname[0]) {
		snprintf(err, errlen, "%s: ifname goes with tap (--nic tap,ifname=NAME), br with bridge",
			 what);
		return -EINVAL;
	}
	return 0;
}

int nic_spec_parse(const char *spec, struct nic_spec *out, char *err,
		   size_t errlen)
{
	char **tok = g_strsplit(spec, ",", -1);
	struct nic_spec s = { 0 };
	bool have_net = false, have_model = false;
	bool used_br = false, used_ifname = false;
	int r = 0;

	for (unsigned i = 0; tok[i] && !r; i++) {
		const char *t = tok[i], *eq = strchr(t, '=');
		char key[32];

		if (!*t) {
			snprintf(err, errlen, "--nic %s: an empty item", spec);
			r = -EINVAL;
			break;
		}
		if (!eq) {
			if (!strcmp(t, "virtio") || !strcmp(t, "virtio-net") ||
			    !strcmp(t, "e1000")) {
				if (have_model) {
					snprintf(err, errlen, "--nic %s: two models", spec);
					r = -EINVAL;
				}
				s.model = t[0] == 'e' ? MACHINE_NIC_E1000 :
					MACHINE_NIC_VIRTIO;
				have_model = true;
			} else if (net_from_name(t) >= 0) {
				if (have_net) {
					snprintf(err, errlen, "--nic %s: two networks", spec);
					r = -EINVAL;
				}
				s.net = (enum nic_network)net_from_name(t);
				have_net = true;
			} else {
				snprintf(err, errlen,
					 "--nic: unknown item '%s' (models: virtio, e1000; networks: nat, tap, bridge; keys: hostfwd, restrict, ifname, br, mac, link)",
					 t);
				r = -EINVAL;
			}
			continue;
		}
		snprintf(key, sizeof(key), "%.*s", (int)(eq - t), t);
		eq++;
		if (!strcmp(key, "hostfwd"))
			r = add_fwd(&s, eq, err, errlen);
		else if (!strcmp(key, "restrict"))
			r = parse_onoff(key, eq, &s.restricted, err, errlen);
		else if (!strcmp(key, "ifname") || !strcmp(key, "br")) {
			r = set_ifname(&s, eq, err, errlen);
			used_br |= key[0] == 'b';
			used_ifname |= key[0] == 'i';
		}
		else if (!strcmp(key, "link"))
			r = set_link(&s, eq, err, errlen);
		else if (!strcmp(key, "model")) {
			if (!strcmp(eq, "virtio") || !strcmp(eq, "e1000"))
				s.model = eq[0] == 'e' ? MACHINE_NIC_E1000 :
					MACHINE_NIC_VIRTIO;
			else {
				snprintf(err, errlen, "--nic: model '%s': say virtio or e1000", eq);
				r = -EINVAL;
			}
		} else if (!strcmp(key, "mac")) {
			if (nic_parse_mac(eq, s.mac) < 0) {
				snprintf(err, errlen,
					 "--nic: mac '%s' is not a unicast MAC address (xx:xx:xx:xx:xx:xx)",
					 eq);
				r = -EINVAL;
			}
			s.has_mac = true;
		} else {
			snprintf(err, errlen,
				 "--nic: unknown key '%s' (hostfwd, restrict, ifname, br, mac, link, model)",
				 key);
			r = -EINVAL;
		}
	}
	g_strfreev(tok);
	if (!r && (used_br || used_ifname) &&
	    (used_br != (s.net == NIC_NET_BRIDGE) || (used_br && used_ifname))) {
		snprintf(err, errlen, "--nic: %s",
			 used_br && s.net != NIC_NET_BRIDGE ?
			 "br goes with bridge (--nic bridge,br=NAME)" :
			 "ifname goes with tap (--nic tap,ifname=NAME)");
		r = -EINVAL;
	}
	if (!r)
		r = spec_check(&s, "--nic", err, errlen);
	if (r) {
		nic_spec_clear(&s);
		return r;
	}
	*out = s;
	return 0;
}

int nic_spec_from_keyfile(GKeyFile *kf, const char *group,
			  struct nic_spec *out, char *err, size_t errlen)
{
	struct nic_spec s = { 0 };
	char what[64];
	gchar *v;
	gchar **fwd;
	int r = 0;

	if (!g_key_file_has_group(kf, group))
		return -ENOENT;
	snprintf(what, sizeof(what), "vm.conf [%s]", group);
	v = g_key_file_get_string(kf, group, "model", NULL);
	if (v && strcmp(v, "virtio") && strcmp(v, "e1000")) {
		snprintf(err, errlen, "%s: model '%s': say virtio or e1000", what, v);
		r = -EINVAL;
	} else if (v)
		s.model = v[0] == 'e' ? MACHINE_NIC_E1000 : MACHINE_NIC_VIRTIO;
	g_free(v);
	v = r ? NULL : g_key_file_get_string(kf, group, "network", NULL);
	if (v && (net_from_name(v) < 0 || !strcmp(v, "user"))) {
		snprintf(err, errlen, "%s: network '%s': say nat, tap or bridge", what, v);
		r = -EINVAL;
	} else if (v)
		s.net = (enum nic_network)net_from_name(v);
	g_free(v);
	v = r ? NULL : g_key_file_get_string(kf, group, "mac", NULL);
	if (v) {
		if (nic_parse_mac(v, s.mac) < 0) {
			snprintf(err, errlen, "%s: mac '%s' is not a unicast MAC address",
				 what, v);
			r = -EINVAL;
		}
		s.has_mac = true;
	}
	g_free(v);
	v = r ? NULL : g_key_file_get_string(kf, group,
					     s.net == NIC_NET_BRIDGE ? "bridge" : "ifname", NULL);
	if (v && set_ifname(&s, v, err, errlen) < 0)
		r = -EINVAL;
	g_free(v);
	v = r ? NULL : g_key_file_get_string(kf, group, "restrict", NULL);
	if (v && parse_onoff("restrict", v, &s.restricted, err, errlen) < 0)
		r = -EINVAL;
	g_free(v);
	v = r ? NULL : g_key_file_get_string(kf, group, "link", NULL);
	if (v && set_link(&s, v, err, errlen) < 0)
		r = -EINVAL;
	g_free(v);
	fwd = r ? NULL : g_key_file_get_string_list(kf, group, "hostfwd", NULL,
						    NULL);
	for (unsigned i = 0; fwd && fwd[i] && !r; i++)
		if (*g_strstrip(fwd[i]))
			r = add_fwd(&s, fwd[i], err, errlen);
	g_strfreev(fwd);
	if (!r)
		r = spec_check(&s, what, err, errlen);
	if (r) {
		if (!strstr(err, "vm.conf")) {
			char e[300];

			snprintf(e, sizeof(e), "%s: %s", what, err);
			snprintf(err, errlen, "%s", e);
		}
		nic_spec_clear(&s);
		return -EINVAL;
	}
	*out = s;
	return 0;
}

void nic_spec_to_keyfile(const struct nic_spec *s, GKeyFile *kf,
			 const char *group)
{
	char mac[18];

	g_key_file_set_string(kf, group, "model", nic_model_name(s->model));
	g_key_file_set_string(kf, group, "network", nic_net_name(s->net));
	if (s->has_mac)
		g_key_file_set_string(kf, group, "mac",
				      nic_mac_str(s->mac, mac, sizeof(mac)));
	else
		g_key_file_remove_key(kf, group, "mac", NULL);
	g_key_file_remove_key(kf, group, "ifname", NULL);
	g_key_file_remove_key(kf, group, "bridge", NULL);
	if (s->ifname[0])
		g_key_file_set_string(kf, group,
				      s->net == NIC_NET_BRIDGE ? "bridge" : "ifname",
				      s->ifname);
	if (s->nfwd)
		g_key_file_set_string_list(kf, group, "hostfwd",
					   (const gchar *const *)s->fwd, s->nfwd);
	else
		g_key_file_remove_key(kf, group, "hostfwd", NULL);
	if (s->net == NIC_NET_NAT)
		g_key_file_set_string(kf, group, "restrict",
				      s->restricted ? "on" : "off");
	else
		g_key_file_remove_key(kf, group, "restrict", NULL);
	g_key_file_set_string(kf, group, "link", s->link_down ? "down" : "up");
}

int nic_open(const struct nic_spec *s, const uint8_t mac[6],
	     struct machine_nic *out, char *err, size_t errlen)
{
	struct netdev *nd;

	memset(out, 0, sizeof(*out));
	out->model = s->model;
	memcpy(out->mac, s->has_mac ? s->mac : mac, 6);
	if (s->net == NIC_NET_TAP) {
		nd = net_tap_new(s->ifname, err, errlen);
	} else if (s->net == NIC_NET_BRIDGE) {
		nd = net_tap_bridge_new(s->ifname, NULL, err, errlen);
	} else {
		struct net_hostfwd fwd[NIC_MAX_FWD];
		struct net_slirp_config sc = {
			.restrict_ = s->restricted,
			.fwd = fwd, .nfwd = s->nfwd,
		};

		for (unsigned i = 0; i < s->nfwd; i++)
			if (net_hostfwd_parse(s->fwd[i], &fwd[i], err,
					      errlen) < 0)
				return -EINVAL;
		nd = net_slirp_new(&sc, err, errlen);
	}
	if (!nd)
		return -EINVAL;
	if (s->link_down)
		net_set_link(nd, false);
	out->backend = nd;
	return 0;
}

char *nic_describe(const struct nic_spec *s, const uint8_t mac[6])
{
	GString *g = g_string_new(NULL);
	char m[18];

	g_string_append_printf(g, "%s %s %s",
			       s->model == MACHINE_NIC_E1000 ? "e1000" : "virtio-net",
			       nic_mac_str(s->has_mac ? s->mac : mac, m, sizeof(m)),
			       nic_net_name(s->net));
	if (s->net == NIC_NET_TAP)
		g_string_append_printf(g, " ifname=%s", s->ifname);
	else if (s->net == NIC_NET_BRIDGE)
		g_string_append_printf(g, " br=%s", s->ifname);
	for (unsigned i = 0; i < s->nfwd; i++)
		g_string_append_printf(g, " hostfwd=%s", s->fwd[i]);
	if (s->restricted)
		g_string_append(g, " restrict=on");
	if (s->link_down)
		g_string_append(g, " link=down");
	return g_string_free(g, FALSE);
}
