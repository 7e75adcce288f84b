/* assemblers platform controller: one Arduino Mega 2560 per Stewart platform.
 *
 * The protocol (docs/protocol.md) lives in src/core (portable C99, also built natively for
 * the tests); this sketch only glues it to the board: Serial (UART0) for the host link,
 * millis() for the watchdog, the step/dir driver (src/avr/fw_stepdir.c) or, built with
 * -DFW_DRIVER_MODEL=1, the first-order model, and the EEPROM configuration block.
 *
 * Arduino IDE: open this file, board "Arduino Mega or Mega 2560", upload. Command line (no IDE,
 * no downloads): make -C firmware avr  (docs/firmware.md). Configuration: src/core/fw_config.h
 * defaults, overridden by a valid EEPROM block (make -C firmware eeprom ADDRESS=2 ...). */
#include <avr/interrupt.h>
#include <avr/sleep.h>

#include "src/avr/fw_board.h"
#include "src/avr/fw_stepdir.h"
#include "src/core/fw_device.h"
#include "src/core/fw_model.h"

#ifndef FW_DRIVER_MODEL
#define FW_DRIVER_MODEL 0
#endif

static fw_config_t config;
static fw_device_t device;
#if FW_DRIVER_MODEL
static fw_model_t driver;
#else
static fw_stepdir_t driver;
#endif

static void serial_write(void *ctx, const uint8_t *data, uint8_t n)
{
    (void)ctx;
    Serial.write(data, n);
}

void setup()
{
    fw_driver_t *drv;
    uint32_t now;
    fw_board_quiet_timers();
    fw_board_load_config(&config);
    Serial.begin(config.baud);
    now = millis();
#if FW_DRIVER_MODEL
    drv = fw_model_init(&driver, config.park, config.tau_ms, now);
#else
    drv = fw_stepdir_init(&driver, config.park, config.step_hz, config.flags, now);
#endif
    fw_device_init(&device, &config, drv, serial_write, 0, now);
}

void loop()
{
    uint8_t buf[32];
    uint8_t n = 0;
    int c;
    uint32_t now;
    while (n < sizeof buf && (c = Serial.read()) >= 0)
        buf[n++] = (uint8_t)c;
    now = millis();
    if (n)
        fw_device_rx(&device, buf, n, now);
    fw_device_poll(&device, now);
    fw_board_led(device.state, now);
    /* Sleep until the next interrupt (a received byte, the 1 ms timer, a step) unless bytes
     * are waiting: sei; sleep runs the sleep before any pending interrupt, so a byte that
     * arrives after the check still wakes us. Idle mode keeps the UART and timers running. */
    cli();
    if (!Serial.available()) {
        set_sleep_mode(SLEEP_MODE_IDLE);
        sleep_enable();
        sei();
        sleep_cpu();
        sleep_disable();
    }
    sei();
}
