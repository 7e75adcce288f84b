/* A first-order actuator model (like hardware/emulator.py): every millisecond each position
 * moves by a fraction 1 - exp(-1 ms / tau) of its distance to the target, in 1/256-count fixed
 * point; the last sub-count is snapped, so the position reaches the target exactly. */
#ifndef FW_MODEL_H
#define FW_MODEL_H

#include "fw_driver.h"

FW_EXTERN_C_BEGIN

typedef struct {
    fw_driver_t base;
    int64_t pos_q8[6];
    int32_t target[6];
    uint32_t alpha_q16; /* 65536 (1 - exp(-1 ms / tau)) */
    uint32_t last_ms;
    uint8_t enabled;
    uint8_t fault_inputs; /* for tests: FW_DRV_FAULT_* reported by faults() */
} fw_model_t;

fw_driver_t *fw_model_init(fw_model_t *m, const int32_t *start, uint16_t tau_ms, uint32_t now_ms);

FW_EXTERN_C_END

#endif
