*** Settings ***
Documentation       Bad DFU requests end in a DFU error status or a STALL, never in changed flash or a
...                 hung device. Requests go to the device as they are (no host-side checks).
Resource            resources/common.resource
Suite Setup         Board Suite Setup
Test Teardown       Board Test Teardown
Test Timeout        1 minute


*** Test Cases ***
Bootloader Sector Is Refused With errTARGET
    [Documentation]    Erase and write at 0x08000000 report errTARGET; the sector is unchanged byte for
    ...    byte and was never erased. The host-side check refuses the same download before sending it.
    Board In DFU Mode    fast
    Take Memory Snapshot    bootloader    internal    ${BOOT_SECTOR}    0x20000
    Run Keyword And Expect Error    *errTARGET*    DFU Erase    ${BOOT_SECTOR}    host_checks=False
    Wait For Line On Uart    DFU erase 0x08000000 errTARGET
    DFU Status Should Be    dfuERROR    errTARGET
    DFU Clear Status
    DFU Status Should Be    dfuIDLE    OK
    Run Keyword And Expect Error    *errTARGET*
    ...    DFU Download File    ${APP_INTERNAL_BIN}    ${BOOT_SECTOR}    host_checks=False
    DFU Status Should Be    dfuERROR    errTARGET
    DFU Clear Status
    Run Keyword And Expect Error    *not writable*    DFU Download File    ${APP_INTERNAL_BIN}    ${BOOT_SECTOR}
    Memory Should Match Snapshot    bootloader
    Erase Count Of Sector Should Be    internal    ${BOOT_SECTOR}    0
    DFU Status Should Be    dfuIDLE    OK

Request In The Wrong State Is Stalled
    [Documentation]    UPLOAD in dfuDNLOAD-IDLE and CLRSTATUS in dfuIDLE are STALLed and leave
    ...    dfuERROR/errSTALLEDPKT, which CLRSTATUS clears.
    Board In DFU Mode    fast
    DFU Set Address    ${QSPI_BASE}
    DFU Status Should Be    dfuDNLOAD-IDLE    OK
    DFU Request Should Stall    DFU_UPLOAD    value=2    length=64
    DFU Status Should Be    dfuERROR    errSTALLEDPKT
    DFU Clear Status
    DFU Status Should Be    dfuIDLE    OK
    DFU Request Should Stall    DFU_CLRSTATUS
    DFU Status Should Be    dfuERROR    errSTALLEDPKT
    DFU Clear Status
    DFU Status Should Be    dfuIDLE    OK

Unknown Request And Unknown Command
    [Documentation]    A DFU request number that does not exist is STALLed; the DfuSe command 0x92
    ...    (Read Unprotect, not supported) ends in errUNKNOWN. The device still downloads afterwards.
    Board In DFU Mode    fast
    DFU Request Should Stall    7
    DFU Status Should Be    dfuERROR    errSTALLEDPKT
    DFU Clear Status
    Run Keyword And Expect Error    *errUNKNOWN*    DFU Send Command    92
    Wait For Line On Uart    DFU command 0x00000092 len 1 errUNKNOWN
    DFU Status Should Be    dfuERROR    errUNKNOWN
    DFU Clear Status
    DFU Download File    ${APP_QSPI_BIN}    ${QSPI_BASE}
    QSPI Contents Should Equal File    ${APP_QSPI_BIN}    ${QSPI_BASE}
