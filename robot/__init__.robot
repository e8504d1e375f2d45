*** Settings ***
Documentation       Robot suites of the virtual DevEBox STM32H743 board. With ENGINE=renode and no
...                 usable Renode, the set-up below stops at once and every suite is reported
...                 SKIPPED with the one-line reason.
Resource            resources/common.resource
Suite Setup         Require Engine
