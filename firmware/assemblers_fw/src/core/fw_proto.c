#include "fw_proto.h"

#include <string.h>

#include "fw_crc.h"

int fw_payload_len(uint8_t type)
{
    switch (type) {
    case FW_SETPOINT: return FW_LEN_SETPOINT;
    case FW_STATUS_QUERY:
    case FW_HEARTBEAT:
    case FW_STOP:
    case FW_ESTOP:
    case FW_CLEAR_FAULTS:
    case FW_IDENTIFY: return 0;
    case FW_ACK: return FW_LEN_ACK;
    case FW_NAK: return FW_LEN_NAK;
    case FW_STATUS: return FW_LEN_STATUS;
    case FW_IDENT: return FW_LEN_IDENT;
    default: return -1;
    }
}

uint8_t fw_encode(uint8_t *out, uint8_t type, uint8_t address, uint16_t seq,
                  const uint8_t *payload, uint8_t len)
{
    int expected = fw_payload_len(type);
    uint16_t crc;
    if (expected < 0 || expected != len)
        return 0;
    out[0] = FW_SOF0;
    out[1] = FW_SOF1;
    out[2] = type;
    out[3] = address;
    fw_put_u16(out + 4, seq);
    out[6] = len;
    out[7] = fw_crc8(out + 2, 5);
    if (len)
        memmove(out + FW_HEADER_LEN, payload, len);
    crc = fw_crc16(out + 2, (size_t)6 + len);
    fw_put_u16(out + FW_HEADER_LEN + len, crc);
    return (uint8_t)(FW_HEADER_LEN + len + FW_CRC_LEN);
}

void fw_decoder_init(fw_decoder_t *d) { memset(d, 0, sizeof *d); }

static void drop(fw_decoder_t *d, uint8_t k)
{
    d->n = (uint8_t)(d->n - k);
    memmove(d->buf, d->buf + k, d->n);
}

/* Resolve the buffer as far as its bytes allow. On return it is empty, holds a lone 0xA5, a
 * marker with fewer than eight bytes, or a header-valid candidate waiting for its payload
 * (fewer than 10 + len <= 70 bytes), so one more byte always fits. */
static void scan(fw_decoder_t *d, fw_frame_cb cb, void *ctx)
{
    for (;;) {
        uint8_t *b = d->buf;
        uint8_t n = d->n, i = 0, plen, end;
        int len;
        fw_frame_t f;
        /* 1. the next A5 5A (a trailing A5 is kept: its 5A may follow) */
        while (i < n && !(b[i] == FW_SOF0 && (i + 1 == n || b[i + 1] == FW_SOF1)))
            i++;
        if (i) {
            d->discarded += i;
            drop(d, i);
            continue;
        }
        /* 2. wait for the header */
        if (n < FW_HEADER_LEN)
            return;
        /* 3. header check: known type, its exact length, CRC-8 */
        len = fw_payload_len(b[2]);
        if (len < 0 || len != b[6] || fw_crc8(b + 2, 5) != b[7]) {
            d->bad_header++;
            d->discarded++;
            drop(d, 1);
            continue;
        }
        plen = (uint8_t)len;
        end = (uint8_t)(FW_HEADER_LEN + plen + FW_CRC_LEN);
        /* 4. wait for the payload and CRC */
        if (n < end)
            return;
        f.type = b[2];
        f.address = b[3];
        f.seq = fw_get_u16(b + 4);
        f.len = plen;
        f.payload = b + FW_HEADER_LEN;
        f.raw = b;
        /* 5. CRC-16 over type .. payload */
        if (fw_crc16(b + 2, (size_t)6 + plen) != fw_get_u16(b + end - 2)) {
            d->bad_crc++;
            d->discarded++;
            if (cb)
                cb(ctx, &f, 1);
            drop(d, 1);
            continue;
        }
        /* 6. a frame */
        d->frames++;
        if (cb)
            cb(ctx, &f, 0);
        drop(d, end);
    }
}

void fw_decoder_push(fw_decoder_t *d, uint8_t byte, fw_frame_cb cb, void *ctx)
{
    if (d->n >= sizeof d->buf) { /* cannot happen (see scan); never overrun the buffer */
        d->discarded++;
        drop(d, 1);
    }
    d->buf[d->n++] = byte;
    scan(d, cb, ctx);
}

void fw_decoder_flush(fw_decoder_t *d, fw_frame_cb cb, void *ctx)
{
    while (d->n) {
        d->discarded++;
        drop(d, 1);
        scan(d, cb, ctx);
    }
}
