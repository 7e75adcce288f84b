/* Device configuration: compile-time defaults (overridable at build: make ADDRESS=2 ...) and
 * a copy in EEPROM that wins when it is valid (magic, version, size and CRC-16 all match).
 *
 * EEPROM block (little-endian, FW_CONFIG_BYTES bytes at EEPROM address 0):
 *   0  2  magic 'A' 'F'       2  1  version (1)       3  1  size (FW_CONFIG_BYTES)
 *   4  1  address             5  1  flags (FW_CFG_*)  6  2  watchdog_ms
 *   8  4  baud               12  4  device_id        16  4  max_step (counts per SETPOINT, 0: off)
 *  20  2  tau_ms (model driver time constant)        22  2  step_hz (step/dir pulse rate)
 *  24 24  cmin[6] i32        48 24  cmax[6] i32      72 24  park[6] i32 (position at power-up)
 *  96  2  CRC-16/CCITT-FALSE of bytes 0..95 */
#ifndef FW_CONFIG_H
#define FW_CONFIG_H

#include <stdint.h>
#include "fw_port.h"

FW_EXTERN_C_BEGIN

/* ---- compile-time defaults: the shipped configs' calibration (1e5 counts/m, stroke
 * 0.20..0.32 m), watchdog 0.5 s, 115200 baud. Override with -D (the Makefile's variables). */
#ifndef FW_DEFAULT_ADDRESS
#define FW_DEFAULT_ADDRESS 1
#endif
#ifndef FW_DEFAULT_WATCHDOG_MS
#define FW_DEFAULT_WATCHDOG_MS 500
#endif
#ifndef FW_DEFAULT_BAUD
#define FW_DEFAULT_BAUD 115200
#endif
#ifndef FW_DEFAULT_DEVICE_ID
#define FW_DEFAULT_DEVICE_ID 0
#endif
#ifndef FW_DEFAULT_MAX_STEP
#define FW_DEFAULT_MAX_STEP 0
#endif
#ifndef FW_DEFAULT_TAU_MS
#define FW_DEFAULT_TAU_MS 20
#endif
#ifndef FW_DEFAULT_STEP_HZ
#define FW_DEFAULT_STEP_HZ 20000
#endif
#ifndef FW_DEFAULT_CMIN
#define FW_DEFAULT_CMIN 20000
#endif
#ifndef FW_DEFAULT_CMAX
#define FW_DEFAULT_CMAX 32000
#endif
#ifndef FW_DEFAULT_PARK
#define FW_DEFAULT_PARK 26000
#endif
#ifndef FW_DEFAULT_FLAGS
#define FW_DEFAULT_FLAGS (FW_CFG_ENDSTOPS | FW_CFG_ESTOP_INPUT)
#endif
#ifndef FW_VERSION
#define FW_VERSION 1
#endif

#define FW_CFG_ENDSTOPS 0x01u     /* end-stop inputs (normally closed to GND) fault the device */
#define FW_CFG_ESTOP_INPUT 0x02u  /* an emergency-stop input (normally closed to GND) */

#define FW_CONFIG_VERSION 1u
#define FW_CONFIG_BYTES 98u

typedef struct {
    uint8_t address;
    uint8_t flags;
    uint16_t watchdog_ms;
    uint32_t baud;
    uint32_t device_id;
    uint32_t max_step;
    uint16_t tau_ms;
    uint16_t step_hz;
    int32_t cmin[6];
    int32_t cmax[6];
    int32_t park[6];
} fw_config_t;

void fw_config_defaults(fw_config_t *c);
/* Serialise c into out[FW_CONFIG_BYTES] (magic, version, size and CRC included). */
void fw_config_pack(const fw_config_t *c, uint8_t *out);
/* Parse a block; returns 0 and fills c when it is valid, -1 otherwise (c untouched). */
int fw_config_unpack(fw_config_t *c, const uint8_t *in);
/* 0 when the values make sense (watchdog > 0, cmin <= park <= cmax, baud > 0, ...), else -1. */
int fw_config_check(const fw_config_t *c);

FW_EXTERN_C_END

#endif
