/* SPDX-License-Identifier: MIT */
/*
 * vmm-core/virtio/virtio_gpu.h - the virtio GPU device in 2D mode (virtio
 * 1.2 §5.7) on the PCI transport (virtio_pci.h, PCI ID 1af4:1050, class
 * 0x038000 "display, other"), rendering into the console (display/console.h).
 *
 * Queues: 0 the controlq, 1 the cursorq.  Features: VIRTIO_GPU_F_EDID only
 * (no VIRGL, no blobs, no UUIDs, no context init).  One scanout (scanout 0):
 * the console has one screen.
 *
 * Commands (§5.7.6.7-8): GET_DISPLAY_INFO, GET_EDID (an EDID 1.4 block whose
 * preferred detailed timing is the host's preferred size), RESOURCE_CREATE_2D
 * (the eight 32-bit formats of §5.7.6.8), RESOURCE_UNREF, SET_SCANOUT,
 * RESOURCE_FLUSH, TRANSFER_TO_HOST_2D, RESOURCE_ATTACH_BACKING,
 * RESOURCE_DETACH_BACKING on the controlq; UPDATE_CURSOR and MOVE_CURSOR on
 * the cursorq.  Every command completes before the next is read, so fences
 * (VIRTIO_GPU_FLAG_FENCE) are answered in order, each in its own response.
 *
 * Host memory: each resource's pixels are a host copy (width * height * 4
 * bytes) that TRANSFER_TO_HOST_2D fills from the backing pages, which are
 * kept only as a list of GPA ranges, each checked to lie in RAM and not to
 * overlap another, and read afresh through guest memory on every transfer.
 * All resources together (pixels, a fixed overhead each, backing lists)
 * are charged to a budget of VIRTIO_GPU_HOSTMEM bytes: a command past it
 * fails with ERR_OUT_OF_MEMORY, so a hostile driver cannot make the VMM
 * allocate without bound.
 *
 * The hardware cursor (a resource of at most 64x64) is drawn into the
 * console surface over the scanout, not handed to frontends: every
 * frontend (SDL, VNC, screenshots) then shows it with no interface of its
 * own, at the cost of redrawing its 64x64 rectangle when it moves.
 *
 * Display changes: virtio_gpu_request_size() (the console's request_size)
 * records the host's preferred size, which GET_DISPLAY_INFO and GET_EDID
 * report, sets VIRTIO_GPU_EVENT_DISPLAY in the configuration's events_read
 * and sends a configuration change interrupt; Linux's virtio_gpu driver then
 * re-reads the display info and EDID and reports a hotplug.
 *
 * Locking: every call with the device lock held.
 */
#ifndef VIVARIUM_VIRTIO_GPU_H
#define VIVARIUM_VIRTIO_GPU_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../device.h"
#include "../iofd.h"

struct pci_host;
struct guest_mem;
struct virtio_gpu;
struct console_hw_ops;

#define VIRTIO_GPU_DEVICE_ID		16	/* §5.7.1 */

/* Feature bits (§5.7.3). */
#define VIRTIO_GPU_F_VIRGL		0
#define VIRTIO_GPU_F_EDID		1

/* Configuration layout (§5.7.4), byte offsets of le32 fields. */
#define VIRTIO_GPU_CFG_EVENTS_READ	0
#define VIRTIO_GPU_CFG_EVENTS_CLEAR	4
#define VIRTIO_GPU_CFG_NUM_SCANOUTS	8
#define VIRTIO_GPU_CFG_NUM_CAPSETS	12
#define VIRTIO_GPU_CFG_LEN		16
#define VIRTIO_GPU_EVENT_DISPLAY	(1u << 0)

