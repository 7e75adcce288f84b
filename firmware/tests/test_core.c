/* Native unit tests of the firmware's C core: CRC check values, the docs/protocol.md hex
 * examples byte for byte, the decoder (resynchronisation, accounting, a time-bounded fuzz that
 * never lets a corrupt frame through), and the state machine's transitions.
 *
 * Usage: fw_tests [fuzz_seconds (default 2)] [seed]. Exit 0 when every check passed. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fw_crc.h"
#include "fw_test_support.h"

/* ------------------------------------------------------------------ helpers */

typedef struct {
    fw_frame_t f[64];
    uint8_t payload[64][FW_MAX_PAYLOAD];
    uint8_t raw[64][FW_MAX_FRAME];
    uint8_t rejected[64];
    int n;
} frames_t;

static void collect(void *ctx, const fw_frame_t *f, uint8_t rejected)
{
    frames_t *fs = (frames_t *)ctx;
    if (fs->n < 64) {
        fs->f[fs->n] = *f;
        memcpy(fs->payload[fs->n], f->payload, f->len);
        fs->f[fs->n].payload = fs->payload[fs->n];
        memcpy(fs->raw[fs->n], f->raw, FW_HEADER_LEN + f->len + FW_CRC_LEN);
        fs->f[fs->n].raw = fs->raw[fs->n];
        fs->rejected[fs->n] = rejected;
        fs->n++;
    }
}

static void feed(fw_decoder_t *d, const uint8_t *b, unsigned n, frames_t *fs)
{
    for (unsigned k = 0; k < n; k++)
        fw_decoder_push(d, b[k], collect, fs);
}

