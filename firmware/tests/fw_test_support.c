#include "fw_test_support.h"

#include <string.h>

int fw_failures;
int fw_checks;

void fw_rng_seed(fw_rng_t *r, uint64_t seed) { r->s = seed ? seed : 0x9E3779B97F4A7C15ull; }

uint32_t fw_rng_u32(fw_rng_t *r)
{
    r->s ^= r->s >> 12;
    r->s ^= r->s << 25;
    r->s ^= r->s >> 27;
    return (uint32_t)((r->s * 2685821657736338717ull) >> 32);
}

uint32_t fw_rng_below(fw_rng_t *r, uint32_t n) { return n ? fw_rng_u32(r) % n : 0; }

uint16_t ref_crc16(const uint8_t *d, size_t n)
{
    uint16_t c = 0xFFFF;
    while (n--) {
        c ^= (uint16_t)(*d++ << 8);
        for (int k = 0; k < 8; k++)
            c = (uint16_t)(c & 0x8000 ? (c << 1) ^ 0x1021 : c << 1);
    }
    return c;
}

uint8_t ref_crc8(const uint8_t *d, size_t n)
{
    uint8_t c = 0;
    while (n--) {
        c ^= *d++;
        for (int k = 0; k < 8; k++)
            c = (uint8_t)(c & 0x80 ? (c << 1) ^ 0x07 : c << 1);
    }
    return c;
}

void fw_sink_write(void *ctx, const uint8_t *data, uint8_t n)
{
    fw_sink_t *s = (fw_sink_t *)ctx;
    if (s->n + n <= sizeof s->bytes) {
        memcpy(s->bytes + s->n, data, n);
        s->n += n;
    }
}

void fw_bench_init(fw_bench_t *b, const fw_config_t *cfg, uint32_t now_ms)
{
    fw_driver_t *drv;
    memset(b, 0, sizeof *b);
    b->cfg = *cfg;
    drv = fw_model_init(&b->model, cfg->park, cfg->tau_ms, now_ms);
    fw_device_init(&b->dev, &b->cfg, drv, fw_sink_write, &b->sink, now_ms);
}

void fw_collect(void *ctx, const fw_frame_t *f, uint8_t rejected)
{
    frames_t *fs = (frames_t *)ctx;
    if (fs->n < 64) {
        fs->f[fs->n] = *f;
        memcpy(fs->payload[fs->n], f->payload, f->len);
        fs->f[fs->n].payload = fs->payload[fs->n];
        memcpy(fs->raw[fs->n], f->raw, FW_HEADER_LEN + f->len + FW_CRC_LEN);
        fs->f[fs->n].raw = fs->raw[fs->n];
        fs->rejected[fs->n] = rejected;
        fs->n++;
    }
}

void fw_feed(fw_decoder_t *d, const uint8_t *b, unsigned n, frames_t *fs)
{
    for (unsigned k = 0; k < n; k++)
        fw_decoder_push(d, b[k], fw_collect, fs);
}

/* Decode the replies collected in a sink (then empty it). */
