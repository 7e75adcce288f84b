#include "fw_device.h"

#include <string.h>

static uint8_t is_command(uint8_t type)
{
    return type == FW_SETPOINT || type == FW_STOP || type == FW_ESTOP || type == FW_CLEAR_FAULTS;
}

/* Encode and send one reply; returns its length (the bytes stay in out). */
static uint8_t send(fw_device_t *d, uint8_t *out, uint8_t type, uint16_t seq,
                    const uint8_t *payload, uint8_t len)
{
    uint8_t n = fw_encode(out, type, d->cfg.address, seq, payload, len);
    if (n && d->write) {
        d->write(d->write_ctx, out, n);
        d->replies++;
    }
    return n;
}

static uint8_t ack(fw_device_t *d, uint8_t *out, uint8_t of_type, uint16_t seq)
{
    uint8_t p[FW_LEN_ACK];
    p[0] = of_type;
    p[1] = d->state;
    fw_put_u16(p + 2, d->faults);
    return send(d, out, FW_ACK, seq, p, sizeof p);
}

static uint8_t nak(fw_device_t *d, uint8_t *out, uint8_t of_type, uint16_t seq, uint8_t code)
{
    uint8_t p[FW_LEN_NAK];
    p[0] = of_type;
    p[1] = d->state;
    fw_put_u16(p + 2, d->faults);
    p[4] = code;
    p[5] = 0;
    return send(d, out, FW_NAK, seq, p, sizeof p);
}

/* Hold where the actuators are now. */
static void hold_here(fw_device_t *d) { d->drv->hold(d->drv, d->target); }

static uint8_t on_setpoint(fw_device_t *d, const fw_frame_t *f, uint8_t *out)
{
    int32_t c[6];
    uint8_t k;
    if (d->state == FW_ESTOPPED)
        return nak(d, out, f->type, f->seq, FW_NAK_ESTOPPED);
    if (d->faults & FW_F_DEVICE)
        return nak(d, out, f->type, f->seq, FW_NAK_DEVICE_FAULT);
    if (d->faults & FW_F_WATCHDOG)
        return nak(d, out, f->type, f->seq, FW_NAK_WATCHDOG);
    for (k = 0; k < 6; k++)
        c[k] = fw_get_i32(f->payload + 4 + 4 * k);
    for (k = 0; k < 6; k++) {
        /* the soft stroke, then the largest step per frame (from the current target) */
        int64_t step = (int64_t)c[k] - d->target[k];
        if (step < 0)
            step = -step;
        if (c[k] < d->cfg.cmin[k] || c[k] > d->cfg.cmax[k]
            || (d->cfg.max_step && step > (int64_t)d->cfg.max_step)) {
            d->faults |= FW_F_LIMIT;
            return nak(d, out, f->type, f->seq, FW_NAK_LIMIT);
        }
    }
    for (k = 0; k < 6; k++)
        d->target[k] = c[k];
    d->drv->set_target(d->drv, d->target);
    d->state = FW_RUNNING;
    d->have_tick = 1;
    d->last_tick = fw_get_u32(f->payload);
    d->last_seq = f->seq;
    d->executed++;
    return ack(d, out, f->type, f->seq);
}

static void on_status(fw_device_t *d, const fw_frame_t *f, uint8_t *out)
{
    uint8_t p[FW_LEN_STATUS];
    int32_t pos[6];
    uint8_t k;
    d->drv->position(d->drv, pos);
    memset(p, 0, sizeof p);
    p[0] = d->state;
    fw_put_u16(p + 2, d->faults);
    fw_put_u32(p + 4, d->have_tick ? d->last_tick : FW_NO_TICK);
    fw_put_u16(p + 8, d->last_seq);
    for (k = 0; k < 6; k++) {
        fw_put_i32(p + 12 + 4 * k, pos[k]);
        fw_put_i32(p + 36 + 4 * k, d->target[k]);
    }
    send(d, out, FW_STATUS, f->seq, p, sizeof p);
}

static void on_identify(fw_device_t *d, const fw_frame_t *f, uint8_t *out)
{
    uint8_t p[FW_LEN_IDENT];
    p[0] = d->cfg.address;
    p[1] = FW_PROTOCOL_VERSION;
    fw_put_u16(p + 2, FW_VERSION);
    fw_put_u32(p + 4, d->cfg.device_id);
    send(d, out, FW_IDENT, f->seq, p, sizeof p);
}

static void enter_estop(fw_device_t *d)
{
    hold_here(d);
    d->drv->enable(d->drv, 0);
    d->state = FW_ESTOPPED;
    d->faults |= FW_F_ESTOP;
}