/* Command and response types (§5.7.6.7). */
#define VIRTIO_GPU_CMD_GET_DISPLAY_INFO		0x0100
#define VIRTIO_GPU_CMD_RESOURCE_CREATE_2D	0x0101
#define VIRTIO_GPU_CMD_RESOURCE_UNREF		0x0102
#define VIRTIO_GPU_CMD_SET_SCANOUT		0x0103
#define VIRTIO_GPU_CMD_RESOURCE_FLUSH		0x0104
#define VIRTIO_GPU_CMD_TRANSFER_TO_HOST_2D	0x0105
#define VIRTIO_GPU_CMD_RESOURCE_ATTACH_BACKING	0x0106
#define VIRTIO_GPU_CMD_RESOURCE_DETACH_BACKING	0x0107
#define VIRTIO_GPU_CMD_GET_CAPSET_INFO		0x0108
#define VIRTIO_GPU_CMD_GET_CAPSET		0x0109
#define VIRTIO_GPU_CMD_GET_EDID			0x010a
#define VIRTIO_GPU_CMD_UPDATE_CURSOR		0x0300
#define VIRTIO_GPU_CMD_MOVE_CURSOR		0x0301
#define VIRTIO_GPU_RESP_OK_NODATA		0x1100
#define VIRTIO_GPU_RESP_OK_DISPLAY_INFO		0x1101
#define VIRTIO_GPU_RESP_OK_EDID			0x1104
#define VIRTIO_GPU_RESP_ERR_UNSPEC		0x1200
#define VIRTIO_GPU_RESP_ERR_OUT_OF_MEMORY	0x1201
#define VIRTIO_GPU_RESP_ERR_INVALID_SCANOUT_ID	0x1202
#define VIRTIO_GPU_RESP_ERR_INVALID_RESOURCE_ID	0x1203
#define VIRTIO_GPU_RESP_ERR_INVALID_CONTEXT_ID	0x1204
#define VIRTIO_GPU_RESP_ERR_INVALID_PARAMETER	0x1205
#define VIRTIO_GPU_FLAG_FENCE			(1u << 0)

/* Resource formats (§5.7.6.8), named by their bytes in memory order. */
#define VIRTIO_GPU_FORMAT_B8G8R8A8_UNORM	1
#define VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM	2
#define VIRTIO_GPU_FORMAT_A8R8G8B8_UNORM	3
#define VIRTIO_GPU_FORMAT_X8R8G8B8_UNORM	4
#define VIRTIO_GPU_FORMAT_R8G8B8A8_UNORM	67
#define VIRTIO_GPU_FORMAT_X8B8G8R8_UNORM	68
#define VIRTIO_GPU_FORMAT_A8B8G8R8_UNORM	121
#define VIRTIO_GPU_FORMAT_R8G8B8X8_UNORM	134

/* Sizes of the wire structures (§5.7.6), bytes. */
#define VIRTIO_GPU_HDR_LEN		24	/* struct virtio_gpu_ctrl_hdr */
#define VIRTIO_GPU_MAX_SCANOUTS		16
#define VIRTIO_GPU_DISPLAY_INFO_LEN	(24 + 16 * 24)
#define VIRTIO_GPU_EDID_RESP_LEN	(24 + 8 + 1024)
#define VIRTIO_GPU_CURSOR_CMD_LEN	56

/* Limits. */
#define VIRTIO_GPU_QUEUE_SIZE		256
#define VIRTIO_GPU_HOSTMEM		(256u << 20)	/* bytes, all resources */
#define VIRTIO_GPU_RES_OVERHEAD		4096u	/* bytes charged per resource */
#define VIRTIO_GPU_MAX_DIM		16384u	/* pixels, either side */
#define VIRTIO_GPU_MAX_BACKING		16384u	/* entries per resource */
#define VIRTIO_GPU_CURSOR_DIM		64u	/* pixels, either side */
/* The preferred size offered to the guest: clamped to this range. */
#define VIRTIO_GPU_MIN_WIDTH		320u
#define VIRTIO_GPU_MIN_HEIGHT		200u
#define VIRTIO_GPU_DEFAULT_WIDTH	1024u
#define VIRTIO_GPU_DEFAULT_HEIGHT	768u
#define VIRTIO_GPU_EDID_LEN		128u

