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

/* A device with the model driver and a sink, for tests. */
typedef struct {
    fw_config_t cfg;
    fw_model_t model;
    fw_device_t dev;
    fw_sink_t sink;
} fw_bench_t;
void fw_bench_init(fw_bench_t *b, const fw_config_t *cfg, uint32_t now_ms);

#endif
