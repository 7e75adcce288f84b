/* The controller's side of docs/protocol.md: commands, states, latched faults, the watchdog,
 * idempotent repeats, the address filter, the device's own limits, IDENTIFY.
 *
 * Feed received bytes with fw_device_rx(); call fw_device_poll() from the main loop (at least
 * every millisecond or so: it runs the watchdog and the driver). Replies go out through the
 * write callback as whole frames. All times are the board's own milliseconds (a wrapping u32). */
#ifndef FW_DEVICE_H
#define FW_DEVICE_H

#include <stdint.h>
#include "fw_config.h"
#include "fw_driver.h"
#include "fw_proto.h"

FW_EXTERN_C_BEGIN

typedef void (*fw_write_fn)(void *ctx, const uint8_t *data, uint8_t n);

typedef struct {
    fw_config_t cfg;
    fw_driver_t *drv;
    fw_write_fn write;
    void *write_ctx;
    fw_decoder_t dec;
    uint32_t now_ms;
    uint32_t last_rx_ms;  /* last valid frame for this device */
    uint8_t armed;        /* watchdog armed (by the first valid frame) */
    uint8_t state;        /* enum fw_state */
    uint16_t faults;      /* FW_F_* latched */
    uint8_t have_tick;
    uint32_t last_tick;
    uint16_t last_seq;
    int32_t target[6];
    /* the last command processed and its reply, for idempotent repeats */
    uint8_t cache_valid, cache_type, cache_reply_len;
    uint16_t cache_seq;
    uint8_t cache_payload[FW_LEN_SETPOINT];
    uint8_t cache_reply[FW_HEADER_LEN + FW_LEN_NAK + FW_CRC_LEN];
    /* counters, for diagnostics */
    uint32_t executed, replies, watchdog_trips;
} fw_device_t;

void fw_device_init(fw_device_t *d, const fw_config_t *cfg, fw_driver_t *drv,
                    fw_write_fn write, void *write_ctx, uint32_t now_ms);
void fw_device_rx(fw_device_t *d, const uint8_t *data, uint16_t n, uint32_t now_ms);
void fw_device_poll(fw_device_t *d, uint32_t now_ms);

FW_EXTERN_C_END

#endif
