/*
 * DfuSe state machine (FACTS.md §F.2, §F.4-§F.7).
 *
 * Interrupt side (dfu_usb_setup): decodes class requests, keeps bState/bStatus, validates DfuSe
 * commands and addresses against the alternate setting's segment table, and hands flash work to
 * the main loop as one "job". Main-loop side (dfu_poll): runs the job, records the result, answers
 * a GETSTATUS or UPLOAD that was left waiting for it, and prints one line per operation.
 *
 * Download flow: DNLOAD (data into buf) -> dfuDNLOAD-SYNC -> GETSTATUS: validate; error -> dfuERROR
 * with its status at once; else reply dfuDNBUSY + bwPollTimeout and, once that reply is sent, let
 * the main loop run the job -> dfuDNLOAD-SYNC (ok) or dfuERROR -> next GETSTATUS -> dfuDNLOAD-IDLE.
 */
#include "dfu.h"

#include "dfu_media.h"
#include "dfu_proto.h"
#include "cm7_core.h"
#include "log.h"

#define REQ_TYPE_DIR_IN 0x80u
#define MANIFEST_POLL_MS 10u /* time until we disconnect after the dfuMANIFEST reply */
#define LOG_RING_SIZE 8u
#define BYTE_BITS 8u
#define BYTE_MASK 0xFFu
#define ADDRESS_LIMIT 0xFFFFFFFFull

typedef enum {
    JOB_NONE,
    JOB_NOP,         /* DfuSe Get Commands sent as a DNLOAD */
    JOB_SET_POINTER,
    JOB_ERASE,
    JOB_MASS_ERASE,
    JOB_WRITE,
    JOB_READ,        /* UPLOAD data from a memory that may need the QSPI driver */
} job_t;

typedef enum {
    EVT_POINTER,
    EVT_ERASE,
    EVT_MASS_ERASE,
    EVT_WRITE,
    EVT_READ,
    EVT_COMMAND,     /* a block-0 command that failed validation */
    EVT_BAD_REQUEST, /* a request stalled in the wrong state */
} event_kind_t;

typedef struct {
    uint8_t kind;
    uint8_t status;
    uint8_t request;
    uint8_t state;
    uint32_t addr;
    uint32_t len;
} event_t;

static const uint8_t dfuse_commands[] = {DFUSE_CMD_GET_COMMANDS, DFUSE_CMD_SET_ADDRESS, DFUSE_CMD_ERASE};

static struct {
    volatile uint8_t state;
    volatile uint8_t status;
    uint8_t alt;
    const dfu_media_t *media;
    uint32_t pointer;

    /* A received DNLOAD not yet solicited by GETSTATUS. */
    uint8_t dn_pending;
    uint16_t dn_block;
    uint16_t dn_len;

    /* Work for the main loop: queued by the interrupt, runs once `armed`. */
    volatile uint8_t job;
    volatile uint8_t job_armed;
    uint32_t job_addr;
    uint32_t job_len;
    uint16_t job_wlength;

    /* A GETSTATUS (or the UPLOAD of JOB_READ) waiting for the job's end. */
    volatile uint8_t reply_waiting;
    uint32_t reply_token;
    uint16_t reply_wlength;

    volatile uint8_t leave;
    uint8_t leave_is_detach;

    uint8_t status_reply[DFU_STATUS_REPLY_BYTES];
    uint8_t state_reply;

    event_t events[LOG_RING_SIZE];
    volatile uint8_t ev_head;
    volatile uint8_t ev_tail;
    volatile uint8_t ev_lost;

    uint8_t buf[DFU_TRANSFER_SIZE] __attribute__((aligned(4)));
} dfu;

/* ---- log ring (filled from both contexts, drained by the main loop) ---------------------------- */

static void push_event(const event_t *ev)
{
    uint32_t primask = cm7_irq_save();
    uint8_t next = (uint8_t)((dfu.ev_head + 1u) % LOG_RING_SIZE);
    if (next == dfu.ev_tail) {
        dfu.ev_lost++;
    } else {
        dfu.events[dfu.ev_head] = *ev;
        dfu.ev_head = next;
    }
    cm7_irq_restore(primask);
}

