/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/audio/hda_codec.h - a duplex HDA codec (Intel High Definition
 * Audio 1.0a §7): codec address 0 with
 *   NID 0  root node (vendor 0x1af4:0x0033, revision 0x00100101)
 *   NID 1  audio function group (subsystem 0x1af41100)
 *   NID 2  audio output converter (DAC), stereo, output amp with mute
 *   NID 3  pin complex: line out (rear, green jack), connected to NID 2
 *   NID 4  audio input converter (ADC), stereo, input amp with mute,
 *          connected to NID 5
 *   NID 5  pin complex: microphone in (rear, pink jack)
 * Both converters take 16/20/24/32-bit PCM at 8-192 kHz (PCM sizes and
 * rates parameter 0x001e07ff).  The verbs are §7.3.3's: parameters,
 * converter format, stream/channel, amp gain/mute, pin widget control,
 * connection select/list, power state, EAPD/BTL, unsolicited response
 * enable, pin sense, config default, subsystem id, function reset.  An
 * unknown verb or a NID that does not exist answers 0 (the driver's
 * "no response" case is a timeout; 0 is what QEMU's and real codecs'
 * unimplemented verbs give) and never fails.
 *
 * Amp gains are kept and read back but not applied to samples (the host's
 * mixer sets the volume); a muted DAC amp, or a line-out pin with output
 * disabled, makes the playback silent; likewise the ADC amp and the mic
 * pin's input enable for recording.
 */
#ifndef VIVARIUM_HDA_CODEC_H
#define VIVARIUM_HDA_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _GVariant GVariant;

#define HDA_CODEC_NODES		6
#define HDA_NID_ROOT		0
#define HDA_NID_AFG		1
#define HDA_NID_DAC		2
#define HDA_NID_OUT_PIN		3
#define HDA_NID_ADC		4
#define HDA_NID_IN_PIN		5

/* Parameters (verb 0xf00, §7.3.4). */
#define HDA_PAR_VENDOR_ID	0x00
#define HDA_PAR_REVISION_ID	0x02
#define HDA_PAR_NODE_COUNT	0x04
#define HDA_PAR_FG_TYPE		0x05
#define HDA_PAR_AFG_CAP		0x08
#define HDA_PAR_WIDGET_CAP	0x09
#define HDA_PAR_PCM		0x0a
#define HDA_PAR_STREAM_FORMATS	0x0b
#define HDA_PAR_PIN_CAP		0x0c
#define HDA_PAR_AMP_IN_CAP	0x0d
#define HDA_PAR_CONN_LEN	0x0e
#define HDA_PAR_POWER_STATE	0x0f
#define HDA_PAR_PROC_CAP	0x10
#define HDA_PAR_GPIO_COUNT	0x11
#define HDA_PAR_AMP_OUT_CAP	0x12
#define HDA_PAR_VOL_KNOB_CAP	0x13

#define HDA_CODEC_VENDOR_ID	0x1af40033u
#define HDA_CODEC_SUBSYSTEM	0x1af41100u
#define HDA_CODEC_PCM		0x001e07ffu	/* 16/20/24/32 bit, 8k-192k */

/* What the guest set on each node (the state save/load keeps). */
struct hda_node_state {
	uint16_t format;		/* converter format (§7.3.3.8) */
	uint8_t stream;			/* stream tag << 4 | channel */
	uint8_t pinctl;			/* pin widget control */
	uint8_t power;			/* power state set */
	uint8_t eapd;			/* EAPD/BTL enable */
	uint8_t connsel;		/* connection select */
	uint8_t unsol;			/* unsolicited response enable */
	uint32_t config;		/* configuration default */
	uint8_t amp[2][2];		/* [output][right]: mute << 7 | gain */
};

struct hda_codec {
	struct hda_node_state node[HDA_CODEC_NODES];
	uint32_t subsystem;		/* the AFG's subsystem id */
};

/* Power-on state (also the function group reset, verb 0x7ff). */
void hda_codec_reset(struct hda_codec *c);

/*
 * hda_codec_verb - execute one command: @verb is a CORB entry's low 28
 * bits (NID in 27:20, verb and payload in 19:0; §7.3); the codec address
 * has been matched by the caller.  Returns the 32-bit response (0 for
 * unknown verbs and absent NIDs).
 */
uint32_t hda_codec_verb(struct hda_codec *c, uint32_t verb);

/* The converter of @dir (0 out, 1 in) streams on stream tag @tag (1-15):
 * whether it does, and whether its path (amp mute, pin control) is
 * silent. */
bool hda_codec_stream_bound(const struct hda_codec *c, int dir,
			    unsigned tag, bool *silent);

/* The gain of @dir's path (0: the DAC's output amp, 1: the ADC's input
 * amp), per channel (left, right) as Q16 multipliers: 0x10000 at 0 dB
 * (the amps' top step), one step down is -1 dB, 0 for a muted channel
 * (§7.3.3.7, §7.3.4.10). */
#define HDA_GAIN_UNITY		0x10000u
void hda_codec_stream_gain(const struct hda_codec *c, int dir,
			   uint32_t gain[2]);

/* State: HDA_CODEC_STATE_TYPE, per node (format, stream, pinctl, power,
 * eapd, connsel, unsol, config, 4 amp bytes) and the subsystem id. */
#define HDA_CODEC_STATE_TYPE "(a(qyyyyyyuay)u)"
GVariant *hda_codec_save(const struct hda_codec *c);
/* Refuses (-EINVAL, a line in @err) a wrong node count or amp array, a
 * power state above D3 or a connection index past the list. */
int hda_codec_load(struct hda_codec *c, GVariant *v, char *err,
		   size_t errlen);

#endif
