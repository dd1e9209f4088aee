// SPDX-License-Identifier: MIT
/* vmm-core/audio/hda_codec.c - the duplex HDA codec (hda_codec.h; Intel
 * High Definition Audio 1.0a §7). */
#include <errno.h>
#include <string.h>

#include <glib.h>

#include "hda_codec.h"
#include "../device.h"

/* Audio widget capabilities (§7.3.4.6): type in 23:20. */
#define WCAP_STEREO		(1u << 0)
#define WCAP_IN_AMP		(1u << 1)
#define WCAP_OUT_AMP		(1u << 2)
#define WCAP_AMP_OVRD		(1u << 3)
#define WCAP_FORMAT_OVRD	(1u << 4)
#define WCAP_CONN_LIST		(1u << 8)
#define WCAP_TYPE(t)		((uint32_t)(t) << 20)
#define WTYPE_OUT		0
#define WTYPE_IN		1
#define WTYPE_PIN		4

/* Pin capabilities (§7.3.4.9) and pin widget control (§7.3.3.13). */
#define PINCAP_OUT		(1u << 4)
#define PINCAP_IN		(1u << 5)
#define PINCAP_EAPD		(1u << 16)
#define PINCTL_IN_EN		0x20
#define PINCTL_OUT_EN		0x40

/* Amp capabilities (§7.3.4.10): mute capable, 1 dB steps (step size 3 =
 * 4 x 0.25 dB), 75 steps, 0 dB at the top. */
#define AMP_CAPS		0x80034a4au
#define AMP_MUTE		0x80

struct node_desc {
	uint32_t wcap;
	uint32_t pincap;
	uint8_t conn;			/* its one connection; 0: none */
	uint32_t config;		/* configuration default at reset */
};

static const struct node_desc desc[HDA_CODEC_NODES] = {
	[HDA_NID_DAC] = {
		.wcap = WCAP_TYPE(WTYPE_OUT) | WCAP_STEREO | WCAP_OUT_AMP |
			WCAP_AMP_OVRD | WCAP_FORMAT_OVRD,
	},
	/* Jack, rear, line out, 1/8", green, association 1 (§7.3.3.31). */
	[HDA_NID_OUT_PIN] = {
		.wcap = WCAP_TYPE(WTYPE_PIN) | WCAP_STEREO | WCAP_CONN_LIST,
		.pincap = PINCAP_OUT | PINCAP_EAPD,
		.conn = HDA_NID_DAC, .config = 0x01014010,
	},
	[HDA_NID_ADC] = {
		.wcap = WCAP_TYPE(WTYPE_IN) | WCAP_STEREO | WCAP_IN_AMP |
			WCAP_AMP_OVRD | WCAP_FORMAT_OVRD | WCAP_CONN_LIST,
		.conn = HDA_NID_IN_PIN,
	},
	/* Jack, rear, mic in, 1/8", pink, association 2. */
	[HDA_NID_IN_PIN] = {
		.wcap = WCAP_TYPE(WTYPE_PIN) | WCAP_STEREO,
		.pincap = PINCAP_IN, .config = 0x01a19020,
	},
};

void hda_codec_reset(struct hda_codec *c)
{
	memset(c, 0, sizeof(*c));
	for (unsigned n = 0; n < HDA_CODEC_NODES; n++) {
		c->node[n].config = desc[n].config;
		/* Amps come up muted at 0 dB, as on real codecs. */
		for (unsigned d = 0; d < 2; d++)
			for (unsigned ch = 0; ch < 2; ch++)
				c->node[n].amp[d][ch] = AMP_MUTE | 0x4a;
	}
	c->subsystem = HDA_CODEC_SUBSYSTEM;
}

static bool is_converter(unsigned nid)
{
	return nid == HDA_NID_DAC || nid == HDA_NID_ADC;
}

static uint32_t parameter(unsigned nid, unsigned par)
{
	const struct node_desc *d = &desc[nid];

	switch (nid) {
	case HDA_NID_ROOT:
		switch (par) {
		case HDA_PAR_VENDOR_ID:	return HDA_CODEC_VENDOR_ID;
		case HDA_PAR_REVISION_ID: return 0x00100101;
		case HDA_PAR_NODE_COUNT: return HDA_NID_AFG << 16 | 1;
		}
		return 0;
	case HDA_NID_AFG:
		switch (par) {
		case HDA_PAR_NODE_COUNT:
			return HDA_NID_DAC << 16 | (HDA_CODEC_NODES - 2);
		case HDA_PAR_FG_TYPE:	return 0x01;	/* audio */
		case HDA_PAR_PCM:	return HDA_CODEC_PCM;
		case HDA_PAR_STREAM_FORMATS: return 0x1;	/* PCM */
		case HDA_PAR_POWER_STATE: return 0xf;		/* D0-D3 */
		}
		return 0;
	}
	switch (par) {
	case HDA_PAR_WIDGET_CAP:
		return d->wcap;
	case HDA_PAR_PCM:
		return is_converter(nid) ? HDA_CODEC_PCM : 0;
	case HDA_PAR_STREAM_FORMATS:
		return is_converter(nid) ? 0x1 : 0;
	case HDA_PAR_PIN_CAP:
		return d->pincap;
	case HDA_PAR_AMP_IN_CAP:
		return d->wcap & WCAP_IN_AMP ? AMP_CAPS : 0;
	case HDA_PAR_AMP_OUT_CAP:
		return d->wcap & WCAP_OUT_AMP ? AMP_CAPS : 0;
	case HDA_PAR_CONN_LEN:
		return d->conn ? 1 : 0;		/* short form, one entry */
	}
	return 0;
}