static void log_event(uint8_t kind, uint8_t status, uint32_t addr, uint32_t len)
{
    event_t e = {0};
    e.kind = kind;
    e.status = status;
    e.addr = addr;
    e.len = len;
    push_event(&e);
}

static void log_bad_request(uint8_t request, uint8_t state)
{
    event_t e = {0};
    e.kind = EVT_BAD_REQUEST;
    e.status = DFU_STATUS_ERR_STALLEDPKT;
    e.request = request;
    e.state = state;
    push_event(&e);
}

static const char *status_name(uint8_t status)
{
    static const char *const names[] = {
        "ok",           "errTARGET", "errFILE",     "errWRITE",      "errERASE",   "errCHECK_ERASED",
        "errPROG",      "errVERIFY", "errADDRESS",  "errNOTDONE",    "errFIRMWARE", "errVENDOR",
        "errUSBR",      "errPOR",    "errUNKNOWN",  "errSTALLEDPKT",
    };
    return status < sizeof(names) / sizeof(names[0]) ? names[status] : "err?";
}

static void print_event(const event_t *e)
{
    log_str("DFU ");
    switch (e->kind) {
    case EVT_POINTER:
        log_str("pointer ");
        log_hex32(e->addr);
        break;
    case EVT_ERASE:
        log_str("erase ");
        log_hex32(e->addr);
        break;
    case EVT_MASS_ERASE:
        log_str("mass-erase ");
        log_str(dfu_media_short_name(dfu_media_for_alt((uint8_t)e->addr)));
        break;
    case EVT_WRITE:
    case EVT_READ:
        log_str(e->kind == EVT_WRITE ? "write " : "read ");
        log_hex32(e->addr);
        log_str(" ");
        log_dec(e->len);
        break;
    case EVT_COMMAND:
        log_str("command ");
        log_hex32(e->addr);
        log_str(" len ");
        log_dec(e->len);
        break;
    default:
        log_str("request ");
        log_dec(e->request);
        log_str(" refused in state ");
        log_dec(e->state);
        break;
    }
    log_str(" ");
    log_str(status_name(e->status));
    log_end();
}

/* ---- state helpers ------------------------------------------------------------------------------ */

/* Flash work queued or running, or on the way out: only GETSTATUS/GETSTATE are served. */
static int busy(void)
{
    return dfu.job != JOB_NONE || dfu.leave != 0u || dfu.state == DFU_STATE_MANIFEST_WAIT_RESET;
}

static void enter_error(uint8_t status)
{
    dfu.state = DFU_STATE_ERROR;
    dfu.status = status;
    dfu.dn_pending = 0;
}

/* Request not allowed now: STALL it; outside a running operation also go to dfuERROR. */
static void refuse(const usb_setup_t *s)
{
    if (!busy() && dfu.state != DFU_STATE_ERROR) {
        log_bad_request(s->bRequest, dfu.state);
        enter_error(DFU_STATUS_ERR_STALLEDPKT);
    }
    usb_ctrl_stall();
}

/* Request well-formed in this state but its parameters cannot be served. */
static void refuse_with(uint8_t status)
{
    enter_error(status);
    usb_ctrl_stall();
}

static void reset_session(void)
{
    dfu.state = DFU_STATE_IDLE;
    dfu.status = DFU_STATUS_OK;
    dfu.dn_pending = 0;
    dfu.pointer = dfu_media_start(dfu.media);
}

void dfu_init(void)
{
    dfu.alt = 0;
    dfu.media = dfu_media_for_alt(0);
    dfu.job = JOB_NONE;
    dfu.job_armed = 0;
    dfu.reply_waiting = 0;
    dfu.leave = 0;
    dfu.leave_is_detach = 0;
    dfu.ev_head = 0;
    dfu.ev_tail = 0;
    dfu.ev_lost = 0;
    reset_session();
}

void dfu_usb_reset(void)
{
    if (dfu.job != JOB_NONE && !dfu.job_armed) {
        dfu.job = JOB_NONE; /* its dfuDNBUSY reply never went out: the job never starts */
    }
    if (!busy()) {
        dfu.alt = 0;
        dfu.media = dfu_media_for_alt(0);
        reset_session();
    }
}

