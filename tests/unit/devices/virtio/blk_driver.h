/* A small virtio-blk driver for unit tests: guest RAM in malloc'd
 * memory, one split queue with indirect chains (so every head can be in
 * flight at once), a real event loop that the test runs with
 * evloop_run_once(), and the device under test made by
 * virtio_blk_create() as kvmini makes it. Each head owns a fixed region
 * of guest memory: its indirect table, request header, status byte and
 * up to BDRV_DATA_MAX bytes of data. */
#ifndef KVMINI_TEST_BLK_DRIVER_H
#define KVMINI_TEST_BLK_DRIVER_H

#include <stdbool.h>
#include <stdint.h>

#include "kvmini/event_loop.h"
#include "kvmini/virtio.h"
#include "kvmini/virtio_blk.h"

#define BDRV_QSIZE 256
#define BDRV_SEG_MAX 8
#define BDRV_DATA_MAX (60 * 1024)

/* One data buffer of a request: @len bytes at @off within the head's
 * data area (so tests choose alignments). */
struct bdrv_seg {
	uint32_t off, len;
};

struct bdrv_req {
	bool busy;
	uint32_t type;
	uint64_t sector;
	unsigned nr_segs;
	struct bdrv_seg segs[BDRV_SEG_MAX];
};

struct bdrv {
	struct virtio_dev dev;
	struct evloop *loop;
	struct guest_mem gm;
	uint8_t *ram;
	int kick_fd;                /* a guest's kick, as a transport's ioeventfd */
	bool threaded;              /* the loop runs on its own thread (evloop_start) */
	uint16_t qsize, avail_idx, used_seen;
	unsigned irqs, config_irqs;
	unsigned busy;
	uint32_t last_len;          /* used length of the last bdrv_next_used */
	struct bdrv_req req[BDRV_QSIZE];
};

/* Creates the loop, the guest memory and the device, and plays the
 * driver's part of the handshake (indirect descriptors, no EVENT_IDX
 * unless @event_idx) with a queue of @qsize. 0 or the create error. */
int bdrv_open(struct bdrv *b, const struct virtio_blk_cfg *cfg, uint16_t qsize, bool event_idx,
	      struct kv_err *e);
void bdrv_close(struct bdrv *b);

/* Host pointer to byte @off of head @head's data area. */
uint8_t *bdrv_data(struct bdrv *b, uint16_t head);
/* A free head, or -1 when every head is in flight. */
int bdrv_free_head(struct bdrv *b);
/* Makes request @type at @sector available on head @head with @n data
 * segments (device-readable for OUT/DISCARD/WRITE_ZEROES, writable
 * otherwise) followed by the status byte; no kick. */
void bdrv_post(struct bdrv *b, uint16_t head, uint32_t type, uint64_t sector,
	       const struct bdrv_seg *segs, unsigned n);
/* The driver's kick: queue_notify under the device lock, as the
 * transports call it. */
void bdrv_kick(struct bdrv *b);
/* A kick from another thread (a vCPU): signals kick_fd, whose event-loop
 * callback does bdrv_kick. */
void bdrv_kick_async(struct bdrv *b);
/* The next used element, running the event loop while there is none
 * (or, with @b->threaded, waiting for its thread): for up to
 * @timeout_ms, or once without waiting when it is 0. False when none
 * came. */
bool bdrv_next_used(struct bdrv *b, int timeout_ms, uint16_t *head, uint32_t *len,
		    uint8_t *status);
/* One request, posted, kicked and waited for; returns its status. */
uint8_t bdrv_do(struct bdrv *b, uint32_t type, uint64_t sector, const struct bdrv_seg *segs,
		unsigned n);
/* The status byte of head @head as the device left it. */
uint8_t bdrv_status(struct bdrv *b, uint16_t head);

#endif
