/* virtio-blk data integrity against a model (blk_model.c): many requests
 * in flight (writes, overlapping reads, write-zeroes, flushes over mixed
 * overlay and base ranges), completions taken in whatever order they
 * come, and every
 * sector a read returns checked: it must hold the last data written
 * there, the data of a write still in flight at the time, or the base
 * image's data, never anything else (a hole's zeros, another sector's
 * data). For snapshot disks and read-write disks, with Linux AIO and
 * with the disk engine in manual mode, where the test runs every I/O
 * the disk started in a random order (and hands some back later than it
 * ran them); and with an overlay on a file system that runs out of
 * space: a write that failed must leave the old data readable. */
#ifndef KVMINI_TEST_BLK_MODEL_H
#define KVMINI_TEST_BLK_MODEL_H

#include <stdbool.h>
#include <stdint.h>

/* The checked fixture: a 4 MiB base image in a fresh directory, overlays
 * on tmpfs (/dev/shm) where there is one. */
void blk_model_setup(void);
void blk_model_teardown(void);
/* @rounds batches of up to 256 random requests in flight together on a
 * snapshot or read-write disk, with Linux AIO or the manual engine (the
 * I/O run in a random order), each sector read checked; then every
 * sector read back, and the image checked. Fixed @seed: a failure replays. */
void blk_model_run(bool snapshot, bool manual, uint64_t seed, unsigned rounds);
/* A snapshot whose overlay sits on a 16 KiB file system (a tmpfs of our
 * own in a private mount namespace, or RLIMIT_FSIZE where mounting is
 * not allowed): writes across 32 blocks in flight together, some fail,
 * and every failed one must leave the old data readable. */
void blk_model_overlay_full(bool manual, uint64_t seed);

#endif