int dfu_set_alt(uint8_t alt)
{
    const dfu_media_t *m = dfu_media_for_alt(alt);
    if (m == 0 || busy()) {
        return -1;
    }
    if (alt == dfu.alt) {
        return 0; /* same memory: pointer and state stay as they are */
    }
    /* Another memory: the old pointer and any transfer in progress belonged to the previous one. */
    dfu.alt = alt;
    dfu.media = m;
    dfu.pointer = dfu_media_start(m);
    dfu.dn_pending = 0;
    if (dfu.state != DFU_STATE_ERROR) {
        dfu.state = DFU_STATE_IDLE;
    }
    return 0;
}

uint8_t dfu_get_alt(void)
{
    return dfu.alt;
}

/* ---- GETSTATUS ------------------------------------------------------------------------------------ */

static void arm_job(void)
{
    dfu.job_armed = 1;
}

static void manifest_reply_sent(void)
{
    dfu.state = DFU_STATE_MANIFEST_WAIT_RESET;
    dfu.leave = 1;
}

static void send_status(uint32_t poll_ms, usb_ctrl_done_fn done)
{
    if (poll_ms > DFU_POLL_TIMEOUT_MAX_MS) {
        poll_ms = DFU_POLL_TIMEOUT_MAX_MS;
    }
    dfu.status_reply[0] = dfu.status;
    dfu.status_reply[1] = (uint8_t)(poll_ms & BYTE_MASK);
    dfu.status_reply[2] = (uint8_t)((poll_ms >> BYTE_BITS) & BYTE_MASK);
    dfu.status_reply[3] = (uint8_t)((poll_ms >> (2u * BYTE_BITS)) & BYTE_MASK);
    dfu.status_reply[4] = dfu.state;
    dfu.status_reply[5] = 0; /* iString */
    usb_ctrl_send(dfu.status_reply, DFU_STATUS_REPLY_BYTES, done);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

/* Turn the pending DNLOAD into a job; returns its bStatus and sets *poll_ms. Pure: no hardware. */
static uint8_t plan_download(uint32_t *poll_ms)
{
    const dfu_media_t *m = dfu.media;
    *poll_ms = 0;
    dfu.job_len = dfu.dn_len;
    if (dfu.dn_block == DFUSE_BLOCK_COMMAND) {
        uint8_t cmd = dfu.buf[0];
        uint32_t addr = dfu.dn_len >= DFUSE_CMD_WITH_ADDRESS_BYTES ? le32(&dfu.buf[1]) : 0u;
        dfu.job_addr = addr;
        if (cmd == DFUSE_CMD_GET_COMMANDS && dfu.dn_len == DFUSE_CMD_ALONE_BYTES) {
            dfu.job = JOB_NOP;
            return DFU_STATUS_OK;
        }
        if (cmd == DFUSE_CMD_ERASE && dfu.dn_len == DFUSE_CMD_ALONE_BYTES) {
            dfu.job = JOB_MASS_ERASE;
            *poll_ms = dfu_media_mass_erase_ms(m);
            return DFU_STATUS_OK;
        }
        if (cmd == DFUSE_CMD_SET_ADDRESS && dfu.dn_len == DFUSE_CMD_WITH_ADDRESS_BYTES) {
            uint8_t st = dfu_media_check(m, addr, 0, DFU_MEDIA_READ);
            if (st == DFU_STATUS_OK) {
                dfu.job = JOB_SET_POINTER;
            }
            return st;
        }
        if (cmd == DFUSE_CMD_ERASE && dfu.dn_len == DFUSE_CMD_WITH_ADDRESS_BYTES) {
            uint8_t st = dfu_media_check(m, addr, 0, DFU_MEDIA_ERASE);
            if (st == DFU_STATUS_OK) {
                dfu.job = JOB_ERASE;
                dfu.job_addr = dfu_media_sector_start(m, addr);
                *poll_ms = dfu_media_erase_ms(m);
            }
            return st;
        }
        return DFU_STATUS_ERR_UNKNOWN;
    }
    uint64_t addr = (uint64_t)dfu.pointer + (uint64_t)(dfu.dn_block - DFUSE_BLOCK_FIRST_DATA) * DFU_TRANSFER_SIZE;
    dfu.job_addr = (uint32_t)addr;
    if (addr > ADDRESS_LIMIT) {
        return DFU_STATUS_ERR_ADDRESS;
    }
    uint8_t st = dfu_media_check(m, dfu.job_addr, dfu.dn_len, DFU_MEDIA_WRITE);
    if (st == DFU_STATUS_OK) {
        dfu.job = JOB_WRITE;
        *poll_ms = dfu_media_write_ms(m, dfu.job_addr, dfu.dn_len);
    }
    return st;
}

static uint8_t event_kind_of_block(void)
{
    if (dfu.dn_block != DFUSE_BLOCK_COMMAND) {
        return EVT_WRITE;
    }
    if (dfu.dn_len == DFUSE_CMD_WITH_ADDRESS_BYTES) {
        return dfu.buf[0] == DFUSE_CMD_SET_ADDRESS ? EVT_POINTER : dfu.buf[0] == DFUSE_CMD_ERASE ? EVT_ERASE : EVT_COMMAND;
    }
    return EVT_COMMAND;
}

static void on_getstatus(void)
{
    switch (dfu.state) {
    case DFU_STATE_DNLOAD_SYNC:
        if (dfu.dn_pending) {
            uint32_t poll_ms;
            dfu.dn_pending = 0;
            uint8_t st = plan_download(&poll_ms);
            if (st != DFU_STATUS_OK) {
                uint8_t kind = event_kind_of_block();
                uint32_t addr = kind == EVT_COMMAND ? dfu.buf[0] : dfu.job_addr;
                log_event(kind, st, addr, dfu.dn_len);
                enter_error(st);
                send_status(0, 0);
                return;
            }
            dfu.state = DFU_STATE_DNBUSY;
            dfu.job_armed = 0;
            send_status(poll_ms, arm_job);
            return;
        }
        dfu.state = DFU_STATE_DNLOAD_IDLE;
        send_status(0, 0);
        return;
    case DFU_STATE_DNBUSY:
        /* The job is still running: answer when it ends (the host sees NAKs until then). If the
         * host abandoned the dfuDNBUSY reply and asks again, that is its go-ahead too. */
        dfu.job_armed = 1;
        dfu.reply_waiting = 1;
        dfu.reply_token = usb_ctrl_defer_token();
        return;
    case DFU_STATE_MANIFEST_SYNC:
    case DFU_STATE_MANIFEST:
        dfu.state = DFU_STATE_MANIFEST;
        send_status(MANIFEST_POLL_MS, manifest_reply_sent);
        return;
    default:
        send_status(0, 0);
        return;
    }
}

/* ---- DNLOAD / UPLOAD ------------------------------------------------------------------------------ */

static int on_dnload_data(const uint8_t *data, uint16_t len)
{
    (void)data; /* received straight into dfu.buf */
    dfu.dn_len = len;
    dfu.dn_pending = 1;
    dfu.state = DFU_STATE_DNLOAD_SYNC;
    return 0;
}

/* DNLOAD/UPLOAD with data: at most one transfer size, and never DfuSe's unused block 1. */
static int block_request_ok(const usb_setup_t *s)
{
    if (s->wLength > DFU_TRANSFER_SIZE || s->wValue == DFUSE_BLOCK_UNUSED) {
        log_bad_request(s->bRequest, dfu.state);
        refuse_with(DFU_STATUS_ERR_STALLEDPKT);
        return 0;
    }
    return 1;
}

static void on_dnload(const usb_setup_t *s)
{
    if (busy() || (dfu.state != DFU_STATE_IDLE && dfu.state != DFU_STATE_DNLOAD_IDLE)) {
        refuse(s);
        return;
    }
    if (s->wLength == 0u) {
        /* Leave request (DfuSe accepts it from dfuIDLE as well). */
        dfu.state = DFU_STATE_MANIFEST_SYNC;
        usb_ctrl_ack(0);
        return;
    }
    if (!block_request_ok(s)) {
        return;
    }
    dfu.dn_block = s->wValue;
    usb_ctrl_receive(dfu.buf, s->wLength, on_dnload_data);
}

static void on_upload(const usb_setup_t *s)
{
    if (busy() || (dfu.state != DFU_STATE_IDLE && dfu.state != DFU_STATE_UPLOAD_IDLE)) {
        refuse(s);
        return;
    }
    if (s->wLength == 0u) {
        dfu.state = DFU_STATE_IDLE;
        usb_ctrl_ack(0);
        return;
    }
    if (!block_request_ok(s)) {
        return;
    }
    if (s->wValue == DFUSE_BLOCK_COMMAND) {
        uint16_t n = sizeof(dfuse_commands) < s->wLength ? (uint16_t)sizeof(dfuse_commands) : s->wLength;
        dfu.state = n < s->wLength ? DFU_STATE_IDLE : DFU_STATE_UPLOAD_IDLE;
        usb_ctrl_send(dfuse_commands, n, 0);
        return;
    }
    uint64_t addr = (uint64_t)dfu.pointer + (uint64_t)(s->wValue - DFUSE_BLOCK_FIRST_DATA) * DFU_TRANSFER_SIZE;
    uint32_t n = addr > ADDRESS_LIMIT ? 0u : dfu_media_readable(dfu.media, (uint32_t)addr, s->wLength);
    if (n == 0u && addr == dfu_media_end(dfu.media)) {
        /* Right after the last byte: a zero-length (short) frame ends the upload. */
        dfu.state = DFU_STATE_IDLE;
        usb_ctrl_send(dfu.buf, 0, 0);
        return;
    }
    if (n == 0u) {
        log_event(EVT_READ, DFU_STATUS_ERR_TARGET, (uint32_t)addr, s->wLength);
        refuse_with(DFU_STATUS_ERR_TARGET);
        return;
    }
    dfu.job = JOB_READ;
    dfu.job_addr = (uint32_t)addr;
    dfu.job_len = n;
    dfu.job_wlength = s->wLength;
    dfu.reply_waiting = 1;
    dfu.reply_token = usb_ctrl_defer_token();
    dfu.job_armed = 1;
}

/* ---- class request dispatch ------------------------------------------------------------------------ */

static int direction_in(const usb_setup_t *s)
{
    return (s->bmRequestType & REQ_TYPE_DIR_IN) != 0u;
}

static void detach_reply_sent(void)
{
    dfu.leave = 1;
}

void dfu_usb_setup(const usb_setup_t *s)
{
    switch (s->bRequest) {
    case DFU_REQ_DNLOAD:
        if (direction_in(s)) {
            refuse(s);
        } else {
            on_dnload(s);
        }
        return;
    case DFU_REQ_UPLOAD:
        if (!direction_in(s)) {
            refuse(s);
        } else {
            on_upload(s);
        }
        return;
    case DFU_REQ_GETSTATUS:
        if (!direction_in(s)) {
            refuse(s);
        } else {
            on_getstatus();
        }
        return;
    case DFU_REQ_GETSTATE:
        if (!direction_in(s)) {
            refuse(s);
        } else {
            dfu.state_reply = dfu.state;
            usb_ctrl_send(&dfu.state_reply, sizeof(dfu.state_reply), 0);
        }
        return;
    case DFU_REQ_CLRSTATUS:
        if (direction_in(s) || dfu.state != DFU_STATE_ERROR || busy()) {
            refuse(s);
        } else {
            dfu.state = DFU_STATE_IDLE;
            dfu.status = DFU_STATUS_OK;
            usb_ctrl_ack(0);
        }
        return;
    case DFU_REQ_ABORT:
    case DFU_REQ_DETACH:
        if (direction_in(s) || busy() || dfu.state == DFU_STATE_ERROR) {
            refuse(s);
            return;
        }
        /* dfuIDLE, dfuDNLOAD-SYNC/IDLE, dfuMANIFEST-SYNC, dfuUPLOAD-IDLE: back to idle; a
         * downloaded block not yet solicited by GETSTATUS is dropped, never executed. */
        dfu.state = DFU_STATE_IDLE;
        dfu.status = DFU_STATUS_OK;
        dfu.dn_pending = 0;
        if (s->bRequest == DFU_REQ_DETACH) {
            dfu.leave_is_detach = 1;
            usb_ctrl_ack(detach_reply_sent);
        } else {
            usb_ctrl_ack(0);
        }
        return;
    default:
        refuse(s);
        return;
    }
}

/* ---- main loop ---------------------------------------------------------------------------------- */

static uint8_t run_job(uint8_t job, uint32_t addr, uint32_t len)
{
    switch (job) {
    case JOB_NOP:
        return DFU_STATUS_OK;
    case JOB_SET_POINTER:
        dfu.pointer = addr;
        return DFU_STATUS_OK;
    case JOB_ERASE:
        return dfu_media_erase(dfu.media, addr);
    case JOB_MASS_ERASE:
        return dfu_media_mass_erase(dfu.media);
    case JOB_WRITE:
        return dfu_media_write(dfu.media, addr, dfu.buf, len);
    case JOB_READ:
        return dfu_media_read(dfu.media, addr, dfu.buf, len);
    default:
        return DFU_STATUS_ERR_UNKNOWN;
    }
}

static uint8_t event_of_job(uint8_t job)
{
    switch (job) {
    case JOB_SET_POINTER:
        return EVT_POINTER;
    case JOB_ERASE:
        return EVT_ERASE;
    case JOB_MASS_ERASE:
        return EVT_MASS_ERASE;
    case JOB_WRITE:
        return EVT_WRITE;
    case JOB_READ:
        return EVT_READ;
    default:
        return EVT_COMMAND;
    }
}

/* Record a finished job and answer the request that waited for it (interrupts off). */
static void finish_job(uint8_t job, uint8_t st)
{
    uint8_t answer = dfu.reply_waiting && usb_ctrl_token_valid(dfu.reply_token);
    dfu.reply_waiting = 0;
    dfu.job = JOB_NONE;
    dfu.job_armed = 0;

    if (job == JOB_READ) {
        if (st == DFU_STATUS_OK) {
            dfu.state = dfu.job_len < dfu.job_wlength ? DFU_STATE_IDLE : DFU_STATE_UPLOAD_IDLE;
            if (answer) {
                usb_ctrl_send(dfu.buf, (uint16_t)dfu.job_len, 0);
            }
        } else {
            enter_error(st);
            if (answer) {
                usb_ctrl_stall();
            }
        }
        return;
    }
    if (st == DFU_STATUS_OK) {
        dfu.state = DFU_STATE_DNLOAD_SYNC; /* the next GETSTATUS moves on to dfuDNLOAD-IDLE */
    } else {
        enter_error(st);
    }
    if (answer) {
        on_getstatus();
    }
}

int dfu_poll(void)
{
    int did = 0;
    while (dfu.ev_tail != dfu.ev_head) {
        print_event(&dfu.events[dfu.ev_tail]);
        dfu.ev_tail = (uint8_t)((dfu.ev_tail + 1u) % LOG_RING_SIZE);
        did = 1;
    }
    if (dfu.ev_lost != 0u) {
        log_str("DFU log lines lost: ");
        log_dec(dfu.ev_lost);
        log_end();
        dfu.ev_lost = 0;
    }

    if (dfu.job != JOB_NONE && dfu.job_armed) {
        uint8_t job = dfu.job;
        uint32_t addr = dfu.job_addr;
        uint32_t len = dfu.job_len;
        uint8_t st = run_job(job, addr, len);

        uint32_t primask = cm7_irq_save();
        finish_job(job, st);
        cm7_irq_restore(primask);

        if (job != JOB_NOP) {
            log_event(event_of_job(job), st, job == JOB_MASS_ERASE ? dfu.alt : addr, len);
        }
        did = 1;
    }
    return did;
}

int dfu_has_work(void)
{
    return (dfu.job != JOB_NONE && dfu.job_armed) || dfu.ev_tail != dfu.ev_head || dfu.leave != 0u;
}

int dfu_leave_requested(void)
{
    if (dfu.leave == 0u) {
        return 0;
    }
    log_str(dfu.leave_is_detach ? "DFU detach" : "DFU leave");
    log_end();
    return 1;
}
