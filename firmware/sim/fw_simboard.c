/* One simulated reference board: the firmware's AVR ELF on a simulated ATmega2560 at 16 MHz
 * (simavr), its UART0 on a pseudo-terminal (simavr's uart_pty part), the board's inputs and
 * outputs wired to a model of the outside world:
 *
 *   - the configuration block is written into the simulated EEPROM before the CPU starts, so
 *     one ELF serves every board (address, limits, watchdog, baud, device id per board);
 *   - the end-stop and e-stop inputs (PK0..PK6) are held closed (low) unless opened with
 *     --inputs-open or an "inputs" command;
 *   - the STEP/DIR/ENABLE outputs are watched: every rising STEP edge while the drives are
 *     enabled counts one step in the DIR pin's direction (the "pulse" position, independent of
 *     the firmware's own step counter).
 *
 * stdout, one line each: "port <path>" once the pty exists (the path to open with pyserial;
 * simavr also points the symlink /tmp/simavr-uart0 at it, which several boards overwrite:
 * use this line), then one line per command on stdin:
 *   "pulses"        -> "pulses <c0> .. <c5> ignored <n> sim_ms <t> wall_ms <w>"
 *                      (c: park + counted steps; ignored: steps while the drives were off)
 *   "inputs <mask>" -> "inputs <mask>"  (bit k open: 0..5 end stops, 6 e-stop)
 * and at exit (SIGTERM, SIGINT, EOF on stdin, or the parent dying) a final "pulses" line.
 * Timing: the firmware runs in simulated time; when it sleeps (it does whenever it waits for
 * a byte) simavr sleeps until the wall clock catches up, so simulated time follows real time
 * as long as the host CPU keeps up (the "pulses" line reports both). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "avr_eeprom.h"
#include "avr_ioport.h"
#include "avr_uart.h"
#include "parts/uart_pty.h"
#include "sim_avr.h"
#include "sim_elf.h"

#include "fw_config.h"
#include "fw_options.h"

static volatile sig_atomic_t stop_requested;
static volatile int cmd_pulses, cmd_inputs = -1;

static avr_t *avr;
static int32_t park[6];
static int64_t steps[6];
static long ignored;
static uint8_t dir_level[6], step_level[6], enable_level = 1;
static struct timespec t_start;

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void on_step(struct avr_irq_t *irq, uint32_t value, void *param)
{
    int k = (int)(intptr_t)param;
    (void)irq;
    if (value && !step_level[k]) {
        if (enable_level) /* ENABLE high: drives off, the pulse moves nothing */
            ignored++;
        else
            steps[k] += dir_level[k] ? 1 : -1;
    }
    step_level[k] = value ? 1 : 0;
}

static void on_dir(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    dir_level[(int)(intptr_t)param] = value ? 1 : 0;
}

static void on_enable(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)param;
    enable_level = value ? 1 : 0;
}

static double wall_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t_start.tv_sec) * 1e3 + (double)(t.tv_nsec - t_start.tv_nsec) / 1e6;
}

static void print_pulses(void)
{
    printf("pulses");
    for (int k = 0; k < 6; k++)
        printf(" %lld", (long long)(park[k] + steps[k]));
    printf(" ignored %ld sim_ms %.3f wall_ms %.3f\n", ignored,
           (double)avr->cycle * 1e3 / (double)avr->frequency, wall_ms());
    fflush(stdout);
}

static void set_inputs(int open_mask)
{
    avr_ioport_external_t e;
    memset(&e, 0, sizeof e);
    e.name = 'K';
    e.mask = 0x7F;
    e.value = (unsigned)open_mask & 0x7Fu;
    avr_ioctl(avr, AVR_IOCTL_IOPORT_SET_EXTERNAL('K'), &e);
    for (int k = 0; k < 7; k++)
        avr_raise_irq(avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('K'), k), (open_mask >> k) & 1);
}

/* stdin commands are read here and applied by the simulation thread (the only one that may
 * touch the simulated CPU). */
static void *stdin_reader(void *arg)
{
    char line[128];
    (void)arg;
    while (fgets(line, sizeof line, stdin)) {
        if (!strncmp(line, "pulses", 6))
            cmd_pulses = 1;
        else if (!strncmp(line, "inputs", 6))
            cmd_inputs = (int)strtol(line + 6, NULL, 0) & 0x7F;
    }
    stop_requested = 1;
    return NULL;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: fw_simboard --elf FIRMWARE.elf [--mcu atmega2560] [--freq 16000000]\n"
            "                   [--no-eeprom] [--inputs-open MASK] [config options]\n%s",
            fw_config_usage);
}

