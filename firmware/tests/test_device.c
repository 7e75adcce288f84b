/* Native unit tests of the device state machine (fw_device.c with the model driver): IDLE,
 * RUNNING, HOLD, ESTOP, FAULT, latched faults, the watchdog, idempotent repeats, the address
 * filter, the device limits, IDENTIFY, BAD_CRC NAKs, fault inputs, the EEPROM block. */
#include <string.h>

#include "fw_crc.h"
#include "fw_test_support.h"

static int replies(fw_bench_t *b, frames_t *fs)
{
    fw_decoder_t d;
    fw_decoder_init(&d);
    memset(fs, 0, sizeof *fs);
    fw_feed(&d, b->sink.bytes, b->sink.n, fs);
    CHECK(d.n == 0 && d.discarded == 0); /* a device writes whole, valid frames only */
    b->sink.n = 0;
    return fs->n;
}

static void send(fw_bench_t *b, uint8_t type, uint8_t addr, uint16_t seq, const uint8_t *p,
                 uint8_t len, uint32_t now)
{
    uint8_t out[FW_MAX_FRAME];
    uint8_t n = fw_encode(out, type, addr, seq, p, len);
    CHECK(n == 10 + len);
    fw_device_rx(&b->dev, out, n, now);
}

static void setpoint_payload(uint8_t *p, uint32_t tick, const int32_t *c)
{
    fw_put_u32(p, tick);
    for (int k = 0; k < 6; k++)
        fw_put_i32(p + 4 + 4 * k, c[k]);
}

static void send_setpoint(fw_bench_t *b, uint16_t seq, uint32_t tick, const int32_t *c,
                          uint32_t now)
{
    uint8_t p[FW_LEN_SETPOINT];
    setpoint_payload(p, tick, c);
    send(b, FW_SETPOINT, b->cfg.address, seq, p, sizeof p, now);
}

/* One reply expected: its type, of_type, state, faults (and code for a NAK). */
static void expect_reply(fw_bench_t *b, uint8_t type, uint16_t seq, uint8_t of, uint8_t state,
                         uint16_t faults, uint8_t code, int line)
{
    frames_t fs;
    int n = replies(b, &fs);
    if (n != 1) {
        fprintf(stderr, "line %d: expected one reply, got %d\n", line, n);
        fw_failures++;
        return;
    }
    CHECK(fs.f[0].type == type && fs.f[0].seq == seq && fs.f[0].address == b->cfg.address);
    if (type == FW_ACK || type == FW_NAK) {
        int ok = fs.payload[0][0] == of && fs.payload[0][1] == state
                 && fw_get_u16(fs.payload[0] + 2) == faults
                 && (type == FW_ACK || (fs.payload[0][4] == code && fs.payload[0][5] == 0));
        if (!ok) {
            fprintf(stderr, "line %d: reply of=%u state=%u faults=0x%x code=%u\n", line,
                    fs.payload[0][0], fs.payload[0][1], fw_get_u16(fs.payload[0] + 2),
                    type == FW_NAK ? fs.payload[0][4] : 0);
            fw_failures++;
        }
    }
    fw_checks++;
}
#define EXPECT_ACK(b, seq, of, st, fl) expect_reply(b, FW_ACK, seq, of, st, fl, 0, __LINE__)
#define EXPECT_NAK(b, seq, of, st, fl, code) expect_reply(b, FW_NAK, seq, of, st, fl, code, __LINE__)
#define EXPECT_NONE(b) CHECK((b)->sink.n == 0)
/* A command without payload, to the device's address, answered by its ACK (state, faults). */
#define COMMAND_ACKED(b, type, seq, now, st, fl)                                              \
    do {                                                                                       \
        send(b, type, (b)->cfg.address, seq, NULL, 0, now);                                    \
        EXPECT_ACK(b, seq, type, st, fl);                                                      \
    } while (0)

typedef struct {
    uint8_t state;
    uint16_t faults;
    uint32_t last_tick;
    uint16_t last_seq;
    int32_t measured[6], target[6];
} status_t;

static status_t query(fw_bench_t *b, uint16_t seq, uint32_t now)
{
    frames_t fs;
    status_t s;
    memset(&s, 0, sizeof s);
    send(b, FW_STATUS_QUERY, b->cfg.address, seq, NULL, 0, now);
    CHECK(replies(b, &fs) == 1 && fs.f[0].type == FW_STATUS && fs.f[0].seq == seq);
    s.state = fs.payload[0][0];
    s.faults = fw_get_u16(fs.payload[0] + 2);
    s.last_tick = fw_get_u32(fs.payload[0] + 4);
    s.last_seq = fw_get_u16(fs.payload[0] + 8);
    for (int k = 0; k < 6; k++) {
        s.measured[k] = fw_get_i32(fs.payload[0] + 12 + 4 * k);
        s.target[k] = fw_get_i32(fs.payload[0] + 36 + 4 * k);
    }
    return s;
}

