*** Settings ***
Documentation       DfuSe downloads from a host into each memory, boots of what was downloaded,
...                 a .dfu file with both alternate settings, and uploads that read back the downloads.
Resource            resources/common.resource
Suite Setup         Board Suite Setup
Test Teardown       Board Test Teardown
Test Timeout        1 minute


*** Test Cases ***
DFU Download To QSPI Then XIP Boot
    [Documentation]    Datasheet timing: two 4 KiB sector erases (45 ms each) and 18 page programs
    ...    (0.4 ms each) take at least 97 ms of virtual time; each touched sector is erased once.
    Board In DFU Mode
    ${t0}=    Get Virtual Time
    DFU Download File    ${APP_QSPI_BIN}    ${QSPI_BASE}
    ${t1}=    Get Virtual Time
    Should Be True    ${t1} - ${t0} >= 0.097    download took ${t1} - ${t0} s of virtual time
    Wait For Line On Uart    DFU erase 0x90000000 ok
    Wait For Line On Uart    DFU erase 0x90001000 ok
    Wait For Line On Uart    DFU write 0x90000000 2048 ok
    QSPI Contents Should Equal File    ${APP_QSPI_BIN}    ${QSPI_BASE}
    Erase Count Of Sector Should Be    qspi    0x90000000    1
    Erase Count Of Sector Should Be    qspi    0x90001000    1
    Erase Count Of Sector Should Be    qspi    0x90002000    0
    DFU Leave
    Wait For Line On Uart    DFU leave
    Application Should Start From    ${QSPI_BASE}
    PC Should Be In Range    ${QSPI_BASE}    ${QSPI_END}
    DFU Device Should Not Be Present

DFU Download To Internal Flash Then Boot
    [Documentation]    The ELF goes to 0x08020000 (alt 0); the 128 KiB sector erase takes about 1 s of
    ...    virtual time (datasheet); the bootloader then starts the internal application.
    Board In DFU Mode
    ${t0}=    Get Virtual Time
    DFU Download File    ${APP_INTERNAL_ELF}
    ${t1}=    Get Virtual Time
    Should Be True    ${t1} - ${t0} >= 1.0    download took ${t1} - ${t0} s of virtual time
    Wait For Line On Uart    DFU erase 0x08020000 ok
    Flash Contents Should Equal File    ${APP_INTERNAL_ELF}
    Erase Count Of Sector Should Be    internal    ${INTERNAL_APP}    1
    Erase Count Of Sector Should Be    internal    ${BOOT_SECTOR}    0
    DFU Leave
    Wait For Line On Uart    BOOT no valid image at 0x90000000 (image_check empty)
    Application Should Start From    ${INTERNAL_APP}

DfuSe File With Both Alternate Settings
    [Documentation]    One .dfu file (built here) carries alt 0 (internal) and alt 1 (QSPI); both land
    ...    and QSPI boots first. Erasing QSPI sector 0 over DFU then makes the internal image boot.
    ${dfu}=    Set Variable    ${OUTPUT DIR}/both_memories.dfu
    Create DfuSe File    ${dfu}    0:${INTERNAL_APP}:${APP_INTERNAL_BIN}    1:${QSPI_BASE}:${APP_QSPI_BIN}
    Board In DFU Mode    fast
    DFU Download File    ${dfu}
    Flash Contents Should Equal File    ${APP_INTERNAL_BIN}    ${INTERNAL_APP}
    QSPI Contents Should Equal File    ${APP_QSPI_BIN}    ${QSPI_BASE}
    DFU Leave
    Application Should Start From    ${QSPI_BASE}
    Hold K2
    Reset Board
    Bootloader Should Enter DFU Mode    BOOT K2 held: DFU mode
    Release K2
    DFU Erase    ${QSPI_BASE}
    Memory Should Be Erased    qspi    ${QSPI_BASE}    4096
    DFU Leave
    Wait For Line On Uart    BOOT no valid image at 0x90000000
    Application Should Start From    ${INTERNAL_APP}

Upload Equals Download
    [Documentation]    What UPLOAD reads back is byte for byte what was downloaded, in both memories;
    ...    the read-only bootloader sector can be read too.
    Board In DFU Mode    fast
    DFU Download File    ${APP_QSPI_BIN}    ${QSPI_BASE}
    DFU Download File    ${APP_INTERNAL_BIN}    ${INTERNAL_APP}
    ${qspi_size}=    Get File Size    ${APP_QSPI_BIN}
    ${internal_size}=    Get File Size    ${APP_INTERNAL_BIN}
    ${boot_size}=    Get File Size    ${BOOTLOADER_BIN}
    DFU Upload To File    ${OUTPUT DIR}/upload_qspi.bin    ${QSPI_BASE}    ${qspi_size}
    DFU Upload To File    ${OUTPUT DIR}/upload_internal.bin    ${INTERNAL_APP}    ${internal_size}
    DFU Upload To File    ${OUTPUT DIR}/upload_boot.bin    ${BOOT_SECTOR}    ${boot_size}
    Files Should Be Identical    ${OUTPUT DIR}/upload_qspi.bin    ${APP_QSPI_BIN}
    Files Should Be Identical    ${OUTPUT DIR}/upload_internal.bin    ${APP_INTERNAL_BIN}
    Files Should Be Identical    ${OUTPUT DIR}/upload_boot.bin    ${BOOTLOADER_BIN}
    DFU Status Should Be    dfuIDLE    OK
