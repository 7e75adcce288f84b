/* Framing of the wire protocol (docs/protocol.md "Frame"), device side.
 *
 *   offset size field
 *   0      2    0xA5 0x5A start marker
 *   2      1    type
 *   3      1    address
 *   4      2    seq (u16, little-endian)
 *   6      1    len: MUST equal the fixed payload length of type
 *   7      1    hcrc: CRC-8/SMBUS of bytes 2..6
 *   8      len  payload
 *   8+len  2    CRC-16/CCITT-FALSE of bytes 2..7+len, little-endian
 *
 * The decoder follows the resynchronisation rules of docs/protocol.md exactly (the same as
 * hardware.protocol.Decoder): it keeps at most one candidate frame (70 bytes) and, on any
 * failure, discards only the candidate's first byte and rescans, so a valid frame that starts
 * inside a false one is still found. No heap; one fixed buffer. */
#ifndef FW_PROTO_H
#define FW_PROTO_H

#include <stdint.h>
#include "fw_port.h"

FW_EXTERN_C_BEGIN

#define FW_SOF0 0xA5u
#define FW_SOF1 0x5Au
#define FW_HEADER_LEN 8u
#define FW_CRC_LEN 2u
#define FW_MAX_PAYLOAD 60u
#define FW_MAX_FRAME (FW_HEADER_LEN + FW_MAX_PAYLOAD + FW_CRC_LEN)
#define FW_PROTOCOL_VERSION 1u
#define FW_NO_TICK 0xFFFFFFFFul

enum fw_msg_type {
    FW_SETPOINT = 0x01,      /* tick u32, counts[6] i32 */
    FW_STATUS_QUERY = 0x02,
    FW_HEARTBEAT = 0x03,
    FW_STOP = 0x04,
    FW_ESTOP = 0x05,
    FW_CLEAR_FAULTS = 0x06,
    FW_IDENTIFY = 0x07,      /* answered whatever the address field says */
    FW_ACK = 0x81,           /* of_type u8, state u8, faults u16 */
    FW_NAK = 0x82,           /* of_type u8, state u8, faults u16, code u8, reserved u8 */
    FW_STATUS = 0x83,        /* state, res, faults, last_tick, last_seq, res, measured[6], target[6] */
    FW_IDENT = 0x84          /* address u8, protocol u8, fw_version u16, device_id u32 */
};

#define FW_LEN_SETPOINT 28u
#define FW_LEN_ACK 4u
#define FW_LEN_NAK 6u
#define FW_LEN_STATUS 60u
#define FW_LEN_IDENT 8u

enum fw_state { FW_IDLE = 0, FW_RUNNING = 1, FW_HOLD = 2, FW_ESTOPPED = 3, FW_FAULTED = 4 };

enum fw_fault_bits {
    FW_F_WATCHDOG = 0x0001,
    FW_F_LIMIT = 0x0002,
    FW_F_DEVICE = 0x0004,
    FW_F_ESTOP = 0x0008,
    FW_F_COMM = 0x0010
};

enum fw_nak_code {
    FW_NAK_BAD_CRC = 1,
    FW_NAK_LIMIT = 2,
    FW_NAK_DEVICE_FAULT = 3,
    FW_NAK_ESTOPPED = 4,
    FW_NAK_WATCHDOG = 5
};

/* The fixed payload length of a message type, or -1 for an unknown type. */
int fw_payload_len(uint8_t type);

/* Write one frame into out (room for 10 + len bytes). Returns the frame length, or 0 when
 * the type is unknown or len is not its payload length (nothing written then). */
uint8_t fw_encode(uint8_t *out, uint8_t type, uint8_t address, uint16_t seq,
                  const uint8_t *payload, uint8_t len);

typedef struct {
    uint8_t type;
    uint8_t address;
    uint16_t seq;
    uint8_t len;
    const uint8_t *payload; /* valid during the callback only */
    const uint8_t *raw;     /* the whole candidate, 10 + len bytes from the marker (ditto) */
} fw_frame_t;

/* Called for every frame found (rejected == 0) and for every candidate whose header was valid
 * but whose CRC-16 failed (rejected == 1: type, address and seq are the header's, a device
 * answers it with NAK BAD_CRC). */
typedef void (*fw_frame_cb)(void *ctx, const fw_frame_t *frame, uint8_t rejected);

typedef struct {
    uint8_t buf[FW_MAX_FRAME];
    uint8_t n;               /* bytes pending */
    uint32_t frames;         /* frames emitted */
    uint32_t discarded;      /* bytes thrown away while resynchronising */
    uint32_t bad_header;     /* candidates rejected after eight bytes */
    uint32_t bad_crc;        /* candidates with a valid header and a wrong CRC-16 */
} fw_decoder_t;

void fw_decoder_init(fw_decoder_t *d);
/* Feed one byte; the callback runs for every frame or rejection it completes (possibly
 * several: a frame can lie inside a rejected candidate's bytes). */
void fw_decoder_push(fw_decoder_t *d, uint8_t byte, fw_frame_cb cb, void *ctx);
/* Give up on the pending candidate: discard bytes one at a time, rescanning what follows
 * (as hardware.protocol.Decoder.flush). */
void fw_decoder_flush(fw_decoder_t *d, fw_frame_cb cb, void *ctx);

FW_EXTERN_C_END

#endif