static fw_config_t test_config(void)
{
    fw_config_t c;
    fw_config_defaults(&c);
    c.address = 1;
    c.watchdog_ms = 500;
    c.max_step = 0;
    c.device_id = 0x12345678u;
    for (int k = 0; k < 6; k++) {
        c.cmin[k] = 20000;
        c.cmax[k] = 32000;
        c.park[k] = 26000;
    }
    return c;
}

/* ------------------------------------------------------------------ state machine */

static void test_idle_status_identify(void)
{
    fw_config_t c = test_config();
    fw_bench_t b;
    status_t s;
    frames_t fs;
    fw_bench_init(&b, &c, 0);
    s = query(&b, 0, 1);
    CHECK(s.state == FW_IDLE && s.faults == 0 && s.last_tick == FW_NO_TICK && s.last_seq == 0);
    for (int k = 0; k < 6; k++)
        CHECK(s.measured[k] == 26000 && s.target[k] == 26000);
    /* IDENTIFY is answered whatever the address field says, with the device's own address */
    send(&b, FW_IDENTIFY, 77, 42, NULL, 0, 2);
    CHECK(replies(&b, &fs) == 1 && fs.f[0].type == FW_IDENT && fs.f[0].seq == 42);
    CHECK(fs.f[0].address == 1 && fs.payload[0][0] == 1 && fs.payload[0][1] == FW_PROTOCOL_VERSION);
    CHECK(fw_get_u16(fs.payload[0] + 2) == FW_VERSION);
    CHECK(fw_get_u32(fs.payload[0] + 4) == 0x12345678u);
    /* other frames for another address are ignored */
    send(&b, FW_HEARTBEAT, 2, 1, NULL, 0, 3);
    send(&b, FW_STATUS_QUERY, 0, 1, NULL, 0, 3);
    EXPECT_NONE(&b);
    /* reply types sent to the device are ignored */
    {
        uint8_t a[4] = {1, 0, 0, 0};
        send(&b, FW_ACK, 1, 5, a, 4, 4);
        EXPECT_NONE(&b);
    }
}

static void test_setpoints_limits_repeats(void)
{
    fw_config_t c = test_config();
    fw_bench_t b;
    status_t s;
    const int32_t ok[6] = {26100, 26000, 25900, 26000, 26000, 26050};
    const int32_t ok2[6] = {26200, 26000, 25900, 26000, 26000, 26050};
    int32_t bad[6];
    uint32_t executed;
    c.max_step = 500;
    fw_bench_init(&b, &c, 0);
    send_setpoint(&b, 1, 0, ok, 10);
    EXPECT_ACK(&b, 1, FW_SETPOINT, FW_RUNNING, 0);
    s = query(&b, 2, 11);
    CHECK(s.state == FW_RUNNING && s.last_tick == 0 && s.last_seq == 1 && s.target[0] == 26100);
    executed = b.dev.executed;
    /* the same command again (a retransmission): the same reply, not executed twice */
    send_setpoint(&b, 1, 0, ok, 12);
    EXPECT_ACK(&b, 1, FW_SETPOINT, FW_RUNNING, 0);
    CHECK(b.dev.executed == executed);
    /* a STATUS_QUERY between does not drop the repeat cache */
    send_setpoint(&b, 1, 0, ok, 13);
    EXPECT_ACK(&b, 1, FW_SETPOINT, FW_RUNNING, 0);
    CHECK(b.dev.executed == executed);
    /* same seq, another payload: a new command */
    send_setpoint(&b, 1, 1, ok2, 14);
    EXPECT_ACK(&b, 1, FW_SETPOINT, FW_RUNNING, 0);
    CHECK(b.dev.executed == executed + 1);
    /* past the soft stroke, each actuator, each side: NAK LIMIT, target unchanged */
    for (int k = 0; k < 6; k++) {
        for (int side = 0; side < 2; side++) {
            memcpy(bad, ok2, sizeof bad);
            bad[k] = side ? 32001 : 19999;
            send_setpoint(&b, (uint16_t)(10 + 2 * k + side), 5, bad, 15);
            EXPECT_NAK(&b, (uint16_t)(10 + 2 * k + side), FW_SETPOINT, FW_RUNNING, FW_F_LIMIT,
                       FW_NAK_LIMIT);
        }
    }
    s = query(&b, 30, 16);
    CHECK(s.target[0] == 26200 && s.last_tick == 1 && (s.faults & FW_F_LIMIT));
    /* exactly at the limits is fine */
    {
        int32_t edge[6] = {26200, 26000, 25900, 26000, 26000, 26050};
        fw_bench_t e;
        fw_config_t ce = test_config();
        fw_bench_init(&e, &ce, 0);
        edge[0] = 32000;
        edge[1] = 20000;
        send_setpoint(&e, 1, 0, edge, 1);
        EXPECT_ACK(&e, 1, FW_SETPOINT, FW_RUNNING, 0);
    }
    /* a step larger than max_step from the current target */
    memcpy(bad, ok2, sizeof bad);
    bad[3] = 26000 + 501;
    send_setpoint(&b, 31, 6, bad, 17);
    EXPECT_NAK(&b, 31, FW_SETPOINT, FW_RUNNING, FW_F_LIMIT, FW_NAK_LIMIT);
    bad[3] = 26000 + 500;
    send_setpoint(&b, 32, 6, bad, 18);
    EXPECT_ACK(&b, 32, FW_SETPOINT, FW_RUNNING, FW_F_LIMIT);
    /* extreme counts do not overflow the step check */
    bad[3] = INT32_MIN;
    send_setpoint(&b, 33, 7, bad, 19);
    EXPECT_NAK(&b, 33, FW_SETPOINT, FW_RUNNING, FW_F_LIMIT, FW_NAK_LIMIT);
}