/* Decode the replies collected in a sink (then empty it). */
static int replies(fw_bench_t *b, frames_t *fs)
{
    fw_decoder_t d;
    fw_decoder_init(&d);
    memset(fs, 0, sizeof *fs);
    feed(&d, b->sink.bytes, b->sink.n, fs);
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

/* ------------------------------------------------------------------ CRCs */

static void test_crc(void)
{
    const uint8_t check[] = "123456789";
    fw_rng_t r;
    uint8_t buf[300];
    CHECK(fw_crc16(check, 9) == 0x29B1);
    CHECK(fw_crc8(check, 9) == 0xF4);
    CHECK(ref_crc16(check, 9) == 0x29B1 && ref_crc8(check, 9) == 0xF4);
    CHECK(fw_crc16(check, 0) == 0xFFFF && fw_crc8(check, 0) == 0);
    CHECK(fw_crc16_update(fw_crc16(check, 4), check + 4, 5) == 0x29B1);
    fw_rng_seed(&r, 1);
    for (int t = 0; t < 2000; t++) {
        unsigned n = fw_rng_below(&r, sizeof buf);
        for (unsigned k = 0; k < n; k++)
            buf[k] = (uint8_t)fw_rng_u32(&r);
        CHECK(fw_crc16(buf, n) == ref_crc16(buf, n));
        CHECK(fw_crc8(buf, n) == ref_crc8(buf, n));
    }
}

/* ------------------------------------------------------------------ docs/protocol.md examples */

static void test_doc_examples(void)
{
    /* SETPOINT, address 1, seq 5, tick 5, counts 26000, 26001, 26002, 25999, 26000, -1 */
    static const uint8_t sp[] = {
        0xa5, 0x5a, 0x01, 0x01, 0x05, 0x00, 0x1c, 0xe0, 0x05, 0x00, 0x00, 0x00,
        0x90, 0x65, 0x00, 0x00, 0x91, 0x65, 0x00, 0x00, 0x92, 0x65, 0x00, 0x00,
        0x8f, 0x65, 0x00, 0x00, 0x90, 0x65, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xfa, 0xf7};
    static const uint8_t ack[] = {0xa5, 0x5a, 0x81, 0x01, 0x05, 0x00, 0x04, 0x3f,
                                  0x01, 0x01, 0x00, 0x00, 0xe7, 0xe7};
    static const uint8_t nak[] = {0xa5, 0x5a, 0x82, 0x01, 0x06, 0x00, 0x06, 0x2a,
                                  0x01, 0x04, 0x04, 0x00, 0x03, 0x00, 0x33, 0xcd};
    static const uint8_t hb[] = {0xa5, 0x5a, 0x03, 0x02, 0x07, 0x00, 0x00, 0x9c, 0x6b, 0x97};
    static const uint8_t sq[] = {0xa5, 0x5a, 0x02, 0x01, 0x00, 0x00, 0x00, 0xd2, 0x3e, 0xc4};
    const int32_t counts[6] = {26000, 26001, 26002, 25999, 26000, -1};
    uint8_t p[FW_LEN_SETPOINT], out[FW_MAX_FRAME];
    fw_decoder_t d;
    frames_t fs;

    setpoint_payload(p, 5, counts);
    CHECK(fw_encode(out, FW_SETPOINT, 1, 5, p, sizeof p) == sizeof sp);
    CHECK(memcmp(out, sp, sizeof sp) == 0);
    {
        const uint8_t a[4] = {0x01, FW_RUNNING, 0x00, 0x00};
        CHECK(fw_encode(out, FW_ACK, 1, 5, a, 4) == sizeof ack && !memcmp(out, ack, sizeof ack));
    }
    {
        const uint8_t n[6] = {0x01, FW_FAULTED, FW_F_DEVICE, 0x00, FW_NAK_DEVICE_FAULT, 0};
        CHECK(fw_encode(out, FW_NAK, 1, 6, n, 6) == sizeof nak && !memcmp(out, nak, sizeof nak));
    }
    CHECK(fw_encode(out, FW_HEARTBEAT, 2, 7, NULL, 0) == sizeof hb && !memcmp(out, hb, sizeof hb));
    CHECK(fw_encode(out, FW_STATUS_QUERY, 1, 0, NULL, 0) == sizeof sq
          && !memcmp(out, sq, sizeof sq));
    /* wrong lengths and unknown types are refused */
    CHECK(fw_encode(out, FW_ACK, 1, 0, p, 3) == 0 && fw_encode(out, 0x55, 1, 0, NULL, 0) == 0);

    fw_decoder_init(&d);
    memset(&fs, 0, sizeof fs);
    feed(&d, sp, sizeof sp, &fs);
    feed(&d, ack, sizeof ack, &fs);
    feed(&d, nak, sizeof nak, &fs);
    feed(&d, hb, sizeof hb, &fs);
    feed(&d, sq, sizeof sq, &fs);
    CHECK(fs.n == 5 && d.frames == 5 && d.discarded == 0 && d.n == 0);
    CHECK(fs.f[0].type == FW_SETPOINT && fs.f[0].address == 1 && fs.f[0].seq == 5);
    CHECK(fw_get_u32(fs.payload[0]) == 5 && fw_get_i32(fs.payload[0] + 24) == -1);
    CHECK(fw_get_i32(fs.payload[0] + 16) == 25999);
    CHECK(fs.f[1].type == FW_ACK && fs.payload[1][1] == FW_RUNNING);
    CHECK(fs.f[2].type == FW_NAK && fs.payload[2][4] == FW_NAK_DEVICE_FAULT);
    CHECK(fs.f[3].type == FW_HEARTBEAT && fs.f[3].address == 2 && fs.f[3].seq == 7);
    CHECK(fs.f[4].type == FW_STATUS_QUERY && fs.f[4].seq == 0);
}

/* ------------------------------------------------------------------ decoder */

static void test_decoder_resync(void)
{
    uint8_t stream[200], fr[FW_MAX_FRAME];
    unsigned n = 0;
    uint8_t flen;
    fw_decoder_t d;
    frames_t fs;
    /* a false marker whose "header" swallows the start of a real frame */
    flen = fw_encode(fr, FW_HEARTBEAT, 1, 9, NULL, 0);
    stream[n++] = 0x00;
    stream[n++] = FW_SOF0;
    stream[n++] = FW_SOF1;
    stream[n++] = FW_SETPOINT; /* plausible type, but ... */
    memcpy(stream + n, fr, flen);
    n += flen;
    fw_decoder_init(&d);
    memset(&fs, 0, sizeof fs);
    feed(&d, stream, n, &fs);
    CHECK(fs.n == 1 && fs.f[0].type == FW_HEARTBEAT && fs.f[0].seq == 9 && !fs.rejected[0]);
    CHECK(d.bad_header == 1 && d.discarded == 4 && d.n == 0);
    /* a truncated SETPOINT followed by the complete retransmission: the retransmission is
     * found once the truncated candidate fails its CRC */
    {
        uint8_t p[FW_LEN_SETPOINT] = {0};
        uint8_t sp[FW_MAX_FRAME];
        uint8_t splen = fw_encode(sp, FW_SETPOINT, 1, 3, p, sizeof p);
        fw_decoder_init(&d);
        memset(&fs, 0, sizeof fs);
        feed(&d, sp, 20, &fs);
        CHECK(fs.n == 0 && d.n == 20);
        feed(&d, sp, splen, &fs);
        CHECK(fs.n == 2 && fs.rejected[0] && !fs.rejected[1] && fs.f[1].seq == 3);
        CHECK(d.bad_crc == 1 && d.n == 0 && d.discarded == 20);
    }
    /* a trailing A5 is kept (its 5A may come next); flush gives pending bytes up */
    fw_decoder_init(&d);
    memset(&fs, 0, sizeof fs);
    feed(&d, (const uint8_t *)"\x11\x22\xa5", 3, &fs);
    CHECK(d.n == 1 && d.discarded == 2);
    feed(&d, fr + 1, (unsigned)flen - 1, &fs);
    CHECK(fs.n == 1 && d.n == 0);
    feed(&d, fr, 9, &fs);
    CHECK(d.n == 9);
    fw_decoder_flush(&d, collect, &fs);
    CHECK(d.n == 0 && d.discarded == 2 + 9 && fs.n == 1);
}

/* Random frames of every type, some corrupted, with noise between them. Checks: every frame
 * emitted passes the reference CRCs and the type/length rule; every intact frame is emitted,
 * in order, byte for byte; a frame with a corruption CRC-16 always detects (1..3 flipped
 * bits, or a burst of at most 16 bits, after the marker) is never emitted; a frame with random
 * multi-byte damage is emitted only when it is valid after all (counted); and every byte fed
 * is accounted for (in a frame, discarded or pending). */
static void test_decoder_fuzz(double seconds, uint64_t seed)
{
    static const uint8_t types[] = {FW_SETPOINT, FW_STATUS_QUERY, FW_HEARTBEAT, FW_STOP,
                                    FW_ESTOP, FW_CLEAR_FAULTS, FW_IDENTIFY, FW_ACK, FW_NAK,
                                    FW_STATUS, FW_IDENT};
    fw_rng_t r;
    clock_t t0 = clock();
    long rounds = 0, intact = 0, guaranteed = 0, random_damage = 0, collisions = 0;
    long noise_bytes = 0;
    fw_rng_seed(&r, seed);
    while ((double)(clock() - t0) / CLOCKS_PER_SEC < seconds) {
        enum { NF = 24 };
        uint8_t stream[NF * (FW_MAX_FRAME + 40)];
        uint8_t sent[NF][FW_MAX_FRAME], damaged[NF][FW_MAX_FRAME];
        uint8_t sent_len[NF], kind[NF]; /* 0 intact, 1 guaranteed-detectable, 2 random damage */
        unsigned n = 0, fed_in_frames = 0;
        int next = 0;
        fw_decoder_t d;
        frames_t fs;
        for (int i = 0; i < NF; i++) {
            uint8_t p[FW_MAX_PAYLOAD], t = types[fw_rng_below(&r, sizeof types)];
            uint8_t len = (uint8_t)fw_payload_len(t);
            uint8_t fr[FW_MAX_FRAME], flen;
            unsigned noise = fw_rng_below(&r, 4) == 0 ? fw_rng_below(&r, 40) : 0;
            for (unsigned k = 0; k < len; k++)
                p[k] = (uint8_t)fw_rng_u32(&r);
            flen = fw_encode(fr, t, (uint8_t)fw_rng_u32(&r), (uint16_t)fw_rng_u32(&r), p, len);
            memcpy(sent[i], fr, flen);
            sent_len[i] = flen;
            kind[i] = 0;
            switch (fw_rng_below(&r, 6)) {
            case 0: { /* 1..3 bit flips after the marker */
                unsigned flips = 1 + fw_rng_below(&r, 3);
                unsigned pos[3];
                for (unsigned k = 0; k < flips; k++) {
                    unsigned bit;
                    do { /* distinct bits, else two flips cancel */
                        bit = 16 + fw_rng_below(&r, (unsigned)(flen - 2) * 8);
                    } while ((k > 0 && bit == pos[0]) || (k > 1 && bit == pos[1]));
                    pos[k] = bit;
                    fr[bit / 8] ^= (uint8_t)(1u << (bit % 8));
                }
                kind[i] = 1;
                break;
            }
            case 1: { /* one burst of 1..16 bits after the marker, first and last bit flipped */
                unsigned blen = 1 + fw_rng_below(&r, 16);
                unsigned start = 16 + fw_rng_below(&r, (unsigned)(flen - 2) * 8 - blen + 1);
                for (unsigned b = 0; b < blen; b++)
                    if (b == 0 || b == blen - 1 || (fw_rng_u32(&r) & 1))
                        fr[(start + b) / 8] ^= (uint8_t)(1u << ((start + b) % 8));
                kind[i] = 1;
                break;
            }
            case 2: { /* several random bytes anywhere (the marker too) */
                unsigned m = 1 + fw_rng_below(&r, 6);
                for (unsigned k = 0; k < m; k++)
                    fr[fw_rng_below(&r, flen)] = (uint8_t)fw_rng_u32(&r);
                kind[i] = memcmp(fr, sent[i], flen) ? 2 : 0;
                break;
            }
            default:
                break;
            }
            memcpy(damaged[i], fr, flen);
            memcpy(stream + n, fr, flen);
            n += flen;
            for (unsigned k = 0; k < noise; k++)
                stream[n++] = fw_rng_below(&r, 8) == 0 ? FW_SOF0 : (uint8_t)fw_rng_u32(&r);
            noise_bytes += noise;
        }
        fw_decoder_init(&d);
        memset(&fs, 0, sizeof fs);
        feed(&d, stream, n, &fs);
        fw_decoder_flush(&d, collect, &fs);
        for (int j = 0; j < fs.n; j++) {
            const uint8_t *fr = fs.raw[j];
            uint8_t flen = (uint8_t)(FW_HEADER_LEN + fs.f[j].len + FW_CRC_LEN);
            if (fs.rejected[j])
                continue;
            /* the bytes accepted: marker, a known type with its exact length, both CRCs right
             * by the bitwise reference */
            CHECK(fr[0] == FW_SOF0 && fr[1] == FW_SOF1 && fr[6] == fs.f[j].len);
            CHECK(fw_payload_len(fr[2]) == fr[6] && fs.f[j].type == fr[2]);
            CHECK(ref_crc8(fr + 2, 5) == fr[7]);
            CHECK(ref_crc16(fr + 2, (size_t)flen - 4) == fw_get_u16(fr + flen - 2));
            fed_in_frames += flen;
            /* never the bytes of a frame with errors CRC-16 must detect */
            for (int i = 0; i < NF; i++)
                CHECK(!(kind[i] == 1 && sent_len[i] == flen && !memcmp(damaged[i], fr, flen)));
            /* match it against what was sent, in order; frames skipped must be damaged ones */
            {
                int m = next;
                while (m < NF && !(kind[m] != 1 && sent_len[m] == flen
                                   && !memcmp(sent[m], fr, flen)))
                    m++;
                if (m < NF) {
                    for (; next < m; next++)
                        CHECK(kind[next] != 0); /* an intact frame was lost */
                    next = m + 1;
                } else {
                    collisions++; /* valid bytes no one sent (noise or damage that checks out) */
                }
            }
        }
        while (next < NF) { /* the rest must have been damaged */
            CHECK(kind[next] != 0);
            next++;
        }
        CHECK(fed_in_frames + d.discarded == n && d.n == 0);
        for (int i = 0; i < NF; i++) {
            intact += kind[i] == 0;
            guaranteed += kind[i] == 1;
            random_damage += kind[i] == 2;
        }
        rounds++;
    }
    printf("fuzz: %ld streams (seed %llu): %ld intact, %ld with detectable errors, %ld with "
           "random damage, %ld noise bytes; %ld valid frames nobody sent\n",
           rounds, (unsigned long long)seed, intact, guaranteed, random_damage, noise_bytes,
           collisions);
    CHECK(rounds > 0);
    /* with 24-bit protection a collision is a 1-in-16-million event per candidate: a count
     * above a handful means the checks are not being made */
    CHECK(collisions <= 2);
}

/* Pure noise: nothing is ever accepted that fails the reference CRCs, and nothing is lost. */
static void test_decoder_noise(uint64_t seed)
{
    fw_rng_t r;
    fw_decoder_t d;
    long accepted = 0;
    unsigned long fed = 0, in_frames = 0;
    fw_rng_seed(&r, seed);
    fw_decoder_init(&d);
    for (int k = 0; k < 2000000; k++) {
        frames_t fs;
        uint8_t b = fw_rng_below(&r, 4) == 0 ? (k & 1 ? FW_SOF1 : FW_SOF0) : (uint8_t)fw_rng_u32(&r);
        fs.n = 0;
        fw_decoder_push(&d, b, collect, &fs);
        fed++;
        for (int j = 0; j < fs.n; j++) {
            const uint8_t *fr = fs.raw[j];
            unsigned flen = FW_HEADER_LEN + fs.f[j].len + FW_CRC_LEN;
            if (fs.rejected[j])
                continue;
            CHECK(fw_payload_len(fr[2]) == fr[6] && ref_crc8(fr + 2, 5) == fr[7]);
            CHECK(ref_crc16(fr + 2, (size_t)flen - 4) == fw_get_u16(fr + flen - 2));
            in_frames += flen;
            accepted++;
        }
    }
    CHECK(in_frames + d.discarded + d.n == fed);
    printf("noise: 2000000 bytes, %lu bad headers, %lu bad CRCs, %ld frames accepted (valid)\n",
           (unsigned long)d.bad_header, (unsigned long)d.bad_crc, accepted);
    CHECK(accepted <= 2);
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
    send(&b, FW_STOP, 1, 3, NULL, 0, 20);
    EXPECT_ACK(&b, 3, FW_STOP, FW_HOLD, 0);
    fw_device_poll(&b.dev, 200);
    s2 = query(&b, 4, 200);
    CHECK(s2.state == FW_HOLD && s2.target[0] == s.measured[0] && s2.measured[0] == s.measured[0]);
    /* a set-point after STOP runs again */
    send_setpoint(&b, 5, 1, far, 200);
    EXPECT_ACK(&b, 5, FW_SETPOINT, FW_RUNNING, 0);
    fw_device_poll(&b.dev, 210);
    /* ESTOP: latched, drives cut (the position freezes), set-points refused */
    send(&b, FW_ESTOP, 1, 6, NULL, 0, 210);
    EXPECT_ACK(&b, 6, FW_ESTOP, FW_ESTOPPED, FW_F_ESTOP);
    s = query(&b, 7, 210);
    fw_device_poll(&b.dev, 400);
    s2 = query(&b, 8, 400);
    CHECK(s2.state == FW_ESTOPPED && !memcmp(s.measured, s2.measured, sizeof s.measured));
    CHECK(!memcmp(s2.target, s2.measured, sizeof s2.measured));
    send_setpoint(&b, 9, 2, far, 400);
    EXPECT_NAK(&b, 9, FW_SETPOINT, FW_ESTOPPED, FW_F_ESTOP, FW_NAK_ESTOPPED);
    /* STOP does not leave ESTOP */
    send(&b, FW_STOP, 1, 10, NULL, 0, 400);
    EXPECT_ACK(&b, 10, FW_STOP, FW_ESTOPPED, FW_F_ESTOP);
    /* CLEAR_FAULTS: ESTOP -> HOLD, faults cleared; a repeat of it is not re-executed */
    send(&b, FW_CLEAR_FAULTS, 1, 11, NULL, 0, 401);
    EXPECT_ACK(&b, 11, FW_CLEAR_FAULTS, FW_HOLD, 0);
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
    send(&b, FW_CLEAR_FAULTS, 1, 4, NULL, 0, 5602);
    EXPECT_ACK(&b, 4, FW_CLEAR_FAULTS, FW_HOLD, 0);
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
    send(&b, FW_HEARTBEAT, 1, 100, NULL, 0, 20000);
    EXPECT_ACK(&b, 100, FW_HEARTBEAT, FW_HOLD, FW_F_WATCHDOG);
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
    send(&b, FW_CLEAR_FAULTS, 1, 8, NULL, 0, 3);
    EXPECT_ACK(&b, 8, FW_CLEAR_FAULTS, FW_RUNNING, 0);
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
    send(&b, FW_STOP, 1, 3, NULL, 0, 7);
    EXPECT_ACK(&b, 3, FW_STOP, FW_FAULTED, FW_F_DEVICE);
    /* cleared while the input is still open: HOLD, and the next poll latches it again */
    send(&b, FW_CLEAR_FAULTS, 1, 4, NULL, 0, 8);
    EXPECT_ACK(&b, 4, FW_CLEAR_FAULTS, FW_HOLD, 0);
    fw_device_poll(&b.dev, 9);
    CHECK(b.dev.state == FW_FAULTED && b.dev.faults == FW_F_DEVICE);
    b.model.fault_inputs = 0;
    send(&b, FW_CLEAR_FAULTS, 1, 5, NULL, 0, 10);
    EXPECT_ACK(&b, 5, FW_CLEAR_FAULTS, FW_HOLD, 0);
    fw_device_poll(&b.dev, 11);
    CHECK(b.dev.state == FW_HOLD && b.dev.faults == 0);
    /* the emergency-stop input */
    b.model.fault_inputs = FW_DRV_FAULT_ESTOP;
    fw_device_poll(&b.dev, 12);
    CHECK(b.dev.state == FW_ESTOPPED && b.dev.faults == FW_F_ESTOP && !b.model.enabled);
    b.model.fault_inputs = 0;
    send(&b, FW_CLEAR_FAULTS, 1, 6, NULL, 0, 13);
    EXPECT_ACK(&b, 6, FW_CLEAR_FAULTS, FW_HOLD, 0);
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

int main(int argc, char **argv)
{
    double fuzz_s = argc > 1 ? atof(argv[1]) : 2.0;
    uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 0) : 20240611u;
    test_crc();
    test_doc_examples();
    test_decoder_resync();
    test_decoder_fuzz(fuzz_s, seed);
    test_decoder_noise(seed + 1);
    test_idle_status_identify();
    test_setpoints_limits_repeats();
    test_stop_estop_clear();
    test_watchdog();
    test_bad_crc();
    test_fault_inputs();
    test_config_block();
    printf("%d checks, %d failures\n", fw_checks, fw_failures);
    return fw_failures ? 1 : 0;
}
