#ifdef __AVR__
#include "fw_board.h"

#include <avr/eeprom.h>
#include <avr/io.h>

#include "../core/fw_proto.h"

uint8_t fw_board_load_config(fw_config_t *c)
{
    uint8_t buf[FW_CONFIG_BYTES];
    fw_config_defaults(c);
    eeprom_read_block(buf, (const void *)0, sizeof buf);
    return fw_config_unpack(c, buf) == 0;
}

void fw_board_quiet_timers(void)
{
    TCCR0A = 0; /* normal mode: the overflow every 256 ticks that millis() counts stays */
    TCCR2B = 0;
    TCCR3B = 0;
    TCCR4B = 0;
    TCCR5B = 0;
}

void fw_board_led(uint8_t state, uint32_t now_ms)
{
    uint8_t on = state == FW_RUNNING
                 || ((state == FW_ESTOPPED || state == FW_FAULTED) && (now_ms & 256u));
    DDRB |= FW_LED_BIT;
    if (on)
        PORTB |= FW_LED_BIT;
    else
        PORTB &= (uint8_t)~FW_LED_BIT;
}
#endif