static void test_stop_estop_clear(void)
{
    fw_config_t c = test_config();
    fw_bench_t b;
    status_t s, s2;
    const int32_t far[6] = {31000, 21000, 26000, 26000, 26000, 26000};
    fw_bench_init(&b, &c, 0);
    send_setpoint(&b, 1, 0, far, 0);
    EXPECT_ACK(&b, 1, FW_SETPOINT, FW_RUNNING, 0);
    /* first order: after one time constant (20 ms) about 63 % of the way */
    fw_device_poll(&b.dev, 20);
    s = query(&b, 2, 20);
    CHECK(s.measured[0] > 26000 + 3000 && s.measured[0] < 26000 + 3400);
    CHECK(s.measured[1] < 26000 - 3000 && s.measured[1] > 26000 - 3400);
    /* STOP: hold where it is now */
    COMMAND_ACKED(&b, FW_STOP, 3, 20, FW_HOLD, 0);
    fw_device_poll(&b.dev, 200);
    s2 = query(&b, 4, 200);
    CHECK(s2.state == FW_HOLD && s2.target[0] == s.measured[0] && s2.measured[0] == s.measured[0]);
    /* a set-point after STOP runs again */
    send_setpoint(&b, 5, 1, far, 200);
    EXPECT_ACK(&b, 5, FW_SETPOINT, FW_RUNNING, 0);
    fw_device_poll(&b.dev, 210);
    /* ESTOP: latched, drives cut (the position freezes), set-points refused */
    COMMAND_ACKED(&b, FW_ESTOP, 6, 210, FW_ESTOPPED, FW_F_ESTOP);
    s = query(&b, 7, 210);
    fw_device_poll(&b.dev, 400);
    s2 = query(&b, 8, 400);
    CHECK(s2.state == FW_ESTOPPED && !memcmp(s.measured, s2.measured, sizeof s.measured));
    CHECK(!memcmp(s2.target, s2.measured, sizeof s2.measured));
    send_setpoint(&b, 9, 2, far, 400);
    EXPECT_NAK(&b, 9, FW_SETPOINT, FW_ESTOPPED, FW_F_ESTOP, FW_NAK_ESTOPPED);
    /* STOP does not leave ESTOP */
    COMMAND_ACKED(&b, FW_STOP, 10, 400, FW_ESTOPPED, FW_F_ESTOP);
    /* CLEAR_FAULTS: ESTOP -> HOLD, faults cleared; a repeat of it is not re-executed */
    COMMAND_ACKED(&b, FW_CLEAR_FAULTS, 11, 401, FW_HOLD, 0);
    send_setpoint(&b, 12, 3, far, 402);
    EXPECT_ACK(&b, 12, FW_SETPOINT, FW_RUNNING, 0);
    fw_device_poll(&b.dev, 1000);
    s = query(&b, 13, 1000);
    CHECK(!memcmp(s.measured, far, sizeof far)); /* arrived exactly */
}

