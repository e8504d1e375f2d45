/*
 * USB DFU 1.1 and ST DfuSe protocol numbers (FACTS.md §F): class requests, states, status codes,
 * DfuSe block-0 commands and the functional-descriptor values this bootloader announces.
 */
#ifndef DFU_PROTO_H
#define DFU_PROTO_H

/* Class requests (interface-directed, bmRequestType 0x21 / 0xA1). */
#define DFU_REQ_DETACH 0u
#define DFU_REQ_DNLOAD 1u
#define DFU_REQ_UPLOAD 2u
#define DFU_REQ_GETSTATUS 3u
#define DFU_REQ_CLRSTATUS 4u
#define DFU_REQ_GETSTATE 5u
#define DFU_REQ_ABORT 6u

/* bState */
#define DFU_STATE_APP_IDLE 0u
#define DFU_STATE_APP_DETACH 1u
#define DFU_STATE_IDLE 2u
#define DFU_STATE_DNLOAD_SYNC 3u
#define DFU_STATE_DNBUSY 4u
#define DFU_STATE_DNLOAD_IDLE 5u
#define DFU_STATE_MANIFEST_SYNC 6u
#define DFU_STATE_MANIFEST 7u
#define DFU_STATE_MANIFEST_WAIT_RESET 8u
#define DFU_STATE_UPLOAD_IDLE 9u
#define DFU_STATE_ERROR 10u

/* bStatus */
#define DFU_STATUS_OK 0x00u
#define DFU_STATUS_ERR_TARGET 0x01u
#define DFU_STATUS_ERR_FILE 0x02u
#define DFU_STATUS_ERR_WRITE 0x03u
#define DFU_STATUS_ERR_ERASE 0x04u
#define DFU_STATUS_ERR_CHECK_ERASED 0x05u
#define DFU_STATUS_ERR_PROG 0x06u
#define DFU_STATUS_ERR_VERIFY 0x07u
#define DFU_STATUS_ERR_ADDRESS 0x08u
#define DFU_STATUS_ERR_NOTDONE 0x09u
#define DFU_STATUS_ERR_FIRMWARE 0x0Au
#define DFU_STATUS_ERR_VENDOR 0x0Bu
#define DFU_STATUS_ERR_USBR 0x0Cu
#define DFU_STATUS_ERR_POR 0x0Du
#define DFU_STATUS_ERR_UNKNOWN 0x0Eu
#define DFU_STATUS_ERR_STALLEDPKT 0x0Fu

/* GETSTATUS reply: bStatus, bwPollTimeout (3 bytes LE, ms), bState, iString. */
#define DFU_STATUS_REPLY_BYTES 6u
#define DFU_POLL_TIMEOUT_MAX_MS 0xFFFFFFu

/* DfuSe commands: first byte of a DNLOAD with wBlockNum 0. */
#define DFUSE_CMD_GET_COMMANDS 0x00u
#define DFUSE_CMD_SET_ADDRESS 0x21u
#define DFUSE_CMD_ERASE 0x41u
#define DFUSE_CMD_READ_UNPROTECT 0x92u /* ST ROM only; not supported here */
#define DFUSE_CMD_WITH_ADDRESS_BYTES 5u /* command byte + 32-bit LE address */
#define DFUSE_CMD_ALONE_BYTES 1u
#define DFUSE_BLOCK_COMMAND 0u
#define DFUSE_BLOCK_UNUSED 1u
#define DFUSE_BLOCK_FIRST_DATA 2u /* address = pointer + (block - 2) * wTransferSize */

/* DFU functional descriptor values. */
#define DFU_DESC_TYPE_FUNCTIONAL 0x21u
#define DFU_ATTR_CAN_DNLOAD (1u << 0)
#define DFU_ATTR_CAN_UPLOAD (1u << 1)
#define DFU_ATTR_MANIFESTATION_TOLERANT (1u << 2)
#define DFU_ATTR_WILL_DETACH (1u << 3)
#define DFU_ATTRIBUTES (DFU_ATTR_CAN_DNLOAD | DFU_ATTR_CAN_UPLOAD | DFU_ATTR_WILL_DETACH) /* 0x0B */
#define DFU_DETACH_TIMEOUT_MS 255u
#define DFU_TRANSFER_SIZE 2048u
#define DFU_VERSION_DFUSE 0x011Au

/* Interface class triple of a device in DFU mode. */
#define DFU_INTERFACE_CLASS 0xFEu
#define DFU_INTERFACE_SUBCLASS 0x01u
#define DFU_INTERFACE_PROTOCOL_DFU_MODE 0x02u

#endif /* DFU_PROTO_H */