struct virtio_gpu_config {
	struct pci_host *pci;
	uint8_t devfn;			/* slot << 3 | function */
	const struct guest_mem *mem;
	struct iofd iofd;		/* doorbells (iofd.h); zero: none */
	/* The preferred size at power-on, pixels (0: the default 1024x768);
	 * clamped as virtio_gpu_request_size() clamps. */
	unsigned width, height;
};

/*
 * virtio_gpu_new - create the device and put it on @cfg->pci at
 * @cfg->devfn.  Call with the device lock held (or before the VM runs).
 * Returns the device, or NULL with a one-line reason in @err.
 */
struct virtio_gpu *virtio_gpu_new(const struct virtio_gpu_config *cfg,
				  char *err, size_t errlen);
/* Take the device off the bus and free it and its resources; NULL-safe. */
void virtio_gpu_free(struct virtio_gpu *g);

/*
 * virtio_gpu_request_size - the host would like a @width x @height screen
 * (pixels; clamped to VIRTIO_GPU_MIN_* .. CONSOLE_MAX_*): report it as
 * scanout 0's preferred mode in GET_DISPLAY_INFO and GET_EDID, set
 * VIRTIO_GPU_EVENT_DISPLAY and send a configuration change interrupt (the
 * transport sends it only after DRIVER_OK; the event bit stays set for a
 * driver that loads later).  Returns 0.
 */
int virtio_gpu_request_size(struct virtio_gpu *g, unsigned width,
			    unsigned height);
/* The preferred size now (after clamping). */
void virtio_gpu_preferred_size(const struct virtio_gpu *g, unsigned *width,
			       unsigned *height);
/* Is the driver showing a resource on scanout 0 (SET_SCANOUT with a
 * resource, not undone by a reset or SET_SCANOUT to resource 0)? */
bool virtio_gpu_scanout_active(const struct virtio_gpu *g);

/*
 * virtio_gpu_edid - the 128-byte EDID 1.4 base block (VESA E-EDID A2) for a
 * @width x @height preferred mode at 60 Hz (CVT reduced blanking timings),
 * with the monitor name "Vivarium", the established 640x480, 800x600 and
 * 1024x768 modes, and the checksum.  @out: VIRTIO_GPU_EDID_LEN bytes.
 */
void virtio_gpu_edid(unsigned width, unsigned height, uint8_t *out);

/* The console side (opaque: the struct virtio_gpu): update() shows
 * scanout 0 and the cursor; request_size() is virtio_gpu_request_size().
 * No text(). */
extern const struct console_hw_ops virtio_gpu_console_ops;

/* The transport, for tests. */
struct virtio_pci *virtio_gpu_transport(struct virtio_gpu *g);

/*
 * Its lifecycle in the machine's device table (device.h): reset is the
 * transport's (the driver's reset: every resource freed, scanout and cursor
 * off; the preferred size stays).  State VIRTIO_GPU_STATE_TYPE, version 1:
 *  (the transport's VIRTIO_PCI_STATE_TYPE,
 *   u preferred width, u preferred height, u events_read,
 *   a(uuuu a(tu) u ay) the resources: id, format, width, height, backing
 *     (GPA, length) entries, then the pixels: their byte count
 *     (width * height * 4) and a zstd frame of them,
 *   (uuuuu) scanout 0: resource id (0: off), source rectangle x, y, w, h,
 *   (uuuuuuay) the cursor: resource id (0: hidden), scanout id (0), x, y
 *     (top left, as int32 bits), hot x, hot y (< 64), and its image as
 *     UPDATE_CURSOR copied it: 64x64 pixels of B8G8R8A8 bytes (16 KiB))
 * Load checks every field as the commands would (ids, formats, sizes, the
 * budget, backing entries in RAM and not overlapping, the decompressed
 * size, the scanout rectangle inside its resource).
 */
#define VIRTIO_GPU_STATE_TYPE \
	"((yttuuqqyyba(qqttt(qbbbbtttqqqbb)))" \
	"uuua(uuuua(tu)uay)(uuuuu)(uuuuuuay))"
extern const struct device_ops virtio_gpu_device_ops;

#endif