static void test_watchdog(void)
{
    fw_config_t c = test_config();
    fw_bench_t b;
    status_t s;
    const int32_t sp[6] = {26500, 26000, 26000, 26000, 26000, 26000};
    fw_bench_init(&b, &c, 0);
    /* not armed before the first valid frame */
    fw_device_poll(&b.dev, 5000);
    CHECK(b.dev.state == FW_IDLE && b.dev.faults == 0);
    send_setpoint(&b, 1, 0, sp, 5000);
    EXPECT_ACK(&b, 1, FW_SETPOINT, FW_RUNNING, 0);
    /* frames for another address do not feed it */
    send(&b, FW_HEARTBEAT, 9, 2, NULL, 0, 5400);
    EXPECT_NONE(&b);
    fw_device_poll(&b.dev, 5500);
    CHECK(b.dev.state == FW_RUNNING); /* 500 ms exactly: not yet */
    fw_device_poll(&b.dev, 5501);
    CHECK(b.dev.state == FW_HOLD && b.dev.faults == FW_F_WATCHDOG && b.dev.watchdog_trips == 1);
    /* the repeat cache was dropped: the same set-point again is a new command, refused */
    send_setpoint(&b, 1, 0, sp, 5600);
    EXPECT_NAK(&b, 1, FW_SETPOINT, FW_HOLD, FW_F_WATCHDOG, FW_NAK_WATCHDOG);
    s = query(&b, 3, 5601);
    CHECK(s.state == FW_HOLD && !memcmp(s.target, s.measured, sizeof s.target));
    /* CLEAR_FAULTS, then set-points again (HOLD -> RUNNING) */
    COMMAND_ACKED(&b, FW_CLEAR_FAULTS, 4, 5602, FW_HOLD, 0);
    send_setpoint(&b, 5, 1, sp, 5603);
    EXPECT_ACK(&b, 5, FW_SETPOINT, FW_RUNNING, 0);
    /* heartbeats, STATUS queries and IDENTIFY (any address) all feed it */
    for (uint32_t t = 5603 + 400; t < 8000; t += 400) {
        uint16_t seq = (uint16_t)(t / 400);
        uint8_t kind = (uint8_t)(seq % 3);
        if (kind == 0) {
            send(&b, FW_HEARTBEAT, 1, seq, NULL, 0, t);
            EXPECT_ACK(&b, seq, FW_HEARTBEAT, FW_RUNNING, 0);
        } else if (kind == 1) {
            (void)query(&b, seq, t);
        } else {
            send(&b, FW_IDENTIFY, 200, seq, NULL, 0, t);
            b.sink.n = 0;
        }
        fw_device_poll(&b.dev, t + 399);
        CHECK(b.dev.state == FW_RUNNING);
    }
    /* a frame that arrives after the deadline comes too late even if nobody polled since */
    COMMAND_ACKED(&b, FW_HEARTBEAT, 100, 20000, FW_HOLD, FW_F_WATCHDOG);
    /* the clock wraps */
    {
        fw_bench_t w;
        fw_bench_init(&w, &c, 0xFFFFFF00u);
        send(&w, FW_HEARTBEAT, 1, 1, NULL, 0, 0xFFFFFF00u);
        w.sink.n = 0;
        fw_device_poll(&w.dev, 0x100u); /* 512 ms later, across the wrap */
        CHECK(w.dev.faults == FW_F_WATCHDOG);
    }
}

