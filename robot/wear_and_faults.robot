*** Settings ***
Documentation       Worn and faulty NOR: the bootloader reports the failure to the host and does not
...                 boot what it could not write.
Resource            resources/common.resource
Suite Setup         Board Suite Setup
Test Teardown       Board Test Teardown
Test Timeout        1 minute


*** Test Cases ***
Worn QSPI Sector Fails The Download
    [Documentation]    Sector 0 of the W25Q64 is 50 cycles past its 100,000-cycle endurance: its erase
    ...    leaves bits at 0, the bootloader's erased check before programming reports errCHECK_ERASED,
    ...    and the bootloader later refuses the image and stays in DFU mode.
    Board In DFU Mode    fast
    Inject Wear    qspi    ${QSPI_BASE}    100049
    Run Keyword And Expect Error    *errCHECK_ERASED*    DFU Download File    ${APP_QSPI_BIN}    ${QSPI_BASE}
    Erase Count Of Sector Should Be    qspi    ${QSPI_BASE}    100050
    Run Keyword And Expect Error    *differs*    QSPI Contents Should Equal File    ${APP_QSPI_BIN}    ${QSPI_BASE}
    DFU Status Should Be    dfuIDLE    OK
    DFU Leave
    Wait For Line On Uart    BOOT no valid image at 0x90000000
    Wait For Line On Uart    BOOT no valid application: DFU mode
    Wait For Line On Uart    DFU ready

Stuck Bit Fails The Verify
    [Documentation]    Bit 0 of the first QSPI byte is stuck at 1 where the image has a 0 (the low
    ...    byte of its initial stack pointer): programming "succeeds", the read-back verify reports
    ...    errVERIFY, and the bootloader does not start the image.
    Board In DFU Mode    fast
    Inject Stuck Bit    qspi    ${QSPI_BASE}    0    1
    Run Keyword And Expect Error    *errVERIFY*    DFU Download File    ${APP_QSPI_BIN}    ${QSPI_BASE}
    Run Keyword And Expect Error    *first at 0x90000000*
    ...    QSPI Contents Should Equal File    ${APP_QSPI_BIN}    ${QSPI_BASE}
    DFU Leave
    Wait For Line On Uart    BOOT no valid image at 0x90000000
    Wait For Line On Uart    DFU ready
