/* The protocol's checksums (docs/protocol.md "Checksums, exactly").
 *
 * CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, xorout 0; check 0x29B1.
 * CRC-8/SMBUS:        poly 0x07,   init 0x00,   no reflection, xorout 0; check 0xF4.
 * Both are computed four bits at a time from 16-entry tables (48 bytes of flash in all): a
 * quarter of the work of the bitwise loop for a fraction of a 256-entry table's flash. */
#ifndef FW_CRC_H
#define FW_CRC_H

#include <stddef.h>
#include <stdint.h>
#include "fw_port.h"

FW_EXTERN_C_BEGIN

#define FW_CRC16_INIT 0xFFFFu
#define FW_CRC16_CHECK 0x29B1u
#define FW_CRC8_CHECK 0xF4u

uint16_t fw_crc16_update(uint16_t crc, const uint8_t *data, size_t n);
uint16_t fw_crc16(const uint8_t *data, size_t n);
uint8_t fw_crc8(const uint8_t *data, size_t n);

FW_EXTERN_C_END

#endif
