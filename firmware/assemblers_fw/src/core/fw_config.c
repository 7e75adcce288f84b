#include "fw_config.h"

#include <string.h>

#include "fw_crc.h"

void fw_config_defaults(fw_config_t *c)
{
    uint8_t k;
    memset(c, 0, sizeof *c);
    c->address = FW_DEFAULT_ADDRESS;
    c->flags = FW_DEFAULT_FLAGS;
    c->watchdog_ms = FW_DEFAULT_WATCHDOG_MS;
    c->baud = FW_DEFAULT_BAUD;
    c->device_id = FW_DEFAULT_DEVICE_ID;
    c->max_step = FW_DEFAULT_MAX_STEP;
    c->tau_ms = FW_DEFAULT_TAU_MS;
    c->step_hz = FW_DEFAULT_STEP_HZ;
    for (k = 0; k < 6; k++) {
        c->cmin[k] = FW_DEFAULT_CMIN;
        c->cmax[k] = FW_DEFAULT_CMAX;
        c->park[k] = FW_DEFAULT_PARK;
    }
}

void fw_config_pack(const fw_config_t *c, uint8_t *out)
{
    uint8_t k;
    out[0] = 'A';
    out[1] = 'F';
    out[2] = FW_CONFIG_VERSION;
    out[3] = FW_CONFIG_BYTES;
    out[4] = c->address;
    out[5] = c->flags;
    fw_put_u16(out + 6, c->watchdog_ms);
    fw_put_u32(out + 8, c->baud);
    fw_put_u32(out + 12, c->device_id);
    fw_put_u32(out + 16, c->max_step);
    fw_put_u16(out + 20, c->tau_ms);
    fw_put_u16(out + 22, c->step_hz);
    for (k = 0; k < 6; k++) {
        fw_put_i32(out + 24 + 4 * k, c->cmin[k]);
        fw_put_i32(out + 48 + 4 * k, c->cmax[k]);
        fw_put_i32(out + 72 + 4 * k, c->park[k]);
    }
    fw_put_u16(out + 96, fw_crc16(out, 96));
}

int fw_config_unpack(fw_config_t *c, const uint8_t *in)
{
    uint8_t k;
    fw_config_t t;
    if (in[0] != 'A' || in[1] != 'F' || in[2] != FW_CONFIG_VERSION || in[3] != FW_CONFIG_BYTES
        || fw_crc16(in, 96) != fw_get_u16(in + 96))
        return -1;
    t.address = in[4];
    t.flags = in[5];
    t.watchdog_ms = fw_get_u16(in + 6);
    t.baud = fw_get_u32(in + 8);
    t.device_id = fw_get_u32(in + 12);
    t.max_step = fw_get_u32(in + 16);
    t.tau_ms = fw_get_u16(in + 20);
    t.step_hz = fw_get_u16(in + 22);
    for (k = 0; k < 6; k++) {
        t.cmin[k] = fw_get_i32(in + 24 + 4 * k);
        t.cmax[k] = fw_get_i32(in + 48 + 4 * k);
        t.park[k] = fw_get_i32(in + 72 + 4 * k);
    }
    if (fw_config_check(&t) != 0)
        return -1;
    *c = t;
    return 0;
}

int fw_config_check(const fw_config_t *c)
{
    uint8_t k;
    if (c->watchdog_ms == 0 || c->baud == 0 || c->tau_ms == 0 || c->step_hz == 0)
        return -1;
    for (k = 0; k < 6; k++)
        if (c->cmin[k] > c->cmax[k] || c->park[k] < c->cmin[k] || c->park[k] > c->cmax[k])
            return -1;
    return 0;
}