/* Set amplifier gain/mute (§7.3.3.7): bit 15 output, 14 input, 13 left,
 * 12 right, 11:8 index (we have one input per amp: index 0), 7 mute,
 * 6:0 gain. */
static void set_amp(struct hda_node_state *s, const struct node_desc *d,
		    uint16_t p)
{
	uint8_t v = p & 0xff;

	if (p & 0x0f00)
		return;
	if ((v & 0x7f) > 0x4a)
		v = (uint8_t)((v & AMP_MUTE) | 0x4a);
	for (unsigned dir = 0; dir < 2; dir++) {
		if (!(p & (dir ? 0x8000 : 0x4000)) ||
		    !(d->wcap & (dir ? WCAP_OUT_AMP : WCAP_IN_AMP)))
			continue;
		if (p & 0x2000)
			s->amp[dir][0] = v;
		if (p & 0x1000)
			s->amp[dir][1] = v;
	}
}

uint32_t hda_codec_verb(struct hda_codec *c, uint32_t verb)
{
	unsigned nid = (verb >> 20) & 0xff;
	unsigned v4 = (verb >> 16) & 0xf;	/* 4-bit verbs: 16-bit payload */
	unsigned v12 = (verb >> 8) & 0xfff;	/* 12-bit verbs: 8-bit payload */
	uint8_t p8 = verb & 0xff;
	uint16_t p16 = verb & 0xffff;
	struct hda_node_state *s;
	const struct node_desc *d;

	if (nid >= HDA_CODEC_NODES)
		return 0;
	s = &c->node[nid];
	d = &desc[nid];
	switch (v4) {
	case 0x2:				/* set converter format */
		if (is_converter(nid))
			s->format = p16;
		return 0;
	case 0x3:				/* set amp gain/mute */
		set_amp(s, d, p16);
		return 0;
	case 0xa:				/* get converter format */
		return is_converter(nid) ? s->format : 0;
	case 0xb: {				/* get amp gain/mute */
		unsigned dir = !!(p16 & 0x8000), ch = !(p16 & 0x2000);

		if ((p16 & 0xf) ||
		    !(d->wcap & (dir ? WCAP_OUT_AMP : WCAP_IN_AMP)))
			return 0;
		return s->amp[dir][ch];
	}
	}
	switch (v12) {
	case 0xf00:
		return parameter(nid, p8);
	case 0xf01:
		return s->connsel;
	case 0x701:
		if (d->conn && p8 == 0)
			s->connsel = 0;
		return 0;
	case 0xf02:			/* list entries p8..p8+3, short form */
		return d->conn && p8 == 0 ? d->conn : 0;
	case 0xf05:			/* actual state (7:4) = set (3:0) */
		return (uint32_t)s->power << 4 | s->power;
	case 0x705:
		if (nid != HDA_NID_ROOT)
			s->power = p8 & 0x3;	/* D0-D3 */
		return 0;
	case 0xf06:
		return is_converter(nid) ? s->stream : 0;
	case 0x706:
		if (is_converter(nid))
			s->stream = p8;
		return 0;
	case 0xf07:
		return s->pinctl;
	case 0x707:
		if (d->pincap)
			s->pinctl = p8 & (d->pincap & PINCAP_OUT ? 0xc0 : 0x20);
		return 0;
	case 0xf08:
		return s->unsol;
	case 0x708:
		if (nid != HDA_NID_ROOT)
			s->unsol = p8 & 0xbf;
		return 0;
	case 0xf09:			/* pin sense: no presence detect */
		return 0;
	case 0xf0c:
		return s->eapd;
	case 0x70c:
		if (d->pincap & PINCAP_EAPD)
			s->eapd = p8 & 0x7;
		return 0;
	case 0xf1c:
		return d->pincap ? s->config : 0;
	case 0x71c: case 0x71d: case 0x71e: case 0x71f:
		if (d->pincap) {
			unsigned sh = 8 * (v12 - 0x71c);

			s->config = (s->config & ~(0xffu << sh)) |
				    (uint32_t)p8 << sh;
		}
		return 0;
	case 0xf20:
		return nid == HDA_NID_AFG ? c->subsystem : 0;
	case 0x720: case 0x721: case 0x722: case 0x723:
		if (nid == HDA_NID_AFG) {
			unsigned sh = 8 * (v12 - 0x720);

			c->subsystem = (c->subsystem & ~(0xffu << sh)) |
				       (uint32_t)p8 << sh;
		}
		return 0;
	case 0xf2d:			/* converter channel count: 2 */
		return is_converter(nid) ? 1 : 0;
	case 0x7ff:			/* function group reset */
		if (nid == HDA_NID_AFG)
			hda_codec_reset(c);
		return 0;
	}
	return 0;
}

