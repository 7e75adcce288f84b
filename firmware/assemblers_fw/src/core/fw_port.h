/* Portability: constant tables in flash on AVR, plain const elsewhere. */
#ifndef FW_PORT_H
#define FW_PORT_H

#include <stdint.h>

#ifdef __AVR__
#include <avr/pgmspace.h>
#define FW_ROM PROGMEM
#define FW_ROM_U8(p) pgm_read_byte(p)
#define FW_ROM_U16(p) pgm_read_word(p)
#else
#define FW_ROM
#define FW_ROM_U8(p) (*(p))
#define FW_ROM_U16(p) (*(p))
#endif

#ifdef __cplusplus
#define FW_EXTERN_C_BEGIN extern "C" {
#define FW_EXTERN_C_END }
#else
#define FW_EXTERN_C_BEGIN
#define FW_EXTERN_C_END
#endif

/* Little-endian field access, independent of the CPU's byte order. */
static inline uint16_t fw_get_u16(const uint8_t *p) { return (uint16_t)(p[0] | ((uint16_t)p[1] << 8)); }
static inline uint32_t fw_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline int32_t fw_get_i32(const uint8_t *p) { return (int32_t)fw_get_u32(p); }
static inline void fw_put_u16(uint8_t *p, uint16_t v) { p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); }
static inline void fw_put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v; p[1] = (uint8_t)(v >> 8); p[2] = (uint8_t)(v >> 16); p[3] = (uint8_t)(v >> 24);
}
static inline void fw_put_i32(uint8_t *p, int32_t v) { fw_put_u32(p, (uint32_t)v); }

#endif