static void handle(fw_device_t *d, const fw_frame_t *f)
{
    uint8_t out[FW_MAX_FRAME];
    uint8_t n = 0;
    if (f->address != d->cfg.address && f->type != FW_IDENTIFY)
        return; /* another controller's frame: not even the watchdog notices */
    d->last_rx_ms = d->now_ms;
    d->armed = 1;
    if (d->cache_valid && f->type == d->cache_type && f->seq == d->cache_seq
        && memcmp(f->payload, d->cache_payload, f->len) == 0) {
        /* a repeat of the last command: resend its reply, do not execute it again */
        if (d->write) {
            d->write(d->write_ctx, d->cache_reply, d->cache_reply_len);
            d->replies++;
        }
        return;
    }
    switch (f->type) {
    case FW_SETPOINT:
        n = on_setpoint(d, f, out);
        break;
    case FW_STATUS_QUERY:
        on_status(d, f, out);
        break;
    case FW_HEARTBEAT:
        ack(d, out, f->type, f->seq);
        break;
    case FW_STOP:
        hold_here(d);
        if (d->state != FW_ESTOPPED && d->state != FW_FAULTED)
            d->state = FW_HOLD;
        n = ack(d, out, f->type, f->seq);
        break;
    case FW_ESTOP:
        enter_estop(d);
        n = ack(d, out, f->type, f->seq);
        break;
    case FW_CLEAR_FAULTS:
        d->faults = 0;
        if (d->state == FW_ESTOPPED || d->state == FW_FAULTED) {
            d->drv->enable(d->drv, 1);
            d->state = FW_HOLD;
            hold_here(d);
        }
        n = ack(d, out, f->type, f->seq);
        break;
    case FW_IDENTIFY:
        on_identify(d, f, out);
        break;
    default: /* a reply type sent to us: ignored (it did feed the watchdog) */
        break;
    }
    if (is_command(f->type) && n && n <= sizeof d->cache_reply) {
        d->cache_valid = 1;
        d->cache_type = f->type;
        d->cache_seq = f->seq;
        memcpy(d->cache_payload, f->payload, f->len);
        memcpy(d->cache_reply, out, n);
        d->cache_reply_len = n;
    }
}

static void on_frame(void *ctx, const fw_frame_t *f, uint8_t rejected)
{
    fw_device_t *d = (fw_device_t *)ctx;
    if (rejected) {
        /* the header is trustworthy, the payload is not: NAK BAD_CRC so the host retransmits
         * at once. The watchdog is not fed, the repeat cache is left alone. */
        uint8_t out[FW_HEADER_LEN + FW_LEN_NAK + FW_CRC_LEN];
        d->faults |= FW_F_COMM;
        if (f->address == d->cfg.address || f->type == FW_IDENTIFY)
            nak(d, out, f->type, f->seq, FW_NAK_BAD_CRC);
        return;
    }
    handle(d, f);
}

static void run_watchdog(fw_device_t *d)
{
    if (d->armed && (uint32_t)(d->now_ms - d->last_rx_ms) > d->cfg.watchdog_ms) {
        d->armed = 0;
        d->cache_valid = 0;
        d->faults |= FW_F_WATCHDOG;
        if (d->state != FW_ESTOPPED && d->state != FW_FAULTED)
            d->state = FW_HOLD;
        hold_here(d);
        d->watchdog_trips++;
    }
}

static void run_inputs(fw_device_t *d)
{
    uint8_t in = d->drv->faults(d->drv);
    if ((in & FW_DRV_FAULT_ESTOP) && d->state != FW_ESTOPPED)
        enter_estop(d);
    if ((in & FW_DRV_FAULT_DEVICE) && !(d->faults & FW_F_DEVICE)) {
        d->faults |= FW_F_DEVICE;
        if (d->state != FW_ESTOPPED)
            d->state = FW_FAULTED;
        hold_here(d);
    }
}

static void advance(fw_device_t *d, uint32_t now_ms)
{
    d->now_ms = now_ms;
    d->drv->update(d->drv, now_ms);
}

void fw_device_init(fw_device_t *d, const fw_config_t *cfg, fw_driver_t *drv,
                    fw_write_fn write, void *write_ctx, uint32_t now_ms)
{
    memset(d, 0, sizeof *d);
    d->cfg = *cfg;
    d->drv = drv;
    d->write = write;
    d->write_ctx = write_ctx;
    d->now_ms = now_ms;
    d->state = FW_IDLE;
    fw_decoder_init(&d->dec);
    drv->enable(drv, 1);
    hold_here(d);
}

void fw_device_rx(fw_device_t *d, const uint8_t *data, uint16_t n, uint32_t now_ms)
{
    advance(d, now_ms);
    run_watchdog(d); /* a frame after the deadline comes too late, however soon we look */
    while (n--)
        fw_decoder_push(&d->dec, *data++, on_frame, d);
}

void fw_device_poll(fw_device_t *d, uint32_t now_ms)
{
    advance(d, now_ms);
    run_watchdog(d);
    run_inputs(d);
}