bool hda_codec_stream_bound(const struct hda_codec *c, int dir,
			    unsigned tag, bool *silent)
{
	const struct hda_node_state *conv =
		&c->node[dir ? HDA_NID_ADC : HDA_NID_DAC];
	const struct hda_node_state *pin =
		&c->node[dir ? HDA_NID_IN_PIN : HDA_NID_OUT_PIN];
	unsigned amp = dir ? 0 : 1;

	if (!tag || (conv->stream >> 4) != tag) {
		*silent = true;
		return false;
	}
	*silent = ((conv->amp[amp][0] & AMP_MUTE) &&
		   (conv->amp[amp][1] & AMP_MUTE)) ||
		  !(pin->pinctl & (dir ? PINCTL_IN_EN : PINCTL_OUT_EN)) ||
		  conv->power == 3;
	return true;
}

#define AMP_STEPS	0x4a	/* 0 dB; each step below is -1 dB */

/* 10^(-k/20) in Q16, k = 0..74 dB below the amps' top step (1 dB steps:
 * AMP_CAPS). */
static const uint32_t db_down[AMP_STEPS + 1] = {
	65536, 58409, 52057, 46396, 41350, 36854, 32846, 29274,
	26090, 23253, 20724, 18471, 16462, 14672, 13076, 11654,
	10387, 9257, 8250, 7353, 6554, 5841, 5206, 4640,
	4135, 3685, 3285, 2927, 2609, 2325, 2072, 1847,
	1646, 1467, 1308, 1165, 1039, 926, 825, 735,
	655, 584, 521, 464, 414, 369, 328, 293,
	261, 233, 207, 185, 165, 147, 131, 117,
	104, 93, 83, 74, 66, 58, 52, 46,
	41, 37, 33, 29, 26, 23, 21, 18,
	16, 15, 13,
};

void hda_codec_stream_gain(const struct hda_codec *c, int dir, uint32_t gain[2])
{
	const struct hda_node_state *conv = &c->node[dir ? HDA_NID_ADC : HDA_NID_DAC];
	unsigned amp = dir ? 0 : 1;

	for (unsigned ch = 0; ch < 2; ch++) {
		uint8_t v = conv->amp[amp][ch];
		unsigned step = v & 0x7f;

		if (step > AMP_STEPS)
			step = AMP_STEPS;
		gain[ch] = v & AMP_MUTE ? 0 : db_down[AMP_STEPS - step];
	}
}

GVariant *hda_codec_save(const struct hda_codec *c)
{
	GVariantBuilder b;

	g_variant_builder_init(&b, G_VARIANT_TYPE("a(qyyyyyyuay)"));
	for (unsigned n = 0; n < HDA_CODEC_NODES; n++) {
		const struct hda_node_state *s = &c->node[n];

		g_variant_builder_add(&b, "(qyyyyyyu@ay)", s->format, s->stream,
				      s->pinctl, s->power, s->eapd, s->connsel,
				      s->unsol, s->config,
				      g_variant_new_fixed_array(G_VARIANT_TYPE_BYTE,
								s->amp, 4, 1));
	}
	return g_variant_new("(a(qyyyyyyuay)u)", &b, c->subsystem);
}

int hda_codec_load(struct hda_codec *c, GVariant *v, char *err,
		   size_t errlen)
{
	struct hda_codec t;
	GVariant *nodes;
	int r = 0;

	if (!g_variant_is_of_type(v, G_VARIANT_TYPE(HDA_CODEC_STATE_TYPE)))
		return device_load_fail(err, errlen, "hda codec: bad state type");
	g_variant_get(v, "(@a(qyyyyyyuay)u)", &nodes, &t.subsystem);
	if (g_variant_n_children(nodes) != HDA_CODEC_NODES) {
		r = device_load_fail(err, errlen, "hda codec: %zu nodes, not %u",
				     (size_t)g_variant_n_children(nodes),
				     HDA_CODEC_NODES);
		goto out;
	}
	for (unsigned n = 0; n < HDA_CODEC_NODES; n++) {
		struct hda_node_state *s = &t.node[n];
		GVariant *amp;
		const uint8_t *a;
		gsize na;

		g_variant_get_child(nodes, n, "(qyyyyyyu@ay)", &s->format,
				    &s->stream, &s->pinctl, &s->power, &s->eapd,
				    &s->connsel, &s->unsol, &s->config, &amp);
		a = g_variant_get_fixed_array(amp, &na, 1);
		if (na == 4)
			memcpy(s->amp, a, 4);
		g_variant_unref(amp);
		if (na != 4 || s->power > 3 || s->connsel > 0) {
			r = device_load_fail(err, errlen,
					     "hda codec: node %u: bad state", n);
			goto out;
		}
	}
	*c = t;
out:
	g_variant_unref(nodes);
	return r;
}
