/* Support for the native tests and tools: a tiny check macro, a seeded random generator, the
 * bitwise reference CRCs (written from the catalogue's parameters, independent of the nibble
 * tables under test) and a byte sink that collects a device's replies. */
#ifndef FW_TEST_SUPPORT_H
#define FW_TEST_SUPPORT_H

#include <stdint.h>
#include <stdio.h>

#include "fw_device.h"
#include "fw_model.h"

extern int fw_failures;
extern int fw_checks;
#define CHECK(cond) \
    do { \
        fw_checks++; \
        if (!(cond)) { \
            fw_failures++; \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
        } \
    } while (0)

/* xorshift64*: deterministic from its seed */
typedef struct { uint64_t s; } fw_rng_t;
void fw_rng_seed(fw_rng_t *r, uint64_t seed);
uint32_t fw_rng_u32(fw_rng_t *r);
uint32_t fw_rng_below(fw_rng_t *r, uint32_t n);

uint16_t ref_crc16(const uint8_t *d, size_t n);
uint8_t ref_crc8(const uint8_t *d, size_t n);

/* Everything a device wrote, and the frames in it. */
typedef struct {
    uint8_t bytes[4096];
    unsigned n;
} fw_sink_t;
void fw_sink_write(void *ctx, const uint8_t *data, uint8_t n);

/* Frames (and CRC rejections) a decoder produced, copied out of its buffer. */
typedef struct {
    fw_frame_t f[64];
    uint8_t payload[64][FW_MAX_PAYLOAD];
    uint8_t raw[64][FW_MAX_FRAME];
    uint8_t rejected[64];
    int n;
} frames_t;
void fw_collect(void *ctx, const fw_frame_t *f, uint8_t rejected); /* ctx: frames_t */
void fw_feed(fw_decoder_t *d, const uint8_t *b, unsigned n, frames_t *fs);

/* The test groups (test_proto.c, test_device.c). */
void test_crc(void);
void test_doc_examples(void);
void test_decoder_resync(void);
void test_decoder_fuzz(double seconds, uint64_t seed);
void test_decoder_noise(uint64_t seed);
void test_device_all(void);

/* A device with the model driver and a sink, for tests. */
typedef struct {
    fw_config_t cfg;
    fw_model_t model;
    fw_device_t dev;
    fw_sink_t sink;
} fw_bench_t;
void fw_bench_init(fw_bench_t *b, const fw_config_t *cfg, uint32_t now_ms);

#endif
