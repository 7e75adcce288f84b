#include "fw_crc.h"

/* T16[i]: the CRC-16 register after shifting the nibble i (in the top four bits) out. */
static const uint16_t T16[16] FW_ROM = {
    0x0000, 0x1021, 0x2042, 0x3063, 0x4084, 0x50A5, 0x60C6, 0x70E7,
    0x8108, 0x9129, 0xA14A, 0xB16B, 0xC18C, 0xD1AD, 0xE1CE, 0xF1EF,
};
/* T8[i]: the same for CRC-8 with polynomial 0x07. */
static const uint8_t T8[16] FW_ROM = {
    0x00, 0x07, 0x0E, 0x09, 0x1C, 0x1B, 0x12, 0x15,
    0x38, 0x3F, 0x36, 0x31, 0x24, 0x23, 0x2A, 0x2D,
};

uint16_t fw_crc16_update(uint16_t crc, const uint8_t *data, size_t n)
{
    while (n--) {
        uint8_t b = *data++;
        crc = (uint16_t)((crc << 4) ^ FW_ROM_U16(&T16[((crc >> 12) ^ (b >> 4)) & 0x0F]));
        crc = (uint16_t)((crc << 4) ^ FW_ROM_U16(&T16[((crc >> 12) ^ b) & 0x0F]));
    }
    return crc;
}

uint16_t fw_crc16(const uint8_t *data, size_t n) { return fw_crc16_update(FW_CRC16_INIT, data, n); }

uint8_t fw_crc8(const uint8_t *data, size_t n)
{
    uint8_t crc = 0;
    while (n--) {
        uint8_t b = *data++;
        crc = (uint8_t)((crc << 4) ^ FW_ROM_U8(&T8[((crc >> 4) ^ (b >> 4)) & 0x0F]));
        crc = (uint8_t)((crc << 4) ^ FW_ROM_U8(&T8[((crc >> 4) ^ b) & 0x0F]));
    }
    return crc;
}
