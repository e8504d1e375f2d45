*** Settings ***
Documentation       Boot decisions of the bootloader: empty flash -> DFU, K2 -> DFU, QSPI (XIP) first,
...                 then internal flash. Images are factory-programmed here (no DFU).
Resource            resources/common.resource
Suite Setup         Board Suite Setup
Test Teardown       Board Test Teardown
Test Timeout        1 minute


*** Test Cases ***
Core Starts At The Bootloader Reset Vector
    [Documentation]    After power-on the core has fetched SP and PC from the table at 0x08000000.
    Board With Bootloader
    Start Emulation
    ${entry}=    Get Symbol Address    ${BOOTLOADER}    Reset_Handler
    PC Should Be Equal    ${entry}

No Valid Image Enters DFU Mode
    [Documentation]    Only the bootloader is programmed: both slots are empty, DFU mode with both layouts.
    Board With Bootloader
    Start Emulation
    Wait For Line On Uart    BOOT h743 bootloader v1
    Wait For Line On Uart    BOOT no valid image at 0x90000000 (image_check empty)
    Wait For Line On Uart    BOOT no valid image at 0x08020000 (image_check empty)
    Wait For Line On Uart    BOOT no valid application: DFU mode
    Wait For Line On Uart    DFU ready
    LED Should Be Lit
    DFU Device Should Be Present
    DFU Layout Should Be    0    ${INTERNAL_LAYOUT}
    DFU Layout Should Be    1    ${QSPI_LAYOUT}
    DFU Status Should Be    dfuIDLE    OK

QSPI Application Executes In Place
    [Documentation]    A valid image in the W25Q64 is started from 0x90000000; the CPU runs from the
    ...    XIP window and the LED toggles every 250 ms of virtual time.
    Board With Bootloader
    Load Firmware Into Flash    ${APP_QSPI_ELF}
    Start Emulation
    Application Should Start From    ${QSPI_BASE}
    Run For    1.5
    PC Should Be In Range    ${QSPI_BASE}    ${QSPI_END}
    LED Should Have Blinked    8
    LED Blink Period Should Be    250    tolerance_ms=1    last=6
    DFU Device Should Not Be Present

Internal Flash Application Boots
    [Documentation]    With QSPI empty, the image at 0x08020000 is started.
    Board With Bootloader
    Load Firmware Into Flash    ${APP_INTERNAL_ELF}
    Start Emulation
    Wait For Line On Uart    BOOT no valid image at 0x90000000 (image_check empty)
    Application Should Start From    ${INTERNAL_APP}
    PC Should Be In Range    ${INTERNAL_APP}    ${INTERNAL_END}

QSPI Is Tried Before Internal Flash
    [Documentation]    With valid images in both slots the QSPI one wins (boot order table).
    Board With Bootloader    fast
    Load Firmware Into Flash    ${APP_INTERNAL_ELF}
    Load Firmware Into Flash    ${APP_QSPI_ELF}
    Start Emulation
    Wait For Line On Uart    BOOT h743 bootloader v1
    Should Not Be On Uart    no valid image    timeout=0.3
    Application Should Start From    ${QSPI_BASE}

K2 Forces DFU Mode Even With A Valid Application
    [Documentation]    K2 held at reset: DFU mode although QSPI and internal flash hold valid images;
    ...    released and reset, the same board starts its QSPI application.
    Board With Bootloader
    Load Firmware Into Flash    ${APP_QSPI_ELF}
    Load Firmware Into Flash    ${APP_INTERNAL_ELF}
    Hold K2
    Start Emulation
    Should Not Be On Uart    BOOT jumping    timeout=0.5
    Bootloader Should Enter DFU Mode    BOOT K2 held: DFU mode
    Release K2
    Reset Board
    Application Should Start From    ${QSPI_BASE}