static void test_bad_crc(void)
{
    fw_config_t c = test_config();
    fw_bench_t b;
    uint8_t fr[FW_MAX_FRAME], n;
    uint8_t p[FW_LEN_SETPOINT];
    const int32_t sp[6] = {26500, 26000, 26000, 26000, 26000, 26000};
    fw_bench_init(&b, &c, 0);
    setpoint_payload(p, 0, sp);
    n = fw_encode(fr, FW_SETPOINT, 1, 7, p, sizeof p);
    fr[20] ^= 0x10; /* payload damaged, header intact */
    fw_device_rx(&b.dev, fr, n, 1);
    EXPECT_NAK(&b, 7, FW_SETPOINT, FW_IDLE, FW_F_COMM, FW_NAK_BAD_CRC);
    CHECK(b.dev.executed == 0 && !b.dev.armed); /* not executed; the watchdog not fed */
    fr[20] ^= 0x10; /* the retransmission */
    fw_device_rx(&b.dev, fr, n, 2);
    EXPECT_ACK(&b, 7, FW_SETPOINT, FW_RUNNING, FW_F_COMM);
    /* another controller's damaged frame: no NAK (it is not ours), but COMM is latched */
    COMMAND_ACKED(&b, FW_CLEAR_FAULTS, 8, 3, FW_RUNNING, 0);
    n = fw_encode(fr, FW_SETPOINT, 2, 9, p, sizeof p);
    fr[n - 1] ^= 1;
    fw_device_rx(&b.dev, fr, n, 4);
    EXPECT_NONE(&b);
    CHECK(b.dev.faults == FW_F_COMM);
    /* a damaged IDENTIFY is NAKed whatever its address */
    n = fw_encode(fr, FW_IDENTIFY, 99, 10, NULL, 0);
    fr[n - 2] ^= 4;
    fw_device_rx(&b.dev, fr, n, 5);
    EXPECT_NAK(&b, 10, FW_IDENTIFY, FW_RUNNING, FW_F_COMM, FW_NAK_BAD_CRC);
    /* a damaged header is not answered at all */
    n = fw_encode(fr, FW_SETPOINT, 1, 11, p, sizeof p);
    fr[4] ^= 1;
    fw_device_rx(&b.dev, fr, n, 6);
    EXPECT_NONE(&b);
}

static void test_fault_inputs(void)
{
    fw_config_t c = test_config();
    fw_bench_t b;
    const int32_t sp[6] = {26500, 26000, 26000, 26000, 26000, 26000};
    fw_bench_init(&b, &c, 0);
    send_setpoint(&b, 1, 0, sp, 0);
    EXPECT_ACK(&b, 1, FW_SETPOINT, FW_RUNNING, 0);
    b.model.fault_inputs = FW_DRV_FAULT_DEVICE; /* an end stop opened */
    fw_device_poll(&b.dev, 5);
    CHECK(b.dev.state == FW_FAULTED && b.dev.faults == FW_F_DEVICE);
    send_setpoint(&b, 2, 1, sp, 6);
    EXPECT_NAK(&b, 2, FW_SETPOINT, FW_FAULTED, FW_F_DEVICE, FW_NAK_DEVICE_FAULT);
    COMMAND_ACKED(&b, FW_STOP, 3, 7, FW_FAULTED, FW_F_DEVICE);
    /* cleared while the input is still open: HOLD, and the next poll latches it again */
    COMMAND_ACKED(&b, FW_CLEAR_FAULTS, 4, 8, FW_HOLD, 0);
    fw_device_poll(&b.dev, 9);
    CHECK(b.dev.state == FW_FAULTED && b.dev.faults == FW_F_DEVICE);
    b.model.fault_inputs = 0;
    COMMAND_ACKED(&b, FW_CLEAR_FAULTS, 5, 10, FW_HOLD, 0);
    fw_device_poll(&b.dev, 11);
    CHECK(b.dev.state == FW_HOLD && b.dev.faults == 0);
    /* the emergency-stop input */
    b.model.fault_inputs = FW_DRV_FAULT_ESTOP;
    fw_device_poll(&b.dev, 12);
    CHECK(b.dev.state == FW_ESTOPPED && b.dev.faults == FW_F_ESTOP && !b.model.enabled);
    b.model.fault_inputs = 0;
    COMMAND_ACKED(&b, FW_CLEAR_FAULTS, 6, 13, FW_HOLD, 0);
    CHECK(b.model.enabled);
}

static void test_config_block(void)
{
    fw_config_t c = test_config(), d;
    uint8_t blk[FW_CONFIG_BYTES];
    c.cmin[2] = -123456;
    c.park[2] = -5;
    c.baud = 1000000;
    fw_config_pack(&c, blk);
    memset(&d, 0, sizeof d);
    CHECK(fw_config_unpack(&d, blk) == 0 && !memcmp(&c, &d, sizeof c));
    blk[40] ^= 1;
    CHECK(fw_config_unpack(&d, blk) == -1); /* CRC */
    memset(blk, 0xFF, sizeof blk);           /* blank EEPROM */
    CHECK(fw_config_unpack(&d, blk) == -1);
    c.park[0] = c.cmax[0] + 1;               /* inconsistent values are refused too */
    fw_config_pack(&c, blk);
    CHECK(fw_config_unpack(&d, blk) == -1);
}

void test_device_all(void)
{
    test_idle_status_identify();
    test_setpoints_limits_repeats();
    test_stop_estop_clear();
    test_watchdog();
    test_bad_crc();
    test_fault_inputs();
    test_config_block();
}