int main(int argc, char **argv)
{
    const char *elf = NULL, *mcu = "atmega2560";
    unsigned long freq = 16000000ul;
    int write_eeprom = 1, inputs_open = 0;
    fw_config_t cfg;
    elf_firmware_t fw;
    uart_pty_t pty;
    pthread_t reader;
    uint8_t block[FW_CONFIG_BYTES];
    struct sigaction sa;

    fw_config_defaults(&cfg);
    for (int i = 1; i < argc; i++) {
        int r = fw_parse_config_option(&cfg, argc, argv, &i);
        if (r < 0)
            return 2;
        if (r)
            continue;
        if (!strcmp(argv[i], "--elf") && i + 1 < argc)
            elf = argv[++i];
        else if (!strcmp(argv[i], "--mcu") && i + 1 < argc)
            mcu = argv[++i];
        else if (!strcmp(argv[i], "--freq") && i + 1 < argc)
            freq = strtoul(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--inputs-open") && i + 1 < argc)
            inputs_open = (int)strtol(argv[++i], NULL, 0);
        else if (!strcmp(argv[i], "--no-eeprom"))
            write_eeprom = 0;
        else {
            fprintf(stderr, "fw_simboard: unknown option %s\n", argv[i]);
            usage();
            return 2;
        }
    }
    if (!elf) {
        usage();
        return 2;
    }
    if (fw_config_check(&cfg) != 0) {
        fprintf(stderr, "fw_simboard: inconsistent configuration (cmin <= park <= cmax, "
                        "watchdog/baud/tau/step rate > 0)\n");
        return 2;
    }
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* never outlive the process that started us */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    setvbuf(stdout, NULL, _IOLBF, 0);

    memset(&fw, 0, sizeof fw);
    if (elf_read_firmware(elf, &fw) != 0) {
        fprintf(stderr, "fw_simboard: cannot read %s\n", elf);
        return 1;
    }
    avr = avr_make_mcu_by_name(mcu);
    if (!avr) {
        fprintf(stderr, "fw_simboard: unknown MCU %s\n", mcu);
        return 1;
    }
    avr_init(avr);
    avr->log = LOG_ERROR;
    fw.frequency = (uint32_t)freq;
    avr_load_firmware(avr, &fw);
    avr->frequency = (uint32_t)freq;

    if (write_eeprom) {
        avr_eeprom_desc_t d;
        fw_config_pack(&cfg, block);
        d.ee = block;
        d.offset = 0;
        d.size = sizeof block;
        uint8_t back[FW_CONFIG_BYTES];
        avr_eeprom_desc_t g;
        /* simavr 1.6 answers -1 on success too: read the block back to know */
        avr_ioctl(avr, AVR_IOCTL_EEPROM_SET, &d);
        g.ee = back;
        g.offset = 0;
        g.size = sizeof back;
        avr_ioctl(avr, AVR_IOCTL_EEPROM_GET, &g);
        if (memcmp(back, block, sizeof block) != 0) {
            fprintf(stderr, "fw_simboard: cannot write the simulated EEPROM\n");
            return 1;
        }
        memcpy(park, cfg.park, sizeof park);
    } else {
        fw_config_t defaults;
        fw_config_defaults(&defaults);
        memcpy(park, defaults.park, sizeof park);
    }

    for (int k = 0; k < 6; k++) {
        avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('A'), k), on_step,
                                (void *)(intptr_t)k);
        avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('C'), k), on_dir,
                                (void *)(intptr_t)k);
    }
    avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('C'), 7), on_enable, NULL);
    set_inputs(inputs_open);

    uart_pty_init(avr, &pty);
    uart_pty_connect(&pty, '0');
    {
        /* simavr usleep()s on every read of UCSR0A that finds nothing to do (to slow down
         * firmware that polls); the Arduino core reads it in every UDRE interrupt, which then
         * costs 60-130 us of real time per byte sent. This firmware sleeps when idle: off. */
        uint32_t flags = 0;
        avr_ioctl(avr, AVR_IOCTL_UART_GET_FLAGS('0'), &flags);
        flags &= ~(uint32_t)AVR_UART_FLAG_POLL_SLEEP;
        avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &flags);
    }
    printf("port %s\n", pty.pty.slavename);
    fflush(stdout);
    pthread_create(&reader, NULL, stdin_reader, NULL);
    clock_gettime(CLOCK_MONOTONIC, &t_start);

    while (!stop_requested) {
        int state = avr_run(avr);
        if (state == cpu_Done || state == cpu_Crashed) {
            fprintf(stderr, "fw_simboard: the firmware stopped (%s)\n",
                    state == cpu_Done ? "sleeping with interrupts off" : "crashed");
            break;
        }
        if (cmd_pulses) {
            cmd_pulses = 0;
            print_pulses();
        }
        if (cmd_inputs >= 0) {
            int m = cmd_inputs;
            cmd_inputs = -1;
            set_inputs(m);
            printf("inputs %d\n", m);
        }
    }
    print_pulses();
    /* no uart_pty_stop(): it stops its thread with a SIGINT, which our handler would swallow
     * if the thread is not inside select() at that moment; exiting closes the pty anyway */
    fflush(stdout);
    _exit(0);
}
