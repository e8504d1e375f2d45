*** Settings ***
Documentation       Power lost in the middle of a download: the torn image is refused at the next
...                 power-on (CRC), the bootloader falls back to DFU, and a second download boots.
...                 Datasheet timing: where the cut falls depends on the operation times.
Resource            resources/common.resource
Suite Setup         Board Suite Setup
Test Teardown       Board Test Teardown
Test Timeout        1 minute


*** Test Cases ***
Power Cut During A QSPI Download Then Recovery
    [Documentation]    Power fails in the 9th page program (the first page of the second 2 KiB block):
    ...    the vector table and header are written, the rest is not, so the header CRC fails.
    Board In DFU Mode
    Cut Power After Flash Operations    10
    Run Keyword And Expect Error    *power cut*    DFU Download File    ${APP_QSPI_BIN}    ${QSPI_BASE}
    Board Should Be Powered Off
    Power Cycle
    Wait For Line On Uart    BOOT h743 bootloader v1
    Wait For Line On Uart    BOOT no valid image at 0x90000000 (image_check rejected)
    Wait For Line On Uart    BOOT no valid application: DFU mode
    Wait For Line On Uart    DFU ready
    Run Keyword And Expect Error    *differs*    QSPI Contents Should Equal File    ${APP_QSPI_BIN}    ${QSPI_BASE}
    DFU Download File    ${APP_QSPI_BIN}    ${QSPI_BASE}
    QSPI Contents Should Equal File    ${APP_QSPI_BIN}    ${QSPI_BASE}
    Erase Count Of Sector Should Be    qspi    ${QSPI_BASE}    2
    DFU Leave
    Application Should Start From    ${QSPI_BASE}

Power Cut While Erasing The Old Application
    [Documentation]    A valid application is in QSPI; power fails half-way through the erase of its
    ...    first sector. The half-erased image is refused, the torn erase still counted a cycle
    ...    (saved with the images), and a new download boots.
    Board With Bootloader
    Load Firmware Into Flash    ${APP_QSPI_ELF}
    Start In DFU Mode With K2
    Cut Power At Event    qspi.sector_erase    fraction=0.5
    Run Keyword And Expect Error    *power cut*    DFU Download File    ${APP_QSPI_BIN}    ${QSPI_BASE}
    Board Should Be Powered Off
    Power Cycle
    Wait For Line On Uart    BOOT no valid image at 0x90000000
    Wait For Line On Uart    DFU ready
    Memory Should Be Erased    qspi    ${QSPI_BASE}    2048
    Erase Count Of Sector Should Be    qspi    ${QSPI_BASE}    1
    DFU Download File    ${APP_QSPI_BIN}    ${QSPI_BASE}
    DFU Leave
    Application Should Start From    ${QSPI_BASE}

Power Cut During An Internal Flash Program Falls Back To DFU
    [Documentation]    Power fails half-way through programming the first 256-bit flash word of an
    ...    internal-flash download: that word is torn and its ECC is inconsistent (a read of it is a
    ...    double-ECC bus error). At the next power-on the bootloader must refuse the torn image and
    ...    enter DFU mode without K2, as it does for a torn QSPI image.
    Board In DFU Mode
    Cut Power At Event    flash.program    fraction=0.5
    Run Keyword And Expect Error    *power cut*    DFU Download File    ${APP_INTERNAL_BIN}    ${INTERNAL_APP}
    Board Should Be Powered Off
    Power Cycle
    Wait For Line On Uart    BOOT no valid image at 0x90000000 (image_check empty)
    Wait For Line On Uart    BOOT bus error reading the image at 0x08020000    timeout=2
    Wait For Line On Uart    BOOT no valid image at 0x08020000 (image_check rejected)
    Wait For Line On Uart    BOOT no valid application: DFU mode
    Wait For Line On Uart    DFU ready
    DFU Download File    ${APP_INTERNAL_BIN}    ${INTERNAL_APP}
    DFU Leave
    Application Should Start From    ${INTERNAL_APP}

K2 Recovers A Board With A Torn Internal Image
    [Documentation]    Same torn internal-flash word; with K2 held the bootloader enters DFU mode before
    ...    it looks at any image, the new download erases the sector (clearing the ECC error) and boots.
    Board In DFU Mode
    Cut Power At Event    flash.program    fraction=0.5
    Run Keyword And Expect Error    *power cut*    DFU Download File    ${APP_INTERNAL_BIN}    ${INTERNAL_APP}
    Board Should Be Powered Off
    Hold K2
    Power Cycle
    Bootloader Should Enter DFU Mode    BOOT K2 held: DFU mode
    Release K2
    DFU Download File    ${APP_INTERNAL_BIN}    ${INTERNAL_APP}
    Flash Contents Should Equal File    ${APP_INTERNAL_BIN}    ${INTERNAL_APP}
    Erase Count Of Sector Should Be    internal    ${INTERNAL_APP}    2
    DFU Leave
    Application Should Start From    ${INTERNAL_APP}
